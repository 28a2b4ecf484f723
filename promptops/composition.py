"""Prompt composition: one prompt's text naming another prompt's version, which the platform inlines.

A composition reference is content, kept verbatim in the file and on the platform (promptops reads
with the platform's "do not resolve" switch, so a composed version keeps its digest). This module
is the one place that knows the reference syntaxes and what follows from them:

* :func:`find_references`: the references in one version's canonical content, per syntax;
* :func:`check`: validate's rules for references naming prompts of this project (a declared,
  managed label; a text prompt; no cycles; Langfuse's nesting limit), located in the files;
* :func:`resolve`: a version's content with its references replaced from the files (``render``);
* :func:`affected`: which prompts compose a prompt's label (the plan's ``# affects:``);
* :func:`dependencies`: which prompts of a plan compose which (apply's order).

Syntaxes (``Capabilities.composition`` says which one a provider's platform resolves):

``langfuse`` -- ``@@@langfusePrompt:name=X|label=Y@@@`` or ``@@@langfusePrompt:name=X|version=N@@@``,
read exactly as the server reads them (langfuse/langfuse at 6275144,
packages/shared/src/features/prompts/parsePromptDependencyTags.ts and
packages/shared/src/server/services/PromptService/index.ts): the regex
``@@@langfusePrompt:(.*?)@@@`` over ``JSON.stringify`` of the prompt, so over the JSON-escaped
text of the template or of each message's content; a tag counts only when its first part is
``name=`` and it has exactly two ``|``-separated parts, each value being what follows the first
``=`` up to the next one; ``version=`` wins when non-empty (it must be a number), else ``label=``
is needed; anything else is plain text, served as written. On create the server resolves the
new version's graph and answers 400 for a missing dependency, one that is not a text prompt, a
cycle (a prompt naming its own name included) and nesting of 5 or more levels. A label tag is
resolved when served, so moving that label changes what every composer serves.

``promptlayer`` -- snippets, as PromptLayer's docs give them (MagnivOrg/prompt-layer-docs,
features/prompt-registry/snippets.mdx and snippet-dependency-ordering.mdx): ``@@@template_name@@@``
(the latest version), ``@@@template_name@version_number:{number}@@@`` and
``@@@template_name@label:{label_name}@@@``; only completion (text) templates can be snippets; a
publish naming a snippet that does not exist yet is refused (422), so snippets are published
first; references resolve recursively when read. The docs give no nesting limit and no character
rules for names, so a name is anything up to the next ``@``.

Knowingly not modelled: a Langfuse tag spanning two chat messages (the server scans the JSON of
the whole message list; promptops scans each message's text), and version pins checked against
the platform (a file knows no platform version numbers: validate checks only that one is a
positive whole number).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable, Iterator, Mapping, Sequence

from .errors import ConfigError
from .model import Action, CreateVersion, MoveLabel, PromptSpec

SYNTAXES = ("langfuse", "promptlayer")
LANGFUSE_LATEST = "latest"  # Langfuse's own label, always on the newest version
LANGFUSE_MAX_DEPTH = 5  # PromptService MAX_PROMPT_NESTING_DEPTH: level 5 below the root is refused
PLATFORM = {"langfuse": "Langfuse", "promptlayer": "PromptLayer"}

# JavaScript's '.' matches anything but line terminators; JSON.stringify escapes \n and \r, not
# U+2028/U+2029, so those two are the only line terminators the server's regex can meet.
_LANGFUSE_TAG = re.compile("@@@langfusePrompt:([^\n\r\u2028\u2029]*?)@@@")
_PROMPTLAYER_TAG = re.compile(r"@@@([^@]+?)(?:@version_number:([^@]*)|@label:([^@]*))?@@@")


@dataclass(frozen=True)
class Reference:
    """One composition reference in a version's content.

    ``label`` and ``version`` say which version of prompt ``name`` it names; both None means the
    latest version (PromptLayer's ``@@@name@@@``). ``version`` is the number as written (a
    string: validate reports one that is not a positive whole number). ``path`` is the content
    path of the string holding it (``("template",)`` or ``("messages", i, "content")``), ``offset``
    where the reference starts in that string, ``text`` the reference as written.
    """

    syntax: str
    name: str
    label: str | None
    version: str | None
    text: str
    path: tuple[Any, ...]
    offset: int

    @property
    def latest(self) -> bool:
        """True when the reference follows the newest version (moved by every create)."""
        if self.version is not None:
            return False
        return self.label is None or (self.syntax == "langfuse" and self.label == LANGFUSE_LATEST)

    @property
    def pin(self) -> int | None:
        """The pinned version number, or None when it is not a positive whole number (Langfuse
        reads the number as JavaScript's ``Number()`` does: ``0x3`` is 3)."""
        if self.version is None:
            return None
        if self.syntax == "langfuse":
            number = _js_number(self.version)
            whole = number is not None and number.is_integer() and 0 < number <= 2 ** 31 - 1
            return int(number) if whole and number is not None else None
        return int(self.version) if re.fullmatch(r"[0-9]+", self.version) and int(self.version) > 0 else None

    def describe(self) -> str:
        """``label 'production' of 'base'``, ``version 3 of 'base'``, ``the latest version of 'base'``."""
        if self.version is not None:
            return f"version {self.version} of {self.name!r}"
        if self.latest:
            return f"the latest version of {self.name!r}"
        return f"label {self.label!r} of {self.name!r}"


def _strings(content: Mapping[str, Any]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """The texts of a version that the platform inlines references in."""
    if content.get("type") == "text" or "template" in content:
        yield ("template",), str(content.get("template") or "")
    for i, message in enumerate(content.get("messages") or ()):
        if isinstance(message.get("content"), str):
            yield ("messages", i, "content"), message["content"]


def find_references(content: Mapping[str, Any], syntax: str) -> list[Reference]:
    """Every reference of ``syntax`` in canonical ``content``, in order (repeats included)."""
    finder = {"langfuse": _langfuse_in, "promptlayer": _promptlayer_in}[syntax]
    found: list[Reference] = []
    for path, text in _strings(content):
        if "@@@" in text:
            found += finder(text, path)
    return found


def malformed_tags(content: Mapping[str, Any], syntax: str) -> list[tuple[tuple[Any, ...], int, str]]:
    """Langfuse tags the server reads as plain text (``@@@langfusePrompt:`` ... ``@@@`` that is not
    ``name=X|label=Y`` or ``name=X|version=N``), as (content path, offset, tag)."""
    if syntax != "langfuse":
        return []
    out = []
    for path, text in _strings(content):
        if "@@@langfusePrompt:" not in text:
            continue
        escaped = _js_escaped(text)
        for match in _LANGFUSE_TAG.finditer(escaped):
            if _langfuse_parse(match.group(1)) is None:
                out.append((path, _raw_offset(escaped, match.start()), match.group(0)))
    return out


def _js_escaped(text: str) -> str:
    """The string as it stands inside ``JSON.stringify`` output (quotes off)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _raw_offset(escaped: str, at: int) -> int:
    """The offset in the raw string of offset ``at`` of its escaped form (``at`` is on an ``@``,
    never inside an escape sequence)."""
    return len(json.loads('"' + escaped[:at] + '"'))


def _langfuse_parse(inner: str) -> tuple[str, str | None, str | None] | None:
    """(name, label, version) of a tag's inside, or None when the server skips it."""
    parts = inner.split("|")
    if not parts[0].startswith("name=") or len(parts) != 2:
        return None
    params: dict[str, str | None] = {}
    for part in parts:  # JS: const [key, value] = part.split("="): the second piece, or undefined
        pieces = part.split("=")
        params[pieces[0]] = pieces[1] if len(pieces) > 1 else None
    name, version, label = params.get("name"), params.get("version"), params.get("label")
    if not name:
        return None
    if version:
        if _js_number(version) is None:
            return None  # z.coerce.number() gives NaN, which the schema refuses: plain text
        return name, None, version
    if label is None:
        return None
    return name, label, None


def _js_number(raw: str) -> float | None:
    """JavaScript's ``Number(raw)``; None for NaN."""
    text = raw.strip()
    if text == "":
        return 0.0
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
        return float(int(text, 16))
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        return float(text)
    if text in ("Infinity", "+Infinity", "-Infinity"):
        return float(text.replace("Infinity", "inf"))
    return None


def _langfuse_in(text: str, path: tuple[Any, ...]) -> list[Reference]:
    escaped = _js_escaped(text)
    found = []
    for match in _LANGFUSE_TAG.finditer(escaped):
        parsed = _langfuse_parse(match.group(1))
        if parsed is None:
            continue
        offset = _raw_offset(escaped, match.start())
        raw = text[offset: offset + len(json.loads('"' + match.group(0) + '"'))]
        found.append(Reference("langfuse", parsed[0], parsed[1], parsed[2], raw, path, offset))
    return found


def _promptlayer_in(text: str, path: tuple[Any, ...]) -> list[Reference]:
    return [Reference("promptlayer", m.group(1), m.group(3), m.group(2), m.group(0), path, m.start())
            for m in _PROMPTLAYER_TAG.finditer(text)]


def references_of(spec: PromptSpec, syntax: str) -> Iterator[tuple[str, Reference]]:
    """(version key, reference) for every reference of ``syntax`` in the prompt's versions."""
    for key, version in spec.versions.items():
        for ref in find_references(version.content, syntax):
            yield key, ref


# --------------------------------------------------------------------------- validate


@dataclass(frozen=True)
class Problem:
    """A reference that the platform would refuse or read otherwise: in prompt ``prompt``,
    version ``version``, the reference ``ref``; what is wrong and how to fix it."""

    prompt: str
    version: str
    ref: Reference
    message: str
    hint: str
    severity: str = "error"


def check(specs: Sequence[PromptSpec], targets: Iterable[Any]) -> list[Problem]:
    """What is wrong with the references of ``specs`` on each target whose platform resolves
    references (``Capabilities.composition``), for the prompts that target manages.

    A reference naming a prompt no file declares for the target is fine: it may live only on the
    platform. One naming a prompt of the project must name a text prompt and a label its file
    declares and the target manages (or the latest version); cycles among the files and (on
    Langfuse) chains of 5 or more levels are errors, since the platform refuses to create them.
    Each problem is reported once, however many targets share it."""
    problems: dict[tuple[Any, ...], Problem] = {}
    for target in targets:
        syntax = target.capabilities.composition
        if syntax is None:
            continue
        managed = {s.name: s for s in specs if s.managed_by(target.name)}
        for problem in _check_target(managed, target, syntax):
            key = (problem.prompt, problem.version, problem.ref.path, problem.ref.offset, problem.message)
            problems.setdefault(key, problem)
    return list(problems.values())


def _check_target(managed: Mapping[str, PromptSpec], target: Any, syntax: str) -> Iterator[Problem]:
    platform = PLATFORM[syntax]
    graph = _graph(managed, syntax)
    for spec in managed.values():
        if syntax == "langfuse":
            for key, version in spec.versions.items():
                for path, offset, text in malformed_tags(version.content, syntax):
                    ref = Reference(syntax, "", None, None, text, path, offset)
                    yield Problem(spec.name, key, ref, f"{text} is not a composition tag {platform} reads: it is "
                                  "served as plain text",
                                  "write @@@langfusePrompt:name=NAME|label=LABEL@@@ or "
                                  "@@@langfusePrompt:name=NAME|version=N@@@", severity="warning")
        for key, ref in references_of(spec, syntax):
            if ref.version is not None and ref.pin is None:
                yield Problem(spec.name, key, ref, f"{ref.text} pins version {ref.version!r}, which is not a "
                              "positive whole number", "pin a version number (1, 2, ...) or name a label")
                continue
            if ref.name == spec.name:
                yield Problem(spec.name, key, ref, f"{ref.text} names the prompt itself: a composition cycle "
                              f"{platform} refuses", "compose another prompt, or copy the text in")
                continue
            dep = managed.get(ref.name)
            if dep is None:
                continue  # a prompt of the platform only (or of another target): not ours to check
            if dep.type != "text":
                yield Problem(spec.name, key, ref, f"{ref.text} names {dep.name!r}, a {dep.type} prompt ({dep.path}); "
                              f"{platform} composes only text prompts", f"compose a text prompt, or make "
                              f"{dep.name!r} a text prompt")
                continue
            if ref.label is not None and not ref.latest:
                if ref.label not in dep.labels:
                    declared = ", ".join(sorted(dep.labels)) or "none"
                    yield Problem(spec.name, key, ref, f"{ref.text} names label {ref.label!r} of {dep.name!r}, which "
                                  f"{dep.path} does not declare (its labels: {declared})",
                                  f"name one of its labels, or add {ref.label!r} to labels: in {dep.path}"
                                  + _close(ref.label, dep.labels))
                elif not target.manages_label(ref.label):
                    yield Problem(spec.name, key, ref, f"{ref.text} names label {ref.label!r} of {dep.name!r}, which "
                                  f"{target.who} does not manage", f"name a label the target manages, or add "
                                  f"{ref.label!r} to its labels: in promptops.yaml")
        yield from _cycles_and_depth(spec, managed, graph, syntax)


def _graph(managed: Mapping[str, PromptSpec], syntax: str) -> dict[str, set[str]]:
    """Prompt -> the prompts of ``managed`` its versions reference (self-references left out)."""
    graph: dict[str, set[str]] = {}
    for spec in managed.values():
        graph[spec.name] = {ref.name for _, ref in references_of(spec, syntax)
                            if ref.name in managed and ref.name != spec.name}
    return graph


def _path(graph: Mapping[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A shortest path start -> ... -> goal in ``graph``, or None."""
    previous: dict[str, str] = {}
    queue = [start]
    seen = {start}
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph.get(node, ())):
            if nxt == goal:
                path = [goal, node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return path[::-1]
            if nxt not in seen:
                seen.add(nxt)
                previous[nxt] = node
                queue.append(nxt)
    return None


def _depth(graph: Mapping[str, set[str]], node: str, stack: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The longest acyclic chain of references starting at ``node`` (node first)."""
    best: tuple[str, ...] = (node,)
    for nxt in sorted(graph.get(node, ())):
        if nxt in stack or nxt == node:
            continue
        chain = (node, *_depth(graph, nxt, (*stack, node)))
        if len(chain) > len(best):
            best = chain
    return best


def _cycles_and_depth(spec: PromptSpec, managed: Mapping[str, PromptSpec], graph: Mapping[str, set[str]],
                      syntax: str) -> Iterator[Problem]:
    platform = PLATFORM[syntax]
    reported: set[str] = set()
    for key, ref in references_of(spec, syntax):
        if ref.name not in managed or ref.name == spec.name or ref.name in reported:
            continue
        back = _path(graph, ref.name, spec.name)
        if back is not None:
            reported.add(ref.name)
            yield Problem(spec.name, key, ref, f"{ref.text} closes a composition cycle ({' -> '.join([spec.name, *back])}), "
                          f"which {platform} refuses to create", "remove one of the references in the cycle")
            continue
        if syntax == "langfuse":
            chain = (spec.name, *_depth(graph, ref.name, (spec.name,)))
            if len(chain) - 1 >= LANGFUSE_MAX_DEPTH:
                reported.add(ref.name)
                yield Problem(spec.name, key, ref, f"{ref.text} starts a chain of {len(chain) - 1} nested compositions "
                              f"({' -> '.join(chain)}); {platform} resolves at most {LANGFUSE_MAX_DEPTH - 1}",
                              "inline one level of the chain")


def _close(word: str, options: Iterable[str]) -> str:
    import difflib

    match = difflib.get_close_matches(word, list(options), n=1)
    return f"; did you mean {match[0]!r}?" if match else ""


# --------------------------------------------------------------------------- render


def resolve(content: Mapping[str, Any], specs: Mapping[str, PromptSpec], syntax: str | None, *,
            root: str, target: Any = None) -> dict[str, Any]:
    """``content`` with every reference of ``syntax`` replaced by the text of the version it
    names, taken from the files (``specs``, the prompts the target manages), recursively, as the
    platform serves it; unchanged when ``syntax`` is None. ``root`` names the prompt rendered.

    Raises ConfigError when the files cannot say what the platform would serve: a reference to a
    prompt no file declares for the target, to a label its file does not declare, to a pinned
    platform version number, or to the latest version of a prompt with several versions; and for
    cycles, non-text dependencies and chains past Langfuse's limit."""
    if syntax is None:
        return dict(content)
    out = dict(content)
    if "template" in out and out.get("type") == "text":
        out["template"] = _resolve_text(out["template"], ("template",), specs, syntax, (root,))
    if out.get("messages"):
        out["messages"] = [
            {**m, "content": _resolve_text(m["content"], ("messages", i, "content"), specs, syntax, (root,))}
            if isinstance(m.get("content"), str) else m for i, m in enumerate(out["messages"])]
    return out


def _resolve_text(text: str, path: tuple[Any, ...], specs: Mapping[str, PromptSpec], syntax: str,
                  stack: tuple[str, ...]) -> str:
    refs = find_references({"type": "text", "template": text}, syntax)
    if not refs:
        return text
    if syntax == "langfuse" and len(stack) > LANGFUSE_MAX_DEPTH - 1:
        raise ConfigError(f"{' -> '.join(stack)}: {PLATFORM[syntax]} resolves at most {LANGFUSE_MAX_DEPTH - 1} "
                          "nested compositions")
    pieces: list[str] = []
    at = 0
    for ref in refs:
        pieces.append(text[at:ref.offset])
        pieces.append(_served_text(ref, specs, syntax, stack))
        at = ref.offset + len(ref.text)
    pieces.append(text[at:])
    return "".join(pieces)


def _served_text(ref: Reference, specs: Mapping[str, PromptSpec], syntax: str, stack: tuple[str, ...]) -> str:
    where = f"{stack[-1]}: {ref.text}"
    if ref.name in stack:
        raise ConfigError(f"{where} closes a composition cycle ({' -> '.join([*stack, ref.name])})")
    dep = specs.get(ref.name)
    if dep is None:
        raise ConfigError(f"{where} names prompt {ref.name!r}, which no file declares for this target, so render "
                          f"cannot resolve it from the files (it may live on {PLATFORM[syntax]} only)")
    if dep.type != "text":
        raise ConfigError(f"{where} names {dep.name!r}, a {dep.type} prompt; {PLATFORM[syntax]} composes only text prompts")
    if ref.version is not None:
        raise ConfigError(f"{where} pins {PLATFORM[syntax]} version {ref.version} of {dep.name!r}, a platform "
                          "version number the files do not know; name a label to render it from the files")
    if ref.latest:
        if len(dep.versions) != 1:
            raise ConfigError(f"{where} names the latest version of {dep.name!r}, which the files cannot tell among "
                              f"its {len(dep.versions)} versions; name a label to render it from the files")
        version = next(iter(dep.versions.values()))
    else:
        if ref.label not in dep.labels:
            raise ConfigError(f"{where} names label {ref.label!r} of {dep.name!r}, which {dep.path} does not declare")
        version = dep.versions[dep.labels[str(ref.label)]]
    return _resolve_text(str(version.content.get("template") or ""), ("template",), specs, syntax,
                         (*stack, dep.name))


# --------------------------------------------------------------------------- plan and apply


def affected(specs: Sequence[PromptSpec], syntax: str | None) -> dict[tuple[str, str | None], tuple[str, ...]]:
    """(prompt, label) -> the prompts whose versions reference that label of it, sorted; the key
    (prompt, None) collects the prompts following its latest version. Empty without a syntax."""
    if syntax is None:
        return {}
    found: dict[tuple[str, str | None], set[str]] = {}
    for spec in specs:
        for _, ref in references_of(spec, syntax):
            if ref.name == spec.name or ref.version is not None:
                continue  # a pin follows no label
            found.setdefault((ref.name, None if ref.latest else ref.label), set()).add(spec.name)
    return {key: tuple(sorted(names)) for key, names in found.items()}


def with_affects(actions: Sequence[Action], specs: Sequence[PromptSpec], syntax: str | None) -> list[Action]:
    """``actions`` with ``affects`` set: on a label move, the prompts composing that label; on a
    version create, the prompts following the latest version. Their served text changes though
    no version of theirs is created."""
    index = affected(specs, syntax)
    if not index:
        return list(actions)
    out: list[Action] = []
    for action in actions:
        if isinstance(action, MoveLabel) and (names := index.get((action.prompt, action.label))):
            out.append(replace(action, affects=names))
        elif isinstance(action, CreateVersion) and (names := index.get((action.prompt, None))):
            out.append(replace(action, affects=names))
        else:
            out.append(action)
    return out


def dependencies(actions: Sequence[Action], syntax: str | None) -> dict[str, set[str]]:
    """Prompt -> the other prompts of ``actions`` that a version it creates references: their
    versions and labels must exist before that create (the platform refuses it otherwise)."""
    if syntax is None:
        return {}
    prompts = {a.prompt for a in actions}
    deps: dict[str, set[str]] = {}
    for action in actions:
        if isinstance(action, CreateVersion):
            for ref in find_references(action.content, syntax):
                if ref.name in prompts and ref.name != action.prompt:
                    deps.setdefault(action.prompt, set()).add(ref.name)
    return deps


def dependency_order(prompts: Sequence[str], deps: Mapping[str, set[str]]) -> list[str]:
    """``prompts`` with each after the prompts it depends on (depth first, in the given order); a
    cycle, which the platform refuses anyway, is broken where it is met first."""
    order: list[str] = []
    placed: set[str] = set()
    visiting: set[str] = set()

    def place(name: str) -> None:
        if name in placed or name in visiting:
            return
        visiting.add(name)
        for dep in [p for p in prompts if p in deps.get(name, ())]:
            place(dep)
        visiting.discard(name)
        placed.add(name)
        order.append(name)

    for name in prompts:
        place(name)
    return order
