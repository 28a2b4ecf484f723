"""A stateful fake of the Langfuse public prompts API v2 (and of BrowserStack AI Evals' clone of it).

Written from ../shared/providers-api.md §4 and sdk-contracts.md §1; the official ``langfuse`` SDK
is run against it in tests/test_emulator_langfuse.py. What it implements:

* ``POST   /api/public/v2/prompts``                          create a version (201)
* ``GET    /api/public/v2/prompts``                          list, grouped by name (200)
* ``GET    /api/public/v2/prompts/{name}``                   one version by ``?version=`` / ``?label=``
  (default label ``production``)
* ``PATCH  /api/public/v2/prompts/{name}/versions/{v}``      add labels (200; additive only)
* ``DELETE /api/public/v2/prompts/{name}``                   by ``?version=`` / ``?label=`` / all (204)

``{name}`` is one path segment: a folder slash is sent URL-encoded (``folder%2Fa``, as the SDK
does); a raw slash is a 404, as Next.js routes ``[promptName]``.

Prompt composition follows PromptService: a version's ``@@@langfusePrompt:name=X|label=Y@@@`` (or
``|version=N``) tags are checked when it is created (the dependency must exist and be a text
prompt; no cycles; nesting up to 5: a 400 otherwise), inlined on every GET unless ``resolve=false``
(with ``resolutionGraph``), and a DELETE that would leave a tag dangling is a 400.

Server behaviour copied from Langfuse: HTTP Basic auth (401 ``UnauthorizedError``; a Bearer public
key alone gets 403 ``ForbiddenError``); zod-style 400 bodies ``{"message":"Invalid request data",
"error":[issues]}`` with zod v4 issue shapes, ``InvalidRequestError`` 400s for the semantic checks
(type change, variable/placeholder collision, both version and label), ``LangfuseNotFoundError``
404s, ``MethodNotAllowedError`` 405s; labels unique per name with ``latest`` managed by the server;
tags shared by all versions; the label PATCH rate limited per plan (token bucket) with the
platform's 429 body and headers. ``flavour="browserstack"`` also accepts and echoes ``modelParams``
and ``toolList``, lists 50 per page by default, has no ``pagination`` key and answers errors as
``{"message": ...}`` only.

Choices where the spec is silent are marked ``[CHOICE]`` below; in short:

* ``latest`` sent explicitly in a create's ``labels`` is accepted and changes nothing (the server's
  label schema allows it and it adds ``latest`` itself); in a PATCH's ``newLabels`` it is a 400.
* PATCH ``newLabels`` are strings, not format-checked (the route's zod schema); its 401/404 bodies
  carry no ``error``.
* A chat message whose ``type`` is neither absent, ``chatmessage`` nor ``placeholder`` is a 400 (the
  real server's zod object would strip it); messages are stored as ``{role, content}``.
* Names longer than 255 characters are a zod ``too_big`` 400.
* A stored version whose dependency can no longer be resolved (the server prevents it) is a 409
  ``LangfuseConflictError`` on GET.
* List order is code-point order of names; list ``labels`` are sorted; ``lastUpdatedAt`` is the
  newest ``updatedAt`` among the matching versions (label moves and tag rewrites touch it).
* BrowserStack: ``modelParams``/``toolList`` default to ``{}``/``[]`` per version; zod errors become
  ``{"message": "Invalid request data: <path>: <message>; ..."}``; GET still defaults to
  ``production``; the rate limit follows ``plan`` as for Langfuse.
* A 429 injected through ``faults.rate_limit`` reports the plan's limit (30 when ``plan="none"``).
* Timestamps are wall-clock; ``clock`` only drives the rate-limit bucket.
"""
from __future__ import annotations

import base64
import binascii
import copy
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from .base import Emulator, HttpError, Request, Response, TokenBucket, paginate

PREFIX = "/api/public/v2/prompts"
LATEST = "latest"
PRODUCTION = "production"

LABEL_RE = re.compile(r"^[a-z0-9_\-.]+$")
LABEL_MAX = 36
LABEL_REGEX_ERROR = "Label must be lowercase alphanumeric with optional underscores, hyphens, or periods"
NAME_MAX = 255
COMMIT_MESSAGE_MAX = 500
RESERVED_NAMES = ("new", "metrics", "prompt-detail")
HTML_RE = re.compile(r"<[^>]*>")
PLACEHOLDER_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")
# [CHOICE] what counts as a {{variable}} for the placeholder-collision check: a word between braces,
# inner whitespace trimmed (the SDK's own compile trims too).
VARIABLE_RE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
# Prompt composition (packages/shared/src/features/prompts/parsePromptDependencyTags.ts and
# PromptService.buildAndResolvePromptGraph at langfuse/langfuse 6275144).
DEPENDENCY_RE = re.compile(r"@@@langfusePrompt:(.*?)@@@")
MAX_NESTING_DEPTH = 5

# plan -> (requests, window seconds) for the label PATCH route ("public-api" bucket); None: unlimited
PLANS: dict[str, tuple[int, float] | None] = {"cloud:hobby": (30, 60.0), "core": (1000, 60.0), "none": None}
FLAVOURS = ("langfuse", "browserstack")

_MISSING = object()


# ---------------------------------------------------------------------------------------------
# zod-like validation: issues are dicts in zod v4's shape; "_abort" marks issues after which zod
# stops (type errors), which decides how a union of two object schemas reports its failure.


def _received(value: Any) -> str:
    if value is _MISSING:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _invalid_type(path: list, expected: str, value: Any) -> dict:
    return {"expected": expected, "code": "invalid_type", "path": path,
            "message": f"Invalid input: expected {expected}, received {_received(value)}", "_abort": True}


def _invalid_value(path: list, values: list) -> dict:
    if len(values) == 1:
        message = f"Invalid input: expected {json.dumps(values[0])}"
    else:
        message = "Invalid option: expected one of " + "|".join(json.dumps(v) for v in values)
    return {"code": "invalid_value", "values": values, "path": path, "message": message, "_abort": True}


