"""The command line: click wiring and the one error boundary. No logic lives here.

Exit codes (design.md section 2): 0 success; 1 user, config or remote error; 2 with
``--detailed-exitcode`` when the plan has changes; 3 internal error (traceback only with --debug);
130 interrupted.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Iterator, Sequence

import click

from . import __version__
from .commands import (
    App,
    apply_cmd,
    drift_cmd,
    history_cmd,
    import_cmd,
    init_cmd,
    plan_cmd,
    render_cmd,
    resolve_cmd,
    show_cmd,
    validate_cmd,
)
from .errors import ApplyFailed, ConfigError, PromptOpsError, ProviderError, ValidationFailed
from .render import plural

def _wants_color(no_color: bool) -> bool:
    # NO_COLOR (https://no-color.org) and non-TTY output disable colour, as terraform does.
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-C", "directory", default=".", metavar="DIR", type=click.Path(file_okay=False),
              help="Project directory (default: the current one).")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
@click.option("--no-color", is_flag=True, help="Plain output without colours (NO_COLOR is honoured too).")
@click.version_option(__version__, "--version", prog_name="promptops")
@click.pass_context
def cli(ctx: click.Context, directory: str, debug: bool, no_color: bool) -> None:
    """promptops keeps prompts as code: plan and apply prompt templates, labels and traffic splits
    to prompt-management platforms, terraform-style."""
    try:
        os.chdir(directory)  # like git -C / terraform -chdir: every path is relative to DIR
    except OSError as exc:
        raise ConfigError(f"cannot use -C {directory}: {exc.strerror}") from None
    ctx.obj = App(Path.cwd(), _wants_color(no_color), directory)


for _command in (init_cmd, validate_cmd, plan_cmd, apply_cmd, show_cmd, render_cmd, resolve_cmd, history_cmd, drift_cmd,
                 import_cmd):
    cli.add_command(_command)


class _StderrNotices(logging.Handler):
    """promptops' log records (retry waits) as plain lines on the stderr of the moment."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(record.getMessage(), err=True)


def _notices() -> None:
    logger = logging.getLogger("promptops")
    if not any(isinstance(h, _StderrNotices) for h in logger.handlers):
        logger.addHandler(_StderrNotices(logging.WARNING))
        logger.setLevel(logging.WARNING)
        logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code; the only place exceptions become exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    _notices()
    debug = "--debug" in args or bool(os.environ.get("PROMPTOPS_DEBUG"))
    try:
        code = cli.main(args=args, prog_name="promptops", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C into Abort (and EOF at a prompt too): keep them apart
        if isinstance(exc.__context__, KeyboardInterrupt):
            return _interrupted(exc.__context__)
        _err("Aborted.")
        return 1
    except click.ClickException as exc:  # usage errors are user errors: exit 1, not click's 2
        exc.show()
        return 1
    except ValidationFailed as exc:
        for diagnostic in exc.diagnostics:
            _err(diagnostic.format())
        _err(f"Error: {exc}")
        return 1
    except ApplyFailed as exc:
        return _report_apply_failure(exc)
    except PromptOpsError as exc:
        _err(f"Error: {exc}")
        return 1
    except OSError as exc:  # the environment (paths, permissions, disk), not a bug in promptops
        where = f": {exc.filename}" if exc.filename else ""
        _err(f"Error: {exc.strerror or exc}{where}")
        return 1
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except Exception as exc:  # noqa: BLE001 - the boundary: anything else is a bug
        if debug:
            traceback.print_exc()
        _err(f"promptops: internal error: {type(exc).__name__}: {exc}")
        _err("This is a bug in promptops. Re-run with --debug for the traceback and report it.")
        return 3


def _interrupted(exc: KeyboardInterrupt) -> int:
    """Ctrl-C: exit 130. One that came while a failed or interrupted apply was closing (its lock,
    its connection) still prints that apply's report."""
    if isinstance(exc.__context__, ApplyFailed):
        _report_apply_failure(exc.__context__)
    else:
        _err("Interrupted.")
    return 130


def _report_apply_failure(exc: ApplyFailed, shown: int = 10) -> int:
    """What was applied, what may have been (an ambiguous failure: never counted as not applied)
    and what was not: counts, and the first ``shown`` actions of each list; the exit code (130
    when interrupted). Another Ctrl-C while it prints cannot cut the report short."""
    with _ignoring_interrupts(exc.interrupted):
        _print_apply_failure(exc, shown)
    return 130 if exc.interrupted else 1


@contextlib.contextmanager
def _ignoring_interrupts(ignore: bool) -> Iterator[None]:
    """SIGINT ignored inside the block when ``ignore`` (and signals can be set: the main thread)."""
    if not ignore or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_apply_failure(exc: ApplyFailed, shown: int) -> None:
    _err(f"Error: apply {'interrupted' if exc.interrupted else 'stopped'}: {exc}")
    for title, actions in (("Applied before the stop", exc.done), ("May have been applied", exc.maybe),
                           ("Not applied", exc.not_done)):
        if not actions:
            continue
        _err(f"\n{title}: {plural(len(actions), 'action')}")
        for line in actions[:shown]:
            _err(f"  - {line}")
        if len(actions) > shown:
            _err(f"  ... and {len(actions) - shown} more")
    if not exc.done and not exc.maybe:
        _err("\nNothing was applied.")
    _err("\n" + _next_step(exc.cause, maybe=bool(exc.maybe)))


def _next_step(cause: BaseException, *, maybe: bool = False) -> str:
    """What to do after a failed apply: run it again when the failure may pass (a timeout, a 5xx,
    a lost connection, a rate limit, Ctrl-C); say what must change first when the platform refused
    the request itself, since a re-run would be refused the same way. ``maybe``: some actions may
    have been applied, which `promptops plan` shows and the next apply finds by content."""
    again = ("versions are matched by content, so what was applied is not created twice and the next apply "
             "continues from there")
    if maybe:
        again = ("versions are matched by content, so a version that may have been created is found, not created "
                 "twice (`promptops plan` shows whether it was), and the next apply continues from there")
    if not (isinstance(cause, ProviderError) and cause.deterministic):
        return f"Run `promptops apply` again to finish: {again}."
    if cause.status == 401:
        return f"Running `promptops apply` again fails the same way until the credentials are fixed; then apply: {again}."
    if cause.status == 403:
        return (f"Running `promptops apply` again fails the same way until the key may do this; give it the "
                f"permission (or use a key that has it), then apply again: {again}.")
    if cause.status == 404:
        return ("The platform no longer has what the plan names (changed outside promptops?): run `promptops "
                f"plan` again and apply the new plan: {again}.")
    return (f"The platform refused the request ({cause.status}), and running `promptops apply` again would be "
            "refused the same way: change what the error names (in the prompt files or promptops.yaml), then "
            f"run `promptops plan` and apply: {again}.")


def _err(message: str) -> None:
    click.echo(message, err=True)
