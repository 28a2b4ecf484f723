"""Template analysis and local rendering for the three template formats promptops supports.

Contracts
---------
* :func:`analyze` never raises for a bad template. It returns the top-level variable names the
  template uses and every syntax problem it can locate, each with a 0-based character offset
  into the template string, a message and a fix hint. Callers turn offsets into line:column.
* :func:`render` renders locally and strictly. A template with any problem, or a used variable
  without a value, raises :class:`TemplateRenderError` (a :class:`PromptOpsError`, so the CLI
  prints it and exits 1). The platforms' SDKs silently leave text unrendered or blank
  (sdk-contracts.md section 4); a local render is how a user checks a prompt, so it must not.
* Analysis is linear in the template length and never recurses per nesting level, so huge or
  hostile templates cannot hang validation or raise RecursionError.

Formats (``FORMATS``)
---------------------
``mustache``
    A hand-written parser that follows the mustache spec for variables (``{{name}}``,
    ``{{ name }}``, ``{{{name}}}``, ``{{&name}}``, dotted ``{{user.name}}``, ``{{.}}``), sections
    ``{{#x}}``/``{{^x}}``…``{{/x}}``, comments ``{{! … }}``, set-delimiter ``{{=<% %>=}}`` and the
    standalone-line rule (a line holding only a section, comment or set-delimiter tag plus
    whitespace is removed, newline included). Deliberate differences from the spec:

    - **No HTML escaping.** Prompts are not HTML: ``{{x}}`` and ``{{{x}}}`` both insert the raw
      ``str(value)`` (``None`` renders as ``""``).
    - A name with no value is an error naming it, not an empty string. Inside a section a name
      is looked up in the section item first, then in the enclosing contexts.
    - Partials ``{{> x}}``, parents ``{{< x}}`` and blocks ``{{$ x}}`` are problems: there is
      nothing to load them from.
    - Sections nest at most ``MAX_SECTION_DEPTH`` levels.
    - An opening delimiter inside a tag (``{{name and {{other}}``) reports the outer tag as
      unclosed instead of reading ``name and {{other`` as one name.
    - ``{{.}}`` outside any section is a problem: there is no item for it to print.

    Variables: names (top segment of dotted names) used outside any section, and the names of
    sections opened outside any section. Inverted sections push no item, so names inside them
    count as outside. Names used only inside sections are in ``TemplateInfo.inner_names``.
``jinja2``
    The real engine: ``SandboxedEnvironment`` with ``StrictUndefined`` and no autoescape. One
    problem per template (Jinja stops at the first syntax error), located at the start of the
    line Jinja reports. Variables come from ``jinja2.meta.find_undeclared_variables``.
``f-string``
    Python ``str.format`` syntax, as PromptLayer renders it. Fields must be plain identifiers
    (no ``{}``/``{0}``, no ``{a.b}``/``{a[0]}``, which also keeps ``str.format``'s attribute
    access out of reach); ``!r``/``!s``/``!a`` and format specs, including nested ``{x:{w}}``,
    are allowed. ``{{`` and ``}}`` are literal braces. ``None`` renders as ``""`` like PromptLayer.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Union

import jinja2
import jinja2.meta
import jinja2.sandbox

from promptops.errors import PromptOpsError

FORMATS = ("mustache", "jinja2", "f-string")
MAX_SECTION_DEPTH = 50


@dataclass(frozen=True)
class TemplateProblem:
    """A syntax problem: what is wrong, where (0-based offset into the template), how to fix it."""

    message: str
    offset: int
    hint: str = ""


@dataclass(frozen=True)
class TemplateInfo:
    """What :func:`analyze` found.

    ``variables`` are the top-level names the template needs values for. ``inner_names`` are
    names used only inside mustache sections (resolved against the section item first); a
    caller with a declared variable list may count such a name as used when it is declared.
    ``problems`` is empty when the template parses.
    """

    variables: frozenset[str]
    problems: tuple[TemplateProblem, ...]
    inner_names: frozenset[str] = frozenset()


class TemplateRenderError(PromptOpsError):
    """A template cannot be rendered: a syntax problem, a missing value or a failing expression.

    ``missing`` lists the variables without a value (sorted); ``problems`` the syntax problems.
    """

    def __init__(
        self,
        message: str,
        *,
        missing: Sequence[str] = (),
        problems: Sequence[TemplateProblem] = (),
    ):
        super().__init__(message)
        self.missing = tuple(missing)
        self.problems = tuple(problems)


def analyze(template: str, template_format: str) -> TemplateInfo:
    """Return the variables and every locatable syntax problem of ``template``.

    Never raises for a bad template; an unknown ``template_format`` is reported as a problem
    at offset 0.
    """
    if template_format == "mustache":
        return _parse_mustache(template)[1]
    if template_format == "jinja2":
        return _compile_jinja(template)[1]
    if template_format == "f-string":
        return _analyze_fstring(template)
    return TemplateInfo(frozenset(), (_unknown_format_problem(template_format),))


def render(template: str, template_format: str, values: Mapping[str, Any]) -> str:
    """Render ``template`` with ``values``.

    Raises TemplateRenderError when the template has a syntax problem, when a used variable
    has no value (the message lists the missing names sorted and says ``pass --var
    NAME=VALUE``), or when rendering fails (a Jinja sandbox violation, a bad format spec...).
    """
    if template_format == "mustache":
        nodes, info = _parse_mustache(template)
        if info.problems:
            raise _problems_error(template_format, info.problems)
        return _render_mustache(nodes, values)
    if template_format == "jinja2":
        return _render_jinja(template, values)
    if template_format == "f-string":
        return _render_fstring(template, values)
    problem = _unknown_format_problem(template_format)
    raise TemplateRenderError(f"{problem.message}; {problem.hint}", problems=(problem,))


# --------------------------------------------------------------------------- shared helpers


def _unknown_format_problem(template_format: str) -> TemplateProblem:
    return TemplateProblem(
        f"unknown template_format {template_format!r}", 0, f"use one of: {', '.join(FORMATS)}"
    )


def _missing_error(names: Sequence[str]) -> TemplateRenderError:
    noun = "variable" if len(names) == 1 else "variables"
    return TemplateRenderError(
        f"missing value for {noun} {', '.join(names)}: pass --var NAME=VALUE", missing=names
    )


def _problems_error(template_format: str, problems: Sequence[TemplateProblem]) -> TemplateRenderError:
    first = problems[0]
    message = f"invalid {template_format} template: {first.message} at offset {first.offset}"
    if first.hint:
        message += f" ({first.hint})"
    if len(problems) > 1:
        more = len(problems) - 1
        message += f"; and {more} more problem{'s' if more > 1 else ''}"
    return TemplateRenderError(message, problems=problems)


def _clip(text: str, limit: int = 40) -> str:
    """Shorten ``text`` to its first line and ``limit`` characters, for messages."""
    line = text.split("\n", 1)[0] if "\n" in text[:limit] else text[:limit]
    return line if line == text else line.rstrip() + "..."


# --------------------------------------------------------------------------- mustache


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
                    f"unclosed tag {_clip(t[start : start + 80])}", start, f"close it with {self.ctag}"
                )
                break
            if sigil != "=":
                nested = self.find(self.otag, inner_start)
                if -1 < nested < close:
                    self.problem(
                        f"unclosed tag {_clip(t[start:nested]).rstrip()}",
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
                self._tag(sigil, _clip(t[start:end]), start, t[inner_start:content_end])
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
        tag = _clip(self.t[start:end])
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


def _parse_mustache(template: str) -> tuple[list[_MNode], TemplateInfo]:
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


def _render_mustache(nodes: list[_MNode], values: Mapping[str, Any]) -> str:
    out: list[str] = []
    missing: set[str] = set()
    _render_nodes(nodes, [values], out, missing)
    if missing:
        raise _missing_error(sorted(missing))
    return "".join(out)


# --------------------------------------------------------------------------- jinja2

# Jinja normalises \r\n, \r and \n to line breaks before counting lines; count the same way.
_JINJA_NEWLINE = re.compile(r"\r\n|\r|\n")
_JINJA_UNDEFINED = re.compile(r"'([^']+)' is undefined")


@lru_cache(maxsize=1)
def _jinja_env() -> jinja2.sandbox.SandboxedEnvironment:
    return jinja2.sandbox.SandboxedEnvironment(
        keep_trailing_newline=True, undefined=jinja2.StrictUndefined, autoescape=False
    )


def _line_offset(template: str, lineno: int) -> int:
    """Return the offset of the start of 1-based line ``lineno`` (the last line if beyond)."""
    offset = 0
    for number, match in enumerate(_JINJA_NEWLINE.finditer(template), start=2):
        if number > lineno:
            break
        offset = match.end()
    return offset


def _compile_jinja(template: str) -> tuple[jinja2.Template | None, TemplateInfo]:
    env = _jinja_env()
    try:
        ast = env.parse(template)
        # Read the variables before compiling: the compiler's optimiser may rewrite the tree.
        variables = frozenset(jinja2.meta.find_undeclared_variables(ast))
        # Compiling also catches what parsing does not, such as an unknown filter.
        compiled = env.from_string(ast)
    except jinja2.TemplateSyntaxError as exc:
        problem = TemplateProblem(exc.message or str(exc), _line_offset(template, exc.lineno or 1))
        return None, TemplateInfo(frozenset(), (problem,))
    except (RecursionError, SyntaxError):
        # Deep nesting overflows Jinja's recursive parser or the Python compiler it feeds
        # ("too many statically nested blocks"); neither has a useful template line.
        problem = TemplateProblem(
            "expressions or blocks nest too deeply for Jinja to compile", 0, "flatten the template"
        )
        return None, TemplateInfo(frozenset(), (problem,))
    except Exception as exc:  # noqa: BLE001 - analyze never raises for a bad template
        problem = TemplateProblem(f"Jinja could not compile the template: {exc}", 0)
        return None, TemplateInfo(frozenset(), (problem,))
    return compiled, TemplateInfo(variables, ())


def _undefined_name(exc: jinja2.UndefinedError) -> str | None:
    """The variable named by StrictUndefined's "'x' is undefined", None for other failures."""
    match = _JINJA_UNDEFINED.fullmatch(exc.message or "")
    return match.group(1) if match else None


