"""PromptRails emulator (``api.promptrails.ai``), written from ../shared/providers-api.md section 3
and sdk-contracts.md section 3, and following the official local emulator (``promptrails/
promptrails-local``: internal/handler/prompt_handler.go, handlers.go's getPagination, store.go)
wherever the two differ and promptops depends on it; the official ``promptrails`` SDK (0.9.2) is
run against it in tests/test_emulator_promptrails.py. What it implements (every path under
``/api/v1``):

* ``GET    /prompts``                                   list (``page``, ``limit``, ``search``)
* ``POST   /prompts``                                   create (201; a first version when content is sent)
* ``GET    /prompts/{id}``                              one prompt, ``current_version`` and ``current_version_id``
* ``PATCH  /prompts/{id}``                              name / description / status
* ``DELETE /prompts/{id}``                              204, empty body (the prompt and its versions)
* ``GET    /prompts/{id}/versions``                     ``data`` is a plain list of every version
* ``POST   /prompts/{id}/versions``                     201; ``set_current`` demotes the others
* ``PUT|POST /prompts/{id}/versions/{vid}/promote``     200, the promoted version
* ``POST   /prompts/{id}/preview``                      Jinja2 (sandboxed) render of a version

Auth is ``X-API-Key`` (a key belongs to one workspace) or ``Authorization: Bearer <jwt>`` when a
``jwt`` is configured; ``X-Workspace-ID`` is optional with a key. Ids are real KSUIDs (27 base62
characters: a 4-byte timestamp since 2014-05-13 and 16 random bytes). Envelopes are by default the
union of the three variants the spec lists (3.3) so that every client works; ``envelope`` and
``errors`` select one variant so an adapter can be tested against each:

* ``envelope="union"`` single ``{data, message}``; list ``{data, message, pagination{page, limit, total,
  total_pages}, meta{page, limit, total, total_pages, pages}}``
* ``envelope="pagination"`` (docs) single ``{data, message}``; list ``{data, message, pagination{...}}``
* ``envelope="meta"`` (promptrails-local) single ``{data}``; list ``{data, meta{total, page, limit, total_pages}}``;
  its objects too: no ``current_version_id``, no ``is_active``, ``current_version`` absent when none
* ``envelope="v2"`` (go-sdk "API v2") single ``{data}``; list ``{data, meta{total, page, limit, pages}}``
* ``errors="flat"`` ``{"data": null, "error": msg, "message": msg, "code": code}`` (docs + code)
* ``errors="nested"`` ``{"error": {"code", "message", "details"}}`` (promptrails-local, the SDKs)

Everything the spec leaves open is decided here and listed in :data:`CHOICES`. The summary:

* Duplicate prompt names and duplicate ``version`` strings within a prompt are accepted, as
  promptrails-local does (it checks neither); ``reject_duplicates=True`` makes both 409 ``conflict``
  instead, as a server enforcing uniqueness would. Note the Python SDK retries 409/422 three times
  (4 requests) and never retries 429.
* ``version`` is optional (go-sdk v2): absent/null gets ``v<N>`` (N = number of versions + 1, bumped
  past taken strings). At least one of ``system_prompt``/``user_prompt`` must be non-empty.
* A create-prompt body with a non-empty ``system_prompt``/``user_prompt`` (go-sdk v2) also creates
  version ``v1`` with them (and ``config``/``input_schema``) and makes it current.
* ``page``/``limit`` as promptrails-local reads them (Go's ``strconv.Atoi``, its error ignored): a
  ``limit`` that is over 100, below 1 or not an integer is silently 20, a ``page`` below 1 or not an
  integer is 1, never a 400; ``meta.limit`` and the page counts say what was used. Lists are newest
  first; ``search`` is a case-insensitive substring of the name.
* Versions list: every version, newest first, in the single envelope, ``page``/``limit`` ignored (as
  promptrails-local); ``versions_paged=True`` (the go-sdk's v2 reading): with ``page`` or ``limit`` the
  list is paginated with the list envelope of ``envelope`` (``data`` stays a plain list).
* Timestamps as Go's ``time.Time`` marshals them (RFC 3339, trailing zeros of the fraction trimmed,
  none for a whole second): ``2025-05-08T14:10:00Z``, ``2025-05-08T14:10:00.25Z``.
* ``promote_methods`` (default ``"PUT,POST"``): the other verb gets 405 ``method_not_allowed`` + ``Allow``.
* ``X-Workspace-ID`` that is not the key's workspace -> 403 ``forbidden``; with a Bearer JWT the header is
  required (400 without it, 403 for a workspace the JWT cannot see). Another workspace's prompt is 404.
* Preview answers ``{prompt_id, version_id, version, system_prompt, user_prompt, input}``; no
  ``version_id`` renders the current version (400 when there is none); undefined variables render
  as ``""``; template errors and input failing ``input_schema`` (JSON Schema) are 422.
* Quota: ``max_prompts`` (per workspace) -> 402 ``quota_exceeded`` on create. Rate limit: ``rate_limit``
  requests per ``rate_window`` seconds per key (authenticated requests only) -> 429 ``rate_limited``
  with ``Retry-After`` (whole seconds) unless ``retry_after=False``.
"""
from __future__ import annotations

