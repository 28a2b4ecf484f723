"""``promptops import``: prompt files from what a target holds now (design.md section 2).

For each prompt (the named ones, or every prompt on the target) import writes
``<prompts>/<name>.yaml`` holding its *live* versions, the ones the labels the target manages and
its traffic splits point at, with those labels and splits, and the tags and description where the
target's provider stores them, so that ``plan`` right after shows no changes. A prompt that no
label or split points at gets its newest version, with no labels.

Version keys are the local keys promptops stamped on the versions it created (the provenance
stamp), else made from the remote id (``3`` -> ``v3``). Model config and tools are written on the
prompt when every version has the same, else on each version. One version and no split: the short
form (``template:``/``messages:`` and ``labels: [...]``).

Nothing is written that was not checked: each file is rendered, read back with the real loader
(validation included, against every target of the project) in a scratch copy of the project,
and planned against the remote prompt it came from; only a file whose versions have the remote
digests and whose plan is empty is written, and the written file is read back again. A prompt
that fails a check is reported with the reason and nothing is written for it; the others are
still imported (terraform's partial results), and the command exits 1.

Files are never overwritten without ``force``: not the file at the prompt's path, and not a file
elsewhere in the prompts folder that declares the same name (with ``force`` that file is the one
rewritten, in its place). A file that declares *another* prompt is never overwritten. A write is
atomic: a complete file or none.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from .config import Config, Target
from .digest import canonical_json, content_digest
from .errors import Diagnostic
from .model import RemotePrompt, RemoteVersion
from .plan import plan_prompt
from .prompts import _peek_name, _valid_name, discover, load_prompt_file
from .provenance import key_room
from .render import describe_action, plural, version_label
from .yamlload import load_yaml

KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SUFFIX = ".yaml"
NAME_MAX = 255  # bytes in one file name on common file systems
OUTSIDE = "made outside promptops"


class NotImportable(Exception):
    """The prompt cannot be written as a file that plans clean; the message says why."""


# --------------------------------------------------------------------------- results


@dataclass
class Outcome:
    """What happened to one prompt: ``path`` (project-relative) is set when a file was (or, in a
    dry run, would be) written; ``error`` when it was not."""

    name: str
    path: str | None = None
    detail: str = ""
    replaced: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ImportResult:
    target: Target
    outcomes: list[Outcome] = field(default_factory=list)
    dry_run: bool = False

    @property
    def imported(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.ok]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]


# --------------------------------------------------------------------------- the command


def import_prompts(config: Config, target: Target, provider: Any, names: Sequence[str] = (), *,
                   force: bool = False, dry_run: bool = False, now: datetime | None = None) -> ImportResult:
    """Import ``names`` (every prompt on the target when empty) into ``config``'s prompts folder."""
    result = ImportResult(target=target, dry_run=dry_run)
    wanted = list(dict.fromkeys(names))
    remote = provider.read(wanted or None).prompts
    stamp_time = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    known: list[str] | None = None
    for name in wanted:
        if name not in remote:
            if known is None:
                known = provider.list_names()
            result.outcomes.append(Outcome(name, error=_unknown(name, known, target)))
    existing = _existing_names(config)
    scratch = Path(tempfile.mkdtemp(prefix="promptops-import-")).resolve()
    try:
        for name in sorted(remote):
            outcome = _import_one(config, target, remote[name], existing, scratch, force=force, dry_run=dry_run,
                                  when=stamp_time)
            result.outcomes.append(outcome)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    order = {n: i for i, n in enumerate(wanted)}
    result.outcomes.sort(key=lambda o: (order.get(o.name, len(order)), o.name))
    return result


def _unknown(name: str, known: Sequence[str], target: Target) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else (
        "" if known else "; it holds no prompts")
    return f"prompt {name!r} does not exist on target {target.name!r} ({target.provider}){hint}"