def _jinja_missing(
    compiled: jinja2.Template, values: Mapping[str, Any], variables: frozenset[str], exc: jinja2.UndefinedError
) -> list[str]:
    """Return every top-level variable the render needs but lacks, sorted.

    StrictUndefined stops at the first one. Comparing ``variables`` with ``values`` instead
    would also name variables the template only tests with ``is defined``, so render again
    with each missing name filled in until no new one turns up (at most once per variable).
    """
    filled = dict(values)
    missing: list[str] = []
    name = _undefined_name(exc)
    while name in variables and name not in filled:
        missing.append(name)
        filled[name] = ""
        try:
            compiled.render(filled)
            name = None
        except jinja2.UndefinedError as again:
            name = _undefined_name(again)
        except Exception:  # noqa: BLE001 - a placeholder value may break other expressions
            name = None
    return sorted(missing)


def _render_jinja(template: str, values: Mapping[str, Any]) -> str:
    compiled, info = _compile_jinja(template)
    if compiled is None:
        raise _problems_error("jinja2", info.problems)
    try:
        return compiled.render(dict(values))
    except jinja2.UndefinedError as exc:
        missing = _jinja_missing(compiled, values, info.variables, exc)
        if missing:
            raise _missing_error(missing) from exc
        raise TemplateRenderError(f"jinja2 template uses an undefined value: {exc.message}") from exc
    except jinja2.sandbox.SecurityError as exc:
        raise TemplateRenderError(f"jinja2 template tried an unsafe operation: {exc}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateRenderError(f"jinja2 template failed to render: {exc}") from exc
    except Exception as exc:  # noqa: BLE001
        # Expressions in a user's template can raise anything ('a' + 1, 1 / 0): that is the
        # user's template to fix, not a promptops bug, so it must not become a traceback.
        raise TemplateRenderError(
            f"jinja2 template failed to render: {type(exc).__name__}: {exc}"
        ) from exc


# --------------------------------------------------------------------------- f-string

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
        name, text = t[j + 1 : k], _clip(t[j : close + 1])
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


def _analyze_fstring(template: str) -> TemplateInfo:
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


def _render_fstring(template: str, values: Mapping[str, Any]) -> str:
    info = _analyze_fstring(template)
    if info.problems:
        raise _problems_error("f-string", info.problems)
    missing = [name for name in sorted(info.variables) if name not in values]
    if missing:
        raise _missing_error(missing)
    # PromptLayer renders None as "" (sdk-contracts.md 2.8); show what the platform would.
    prepared = {name: "" if values[name] is None else values[name] for name in info.variables}
    try:
        return template.format_map(prepared)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        # e.g. a format spec that does not fit the value: {n:.2f} with n="abc"
        raise TemplateRenderError(f"f-string template failed to render: {exc}") from exc