def _too_small(path: list, minimum: int, message: str | None = None, origin: str = "string") -> dict:
    unit = " characters" if origin == "string" else ""
    what = "string to have" if origin == "string" else "number to be"
    return {"origin": origin, "code": "too_small", "minimum": minimum, "inclusive": True, "path": path,
            "message": message or f"Too small: expected {what} >={minimum}{unit}"}


def _too_big(path: list, maximum: int, message: str | None = None, origin: str = "string") -> dict:
    unit = " characters" if origin == "string" else ""
    what = "string to have" if origin == "string" else "number to be"
    return {"origin": origin, "code": "too_big", "maximum": maximum, "inclusive": True, "path": path,
            "message": message or f"Too big: expected {what} <={maximum}{unit}"}


def _regex_issue(path: list, pattern: str, message: str) -> dict:
    return {"origin": "string", "code": "invalid_format", "format": "regex", "pattern": pattern, "path": path,
            "message": message}


def _custom(path: list, message: str) -> dict:
    return {"code": "custom", "path": path, "message": message}


def _aborted(issues: list[dict]) -> bool:
    return any(issue.get("_abort") for issue in issues)


def _public(issues: list[dict]) -> list[dict]:
    out = []
    for issue in issues:
        clean = {k: v for k, v in issue.items() if k != "_abort"}
        if "errors" in clean:
            clean["errors"] = [_public(branch) for branch in clean["errors"]]
        out.append(clean)
    return out


class _Conflict(Exception):
    """LangfuseConflictError raised while resolving a composition graph."""


class _ZodError(Exception):
    def __init__(self, issues: list[dict]):
        super().__init__(issues)
        self.issues = _public(issues)


def _describe(issues: list[dict]) -> list[str]:
    """``path: message`` lines; a union failure is described by its branch with the fewest issues."""
    lines = []
    for issue in issues:
        if issue.get("code") == "invalid_union" and issue.get("errors"):
            lines += _describe(min(issue["errors"], key=len))
        else:
            lines.append(f"{'.'.join(str(p) for p in issue.get('path', [])) or '(body)'}: {issue['message']}")
    return lines


def _js_number(raw: str) -> float | None:
    """``Number(raw)`` as JavaScript computes it for z.coerce.number(); None for NaN."""
    text = raw.strip()
    if text == "":
        return 0.0
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
        return float(int(text, 16))
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        return float(text)
    if text in ("Infinity", "+Infinity", "-Infinity"):
        return float(text.replace("Infinity", "inf"))
    return None


def _coerce_int(raw: str | None, path: list, issues: list[dict], *, low: int | None = None,
                high: int | None = None) -> int | None:
    """z.coerce.number().int() with optional min/max; None when absent or invalid."""
    if raw is None:
        return None
    number = _js_number(raw)
    if number is None:
        issues.append({"expected": "number", "code": "invalid_type", "received": "NaN", "path": path,
                       "message": "Invalid input: expected number, received NaN"})
        return None
    if not math.isfinite(number) or number != int(number) or abs(number) > 2 ** 53 - 1:
        issues.append({"expected": "int", "format": "safeint", "code": "invalid_type", "path": path,
                       "message": "Invalid input: expected int, received number"})
        return None
    value = int(number)
    if low is not None and value < low:
        issues.append(_too_small(path, low, origin="number"))
        return None
    if high is not None and value > high:
        issues.append(_too_big(path, high, origin="number"))
        return None
    return value


def _parse_datetime(raw: str) -> datetime | None:
    """An ISO 8601 datetime with ``Z`` or an offset (zod ``datetime({offset:true})``); None otherwise."""
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)", raw or ""):
        return None
    text = raw[:-1] + "+00:00" if raw.endswith("Z") else raw
    match = re.match(r"(.*T\d\d:\d\d(?::\d\d)?)(\.\d+)?(.*)", text)
    if match and match.group(2):  # Python wants at most 6 fractional digits
        text = match.group(1) + match.group(2)[:7].ljust(7, "0") + match.group(3)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _js_date_string(moment: datetime) -> str:
    """JavaScript's ``Date.prototype.toString()`` for a UTC server."""
    return moment.astimezone(timezone.utc).strftime("%a %b %d %Y %H:%M:%S") + " GMT+0000 (Coordinated Universal Time)"



