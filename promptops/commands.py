"""The commands: each loads what it needs, calls the pure core, prints, and returns an exit code."""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
from pathlib import Path
from typing import Any, Iterator

import click

from . import render as rendering
from .apply import apply_plan, check_fresh
from .config import CONFIG_FILE, Config, Target, load_config
from .errors import ApplyFailed, ConfigError, ValidationFailed, quote_path
from .model import Plan
from .plan import build_plan
from .planfile import read_plan, write_plan
from .providers import open_provider
from .source import Desired, load_desired, require_clean, require_committed_plan, work_tree_commit
from .vcs import Commit, head


class App:
    """Per-invocation settings shared by the commands: the project directory (the process works in
    it, as with ``git -C``), the -C argument as typed (for suggested commands) and colour."""

    def __init__(self, root: Path, color: bool, directory: str = "."):
        self.root = root
        self.color = color
        self.directory = directory

    def command(self, rest: str) -> str:
        """A promptops command line to suggest, with the -C the user gave."""
        return f"promptops {'' if self.directory == '.' else f'-C {self.directory} '}{rest}"


pass_app = click.pass_obj


def common_options(f: Any) -> Any:
    """--no-color and --debug after the subcommand too (`promptops plan --no-color`), as terraform
    users type them. --debug is read by the error boundary from argv."""

    def no_color(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.find_object(App).color = False

    f = click.option("--no-color", is_flag=True, expose_value=False, callback=no_color,
                     help="Plain output without colours.")(f)
    return click.option("--debug", is_flag=True, expose_value=False, help="Show tracebacks for internal errors.")(f)


def _echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    click.echo(text, err=err, nl=nl)


def _load(app: App, only: list[Path] | None = None, *, ref: str | None = None,
          changed_since: str | None = None) -> Desired:
    """The validated desired state (work tree, or commit ``ref``); warnings go to stderr."""
    desired = load_desired(app.root, ref=ref, only=only, changed_since=changed_since)
    project = desired.project
    if project.errors:
        raise ValidationFailed(project.diagnostics)
    for warning in project.diagnostics:
        _echo(warning.format(), err=True)
    return desired


def _not_empty(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ConfigError(f"--{param.name.replace('_', '-')} needs a git ref (a branch, tag or sha), not an empty string")
    return value


def _ref_option(f: Any, help: str = "Read the files as they are at this commit (branch, tag, sha, HEAD~1), "
                                   "without a checkout.") -> Any:
    return click.option("--ref", metavar="GITREF", callback=_not_empty, help=help)(f)


def _format_option(f: Any) -> Any:
    f = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(f)
    return click.option("--format", "fmt", type=click.Choice(("text", "json", "markdown")), default="text",
                        show_default=True, help="Output format.")(f)


def _render(plan: Plan, fmt: str, color: bool) -> str:
    if fmt == "json":
        return rendering.render_json(plan)
    if fmt == "markdown":
        return rendering.render_markdown(plan)
    return rendering.render_text(plan, color=color)


def compute_plan(desired: Desired, target: Target, provider: Any, prune: bool) -> Plan:
    """Read the target and plan (the files are already validated). The plan records the commit
    the files come from: ``--ref``'s, else HEAD with the dirty flag of the project's files."""
    project = desired.project
    declared = [s.name for s in project.specs if s.managed_by(target.name)]
    remote = provider.read(None if prune else declared)
    commit: Commit | None = desired.commit or work_tree_commit(project.config)
    plan = build_plan(project.specs, remote, target, prune=prune, commit=commit.sha if commit else None,
                      dirty=commit.dirty if commit else None, commit_subject=commit.subject if commit else None,
                      # a partial plan cannot tell undeclared prompts from ones it did not load
                      remote_names=None if prune or desired.partial else provider.list_names())
    if desired.partial:
        plan = dataclasses.replace(plan, warnings=(desired.partial, *plan.warnings))
    return plan


# --------------------------------------------------------------------------- init


@click.command("init")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@common_options
@pass_app
def init_cmd(app: App, force: bool) -> int:
    """Scaffold promptops in a repository: promptops.yaml, an example prompt, a pre-commit config
    and a GitHub workflow. Existing files are kept unless --force."""
    from .scaffold import scaffold

    for line in scaffold(app.root, force=force):
        _echo(line)
    _echo("\nNext: edit prompts/example.yaml, then run `promptops validate` and `promptops plan`.")
    return 0


# --------------------------------------------------------------------------- validate


@click.command("validate")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@_ref_option
@common_options
@pass_app
def validate_cmd(app: App, files: tuple[Path, ...], ref: str | None) -> int:
    """Check prompt files offline (all of them, or FILES): schema, references, weights, template
    syntax, variables, and what each target can represent. Exit 1 on any error."""
    desired = _load(app, list(files) if files else None, ref=ref)
    project = desired.project
    n = len(project.files)
    checked = [CONFIG_FILE] if any(Path(f).name == CONFIG_FILE for f in files) else []
    if n or not checked:
        checked.append(rendering.plural(n, "prompt file"))
    verb = "are" if len(checked) > 1 or n > 1 or (n == 0 and not files) else "is"
    at = f" at {desired.commit.short} ({ref})" if desired.commit and ref else ""
    _echo(f"Success! {' and '.join(checked)} {verb} valid{at}.")
    return 0


# --------------------------------------------------------------------------- plan / show / apply


@click.command("plan")
@click.option("-t", "--target", "target_name", metavar="TARGET", help="Target to plan for (default: default_target).")
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False, path_type=Path), metavar="PLANFILE",
              help="Save the plan; `promptops apply PLANFILE` applies exactly it.")