import copy
import json
import math
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import jsonschema
from jinja2.sandbox import SandboxedEnvironment

from .base import Emulator, Faults, HttpError, Request, Response, TokenBucket, paginate

PREFIX = "/api/v1"
DEFAULT_WORKSPACE = "2N8Dx8a2a1qUspBKbP02vqP29eH"  # promptrails-local's workspace id (a valid KSUID)
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
NAME_MAX, VERSION_MAX = 255, 64
STATUSES = ("active", "inactive", "archived")
ENVELOPES = ("union", "pagination", "meta", "v2")
ERROR_STYLES = ("flat", "nested")
PROMOTE_VERBS = ("PUT", "POST")

KSUID_EPOCH = 1_400_000_000
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
KSUID_RE = re.compile(r"^[0-9A-Za-z]{27}$")
GO_INT = re.compile(r"[+-]?[0-9]+")  # what strconv.Atoi parses (base 10, optional sign, ASCII digits)
INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1

#: status -> the error code sent with it (400/404 as promptrails-local spells them).
ERROR_CODES = {400: "bad_request", 401: "unauthorized", 402: "quota_exceeded", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 422: "unprocessable_entity", 429: "rate_limited",
               500: "internal_error"}

#: Where the spec is silent, what this emulator does (for adapter authors; see the module docstring).
CHOICES = {
    "auth": "X-API-Key (header name case-insensitive) wins over Authorization; Bearer <jwt> only when a jwt is "
            "configured; missing -> 401 'missing API key', unknown key/token or another scheme -> 401 "
            "'invalid API key'",
    "workspace_header": "with a key: absent or equal to the key's workspace -> accepted; another value -> 403 "
                        "forbidden. With a Bearer jwt: required (absent -> 400), a workspace no key belongs to "
                        "-> 403. Prompts of another workspace are 404 (not 403)",
    "order_of_checks": "injected faults, rate limit (authenticated keys only), auth 401, workspace 400/403, route "
                       "404/405, prompt/version lookup 404, body 400, quota 402, conflict 409, render 422",
    "unknown_route": "404 not_found; a known path with another method -> 405 method_not_allowed with Allow; "
                     "no trailing-slash aliases",
    "envelopes": "envelope=union (default) | pagination (docs) | meta (promptrails-local) | v2 (meta.pages only); "
                 "errors=flat (default: data null + error string + message + code) | nested ({error:{code, "
                 "message, details}})",
    "statuses": "create prompt 201, create version 201, delete 204 with an empty body, everything else 200",
    "ids": "KSUIDs: 4-byte big-endian seconds since 1400000000 + 16 random bytes, base62 (0-9A-Za-z), 27 chars",
    "timestamps": "UTC, as Go marshals a time.Time (RFC3339Nano): the fraction's trailing zeros trimmed, no "
                  "fraction for a whole second ('2025-05-08T14:10:00Z', '...:00.25Z'); microsecond precision "
                  "(promptrails-local has nanoseconds, a database-backed server microseconds)",
    "pagination": "as promptrails-local's getPagination: the first value of each argument read as Go's "
                  "strconv.Atoi ([+-]digits, else 0; beyond int64 -> the int64 bound); page < 1 -> 1; limit < 1 "
                  "or > 100 -> 20 (silently: meta.limit says 20, never a 400); total_pages = ceil(total / limit) "
                  "(0 when empty); a page past the end (any size: Go's overflowing offset is not imitated) is an "
                  "empty data list",
    "list_order": "prompts and versions newest first (creation order reversed)",
    "search": "case-insensitive substring of the prompt name; empty = no filter",
    "list_items": "list items are full Prompt objects, current_version and current_version_id included "
                  "(envelope=meta: as promptrails-local, no current_version_id, current_version absent when none, "
                  "versions without is_active)",
    "versions_list": "every version, single envelope ({data:[...], message}), page/limit ignored (promptrails-"
                     "local); versions_paged=True: page or limit given -> paginated, list envelope; data is always "
                     "a plain list",
    "duplicates": "prompt names (create, rename) and version strings (per prompt) need not be unique, as in "
                  "promptrails-local; reject_duplicates=True -> 409 conflict for either",
    "prompt_create": "name: non-empty string <= 255 chars (stricter than promptrails-local, which takes any "
                     "non-empty string), duplicates as 'duplicates' says; "
                     "description: string or null (''); status starts 'active'; system_prompt/user_prompt "
                     "(go-sdk v2), either non-empty -> also version 'v1' with them (+ config, input_schema), current; "
                     "both empty/absent -> no version",
    "prompt_update": "name (duplicates as 'duplicates' says), description, status in active|inactive|archived "
                     "(promptrails-local takes any status); other keys ignored; "
                     "updated_at always touched (as promptrails-local)",
    "prompt_delete": "204, versions deleted with it (promptrails-local keeps them, unreachable); a second "
                     "delete is 404",
    "version_body": "stricter than promptrails-local (which stores any body, version '' when absent): "
                    "version: string 1..64 chars, not blank; absent/null -> 'v<N>' (N = count + 1, bumped past "
                    "taken; go-sdk v2); duplicates as 'duplicates' says. system_prompt/user_prompt: strings, at "
                    "least one non-empty. input_schema: object (a valid JSON Schema) or null -> {}; config object or "
                    "null -> {}; message string or null -> ''; set_current bool or null -> false. Older fields "
                    "stored as sent: llm_model_id/fallback_llm_model_id string|null, temperature/top_p "
                    "number|null, max_tokens int >= 1|null, output_schema object|null, cache_timeout int >= 0|"
                    "null -> 0. Unknown keys ignored",
    "current": "no version is current until one is created with set_current or promoted; after that exactly one; "
               "is_active always equals is_current (and is absent with envelope=meta)",
    "immutability": "no endpoint changes a version's content; promoting changes only is_current/is_active",
    "touches": "creating or promoting a version updates the prompt's updated_at",
    "promote": "body {} , empty or any JSON object; other JSON -> 400; a version of another prompt -> 404; "
               "promoting the current version is 200 and changes nothing; promote_methods limits the verbs "
               "(other one -> 405)",
    "preview": "body {input: object|null, version_id: string|null}; response {prompt_id, version_id, version, "
               "system_prompt, user_prompt, input}; no version_id -> current version, none -> 400; rendered with "
               "jinja2.sandbox.SandboxedEnvironment (autoescape off, keep_trailing_newline, undefined -> ''); "
               "template syntax/runtime/sandbox errors -> 422; input not valid against input_schema -> 422",
    "quota": "max_prompts per workspace (None = unlimited): creating one more -> 402 quota_exceeded",
    "rate_limit": "rate_limit requests per rate_window seconds per key (None = unlimited), authenticated requests "
                  "only, a 429 is not counted; Retry-After whole seconds rounded up (>= 1) unless retry_after=False",
}


