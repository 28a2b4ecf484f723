"""Prompt files -> validated :class:`~promptops.model.PromptSpec` values (design.md 1.2).

:func:`load_project` reads promptops.yaml and every prompt file, and returns the specs together
with every diagnostic found (all files, all problems; a file with schema errors is not checked
further, since the later rules assume its shape). It does no network I/O and never raises for bad
input; only an unusable project directory raises ConfigError.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .config import CONFIG_FILE, Config, load_config
from .digest import canonical_content, content_digest, normalize
from .errors import ConfigError, Diagnostic
from .model import PromptSpec, VersionSpec
from .schemas import schema_diagnostics
from .templates import analyze
from .yamlload import Loaded, load_yaml

KNOWN_ROLES = ("system", "developer", "user", "assistant", "tool")
SHORT_FORM_VERSION = "default"
PROMPT_SUFFIXES = (".yaml", ".yml")


@dataclass
class Project:
    """A loaded project: configuration, valid specs (sorted by name) and all diagnostics."""

    config: Config
    specs: list[PromptSpec] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def load_project(root: Path, only: Sequence[Path] | None = None) -> Project:
    """Load and validate the project at ``root``.

    With ``only``, every prompt file is still read (names must be unique across all of them) but
    only diagnostics about the files in ``only`` are kept.
    """
    root = root.resolve()
    if not root.is_dir():
        raise ConfigError(f"project directory {root} does not exist")
    config, diags = load_config(root)
    project = Project(config=config, diagnostics=list(diags))
    prompts_dir = config.prompts_dir
    if not prompts_dir.is_dir():
        if not diags:
            raise ConfigError(f"no prompts folder {config.prompts}/ in {root}; run `promptops init`, "
                              f"or set prompts: in {CONFIG_FILE}")
        return project
    paths = discover(prompts_dir)
    selected: set[str] | None = None
    if only is not None:
        selected = set()
        for p in only:
            rel = _display(p, root)
            selected.add(rel)
            if p.resolve() == (root / CONFIG_FILE).resolve():
                continue
            problem = _selection_problem(p, prompts_dir)
            if problem:
                project.diagnostics.append(Diagnostic(rel, 0, 0, *problem))
            elif p.resolve() not in {q.resolve() for q in paths}:
                paths.append(p)
        if (root / CONFIG_FILE).resolve() not in {p.resolve() for p in only}:
            project.diagnostics = [d for d in project.diagnostics if d.file != CONFIG_FILE]
    names: dict[str, str] = {}
    for path in paths:
        spec, file_diags = load_prompt_file(path, config)
        rel = _display(path, root)
        project.files.append(rel)
        project.diagnostics.extend(file_diags)
        if spec is None:
            continue
        if spec.name in names:
            project.diagnostics.append(_duplicate_name(spec, names[spec.name], path, config))
            continue
        names[spec.name] = rel
        project.specs.append(spec)
    if selected is not None:
        project.diagnostics = [d for d in project.diagnostics if d.file in selected]
    project.specs.sort(key=lambda s: s.name)
    project.diagnostics.sort()
    return project


def discover(prompts_dir: Path) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` file below ``prompts_dir``, sorted; hidden files and folders are
    skipped and symlinked folders are not followed (they could loop or leave the folder)."""
    found = []
    for folder, dirs, files in os.walk(prompts_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.endswith(PROMPT_SUFFIXES) and not f.startswith("."):
                found.append(Path(folder) / f)
    return found


def _selection_problem(path: Path, prompts_dir: Path) -> tuple[str, str] | None:
    if not path.exists():
        return ("file not found", "")
    if not path.resolve().is_relative_to(prompts_dir):
        return (f"not inside the prompts folder {prompts_dir.name}/",
                "prompt files live under the prompts folder; set prompts: in promptops.yaml to change it")
    if path.suffix not in PROMPT_SUFFIXES:
        return ("not a prompt file", "prompt files end in .yaml or .yml")
    return None


def _display(path: Path, root: Path) -> str:
    """``path`` relative to the project root, '/'-separated (symlinks are not resolved, so a
    diagnostic names the file the user sees)."""
    try:
        return Path(os.path.abspath(path)).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _duplicate_name(spec: PromptSpec, first: str, path: Path, config: Config) -> Diagnostic:
    return Diagnostic(spec.path, 1, 1, f"prompt name {spec.name!r} is already used by {first}",
                      "names must be unique: rename one file or set a different name:")


def load_prompt_file(path: Path, config: Config) -> tuple[PromptSpec | None, list[Diagnostic]]:
    """Read and validate one prompt file; the spec is None when the file has errors."""
    rel = _display(path, config.root)
    if not path.resolve().is_relative_to(config.prompts_dir):
        return None, [Diagnostic(rel, 0, 0, f"file resolves outside the prompts folder ({path.resolve()})",
                                 "replace the symlink with a regular file inside the prompts folder")]
    try:
        size = path.stat().st_size
        raw = path.read_bytes() if size <= 2 * 1024 * 1024 else b"\0" * size  # size check below reports it
    except OSError as exc:
        return None, [Diagnostic(rel, 0, 0, f"cannot read file: {exc.strerror}")]
    loaded = load_yaml(raw, rel)
    if loaded.diagnostics:
        return None, loaded.diagnostics
    if not isinstance(loaded.data, dict):
        return None, [Diagnostic(rel, 1, 1, "a prompt file must be a YAML mapping",
                                 "start with keys such as name:, type:, template: or versions:")]
    diags = schema_diagnostics("prompt", loaded, rel)
    if diags:
        return None, diags
    rel_in_prompts = path.resolve().relative_to(config.prompts_dir).with_suffix("").as_posix()
    check = _FileCheck(rel, loaded, config)
    spec = check.run(rel_in_prompts)
    return (spec if not check.diagnostics else None), check.diagnostics


class _FileCheck:
    """The semantic rules for one schema-valid prompt file."""

    def __init__(self, filename: str, loaded: Loaded, config: Config):
        self.filename = filename
        self.loaded = loaded
        self.data: dict[str, Any] = loaded.data
        self.config = config
        self.diagnostics: list[Diagnostic] = []

    def add(self, path: tuple, message: str, hint: str = "", *, key: bool = False) -> None:
        line, col = self.loaded.where(path, key=key)
        self.diagnostics.append(Diagnostic(self.filename, line, col, message, hint))

    # ------------------------------------------------------------------ whole file

    def run(self, path_name: str) -> PromptSpec | None:
        data = self.data
        name = data.get("name", path_name)
        if "name" not in data and not _valid_name(path_name):
            self.add((), f"the name derived from the file path, {path_name!r}, is not a valid prompt name",
                     "rename the file (letters, digits, '_', '-', '.') or set name:")
        versions_raw = self._versions()
        if versions_raw is None:
            return None
        ptype = data.get("type") or _infer_type(versions_raw)
        fmt = data.get("template_format", "mustache")
        versions = self._check_versions(versions_raw, ptype, fmt)
        labels = self._labels(versions_raw)
        traffic = self._traffic(labels, versions_raw)
        self._targets()
        self._capabilities(ptype, fmt, labels, traffic)
        if self.diagnostics:
            return None
        variables = data.get("variables")
        return PromptSpec(
            name=name,
            path=self.filename,
            type=ptype,
            template_format=fmt,
            versions=versions,
            labels=labels,
            traffic=traffic,
            description=data.get("description"),
            tags=tuple(data.get("tags", ())),
            variables={k: dict(v or {}) for k, v in variables.items()} if variables is not None else None,
            targets=tuple(data["targets"]) if "targets" in data else None,
        )

    def _versions(self) -> dict[str, tuple[tuple, dict[str, Any]]] | None:
        """Version key -> (path in the file, raw version mapping), for both forms."""
        data = self.data
        short = [k for k in ("template", "messages") if k in data]
        if "versions" in data:
            if short:
                self.add((short[0],), f"{short[0]}: cannot be used together with versions:",
                         "use versions: (full form) or a single template:/messages: (short form)", key=True)
                return None
            return {k: (("versions", k), v) for k, v in data["versions"].items()}
        if not short:
            self.add((), "the prompt has no content",
                     "add template: (text prompt), messages: (chat prompt) or versions: (several versions)")
            return None
        if len(short) == 2:
            self.add(("messages",), "template: and messages: cannot both be set",
                     "a text prompt has template:, a chat prompt has messages:", key=True)
            return None
        return {SHORT_FORM_VERSION: ((), {short[0]: data[short[0]]})}

    # ------------------------------------------------------------------ versions and templates

    def _check_versions(self, versions_raw: Mapping[str, tuple[tuple, dict]], ptype: str, fmt: str
                        ) -> dict[str, VersionSpec]:
        data = self.data
        declared = data.get("variables")
        used: set[str] = set()
        inner: set[str] = set()
        placeholders: dict[str, tuple] = {}
        specs: dict[str, VersionSpec] = {}
        seen_digests: dict[str, str] = {}
        for key, (vpath, raw) in versions_raw.items():
            where = f"version {key!r}" if vpath else "the prompt"
            has = [k for k in ("template", "messages") if k in raw]
            if not has:
                self.add(vpath, f"{where} has no template: or messages:", "add the content of this version", key=True)
                continue
            if len(has) == 2:
                self.add(vpath + ("messages",), f"{where} has both template: and messages:",
                         "keep template: for text prompts, messages: for chat prompts", key=True)
                continue
            wanted = "messages" if ptype == "chat" else "template"
            if has[0] != wanted:
                self.add(vpath + (has[0],), f"type is {ptype}, so {where} needs {wanted}:, not {has[0]}:",
                         f"write {wanted}: or set type: {'text' if ptype == 'chat' else 'chat'}", key=True)
                continue
            texts = [(vpath + ("template",), raw["template"])] if "template" in raw else []
            for i, msg in enumerate(raw.get("messages", [])):
                mpath = vpath + ("messages", i)
                if self._check_message(mpath, msg) and "content" in msg:
                    texts.append((mpath + ("content",), msg["content"]))
                if "placeholder" in msg:
                    placeholders.setdefault(msg["placeholder"], mpath + ("placeholder",))
            for tpath, text in texts:
                info = analyze(text, fmt)
                for problem in info.problems:
                    line, col = self._text_position(tpath, text, problem.offset)
                    self.diagnostics.append(Diagnostic(self.filename, line, col,
                                                       f"{fmt} template: {problem.message}", problem.hint))
                used |= info.variables
                inner |= getattr(info, "inner_names", frozenset())
                if declared is not None:
                    for var in sorted(info.variables - set(declared)):
                        self.add(tpath, f"variable {var!r} is used but not declared in variables:",
                                 f"declare it (variables: {{{var}: {{type: string}}}}) or fix the name"
                                 + _close(var, declared))
            content = self._content(key, raw, ptype, fmt)
            if content is None:
                continue
            digest = content_digest(content)
            if digest in seen_digests:
                self.add(vpath, f"versions {seen_digests[digest]!r} and {key!r} have identical content",
                         "versions are matched by content, so each must differ; remove one and point its labels at the other",
                         key=True)
                continue
            seen_digests[digest] = key
            specs[key] = VersionSpec(key=key, content=content, digest=digest)
        for name, ppath in placeholders.items():
            if name in used:
                self.add(ppath, f"placeholder {name!r} has the same name as a template variable",
                         "rename one: placeholders and variables share one namespace")
        if declared is not None:
            everything = used | set(placeholders) | (inner & set(declared))
            for var in declared:
                if var not in everything:
                    self.add(("variables", var), f"variable {var!r} is declared but no version uses it",
                             f"remove it from variables: or use it in a template ({_usage(var, fmt)})", key=True)
        return specs

    def _check_message(self, mpath: tuple, msg: Mapping[str, Any]) -> bool:
        if "placeholder" in msg:
            if len(msg) > 1:
                self.add(mpath, "a placeholder message has only placeholder: NAME",
                         "remove role:/content: from it, or remove placeholder:")
                return False
            return True
        missing = [k for k in ("role", "content") if k not in msg]
        if missing:
            self.add(mpath, f"message is missing {' and '.join(k + ':' for k in missing)}",
                     "a chat message has role: and content:, or only placeholder: NAME")
            return False
        if msg["role"] not in KNOWN_ROLES:
            self.add(mpath + ("role",), f"unknown role {msg['role']!r}",
                     (_close(msg["role"], KNOWN_ROLES).strip(" ;") or "") + f" roles: {', '.join(KNOWN_ROLES)}")
            return False
        return True

    def _content(self, key: str, raw: Mapping[str, Any], ptype: str, fmt: str) -> dict[str, Any] | None:
        model = _deep_merge(self.data.get("model") or {}, raw.get("model") or {})
        tools = raw["tools"] if "tools" in raw else self.data.get("tools", [])
        try:
            return canonical_content(type=ptype, template_format=fmt, template=raw.get("template"),
                                     messages=raw.get("messages"), model=model, tools=tools)
        except ValueError as exc:
            self.add(("versions", key) if "versions" in self.data else (), str(exc))
            return None

    def _text_position(self, path: tuple, text: str, offset: int) -> tuple[int, int]:
        """File position of character ``offset`` of the string at ``path``: exact for literal
        block scalars (``|``) and single-line scalars without escapes, else the string's start."""
        info = self.loaded.block_scalars.get(path)
        start = self.loaded.where(path)
        if info is None:
            return start
        line, col, style = info
        lines = self.loaded.text.splitlines()
        before = text[:offset]
        if style == "|":
            indent = next((len(s) - len(s.lstrip(" ")) for s in lines[line:] if s.strip()), col)
            row = before.count("\n")
            return line + 1 + row, indent + offset - (before.rfind("\n") + 1) + 1
        if style in ("", "'", '"') and "\n" not in before:
            source = lines[line - 1][col - 1 :]
            if "\\" in source or "''" in source:
                return start
            return line, col + offset + (1 if style else 0)
        return start

    # ------------------------------------------------------------------ labels, traffic, targets

    def _labels(self, versions_raw: Mapping[str, Any]) -> dict[str, str]:
        raw = self.data.get("labels")
        if raw is None:
            return {}
        if "versions" not in self.data:
            if isinstance(raw, dict):
                self.add(("labels",), "in the short form, labels: is a list (the single version carries them)",
                         "write labels: [production, staging], or use versions: to map labels to versions", key=True)
                return {}
            return {label: SHORT_FORM_VERSION for label in raw}
        if isinstance(raw, list):
            self.add(("labels",), "with versions:, labels: maps each label to a version name",
                     f"write e.g. labels: {{production: {next(iter(versions_raw))}}}", key=True)
            return {}
        for label, key in raw.items():
            if key not in versions_raw:
                self.add(("labels", label), f"label {label!r} points at {key!r}, which is not a declared version",
                         f"declared versions: {', '.join(versions_raw)}" + _close(key, versions_raw))
        return dict(raw)

    def _traffic(self, labels: Mapping[str, str], versions_raw: Mapping[str, Any]) -> dict[str, dict[str, int]]:
        raw = self.data.get("traffic")
        if not raw:
            return {}
        if "versions" not in self.data:
            self.add(("traffic",), "traffic: needs several versions",
                     "use the full form (versions:) to split traffic between versions", key=True)
            return {}
        for label, weights in raw.items():
            if label not in labels:
                self.add(("traffic", label), f"traffic label {label!r} is not declared in labels:",
                         f"add labels: {{{label}: <version>}}: the version the label serves when no split applies",
                         key=True)
            for key in weights:
                if key not in versions_raw:
                    self.add(("traffic", label, key), f"traffic for {label!r} names {key!r}, which is not a declared version",
                             f"declared versions: {', '.join(versions_raw)}" + _close(key, versions_raw), key=True)
            total = sum(weights.values())
            if total != 100:
                self.add(("traffic", label), f"traffic weights for {label!r} sum to {total}, not 100",
                         "make the integer weights add up to exactly 100", key=True)
        return {label: dict(w) for label, w in raw.items()}

    def _targets(self) -> None:
        for i, name in enumerate(self.data.get("targets", [])):
            if name not in self.config.targets:
                self.add(("targets", i), f"unknown target {name!r}",
                         f"targets in promptops.yaml: {', '.join(sorted(self.config.targets))}"
                         + _close(name, self.config.targets))

    def _capabilities(self, ptype: str, fmt: str, labels: Mapping[str, str],
                      traffic: Mapping[str, Any]) -> None:
        """What each managing target cannot represent is an error naming the target (never a
        silent drop), with a hint to leave that target out."""
        chosen = self.data.get("targets")
        for target in self.config.targets.values():
            if chosen is not None and target.name not in chosen:
                continue
            caps = target.capabilities
            others = [t for t in sorted(self.config.targets) if t != target.name]
            leave_out = (f"add targets: [{', '.join(others)}] to leave {target.name!r} out" if others
                         else f"remove it, or use a target whose provider supports it")
            who = f"target {target.name!r} ({target.provider})"
            if ptype not in caps.types:
                self.add(("type",) if "type" in self.data else (), f"{who} cannot hold {ptype} prompts", leave_out)
            if fmt not in caps.template_formats:
                self.add(("template_format",) if "template_format" in self.data else (),
                         f"{who} does not support {fmt} templates",
                         f"use one of {', '.join(sorted(caps.template_formats))}, or {leave_out}")
            for label in labels:
                if label in caps.reserved_labels:
                    self.add(("labels", label) if "versions" in self.data else ("labels",),
                             f"label {label!r} is reserved on {who}: the platform manages it",
                             "remove it from labels:", key=True)
            if not caps.traffic:
                for label in traffic:
                    if target.manages_label(label):
                        self.add(("traffic", label), f"{who} has no traffic splits, so traffic for {label!r} "
                                 "cannot be represented", leave_out, key=True)


def _infer_type(versions_raw: Mapping[str, tuple[tuple, dict]]) -> str:
    for _, raw in versions_raw.values():
        if "messages" in raw:
            return "chat"
        if "template" in raw:
            return "text"
    return "text"


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged onto ``base``; nested mappings merge, everything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return normalize(out)


def _valid_name(name: str) -> bool:
    parts = name.split("/")
    return len(name) <= 255 and all(
        p and p[0].isascii() and p[0].isalnum() and all(c.isascii() and (c.isalnum() or c in "_.-") for c in p)
        for p in parts)


def _close(word: str, options: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(options), n=1)
    return f"; did you mean {match[0]!r}?" if match else ""


def _usage(var: str, fmt: str) -> str:
    return {"mustache": f"{{{{{var}}}}}", "jinja2": f"{{{{ {var} }}}}", "f-string": f"{{{var}}}"}[fmt]