def _js_stringify(value: Any) -> str:
    """JSON.stringify: no spaces, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse_dependency_tags(content: Any) -> list[dict]:
    """parsePromptDependencyTags: the well-formed composition tags in ``content`` (a string or the
    chat message list), each ``{"name", "type": "version", "version"}`` or ``{"name", "type":
    "label", "label"}``, deduplicated by their text, in order of first appearance. A tag whose
    first part is not ``name=``, that has other than two parts, or whose version is not a number
    is skipped (served as plain text)."""
    found: list[dict] = []
    for match in _dedupe(m.group(0) for m in DEPENDENCY_RE.finditer(_js_stringify(content))):
        parts = match[len("@@@langfusePrompt:"):-len("@@@")].split("|")
        if not parts[0].startswith("name=") or len(parts) != 2:
            continue
        params: dict[str, str | None] = {}
        for part in parts:  # JS: const [key, value] = part.split("="): value is the second piece, or undefined
            pieces = part.split("=")
            params[pieces[0]] = pieces[1] if len(pieces) > 1 else None
        name, version, label = params.get("name"), params.get("version"), params.get("label")
        if not name:
            continue
        if version:
            number = _js_number(version)
            if number is None:
                continue  # z.coerce.number() gives NaN, which z.number() refuses: not a tag
            found.append({"name": name, "type": "version", "version": int(number) if number.is_integer() else number})
        elif label is not None:
            found.append({"name": name, "type": "label", "label": label})
    return found


def _decode_name(segment: str) -> str:
    """A prompt name from one path segment: Request.path is already percent-decoded except for
    %2F, which the SDK (and every client) must use for folder slashes."""
    return segment.replace("%2F", "/")


def _dedupe(items: list) -> list:
    return list(dict.fromkeys(items))


def _name_issues(value: Any, path: list) -> tuple[list[dict], str | None]:
    """PromptNameSchema: non-empty, no HTML, no '|', folder slash rules, trimmed, not reserved;
    plus PROMPT_NAME_MAX_LENGTH (255)."""
    if not isinstance(value, str):
        return [_invalid_type(path, "string", value)], None
    issues: list[dict] = []
    if len(value) < 1:
        issues.append(_too_small(path, 1, "Text cannot be empty"))
    if len(value) > NAME_MAX:  # [CHOICE] the constant exists server-side; enforced here as a zod max
        issues.append(_too_big(path, NAME_MAX))
    if HTML_RE.search(value):
        issues.append(_custom(path, "Text cannot contain HTML tags"))
    if "|" in value:
        issues.append(_regex_issue(path, "/^[^|]*$/", "Prompt name cannot contain '|' character"))
    if not re.match(r"[^/]", value):
        issues.append(_regex_issue(path, "/^[^/]/", "Name cannot start with a slash"))
    if "//" in value:
        issues.append(_regex_issue(path, "/^(?!.*\\/\\/)/", "Name cannot contain consecutive slashes"))
    if not re.fullmatch(r".*[^/]", value, re.DOTALL):
        issues.append(_regex_issue(path, "/^.*[^/]$/", "Name cannot end with a slash"))
    if issues:
        return issues, None
    name = value.strip()
    if not name:
        return [_custom(path, "Name cannot be empty")], None
    if name in RESERVED_NAMES:
        return [_custom(path, f"Prompt name cannot be '{name}'")], None
    return [], name


def _label_issues(value: Any, path: list) -> list[dict]:
    """PromptLabelSchema: string, 1-36 characters, ^[a-z0-9_\\-.]+$."""
    if not isinstance(value, str):
        return [_invalid_type(path, "string", value)]
    issues = []
    if len(value) < 1:
        issues.append(_too_small(path, 1))
    if len(value) > LABEL_MAX:
        issues.append(_too_big(path, LABEL_MAX))
    if not LABEL_RE.match(value):
        issues.append(_regex_issue(path, "/^[a-z0-9_\\-.]+$/", LABEL_REGEX_ERROR))
    return issues


def _labels_issues(value: Any, path: list) -> tuple[list[dict], list[str]]:
    if not isinstance(value, list):
        return [_invalid_type(path, "array", value)], []
    issues: list[dict] = []
    for i, label in enumerate(value):
        issues += _label_issues(label, path + [i])
    return issues, list(value)


def _message_issues(message: Any, path: list) -> tuple[list[dict], dict | None]:
    """A chat message {role, content[, type:"chatmessage"]} (stored as {role, content}, zod strips the
    rest) or a placeholder {type:"placeholder", name}."""
    if not isinstance(message, dict):
        return [_invalid_type(path, "object", message)], None
    kind = message.get("type")
    if kind == "placeholder":
        name = message.get("name", _MISSING)
        if not isinstance(name, str):
            return [_invalid_type(path + ["name"], "string", name)], None
        if not PLACEHOLDER_NAME_RE.match(name):
            return [_regex_issue(path + ["name"], "/^[a-zA-Z][a-zA-Z0-9_]*$/",
                                 "Placeholder name must start with a letter and contain only alphanumeric "
                                 "characters and underscores")], None
        return [], {"type": "placeholder", "name": name}
    issues: list[dict] = []
    if kind is not None and kind != "chatmessage":
        # [CHOICE] stricter than the real server (whose zod object strips an unknown "type"): the
        # SDK can neither send nor parse {"type": "message"}, so it is refused here (non-aborting,
        # so the issue is reported as is rather than buried in a union error).
        issues.append({**_invalid_value(path + ["type"], ["chatmessage", "placeholder"]), "_abort": False})
    role, content = message.get("role", _MISSING), message.get("content", _MISSING)
    if not isinstance(role, str):
        issues.append(_invalid_type(path + ["role"], "string", role))
    if not isinstance(content, str):
        issues.append(_invalid_type(path + ["content"], "string", content))
    if issues:
        return issues, None
    return [], {"role": role, "content": content}


# ---------------------------------------------------------------------------------------------


@dataclass
class _CreateInput:
    name: str
    type: str
    prompt: Any
    labels: list[str]
    config: Any
    tags: list[str] | None
    commit_message: str | None
    extra: dict[str, Any] = field(default_factory=dict)  # BrowserStack: modelParams, toolList


class PromptsView:
    """Read-only test hooks on the stored prompts (copies; the emulator's lock is taken)."""

    def __init__(self, emulator: LangfuseEmulator):
        self._emu = emulator

    def names(self) -> list[str]:
        with self._emu.lock:
            return sorted(self._emu._prompts)

    def versions(self, name: str) -> list[dict]:
        """Every stored row of ``name``, oldest version first ([] when there is none)."""
        with self._emu.lock:
            return copy.deepcopy(self._emu._prompts.get(name, []))

    def get(self, name: str, version: int) -> dict | None:
        with self._emu.lock:
            for row in self._emu._prompts.get(name, []):
                if row["version"] == version:
                    return copy.deepcopy(row)
        return None

    def labels(self, name: str) -> dict[str, int]:
        """label -> version for ``name``."""
        with self._emu.lock:
            return {label: row["version"] for row in self._emu._prompts.get(name, []) for label in row["labels"]}

    def __contains__(self, name: object) -> bool:
        with self._emu.lock:
            return name in self._emu._prompts

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        with self._emu.lock:
            return len(self._emu._prompts)


class LangfuseEmulator(Emulator):
    """The Langfuse public prompts API v2 as a stateful, thread-safe fake (see the module docstring).

    ``plan`` picks the label-PATCH rate limit (``cloud:hobby`` 30/60 s, ``core`` 1000/60 s,
    ``none``); ``clock`` (monotonic seconds) drives that bucket so tests can move time.
    """

    name = "langfuse"

    def __init__(self, public_key: str = "pk-lf-test", secret_key: str = "sk-lf-test", flavour: str = "langfuse",
                 plan: str = "cloud:hobby", clock: Callable[[], float] = time.monotonic,
                 project_id: str = "emulator-project") -> None:
        super().__init__()
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {FLAVOURS}, not {flavour!r}")
        if plan not in PLANS:
            raise ValueError(f"plan must be one of {tuple(PLANS)}, not {plan!r}")
        self.public_key, self.secret_key = public_key, secret_key
        self.flavour, self.plan, self.clock = flavour, plan, clock
        self.project_id = project_id
        limits = PLANS[plan]
        self.patch_bucket = TokenBucket(limits[0], limits[1], clock) if limits else None
        self._prompts: dict[str, list[dict]] = {}
        self._deps: dict[str, list[dict]] = {}  # row id -> its composition tags (the prompt_dependencies table)
        self._time_lock = threading.Lock()
        self._last_time: datetime | None = None
        self.prompts = PromptsView(self)

    @property
    def browserstack(self) -> bool:
        return self.flavour == "browserstack"

    # ------------------------------------------------------------------ test hooks

    def versions(self, name: str) -> list[dict]:
        """Shortcut for ``prompts.versions(name)``."""
        return self.prompts.versions(name)

    def seed(self, name: str, prompt: Any, *, type: str | None = None, labels: list[str] | tuple = (),
             tags: list[str] | None = None, config: Any = None, commit_message: str | None = None,
             **extra: Any) -> dict:
        """Create a version without HTTP (same validation and semantics as POST); the new row.
        Invalid input raises :class:`HttpError` with the 400 the POST would answer."""
        body: dict[str, Any] = {"name": name, "prompt": prompt, "labels": list(labels), "tags": tags,
                                "config": config if config is not None else {}, "commitMessage": commit_message,
                                **extra}
        if type is not None:
            body["type"] = type
        with self.lock:
            try:
                return copy.deepcopy(self._create(self._validate_create(body)))
            except _ZodError as exc:
                raise HttpError(400, {"message": "Invalid request data", "error": exc.issues}) from None

    def reset(self) -> None:
        with self.lock:
            self._prompts.clear()
            self._deps.clear()

    # ------------------------------------------------------------------ plumbing

    def _now(self) -> datetime:
        """Wall time, strictly increasing by at least 1 ms so ``updatedAt`` orders writes."""
        with self._time_lock:
            now = datetime.now(timezone.utc)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
            if self._last_time is not None and now <= self._last_time:
                now = self._last_time + timedelta(milliseconds=1)
            self._last_time = now
            return now

    def _error(self, status: int, message: str, error: str | None) -> HttpError:
        body: dict[str, Any] = {"message": message}
        if error is not None and not self.browserstack:
            body["error"] = error
        return HttpError(status, body)

    def _zod(self, issues: list[dict]) -> HttpError:
        if self.browserstack:
            return HttpError(400, {"message": "Invalid request data: " + "; ".join(_describe(issues))})
        return HttpError(400, {"message": "Invalid request data", "error": issues})

    def _auth(self, request: Request) -> tuple[int, str] | None:
        """None when the request carries this project's public and secret key; else (status, reason)."""
        header = request.header("Authorization")
        if not header:
            return 401, "No authorization header"
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token == self.public_key:
            return 403, "Access denied - need to use basic auth with secret key to GET prompts"
        if scheme.lower() != "basic" or not token:
            return 401, "Invalid authorization header"
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return 401, "Invalid authorization header"
        public, sep, secret = decoded.partition(":")
        if not sep or public != self.public_key or secret != self.secret_key:
            return 401, "Invalid credentials. Confirm that you've configured the correct host."
        return None

    def _require_auth(self, request: Request, *, patch_route: bool = False) -> None:
        failure = self._auth(request)
        if failure is None:
            return
        status, message = failure
        if status == 403:
            raise self._error(403, message, "ForbiddenError")
        # the label PATCH route is a createAuthedAPIRoute, whose 401 has no "error" key
        raise self._error(401, message, None if patch_route else "UnauthorizedError")

    @staticmethod
    def _split(request: Request) -> tuple[str, str | None, int | None] | None:
        """("collection"|"name"|"version", name, version) for a prompts path; None for other paths."""
        path = request.path
        if path.rstrip("/") == PREFIX:
            return "collection", None, None
        if not path.startswith(PREFIX + "/"):
            return None
        rest = path[len(PREFIX) + 1:]
        # Next.js pages routes: [promptName]/index.ts and [promptName]/versions/[promptVersion].ts
        # match one path segment each, so a folder slash must be sent as %2F; a raw one is a 404.
        match = re.fullmatch(r"([^/]+)/versions/([^/]+)/?", rest)
        if match:
            if not match.group(2).isdigit():  # [CHOICE] Number("x") is NaN: no such version
                raise HttpError(404, {"message": f"Prompt '{_decode_name(match.group(1))}' version "
                                                 f"{match.group(2)} not found in project"})
            return "version", _decode_name(match.group(1)), int(match.group(2))
        match = re.fullmatch(r"([^/]+)/?", rest)
        if match is None:
            return None
        return "name", _decode_name(match.group(1)), None

    # ------------------------------------------------------------------ rate limits

    def rate_limited(self, request: Request) -> Response | None:
        """Only the label PATCH route is limited (per project, after authentication, as the server does)."""
        if self.patch_bucket is None or request.method != "PATCH":
            return None
        where = self._split(request)
        if where is None or where[0] != "version" or self._auth(request) is not None:
            return None
        wait = self.patch_bucket.take(self.public_key)
        if wait is None:
            return None
        return self._too_many(wait, self.patch_bucket.limit)

    def too_many(self, retry_after: float) -> Response:
        limit = self.patch_bucket.limit if self.patch_bucket else PLANS["cloud:hobby"][0]  # type: ignore[index]
        return self._too_many(retry_after, limit)

    def _too_many(self, retry_after: float, limit: int) -> Response:
        seconds = max(1, math.ceil(retry_after))
        reset = datetime.now(timezone.utc) + timedelta(seconds=retry_after)
        headers = {"Retry-After": str(seconds), "X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0",
                   "X-RateLimit-Reset": _js_date_string(reset)}
        if self.browserstack:
            return Response(429, {"message": "Rate limit exceeded"}, headers)
        body = {"message": "Rate limit exceeded", "code": "rate_limited",
                "details": {"retryAfterSeconds": seconds, "limit": limit, "remaining": 0, "resetAt": _iso(reset)}}
        return Response(429, body, headers)

    # ------------------------------------------------------------------ routing

    def route(self, request: Request) -> Response:
        where = self._split(request)
        if where is None:
            raise HttpError(404, {"message": "Not Found"})
        kind, name, version = where
        allowed = {"collection": ("GET", "POST"), "name": ("GET", "DELETE"), "version": ("PATCH",)}[kind]
        if request.method not in allowed:
            raise self._error(405, "Method not allowed", "MethodNotAllowedError")
        self._require_auth(request, patch_route=kind == "version")
        try:
            if kind == "collection":
                return self._list(request) if request.method == "GET" else self._post(request)
            if kind == "version":
                return self._patch(request, name or "", version or 0)
            if request.method == "GET":
                return self._get(request, name or "")
            return self._delete(request, name or "")
        except _ZodError as exc:
            raise self._zod(exc.issues) from None

    # ------------------------------------------------------------------ POST (create)

    def _post(self, request: Request) -> Response:
        body = request.json()
        data = self._validate_create(body)
        return Response(201, self._public_row(self._create(data)))

    def _validate_variant(self, body: Any, variant: str) -> tuple[list[dict], _CreateInput | None]:
        if not isinstance(body, dict):
            return [_invalid_type([], "object", body if body is not None else _MISSING)], None
        issues: list[dict] = []
        name_issues, name = _name_issues(body.get("name", _MISSING), ["name"])
        issues += name_issues
        labels: list[str] = []
        if "labels" in body:
            label_issues, labels = _labels_issues(body["labels"], ["labels"])
            issues += label_issues
        kind = body.get("type", _MISSING)
        if variant == "text":
            if kind is not _MISSING and kind != "text":
                issues.append(_invalid_value(["type"], ["text"]))
        elif kind != "chat":
            issues.append(_invalid_value(["type"], ["chat"]))
        prompt = body.get("prompt", _MISSING)
        messages: list[dict] = []
        if variant == "text":
            if not isinstance(prompt, str):
                issues.append(_invalid_type(["prompt"], "string", prompt))
        elif not isinstance(prompt, list):
            issues.append(_invalid_type(["prompt"], "array", prompt))
        else:
            for i, message in enumerate(prompt):
                message_issues, clean = _message_issues(message, ["prompt", i])
                issues += message_issues
                if clean is not None:
                    messages.append(clean)
        config = body.get("config", {})
        if config is None:
            config = {}  # config: jsonSchema.nullable().default({}), then `input.config ?? {}`
        tags = body.get("tags")
        if tags is not None:
            if not isinstance(tags, list):
                issues.append(_invalid_type(["tags"], "array", tags))
            else:
                for i, tag in enumerate(tags):
                    if not isinstance(tag, str):
                        issues.append(_invalid_type(["tags", i], "string", tag))
        commit = body.get("commitMessage")
        if commit is not None:
            if not isinstance(commit, str):
                issues.append(_invalid_type(["commitMessage"], "string", commit))
            elif len(commit) > COMMIT_MESSAGE_MAX:
                issues.append(_too_big(["commitMessage"], COMMIT_MESSAGE_MAX))
        extra: dict[str, Any] = {}
        if self.browserstack:
            # [CHOICE] BrowserStack documents both fields on create only; absent/null -> {} and [],
            # per version like config (not inherited).
            model_params = body.get("modelParams")
            if model_params is not None and not isinstance(model_params, dict):
                issues.append(_invalid_type(["modelParams"], "object", model_params))
            tool_list = body.get("toolList")
            if tool_list is not None and not isinstance(tool_list, list):
                issues.append(_invalid_type(["toolList"], "array", tool_list))
            extra = {"modelParams": model_params if model_params is not None else {},
                     "toolList": tool_list if tool_list is not None else []}
        if issues:
            return issues, None
        return [], _CreateInput(name=name or "", type=variant, prompt=prompt if variant == "text" else messages,
                                labels=labels, config=config, tags=None if tags is None else list(tags),
                                commit_message=commit, extra=extra)

    def _validate_create(self, body: Any) -> _CreateInput:
        """z.union([CreateTextPromptSchema, CreateChatPromptSchema]).parse(body), zod v4 style: the first
        branch that passes wins; if exactly one branch failed without a type error its issues are
        reported as they are; otherwise one invalid_union issue carries both branches' issues."""
        results = [self._validate_variant(body, "text"), self._validate_variant(body, "chat")]
        for issues, data in results:
            if not issues and data is not None:
                return data
        clean = [issues for issues, _ in results if not _aborted(issues)]
        if len(clean) == 1:
            raise _ZodError(clean[0])
        raise _ZodError([{"code": "invalid_union", "errors": [issues for issues, _ in results], "path": [],
                          "message": "Invalid input"}])

    def _create(self, data: _CreateInput) -> dict:
        rows = self._prompts.get(data.name, [])
        latest = max(rows, key=lambda r: r["version"]) if rows else None
        if latest is not None and latest["type"] != data.type:
            raise self._error(400, "Previous versions have different prompt type. Create a new prompt with a "
                                   "different name.", "InvalidRequestError")
        if data.type == "chat":
            variables = _dedupe(v for m in data.prompt if "content" in m for v in VARIABLE_RE.findall(m["content"]))
            placeholders = _dedupe(m["name"] for m in data.prompt if m.get("type") == "placeholder")
            conflicts = [v for v in variables if v in placeholders]
            if conflicts:
                raise self._error(400, "Cannot create prompt, variables and placeholders must be unique, the "
                                       f"following are not: {', '.join(conflicts)}", "InvalidRequestError")
        labels = _dedupe(data.labels + [LATEST])  # `latest` may also be sent explicitly: a no-op
        tags = _dedupe(data.tags if data.tags is not None else (latest["tags"] if latest else []))
        row_id = str(uuid.uuid4())
        version = (latest["version"] + 1) if latest else 1
        deps = parse_dependency_tags(data.prompt)
        try:  # the server resolves the new version's graph first: a missing or chat dependency is a 400
            self._resolve_graph({"id": row_id, "name": data.name, "version": version, "prompt": data.prompt}, deps)
        except _Conflict as exc:
            raise self._error(400, str(exc), "InvalidRequestError") from None
        now = self._now()
        stamp = _iso(now)
        row: dict[str, Any] = {
            "id": row_id, "createdAt": stamp, "updatedAt": stamp, "projectId": self.project_id,
            "createdBy": "API", "name": data.name, "version": version,
            "type": data.type, "prompt": copy.deepcopy(data.prompt), "config": copy.deepcopy(data.config),
            "labels": labels, "tags": tags, "commitMessage": data.commit_message, "isActive": None,
        }
        row.update(copy.deepcopy(data.extra))
        for other in rows:  # labels are unique per name: take the new version's labels off the others
            kept = [label for label in other["labels"] if label not in labels]
            if kept != other["labels"]:
                other["labels"], other["updatedAt"] = kept, stamp
        if sorted(set(tags)) != sorted(set(latest["tags"] if latest else [])):
            for other in rows:  # tags are shared by all versions
                other["tags"], other["updatedAt"] = list(tags), stamp
        self._prompts.setdefault(data.name, []).append(row)
        if deps:
            self._deps[row_id] = deps
        return row

    # ------------------------------------------------------------------ composition

    def _resolve_graph(self, parent: dict, deps: list[dict] | None = None) -> tuple[Any, dict | None]:
        """PromptService.buildAndResolvePromptGraph: ``parent``'s prompt with every composition tag
        replaced by the (recursively resolved) text of the version it names, and the resolution
        graph (None without dependencies). ``deps`` are the tags of a version not stored yet; a
        stored version's come from :attr:`_deps`. Raises :class:`_Conflict` (a missing or non-text
        dependency, a cycle, nesting deeper than 5)."""
        graph: dict[str, Any] = {"root": {"name": parent["name"], "version": parent["version"], "id": parent["id"]},
                                 "dependencies": {}}
        seen: set[str] = set()

        def resolve(current: dict, current_deps: list[dict] | None, level: int) -> Any:
            if level >= MAX_NESTING_DEPTH:
                raise _Conflict(f"Maximum nesting depth exceeded ({MAX_NESTING_DEPTH})")
            if current["id"] in seen or (current["name"] == parent["name"] and current["id"] != parent["id"]):
                raise _Conflict(f"Circular dependency detected involving prompt '{current['name']}' version "
                                f"{current['version']}")
            seen.add(current["id"])
            if current_deps is None:
                current_deps = self._deps.get(current["id"], [])
            if not current_deps:
                seen.discard(current["id"])
                return current["prompt"]
            text = _js_stringify(current["prompt"])
            for dep in current_deps:
                rows = self._prompts.get(dep["name"], [])
                if dep["type"] == "version":
                    child = next((r for r in rows if r["version"] == dep["version"]), None)
                    what = f"{dep['name']} - version {dep['version']}"
                else:
                    child = next((r for r in rows if dep["label"] in r["labels"]), None)
                    what = f"{dep['name']} - label {dep['label']}"
                if child is None:
                    raise _Conflict(f"Prompt dependency not found: {what}")
                if child["type"] != "text":
                    raise _Conflict(f"Prompt dependency is not a text prompt: {what}")
                graph["dependencies"].setdefault(current["id"], []).append(
                    {"id": child["id"], "name": child["name"], "version": child["version"]})
                inlined = _js_stringify(resolve(child, None, level + 1))[1:-1]
                patterns = [f"@@@langfusePrompt:name={re.escape(child['name'])}\\|version={child['version']}@@@"]
                patterns += [f"@@@langfusePrompt:name={re.escape(child['name'])}\\|label={re.escape(label)}@@@"
                             for label in child["labels"]]
                text = re.sub("|".join(patterns), lambda _m: inlined, text)
            seen.discard(current["id"])
            return json.loads(text)

        resolved = resolve(parent, deps, 0)
        return resolved, (graph if graph["dependencies"] else None)

    def _dependents(self, name: str) -> list[tuple[dict, dict]]:
        """(parent row, tag) for every stored composition tag naming prompt ``name``."""
        rows = {row["id"]: row for versions in self._prompts.values() for row in versions}
        return [(rows[pid], dep) for pid, deps in self._deps.items() if pid in rows
                for dep in deps if dep["name"] == name]

    def _public_row(self, row: dict) -> dict:
        return copy.deepcopy(row)

    # ------------------------------------------------------------------ GET one

    def _version_and_label(self, request: Request) -> tuple[int | None, str | None]:
        issues: list[dict] = []
        version = _coerce_int(request.arg("version"), ["version"], issues)
        if issues:
            raise _ZodError(issues)
        return version, request.arg("label")

    def _get(self, request: Request, name: str) -> Response:
        version, label = self._version_and_label(request)
        raw_resolve = request.arg("resolve")
        if raw_resolve not in (None, "true", "false"):  # z.enum(["true", "false"]).nullish().default("true")
            raise _ZodError([_invalid_value(["resolve"], ["true", "false"])])
        resolve = raw_resolve != "false"
        if version and label is not None:
            raise self._error(400, "Cannot specify both version and label", "InvalidRequestError")
        rows = self._prompts.get(name, [])
        if version:
            found = next((r for r in rows if r["version"] == version), None)
            where = f"with version {version}"
        else:
            wanted = label if label is not None else PRODUCTION
            found = next((r for r in rows if wanted in r["labels"]), None)
            where = f"with label '{wanted}'"
        if found is None:
            raise self._error(404, f"Prompt not found: '{name}' {where}", "LangfuseNotFoundError")
        body = self._public_row(found)
        body["isActive"] = PRODUCTION in found["labels"]
        body["resolutionGraph"] = None
        if resolve:  # composition tags are inlined unless resolve=false (the stored text is served then)
            try:
                body["prompt"], body["resolutionGraph"] = self._resolve_graph(found)
            except _Conflict as exc:
                raise self._error(409, str(exc), "LangfuseConflictError") from None
        return Response(200, body)

    # ------------------------------------------------------------------ DELETE

    def _delete(self, request: Request, name: str) -> Response:
        version, label = self._version_and_label(request)
        if version and label:
            raise self._error(400, "Cannot specify both version and label", "InvalidRequestError")
        rows = self._prompts.get(name, [])
        doomed = [r for r in rows if (not version or r["version"] == version) and (not label or label in r["labels"])]
        if not doomed:
            raise self._error(404, "Prompt not found", "LangfuseNotFoundError")
        remaining = [r for r in rows if not any(r is d for d in doomed)]
        deleted = {r["version"] for r in doomed}
        blocking = [(parent, dep) for parent, dep in self._dependents(name)
                    if not any(parent is d for d in doomed)
                    and (dep["version"] in deleted if dep["type"] == "version"
                         else not any(dep["label"] in r["labels"] for r in remaining))]
        if blocking:
            lines = "\n".join(f"{parent['name']} v{parent['version']} depends on {name} "
                              + (f"v{dep['version']}" if dep["type"] == "version" else dep["label"])
                              for parent, dep in blocking)
            raise self._error(400, "Other prompts are depending on prompt versions you are trying to delete:\n\n"
                              f"{lines}\n\nPlease delete the dependent prompts first.", "InvalidRequestError")
        for row in doomed:
            self._deps.pop(row["id"], None)
        if any(LATEST in r["labels"] for r in doomed) and remaining \
                and not any(LATEST in r["labels"] for r in remaining):
            highest = max(remaining, key=lambda r: r["version"])
            highest["labels"] = _dedupe(highest["labels"] + [LATEST])
            highest["updatedAt"] = _iso(self._now())
        if remaining:
            self._prompts[name] = remaining
        else:
            self._prompts.pop(name, None)
        return Response(204)

    # ------------------------------------------------------------------ PATCH labels

    def _patch(self, request: Request, name: str, version: int) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise _ZodError([_invalid_type([], "object", body if body is not None else _MISSING)])
        new_labels = body.get("newLabels", _MISSING)
        if not isinstance(new_labels, list):
            raise _ZodError([_invalid_type(["newLabels"], "array", new_labels)])
        issues: list[dict] = []
        for i, label in enumerate(new_labels):
            # z.array(z.string()) and nothing more: the route does not format-check labels (any
            # string is stored), unlike a create's labels
            if not isinstance(label, str):
                issues.append(_invalid_type(["newLabels", i], "string", label))
        if LATEST in new_labels:
            issues.append(_custom(["newLabels"], "Label 'latest' is always assigned to the latest prompt version"))
        if issues:
            raise _ZodError(issues)
        rows = self._prompts.get(name, [])
        target = next((r for r in rows if r["version"] == version), None)
        if target is None:
            # the version handler answers its own 404s with {"message"} only
            raise HttpError(404, {"message": f"Prompt '{name}' version {version} not found in project"})
        moved = set(new_labels)
        stamp = _iso(self._now())
        for other in rows:
            if other is target:
                continue
            kept = [label for label in other["labels"] if label not in moved]
            if kept != other["labels"]:
                other["labels"], other["updatedAt"] = kept, stamp
        target["labels"] = _dedupe(list(new_labels) + target["labels"])  # union: labels cannot be removed
        target["updatedAt"] = stamp
        return Response(200, self._public_row(target))

    # ------------------------------------------------------------------ GET list

    def _list(self, request: Request) -> Response:
        issues: list[dict] = []
        page = _coerce_int(request.arg("page"), ["page"], issues, low=1)
        limit = _coerce_int(request.arg("limit"), ["limit"], issues, low=1, high=100)
        version = _coerce_int(request.arg("version"), ["version"], issues)
        bounds: dict[str, datetime | None] = {}
        for key in ("fromUpdatedAt", "toUpdatedAt"):
            raw = request.arg(key)
            bounds[key] = None
            if raw is not None and raw != "":
                bounds[key] = _parse_datetime(raw)
                if bounds[key] is None:
                    issues.append({"origin": "string", "code": "invalid_format", "format": "datetime",
                                   "pattern": "", "path": [key], "message": "Invalid ISO datetime"})
        raw_filter = request.arg("filter")
        predicate: Callable[[dict], bool] | None = None
        if raw_filter is not None:
            predicate = _filter_predicate(raw_filter, issues)
        if issues:
            raise _ZodError(issues)
        page = page or 1
        limit = limit or (50 if self.browserstack else 10)
        if predicate is None:  # `filter` takes precedence over the simple filters
            name, label, tag = request.arg("name"), request.arg("label"), request.arg("tag")
            lo, hi = bounds["fromUpdatedAt"], bounds["toUpdatedAt"]

            def predicate(row: dict) -> bool:
                updated = _parse_datetime(row["updatedAt"])
                return ((not name or row["name"] == name) and (not version or row["version"] == version)
                        and (not label or label in row["labels"]) and (not tag or tag in row["tags"])
                        and (lo is None or updated >= lo) and (hi is None or updated < hi))  # type: ignore[operator]

        groups: dict[str, list[dict]] = {}
        for prompt_name in sorted(self._prompts):  # [CHOICE] code-point order (the database collates)
            matching = [r for r in self._prompts[prompt_name] if predicate(r)]
            if matching:
                groups[prompt_name] = sorted(matching, key=lambda r: r["version"])
        items = []
        for prompt_name, rows in groups.items():
            last = rows[-1]
            items.append({"name": prompt_name, "type": last["type"], "versions": [r["version"] for r in rows],
                          "labels": sorted({label for r in rows for label in r["labels"]}),
                          "tags": list(last["tags"]), "lastUpdatedAt": max(r["updatedAt"] for r in rows),
                          "lastConfig": copy.deepcopy(last["config"])})
        chunk, pages = paginate(items, page, limit)
        meta = {"page": page, "limit": limit, "totalItems": len(items), "totalPages": pages}
        body: dict[str, Any] = {"data": chunk, "meta": meta}
        if not self.browserstack:
            body["pagination"] = dict(meta)  # duplicated for backwards compatibility (langfuse#2068)
        return Response(200, body)


# ---------------------------------------------------------------------------------------------
# the list endpoint's `filter` parameter (JSON array of conditions, combined with AND), as the SDK
# documents it: string/stringOptions on id,name,type; number on version; datetime on
# createdAt,updatedAt; arrayOptions on labels,tags; stringObject on config (with "key").

_COLUMNS = {"string": ("id", "name", "type"), "stringOptions": ("id", "name", "type"), "number": ("version",),
            "datetime": ("createdAt", "updatedAt"), "arrayOptions": ("labels", "tags"), "stringObject": ("config",)}
_OPERATORS = {"string": ("=", "contains", "does not contain", "starts with", "ends with", "is not empty"),
              "stringOptions": ("any of", "none of"), "number": ("=", ">", "<", ">=", "<="),
              "datetime": (">", "<", ">=", "<="), "arrayOptions": ("any of", "all of", "none of"),
              "stringObject": ("=", "contains", "does not contain", "starts with", "ends with", "is set",
                               "is not set")}
_COMPARE = {"=": lambda a, b: a == b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
            ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}


def _like(value: str, operator: str) -> re.Pattern:
    """A case-insensitive SQL LIKE pattern: % any run, _ one character, backslash escapes."""
    parts, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            parts.append(re.escape(value[i + 1]))
            i += 2
            continue
        parts.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    core = "".join(parts)
    pattern = {"contains": f".*{core}.*", "does not contain": f".*{core}.*", "starts with": f"{core}.*",
               "ends with": f".*{core}"}[operator]
    return re.compile(pattern, re.IGNORECASE | re.DOTALL)


def _string_test(operator: str, value: str) -> Callable[[str | None], bool]:
    if operator == "=":
        return lambda s: s == value
    if operator == "is not empty":
        return lambda s: bool(s)
    regex = _like(value, operator)
    if operator == "does not contain":
        return lambda s: s is None or not regex.fullmatch(s)
    return lambda s: s is not None and bool(regex.fullmatch(s))


def _filter_predicate(raw: str, issues: list[dict]) -> Callable[[dict], bool] | None:
    def bad(path: list, message: str) -> None:
        issues.append(_custom(["filter"] + path, message))

    try:
        conditions = json.loads(raw)
    except ValueError:
        bad([], "Invalid filter: not JSON")
        return None
    if not isinstance(conditions, list):
        bad([], "Invalid filter: expected an array of filter conditions")
        return None
    tests: list[Callable[[dict], bool]] = []
    for i, cond in enumerate(conditions):
        if not isinstance(cond, dict) or not all(k in cond for k in ("type", "column", "operator", "value")):
            bad([i], "Each filter condition requires type, column, operator and value")
            continue
        kind, column, operator, value = cond["type"], cond["column"], cond["operator"], cond["value"]
        if kind not in _COLUMNS or column not in _COLUMNS[kind]:
            bad([i], f"Unsupported filter column {column!r} for type {kind!r}")
            continue
        if operator not in _OPERATORS[kind]:
            bad([i], f"Unsupported operator {operator!r} for type {kind!r}")
            continue
        if kind == "string":
            if not isinstance(value, str):
                bad([i, "value"], "Expected a string")
                continue
            test = _string_test(operator, value)
            tests.append(lambda row, c=column, t=test: t(row[c]))
        elif kind in ("stringOptions", "arrayOptions"):
            if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                bad([i, "value"], "Expected a non-empty array of strings")
                continue
            options = set(value)
            if kind == "stringOptions":
                tests.append(lambda row, c=column, o=options, neg=operator == "none of": (row[c] in o) != neg)
            elif operator == "any of":
                tests.append(lambda row, c=column, o=options: bool(o & set(row[c])))
            elif operator == "all of":
                tests.append(lambda row, c=column, o=options: o <= set(row[c]))
            else:
                tests.append(lambda row, c=column, o=options: not (o & set(row[c])))
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                bad([i, "value"], "Expected a number")
                continue
            tests.append(lambda row, c=column, f=_COMPARE[operator], v=value: f(row[c], v))
        elif kind == "datetime":
            moment = _parse_datetime(value) if isinstance(value, str) else None
            if moment is None:
                bad([i, "value"], "Expected an ISO 8601 timestamp")
                continue
            tests.append(lambda row, c=column, f=_COMPARE[operator], v=moment: f(_parse_datetime(row[c]), v))
        else:  # stringObject on config
            key = cond.get("key")
            if not isinstance(key, str) or not isinstance(value, str):
                bad([i], "A config filter requires a string key and a string value")
                continue
            op = "is set" if operator in ("contains", "starts with", "ends with") and value == "" else operator

            def lookup(row: dict, k: str = key) -> tuple[bool, str | None]:
                config = row["config"]
                if not isinstance(config, dict) or k not in config:
                    return False, None
                item = config[k]
                return True, item if isinstance(item, str) else json.dumps(item)

            if op in ("is set", "is not set"):
                tests.append(lambda row, want=op == "is set", lk=lookup: lk(row)[0] == want)
            else:
                test = _string_test(op, value)
                tests.append(lambda row, t=test, lk=lookup: t(lk(row)[1]))
    return lambda row: all(test(row) for test in tests)