class PromptRailsFaults(Faults):
    """Faults whose default error body is in this emulator's error shape."""

    def __init__(self, emulator: "PromptRailsEmulator"):
        super().__init__()
        self._emulator = emulator

    def fail_next(self, n: int = 1, status: int = 500, body: Any = None, *, headers: Mapping[str, str] | None = None,
                  match: str | None = None) -> None:
        if body is None:
            body = self._emulator.error_body(status, "injected fault")
        super().fail_next(n, status, body, headers=headers, match=match)


@dataclass
class StoredPrompt:
    """A prompt as stored: ``versions`` oldest first (stored dicts, without is_current/is_active)."""

    id: str
    workspace_id: str
    name: str
    description: str
    status: str
    created_at: str
    updated_at: str
    seq: int
    versions: list[dict[str, Any]] = field(default_factory=list)
    current_id: str | None = None

    def version_by_id(self, vid: str) -> dict[str, Any] | None:
        return next((v for v in self.versions if v["id"] == vid), None)


def ksuid(seconds: float, payload: bytes) -> str:
    """The KSUID for ``seconds`` (Unix time) and a 16-byte payload."""
    stamp = max(0, int(seconds) - KSUID_EPOCH).to_bytes(4, "big")
    value = int.from_bytes(stamp + payload, "big")
    out = ""
    while value:
        value, digit = divmod(value, 62)
        out = BASE62[digit] + out
    return out.rjust(27, "0")


def ksuid_time(value: str) -> int:
    """The Unix seconds a KSUID carries."""
    number = 0
    for char in value:
        number = number * 62 + BASE62.index(char)
    return int.from_bytes(number.to_bytes(20, "big")[:4], "big") + KSUID_EPOCH


def go_atoi(raw: str | None) -> int:
    """``strconv.Atoi(raw)`` with its error ignored, as promptrails-local reads ``page`` and
    ``limit``: 0 for anything that is not ``[+-]digits`` (absent, empty, ``1.5``, `` 5``), the int64
    bound for a number beyond it."""
    if raw is None or not GO_INT.fullmatch(raw):
        return 0
    return max(INT64_MIN, min(INT64_MAX, int(raw)))


