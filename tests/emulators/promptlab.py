"""PromptLab emulator (``api.promptlab.dev``), written from ../shared/providers-api.md section 2.

The documented API (2.2) is ``POST /v1/resolve``, ``GET /v1/prompts``, ``POST
/v1/prompts/:id/versions``, ``POST /v1/prompts/:id/deploy`` and ``POST /v1/prompts/:id/rollback``;
the spec's "minimal consistent completion" (2.3, marked ``x-emulator-extension`` below) adds
``POST /v1/prompts``, ``GET /v1/prompts/:id``, ``GET /v1/prompts/:id/versions``, ``GET
/v1/prompts/:id/deployments`` and the ``name``/``page``/``limit`` query of the list.

Everything the spec leaves open is decided here and listed in :data:`CHOICES` so an adapter author
can follow it. The summary:

* Auth: ``Authorization: Bearer <key>`` (scheme case-insensitive) for every path; missing, another
  scheme or an unknown key is 401 ``unauthorized``. Keys added with ``read_only=True`` get 403
  ``forbidden`` on every POST except ``/v1/resolve`` (which changes nothing).
* Errors: ``{"error": {"code", "message", "docs"}}`` with ``docs`` =
  ``https://docs.promptlab.dev/errors#<code>``. An unknown path or method is 404 ``not_found``
  (405 is not in the platform's error table).
* Statuses: create prompt and create version 201; deploy and rollback 200; reads 200.
* Rate limits: a real token bucket per (key, endpoint) for the four endpoints in the table only
  (capacity = the per-window limit, refilled continuously at limit/window per second). The
  extension endpoints and rollback are not limited. Requests without a valid key are not counted
  (they get 401). ``Retry-After`` is whole seconds, rounded up, at least 1.
* Resolve bucket: ``int.from_bytes(sha256(f"{prompt_id}:{user_id}".encode()).digest()[:8], "big")
  % 10000`` (the spec's formula; ``prompt_id`` is the ``prm_`` id), traffic walked in stored
  (request) order, each entry taking ``weight * 100`` buckets.
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import Emulator, Faults, HttpError, Request, Response, int_arg

DOCS = "https://docs.promptlab.dev/errors#"
BUCKETS = 10_000

#: status -> the platform's error code (the spec's error table).
ERROR_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               422: "weight_mismatch", 429: "rate_limited", 500: "internal_error"}

#: plan -> endpoint -> (requests, per seconds): the spec's rate-limit table.
PLANS: dict[str, dict[str, tuple[int, float]]] = {
    "free": {"resolve": (10, 1.0), "list": (30, 60.0), "versions": (20, 60.0), "deploy": (5, 60.0)},
    "pro": {"resolve": (500, 1.0), "list": (300, 60.0), "versions": (200, 60.0), "deploy": (60, 60.0)},
}
DEFAULT_PLAN = "free"

#: Where the spec is silent, what this emulator does (for adapter authors; see the module docstring).
CHOICES = {
    "auth": "Bearer on every path, scheme case-insensitive; missing/other scheme/unknown key -> 401 unauthorized "
            "with WWW-Authenticate: Bearer; "
            "read-only keys -> 403 forbidden on POST except /v1/resolve",
    "order_of_checks": "injected faults, rate limit (valid keys only, 429), auth (401), route (404), read-only "
                       "key (403), prompt id (404), body shape (400), versions exist (404), weight sum (422)",
    "statuses": "POST /v1/prompts 201, POST versions 201, deploy 200, rollback 200, GETs 200",
    "unknown_route": "404 not_found for an unknown path or a known path with another method",
    "ids": "prm_/ver_/dep_ + 12 random base36 characters",
    "timestamps": "UTC, second precision, 'YYYY-MM-DDTHH:MM:SSZ'",
    "list_order": "GET /v1/prompts: creation order, oldest first",
    "list_query": "name = exact match (empty = no filter); page/limit only when either is given "
                  "(page >= 1 default 1, limit 1..100 default 50; else 400); total counts the filtered prompts; "
                  "response stays {prompts, total}",
    "version_body": "content: non-empty string (required); message: string or null (default '')",
    "version_object": "POST returns the documented fields; GET versions adds content",
    "deploy_body": "traffic: non-empty list of {version: str, weight: int 0..100 (bool is not an int)}, versions "
                   "distinct -> else 400; unknown version -> 404; sum != 100 -> 422; label: string or null "
                   "(absent -> null); extra fields ignored; traffic stored in request order",
    "fully_deployed": "a deployment in which one entry has weight 100 (the others, if any, weigh 0)",
    "active_version_tie": "the highest-weight entry of the current deployment, first in stored order on a tie",
    "rollback": "no current deployment or no earlier fully-deployed one -> 400; the rollback deployment is current, "
                "so a second rollback targets the full deployment before it (it may roll forward)",
    "resolve": "prompt and user_id non-empty strings, context object or null (else 400); unknown name or never "
               "deployed -> 404; {{key}} (inner whitespace allowed) replaced by context[key] when present: "
               "strings as is, other values as JSON",
    "rate_limit": "token bucket per (key, endpoint), capacity = limit, refill limit/window per second; only the "
                  "four endpoints in the table; unauthenticated requests are not counted; a 429 costs nothing",
}


def error_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """The platform's error body for ``status``."""
    code = code or ERROR_CODES.get(status) or ("internal_error" if status >= 500 else "invalid_request")
    return {"error": {"code": code, "message": message, "docs": DOCS + code}}


