"""Safe, located YAML loading.

:func:`load_yaml` turns a file's bytes into plain JSON-like data plus a map from each value's path
(a tuple of keys and indexes) to its 1-based (line, column); :func:`load_yaml_file` reads the
file first without ever holding more than ``MAX_BYTES + 1`` bytes. Neither raises for bad input:
every problem is a :class:`~promptops.errors.Diagnostic`, and loading stops at the first problem
it cannot get past. Guards, all reported with a position:

* files over 1 MiB, bytes that are not UTF-8 (the position of the first bad byte);
* YAML syntax errors, located where the fix goes where that differs from where PyYAML noticed
  (an unclosed ``[``/``{``/quote is reported at its opening character, not at the end of file);
* duplicate keys (PyYAML silently keeps the last one); more than one document;
* nesting deeper than ``MAX_DEPTH``, counting what aliases expand to;
* anchors/aliases that expand to more than ``MAX_NODES`` values (the "billion laughs" bomb) and
  aliases that refer to themselves, reported at the alias;
* values JSON cannot hold (dates, binary, custom tags) and non-string keys.

The nesting, document and alias checks run on the event stream, which is flat, before anything
recursive or expanding runs, so a hostile file costs time linear in its size.

A file with no document (empty, or only comments) loads as ``data=None`` with ``empty=True`` and
no diagnostic: whether that is an error is the caller's decision (an empty promptops.yaml is
fine, an empty prompt file is not).
"""
from __future__ import annotations

import errno
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import Diagnostic, clip

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000

Path_ = tuple  # a path into the data: keys (str) and list indexes (int)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16",
         b"\xfe\xff": "UTF-16"}
_UTF8_BOM = b"\xef\xbb\xbf"
_SYNTAX_HINT = "check indentation, quotes and colons"


@dataclass
class Loaded:
    """Result of :func:`load_yaml`: ``data`` is None when a diagnostic stopped loading, or when the
    file holds no document at all (then ``empty`` is True and there is no diagnostic).

    ``block_scalars`` maps the path of each string that can be located character by character to
    ``(line, column, style, end_line)``: the position of the scalar's first character (its
    indicator or opening quote), its style (``"|"``, ``">"``, ``'"'``, ``"'"`` or ``""`` for
    plain) and the 1-based line its node ends on."""

    data: Any = None
    text: str = ""
    positions: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    block_scalars: dict[tuple, tuple[int, int, str, int]] = field(default_factory=dict)
    containers: set[tuple] = field(default_factory=set)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    empty: bool = False

    def where(self, path: tuple, *, key: bool = False) -> tuple[int, int]:
        """Position of the value at ``path`` (or of its key when ``key``), falling back to the
        nearest enclosing value that has one, and to 1:1. A mapping or list is located at its key,
        since its first child is usually on the next line."""
        if (key or path in self.containers) and path in self.key_positions:
            return self.key_positions[path]
        if path in self.positions:
            return self.positions[path]
        while path:
            path = path[:-1]
            if path in self.positions:
                return self.where(path)  # the same rule: an enclosing mapping is located at its key
        return (1, 1)


class _Stop(Exception):
    """Loading cannot continue; carries the diagnostic."""

    def __init__(self, line: int, column: int, message: str, hint: str = ""):
        super().__init__(message)
        self.where = (line, column)
        self.message = message
        self.hint = hint


def _mark(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def too_big(size: int, filename: str) -> Diagnostic | None:
    """The diagnostic for a file of ``size`` bytes when it is over ``MAX_BYTES``, else None."""
    if size <= MAX_BYTES:
        return None
    return Diagnostic(filename, 1, 1, f"file is {size:,} bytes; the limit is {MAX_BYTES:,} (1 MiB)",
                      "split it or move large text out of the prompt")


def load_yaml_file(path: Path, filename: str) -> Loaded:
    """Read ``path`` (:func:`read_file`) and :func:`load_yaml` it, naming it ``filename`` in
    diagnostics. A file that cannot be read is a diagnostic at 1:1, not an exception."""
    raw, problem = read_file(path, filename)
    if problem is not None:
        return Loaded(diagnostics=[problem])
    assert raw is not None
    return load_yaml(raw, filename)


_NOT_REGULAR = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))


