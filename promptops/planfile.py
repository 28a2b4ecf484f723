"""Saved plan files: the plan JSON written atomically, read back and checked against the schema.

A plan file holds no credentials: only the target name and provider kind, the commit, the remote
snapshot of the prompts it touches and the full content of every version it creates.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .errors import ConfigError
from .model import PLAN_FORMAT_VERSION, Plan
from .schemas import validator


def write_plan(plan: Plan, path: Path) -> None:
    """Write ``plan`` to ``path`` atomically (a reader never sees half a file)."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(plan.to_json(), indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".promptops-plan-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_plan(path: Path) -> Plan:
    """Read a saved plan; ConfigError (exit 1) when the file is missing, not JSON, not a plan, or
    from an incompatible format version."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"plan file {path} not found; create one with `promptops plan -o {path}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read plan file {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: not a promptops plan file (invalid JSON: {exc.msg})") from None
    if not isinstance(data, dict) or "format_version" not in data:
        raise ConfigError(f"{path} is not a promptops plan file")
    if data["format_version"] != PLAN_FORMAT_VERSION:
        raise ConfigError(f"{path} has plan format version {data['format_version']!r}; this promptops reads "
                          f"version {PLAN_FORMAT_VERSION}. Run promptops plan again with this version")
    errors = sorted(validator("plan").iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise ConfigError(f"{path} is not a valid promptops plan file: at {where}: {errors[0].message}")
    return Plan.from_json(data)
