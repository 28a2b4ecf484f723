"""`promptops render` and `promptops resolve`: look at a prompt the way an application would."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from . import composition
from .config import Target
from .errors import ConfigError, PromptOpsError
from .history import fetch_prompt
from .model import PromptSpec, VersionSpec
from .prompts import Project, load_project
from .render import remote_split, version_label
from .resolve import resolve
from .templates import render


def preview(project: Project, name: str, *, version: str | None, label: str | None, pairs: Sequence[str],
            vars_file: Path | None, examples: bool, target: Target | None = None) -> str:
    """The rendered prompt as text: a text prompt as is; a chat prompt as ``[role]`` blocks.

    With a ``target`` whose platform inlines composition references (``Capabilities.composition``),
    they are first replaced from the files, as that platform serves the prompt (the prompts the
    target manages; ConfigError when the files cannot tell, see :func:`composition.resolve`);
    variables are then rendered over the whole text, as the platform's SDKs do."""
    spec = _spec(project, name)
    chosen = _pick_version(spec, version, label)
    values = _values(spec, pairs, vars_file, examples)
    content = chosen.content
    if target is not None:
        managed = {s.name: s for s in project.specs if s.managed_by(target.name)}
        content = composition.resolve(content, managed, target.capabilities.composition, root=spec.name)
    fmt = content["template_format"]
    if content["type"] == "text":
        return _ensure_newline(render(content["template"], fmt, values))
    blocks = []
    for message in content["messages"]:
        if "placeholder" in message:
            blocks.append(f"[placeholder: {message['placeholder']}]\n")
        else:
            blocks.append(f"[{message['role']}]\n" + _ensure_newline(render(message["content"], fmt, values)))
    return "\n".join(blocks)


def _ensure_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _spec(project: Project, name: str) -> PromptSpec:
    for spec in project.specs:
        if spec.name == name:
            return spec
    raise ConfigError(f"no prompt named {name!r}; prompts: {', '.join(s.name for s in project.specs) or '(none)'}")


def _pick_version(spec: PromptSpec, version: str | None, label: str | None) -> VersionSpec:
    if version and label:
        raise ConfigError("give --version or --label, not both")
    if label:
        if label not in spec.labels:
            raise ConfigError(f"{spec.name} has no label {label!r}; labels: {', '.join(spec.labels) or '(none)'}")
        version = spec.labels[label]
    if version is None:
        if len(spec.versions) == 1:
            return next(iter(spec.versions.values()))
        if "production" in spec.labels:
            return spec.versions[spec.labels["production"]]
        raise ConfigError(f"{spec.name} has several versions; choose one with --version "
                          f"({', '.join(spec.versions)})")
    if version not in spec.versions:
        raise ConfigError(f"{spec.name} has no version {version!r}; versions: {', '.join(spec.versions)}")
    return spec.versions[version]


def _values(spec: PromptSpec, pairs: Sequence[str], vars_file: Path | None, examples: bool) -> dict[str, Any]:
    """Variable values: --vars file, then --var pairs (which win); declared examples fill gaps with
    --examples. A --var value is typed by the declared variable type (number, boolean, ...)."""
    declared = spec.variables or {}
    values: dict[str, Any] = {}
    if examples:
        values.update({k: v["example"] for k, v in declared.items() if "example" in v})
    if vars_file is not None:
        values.update(_read_vars(vars_file))
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--var {pair!r} is not KEY=VALUE")
        values[key] = _typed(raw, declared.get(key, {}).get("type", "string"), key)
    return values


def _read_vars(path: Path) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML/JSON: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of variable names to values")
    return data


def _typed(raw: str, kind: str, key: str) -> Any:
    if kind == "string":
        return raw
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = None
    expected = {"number": (int, float), "integer": (int,), "boolean": (bool,), "array": (list,), "object": (dict,)}
    ok = isinstance(value, expected.get(kind, (object,))) and not (kind in ("number", "integer") and isinstance(value, bool))
    if not ok:
        raise ConfigError(f"--var {key}={raw!r}: variable {key!r} is declared as {kind}")
    return value


def resolve_report(provider: Any, target: Target, root: Path, name: str, label: str, user: str, *,
                   as_json: bool) -> str:
    """Which version ``user`` gets for ``label``, read from the target (local names added from the
    files when they load)."""
    remote = fetch_prompt(provider, name, target)
    by_platform = target.capabilities.server_resolve
    if by_platform:
        # the platform assigns users itself; promptops reports its answer, not a local hash
        version_id, b = provider.resolve_user(name, label, user), None
        weights = remote.traffic.get(label)
    else:
        result = resolve(remote, label, user)
        version_id, b, weights = result.version_id, result.bucket, result.weights
    keys = _local_keys(root, name)
    version = remote.version(version_id)
    key = keys.get(version.digest) if version else None
    if as_json:
        return json.dumps({"prompt": name, "label": label, "user": user, "remote_version": version_id,
                           "version": key, "bucket": b, "weights": dict(weights) if weights else None,
                           "resolved_by": target.provider if by_platform else "promptops"},
                          indent=2) + "\n"
    shown = version_label(version_id) + (f" ({key})" if key else "")
    lines = [f"{name} {label} -> {shown} for user {user!r}"]
    if weights and by_platform:
        lines.append(f"  assigned by {target.provider} itself under the split {remote_split(weights)}")
    elif by_platform and remote.labels.get(label) not in (None, version_id):
        # a split the API does not show (PromptLayer's A/B releases are set in its web app)
        lines.append(f"  assigned by {target.provider} itself: the label points at "
                     f"{version_label(remote.labels[label])}, and a split made in the platform serves this user "
                     f"{version_label(version_id)}")
    elif by_platform:
        lines.append(f"  assigned by {target.provider} itself (no split shown by its API)")
    elif weights:
        lines.append(f"  bucket {b} of 10000 under the split {remote_split(weights)}")
    else:
        lines.append("  no traffic split: every user gets this version")
    return "\n".join(lines) + "\n"


def _local_keys(root: Path, name: str) -> dict[str, str]:
    """digest -> local version key from the files, or {} when the files do not load."""
    try:
        project = load_project(root)
    except PromptOpsError:
        return {}
    for spec in project.specs:
        if spec.name == name:
            return {v.digest: k for k, v in spec.versions.items()}
    return {}
