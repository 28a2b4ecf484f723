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

from collections.abc import Mapping
from typing import Any

from .base import (
    FORMATS,
    MAX_SECTION_DEPTH,
    TemplateInfo,
    TemplateProblem,
    TemplateRenderError,
    problems_error,
    unknown_format_problem,
)
from .fstring import analyze_fstring, render_fstring
from .jinja import compile_jinja, render_jinja
from .mustache import parse_mustache, render_mustache

__all__ = ["FORMATS", "MAX_SECTION_DEPTH", "TemplateInfo", "TemplateProblem", "TemplateRenderError", "analyze", "render"]


def analyze(template: str, template_format: str) -> TemplateInfo:
    """Return the variables and every locatable syntax problem of ``template``.

    Never raises for a bad template; an unknown ``template_format`` is reported as a problem
    at offset 0.
    """
    if template_format == "mustache":
        return parse_mustache(template)[1]
    if template_format == "jinja2":
        return compile_jinja(template)[1]
    if template_format == "f-string":
        return analyze_fstring(template)
    return TemplateInfo(frozenset(), (unknown_format_problem(template_format),))


def render(template: str, template_format: str, values: Mapping[str, Any]) -> str:
    """Render ``template`` with ``values``.

    Raises TemplateRenderError when the template has a syntax problem, when a used variable
    has no value (the message lists the missing names sorted and says ``pass --var
    NAME=VALUE``), or when rendering fails (a Jinja sandbox violation, a bad format spec...).
    """
    if template_format == "mustache":
        nodes, info = parse_mustache(template)
        if info.problems:
            raise problems_error(template_format, info.problems)
        return render_mustache(nodes, values)
    if template_format == "jinja2":
        return render_jinja(template, values)
    if template_format == "f-string":
        return render_fstring(template, values)
    problem = unknown_format_problem(template_format)
    raise TemplateRenderError(f"{problem.message}; {problem.hint}", problems=(problem,))


