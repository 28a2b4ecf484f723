"""The provenance stamp on every version promptops creates (design.md section 3).

A stamp says where a version came from: the git commit (short sha, ``-dirty`` when the work tree
had uncommitted changes), its subject, the prompt file's path and the local version key. Platforms
with structured metadata keep the stamp as a mapping; platforms with only a commit message keep
:func:`message`, which :func:`parse_message` turns back into a stamp, so ``history`` and the
planner read both the same way.

The message puts the subject first, as git does, and the machine-readable part last::

    Tighten the refund tone [promptops 3f2c1ab prompts/support/reply.yaml#concise]

Within a platform's length limit the subject is shortened first, then the path (from the left),
and the commit and version key are kept whole.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

ELLIPSIS = "…"
_OPEN = "[promptops "
_TRAILER = re.compile(r"\[promptops (?P<commit>[0-9a-f]{4,40}(?:-dirty)?|-) (?P<path>.*)#(?P<version>[^\s#\]]+)\]")


def stamp(commit: str | None, subject: str | None, dirty: bool | None, path: str, version: str) -> dict[str, Any]:
    """The stamp for a version created from ``path``'s version ``version`` at ``commit``."""
    return {"commit": commit[:7] if commit else None, "dirty": bool(dirty), "subject": subject or None,
            "path": path, "version": version}


def commit_label(provenance: Mapping[str, Any] | None) -> str:
    """``3f2c1ab``, ``3f2c1ab-dirty``, or ``-`` when the version was created outside git."""
    if not provenance or not provenance.get("commit"):
        return "-"
    return provenance["commit"] + ("-dirty" if provenance.get("dirty") else "")


def message(provenance: Mapping[str, Any], limit: int | None = None) -> str:
    """The stamp as a one-line commit message of at most ``limit`` characters."""
    path = provenance.get("path") or ""
    # the first line only, whitespace collapsed, whatever the commit message said
    lines = (provenance.get("subject") or "").strip().splitlines()
    subject = " ".join(lines[0].split()) if lines else ""
    head = f"[promptops {commit_label(provenance)} "
    tail = f"#{provenance.get('version')}]"
    text = f"{subject} {head}{path}{tail}" if subject else f"{head}{path}{tail}"
    if limit is None or len(text) <= limit:
        return text
    fixed = len(head) + len(tail)
    room = limit - fixed - len(path)
    if subject and room >= 3:  # keep at least two characters of the subject and the ellipsis
        return f"{subject[: room - 2]}{ELLIPSIS} {head}{path}{tail}"
    room = limit - fixed
    if room >= len(path):
        return f"{head}{path}{tail}"
    if room >= 2:
        return f"{head}{ELLIPSIS}{path[len(path) - room + 1:]}{tail}"
    # no room for the path: the commit and the version key still fit (key_room), the path is left out
    return f"{head}{tail}"[:limit]


def key_room(limit: int) -> int:
    """The longest version key a stamp keeps whole in a message of ``limit`` characters (the
    commit marked dirty, the path left out)."""
    return limit - len(f"{_OPEN}{'0' * 7}-dirty #]")


def parse_message(text: str | None) -> dict[str, Any] | None:
    """The stamp in a commit message written by :func:`message`, or None for any other message
    (a version made outside promptops). A shortened subject or path stays shortened."""
    if not text:
        return None
    text = text.rstrip()
    start = text.rfind(_OPEN)  # the last one: a subject may mention "[promptops ...]" itself
    found = _TRAILER.fullmatch(text, start) if start >= 0 else None
    if not found or (start > 0 and not text[start - 1].isspace()):
        return None
    commit = found.group("commit")
    dirty = commit.endswith("-dirty")
    subject = text[:start].strip()
    return {"commit": None if commit == "-" else commit.removesuffix("-dirty"), "dirty": dirty,
            "subject": subject or None, "path": found.group("path"), "version": found.group("version")}
