"""``promptops history NAME``: what each label and traffic split of a prompt points at on a target,
and the commit that created each version (from its provenance stamp), so "which commit is live in
production?" has a one-command answer. It reads the target only; no git is needed.
"""
from __future__ import annotations

import difflib
import json
from datetime import datetime, timezone
from typing import Any, Mapping

from .config import Target
from .errors import PromptOpsError
from .model import RemotePrompt, RemoteVersion
from .provenance import commit_label
from .render import esc, version_label

OUTSIDE = "(made outside promptops)"


def fetch_prompt(provider: Any, name: str, target: Target) -> RemotePrompt:
    """The prompt as ``target`` holds it; an error naming close matches when it does not exist."""
    remote = provider.read([name]).prompts.get(name)
    if remote is not None:
        return remote
    close = difflib.get_close_matches(name, provider.list_names(), n=3)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else "; run promptops apply first"
    raise PromptOpsError(f"prompt {name!r} does not exist on target {target.name!r} ({target.provider}){hint}")


def history_json(remote: RemotePrompt, target: Target) -> dict[str, Any]:
    """The history as data: ``labels`` (label -> version), ``traffic`` (label -> versions with
    weights), ``versions`` newest first; each version with its provenance fields."""
    return {
        "prompt": remote.name,
        "target": target.name,
        "provider": target.provider,
        "labels": {label: _version_json(remote, vid) for label, vid in sorted(remote.labels.items())},
        "traffic": {label: [dict(_version_json(remote, vid), weight=w) for vid, w in _by_weight(split)]
                    for label, split in sorted(remote.traffic.items())},
        "versions": [_version_json(remote, v.id) for v in reversed(remote.versions)],
    }


def _version_json(remote: RemotePrompt, version_id: str) -> dict[str, Any]:
    version = remote.version(version_id)
    stamp: Mapping[str, Any] = (version.provenance or {}) if version else {}
    return {"remote_version": version_id, "version": stamp.get("version"), "commit": stamp.get("commit"),
            "dirty": bool(stamp.get("dirty")), "subject": stamp.get("subject"), "path": stamp.get("path"),
            "created_at": version.created_at if version else None,
            "made_by_promptops": bool(version and version.provenance is not None)}


def history_text(remote: RemotePrompt, target: Target) -> str:
    """The history as aligned tables: what is live (labels and splits), then every version."""
    live = [("LABEL", "VERSION", "WEIGHT", "COMMIT", "CREATED", "SUBJECT")]
    for label, vid in sorted(remote.labels.items()):
        live.append((label, *_row(remote, vid, "")))
    for label, split in sorted(remote.traffic.items()):
        for vid, weight in _by_weight(split):
            live.append((f"{label} (split)", *_row(remote, vid, f"{weight}%")))
    out = [f'History of prompt "{esc(remote.name)}" on target "{target.name}" ({target.provider})', ""]
    if len(live) > 1:
        out += ["Live:"] + _table(live)
    else:
        out.append("Live: no labels or traffic splits point at any version.")
    versions = [("VERSION", "COMMIT", "CREATED", "SUBJECT", "FILE")]
    for v in reversed(remote.versions):
        stamp = v.provenance or {}
        versions.append((_shown(remote, v.id), commit_label(v.provenance), _when(v),
                         esc(stamp.get("subject") or "") if v.provenance else OUTSIDE, esc(stamp.get("path") or "")))
    out += ["", f"Versions, newest first ({len(remote.versions)}):"] + _table(versions)
    return "\n".join(out) + "\n"


def render_history(remote: RemotePrompt, target: Target, *, as_json: bool) -> str:
    if as_json:
        return json.dumps(history_json(remote, target), indent=2, ensure_ascii=False) + "\n"
    return history_text(remote, target)


def _by_weight(split: Mapping[str, int]) -> list[tuple[str, int]]:
    """A split's versions, heaviest first (then by id), whatever order the platform lists them in."""
    return sorted(split.items(), key=lambda item: (-item[1], item[0]))


def _row(remote: RemotePrompt, version_id: str, weight: str) -> tuple[str, ...]:
    version = remote.version(version_id)
    if version is None:  # a pointer at a version the platform no longer lists
        return (version_label(version_id), weight, "?", "", "(version not found)")
    subject = esc(version.provenance.get("subject") or "") if version.provenance else OUTSIDE
    return (_shown(remote, version_id), weight, commit_label(version.provenance), _when(version), subject)


def _shown(remote: RemotePrompt, version_id: str) -> str:
    version = remote.version(version_id)
    key = (version.provenance or {}).get("version") if version else None
    return version_label(version_id) + (f" ({esc(key)})" if key else "")


def _when(version: RemoteVersion) -> str:
    """Creation time in UTC to the minute, or the platform's text when it is not ISO-8601."""
    if not version.created_at:
        return ""
    try:
        moment = datetime.fromisoformat(version.created_at.replace("Z", "+00:00"))
    except ValueError:
        return esc(version.created_at)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M")


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as left-aligned columns, two spaces apart, indented; empty trailing cells trimmed."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