def read_file(path: Path, filename: str) -> tuple[bytes | None, Diagnostic | None]:
    """The bytes of the regular file at ``path``, or a diagnostic at 1:1 saying why not.

    Never blocks and never holds more than ``MAX_BYTES + 1`` bytes: the file is opened without
    waiting (a FIFO would otherwise wait forever for a writer) and checked through the open
    descriptor (no race with a swap between a check and the open): a folder, FIFO, socket or
    device is refused, and so is a file over ``MAX_BYTES``, from its size alone and again from
    what was read (it may grow meanwhile). A symlink loop and any OS error are diagnostics too."""
    def problem(message: str, hint: str) -> tuple[None, Diagnostic]:
        return None, Diagnostic(filename, 1, 1, message, hint)

    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return problem("file is a symlink that loops", "replace the symlink with a regular file")
        return problem(f"cannot read file: {exc.strerror or exc}", "check that it exists and is readable")
    try:
        info = os.fstat(fd)
        for test, what in _NOT_REGULAR:
            if test(info.st_mode):
                return problem(f"not a regular file: it is {what}", "replace it with a regular YAML file")
        if (big := too_big(info.st_size, filename)) is not None:
            return None, big
        chunks, size = [], 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        return problem(f"cannot read file: {exc.strerror or exc}", "check that it exists and is readable")
    finally:
        os.close(fd)
    return b"".join(chunks), None


def decode(raw: bytes) -> tuple[str | None, tuple[int, int, str] | None]:
    """Decode UTF-8 (a leading BOM is dropped). On failure return the 1-based line/column of the
    first bad byte (columns count characters, the BOM excluded, as YAML marks do) and a message."""
    raw = raw.removeprefix(_UTF8_BOM)
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        good = raw[: exc.start]
        line = good.count(b"\n") + 1
        column = len(good[good.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        message = f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})"
        for bom, encoding in _BOMS.items():
            if raw.startswith(bom):
                message += f"; it looks like {encoding}"
                break
        return None, (line, column, message)


def load_yaml(raw: bytes, filename: str) -> Loaded:
    """Parse one YAML document from ``raw``; see the module docstring for the guarantees."""
    result = Loaded()

    def stop(line: int, column: int, message: str, hint: str = "") -> Loaded:
        result.diagnostics.append(Diagnostic(filename, line, column, message, hint))
        result.data = None
        return result

    if (big := too_big(len(raw), filename)) is not None:
        result.diagnostics.append(big)
        return result
    text, bad = decode(raw)
    if bad:
        return stop(bad[0], bad[1], bad[2], "save the file as UTF-8")
    assert text is not None
    result.text = text
    try:
        node = _parse(text)
        if node is None:
            result.empty = True
            return result
        result.data = _Builder(result).build(node, (), 1)
    except _Stop as s:
        return stop(s.where[0], s.where[1], s.message, s.hint)
    except yaml.MarkedYAMLError as exc:  # composer errors the event scan cannot see
        return stop(*_syntax_error(exc, text, []))
    except yaml.reader.ReaderError as exc:  # control characters YAML does not allow
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        return stop(line, column, f"invalid YAML: control character U+{exc.character:04X} is not allowed",
                    "remove it, or write it as an escape inside a double-quoted string")
    except yaml.YAMLError as exc:
        return stop(1, 1, f"invalid YAML: {exc}".splitlines()[0], _SYNTAX_HINT)
    return result


@dataclass
class _Frame:
    """An open mapping or sequence in the event stream."""

    anchor: str | None
    start: int        # the node count when it opened
    depth: int        # its own nesting level (1 = the document's top-level collection)
    deepest: int      # deepest level reached inside it so far, aliases expanded
    mark: yaml.Mark
    flow: bool
    opener: str       # "[" or "{"


# libyaml (PyYAML's C extension) parses ~15x faster than the pure-Python parser; the pure parser
# is kept for files that fail, because the diagnostics are worded from its error messages.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def _parse(text: str) -> yaml.Node | None:
    """Scan (guards) and compose ``text``: with libyaml when available; on any problem, again with
    the pure-Python parser, whose errors are the ones :func:`_syntax_error` explains."""
    if _FAST_LOADER is not None:
        try:
            _scan_events(text, _FAST_LOADER)
            return _compose(text, _FAST_LOADER)
        except (yaml.YAMLError, _Stop):
            pass
    _scan_events(text, yaml.SafeLoader)
    return _compose(text, yaml.SafeLoader)


