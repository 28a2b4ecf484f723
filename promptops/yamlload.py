"""Safe, located YAML loading.

:func:`load_yaml` turns a file's bytes into plain JSON-like data plus a map from each value's path
(a tuple of keys and indexes) to its 1-based (line, column). It never raises for bad input: every
problem is a :class:`~promptops.errors.Diagnostic`, and loading stops at the first problem it
cannot get past. Guards, all reported with a position:

* files over 1 MiB, bytes that are not UTF-8 (the position of the first bad byte);
* YAML syntax errors; duplicate keys (PyYAML silently keeps the last one);
* nesting deeper than ``MAX_DEPTH`` (checked on the event stream, before anything recursive runs);
* anchors/aliases that expand to more than ``MAX_NODES`` values (the "billion laughs" bomb);
* values JSON cannot hold (dates, binary, custom tags) and non-string keys.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import Diagnostic

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000

Path_ = tuple  # a path into the data: keys (str) and list indexes (int)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_JSON_SCALARS = (str, int, float, bool, type(None))


@dataclass
class Loaded:
    """Result of :func:`load_yaml`: ``data`` is None when a diagnostic stopped loading."""

    data: Any = None
    text: str = ""
    positions: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    block_scalars: dict[tuple, tuple[int, int, str]] = field(default_factory=dict)
    containers: set[tuple] = field(default_factory=set)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def where(self, path: tuple, *, key: bool = False) -> tuple[int, int]:
        """Position of the value at ``path`` (or of its key when ``key``), falling back to the
        nearest enclosing value that has one, and to 1:1. A mapping or list is located at its key,
        since its first child is usually on the next line."""
        if key or (path in self.containers and path in self.key_positions):
            if path in self.key_positions:
                return self.key_positions[path]
        if path in self.positions:
            return self.positions[path]
        while path:
            path = path[:-1]
            if path in self.positions:
                return self.positions[path]
        return (1, 1)


class _Stop(Exception):
    """Loading cannot continue; carries the diagnostic."""

    def __init__(self, line: int, column: int, message: str, hint: str = ""):
        super().__init__(message)
        self.where = (line, column)
        self.message = message
        self.hint = hint


def decode(raw: bytes) -> tuple[str | None, tuple[int, int, str] | None]:
    """Decode UTF-8 (a BOM is allowed). On failure return the 1-based line/column of the first bad
    byte and a message."""
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        good = raw[: exc.start]
        line = good.count(b"\n") + 1
        column = len(good[good.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        return None, (line, column, f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})")


def load_yaml(raw: bytes, filename: str) -> Loaded:
    """Parse one YAML document from ``raw``; see the module docstring for the guarantees."""
    result = Loaded()

    def stop(line: int, column: int, message: str, hint: str = "") -> Loaded:
        result.diagnostics.append(Diagnostic(filename, line, column, message, hint))
        result.data = None
        return result

    if len(raw) > MAX_BYTES:
        return stop(1, 1, f"file is {len(raw):,} bytes; the limit is {MAX_BYTES:,} (1 MiB)",
                    "split it or move large text out of the prompt")
    text, bad = decode(raw)
    if bad:
        return stop(bad[0], bad[1], bad[2], "save the file as UTF-8")
    assert text is not None
    result.text = text
    try:
        _check_depth(text)
        node = _compose(text)
        if node is None:
            return stop(1, 1, "file is empty", "a prompt file is a YAML mapping with at least a template or versions")
        result.data = _Builder(result).build(node, ())
    except _Stop as s:
        return stop(s.where[0], s.where[1], s.message, s.hint)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{exc.context}: {problem}" if "found" in problem else f"{problem} ({exc.context})"
        return stop(line, column, f"invalid YAML: {problem}", "check indentation, quotes and colons")
    except yaml.reader.ReaderError as exc:  # control characters YAML does not allow
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        return stop(line, column, f"invalid YAML: control character U+{exc.character:04X} is not allowed",
                    "remove it, or write it as an escape inside a double-quoted string")
    except yaml.YAMLError as exc:
        return stop(1, 1, f"invalid YAML: {exc}".splitlines()[0])
    return result


def _check_depth(text: str) -> None:
    """Walk the event stream (iterative, so it cannot overflow) and refuse deep nesting and
    multiple documents."""
    depth = 0
    documents = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                m = event.start_mark
                raise _Stop(m.line + 1, m.column + 1, f"nesting is deeper than {MAX_DEPTH} levels",
                            "flatten the structure")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                m = event.start_mark
                raise _Stop(m.line + 1, m.column + 1, "a prompt file holds one YAML document",
                            "remove the '---' separator and split the file")


def _compose(text: str) -> yaml.Node | None:
    loader = yaml.SafeLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


class _Builder:
    """Builds plain data from composed nodes, recording positions and counting expanded nodes."""

    def __init__(self, out: Loaded):
        self.out = out
        self.count = 0
        self.scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: tuple) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            m = node.start_mark
            raise _Stop(m.line + 1, m.column + 1,
                        f"anchors and aliases expand to more than {MAX_NODES:,} values",
                        "use fewer aliases; prompt files do not need them")
        # First position wins: an alias re-uses nodes, and the first sighting is the definition.
        self.out.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            self.out.containers.add(path)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.ScalarNode, path: tuple) -> Any:
        try:
            value = self.scalars.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            m = node.start_mark
            raise _Stop(m.line + 1, m.column + 1, f"unsupported YAML value: {exc.problem}",
                        "use plain strings, numbers, booleans, lists and mappings") from None
        if not isinstance(value, _JSON_SCALARS):
            m = node.start_mark
            raise _Stop(m.line + 1, m.column + 1,
                        f"unsupported YAML value of type {type(value).__name__}: {node.value!r}",
                        "quote it to make it a string")
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            m = node.start_mark
            raise _Stop(m.line + 1, m.column + 1, f"{node.value!r} is not a finite number", "quote it or use a number")
        if node.style in ("|", ">"):
            self.out.block_scalars[path] = (node.start_mark.line + 1, node.start_mark.column + 1, node.style)
        elif node.style in ('"', "'", None) and node.start_mark.line == node.end_mark.line:
            self.out.block_scalars[path] = (node.start_mark.line + 1, node.start_mark.column + 1, node.style or "")
        return value

    def _mapping(self, node: yaml.MappingNode, path: tuple) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.update(self._merge_sources(value_node, path))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                m = key_node.start_mark
                raise _Stop(m.line + 1, m.column + 1, "mapping keys must be plain strings")
            key = self.scalars.construct_object(key_node)
            if isinstance(key, bool) or key is None or not isinstance(key, (str, int, float)):
                m = key_node.start_mark
                raise _Stop(m.line + 1, m.column + 1, f"mapping key {key_node.value!r} is not a string",
                            f"quote it: \"{key_node.value}\"")
            key = str(key)
            kpos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in result:
                first = self.out.key_positions.get(path + (key,), (0, 0))
                raise _Stop(kpos[0], kpos[1], f"duplicate key {key!r} (first defined on line {first[0]})",
                            "remove one of them; YAML would silently keep only the last")
            self.out.key_positions[path + (key,)] = kpos
            result[key] = self.build(value_node, path + (key,))
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def _merge_sources(self, node: yaml.Node, path: tuple) -> dict[str, Any]:
        """``<<: *alias`` or ``<<: [*a, *b]``; earlier sources win, as YAML specifies."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                m = source.start_mark
                raise _Stop(m.line + 1, m.column + 1, "'<<' merges mappings only")
            for key, value in self._mapping(source, path).items():
                merged.setdefault(key, value)
        return merged