def _import_one(config: Config, target: Target, remote: RemotePrompt, existing: dict[str, list[Path]],
                scratch: Path, *, force: bool, dry_run: bool, when: str) -> Outcome:
    name = remote.name
    outcome = Outcome(name)
    try:
        if not _valid_name(name):
            raise NotImportable(f"its name {json.dumps(name, ensure_ascii=False)} is not a valid prompt name in the "
                                "file format (portable ASCII: letters, digits, '_', '-', '.' in '/'-separated parts); "
                                "rename it on the platform, then import it")
        dest, replaced = _destination(config, name, existing, force)
        rel_in_prompts = dest.relative_to(config.prompts_dir).with_suffix("").as_posix()
        draft = draft_prompt(remote, target, name_in_file=rel_in_prompts != name, when=when)
        text = draft.text
        problems = _check(text, dest, config, target, remote, scratch)
        if problems and len(config.targets) > 1:
            # Another target of the project may be unable to hold what this one does: keep the
            # file to this target (targets: [...]) rather than refuse it. What is still wrong
            # then is about this target alone, and is what gets reported.
            draft = draft_prompt(remote, target, name_in_file=rel_in_prompts != name, when=when, only_target=True)
            text = draft.text
            problems = _check(text, dest, config, target, remote, scratch)
        if problems:
            raise NotImportable(problems[0])
        rel = _display(dest, config.root)
        outcome.path, outcome.replaced, outcome.detail = rel, replaced, draft.summary
        if dry_run:
            return outcome
        _write(dest, text, overwrite=replaced)
        problems = _check_file(dest, config, target, remote)
        if problems:  # cannot happen when the scratch check passed; never leave a file that plans wrong
            if not replaced:
                dest.unlink(missing_ok=True)
            raise NotImportable(f"the written file {rel} did not read back as the remote: {problems[0]}")
        existing.setdefault(name, []).append(dest)
    except NotImportable as exc:
        return Outcome(name, error=f"{name}: not imported: {exc}")
    except _Refused as exc:
        return Outcome(name, error=str(exc))
    except FileExistsError:
        return Outcome(name, error=f"{name}: not imported: {_display(dest, config.root)} appeared while importing "
                                   "(--force overwrites it)")
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        return Outcome(name, error=f"{name}: not imported: cannot write the file: {exc.strerror or exc}{where}")
    return outcome


# --------------------------------------------------------------------------- where the file goes


class _Refused(Exception):
    """A file is in the way (the message names it and says what to do)."""


def _existing_names(config: Config) -> dict[str, list[Path]]:
    """name -> the prompt files that declare it (by ``name:`` or by their path)."""
    found: dict[str, list[Path]] = {}
    if not config.prompts_dir.is_dir():
        return found
    for path in discover(config.prompts_dir):
        peeked = _peek_name(path, config)
        if peeked is not None:
            found.setdefault(peeked[0], []).append(path)
    return found


def _default_path(config: Config, name: str) -> Path:
    """``<prompts>/<name>.yaml``; a file name too long for the file system is shortened (with a
    hash of the name, so it stays unique) and the file then says ``name:``."""
    parts = name.split("/")
    last = parts[-1]
    if len((last + SUFFIX).encode()) > NAME_MAX:
        last = f"{last[:200]}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"
    return config.prompts_dir.joinpath(*parts[:-1], last + SUFFIX)


def _destination(config: Config, name: str, existing: dict[str, list[Path]], force: bool) -> tuple[Path, bool]:
    """The file to write and whether it replaces one (only with ``force``). _Refused when a file
    is in the way."""
    declared = existing.get(name, [])
    if len(declared) > 1:
        files = ", ".join(_display(p, config.root) for p in declared)
        raise _Refused(f"{name}: not imported: prompt {name!r} is declared by several files ({files}); "
                       "fix that first (promptops validate)")
    if declared:
        path = declared[0]
        rel = _display(path, config.root)
        if not force:
            raise _Refused(f"{name}: not imported: {rel} already declares prompt {name!r} (--force overwrites it "
                           "with what the target holds)")
        return path, True
    path = _default_path(config, name)
    if path.exists() or path.is_symlink():
        rel = _display(path, config.root)
        other = _peek_name(path, config) if path.is_file() else None
        if other is not None and other[0] != name:
            raise _Refused(f"{name}: not imported: {rel} exists and declares prompt {other[0]!r}; "
                           "--force never overwrites another prompt's file: move or rename it first")
        if not path.is_file():
            raise _Refused(f"{name}: not imported: {rel} exists and is not a file")
        if not force:
            raise _Refused(f"{name}: not imported: {rel} exists (--force overwrites it)")
        return path, True
    for parent in path.relative_to(config.prompts_dir).parents:
        folder = config.prompts_dir / parent
        if folder.exists() and not folder.is_dir():
            raise _Refused(f"{name}: not imported: {_display(folder, config.root)} is a file, not a folder, "
                           f"so {_display(path, config.root)} cannot be written")
    return path, False