def _scan_events(text: str, loader: type = yaml.SafeLoader) -> None:
    """Walk the event stream (iterative, so it cannot overflow) and refuse: a second document;
    nesting deeper than ``MAX_DEPTH``; aliases that are undefined, refer to an enclosing node of
    their own anchor, or make the document expand to more than ``MAX_NODES`` values or deeper
    than ``MAX_DEPTH``. Syntax errors become a located :class:`_Stop`."""
    stack: list[_Frame] = []
    sizes: dict[str, int] = {}    # anchor -> number of values it expands to
    depths: dict[str, int] = {}   # anchor -> nesting levels it expands to (0 for a scalar)
    defined: dict[str, yaml.Mark] = {}  # anchor -> where it was defined
    count = 0
    documents = 0

    def define(anchor: str | None, mark: yaml.Mark) -> None:
        # YAML 1.2 allows redefining an anchor, PyYAML does not; say so where it happens.
        if anchor is None:
            return
        if anchor in defined:
            first = _mark(defined[anchor])
            raise _Stop(*_mark(mark), f"anchor &{anchor} is defined twice (first on line {first[0]})",
                        "give each anchor its own name")
        defined[anchor] = mark

    def reach(level: int, mark: yaml.Mark, what: str) -> None:
        if level > MAX_DEPTH:
            raise _Stop(*_mark(mark), f"nesting is deeper than {MAX_DEPTH} levels{what}", "flatten the structure")
        if stack:
            stack[-1].deepest = max(stack[-1].deepest, level)

    def counted(n: int, mark: yaml.Mark, alias: str | None) -> None:
        nonlocal count
        count += n
        if count > MAX_NODES:
            if alias is not None:
                raise _Stop(*_mark(mark), f"anchors and aliases expand to more than {MAX_NODES:,} values "
                            f"(*{alias} adds {n:,})", "use fewer aliases; prompt files do not need them")
            raise _Stop(*_mark(mark), f"the file holds more than {MAX_NODES:,} values",
                        "prompt files are small: split it or move data out of it")

    events = yaml.parse(text, Loader=loader)
    while True:
        try:
            event = next(events)
        except StopIteration:
            return
        except yaml.MarkedYAMLError as exc:
            raise _Stop(*_syntax_error(exc, text, [f for f in stack if f.flow])) from None
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            counted(1, event.start_mark, None)
            define(event.anchor, event.start_mark)
            depth = len(stack) + 1
            reach(depth, event.start_mark, "")
            stack.append(_Frame(event.anchor, count, depth, depth, event.start_mark, bool(event.flow_style),
                                "{" if isinstance(event, yaml.MappingStartEvent) else "["))
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            frame = stack.pop()
            if frame.anchor is not None:
                sizes[frame.anchor] = count - frame.start + 1
                depths[frame.anchor] = frame.deepest - frame.depth + 1
            if stack:
                stack[-1].deepest = max(stack[-1].deepest, frame.deepest)
        elif isinstance(event, yaml.ScalarEvent):
            counted(1, event.start_mark, None)
            define(event.anchor, event.start_mark)
            if event.anchor is not None:
                sizes[event.anchor], depths[event.anchor] = 1, 0
        elif isinstance(event, yaml.AliasEvent):
            name = event.anchor
            if any(f.anchor == name for f in stack):
                raise _Stop(*_mark(event.start_mark), f"alias *{name} refers to a node that contains it",
                            "a value cannot include itself; remove the alias")
            if name not in sizes:
                raise _Stop(*_mark(event.start_mark), f"invalid YAML: alias *{name} has no anchor &{name} before it",
                            f"define &{name} first, or quote text that starts with '*'")
            counted(sizes[name], event.start_mark, name)
            reach(len(stack) + depths[name], event.start_mark, f" once *{name} is expanded")
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _Stop(*_mark(event.start_mark), "a prompt file holds one YAML document",
                            "remove the '---' separator and split the file")


