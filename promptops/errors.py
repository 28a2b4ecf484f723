"""The promptops error tree and the located diagnostic.

Every error a user can cause derives from :class:`PromptOpsError`; the CLI boundary
(`promptops.cli`) maps those to exit code 1 and anything else to exit code 3 (a bug).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

# git's C-style escapes (quote.c); every other character that needs quoting is written as octal
# bytes, as git does.
_NAMED_ESCAPES = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f",
                  "\r": "\\r", '"': '\\"', "\\": "\\\\"}


def quote_path(name: str) -> str:
    """``name`` (a file or folder name, or a path) as it can be printed on a terminal, the way git
    quotes paths: unchanged when every character prints, else in double quotes with C escapes
    (``"a\\nb.yaml"``, ``"a\\033[31m.yaml"``). What gets escaped: control characters and line
    breaks (they would forge or split output lines, or drive the terminal), other characters that
    do not print (zero-width, bidirectional overrides), the bytes of a name that is not UTF-8
    (Python holds them as lone surrogates, which cannot be written at all; git prints ``\\351``
    for the byte 0xe9, and so does this), and ``"`` and ``\\`` themselves, so that a quoted name reads
    back unambiguously. Printable non-ASCII (``café.yaml``) stays as written.

    Every message that names a file or folder goes through here (:meth:`Diagnostic.format` does
    it for the file of a diagnostic)."""
    if all(c.isprintable() and c not in '"\\' for c in name):
        return name
    out = []
    for c in name:
        if c in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[c])
        elif c.isprintable():
            out.append(c)
        else:
            out.extend(f"\\{b:03o}" for b in _bytes_of(c))
    return '"' + "".join(out) + '"'


def _bytes_of(char: str) -> bytes:
    """The bytes a name's character stands for: the original byte of an undecodable one."""
    try:
        return os.fsencode(char)
    except UnicodeEncodeError:  # a surrogate no file system decoding produced
        return char.encode("utf-8", "surrogatepass")


SHOWN = 60  # at most this many characters of a value are echoed in a message


def clip(text: str) -> str:
    """``text`` cut to its first ``SHOWN`` characters (marked with "…") when longer: a message
    names a value, it does not repeat a megabyte of it. For values a message quotes with ``!r``
    (repr escapes what does not print); ``schemas.show`` clips by itself."""
    return text if len(text) <= SHOWN else text[:SHOWN] + "…"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in a file, reported as ``file:line:column: severity: message``.

    ``line`` and ``column`` are 1-based; 0 means "the whole file". ``hint`` says how to fix it.
    """

    file: str
    line: int
    column: int
    message: str
    hint: str = ""
    severity: str = "error"

    def format(self) -> str:
        """Return the compiler-style one-line form (plus the hint on the same line)."""
        where = quote_path(self.file)
        if self.line:
            where += f":{self.line}:{self.column or 1}"
        text = f"{where}: {self.severity}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class PromptOpsError(Exception):
    """A problem the user can fix; the message says what to do next. Exit code 1."""

    exit_code = 1


class ValidationFailed(PromptOpsError):
    """Prompt files or promptops.yaml are invalid; carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(sorted(diagnostics))
        errors = sum(1 for d in self.diagnostics if d.severity == "error")
        files = len({d.file for d in self.diagnostics if d.severity == "error"})
        super().__init__(f"{errors} error{'s' if errors != 1 else ''} in {files} file{'s' if files != 1 else ''}")


class ConfigError(PromptOpsError):
    """promptops.yaml or a command-line option is wrong (no file position available)."""


class PlanError(PromptOpsError):
    """The desired state cannot be planned for a target (e.g. a capability it lacks)."""


class StalePlanError(PromptOpsError):
    """A saved plan no longer matches the remote state."""


class ProviderError(PromptOpsError):
    """A remote or registry call failed. ``ambiguous`` means it may have taken effect; ``status``
    is the platform's HTTP status when it answered. ``pending`` (ambiguous too): the answer timed
    out, so the platform may still be carrying the request out; a look-up now may not see it yet,
    and sending it again could make it twice."""

    def __init__(self, message: str, *, ambiguous: bool = False, status: int | None = None,
                 pending: bool = False):
        super().__init__(message)
        self.ambiguous = ambiguous or pending
        self.status = status
        self.pending = pending

    @property
    def deterministic(self) -> bool:
        """A refusal that the same request gets again (a 4xx other than 408 timeout, 409 conflict
        and 429 rate limit): running again cannot help, something must change first."""
        return self.status is not None and 400 <= self.status < 500 and self.status not in (408, 409, 429)


class Interrupted(ProviderError):
    """A call given up because the run was interrupted (Ctrl-C) before it was sent, or while it
    waited to be sent again (a retry's backoff, a rate limit, pacing): that attempt did not take
    effect. Never ambiguous by itself; apply still counts a create as "may have been applied" when
    an earlier attempt of it was."""


class ApplyFailed(PromptOpsError):
    """Apply stopped part-way. ``done``, ``maybe`` and ``not_done`` describe the actions: applied,
    possibly applied (an ambiguous failure: the request may have landed, and the next apply finds
    a created version by its digest), and certainly not applied. Every action is in one list.
    ``abandoned``: a second Ctrl-C stopped waiting for calls still in flight (listed in ``maybe``)."""

    def __init__(self, cause: BaseException, done: list[str], not_done: list[str], *, interrupted: bool = False,
                 maybe: list[str] | None = None, abandoned: bool = False):
        super().__init__("interrupted (Ctrl-C)" if interrupted else str(cause))
        self.cause = cause
        self.done = done
        self.not_done = not_done
        self.maybe = list(maybe or ())
        self.interrupted = interrupted
        self.abandoned = abandoned