def _display(path: Path, root: Path) -> str:
    try:
        return Path(os.path.abspath(path)).relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(os.path.relpath(os.path.abspath(path), root.resolve())).as_posix()


def _write(dest: Path, text: str, *, overwrite: bool) -> None:
    """Write ``text`` to ``dest`` atomically (a complete file or none). Without ``overwrite`` an
    existing file is never replaced, even one created since it was checked."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".promptops-import-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if overwrite:
            os.replace(tmp, dest)
            return
        try:
            os.link(tmp, dest)  # FileExistsError if dest exists: no race with another writer
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links
            with open(dest, "x", encoding="utf-8", newline="") as handle:
                handle.write(text)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


# --------------------------------------------------------------------------- checks


def _check(text: str, dest: Path, config: Config, target: Target, remote: RemotePrompt, scratch: Path) -> list[str]:
    """Problems of ``text`` as the file ``dest``: loaded in a scratch copy of the project (same
    prompts-relative path, same targets), validated, and planned against ``remote``."""
    rel = dest.relative_to(config.prompts_dir)
    shadow = dataclasses.replace(config, root=scratch, prompts="prompts")
    path = shadow.prompts_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")
    try:
        return _check_file(path, shadow, target, remote)
    finally:
        path.unlink(missing_ok=True)


def _check_file(path: Path, config: Config, target: Target, remote: RemotePrompt) -> list[str]:
    spec, diagnostics = load_prompt_file(path, config)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors or spec is None:
        return [_diagnostic_reason(errors)]
    if spec.name != remote.name:
        return [f"the file reads as prompt {spec.name!r}, not {remote.name!r}"]
    remote_digests = {v.digest for v in remote.versions}
    missing = [k for k, v in spec.versions.items() if v.digest not in remote_digests]
    if missing:
        return [f"version {missing[0]!r} of the file does not read back with the digest of any remote version"]
    actions, _warnings = plan_prompt(spec, remote, target)
    if actions:
        return ["a plan right after would not be empty: " + "; ".join(describe_action(a) for a in actions[:3])]
    return []


def _diagnostic_reason(errors: Sequence[Diagnostic]) -> str:
    if not errors:
        return "the file does not load"
    shown = [d.message + (f" ({d.hint})" if d.hint else "") for d in errors[:3]]
    more = f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
    return "the file would not validate: " + "; ".join(shown) + more


# --------------------------------------------------------------------------- the file's content


@dataclass(frozen=True)
class Draft:
    """One prompt file: its YAML ``text`` and a one-line ``summary`` for the output."""

    text: str
    summary: str
    keys: Mapping[str, str]  # remote version id -> version key (every live id)


@dataclass
class _Group:
    """Live remote versions with one content (a file holds each content once)."""

    digest: str
    version: RemoteVersion  # the newest of them
    ids: list[str]
    position: int  # index of ``version`` in the remote's creation order
    members: list[RemoteVersion] = field(default_factory=list)
    key: str = ""


def live(remote: RemotePrompt, target: Target) -> tuple[dict[str, str], dict[str, dict[str, int]], list[str], bool]:
    """(labels, traffic, live version ids in creation order, latest_only): what the target's
    managed labels and splits point at; the newest version alone when nothing does."""
    caps = target.capabilities
    labels = {label: rid for label, rid in sorted(remote.labels.items()) if target.manages_label(label)}
    traffic = {label: dict(split) for label, split in sorted(remote.traffic.items())
               if caps.traffic and target.manages_label(label) and split}
    for label, split in traffic.items():
        if label in labels:
            continue
        if caps.labels == "single":
            # the pointer is the deployment: a split alone is how the platform serves the label,
            # and the file names a version for the label, served once the split ends
            labels[label] = max(split, key=lambda rid: (split[rid], -_index(remote, rid)))
        else:
            raise NotImportable(f"label {label!r} has a traffic split but does not point at a version itself, which "
                                f"a file cannot say (labels: needs {label!r}); point it at a version on the target, "
                                "then import")
    ids = set(labels.values()) | {rid for split in traffic.values() for rid in split}
    for rid in sorted(ids):
        if remote.version(rid) is None:
            raise NotImportable(f"a label or traffic split points at version {version_label(rid)}, which the target "
                                "does not list")
    if not ids:
        if not remote.versions:
            raise NotImportable("it has no versions")
        return labels, traffic, [remote.versions[-1].id], True
    return labels, traffic, [v.id for v in remote.versions if v.id in ids], False


def _index(remote: RemotePrompt, rid: str) -> int:
    return next((i for i, v in enumerate(remote.versions) if v.id == rid), -1)


def draft_prompt(remote: RemotePrompt, target: Target, *, name_in_file: bool = False, when: str = "",
                 only_target: bool = False) -> Draft:
    """The prompt file for ``remote`` as ``target`` holds it. NotImportable when its live versions
    cannot be written as one file (the checks that need the loader and the planner come after)."""
    labels, traffic, ids, latest_only = live(remote, target)
    groups = _groups(remote, ids)
    types = {g.version.content.get("type") for g in groups}
    formats = {g.version.content.get("template_format") for g in groups}
    if len(types) > 1 or len(formats) > 1:
        which = ", ".join(f"{_shown(g.version.id)}: {g.version.content.get('type')} "
                          f"{g.version.content.get('template_format')}" for g in groups)
        raise NotImportable(f"its live versions differ in type or template format ({which}); a file declares one "
                            "of each")
    _assign_keys(groups, target)
    key_of = {rid: g.key for g in groups for rid in g.ids}
    file_traffic: dict[str, dict[str, int]] = {}
    for label, split in traffic.items():
        weights: dict[str, int] = {}
        for rid in sorted(split, key=lambda r: _index(remote, r)):
            key = key_of[rid]
            if key in weights:
                raise NotImportable(f"the traffic split of {label!r} names versions with the same content "
                                    f"({', '.join(_shown(r) for r in split if key_of[r] == key)}), which a file "
                                    "cannot tell apart")
            weights[key] = split[rid]
        file_traffic[label] = weights
    ptype = types.pop()
    fmt = formats.pop()

    data: dict[str, Any] = {}
    if name_in_file:
        data["name"] = remote.name
    data["type"] = ptype
    if fmt != "mustache":
        data["template_format"] = fmt
    caps = target.capabilities
    if "description" in caps.metadata and remote.description:
        data["description"] = remote.description
    if "tags" in caps.metadata and remote.tags:
        data["tags"] = _Flow(sorted(remote.tags))
    if only_target:
        data["targets"] = _Flow([target.name])
    short = len(groups) == 1 and not file_traffic
    hoisted = {part: _common(groups, part) for part in ("model", "tools")}
    for part in ("model", "tools"):
        if short or hoisted[part] is not None:
            value = groups[0].version.content.get(part)
            if value:
                data[part] = _sorted(value)
    if short:
        body = _body(groups[0].version.content)
        data.update(body)
        if labels:
            data["labels"] = _Flow(sorted(labels))
    else:
        versions: dict[str, Any] = {}
        for g in groups:
            entry = _body(g.version.content)
            for part in ("model", "tools"):
                value = g.version.content.get(part)
                if hoisted[part] is None and value:
                    entry[part] = _sorted(value)
            versions[g.key] = entry
        data["versions"] = versions
        if labels:
            data["labels"] = {label: key_of[rid] for label, rid in sorted(labels.items())}
        if file_traffic:
            data["traffic"] = {label: _FlowMap(w) for label, w in sorted(file_traffic.items())}
    header = _header(remote, target, groups, short, latest_only, when)
    text = header + dump_yaml(data)
    return Draft(text=text, summary=_summary(groups, labels, file_traffic, short, latest_only), keys=key_of)


def _groups(remote: RemotePrompt, ids: Iterable[str]) -> list[_Group]:
    by_digest: dict[str, _Group] = {}
    for rid in ids:
        version = remote.version(rid)
        assert version is not None
        try:
            digest = content_digest(version.content)
        except (ValueError, KeyError, TypeError):
            digest = None
        if digest != version.digest:
            raise NotImportable(f"version {_shown(rid)} holds what a prompt file cannot express (the target reads "
                                "it with a digest of its own: made outside promptops with features promptops does "
                                "not write)")
        position = _index(remote, rid)
        group = by_digest.get(digest)
        if group is None:
            by_digest[digest] = _Group(digest, version, [rid], position, [version])
        else:
            group.ids.append(rid)
            group.members.append(version)
            if position > group.position:
                group.version, group.position = version, position
    return sorted(by_digest.values(), key=lambda g: g.position)


def _assign_keys(groups: list[_Group], target: Target) -> None:
    """Keys from the provenance stamps (else the remote ids), valid and unique; the newest
    version keeps a contested key."""
    limit = target.capabilities.message_limit
    room = min(64, key_room(limit)) if limit else 64
    taken: set[str] = set()
    for g in sorted(groups, key=lambda g: -g.position):
        # the newest stamp among the versions with this content
        newest_first = [g.version] + [m for m in reversed(g.members) if m is not g.version]
        stamped = [v for v in newest_first if v.provenance and v.provenance.get("version")]
        base = _key(str(stamped[0].provenance["version"]), room) if stamped else None
        fallback = _id_key(g.version.id, room)
        key = base or fallback
        if key in taken:
            key = (_key(f"{base}-{fallback}", room) if base else None) or key
        n = 2
        stem = key
        while key in taken:
            suffix = f"-{n}"
            key = stem[: room - len(suffix)] + suffix
            n += 1
        taken.add(key)
        g.key = key


def _key(text: str, room: int) -> str | None:
    """``text`` as a version key (the schema's pattern), or None when nothing of it is usable."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).lstrip("_.-")[:room]
    return cleaned if cleaned and KEY_PATTERN.fullmatch(cleaned) else None


def _id_key(rid: str, room: int) -> str:
    if re.fullmatch(r"[0-9]+", rid):
        return f"v{rid}"[:room]
    return _key(rid, room) or f"v{hashlib.sha256(rid.encode()).hexdigest()[:12]}"


def _common(groups: Sequence[_Group], part: str) -> Any:
    """The model config (or tools) every group has, when they all have the same, else None."""
    values = [g.version.content.get(part) or ({} if part == "model" else []) for g in groups]
    first = canonical_json(values[0])  # "the same" as the digest means it
    return values[0] if all(canonical_json(v) == first for v in values) else None


def _body(content: Mapping[str, Any]) -> dict[str, Any]:
    if content.get("type") == "chat" or "messages" in content:
        messages = []
        for m in content.get("messages") or ():
            messages.append({"placeholder": m["placeholder"]} if "placeholder" in m
                            else {"role": m["role"], "content": m["content"]})
        return {"messages": messages}
    return {"template": content.get("template", "")}


def _sorted(value: Any) -> Any:
    """Mappings with sorted keys, all the way down (list order is content and is kept)."""
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_sorted(v) for v in value]
    return value


