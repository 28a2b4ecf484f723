"""The JSON Schemas (``schemas/*.schema.json``) and their errors as located diagnostics.

The schema files live in the repository's ``schemas/`` folder and are copied into the wheel as
``promptops/schemas/``; :func:`schema_path` finds them in either place.
"""
from __future__ import annotations

import difflib
import functools
import json
from pathlib import Path
from typing import Any, Iterator

import jsonschema

from .errors import SHOWN, Diagnostic, clip
from .yamlload import Loaded

_PACKAGE_DIR = Path(__file__).resolve().parent


def schema_path(name: str) -> Path:
    """Path of ``<name>.schema.json``: inside the installed package, else the source checkout."""
    for folder in (_PACKAGE_DIR / "schemas", _PACKAGE_DIR.parent / "schemas"):
        candidate = folder / f"{name}.schema.json"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"schema {name}.schema.json is missing from the promptops installation")


@functools.lru_cache(maxsize=None)
def validator(name: str) -> jsonschema.protocols.Validator:
    """A compiled validator for the named schema (compiled once per process: validate is hot)."""
    schema = json.loads(schema_path(name).read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def schema_diagnostics(name: str, loaded: Loaded, filename: str) -> list[Diagnostic]:
    """Validate ``loaded.data`` against the named schema; one located diagnostic per problem."""
    found: list[Diagnostic] = []
    for error in _leaf_errors(validator(name).iter_errors(loaded.data)):
        found.extend(_to_diagnostics(error, loaded, filename))
    return sorted(set(found))


def _leaf_errors(errors: Iterator[jsonschema.ValidationError]) -> Iterator[jsonschema.ValidationError]:
    """Descend into anyOf/oneOf groups so the user sees the specific problem."""
    for error in errors:
        if error.context:
            yield from _leaf_errors(iter(error.context))
        else:
            yield error


def _to_diagnostics(error: jsonschema.ValidationError, loaded: Loaded, filename: str) -> list[Diagnostic]:
    path = tuple(error.absolute_path)
    where_name = _describe(path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        out = []
        for key in error.instance:
            if key in allowed:
                continue
            line, col = loaded.where(path + (key,), key=True)
            out.append(Diagnostic(filename, line, col, f"unknown key {clip(key)!r}{' in ' + where_name if path else ''}",
                                  _suggest(key, allowed, "allowed keys")))
        if out:
            return out
    line, col = loaded.where(path)
    message, hint = _message(error)
    if _is_key_error(error, loaded, path):
        # A propertyNames failure is reported against the mapping; the user needs the bad key.
        line, col = loaded.where(path + (error.instance,), key=True)
        message = f"key {message}"
    return [Diagnostic(filename, line, col, f"{where_name}: {message}" if where_name else message, hint)]


def _is_key_error(error: jsonschema.ValidationError, loaded: Loaded, path: tuple) -> bool:
    """True when ``error`` is about a key of the mapping at ``path`` (a ``propertyNames`` rule),
    not about a value: jsonschema reports those with the mapping's path and the key as instance."""
    if "propertyNames" not in error.absolute_schema_path or not isinstance(error.instance, str):
        return False
    node: Any = loaded.data
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(node, dict) and error.instance in node


def show(value: Any) -> str:
    """``value`` for a message, as JSON but with its text as written: "Café", not "Caf\\u00e9".

    Characters that do not print (controls, zero-width and other format characters, lone
    surrogates, which an escape in double quotes can produce) stay escaped: they are invisible or
    cannot be written to a terminal at all. A string longer than ``SHOWN`` characters is cut
    there and says its length (``"xxxx…" (1,048,576 characters)``); a longer list or mapping
    is cut too."""
    suffix = ""
    if isinstance(value, str) and len(value) > SHOWN:
        value, suffix = value[:SHOWN], f"…\" ({len(value):,} characters)"
    text = json.dumps(value, ensure_ascii=False)
    if suffix:
        text = text[:-1] + suffix
    elif len(text) > 2 * SHOWN:
        text = text[: 2 * SHOWN] + "…"
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in text)


def _message(error: jsonschema.ValidationError) -> tuple[str, str]:
    """A readable message and a fix hint for the common validators."""
    v, schema, inst = error.validator, error.schema, error.instance
    if v == "type":
        expected = schema["type"] if isinstance(schema["type"], str) else " or ".join(schema["type"])
        return f"expected {_article(expected)}, got {_json_type(inst)}", ""
    if v == "enum":
        options = ", ".join(show(o) for o in schema["enum"])
        return f"{show(inst)} is not allowed", _suggest(str(inst), [str(o) for o in schema["enum"]], "one of") or f"use one of {options}"
    if v == "pattern":
        if schema["pattern"].startswith(_PATTERN_HINTS["name"][0]) and isinstance(inst, str) and _escapes(inst):
            return (f"{show(inst)} would point outside the prompts folder",
                    "a name is a relative path inside the folder: no '..' parts, no leading '/' and no '\\'")
        return f"{show(inst)} has the wrong form", _pattern_hint(schema["pattern"])
    if v == "required":
        return error.message.replace("is a required property", "is required"), "add it"
    if v in ("minimum", "maximum"):
        return f"{inst} is out of range", f"use a value from {schema.get('minimum', '-inf')} to {schema.get('maximum', 'inf')}"
    if v in ("minItems", "minProperties"):
        return "must not be empty", ""
    if v == "uniqueItems":
        return "has duplicate entries", "list each entry once"
    if v in ("maxLength", "minLength"):
        return f"length must be {'at most ' + str(schema['maxLength']) if v == 'maxLength' else 'at least ' + str(schema['minLength'])}", ""
    return error.message, ""


_PATTERN_HINTS = {
    "label": ("^[a-z0-9_.-]{1,36}$", "labels are 1-36 lowercase ASCII letters, digits, '_', '-' or '.'"),
    "name": ("^[A-Za-z0-9][A-Za-z0-9_.-]*(/",
             ("names are portable ASCII paths (they appear in the platforms' URLs): ASCII letters, digits, "
              "'_', '-', '.' in '/'-separated parts, no spaces, no '..' and no leading '/'")),
    "key": ("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", "version names are 1-64 ASCII letters, digits, '_', '-' or '.'"),
    "identifier": ("^[A-Za-z_][A-Za-z0-9_]*$", "use ASCII letters, digits and '_', not starting with a digit"),
    "target": ("^[A-Za-z0-9_-]+$", "use ASCII letters, digits, '_' and '-'"),
    "rate": ("^[1-9][0-9]*/", "write it as COUNT/UNIT, e.g. 20/min (units: s, min, h)"),
    "url": ("^https?://", "use an https:// URL"),
}


def _escapes(name: str) -> bool:
    """True for a name that, used as a path, would leave the folder it is joined to."""
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\", "~")) or ".." in parts or (len(name) > 1 and name[1] == ":")


def _pattern_hint(pattern: str) -> str:
    for prefix, hint in _PATTERN_HINTS.values():
        if pattern.startswith(prefix):
            return hint
    return f"it must match {pattern}"


def _suggest(word: str, options: list[str], what: str) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"{what}: {', '.join(options)}" if options else ""


def _describe(path: tuple) -> str:
    parts = []
    for p in path:
        parts.append(f"[{p}]" if isinstance(p, int) else ("." if parts else "") + str(p))
    return "".join(parts)


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"