# A value that starts with '{{' (mustache) or '{' is YAML flow syntax unless quoted. The brace
# must be the value's FIRST character: at the start of the line or after list dashes ('- '), or
# right after the line's first key ('key: {{x}}'). A key cannot contain ': ', so in
# 'key: Hello: {{x}}' the brace comes after a second ': ' inside the value: nothing there is a
# mapping, and that ': ' is what to quote (the "no new key can start" message says so).
_BRACE_VALUE = re.compile(
    r"""^[ \t]*(?:-[ \t]+)*"""                            # indentation, list dashes
    r"""(?:(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'"""       # a quoted key, or
    r"""|[^\s"'#\[\]{},&*!|>%@`](?:[^:]|:(?![ \t]))*?)"""  # a plain key (no ': ' in it)
    r""":[ \t]+)?"""                                      # and ': '
    r"""(\{)""")


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, open_flows: list[_Frame]) -> tuple[int, int, str, str]:
    """Line, column, message and hint for a PyYAML error, placed where the fix goes.

    ``open_flows`` are the flow collections still open when the parser gave up, outermost first:
    when the parser only noticed at the end of the file, the unclosed opener is the place to look.
    """
    problem = exc.problem or "invalid YAML"
    context = exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    line, column = _mark(mark) if mark else (1, 1)
    lines = text.splitlines()
    at_end = "<stream end>" in problem or "end of stream" in problem

    def source(n: int) -> str:
        return lines[n - 1] if 0 < n <= len(lines) else ""

    # A mustache template written as a plain value: `template: {{name}} ...` parses as a flow
    # mapping and fails somewhere after it. Point at the brace and say to quote it.
    candidates = [f.mark.line + 1 for f in open_flows[:1]] + [line]
    if exc.context_mark is not None:
        candidates.append(exc.context_mark.line + 1)
    for n in candidates:
        found = _BRACE_VALUE.search(source(n))
        if found and source(n)[found.start(1):].startswith("{{"):
            return (n, found.start(1) + 1, f"invalid YAML: {problem}",
                    ("a value that starts with '{' is a YAML mapping: quote the template "
                     "(template: \"{{name}} ...\") or write it as a block (template: |)"))
    if at_end and open_flows:
        first = open_flows[0]
        closer = "]" if first.opener == "[" else "}"
        return (*_mark(first.mark), f"invalid YAML: this '{first.opener}' is never closed",
                f"close it with '{closer}', or quote the value if it is text")
    if at_end and "quoted scalar" in context and exc.context_mark is not None:
        return (*_mark(exc.context_mark), "invalid YAML: this quoted string is never closed",
                "add the closing quote")
    if "could not find expected ':'" in problem and exc.context_mark is not None:
        return (*_mark(exc.context_mark),
                "invalid YAML: this key has no ':' after it (or the line before it ends a quoted string early)",
                "write key: value")
    if "'\\t'" in problem and "cannot start any token" in problem:
        return (line, column, "invalid YAML: a tab character where YAML expects spaces",
                "YAML indents with spaces: replace the tab with spaces")
    if "cannot start any token" in problem:
        return (line, column, f"invalid YAML: {problem}", "quote the value")
    if "${" in source(line) and "'{'" in problem:
        dollar = source(line).rfind("${", 0, column)  # point at the reference to quote
        return (line, dollar + 1 if dollar >= 0 else column, f"invalid YAML: {problem}",
                "inside {...}, quote ${VAR} references: {api_key: \"${API_KEY}\"}")
    if problem == "mapping values are not allowed here":
        return (line, column, "invalid YAML: a ': ' where no new key can start",
                "quote the value if it contains ': ', or fix the indentation of this key")
    if problem.startswith("expected <block end>"):
        return (line, column, "invalid YAML: this line does not fit the indentation of the block above it",
                "line it up with the other keys or list items of its block")
    if "unknown escape character" in problem:
        return (line, column, f"invalid YAML: {problem}",
                "in double quotes write a backslash as \\\\, or use single quotes")
    if context.startswith("while parsing a flow") and exc.context_mark is not None:
        opened = _mark(exc.context_mark)
        return (line, column, f"invalid YAML: {problem}",
                f"is the bracket opened at line {opened[0]}, column {opened[1]} closed? Quote the value if it is text")
    return (line, column, f"invalid YAML: {problem}" + (f" ({context})" if context else ""), _SYNTAX_HINT)


