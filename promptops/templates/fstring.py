"""f-string: Python str.format syntax with plain named fields only (see the package docstring)."""
from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

from .base import (
    TemplateInfo,
    TemplateProblem,
    TemplateRenderError,
    clip,
    missing_error,
    problems_error,
)


_BRACES = re.compile(r"[{}]")
_FIELD_NAME_END = re.compile(r"[!:\[]")
_FORMATTER = string.Formatter()


class _FStringScan:
    """Locate every field and brace problem the way ``str.format`` parses, but with offsets.

    Mirrors CPython's MarkupIterator: outside fields ``{{``/``}}`` are literal braces; a field
    runs from ``{`` to the ``}`` that brings the brace count back to zero; its format spec is
    parsed again as a format string, one level deep.
    """

    def __init__(self, template: str):
        self.t = template
        self.variables: set[str] = set()
        self.problems: list[TemplateProblem] = []
        # Brace matches, computed once the first unclosed '{' is seen: without them every
        # later '{' would rescan to the end of the template again (quadratic).
        self.matches: dict[int, int] | None = None

    def problem(self, message: str, offset: int, hint: str = "") -> None:
        self.problems.append(TemplateProblem(message, offset, hint))

    def scan(self, start: int, end: int, nested: bool) -> None:
        t, i = self.t, start
        while True:
            match = _BRACES.search(t, i, end)
            if match is None:
                return
            j = match.start()
            doubled = j + 1 < end and t[j + 1] == t[j]
            if doubled:
                i = j + 2
            elif t[j] == "}":
                self.problem("single '}' outside a field", j, "write '}}' for a literal brace")
                i = j + 1
            else:
                close = self.field_end(j, end)
                if close == -1:
                    self.problem("unclosed '{'", j, "close the field with '}', or write '{{' for a literal brace")
                    i = j + 1
                else:
                    self.field(j, close, nested)
                    i = close + 1

    def field_end(self, j: int, end: int) -> int:
        """Return the offset of the '}' closing the field opened at ``j``, or -1."""
        if self.matches is not None:
            return self.matches.get(j, -1)
        depth = 0
        for match in _BRACES.finditer(self.t, j, end):
            depth += 1 if match.group() == "{" else -1
            if depth == 0:
                return match.start()
        # Only the top level (end == len) can be unclosed: inside a closed field every '{'
        # closes before the field does.
        self.matches = _match_braces(self.t, j)
        return -1

    def field(self, j: int, close: int, nested: bool) -> None:
        t, end = self.t, close
        k = j + 1
        while True:  # the name runs to '!' or ':'; CPython skips over a bracketed index
            match = _FIELD_NAME_END.search(t, k, end)
            if match is None or match.group() != "[":
                k = end if match is None else match.start()
                break
            bracket = t.find("]", match.start(), end)
            k = end if bracket == -1 else bracket + 1
        name, text = t[j + 1 : k], clip(t[j : close + 1])
        self.check_name(name, text, j)
        if k < end and t[k] == "!":
            if not self.check_conversion(k, end, text, j):
                return
            k += 2
        if k < end:  # t[k] == ":": the format spec
            if not nested:
                self.scan(k + 1, end, nested=True)
            elif t.find("{", k + 1, end) != -1:
                self.problem(
                    f"format spec fields cannot nest further: {text}", j,
                    "use at most one level of {name} inside a format spec",
                )

    def check_name(self, name: str, text: str, offset: int) -> None:
        head = re.split(r"[.\[]", name, maxsplit=1)[0]
        if head == "" or head.isdecimal():
            self.problem(f"f-string fields must be named: {text}", offset, "write a name, e.g. {customer}")
        elif "." in name or "[" in name:
            self.problem(
                f"only plain names are supported: {text}", offset,
                "pass the value as its own variable, e.g. {customer_name}",
            )
        elif not name.isidentifier():
            self.problem(
                f"not a valid field name: {text}", offset,
                "use a Python identifier, or write '{{' and '}}' for literal braces",
            )
        else:
            self.variables.add(name)

    def check_conversion(self, k: int, end: int, text: str, offset: int) -> bool:
        """Check ``!x`` at ``k``; return False when the rest of the field cannot be read."""
        t = self.t
        if k + 1 >= end:
            self.problem(f"missing conversion after '!' in {text}", offset, "write !r, !s or !a, or drop the '!'")
            return False
        if t[k + 1] not in "rsa":
            self.problem(f"unknown conversion '!{t[k + 1]}' in {text}", offset, "use !r, !s or !a")
        if k + 2 < end and t[k + 2] != ":":
            self.problem(
                f"expected ':' after the conversion in {text}", offset,
                "a conversion is one letter, optionally followed by ':' and a format spec",
            )
            return False
        return True


def _match_braces(t: str, start: int) -> dict[int, int]:
    """Map each '{' in ``t[start:]`` to the '}' that brings the count from it back to zero."""
    matches: dict[int, int] = {}
    opens: list[int] = []
    for match in _BRACES.finditer(t, start):
        if match.group() == "{":
            opens.append(match.start())
        elif opens:
            matches[opens.pop()] = match.start()
    return matches


def analyze_fstring(template: str) -> TemplateInfo:
    scan = _FStringScan(template)
    scan.scan(0, len(template), nested=False)
    problems = sorted(scan.problems, key=lambda p: p.offset)
    if not problems:
        # Python's own parser is the authority; this only fires if the scanner above ever
        # accepts something str.format rejects.
        try:
            for _, _, spec, _ in _FORMATTER.parse(template):
                if spec and "{" in spec:
                    list(_FORMATTER.parse(spec))
        except ValueError as exc:
            problems.append(TemplateProblem(f"str.format rejects the template: {exc}", 0))
    return TemplateInfo(frozenset(scan.variables), tuple(problems))


def render_fstring(template: str, values: Mapping[str, Any]) -> str:
    info = analyze_fstring(template)
    if info.problems:
        raise problems_error("f-string", info.problems)
    missing = [name for name in sorted(info.variables) if name not in values]
    if missing:
        raise missing_error(missing)
    # PromptLayer renders None as "" (sdk-contracts.md 2.8); show what the platform would.
    prepared = {name: "" if values[name] is None else values[name] for name in info.variables}
    try:
        return template.format_map(prepared)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        # e.g. a format spec that does not fit the value: {n:.2f} with n="abc"
        raise TemplateRenderError(f"f-string template failed to render: {exc}") from exc
