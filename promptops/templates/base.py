"""Shared types of the template formats: problems, analysis results, render errors."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import PromptOpsError

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


# --------------------------------------------------------------------------- shared helpers


def unknown_format_problem(template_format: str) -> TemplateProblem:
    return TemplateProblem(
        f"unknown template_format {template_format!r}", 0, f"use one of: {', '.join(FORMATS)}"
    )


def missing_error(names: Sequence[str]) -> TemplateRenderError:
    noun = "variable" if len(names) == 1 else "variables"
    return TemplateRenderError(
        f"missing value for {noun} {', '.join(names)}: pass --var NAME=VALUE", missing=names
    )


def problems_error(template_format: str, problems: Sequence[TemplateProblem]) -> TemplateRenderError:
    first = problems[0]
    message = f"invalid {template_format} template: {first.message} at offset {first.offset}"
    if first.hint:
        message += f" ({first.hint})"
    if len(problems) > 1:
        more = len(problems) - 1
        message += f"; and {more} more problem{'s' if more > 1 else ''}"
    return TemplateRenderError(message, problems=problems)


def clip(text: str, limit: int = 40) -> str:
    """Shorten ``text`` to its first line and ``limit`` characters, for messages."""
    line = text.split("\n", 1)[0] if "\n" in text[:limit] else text[:limit]
    return line if line == text else line.rstrip() + "..."