def _compose(text: str, loader_class: type = yaml.SafeLoader) -> yaml.Node | None:
    loader = loader_class(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


_SURROGATE = re.compile("[\ud800-\udfff]")
# a backslash escape in a double-quoted scalar; groups: the hex digits of \\uXXXX or \\UXXXXXXXX
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|.)", re.DOTALL)
_STANDARD_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null"))
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


class _Builder:
    """Builds plain data from composed nodes, recording positions and counting expanded nodes.

    The event scan has already bounded depth and expansion; the checks here are a second line of
    defence that also covers ``<<`` merges (which expand a mapping a second time)."""

    def __init__(self, out: Loaded):
        self.out = out
        self.count = 0
        self.active: set[int] = set()  # ids of the nodes being built: an alias cycle revisits one
        self.scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: tuple, depth: int) -> Any:
        self.count += 1
        m = node.start_mark
        if self.count > MAX_NODES:
            raise _Stop(m.line + 1, m.column + 1,
                        f"anchors and aliases expand to more than {MAX_NODES:,} values",
                        "use fewer aliases; prompt files do not need them")
        if depth > MAX_DEPTH or id(node) in self.active:
            raise _Stop(m.line + 1, m.column + 1, f"nesting is deeper than {MAX_DEPTH} levels once aliases are expanded",
                        "use fewer aliases; prompt files do not need them")
        # First position wins: an alias re-uses nodes, and the first sighting is the definition.
        self.out.positions.setdefault(path, (m.line + 1, m.column + 1))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if node.tag not in _COLLECTION_TAGS:
            # !!set, !!omap, !!python/... on a mapping or list: refuse rather than silently drop it
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise _Stop(m.line + 1, m.column + 1, f"unsupported YAML tag {tag}",
                        "remove the tag: prompt files hold plain strings, numbers, booleans, lists and mappings")
        self.out.containers.add(path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path, depth)
            return [self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def _explicit_tag(self, node: yaml.Node) -> bool:
        """True when the user wrote a tag (``!foo``/``!!binary``); False when PyYAML resolved one
        from a plain value (``2024-01-01`` is implicitly a timestamp)."""
        index = node.start_mark.index
        return self.out.text[index : index + 1] == "!"

    def _scalar(self, node: yaml.ScalarNode, path: tuple) -> Any:
        m = node.start_mark
        if node.tag not in _STANDARD_TAGS:
            if self._explicit_tag(node):
                tag = node.tag.replace("tag:yaml.org,2002:", "!!")
                raise _Stop(m.line + 1, m.column + 1, f"unsupported YAML tag {tag}",
                            "remove the tag: prompt files hold plain strings, numbers, booleans, lists and mappings")
            kind = node.tag.rsplit(":", 1)[-1]
            raise _Stop(m.line + 1, m.column + 1, f"{clip(node.value)!r} is read as a YAML {kind}, not a string",
                        f"quote it to make it a string: \"{clip(node.value)}\"")
        try:
            value = self.scalars.construct_object(node, deep=True)
        except (yaml.constructor.ConstructorError, ValueError, KeyError, TypeError):
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise _Stop(m.line + 1, m.column + 1, f"{clip(node.value)!r} is not a valid {tag} value",
                        "remove the tag or fix the value") from None
        if isinstance(value, str) and _SURROGATE.search(value):
            raise self._surrogate(node)
        if isinstance(value, float) and not math.isfinite(value):
            raise _Stop(m.line + 1, m.column + 1, f"{clip(node.value)!r} is not a finite number", "quote it or use a number")
        if node.style in ("|", ">") or node.start_mark.line == node.end_mark.line:
            self.out.block_scalars.setdefault(
                path, (m.line + 1, m.column + 1, node.style or "", node.end_mark.line + 1))
        return value

    def _surrogate(self, node: yaml.Node) -> _Stop:
        """The error for a string holding a UTF-16 surrogate, located at the escape that wrote it.

        Only a double-quoted ``\\uD800``-style escape can produce one (decoding UTF-8 never does);
        PyYAML accepts it, but the result is no character: it cannot be written as UTF-8 (not to
        a digest, a database, an HTTP body or the terminal). Refusing it here, for every key and
        value of every file, means nothing after loading ever holds one."""
        text = self.out.text
        start, end = node.start_mark.index, node.end_mark.index
        for found in _ESCAPE.finditer(text, start, end):
            code = found.group(1) or found.group(2)
            if code is None or not 0xD800 <= int(code, 16) <= 0xDFFF:
                continue
            line = text.count("\n", 0, found.start()) + 1
            column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
            escape = found.group(0)
            pair = _ESCAPE.match(text, found.end(), end)
            high, low = int(code, 16), int((pair and (pair.group(1) or pair.group(2))) or "0", 16)
            if 0xD800 <= high <= 0xDBFF and 0xDC00 <= low <= 0xDFFF:
                char = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                hint = (f"YAML does not join {escape}{pair.group(0) if pair else ''} into one character: "
                        f"write \\U{char:08X} or the character itself")
            else:
                hint = "remove it, or write the character it stands for as \\uXXXX, \\UXXXXXXXX or itself"
            return _Stop(line, column, f"{escape} is a UTF-16 surrogate, not a character (UTF-8 cannot hold it)",
                         hint)
        m = node.start_mark
        return _Stop(m.line + 1, m.column + 1, "this string holds a UTF-16 surrogate, not a character",
                     "remove the \\u escape that writes it")

    def _mapping(self, node: yaml.MappingNode, path: tuple, depth: int) -> dict[str, Any]:
        """The mapping's own keys first, then ``<<`` merges for keys it does not set, so an
        overriding key keeps its own position rather than the merged one's."""
        result: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            key = self._key(key_node)
            kpos = _mark(key_node.start_mark)
            if key in result:
                first = self.out.key_positions.get(path + (key,), (0, 0))
                raise _Stop(kpos[0], kpos[1], f"duplicate key {clip(key)!r} (first defined on line {first[0]})",
                            "remove one of them; YAML would silently keep only the last")
            self.out.key_positions.setdefault(path + (key,), kpos)
            result[key] = self.build(value_node, path + (key,), depth + 1)
        for merge in merges:
            for key, value in self._merge_sources(merge, path, depth).items():
                result.setdefault(key, value)
        return result

    def _key(self, key_node: yaml.Node) -> str:
        m = key_node.start_mark
        if not isinstance(key_node, yaml.ScalarNode):
            raise _Stop(m.line + 1, m.column + 1, "mapping keys must be plain strings",
                        "a key cannot be a list or a mapping")
        if key_node.tag not in _STANDARD_TAGS:
            if self._explicit_tag(key_node):
                tag = key_node.tag.replace("tag:yaml.org,2002:", "!!")
                raise _Stop(m.line + 1, m.column + 1, f"unsupported YAML tag {tag} on a mapping key", "remove the tag")
            raise _Stop(m.line + 1, m.column + 1, f"mapping key {clip(key_node.value)!r} is not a string",
                        f"quote it: \"{clip(key_node.value)}\"")
        try:
            key = self.scalars.construct_object(key_node)
        except (yaml.constructor.ConstructorError, ValueError, KeyError, TypeError):
            raise _Stop(m.line + 1, m.column + 1, f"mapping key {clip(key_node.value)!r} is not a valid value",
                        "remove the tag or quote the key") from None
        if isinstance(key, bool) or key is None or not isinstance(key, (str, int, float)):
            raise _Stop(m.line + 1, m.column + 1, f"mapping key {clip(key_node.value)!r} is not a string",
                        f"quote it: \"{clip(key_node.value)}\"")
        if isinstance(key, str) and _SURROGATE.search(key):
            raise self._surrogate(key_node)
        # A number key keeps the spelling the user wrote: version keys 1.10 and 1.1 are different
        # names, not both the float 1.1.
        return key if isinstance(key, str) else key_node.value

    def _merge_sources(self, node: yaml.Node, path: tuple, depth: int) -> dict[str, Any]:
        """``<<: *alias`` or ``<<: [*a, *b]``; earlier sources win, as YAML specifies."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                m = source.start_mark
                raise _Stop(m.line + 1, m.column + 1, "'<<' merges mappings only",
                            "write <<: *anchor where &anchor names a mapping")
            if id(source) in self.active:
                m = source.start_mark
                raise _Stop(m.line + 1, m.column + 1, "'<<' merges a mapping into itself", "remove the merge")
            self.count += 1
            self.active.add(id(source))
            try:
                for key, value in self._mapping(source, path, depth).items():
                    merged.setdefault(key, value)
            finally:
                self.active.discard(id(source))
        return merged
