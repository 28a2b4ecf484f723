"""Prompt files -> validated :class:`~promptops.model.PromptSpec` values (design.md 1.2).

:func:`load_project` reads promptops.yaml and every prompt file, and returns the specs together
with every diagnostic found (all files, all problems; a file with schema errors is not checked
further, since the later rules assume its shape). It does no network I/O and never raises for bad
input; only an unusable project directory raises ConfigError. Every diagnostic has a line and a
column (1:1 for problems with a whole file), so editors and CI problem matchers can jump to it.
"""
from __future__ import annotations

import difflib
import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from . import composition
from .config import CONFIG_FILE, Config, load_config
from .digest import canonical_content, content_digest, normalize
from .errors import ConfigError, Diagnostic, clip, quote_path
from .model import PromptSpec, VersionSpec
from .providers.base import CAPABILITIES
from .schemas import schema_diagnostics, show
from .templates import analyze
from .yamlload import Loaded, load_yaml, load_yaml_file, read_file

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

    With ``only``, only the files in ``only`` are validated (and only they are in ``specs`` and
    ``files``); every other prompt file is read just for its name, which must be unique. Relative
    paths in ``only`` are relative to ``root``, as if promptops were started there (``-C DIR``
    works like ``git -C``).

    When promptops.yaml is among ``only``, the whole project is validated, as without ``only``
    (plus any listed file that discovery would skip): every prompt file depends on it (its targets,
    their capabilities, the prompts folder), so a config change can break a prompt file that did
    not change. This is what the pre-commit hook relies on when a commit touches only promptops.yaml.
    """
    root = root.resolve()
    if not root.is_dir():
        raise ConfigError(f"project directory {quote_path(str(root))} does not exist")
    config, diags = load_config(root)
    project = Project(config=config, diagnostics=list(diags))
    prompts_dir = config.prompts_dir
    problem = _folder_problem(prompts_dir)
    if problem is not None:
        if config.prompts_at is not None:
            # set in promptops.yaml: report it there, where the fix goes
            project.diagnostics.append(Diagnostic(
                CONFIG_FILE, *config.prompts_at,
                f"prompts folder {clip(config.prompts)!r} {problem} (paths are relative to the project directory)",
                "create it, or correct prompts:"))
        elif problem != "does not exist":
            # prompts/ is there but is no folder (a file, a FIFO, `ln -s prompts prompts`)
            project.diagnostics.append(Diagnostic(
                _display(prompts_dir, root), 1, 1, f"the prompts folder {problem}",
                "replace it with a folder of prompt files"))
        elif not diags:
            raise ConfigError(_no_prompts_folder(root, config.prompts))
        return project
    unreadable: list[OSError] = []
    paths = discover(prompts_dir, unreadable)
    selected: set[str] | None = None
    if only is not None:
        selected = set()
        known = {os.path.abspath(q) for q in paths}
        config_file = root / CONFIG_FILE
        only = [p if p.is_absolute() else root / p for p in only]
        for p in only:
            rel = _display(p, root)
            selected.add(rel)
            if _lexical(p) == config_file:
                continue
            problem = _selection_problem(p, prompts_dir)
            if problem:
                project.diagnostics.append(Diagnostic(rel, 1, 1, *problem))
            elif os.path.abspath(p) not in known:
                paths.append(p)
                known.add(os.path.abspath(p))
        if config_file in {_lexical(p) for p in only}:
            selected = None  # every prompt file depends on promptops.yaml: check them all
        else:
            project.diagnostics = [d for d in project.diagnostics if d.file != CONFIG_FILE]
    # name -> [(file, position of its name)] of every file that loaded cleanly
    names: dict[str, list[tuple[str, tuple[int, int]]]] = {}
    specs: dict[str, PromptSpec] = {}
    composing = config.targets_known and any(t.capabilities.composition for t in config.targets.values())
    composers: list[Path] = []  # unselected files that may compose a selected prompt
    for path in paths:
        rel = _display(path, root)
        if selected is not None and rel not in selected:
            # Only its name matters (uniqueness): reading it is ~50x cheaper than validating,
            # which keeps the pre-commit hook's cost independent of the repository's size.
            other = _peek_name(path, config)
            if other is not None:
                names.setdefault(other[0], []).append((rel, other[1]))
                if composing and _may_compose(path):
                    composers.append(path)
            continue
        spec, file_diags, name_at = _load_prompt_file(path, config)
        project.files.append(rel)
        project.diagnostics.extend(file_diags)
        if spec is None:
            continue
        names.setdefault(spec.name, []).append((rel, name_at))
        specs[spec.name] = spec
    for name, where in names.items():
        if len(where) == 1:
            if name in specs:
                project.specs.append(specs[name])
        else:
            project.diagnostics.extend(_duplicate_name(name, where))
    if selected is not None:
        project.diagnostics = [d for d in project.diagnostics if d.file in selected]
    # After the selection filter: whatever was selected, the files in an unreadable folder were
    # not checked (not even their names), so the run must not pass as if they were.
    project.diagnostics += [_unreadable_folder(exc, root) for exc in unreadable]
    if composing:
        # after the selection filter: a selected change can break a reference in another file
        unique = {name: where[0][0] for name, where in names.items() if len(where) == 1}
        project.diagnostics += _composition_diagnostics(project.specs, unique, composers, config, selected)
    project.specs.sort(key=lambda s: s.name)
    project.diagnostics.sort()
    return project


def _may_compose(path: Path) -> bool:
    """True when an unvalidated file may hold a composition reference (every syntax has ``@@@``)."""
    raw, _ = read_file(path, "")
    return raw is not None and b"@@@" in raw


def _folder_problem(path: Path) -> str | None:
    """None when ``path`` is a folder, else what is wrong, for "the prompts folder ...": it
    "does not exist", "is a symlink that loops", "is a symlink to nowhere", "is not a folder" or
    "cannot be used (<the OS error>)" (a name too long, a parent that cannot be searched)."""
    try:
        if stat.S_ISDIR(os.stat(path).st_mode):
            return None
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return f"cannot be used ({exc.strerror or exc})"
    if not os.path.lexists(path):
        return "does not exist"
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:  # Python up to 3.12
            return "is a symlink that loops"
        except OSError as exc:
            return "is a symlink that loops" if exc.errno == errno.ELOOP else "is a symlink to nowhere"
    return "is not a folder"


def _unreadable_folder(exc: OSError, root: Path) -> Diagnostic:
    """A folder below the prompts folder that could not be listed, as a diagnostic at 1:1."""
    folder = _display(Path(exc.filename), root) if exc.filename else "?"
    return Diagnostic(folder, 1, 1, f"cannot read folder: {exc.strerror or exc}; the prompt files in it "
                      "were not checked", "make it readable with chmod +rx, or move it out of the prompts folder")


def _composition_diagnostics(specs: Sequence[PromptSpec], files: Mapping[str, str], composers: Sequence[Path],
                             config: Config, selected: set[str] | None) -> list[Diagnostic]:
    """The composition rules (:func:`composition.check`) as located diagnostics.

    ``specs`` are the validated prompts, ``files`` maps every uniquely named prompt to its file.
    With a selection (``validate FILES``) the prompts the selected ones compose are loaded too
    (their labels and types decide), and so are the ``composers`` (unselected files holding
    ``@@@``): a change to a selected prompt that breaks a reference in another file is reported
    there, since that is where it fails."""
    known = {s.name: s for s in specs}
    if selected is not None:
        extra = [_load_prompt_file(path, config)[0] for path in composers]
        pending = [s for s in (*specs, *extra) if s is not None]
        while pending:
            spec = pending.pop()
            if known.setdefault(spec.name, spec) is not spec:
                continue
            for syntax in composition.SYNTAXES:
                for _, ref in composition.references_of(spec, syntax):
                    if ref.name not in known and ref.name in files:
                        dep = _load_prompt_file(config.root / files[ref.name], config)[0]
                        if dep is not None:
                            pending.append(dep)
    picked = {s.name for s in specs}
    out = []
    for problem in composition.check(list(known.values()), config.targets.values()):
        spec = known[problem.prompt]
        if selected is not None and spec.path not in selected and problem.ref.name not in picked:
            continue  # neither the file nor the prompt it composes was selected
        line, col = _locate(spec.path, config, problem.version, problem.ref)
        out.append(Diagnostic(spec.path, line, col, problem.message, problem.hint, problem.severity))
    return out


def _locate(rel: str, config: Config, version: str, ref: composition.Reference) -> tuple[int, int]:
    """The file position of a reference: the file is read again (only for a problem found)."""
    loaded = load_yaml_file(config.root / rel, rel)
    if loaded.diagnostics or not isinstance(loaded.data, dict):
        return 1, 1
    vpath: tuple[Any, ...] = ("versions", version) if "versions" in loaded.data else ()
    path = vpath + ref.path
    check = _FileCheck(rel, loaded, config)
    text = check._value(path)
    if not isinstance(text, str):
        return loaded.where(vpath) if vpath else (1, 1)
    return check._text_position(path, text, ref.offset)


def _no_prompts_folder(root: Path, prompts: str) -> str:
    """The message for a directory without a prompts folder: inside a project (a parent holds
    promptops.yaml or a prompts folder), point there instead of suggesting a nested init."""
    for parent in root.parents:
        if (parent / CONFIG_FILE).is_file() or (root.is_relative_to(parent / "prompts") and (parent / "prompts").is_dir()):
            return (f"no prompts folder {quote_path(prompts + '/')} in {quote_path(str(root))}; this is inside "
                    f"the project at {quote_path(str(parent))}: run promptops there, or use "
                    f"-C {quote_path(os.path.relpath(parent, Path.cwd()))}")
    return (f"no prompts folder {quote_path(prompts + '/')} in {quote_path(str(root))}; run `promptops init`, "
            f"or set prompts: in {CONFIG_FILE}")


def discover(prompts_dir: Path, unreadable: list[OSError] | None = None) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` file below ``prompts_dir`` (the suffix in any case: ``.YAML``
    too), sorted; hidden files and folders are skipped and symlinked folders are not followed
    (they could loop or leave the folder). A folder that cannot be listed is appended to
    ``unreadable`` (the error, naming it) when a list is given: its files are missing from the
    result, which the caller must not take for "no files there"."""
    found = []
    on_error = unreadable.append if unreadable is not None else None
    for folder, dirs, files in os.walk(prompts_dir, onerror=on_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if is_prompt_file_name(f) and not f.startswith("."):
                found.append(Path(folder) / f)
    return found


def is_prompt_file_name(name: str) -> bool:
    """True for a name ending in .yaml or .yml, in any case (the name a prompt gets from its path
    drops the suffix whatever its case)."""
    return name.lower().endswith(PROMPT_SUFFIXES)


def _lexical(path: Path) -> Path:
    """``path`` with its folder resolved but not the file itself: a symlinked prompt file keeps its
    own name (load_prompt_file reports where it points), a symlinked folder such as /tmp does not
    make a file look as if it were elsewhere."""
    return Path(os.path.abspath(path)).parent.resolve() / path.name


def _selection_problem(path: Path, prompts_dir: Path) -> tuple[str, str] | None:
    if not path.exists() and not path.is_symlink():
        return ("file not found", "check the path; relative paths are relative to the project directory")
    if not _lexical(path).is_relative_to(prompts_dir):
        folder = quote_path(prompts_dir.name + "/")
        return (f"not inside the prompts folder {folder}",
                f"move it into {folder}, or set prompts: in promptops.yaml to the folder it is in")
    if not is_prompt_file_name(path.name):
        return ("not a prompt file", "prompt files end in .yaml or .yml")
    return None


def _display(path: Path, root: Path) -> str:
    """``path`` relative to the project root, '/'-separated (symlinks are not resolved, so a
    diagnostic names the file the user sees)."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:  # a prompts folder beside the project (prompts: ../shared): '../shared/a.yaml'
        return Path(os.path.relpath(absolute, root)).as_posix()


def _duplicate_name(name: str, where: list[tuple[str, tuple[int, int]]]) -> list[Diagnostic]:
    """One diagnostic in every file that claims ``name`` (at its name: value, or 1:1 for a name
    derived from the path), so `validate FILES` reports the clash whichever of them changed."""
    out = []
    for i, (file, (line, col)) in enumerate(where):
        others = [f"{quote_path(f)}:{ln}:{c}" for j, (f, (ln, c)) in enumerate(where) if j != i]
        verb = "is also used by" if i == 0 else "is already used by"
        out.append(Diagnostic(file, line, col, f"prompt name {name!r} {verb} {', '.join(others)}",
                              "names must be unique: rename one of the files or set a different name:"))
    return out


def _peek_name(path: Path, config: Config) -> tuple[str, tuple[int, int]] | None:
    """A prompt file's name and its position, without validating the file: its ``name:`` when it
    declares one, else the name derived from its path (at 1:1); None when the file cannot be read
    as YAML (a broken file takes no part in the uniqueness check, as in a full validation)."""
    derived = _lexical(path).relative_to(config.prompts_dir).with_suffix("").as_posix()
    raw, _ = read_file(path, "")
    if raw is None:
        return None
    if b"name" not in raw:
        return derived, (1, 1)
    loaded = load_yaml(raw, _display(path, config.root))
    if loaded.diagnostics or not isinstance(loaded.data, dict):
        return None
    if "name" not in loaded.data:
        return derived, (1, 1)
    name = loaded.data["name"]
    return (name, loaded.where(("name",))) if isinstance(name, str) else None


def load_prompt_file(path: Path, config: Config) -> tuple[PromptSpec | None, list[Diagnostic]]:
    """Read and validate one prompt file; the spec is None when the file has errors."""
    spec, diags, _ = _load_prompt_file(path, config)
    return spec, diags


def _load_prompt_file(path: Path, config: Config
                      ) -> tuple[PromptSpec | None, list[Diagnostic], tuple[int, int]]:
    """:func:`load_prompt_file`, plus the position of the prompt's name (1:1 when derived)."""
    rel = _display(path, config.root)
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        # os.fsdecode keeps the bytes that are not UTF-8 as lone surrogates: the path could not
        # be written to the registry, a plan file or an HTTP request
        return None, [Diagnostic(rel, 1, 1, "the file name is not valid UTF-8",
                                 "rename it (names in UTF-8 work on every platform)")], (1, 1)
    try:
        target = path.resolve(strict=path.is_symlink())
    except (OSError, RuntimeError):  # a symlink loop, or a link to nowhere
        return None, [Diagnostic(rel, 1, 1, "file is a symlink that loops or points nowhere",
                                 "replace the symlink with a regular file")], (1, 1)
    if not target.is_relative_to(config.prompts_dir):
        # A symlink out of the folder would let a prompt file read anything the user can.
        return None, [Diagnostic(rel, 1, 1, f"file resolves outside the prompts folder ({quote_path(str(target))})",
                                 "replace the symlink with a regular file inside the prompts folder")], (1, 1)
    loaded = load_yaml_file(path, rel)
    if loaded.diagnostics:
        return None, loaded.diagnostics, (1, 1)
    if loaded.empty:
        return None, [Diagnostic(rel, 1, 1, "file is empty",
                                 "a prompt file is a YAML mapping with template:, messages: or versions:")], (1, 1)
    if not isinstance(loaded.data, dict):
        return None, [Diagnostic(rel, 1, 1, "a prompt file must be a YAML mapping",
                                 "start with keys such as name:, type:, template: or versions:")], (1, 1)
    diags = schema_diagnostics("prompt", loaded, rel)
    if diags:
        return None, diags, (1, 1)
    # The name comes from the path the user sees (a symlink inside the folder keeps its own name).
    rel_in_prompts = _lexical(path).relative_to(config.prompts_dir).with_suffix("").as_posix()
    check = _FileCheck(rel, loaded, config)
    spec = check.run(rel_in_prompts)
    name_at = loaded.where(("name",)) if "name" in loaded.data else (1, 1)
    return (spec if not check.diagnostics else None), check.diagnostics, name_at


class _FileCheck:
    """The semantic rules for one schema-valid prompt file."""

    def __init__(self, filename: str, loaded: Loaded, config: Config):
        self.filename = filename
        self.loaded = loaded
        self.data: dict[str, Any] = loaded.data
        self.config = config
        self.diagnostics: list[Diagnostic] = []

    def _value(self, path: tuple) -> Any:
        """The value at ``path`` in the file's data, or None."""
        value: Any = self.data
        for part in path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return None
        return value

    def add(self, path: tuple, message: str, hint: str = "", *, key: bool = False) -> None:
        line, col = self.loaded.where(path, key=key)
        self.diagnostics.append(Diagnostic(self.filename, line, col, message, hint))

    # ------------------------------------------------------------------ whole file

    def run(self, path_name: str) -> PromptSpec | None:
        data = self.data
        name = data.get("name", path_name)
        if "name" not in data and not _valid_name(path_name):
            self.add((), f"the name derived from the file path, {show(path_name)}, is not a valid prompt name",
                     "names are portable ASCII (they appear in the platforms' URLs): rename the file "
                     "(ASCII letters, digits, '_', '-', '.') or set name:")
        versions_raw = self._versions()
        if versions_raw is None:
            return None
        ptype = data.get("type") or _infer_type(versions_raw)
        fmt = data.get("template_format", "mustache")
        versions = self._check_versions(versions_raw, ptype, fmt)
        labels = self._labels(versions_raw)
        traffic = self._traffic(labels, versions_raw)
        if self.config.targets_known:
            self._targets()
            self._reserved_name(name)
            self._capabilities(ptype, fmt, labels, traffic)
            self._content_gaps(versions, versions_raw)
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
            messages_ok = True
            for i, msg in enumerate(raw.get("messages", [])):
                mpath = vpath + ("messages", i)
                if not self._check_message(mpath, msg):
                    messages_ok = False  # its content cannot be built; the message is reported
                elif "content" in msg:
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
                        at = _first_use(text, var, fmt)
                        line, col = self.loaded.where(tpath) if at is None else self._text_position(tpath, text, at)
                        self.diagnostics.append(Diagnostic(
                            self.filename, line, col, f"variable {clip(var)!r} is used but not declared in variables:",
                            f"declare it (variables: {{{clip(var)}: {{type: string}}}}) or fix the name"
                            + _close(var, declared)))
            if not messages_ok:
                continue
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
                self.add(ppath, f"placeholder {clip(name)!r} has the same name as a template variable",
                         "rename one: placeholders and variables share one namespace")
        if declared is not None:
            everything = used | set(placeholders) | (inner & set(declared))
            for var in declared:
                if var not in everything:
                    self.add(("variables", var), f"variable {clip(var)!r} is declared but no version uses it",
                             f"remove it from variables: or use it in a template ({_usage(clip(var), fmt)})", key=True)
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
            self.add(mpath + ("role",), f"unknown role {clip(msg['role'])!r}",
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
        """File position of character ``offset`` of the string at ``path``.

        Exact for block scalars (``|`` and ``>``, any indentation indicator or chomping) and for
        single-line scalars in any style (escapes in quotes are accounted for); for strings that
        span lines in flow style, the position of the string's start."""
        info = self.loaded.block_scalars.get(path)
        start = self.loaded.where(path)
        if info is None:
            return start
        line, col, style, end_line = info
        lines = self.loaded.text.splitlines()
        if style in ("|", ">"):
            # Every content line's text, after its indentation, appears verbatim and in order in
            # the value; only the line breaks between lines differ (folding, chomping). Those gaps
            # hold only spaces and newlines, so a forward search finds each line where it belongs.
            found_to = 0
            best = start
            for number in range(line + 1, min(end_line, len(lines)) + 1):
                source = lines[number - 1]
                body = source.lstrip(" ")
                if not body:
                    continue
                at = text.find(body, found_to)
                if at < 0:
                    break  # past the scalar (its end line may hold the next key)
                indent = len(source) - len(body)
                if offset < at:
                    return best
                if offset < at + len(body):
                    return number, indent + 1 + offset - at
                found_to = at + len(body)
                best = (number, len(source) + 1)
            return best
        if line != end_line:
            return start
        source = lines[line - 1][col - 1 :]
        if style == "":
            return line, col + offset
        i = 1  # past the opening quote
        for _ in range(offset):
            if i >= len(source):
                return start
            if style == "'" and source.startswith("''", i):
                i += 2
            elif style == '"' and source[i] == "\\":
                i += {"x": 4, "u": 6, "U": 10}.get(source[i + 1 : i + 2], 2)
            else:
                i += 1
        return line, col + i

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
                self.add(("targets", i), f"unknown target {clip(name)!r}",
                         f"targets in promptops.yaml: {', '.join(sorted(self.config.targets))}"
                         + _close(name, self.config.targets))

    def _managing_targets(self) -> list[tuple[Any, str]]:
        """The targets that manage this prompt, each with the hint that leaves it out."""
        chosen = self.data.get("targets")
        found = []
        for target in self.config.targets.values():
            if chosen is not None and target.name not in chosen:
                continue
            others = [t for t in sorted(self.config.targets) if t != target.name]
            found.append((target, f"add targets: [{', '.join(others)}] to leave {target.name!r} out" if others else ""))
        return found

    def _reserved_name(self, name: str) -> None:
        """A name a managing target's platform refuses, located at name: (or the file's start)."""
        for target, leave_out in self._managing_targets():
            gap = target.name_gap(name)
            if gap:
                self.add(("name",) if "name" in self.data else (), gap[0], _either(gap[1], leave_out))

    def _capabilities(self, ptype: str, fmt: str, labels: Mapping[str, str], traffic: Mapping[str, Any]) -> None:
        """What each managing target cannot represent (``Target.gaps``) is an error naming the
        target (never a silent drop), with a hint to fix the file or to leave that target out with
        ``targets:``."""
        content_key = next((k for k in ("versions", "messages", "template") if k in self.data), None)
        for target, leave_out in self._managing_targets():
            caps = target.capabilities
            who = target.who
            for gap, value in target.gaps(ptype, fmt, labels, traffic):
                if gap == "type":
                    where = ("type",) if "type" in self.data else ((content_key,) if content_key else ())
                    supported = " or ".join(sorted(caps.types))
                    self.add(where, f"{who} cannot hold {ptype} prompts, only {supported}",
                             _either(f"write it as a {supported} prompt with "
                                     + ("template:" if supported == "text" else "messages:"), leave_out),
                             key="type" not in self.data)
                elif gap == "template_format":
                    where = ("template_format",) if "template_format" in self.data else (
                        (content_key,) if content_key else ())
                    self.add(where, f"{who} does not support {fmt} templates"
                             + ("" if "template_format" in self.data else f", and {fmt} is the default template_format"),
                             _either(f"set template_format: {' or '.join(sorted(caps.template_formats))}", leave_out),
                             key="template_format" not in self.data)
                elif gap == "pointer":
                    pointer = target.labels[0] if target.labels else "production"
                    self.add(("traffic", value) if value in traffic and value not in labels else
                             (("labels", value) if "versions" in self.data else ("labels",)),
                             f"{who} has one pointer per prompt, mapped to label {pointer!r}, so label {value!r} "
                             "cannot be represented",
                             _either(f"add labels: [{pointer}] to target {target.name!r} in promptops.yaml to manage "
                                     f"only {pointer!r} there", leave_out), key=True)
                elif gap == "label":
                    self.add(("labels", value) if "versions" in self.data else ("labels",),
                             f"label {value!r} is reserved on {who}: the platform manages it",
                             _either("remove it from labels:", leave_out), key=True)
                else:  # traffic
                    with_traffic = sorted(k for k, c in CAPABILITIES.items() if c.traffic)
                    self.add(("traffic", value), f"{who} has no traffic splits, so traffic for {value!r} "
                             "cannot be represented",
                             leave_out or f"remove traffic:, or use a target whose provider has traffic "
                             f"splits ({', '.join(with_traffic)})", key=True)

    def _content_gaps(self, versions: Mapping[str, VersionSpec], versions_raw: Mapping[str, tuple[tuple, dict]]
                      ) -> None:
        """What of each version's content a managing target cannot store (``Target.content_gaps``),
        located where the file sets it: in the version, or at the prompt level it inherits from
        (reported once there, not once per version)."""
        seen: set[tuple] = set()
        for target, leave_out in self._managing_targets():
            for key, version in versions.items():
                vpath, raw = versions_raw[key]
                too_long = target.key_gap(key)
                if too_long:
                    self.add(vpath, too_long[0], _either(too_long[1], leave_out), key=True)
                for path, problem, hint in target.content_gaps(version.content):
                    where, on_key = self._content_path(vpath, raw, path)
                    if (where, problem) not in seen:
                        seen.add((where, problem))
                        self.add(where, problem, _either(hint, leave_out), key=on_key)

    def _content_path(self, vpath: tuple, raw: Mapping[str, Any], path: tuple) -> tuple[tuple, bool]:
        """The file path of a content path of the version at ``vpath`` (and whether it names a key)."""
        if path[0] in ("model", "tools"):
            own = raw.get(path[0])
            if len(path) == 1:
                return (vpath + path if own else path), True
            return (vpath + path if isinstance(own, Mapping) and path[1] in own else path), True
        return vpath + path, False


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


def _either(fix: str, leave_out: str) -> str:
    return f"{fix}, or {leave_out}" if leave_out else fix


def _first_use(text: str, var: str, fmt: str) -> int | None:
    """Offset of the first place ``text`` uses variable ``var`` in ``fmt`` syntax, or None.

    A locating heuristic only (templates.analyze decides what is used): it may miss a use written
    with changed mustache delimiters, and then the caller points at the template's start."""
    name = re.escape(var)
    if fmt == "mustache":
        found = re.search(r"\{\{\s*[#^&{]?\s*(" + name + r")(?![A-Za-z0-9_])", text)
        return found.start() if found else None
    if fmt == "jinja2":
        for block in re.finditer(r"\{\{.*?\}\}|\{%.*?%\}", text, re.DOTALL):
            found = re.search(r"(?<![\w.])" + name + r"(?!\w)", block.group())
            if found:
                return block.start()
        return None
    found = re.search(r"(?<!\{)\{" + name + r"(?=[}!:.\[])", text)
    return found.start() if found else None


def _close(word: str, options: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(options), n=1)
    return f"; did you mean {match[0]!r}?" if match else ""


def _usage(var: str, fmt: str) -> str:
    return {"mustache": f"{{{{{var}}}}}", "jinja2": f"{{{{ {var} }}}}", "f-string": f"{{{var}}}"}[fmt]
