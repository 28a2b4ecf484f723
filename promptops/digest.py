"""Canonical JSON and the version digest (design.md 1.3).

This module is the one place that decides what "the same content" means. A version's content is a
JSON object with exactly these keys::

    {"type": "text" | "chat",
     "template_format": "mustache" | "jinja2" | "f-string",
     "template": "<string>"            # text prompts
     "messages": [ ... ],              # chat prompts, instead of "template"
     "model": { ... },                 # merged model config, {} when none
     "tools": [ ... ]}                 # tool definitions, [] when none

Chat messages are ``{"role": r, "content": c}`` or, for a message-list placeholder,
``{"placeholder": name}``.

Canonical JSON: keys sorted, no insignificant whitespace (``","`` and ``":"`` separators), UTF-8
with non-ASCII characters written as themselves (not ``\\u`` escapes), and numbers normalised so
that a float with an integral value is written as an integer (``1.0`` -> ``1``), because JSON
round-trips through other languages' parsers do not keep that distinction. NaN and infinities are
not allowed. Strings are taken byte-exact: whitespace, CRLF and invisible characters are content.

The digest is ``"sha256:" + hex(sha256(canonical_json(content)))``.
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Mapping

CONTENT_KEYS = ("type", "template_format", "template", "messages", "model", "tools")


def normalize(value: Any) -> Any:
    """Return ``value`` as plain JSON data with integral floats turned into ints.

    Raises ValueError for NaN/infinity or for values JSON cannot hold.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError("NaN and infinity are not allowed in prompt content")
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    raise ValueError(f"value of type {type(value).__name__} cannot be stored in prompt content")


def canonical_json(value: Any) -> str:
    """Serialise ``value`` as canonical JSON (see the module docstring)."""
    return json.dumps(normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_of(value: Any) -> str:
    """Return ``"sha256:<hex>"`` of the canonical JSON of ``value``."""
    return "sha256:" + hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def canonical_content(
    *,
    type: str,
    template_format: str,
    template: str | None = None,
    messages: list[Mapping[str, Any]] | None = None,
    model: Mapping[str, Any] | None = None,
    tools: list[Any] | None = None,
) -> dict[str, Any]:
    """Build the canonical content object of one version (exactly one of template/messages)."""
    if (template is None) == (messages is None):
        raise ValueError("a version has either a template (text) or messages (chat)")
    content: dict[str, Any] = {"type": type, "template_format": template_format}
    if template is not None:
        content["template"] = template
    else:
        content["messages"] = [_canonical_message(m) for m in messages or []]
    content["model"] = normalize(dict(model or {}))
    content["tools"] = normalize(list(tools or []))
    return content


def _canonical_message(message: Mapping[str, Any]) -> dict[str, Any]:
    if "placeholder" in message:
        return {"placeholder": str(message["placeholder"])}
    return {"role": str(message["role"]), "content": str(message["content"])}


def content_digest(content: Mapping[str, Any]) -> str:
    """The version digest of a canonical content object."""
    return sha256_of({k: content[k] for k in CONTENT_KEYS if k in content})


def short_digest(digest: str) -> str:
    """``sha256:0123456789ab…`` shortened to ``0123456789ab`` for display."""
    return digest.split(":", 1)[-1][:12]