@_format_option
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 2 with changes, 1 on error.")
@click.option("--prune", is_flag=True, help="Also delete remote prompts that no file declares.")
@_ref_option
@click.option("--changed-since", metavar="GITREF", callback=_not_empty,
              help="Plan only the prompt files changed since GITREF (from where it and HEAD meet); faster in "
                   "large repositories, blind to drift in the others.")
@common_options
@pass_app
def plan_cmd(app: App, target_name: str | None, out: Path | None, fmt: str, as_json: bool,
             detailed_exitcode: bool, prune: bool, ref: str | None, changed_since: str | None) -> int:
    """Read the target, diff it against the files and print what apply would do."""
    if prune and changed_since:
        raise ConfigError("--prune needs a full plan (it deletes what no file declares); drop --changed-since")
    desired = _load(app, ref=ref, changed_since=changed_since)
    project = desired.project
    target = project.config.target(target_name)
    provider = open_provider(target, project.config.root)
    try:
        plan = compute_plan(desired, target, provider, prune)
    finally:
        provider.close()
    fmt = "json" if as_json else fmt
    _echo(_render(plan, fmt, app.color), nl=False)
    if out is not None:
        write_plan(plan, out)
        if fmt == "text":
            _echo(f"\nSaved the plan to: {out}\n\nTo perform exactly these actions, run the following "
                  f"command to apply:\n    {app.command(f'apply {_quote(out)}')}")
    return 2 if detailed_exitcode and plan.has_changes else 0


def _quote(path: Path) -> str:
    return f'"{path}"'


@click.command("show")
@click.argument("planfile", type=click.Path(dir_okay=False, path_type=Path))
@_format_option
@common_options
@pass_app
def show_cmd(app: App, planfile: Path, fmt: str, as_json: bool) -> int:
    """Render a saved plan."""
    plan = read_plan(planfile)
    _echo(_render(plan, "json" if as_json else fmt, app.color), nl=False)
    return 0