def _shown(rid: str) -> str:
    return _one_line(version_label(rid))


def _one_line(text: str) -> str:
    return "".join(ch if ch.isprintable() else json.dumps(ch)[1:-1] for ch in text)


def _header(remote: RemotePrompt, target: Target, groups: Sequence[_Group], short: bool, latest_only: bool,
            when: str) -> str:
    lines = [f"# Imported by `promptops import` from target {json.dumps(target.name)} ({target.provider})"
             + (f" at {when}" if when else "") + "."]
    parts = []
    for g in groups:
        ids = ", ".join(_shown(r) for r in g.ids)
        outside = f", {OUTSIDE}" if g.version.provenance is None else ""
        parts.append((f"remote {ids}" if short else f"{g.key} = remote {ids}") + outside)
    lines.append(("# Version: " if short else "# Versions: ") + "; ".join(parts) + ".")
    if latest_only:
        lines.append("# No label or traffic split points at a version: this is the newest, with no labels.")
    return "\n".join(lines) + "\n"


def _summary(groups: Sequence[_Group], labels: Mapping[str, str], traffic: Mapping[str, Any], short: bool,
             latest_only: bool) -> str:
    versions = ", ".join(
        (_shown(g.version.id) if short else f"{g.key} = {', '.join(_shown(r) for r in g.ids)}")
        + (f" ({OUTSIDE})" if g.version.provenance is None else "") for g in groups)
    text = f"{plural(len(groups), 'version')} ({versions})"
    if labels:
        text += f", {plural(len(labels), 'label')} ({', '.join(sorted(labels))})"
    if traffic:
        text += f", {plural(len(traffic), 'traffic split')} ({', '.join(sorted(traffic))})"
    if latest_only:
        text += "; no label or traffic split points at a version, so this is the newest, with no labels"
    return text