def fail(status: int, message: str) -> HttpError:
    return HttpError(status, error_body(status, message))


def content_hash(content: str) -> str:
    """``"sha256:" + hex(sha256(utf8(content)))`` (spec 2.3)."""
    return "sha256:" + hashlib.sha256(content.encode("utf-8")).hexdigest()


def bucket(prompt_id: str, user_id: str) -> int:
    """The user's resolve bucket in ``range(10000)`` (spec 2.3)."""
    digest = hashlib.sha256(f"{prompt_id}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def pick(traffic: Iterable[Mapping[str, Any]], b: int) -> str:
    """The version of ``traffic`` (walked in order, ``weight * 100`` buckets each) holding bucket ``b``."""
    end = 0
    for entry in traffic:
        end += entry["weight"] * (BUCKETS // 100)
        if b < end:
            return entry["version"]
    raise ValueError("traffic weights do not sum to 100")


class RefillBucket:
    """A token bucket per key: ``limit`` tokens, refilled continuously at ``limit / window`` per second."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]):
        self.capacity, self.rate, self.clock = float(limit), limit / window, clock
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """None when a token was taken, else the seconds until one is available."""
        now = self.clock()
        with self._lock:
            tokens, last = self._state.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + max(0.0, now - last) * self.rate)
            if tokens >= 1 - 1e-9:
                self._state[key] = (max(0.0, tokens - 1), now)
                return None
            self._state[key] = (tokens, now)
            return (1 - tokens) / self.rate

    def tokens(self, key: str) -> float:
        now = self.clock()
        with self._lock:
            tokens, last = self._state.get(key, (self.capacity, now))
            return min(self.capacity, tokens + max(0.0, now - last) * self.rate)


class PromptLabFaults(Faults):
    """Faults whose default error body is in PromptLab's shape."""

    def fail_next(self, n: int = 1, status: int = 500, body: Any = None, *, headers: Mapping[str, str] | None = None,
                  match: str | None = None) -> None:
        if body is None:
            body = error_body(status, "injected fault")
        super().fail_next(n, status, body, headers=headers, match=match)


@dataclass
class Key:
    owner: str
    read_only: bool = False


@dataclass
class StoredPrompt:
    """A prompt as stored: ``versions`` oldest first, ``deployments`` oldest first (the last is current)."""

    id: str
    name: str
    description: str
    created_at: str
    updated_at: str
    versions: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def current_deployment(self) -> dict[str, Any] | None:
        return self.deployments[-1] if self.deployments else None

    def version(self, name: str) -> dict[str, Any] | None:
        return next((v for v in self.versions if v["version"] == name), None)

    @property
    def active_version(self) -> str | None:
        for dep in reversed(self.deployments):
            full = fully_deployed(dep)
            if full is not None:
                return full
        current = self.current_deployment
        if current is None:
            return None
        best = max(e["weight"] for e in current["traffic"])
        return next(e["version"] for e in current["traffic"] if e["weight"] == best)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "active_version": self.active_version,
                "version_count": len(self.versions), "updated_at": self.updated_at}


def fully_deployed(deployment: Mapping[str, Any]) -> str | None:
    """The version a deployment sends all traffic to, or None."""
    full = [e["version"] for e in deployment["traffic"] if e["weight"] == 100]
    return full[0] if full else None


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


_ID = r"(?P<pid>[^/]+)"
# (method, path regex, handler, rate-limit endpoint or None)
_ROUTES: list[tuple[str, re.Pattern[str], str, str | None]] = [
    ("POST", re.compile(r"/v1/resolve"), "_resolve", "resolve"),
    ("GET", re.compile(r"/v1/prompts"), "_list_prompts", "list"),
    ("POST", re.compile(r"/v1/prompts"), "_create_prompt", None),  # x-emulator-extension
    ("GET", re.compile(rf"/v1/prompts/{_ID}"), "_get_prompt", None),  # x-emulator-extension
    ("GET", re.compile(rf"/v1/prompts/{_ID}/versions"), "_list_versions", None),  # x-emulator-extension
    ("POST", re.compile(rf"/v1/prompts/{_ID}/versions"), "_create_version", "versions"),
    ("POST", re.compile(rf"/v1/prompts/{_ID}/deploy"), "_deploy", "deploy"),
    ("POST", re.compile(rf"/v1/prompts/{_ID}/rollback"), "_rollback", None),
    ("GET", re.compile(rf"/v1/prompts/{_ID}/deployments"), "_list_deployments", None),  # x-emulator-extension
]
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")


class PromptLabEmulator(Emulator):
    """A stateful, thread-safe fake of the PromptLab API.

    ``plan`` is ``"free"`` (default) or ``"pro"`` (the spec's rate-limit table), or None for no
    limits. ``clock`` drives the rate limits, ``wall_clock`` the timestamps, ``seed`` the ids (two
    emulators with the same seed and wall clock answer byte for byte the same).

    Test hooks: :attr:`prompts` (id -> :class:`StoredPrompt`, live), :meth:`prompt_by_name`,
    :meth:`versions`, :meth:`deployments`, :meth:`current_deployment`, :meth:`snapshot`,
    :meth:`add_prompt`, :meth:`add_version`, :meth:`deploy` (state without HTTP), :meth:`add_key`,
    :meth:`set_plan`, :meth:`reset_limits`, :meth:`tokens_left`, :meth:`bucket`, :meth:`resolve_version`,
    :attr:`internal_errors` (exceptions turned into 500s), plus the base's faults and log.
    """

    name = "promptlab"

    def __init__(self, api_key: str = "pl-test-key", plan: str | None = DEFAULT_PLAN,
                 clock: Callable[[], float] = time.monotonic, *, owner: str = "usr_emulator",
                 read_only_keys: Iterable[str] = (), wall_clock: Callable[[], float] = time.time,
                 seed: int | None = None):
        super().__init__()
        self.faults = PromptLabFaults()
        self.clock = clock
        self.wall_clock = wall_clock
        self.keys: dict[str, Key] = {api_key: Key(owner)}
        for key in read_only_keys:
            self.keys[key] = Key(owner, read_only=True)
        self.prompts: dict[str, StoredPrompt] = {}
        self.internal_errors: list[BaseException] = []
        self._random = random.Random(seed)
        self._ids: set[str] = set()
        self._limits_lock = threading.Lock()
        self._buckets: dict[str, RefillBucket] = {}
        self.plan: str | None = None
        self.set_plan(plan)

    # ------------------------------------------------------------------ test hooks

    def add_key(self, key: str, *, owner: str = "usr_emulator", read_only: bool = False) -> None:
        with self.lock:
            self.keys[key] = Key(owner, read_only)

    def set_plan(self, plan: str | None) -> None:
        """Switch the rate-limit plan (``"free"``, ``"pro"`` or None for none); buckets start full."""
        if plan is not None and plan not in PLANS:
            raise ValueError(f"unknown plan {plan!r}; expected one of {sorted(PLANS)} or None")
        with self._limits_lock:
            self.plan = plan
            self._buckets = {} if plan is None else {
                endpoint: RefillBucket(limit, window, self.clock) for endpoint, (limit, window) in PLANS[plan].items()}

    def reset_limits(self) -> None:
        self.set_plan(self.plan)

    def tokens_left(self, endpoint: str, key: str | None = None) -> float | None:
        """Tokens in ``endpoint``'s bucket ("resolve", "list", "versions", "deploy") for ``key``."""
        with self._limits_lock:
            b = self._buckets.get(endpoint)
        if b is None:
            return None
        return b.tokens(key if key is not None else next(iter(self.keys)))

    def prompt_by_name(self, name: str) -> StoredPrompt | None:
        with self.lock:
            return next((p for p in self.prompts.values() if p.name == name), None)

    def _stored(self, prompt: str) -> StoredPrompt:
        p = self.prompts.get(prompt) or self.prompt_by_name(prompt)
        if p is None:
            raise KeyError(prompt)
        return p

    def versions(self, prompt: str) -> list[dict[str, Any]]:
        """Copies of a prompt's versions (by id or name), oldest first, with content."""
        with self.lock:
            return _copy(self._stored(prompt).versions)

    def deployments(self, prompt: str) -> list[dict[str, Any]]:
        """Copies of a prompt's deployments (by id or name), newest first as the API lists them."""
        with self.lock:
            return _copy(list(reversed(self._stored(prompt).deployments)))

    def current_deployment(self, prompt: str) -> dict[str, Any] | None:
        with self.lock:
            return _copy(self._stored(prompt).current_deployment)

    def snapshot(self) -> dict[str, Any]:
        """All state as plain JSON values: name -> {id, description, active_version, versions, deployments}."""
        with self.lock:
            return _copy({p.name: {"id": p.id, "description": p.description, "active_version": p.active_version,
                                   "versions": p.versions, "deployments": p.deployments}
                          for p in self.prompts.values()})

    def add_prompt(self, name: str, contents: Iterable[str] = (), traffic: Mapping[str, int] | None = None,
                   label: str | None = None, description: str = "") -> str:
        """Create a prompt (and versions v1.., and a deployment of ``traffic`` {version: weight}) without
        HTTP, rate limits or faults; returns its id."""
        owner = next(iter(self.keys.values())).owner
        with self.lock:
            p = self._new_prompt(name, description)
            try:
                for content in contents:
                    self._new_version(p, content, "", owner)
                if traffic is not None:
                    entries = self._validate_traffic(p, [{"version": v, "weight": w} for v, w in traffic.items()])
                    self._new_deployment(p, entries, label, owner)
            except BaseException:
                del self.prompts[p.id]
                raise
            return p.id

    def add_version(self, prompt: str, content: str, message: str = "") -> dict[str, Any]:
        """Create a version of a prompt (by id or name) without HTTP; returns a copy with content."""
        with self.lock:
            return _copy(self._new_version(self._stored(prompt), content, message, next(iter(self.keys.values())).owner))

    def deploy(self, prompt: str, traffic: Mapping[str, int], label: str | None = None) -> dict[str, Any]:
        """Deploy ``traffic`` {version: weight} (in that order) without HTTP; validated as the API does
        (HttpError otherwise); returns the deployment."""
        with self.lock:
            p = self._stored(prompt)
            entries = self._validate_traffic(p, [{"version": v, "weight": w} for v, w in traffic.items()])
            return _copy(self._new_deployment(p, entries, label, next(iter(self.keys.values())).owner))

    def bucket(self, prompt_id: str, user_id: str) -> int:
        return bucket(prompt_id, user_id)

    def resolve_version(self, prompt: str, user_id: str) -> str:
        """The version ``/v1/resolve`` gives ``user_id`` now (prompt by id or name)."""
        with self.lock:
            p = self._stored(prompt)
            if p.current_deployment is None:
                raise LookupError(f"{prompt} has no deployment")
            return pick(p.current_deployment["traffic"], bucket(p.id, user_id))

    # ------------------------------------------------------------------ emulator plumbing

    def too_many(self, retry_after: float) -> Response:
        seconds = max(1, math.ceil(retry_after - 1e-6))
        return Response(429, error_body(429, f"Rate limit exceeded. Retry after {seconds} seconds."),
                        {"Retry-After": str(seconds)})

    def _key(self, request: Request) -> tuple[str | None, Key | None]:
        header = request.header("Authorization")
        if not header:
            return None, None
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None, None
        return token, self.keys.get(token)

    @staticmethod
    def _match(request: Request) -> tuple[tuple[str, re.Pattern[str], str, str | None] | None, re.Match[str] | None]:
        for route in _ROUTES:
            if route[0] == request.method:
                m = route[1].fullmatch(request.path)
                if m:
                    return route, m
        return None, None

    def rate_limited(self, request: Request) -> Response | None:
        route, _ = self._match(request)
        if route is None or route[3] is None:
            return None
        token, key = self._key(request)
        if key is None:
            return None  # answered 401 by the route; not attributable to a key
        with self._limits_lock:
            b = self._buckets.get(route[3])
        if b is None:
            return None
        wait = b.take(token)
        return None if wait is None else self.too_many(wait)

    def route(self, request: Request) -> Response:
        header = request.header("Authorization")
        _, key = self._key(request)
        if key is None:
            raise HttpError(401, error_body(401, "Missing API key" if not header else "Invalid API key"),
                            {"WWW-Authenticate": "Bearer"})
        route, m = self._match(request)
        if route is None:
            raise fail(404, f"No route for {request.method} {request.path}")
        if key.read_only and request.method == "POST" and route[2] != "_resolve":
            raise fail(403, "This API key is read-only")
        try:
            return getattr(self, route[2])(request, key, **m.groupdict())
        except HttpError:
            raise
        except Exception as exc:  # noqa: BLE001 - a real server answers 500; tests can assert internal_errors is empty
            self.internal_errors.append(exc)
            return Response(500, error_body(500, "Internal server error"))

    # ------------------------------------------------------------------ helpers

    def _now(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.wall_clock()))

    def _new_id(self, prefix: str) -> str:
        while True:
            value = prefix + "".join(self._random.choice(_BASE36) for _ in range(12))
            if value not in self._ids:
                self._ids.add(value)
                return value

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        if not request.body:
            raise fail(400, "Request body must be a JSON object")
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise fail(400, "Invalid JSON body") from None
        if not isinstance(body, dict):
            raise fail(400, "Request body must be a JSON object")
        return body

    def _prompt(self, pid: str) -> StoredPrompt:
        p = self.prompts.get(pid)
        if p is None:
            raise fail(404, f"Prompt {pid} not found")
        return p

    def _new_prompt(self, name: str, description: str) -> StoredPrompt:
        if any(p.name == name for p in self.prompts.values()):
            raise fail(400, "prompt name already exists")
        now = self._now()
        p = StoredPrompt(self._new_id("prm_"), name, description, now, now)
        self.prompts[p.id] = p
        return p

    def _new_version(self, p: StoredPrompt, content: str, message: str, owner: str) -> dict[str, Any]:
        now = self._now()
        version = {"version_id": self._new_id("ver_"), "version": f"v{len(p.versions) + 1}", "prompt_id": p.id,
                   "content_hash": content_hash(content), "message": message, "created_by": owner,
                   "created_at": now, "content": content}
        p.versions.append(version)
        p.updated_at = now
        return version

    @staticmethod
    def _validate_traffic(p: StoredPrompt, traffic: Any) -> list[dict[str, Any]]:
        if not isinstance(traffic, list) or not traffic:
            raise fail(400, "traffic must be a non-empty list of {version, weight}")
        entries: list[dict[str, Any]] = []
        for i, entry in enumerate(traffic):
            if not isinstance(entry, dict):
                raise fail(400, f"traffic[{i}] must be an object with version and weight")
            version, weight = entry.get("version"), entry.get("weight")
            if not isinstance(version, str) or not version:
                raise fail(400, f"traffic[{i}].version must be a non-empty string")
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
                raise fail(400, f"traffic[{i}].weight must be an integer between 0 and 100")
            if any(e["version"] == version for e in entries):
                raise fail(400, f"traffic lists version {version} more than once")
            entries.append({"version": version, "weight": weight})
        for e in entries:
            if p.version(e["version"]) is None:
                raise fail(404, f"Version {e['version']} not found for prompt {p.id}")
        total = sum(e["weight"] for e in entries)
        if total != 100:
            raise fail(422, f"Traffic weights must sum to 100. Got {total}.")
        return entries

    def _new_deployment(self, p: StoredPrompt, traffic: list[dict[str, Any]], label: str | None,
                        owner: str) -> dict[str, Any]:
        now = self._now()
        dep = {"deployment_id": self._new_id("dep_"), "prompt_id": p.id, "label": label,
               "traffic": [dict(e) for e in traffic], "deployed_at": now, "deployed_by": owner}
        p.deployments.append(dep)
        p.updated_at = now
        return dep

    # ------------------------------------------------------------------ endpoints

    def _create_prompt(self, request: Request, key: Key) -> Response:
        body = self._body(request)
        name, description = body.get("name"), body.get("description", "")
        if not isinstance(name, str) or not name.strip():
            raise fail(400, "name is required and must be a non-empty string")
        if description is None:
            description = ""
        if not isinstance(description, str):
            raise fail(400, "description must be a string")
        p = self._new_prompt(name, description)
        return Response(201, {"id": p.id, "name": p.name, "active_version": None, "version_count": 0,
                              "created_at": p.created_at, "updated_at": p.updated_at})

    def _list_prompts(self, request: Request, key: Key) -> Response:
        items = list(self.prompts.values())
        name = request.arg("name")
        if name:
            items = [p for p in items if p.name == name]
        total = len(items)
        if request.arg("page") is not None or request.arg("limit") is not None:
            page = int_arg(request, "page", 1, error=lambda m: fail(400, m))
            limit = int_arg(request, "limit", 50, high=100, error=lambda m: fail(400, m))
            items = items[(page - 1) * limit:page * limit]
        return Response(200, {"prompts": [p.summary() for p in items], "total": total})

    def _get_prompt(self, request: Request, key: Key, pid: str) -> Response:
        p = self._prompt(pid)
        return Response(200, {**p.summary(), "current_deployment": _copy(p.current_deployment)})

    def _list_versions(self, request: Request, key: Key, pid: str) -> Response:
        p = self._prompt(pid)
        return Response(200, {"versions": _copy(p.versions), "total": len(p.versions)})

    def _create_version(self, request: Request, key: Key, pid: str) -> Response:
        p = self._prompt(pid)
        body = self._body(request)
        content, message = body.get("content"), body.get("message", "")
        if not isinstance(content, str) or not content:
            raise fail(400, "content is required and must be a non-empty string")
        if message is None:
            message = ""
        if not isinstance(message, str):
            raise fail(400, "message must be a string")
        version = self._new_version(p, content, message, key.owner)
        return Response(201, {k: v for k, v in version.items() if k != "content"})

    def _deploy(self, request: Request, key: Key, pid: str) -> Response:
        p = self._prompt(pid)
        body = self._body(request)
        label = body.get("label")
        if label is not None and not isinstance(label, str):
            raise fail(400, "label must be a string")
        entries = self._validate_traffic(p, body.get("traffic"))
        return Response(200, _copy(self._new_deployment(p, entries, label, key.owner)))

    def _rollback(self, request: Request, key: Key, pid: str) -> Response:
        p = self._prompt(pid)
        target = next((d for d in reversed(p.deployments[:-1]) if fully_deployed(d) is not None), None)
        if target is None:
            raise fail(400, "no previous stable deployment")
        version = fully_deployed(target)
        dep = self._new_deployment(p, [{"version": version, "weight": 100}], "rollback", key.owner)
        return Response(200, {"rolled_back_to": target["deployment_id"], "version": version,
                              "rolled_back_at": dep["deployed_at"]})

    def _list_deployments(self, request: Request, key: Key, pid: str) -> Response:
        p = self._prompt(pid)
        return Response(200, {"deployments": _copy(list(reversed(p.deployments))), "total": len(p.deployments)})

    def _resolve(self, request: Request, key: Key) -> Response:
        body = self._body(request)
        name, user, context = body.get("prompt"), body.get("user_id"), body.get("context")
        if not isinstance(name, str) or not name:
            raise fail(400, "prompt is required and must be a non-empty string")
        if not isinstance(user, str) or not user:
            raise fail(400, "user_id is required and must be a non-empty string")
        if context is None:
            context = {}
        if not isinstance(context, dict):
            raise fail(400, "context must be an object")
        p = next((q for q in self.prompts.values() if q.name == name), None)
        if p is None:
            raise fail(404, f"Prompt {name} not found")
        dep = p.current_deployment
        if dep is None:
            raise fail(404, f"Prompt {name} has no deployment")
        version = pick(dep["traffic"], bucket(p.id, user))
        content = p.version(version)["content"]

        def fill(m: re.Match[str]) -> str:
            k = m.group(1)
            if k not in context:
                return m.group(0)
            value = context[k]
            return value if isinstance(value, str) else json.dumps(value)

        return Response(200, {"prompt": p.name, "version": version, "content": _PLACEHOLDER.sub(fill, content),
                              "resolved_at": self._now(), "traffic_rule": dep["label"] or dep["deployment_id"]})
