"""Jinja2: the real engine, sandboxed, with StrictUndefined (see the package docstring)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox

from .base import (
    TemplateInfo,
    TemplateProblem,
    TemplateRenderError,
    missing_error,
    problems_error,
)


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


def compile_jinja(template: str) -> tuple[jinja2.Template | None, TemplateInfo]:
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


def render_jinja(template: str, values: Mapping[str, Any]) -> str:
    compiled, info = compile_jinja(template)
    if compiled is None:
        raise problems_error("jinja2", info.problems)
    try:
        return compiled.render(dict(values))
    except jinja2.UndefinedError as exc:
        missing = _jinja_missing(compiled, values, info.variables, exc)
        if missing:
            raise missing_error(missing) from exc
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