# --------------------------------------------------------------------------- YAML


class _Flow(list):
    """A list written in flow style: ``[a, b]``."""


class _FlowMap(dict):
    """A mapping written in flow style: ``{a: 90, b: 10}``."""


# Characters written as escapes in double quotes: whitespace other than space and line feed,
# controls, invisible (format, separator, unassigned, private) characters. A reviewer sees them.
_EXTRA_INVISIBLE = frozenset("\u034f\u115f\u1160\u3164\uffa0")
_NAMED = {"\0": "0", "\x07": "a", "\x08": "b", "\t": "t", "\n": "n", "\x0b": "v", "\x0c": "f", "\r": "r",
          "\x1b": "e", '"': '"', "\\": "\\", "\x85": "N", "\xa0": "_", "\u2028": "L", "\u2029": "P"}


def _invisible(ch: str) -> bool:
    if ch == " " or ch == "\n":
        return False
    return ch in _EXTRA_INVISIBLE or unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp", "Co", "Cn", "Cs")


def _needs_quotes(text: str) -> bool:
    """True when a block or plain scalar would hide something: an invisible character, or
    whitespace at the end of a line (or of the string, or a leading one in a one-line string)."""
    if any(_invisible(ch) for ch in text):
        return True
    return bool(re.search(r" (\n|\Z)", text))


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return "\\" + _NAMED[ch]
    if _invisible(ch):
        code = ord(ch)
        return f"\\x{code:02X}" if code <= 0xFF else (f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}")
    return ch


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, no aliases, no line folding; strings in
    literal block style when that shows them exactly, double-quoted with escapes when something
    in them is invisible, broken after each ``\\n`` escape so a multi-line string stays readable."""

    quote_all = False

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)

    def choose_scalar_style(self) -> str:
        style = super().choose_scalar_style()
        if style == "'" and self.analysis is not None and self.analysis.multiline:
            return '"'
        return style

    def write_double_quoted(self, text: str, split: bool = True) -> None:
        self.write_indicator('"', True)
        pieces = [p for p in re.split(r"(?<=\n)", text) if p]
        for i, piece in enumerate(pieces):
            if i and split and not self.flow_level:
                # an escaped line break: the next line's indentation is not part of the string
                self._put("\\")
                self.write_indent()
                self.whitespace = False
                self.indention = False
                if piece[0] == " ":
                    self._put("\\")
            self._put("".join(_escape(ch) for ch in piece))
        self.write_indicator('"', False)

    def _put(self, data: str) -> None:
        self.column += len(data)
        self.stream.write(data.encode(self.encoding) if self.encoding else data)


def _represent_str(dumper: _Dumper, text: str) -> yaml.ScalarNode:
    style = None
    if dumper.quote_all or _needs_quotes(text):
        style = '"'
    elif "\n" in text:
        style = "|"
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Flow, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
_Dumper.add_representer(_FlowMap, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v.items(),
                                                                    flow_style=True))


class _QuotingDumper(_Dumper):
    quote_all = True


def dump_yaml(data: Mapping[str, Any]) -> str:
    """``data`` as YAML that promptops' loader reads back to exactly ``data`` (strings byte for
    byte, numbers and booleans with their types). Checked by reading it back; if the readable
    form does not round-trip, every string is double-quoted; NotImportable if that fails too."""
    for dumper in (_Dumper, _QuotingDumper):
        text = yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
                         width=1 << 30, indent=2)
        if _same(_reload(text), data):
            return text
    raise NotImportable("its content cannot be written as YAML that reads back the same")


def _reload(text: str) -> Any:
    loaded = load_yaml(text.encode("utf-8"), "import")
    return None if loaded.diagnostics else loaded.data


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON, types included (True is not 1, 1.5 is not "1.5")."""
    try:
        return json.dumps(a, sort_keys=True) == json.dumps(_plain(b), sort_keys=True)
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


