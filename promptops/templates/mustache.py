"""Mustache: a hand-written, linear, non-recursive parser and a strict renderer (see the package docstring)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from .base import (
    MAX_SECTION_DEPTH,
    TemplateInfo,
    TemplateProblem,
    clip,
    missing_error,
)



@dataclass(slots=True)
class _MVar:
    name: str
    parts: tuple[str, ...]


@dataclass(slots=True)
class _MSection:
    name: str
    parts: tuple[str, ...]
    inverted: bool
    offset: int
    tag: str  # the opening tag as written, for messages
    close: str  # the closing tag to suggest, in the delimiters of the opening tag
    children: list[_MNode] = field(default_factory=list)


_MNode = Union[str, _MVar, _MSection]

_SIGILS = frozenset("#^/!=>&{<$")
# Tags the standalone-line rule applies to; variables are never standalone.
_STANDALONE_SIGILS = frozenset("#^/!=><$")
_UNSUPPORTED = {">": "partials", "<": "parent templates", "$": "blocks"}
_MISSING = object()


class _Finder:
    """``str.find`` with memory, so searching the same needle from many starts stays linear.

    The scanner searches for a close delimiter after every opener; after thousands of
    unclosed openers, plain ``str.find`` would rescan the same tail each time. A cached hit is
    still the right answer for any start between the previous start and that hit.
    """

    __slots__ = ("_text", "_cache")

    def __init__(self, text: str):
        self._text = text
        self._cache: dict[str, tuple[int, int]] = {}

    def find(self, needle: str, start: int) -> int:
        cached = self._cache.get(needle)
        if cached is not None:
            since, found = cached
            if since <= start and (found == -1 or start <= found):
                return found
        found = self._text.find(needle, start)
        self._cache[needle] = (start, found)
        return found


def _split_name(name: str) -> tuple[str, ...] | None:
    """Split a dotted name into parts; None when a part is empty (``a..b``, ``.a``)."""
    if name == ".":
        return (".",)
    parts = tuple(name.split("."))
    return None if "" in parts else parts


def _standalone_span(t: str, start: int, end: int, floor: int) -> tuple[int, int] | None:
    """Return the span of the whole line around tag ``t[start:end]`` if the tag stands alone.

    Standalone means only spaces/tabs around it, from a line start to a newline or the end of
    the template. ``floor`` bounds the backward scan (the end of the previous token), which
    keeps the total scanning linear.
    """
    line_start = start
    while line_start > floor and t[line_start - 1] in " \t":
        line_start -= 1
    if line_start > 0 and t[line_start - 1] != "\n":
        return None
    line_end = end
    n = len(t)
    while line_end < n and t[line_end] in " \t":
        line_end += 1
    if line_end == n:
        return line_start, n
    if t[line_end] == "\n":
        return line_start, line_end + 1
    if t.startswith("\r\n", line_end):
        return line_start, line_end + 2
    return None


class _MustacheParser:
    """One left-to-right pass over a mustache template, building the tree and the analysis.

    Sections are kept on an explicit stack, so nesting depth never turns into Python
    recursion here.
    """

    def __init__(self, template: str):
        self.t = template
        self.find = _Finder(template).find
        self.otag, self.ctag = "{{", "}}"
        self.root: list[_MNode] = []
        self.stack: list[_MSection] = []
        self.open_names: Counter[str] = Counter()
        self.context_depth = 0  # open sections that push an item (inverted ones do not)
        self.variables: set[str] = set()
        self.inner: set[str] = set()
        self.problems: list[TemplateProblem] = []
        self.depth_reported = False

    def problem(self, message: str, offset: int, hint: str = "") -> None:
        self.problems.append(TemplateProblem(message, offset, hint))

    def children(self) -> list[_MNode]:
        return self.stack[-1].children if self.stack else self.root

    def use(self, top: str) -> None:
        (self.inner if self.context_depth else self.variables).add(top)

    def parse(self) -> tuple[list[_MNode], TemplateInfo]:
        t, n = self.t, len(self.t)
        pos = 0  # where to look for the next tag
        text_start = 0  # start of literal text not yet added to the tree
        while True:
            start = self.find(self.otag, pos)
            if start == -1:
                break
            body = start + len(self.otag)
            sigil = t[body] if body < n and t[body] in _SIGILS else ""
            inner_start = body + len(sigil)
            close = self.find(self.ctag, inner_start)
            if close == -1:
                # No close delimiter anywhere after this opener, so no later tag can close.
                self.problem(
                    f"unclosed tag {clip(t[start : start + 80])}", start, f"close it with {self.ctag}"
                )
                break
            if sigil != "=":
                nested = self.find(self.otag, inner_start)
                if -1 < nested < close:
                    self.problem(
                        f"unclosed tag {clip(t[start:nested]).rstrip()}",
                        start,
                        f"close it with {self.ctag} before the next {self.otag}",
                    )
                    pos = nested
                    continue
            content_end, end, bad_close = self._close_of(sigil, start, inner_start, close)
            span = None
            if sigil in _STANDALONE_SIGILS:
                span = _standalone_span(t, start, end, text_start)
            text_end, pos = span if span else (start, end)
            if text_end > text_start:
                self.children().append(t[text_start:text_end])
            text_start = pos
            if bad_close:
                self.problems.append(bad_close)
            if not (bad_close and sigil == "="):  # a malformed set-delimiter tag sets nothing
                self._tag(sigil, clip(t[start:end]), start, t[inner_start:content_end])
        if n > text_start:
            self.children().append(t[text_start:])
        for section in self.stack:
            self.problem(f"unclosed section {section.tag}", section.offset, f"close it with {section.close}")
        self.problems.sort(key=lambda p: p.offset)
        info = TemplateInfo(
            frozenset(self.variables), tuple(self.problems), frozenset(self.inner - self.variables)
        )
        return self.root, info

    def _close_of(
        self, sigil: str, start: int, inner_start: int, close: int
    ) -> tuple[int, int, TemplateProblem | None]:
        """Return (content end, tag end, problem) for a tag whose first close delimiter is at ``close``.

        Triple mustaches end with ``}`` + close delimiter, set-delimiter tags with ``=`` + close
        delimiter; when that ending is missing the tag ends at the plain close delimiter.
        """
        end = close + len(self.ctag)
        if sigil not in ("{", "="):
            return close, end, None
        ending = ("}" if sigil == "{" else "=") + self.ctag
        found = self.find(ending, inner_start)
        if found != -1 and found <= close:
            return found, found + len(ending), None
        tag = clip(self.t[start:end])
        if sigil == "{":
            problem = TemplateProblem(
                f"triple mustache {tag} is not closed with '{ending}'",
                start,
                f"write {self.otag}{{name{ending} or {self.otag}name{self.ctag}",
            )
        else:
            problem = TemplateProblem(
                f"set-delimiter tag {tag} does not end with '{ending}'",
                start,
                f"write it as {self.otag}=<% %>={self.ctag}",
            )
        return close, end, problem

    def _tag(self, sigil: str, tag: str, start: int, content: str) -> None:
        """Record one tag; ``tag`` is its text as written (clipped), for messages."""
        name = content.strip()
        if sigil in ("", "&", "{"):
            self._variable(name, tag, start)
        elif sigil in ("#", "^"):
            self._open(name, tag, start, inverted=sigil == "^")
        elif sigil == "/":
            self._close(name, tag, start)
        elif sigil == "=":
            self._set_delimiters(content, tag, start)
        elif sigil in _UNSUPPORTED:
            self.problem(f"{_UNSUPPORTED[sigil]} are not supported: {tag}", start, "inline the text")
            if sigil in "<$":
                # Parents and blocks enclose text up to {{/name}}; open them so that closing
                # tag is not reported a second time.
                self._open(name, tag, start, inverted=True, uses_name=False)
        # "!" is a comment: nothing to record.

    def _parts(self, name: str, tag: str, start: int) -> tuple[str, ...] | None:
        parts = _split_name(name)
        if parts is None:
            self.problem(f"bad name {name!r} in {tag}", start, "dotted names look like user.name")
        elif parts == (".",) and not self.context_depth:
            self.problem(
                f"{tag} outside a section has no item to print",
                start,
                f"use it inside {self.otag}#list{self.ctag}...{self.otag}/list{self.ctag}",
            )
            return None
        return parts

    def _variable(self, name: str, tag: str, start: int) -> None:
        if not name:
            self.problem(f"empty tag {tag}", start, "put a variable name inside or remove it")
            return
        parts = self._parts(name, tag, start)
        if parts is None:
            return
        self.children().append(_MVar(name, parts))
        if parts != (".",):
            self.use(parts[0])

    def _open(self, name: str, tag: str, start: int, *, inverted: bool, uses_name: bool = True) -> None:
        if not name and uses_name:
            self.problem(
                f"section tag without a name: {tag}", start,
                f"name the list or flag, e.g. {self.otag}#items{self.ctag}",
            )
        parts = self._parts(name, tag, start) if name and uses_name else None
        if parts and parts != (".",):
            self.use(parts[0])
        if len(self.stack) >= MAX_SECTION_DEPTH and not self.depth_reported:
            self.depth_reported = True
            self.problem(
                f"sections nested more than {MAX_SECTION_DEPTH} levels deep", start,
                "flatten the template; split deep structures into separate variables",
            )
        # A section with a bad name is still pushed, so its closing tag matches.
        section = _MSection(
            name, parts or (name,), inverted, start, tag, f"{self.otag}/{name}{self.ctag}"
        )
        self.children().append(section)
        self.stack.append(section)
        self.open_names[name] += 1
        if not inverted:
            self.context_depth += 1

    def _pop(self) -> None:
        section = self.stack.pop()
        self.open_names[section.name] -= 1
        if not section.inverted:
            self.context_depth -= 1

    def _close(self, name: str, tag: str, start: int) -> None:
        if not self.stack:
            self.problem(
                f"closing tag {tag} has no open section", start,
                f"remove it or open the section before it with {self.otag}#{name}{self.ctag}",
            )
            return
        top = self.stack[-1]
        if top.name == name:
            self._pop()
            return
        self.problem(
            f"closing tag {tag} does not match open section {top.tag}", start,
            f"close {top.tag} with {top.close} first",
        )
        # Recover: close down to the named section if it is open (the sections skipped are
        # covered by this problem); otherwise assume a typo for the innermost section's name.
        if self.open_names[name]:
            while self.stack[-1].name != name:
                self._pop()
        self._pop()

    def _set_delimiters(self, content: str, tag: str, start: int) -> None:
        delimiters = content.split()
        if len(delimiters) != 2 or any("=" in d for d in delimiters):
            self.problem(
                f"bad set-delimiter tag {tag}", start,
                f"write it as {self.otag}=<% %>={self.ctag}: two delimiters separated by a space, "
                "without spaces or '=' inside",
            )
            return
        self.otag, self.ctag = delimiters


def parse_mustache(template: str) -> tuple[list[_MNode], TemplateInfo]:
    return _MustacheParser(template).parse()


def _lookup(parts: tuple[str, ...], stack: list[Any]) -> tuple[Any, str]:
    """Resolve a name against the context stack; return (value or _MISSING, missing name)."""
    if parts == (".",):
        return stack[-1], ""
    head = parts[0]
    for context in reversed(stack):
        if isinstance(context, Mapping) and head in context:
            value = context[head]
            break
    else:
        return _MISSING, head
    # Like the spec, the rest of a dotted name resolves only inside what the head found.
    for part in parts[1:]:
        if not (isinstance(value, Mapping) and part in value):
            return _MISSING, ".".join(parts)
        value = value[part]
    return value, ""


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def _render_nodes(nodes: list[_MNode], stack: list[Any], out: list[str], missing: set[str]) -> None:
    """Render ``nodes`` into ``out``. Recursion depth is bounded by MAX_SECTION_DEPTH."""
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
            continue
        value, missing_name = _lookup(node.parts, stack)
        if value is _MISSING:
            missing.add(missing_name)
        elif isinstance(node, _MVar):
            out.append("" if value is None else str(value))
        elif node.inverted:
            if not value:
                _render_nodes(node.children, stack, out, missing)
        elif not value:
            continue
        elif _is_list(value):
            for item in value:
                stack.append(item)
                _render_nodes(node.children, stack, out, missing)
                stack.pop()
        else:
            stack.append(value)
            _render_nodes(node.children, stack, out, missing)
            stack.pop()


def render_mustache(nodes: list[_MNode], values: Mapping[str, Any]) -> str:
    out: list[str] = []
    missing: set[str] = set()
    _render_nodes(nodes, [values], out, missing)
    if missing:
        raise missing_error(sorted(missing))
    return "".join(out)