def go_time(seconds: float) -> str:
    """Unix ``seconds`` as Go marshals a UTC ``time.Time`` (RFC3339Nano), to the microsecond:
    the fraction's trailing zeros trimmed, no fraction at all for a whole second."""
    micros = round(seconds * 1_000_000)
    whole, fraction = divmod(micros, 1_000_000)
    text = datetime.fromtimestamp(whole, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:06d}".rstrip("0")
    return text + "Z"


def _copy(value: Any) -> Any:
    return copy.deepcopy(value)


_PID = r"(?P<pid>[^/]+)"
_ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (re.compile(rf"{PREFIX}/prompts"), {"GET": "_list_prompts", "POST": "_create_prompt"}),
    (re.compile(rf"{PREFIX}/prompts/{_PID}"),
     {"GET": "_get_prompt", "PATCH": "_update_prompt", "DELETE": "_delete_prompt"}),
    (re.compile(rf"{PREFIX}/prompts/{_PID}/versions"), {"GET": "_list_versions", "POST": "_create_version"}),
    (re.compile(rf"{PREFIX}/prompts/{_PID}/versions/(?P<vid>[^/]+)/promote"), {"PUT": "_promote", "POST": "_promote"}),
    (re.compile(rf"{PREFIX}/prompts/{_PID}/preview"), {"POST": "_preview"}),
]


@dataclass
class Caller:
    """Who is calling: the key or token, and the workspace the request acts in."""

    credential: str
    workspace_id: str