@click.command("apply")
@click.argument("planfile", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-t", "--target", "target_name", metavar="TARGET", help="Target to apply to (default: default_target).")
@click.option("--auto-approve", is_flag=True, help="Apply without asking for 'yes'.")
@click.option("--prune", is_flag=True, help="Also delete remote prompts that no file declares.")
@click.option("--lock-timeout", default=0.0, type=click.FloatRange(min=0), metavar="SECONDS", show_default=True,
              help="Wait this long for another apply to the same target to finish.")
@_ref_option
@click.option("--allow-dirty", is_flag=True,
              help="Apply to a platform even with uncommitted changes (or outside git); the local target never asks.")
@common_options
@pass_app
def apply_cmd(app: App, planfile: Path | None, target_name: str | None, auto_approve: bool, prune: bool,
              lock_timeout: float, ref: str | None, allow_dirty: bool) -> int:
    """Apply the changes: without PLANFILE, plan, show and ask for "yes"; with PLANFILE, refuse it
    if the remote changed since, else apply exactly it."""
    if planfile is not None:
        if prune or ref:
            flag = "--prune" if prune else "--ref"
            raise ConfigError(f"{flag} cannot be used with a saved plan: the plan already says what it does; "
                              f"plan with {flag} instead ({app.command(f'plan {flag} ... -o PLANFILE')})")
        return _apply_saved(app, planfile, target_name, lock_timeout, allow_dirty)
    desired = _load(app, ref=ref)
    config = desired.project.config
    target = config.target(target_name)
    if desired.commit is None:  # the work tree: what runs on a platform must be committed
        desired = dataclasses.replace(desired, commit=work_tree_commit(config))
        require_clean(config, target, desired.commit, allow_dirty)
    provider = open_provider(target, config.root)
    with _closing(provider):
        # Held from planning to the last call: a second apply waits or stops instead of planning
        # against the same state and creating every version again.
        with provider.lock(lock_timeout):
            plan = compute_plan(desired, target, provider, prune)
            _echo(rendering.render_text(plan, color=app.color), nl=False)
            if not plan.has_changes:
                return 0
            if not auto_approve:
                if not _confirm():
                    _echo("\nApply cancelled.", err=True)
                    return 1
                check_fresh(plan, provider)  # the remote may have changed while we waited for "yes"
            _echo()
            result = apply_plan(plan, provider, concurrency=target.concurrency, progress=_progress)
    _echo(f"\n{result.summary()}")
    return 0


@contextlib.contextmanager
def _closing(provider: Any) -> Iterator[None]:
    """Close ``provider`` after the block, except after an apply abandoned by a second Ctrl-C:
    the calls it stopped waiting for still hold the connection (closing the local registry waits
    for its transaction, up to the busy timeout), and the process ends right after the report."""
    abandoned = False
    try:
        yield
    except ApplyFailed as exc:
        abandoned = exc.abandoned
        raise
    finally:
        if not abandoned:
            provider.close()


def _apply_saved(app: App, planfile: Path, target_name: str | None, lock_timeout: float, allow_dirty: bool) -> int:
    plan = read_plan(planfile)
    project_config = load_project_config(app)
    if target_name and target_name != plan.target:
        raise ConfigError(f"{planfile} was made for target {plan.target!r}, not {target_name!r}")
    target = project_config.target(plan.target)
    if target.provider != plan.provider:
        raise ConfigError(f"{planfile} was made for provider {plan.provider}, but target {target.name!r} is now "
                          f"{target.provider}; run promptops plan again")
    require_committed_plan(plan, target, allow_dirty)
    provider = open_provider(target, project_config.root)
    with _closing(provider):
        with provider.lock(lock_timeout):
            check_fresh(plan, provider)
            if not plan.has_changes:
                _echo(rendering.summary_line(plan))
                return 0
            result = apply_plan(plan, provider, concurrency=target.concurrency, progress=_progress)
    _echo(f"\n{result.summary()}")
    return 0


def load_project_config(app: App) -> Config:
    """Only promptops.yaml (applying a saved plan or resolving does not read prompt files)."""
    config, diags = load_config(app.root.resolve())
    if any(d.severity == "error" for d in diags):
        raise ValidationFailed(diags)
    return config


def _confirm() -> bool:
    _echo("\nDo you want to perform these actions?\n  promptops will perform the actions described above.\n"
          "  Only 'yes' will be accepted to approve.\n\n  Enter a value: ", nl=False)
    answer = sys.stdin.readline()
    if not answer.endswith("\n"):
        _echo()
    return answer.strip() == "yes"


def _progress(message: str) -> None:
    _echo(message, err=True)


# --------------------------------------------------------------------------- render / resolve


@click.command("render")
@click.argument("name")
@click.option("--version", "version", metavar="V", help="Local version name (default: the only version, or the one `production` points at).")
@click.option("--label", metavar="L", help="Render the version this label points at in the file.")
@click.option("--var", "pairs", multiple=True, metavar="KEY=VALUE", help="A variable value (repeatable).")
@click.option("--vars", "vars_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Variable values from a YAML or JSON mapping.")
@click.option("--examples", is_flag=True, help="Use the `example:` of declared variables for values not given.")
@click.option("-t", "--target", "target_name", metavar="TARGET",
              help="Resolve composition references as this target's platform does (default: default_target).")
@common_options
@pass_app
def render_cmd(app: App, name: str, version: str | None, label: str | None, pairs: tuple[str, ...],
               vars_file: Path | None, examples: bool, target_name: str | None) -> int:
    """Print a prompt rendered locally with the given variables."""
    from .preview import preview

    project = _load(app).project
    target = project.config.target(target_name)
    _echo(preview(project, name, version=version, label=label, pairs=pairs, vars_file=vars_file,
                  examples=examples, target=target), nl=False)
    return 0


@click.command("resolve")
@click.argument("name")
@click.option("--user", required=True, metavar="ID", help="The user (or session) id to resolve for.")
@click.option("--label", default="production", show_default=True, metavar="L", help="Label to resolve.")
@click.option("-t", "--target", "target_name", metavar="TARGET", help="Target to read (default: default_target).")
@click.option("--json", "as_json", is_flag=True, help="Print the resolution as JSON.")
@common_options
@pass_app
def resolve_cmd(app: App, name: str, user: str, label: str, target_name: str | None, as_json: bool) -> int:
    """Which version USER gets for a label under its traffic split (sticky consistent hashing)."""
    from .preview import resolve_report

    config = load_project_config(app)
    target = config.target(target_name)
    provider = open_provider(target, config.root)
    try:
        _echo(resolve_report(provider, target, app.root, name, label, user, as_json=as_json), nl=False)
    finally:
        provider.close()
    return 0


# --------------------------------------------------------------------------- history


@click.command("history")
@click.argument("name")
@click.option("-t", "--target", "target_name", metavar="TARGET", help="Target to read (default: default_target).")
@click.option("--json", "as_json", is_flag=True, help="Print the history as JSON.")
@common_options
@pass_app
def history_cmd(app: App, name: str, target_name: str | None, as_json: bool) -> int:
    """What each label and traffic split of prompt NAME points at on the target, and the commit
    that created each version: which commit is live in production?"""
    from .history import fetch_prompt, render_history

    config = load_project_config(app)
    target = config.target(target_name)
    provider = open_provider(target, config.root)
    try:
        remote = fetch_prompt(provider, name, target)
    finally:
        provider.close()
    _echo(render_history(remote, target, as_json=as_json), nl=False)
    return 0


# --------------------------------------------------------------------------- import


@click.command("import")
@click.argument("names", nargs=-1, metavar="[NAMES]...")
@click.option("-t", "--target", "target_name", metavar="TARGET", help="Target to read (default: default_target).")
@click.option("--force", is_flag=True, help="Overwrite the files of prompts that already have one.")
@click.option("--dry-run", is_flag=True, help="Check everything and say what would be written; write nothing.")
@common_options
@pass_app
def import_cmd(app: App, names: tuple[str, ...], target_name: str | None, force: bool, dry_run: bool) -> int:
    """Write prompt files from what a target holds now (all its prompts, or NAMES): the versions its
    labels and traffic splits point at, so that `promptops plan` right after shows no changes.
    Existing files are kept unless --force. Exit 1 when any prompt was not imported."""
    from .importer import import_prompts

    config = load_project_config(app)
    target = config.target(target_name)
    provider = open_provider(target, config.root)
    try:
        _echo(f'Importing from target "{target.name}" ({target.provider})...\n', err=True)
        result = import_prompts(config, target, provider, names, force=force, dry_run=dry_run)
    finally:
        provider.close()
    verb = "would write" if dry_run else "wrote"
    for outcome in result.outcomes:
        if outcome.ok:
            replaced = " (replaced)" if outcome.replaced else ""
            _echo(f"{verb} {quote_path(str(outcome.path))}{replaced}: {outcome.detail}")
        else:
            _echo(f"Error: {outcome.error}", err=True)
    if not result.outcomes:
        _echo(f'Target "{target.name}" ({target.provider}) holds no prompts; nothing to import.')
        return 0
    done, failed = len(result.imported), len(result.failed)
    tail = f", {failed} not imported" if failed else ""
    if dry_run:
        _echo(f"\nDry run: {rendering.plural(done, 'prompt')} would be imported{tail}; nothing was written.")
    elif failed:  # never the success banner when something was refused (as terraform)
        _echo(f"\nImport incomplete: {rendering.plural(done, 'prompt')} imported{tail} (see the errors above).")
    else:
        _echo(f"\nImport complete! {rendering.plural(done, 'prompt')} imported.")
    if done and not dry_run:
        _echo(f"Run `{app.command(f'plan -t {target.name}')}`: it shows no changes for the imported prompts.")
    return 1 if failed else 0


# --------------------------------------------------------------------------- drift


@click.command("drift")
@click.option("-t", "--target", "target_name", metavar="TARGET", help="Target to check (default: default_target).")
@functools.partial(_ref_option, help="Compare with the files at this commit (default: HEAD; the work tree "
                                     "outside git).")
@_format_option
@common_options
@pass_app
def drift_cmd(app: App, target_name: str | None, ref: str | None, fmt: str, as_json: bool) -> int:
    """Exit 2 when the target differs from the committed files (for a scheduled CI job), naming
    what drifted; 0 when in sync; 1 on errors."""
    if ref is None and head(app.root) is not None:
        ref = "HEAD"  # what was merged, not what someone is editing
    desired = _load(app, ref=ref)
    config = desired.project.config
    target = config.target(target_name)
    provider = open_provider(target, config.root)
    try:
        plan = compute_plan(desired, target, provider, prune=False)
    finally:
        provider.close()
    fmt = "json" if as_json else fmt
    against = f"commit {plan.commit[:7]}" if plan.commit else "the files"
    if fmt == "json":
        _echo(_render(plan, fmt, app.color), nl=False)
    elif not plan.has_changes:
        _echo(f'No drift: target "{target.name}" ({target.provider}) matches {against}.')
    else:
        _echo(f'Drift detected: target "{target.name}" ({target.provider}) differs from {against}. '
              "Applying would make these changes:\n")
        _echo(_render(plan, fmt, app.color), nl=False)
    return 2 if plan.has_changes else 0