class PromptRailsEmulator(Emulator):
    """A stateful, thread-safe fake of PromptRails' prompt API (see the module docstring).

    Options (JSON scalars, so ``--option KEY=VALUE`` works): ``api_key``, ``workspace_id`` (the key's),
    ``jwt`` (a Bearer token accepted for every workspace, None: Bearer is refused), ``envelope``,
    ``errors``, ``promote_methods`` ("PUT,POST", "PUT" or "POST"), ``max_prompts``,
    ``reject_duplicates`` (409 for a taken name or version string), ``versions_paged``, ``rate_limit``,
    ``rate_window``, ``retry_after``, ``seed`` (ids). ``clock`` (monotonic) drives the rate limit,
    ``wall_clock`` the timestamps and the KSUID time.

    Test hooks: :meth:`seed`, :meth:`seed_prompt`, :meth:`prompt_id`, :meth:`prompt`, :meth:`versions`,
    :meth:`current`, :meth:`names`, :meth:`add_key`, :meth:`reset`, :attr:`internal_errors`, plus the
    base's faults, log and :meth:`calls`.
    """

    name = "promptrails"

    def __init__(self, api_key: str = "pr_live_test", workspace_id: str = DEFAULT_WORKSPACE, *,
                 jwt: str | None = None, envelope: str = "union", errors: str = "flat",
                 promote_methods: str = "PUT,POST", max_prompts: int | None = None,
                 reject_duplicates: bool = False, versions_paged: bool = False,
                 rate_limit: int | None = None, rate_window: float = 60.0, retry_after: bool = True,
                 seed: int | None = None, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time):
        super().__init__()
        if envelope not in ENVELOPES:
            raise ValueError(f"envelope must be one of {ENVELOPES}, not {envelope!r}")
        if errors not in ERROR_STYLES:
            raise ValueError(f"errors must be one of {ERROR_STYLES}, not {errors!r}")
        verbs = tuple(v.strip().upper() for v in str(promote_methods).split(",") if v.strip())
        if not verbs or any(v not in PROMOTE_VERBS for v in verbs):
            raise ValueError(f"promote_methods must name PUT and/or POST, not {promote_methods!r}")
        if rate_limit is not None and (isinstance(rate_limit, bool) or not isinstance(rate_limit, int)
                                       or rate_limit < 1):
            raise ValueError("rate_limit must be a positive integer or None")
        self.faults = PromptRailsFaults(self)
        self.envelope, self.errors = envelope, errors
        self.promote_methods = verbs
        self.max_prompts = max_prompts
        self.reject_duplicates, self.versions_paged = bool(reject_duplicates), bool(versions_paged)
        self.jwt = jwt
        self.retry_after = retry_after
        self.rate_limit, self.rate_window = rate_limit, float(rate_window)
        self.clock, self.wall_clock = clock, wall_clock
        self.keys: dict[str, str] = {api_key: workspace_id}
        self.workspace_id = workspace_id
        self.prompts: dict[str, StoredPrompt] = {}
        self.internal_errors: list[BaseException] = []
        self._random = random.Random(seed)
        self._seq = 0
        self._bucket = TokenBucket(rate_limit, self.rate_window, clock) if rate_limit else None

    # ------------------------------------------------------------------ test hooks

    def add_key(self, key: str, workspace_id: str | None = None) -> str:
        """Another API key, for ``workspace_id`` (a new workspace when None); returns the workspace id."""
        with self.lock:
            workspace = workspace_id or self._new_id()
            self.keys[key] = workspace
            return workspace

    def reset(self) -> None:
        """Forget every prompt and the rate-limit window (keys, options, faults and the log stay)."""
        with self.lock:
            self.prompts.clear()
            self._bucket = TokenBucket(self.rate_limit, self.rate_window, self.clock) if self.rate_limit else None

    def _by_name(self, name: str, workspace_id: str | None = None) -> StoredPrompt | None:
        workspace = workspace_id or self.workspace_id
        return next((p for p in self.prompts.values() if p.name == name and p.workspace_id == workspace), None)

    def _named(self, name: str, workspace_id: str | None = None) -> StoredPrompt:
        p = self._by_name(name, workspace_id)
        if p is None:
            raise KeyError(name)
        return p

    def seed_prompt(self, name: str, description: str = "", *, workspace_id: str | None = None) -> dict[str, Any]:
        """Create a prompt without HTTP (validated as POST; HttpError otherwise); its public dict."""
        with self.lock:
            p = self._new_prompt(workspace_id or self.workspace_id,
                                 {"name": name, "description": description}, quota=False)
            return self._public_prompt(p)

    def seed(self, name: str, user_prompt: str = "", system_prompt: str = "", *, version: str | None = None,
             current: bool = True, config: dict | None = None, input_schema: dict | None = None,
             message: str | None = None, description: str = "", workspace_id: str | None = None,
             **fields: Any) -> dict[str, Any]:
        """Create a version "outside promptops" (the prompt too when ``name`` is new), without HTTP,
        rate limits or faults, validated as the POST (HttpError otherwise); the public version dict.
        ``current`` is ``set_current``; ``fields`` are other body fields (temperature, ...)."""
        body: dict[str, Any] = {"version": version, "user_prompt": user_prompt, "system_prompt": system_prompt,
                                "config": config, "input_schema": input_schema, "message": message,
                                "set_current": current, **fields}
        workspace = workspace_id or self.workspace_id
        with self.lock:
            p = self._by_name(name, workspace)
            created = p is None
            if p is None:
                p = self._new_prompt(workspace, {"name": name, "description": description}, quota=False)
            try:
                return self._public_version(p, self._new_version(p, body))
            except BaseException:
                if created:
                    del self.prompts[p.id]
                raise

    def prompt_id(self, name: str, workspace_id: str | None = None) -> str | None:
        """The id of the prompt called ``name`` (in the default workspace), or None."""
        with self.lock:
            p = self._by_name(name, workspace_id)
            return p.id if p else None

    def prompt(self, name: str, workspace_id: str | None = None) -> dict[str, Any] | None:
        """The prompt as GET answers it (without the envelope), or None."""
        with self.lock:
            p = self._by_name(name, workspace_id)
            return self._public_prompt(p) if p else None

    def versions(self, name: str, workspace_id: str | None = None) -> list[dict[str, Any]]:
        """A prompt's versions as the API shows them, but **oldest first** (creation order)."""
        with self.lock:
            p = self._named(name, workspace_id)
            return [self._public_version(p, v) for v in p.versions]

    def current(self, name: str, workspace_id: str | None = None) -> dict[str, Any] | None:
        """The current version of a prompt, or None before any was promoted."""
        with self.lock:
            p = self._named(name, workspace_id)
            v = p.version_by_id(p.current_id) if p.current_id else None
            return self._public_version(p, v) if v else None

    def names(self, workspace_id: str | None = None) -> list[str]:
        """Prompt names of a workspace, in creation order."""
        workspace = workspace_id or self.workspace_id
        with self.lock:
            return [p.name for p in sorted(self.prompts.values(), key=lambda q: q.seq) if p.workspace_id == workspace]

    # ------------------------------------------------------------------ shapes

    def error_body(self, status: int, message: str, code: str | None = None,
                   details: dict[str, Any] | None = None) -> dict[str, Any]:
        """This emulator's error body (``errors`` option) for ``status``."""
        code = code or ERROR_CODES.get(status) or ("internal_error" if status >= 500 else "bad_request")
        if self.errors == "nested":
            return {"error": {"code": code, "message": message, "details": dict(details or {})}}
        return {"data": None, "error": message, "message": message, "code": code}

    def fail(self, status: int, message: str, *, details: dict[str, Any] | None = None,
             headers: Mapping[str, str] | None = None) -> HttpError:
        return HttpError(status, self.error_body(status, message, details=details), headers)

    def _single(self, data: Any, message: str, status: int = 200) -> Response:
        body: dict[str, Any] = {"data": data}
        if self.envelope in ("union", "pagination"):
            body["message"] = message
        return Response(status, body)

    def _list(self, items: list[Any], page: int, limit: int, total: int) -> Response:
        pages = math.ceil(total / limit) if total else 0
        body: dict[str, Any] = {"data": items}
        if self.envelope in ("union", "pagination"):
            body["message"] = "OK"
            body["pagination"] = {"page": page, "limit": limit, "total": total, "total_pages": pages}
        if self.envelope == "union":
            body["meta"] = {"page": page, "limit": limit, "total": total, "total_pages": pages, "pages": pages}
        elif self.envelope == "meta":
            body["meta"] = {"total": total, "page": page, "limit": limit, "total_pages": pages}
        elif self.envelope == "v2":
            body["meta"] = {"total": total, "page": page, "limit": limit, "pages": pages}
        return Response(200, body)

    def _public_version(self, p: StoredPrompt, v: dict[str, Any]) -> dict[str, Any]:
        out = _copy(v)
        current = v["id"] == p.current_id
        out["is_current"] = current
        if self.envelope != "meta":  # promptrails-local has no is_active
            out["is_active"] = current
        return out

    def _public_prompt(self, p: StoredPrompt) -> dict[str, Any]:
        v = p.version_by_id(p.current_id) if p.current_id else None
        out: dict[str, Any] = {"id": p.id, "workspace_id": p.workspace_id, "name": p.name,
                               "description": p.description, "status": p.status, "created_at": p.created_at,
                               "updated_at": p.updated_at, "current_version_id": p.current_id,
                               "current_version": self._public_version(p, v) if v else None}
        if self.envelope == "meta":  # promptrails-local: no current_version_id, current_version omitempty
            del out["current_version_id"]
            if v is None:
                del out["current_version"]
        return out

    # ------------------------------------------------------------------ plumbing

    def _now(self) -> str:
        return go_time(self.wall_clock())

    def _new_id(self) -> str:
        return ksuid(self.wall_clock(), self._random.getrandbits(128).to_bytes(16, "big"))

    def too_many(self, retry_after: float) -> Response:
        headers = {"Retry-After": str(max(1, math.ceil(retry_after - 1e-9)))} if self.retry_after else {}
        return Response(429, self.error_body(429, "rate limit exceeded"), headers)

    def _caller(self, request: Request) -> Caller:
        """The caller, or the 401/400/403 HttpError."""
        key = request.header("X-API-Key")
        workspace_header = (request.header("X-Workspace-ID") or "").strip()
        if key is not None:
            key = key.strip()
            if not key:
                raise self.fail(401, "missing API key")
            workspace = self.keys.get(key)
            if workspace is None:
                raise self.fail(401, "invalid API key")
            if workspace_header and workspace_header != workspace:
                raise self.fail(403, f"API key does not have access to workspace {workspace_header}")
            return Caller(key, workspace)
        auth = request.header("Authorization")
        if auth is None or not auth.strip():
            raise self.fail(401, "missing API key")
        scheme, _, token = auth.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or self.jwt is None or token != self.jwt:
            raise self.fail(401, "invalid API key")
        if not workspace_header:
            raise self.fail(400, "X-Workspace-ID header is required", details={"field": "X-Workspace-ID"})
        if workspace_header not in set(self.keys.values()):
            raise self.fail(403, f"no access to workspace {workspace_header}")
        return Caller(token, workspace_header)

    def rate_limited(self, request: Request) -> Response | None:
        if self._bucket is None:
            return None
        try:
            caller = self._caller(request)
        except HttpError:
            return None  # answered by the route (401/400/403); not attributable to a key
        wait = self._bucket.take(caller.credential)
        return None if wait is None else self.too_many(wait)

    def route(self, request: Request) -> Response:
        caller = self._caller(request)
        for pattern, methods in _ROUTES:
            m = pattern.fullmatch(request.path)
            if m is None:
                continue
            if methods.get("PUT") == "_promote":
                methods = {verb: "_promote" for verb in self.promote_methods}
            handler = methods.get(request.method)
            if handler is None:
                raise self.fail(405, f"method {request.method} not allowed",
                                headers={"Allow": ", ".join(sorted(methods))})
            try:
                return getattr(self, handler)(request, caller, **m.groupdict())
            except HttpError:
                raise
            except Exception as exc:  # noqa: BLE001 - a real server answers 500; tests assert this stays empty
                self.internal_errors.append(exc)
                return Response(500, self.error_body(500, "internal server error"))
        raise self.fail(404, f"route {request.method} {request.path} not found")

    def _body(self, request: Request, *, empty_ok: bool = False) -> dict[str, Any]:
        if not request.body.strip():
            if empty_ok:
                return {}
            raise self.fail(400, "invalid request body")
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise self.fail(400, "invalid request body") from None
        if not isinstance(body, dict):
            raise self.fail(400, "invalid request body: expected a JSON object")
        return body

    def _prompt(self, caller: Caller, pid: str) -> StoredPrompt:
        p = self.prompts.get(pid)
        if p is None or p.workspace_id != caller.workspace_id:
            raise self.fail(404, "prompt not found")
        return p

    @staticmethod
    def _page_args(request: Request) -> tuple[int, int]:
        """``page`` and ``limit`` as promptrails-local's getPagination reads them: never an error,
        a limit it does not take is silently the default (see CHOICES["pagination"])."""
        def first(name: str) -> str | None:
            values = request.query.get(name)  # Go's url.Values.Get: the first value
            return values[0] if values else None

        page, limit = go_atoi(first("page")), go_atoi(first("limit"))
        return max(page, 1), (limit if 1 <= limit <= MAX_LIMIT else DEFAULT_LIMIT)

    # ------------------------------------------------------------------ validation + state changes

    def _bad(self, name: str, message: str) -> HttpError:
        return self.fail(400, f"{name} {message}", details={"field": name})

    def _string(self, body: Mapping[str, Any], name: str, default: str | None = "") -> str | None:
        value = body.get(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._bad(name, "must be a string")
        return value

    def _object(self, body: Mapping[str, Any], name: str, default: Any) -> Any:
        value = body.get(name)
        if value is None:
            return default
        if not isinstance(value, dict):
            raise self._bad(name, "must be an object")
        return _copy(value)

    def _number(self, body: Mapping[str, Any], name: str, *, integer: bool = False, low: float | None = None) -> Any:
        value = body.get(name)
        if value is None:
            return None
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or (low is not None and value < low):
            what = "an integer" if integer else "a number"
            raise self._bad(name, f"must be {what}" + (f" >= {low:g}" if low is not None else ""))
        return value

    def _check_name(self, name: Any, workspace: str, exclude: str | None = None) -> str:
        if not isinstance(name, str) or not name.strip():
            raise self._bad("name", "is required")
        if len(name) > NAME_MAX:
            raise self._bad("name", f"must be at most {NAME_MAX} characters")
        if self.reject_duplicates and any(p.name == name and p.workspace_id == workspace and p.id != exclude
                                          for p in self.prompts.values()):
            raise self.fail(409, f"prompt with name {name!r} already exists", details={"field": "name"})
        return name

    def _new_prompt(self, workspace: str, body: Mapping[str, Any], *, quota: bool = True) -> StoredPrompt:
        description = self._string(body, "description")
        content = bool(self._string(body, "system_prompt") or self._string(body, "user_prompt"))
        version_body = {"version": "v1", "set_current": True, **{k: body.get(k) for k in
                                                                 ("system_prompt", "user_prompt", "config",
                                                                  "input_schema")}}
        if content:
            self._validate_version(version_body)  # 400 before anything is stored
        name = self._check_name(body.get("name"), workspace)
        if quota and self.max_prompts is not None and \
                sum(1 for p in self.prompts.values() if p.workspace_id == workspace) >= self.max_prompts:
            raise self.fail(402, f"prompt quota exceeded ({self.max_prompts} prompts on this plan)")
        now = self._now()
        self._seq += 1
        p = StoredPrompt(self._new_id(), workspace, name, description or "", "active", now, now, self._seq)
        self.prompts[p.id] = p
        if content:
            self._new_version(p, version_body)
        return p

    def _validate_version(self, body: Mapping[str, Any]) -> dict[str, Any]:
        version = body.get("version")
        if version is not None:
            if not isinstance(version, str) or not version.strip():
                raise self._bad("version", "must be a non-empty string")
            if len(version) > VERSION_MAX:
                raise self._bad("version", f"must be at most {VERSION_MAX} characters")
        system, user = self._string(body, "system_prompt"), self._string(body, "user_prompt")
        if not system and not user:
            raise self._bad("user_prompt", "is required (system_prompt or user_prompt must be non-empty)")
        input_schema = self._object(body, "input_schema", {})
        try:
            jsonschema.validators.validator_for(input_schema).check_schema(input_schema)
        except jsonschema.SchemaError as exc:
            raise self._bad("input_schema", f"is not a valid JSON Schema: {exc.message}") from None
        set_current = body.get("set_current")
        if set_current is not None and not isinstance(set_current, bool):
            raise self._bad("set_current", "must be a boolean")
        return {
            "version": version, "system_prompt": system, "user_prompt": user,
            "llm_model_id": self._string(body, "llm_model_id", None),
            "fallback_llm_model_id": self._string(body, "fallback_llm_model_id", None),
            "temperature": self._number(body, "temperature"),
            "max_tokens": self._number(body, "max_tokens", integer=True, low=1),
            "top_p": self._number(body, "top_p"),
            "input_schema": input_schema,
            "output_schema": self._object(body, "output_schema", None),
            "config": self._object(body, "config", {}),
            "message": self._string(body, "message"),
            "cache_timeout": self._number(body, "cache_timeout", integer=True, low=0) or 0,
            "set_current": bool(set_current),
        }

    def _new_version(self, p: StoredPrompt, body: Mapping[str, Any]) -> dict[str, Any]:
        fields = self._validate_version(body)
        taken = {v["version"] for v in p.versions}
        version = fields.pop("version")
        if version is None:
            n = len(p.versions) + 1
            while f"v{n}" in taken:
                n += 1
            version = f"v{n}"
        elif version in taken and self.reject_duplicates:
            raise self.fail(409, f"version {version!r} already exists for this prompt", details={"field": "version"})
        set_current = fields.pop("set_current")
        now = self._now()
        stored = {"id": self._new_id(), "prompt_id": p.id, "version": version, **fields, "created_at": now}
        # the public key order: is_current/is_active are inserted by _public_version
        p.versions.append(stored)
        if set_current:
            p.current_id = stored["id"]
        p.updated_at = now
        return stored

    # ------------------------------------------------------------------ endpoints

    def _list_prompts(self, request: Request, caller: Caller) -> Response:
        page, limit = self._page_args(request)
        search = (request.arg("search") or "").lower()
        items = sorted((p for p in self.prompts.values()
                        if p.workspace_id == caller.workspace_id and search in p.name.lower()),
                       key=lambda q: q.seq, reverse=True)
        chunk, _ = paginate(items, page, limit)
        return self._list([self._public_prompt(p) for p in chunk], page, limit, len(items))

    def _create_prompt(self, request: Request, caller: Caller) -> Response:
        p = self._new_prompt(caller.workspace_id, self._body(request))
        return self._single(self._public_prompt(p), "Prompt created successfully", 201)

    def _get_prompt(self, request: Request, caller: Caller, pid: str) -> Response:
        return self._single(self._public_prompt(self._prompt(caller, pid)), "Prompt retrieved successfully")

    def _update_prompt(self, request: Request, caller: Caller, pid: str) -> Response:
        p = self._prompt(caller, pid)
        body = self._body(request)
        name = self._check_name(body["name"], p.workspace_id, exclude=p.id) if "name" in body else p.name
        description = self._string(body, "description", p.description)
        status = body.get("status", p.status)
        if status not in STATUSES:
            raise self._bad("status", f"must be one of {', '.join(STATUSES)}")
        p.name, p.description, p.status = name, description, status
        p.updated_at = self._now()
        return self._single(self._public_prompt(p), "Prompt updated successfully")

    def _delete_prompt(self, request: Request, caller: Caller, pid: str) -> Response:
        del self.prompts[self._prompt(caller, pid).id]
        return Response(204)

    def _list_versions(self, request: Request, caller: Caller, pid: str) -> Response:
        p = self._prompt(caller, pid)
        newest_first = [self._public_version(p, v) for v in reversed(p.versions)]
        if not self.versions_paged or (request.arg("page") is None and request.arg("limit") is None):
            return self._single(newest_first, "OK")
        page, limit = self._page_args(request)
        chunk, _ = paginate(newest_first, page, limit)
        return self._list(chunk, page, limit, len(newest_first))

    def _create_version(self, request: Request, caller: Caller, pid: str) -> Response:
        p = self._prompt(caller, pid)
        stored = self._new_version(p, self._body(request))
        return self._single(self._public_version(p, stored), "Prompt version created successfully", 201)

    def _promote(self, request: Request, caller: Caller, pid: str, vid: str) -> Response:
        p = self._prompt(caller, pid)
        v = p.version_by_id(vid)
        if v is None:
            raise self.fail(404, "version not found")
        self._body(request, empty_ok=True)
        if p.current_id != vid:
            p.current_id = vid
            p.updated_at = self._now()
        return self._single(self._public_version(p, v), "Prompt version promoted successfully")

    def _preview(self, request: Request, caller: Caller, pid: str) -> Response:
        p = self._prompt(caller, pid)
        body = self._body(request)
        values = self._object(body, "input", {})
        vid = self._string(body, "version_id", None)
        if vid is not None:
            v = p.version_by_id(vid)
            if v is None:
                raise self.fail(404, "version not found")
        elif p.current_id is None:
            raise self._bad("version_id", "is required: the prompt has no current version")
        else:
            v = p.version_by_id(p.current_id)
        validator = jsonschema.validators.validator_for(v["input_schema"])(v["input_schema"])
        problem = jsonschema.exceptions.best_match(validator.iter_errors(values))
        if problem is not None:
            raise self.fail(422, f"input does not match input_schema: {problem.message}",
                            details={"path": list(problem.absolute_path)})
        env = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)
        rendered = {}
        for part in ("system_prompt", "user_prompt"):
            try:
                rendered[part] = env.from_string(v[part]).render(values)
            except Exception as exc:  # noqa: BLE001 - syntax, undefined, sandbox and type errors alike
                raise self.fail(422, f"cannot render {part}: {exc}", details={"field": part}) from None
        return self._single({"prompt_id": p.id, "version_id": v["id"], "version": v["version"], **rendered,
                             "input": values}, "Prompt preview generated successfully")
