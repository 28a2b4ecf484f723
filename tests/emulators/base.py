"""What every platform emulator shares: requests and responses as plain values, fault injection,
a request log, and two ways to run the same emulator: in-process (an httpx transport) and as a
real HTTP server on 127.0.0.1 (a thread, or ``python -m tests.emulators NAME --port N``).

An emulator is a stateful fake of one platform's HTTP API, written from ../shared/providers-api.md
and sdk-contracts.md: status codes, error bodies, pagination, label semantics and rate limits as
the platform has them. Subclasses implement :meth:`Emulator.route`; the official SDKs are run
against the server form in the tests, so an emulator cannot drift from the real API unnoticed.
"""
from __future__ import annotations

import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

import httpx


@dataclass
class Request:
    """One request: ``path`` is percent-decoded except for ``%2F`` (kept, so a route can tell a
    URL-encoded slash in a name from a path separator); ``raw_path`` is as sent."""

    method: str
    raw_path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def path(self) -> str:
        return unquote(self.raw_path.replace("%2F", "\0").replace("%2f", "\0")).replace("\0", "%2F")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    def json(self) -> Any:
        """The JSON body; :class:`HttpError` 400 when it is not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise HttpError(400, {"message": "Invalid JSON body"}) from None


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as is instead of the JSON of ``body`` (a garbled answer)

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.body is None or self.status == 204:
            return b""
        return json.dumps(self.body).encode()


class HttpError(Exception):
    """Raised by route handlers: becomes the response as is."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None):
        super().__init__(f"{status} {body}")
        self.response = Response(status, body, dict(headers or {}))


class Dropped(Exception):
    """A fault: the connection is closed without an answer (after the request was handled when
    ``after`` is True, so the change happened but the client never heard)."""


@dataclass
class _Fault:
    kind: str  # "status", "drop", "drop_after", "delay", "rate_limit", "garble", "pass"
    remaining: int
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    match: str | None = None  # a regex on "METHOD path"; None: every request


class Faults:
    """Fault injection for resilience tests; each fault applies to the next N matching requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []

    def fail_next(self, n: int = 1, status: int = 500, body: Any = None, *, headers: Mapping[str, str] | None = None,
                  match: str | None = None) -> None:
        """Answer the next ``n`` requests with ``status`` (and ``body``) without handling them."""
        self._add(_Fault("status", n, status=status, body=body if body is not None else {"message": "injected fault"},
                         headers=dict(headers or {}), match=match))

    def rate_limit(self, n: int = 1, retry_after: float = 1, *, match: str | None = None) -> None:
        """Answer the next ``n`` requests with 429 and ``Retry-After``."""
        self._add(_Fault("rate_limit", n, status=429, seconds=retry_after, match=match))

    def delay(self, seconds: float, n: int = 1, *, match: str | None = None) -> None:
        """Handle the next ``n`` requests only after ``seconds``."""
        self._add(_Fault("delay", n, seconds=seconds, match=match))

    def drop_next(self, n: int = 1, *, after: bool = False, match: str | None = None) -> None:
        """Close the connection on the next ``n`` requests without answering; with ``after``, the
        request is handled first (it took effect, the client cannot know)."""
        self._add(_Fault("drop_after" if after else "drop", n, match=match))

    def garble_next(self, n: int = 1, *, malformed: bool = False, match: str | None = None) -> None:
        """Handle the next ``n`` requests, then send a 2xx answer's body cut in half (with a
        matching Content-Length: the client reads a truncated JSON document), or with
        ``malformed`` the whole body and a stray ``}`` (not JSON): the change happened, the client
        cannot tell what it made. Error answers are sent as they are."""
        self._add(_Fault("garble", n, body="malformed" if malformed else "truncated", match=match))

    def pass_next(self, n: int = 1, *, match: str | None = None) -> None:
        """Handle the next ``n`` matching requests as usual: a fault added after this one (with a
        match at least as narrow) meets the request after them, the third create instead of the first."""
        self._add(_Fault("pass", n, match=match))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str) -> _Fault | None:
        """The fault for this request, if any (its count goes down by one)."""
        line = f"{method} {path}"
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and (fault.match is None or re.search(fault.match, line)):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None


class TokenBucket:
    """``limit`` requests per ``window`` seconds per key; ``clock`` injectable for tests."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._hits: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """None when allowed (and counted), else the seconds until a slot frees up."""
        now = self.clock()
        with self._lock:
            hits = [t for t in self._hits.get(key, []) if now - t < self.window]
            if len(hits) >= self.limit:
                self._hits[key] = hits
                return max(0.0, self.window - (now - hits[0]))
            hits.append(now)
            self._hits[key] = hits
            return None


class Emulator:
    """Base class: fault handling, the request log, the in-process transport and the server."""

    name = "emulator"

    def __init__(self) -> None:
        self.faults = Faults()
        self.lock = threading.RLock()  # one request changes state at a time, as a database would
        self.log: list[tuple[str, str]] = []

    # ------------------------------------------------------------------ to implement

    def route(self, request: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    def rate_limited(self, request: Request) -> Response | None:
        """The platform's own rate limiting (a 429 Response), or None. Default: no limits."""
        return None

    # ------------------------------------------------------------------ handling

    def handle(self, request: Request) -> Response:
        """Faults first, then rate limits, then the route. Raises :class:`Dropped` for drops."""
        with self.lock:
            self.log.append((request.method, request.path))
        fault = self.faults.take(request.method, request.path)
        if fault is not None:
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            elif fault.kind == "drop":
                raise Dropped()
            elif fault.kind == "rate_limit":
                return self.too_many(fault.seconds)
            elif fault.kind == "status":
                return Response(fault.status, fault.body, dict(fault.headers))
        limited = self.rate_limited(request)
        if limited is not None:
            return limited
        try:
            with self.lock:
                response = self.route(request)
        except HttpError as exc:
            response = exc.response
        if fault is not None and fault.kind == "drop_after":
            raise Dropped()
        if fault is not None and fault.kind == "garble" and response.status < 300:
            whole = response.encode()
            response.raw = whole + b"}" if fault.body == "malformed" else whole[: len(whole) // 2]
        return response

    def too_many(self, retry_after: float) -> Response:
        """A 429 in this platform's shape (override for the platform's body)."""
        seconds = max(1, int(-(-retry_after // 1)))
        return Response(429, {"message": "Rate limit exceeded"}, {"Retry-After": str(seconds)})

    def calls(self, method: str | None = None, pattern: str = "") -> int:
        """How many logged requests match ``method`` and the regex ``pattern`` on the path."""
        with self.lock:
            return sum(1 for m, p in self.log if (method is None or m == method) and re.search(pattern, p))

    # ------------------------------------------------------------------ in-process

    def transport(self) -> httpx.MockTransport:
        """An httpx transport that answers from this emulator without a socket."""

        def answer(request: httpx.Request) -> httpx.Response:
            url = request.url
            req = Request(request.method, url.raw_path.decode("ascii").split("?", 1)[0],
                          parse_qs(url.query.decode("ascii"), keep_blank_values=True), dict(request.headers),
                          request.read())
            try:
                response = self.handle(req)
            except Dropped:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
            return httpx.Response(response.status, headers={"Content-Type": "application/json", **response.headers},
                                  content=response.encode())

        return httpx.MockTransport(answer)

    # ------------------------------------------------------------------ as a server

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> "Server":
        """Start a real HTTP server in a thread; use as a context manager or call close()."""
        return Server(self, host, port)


class _Httpd(ThreadingHTTPServer):
    # The standard library listens with a backlog of 5: a client opening more connections at once
    # (apply at concurrency 8 or 16) overflows it and waits a 1 s TCP retransmit. Platforms don't.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (its timeout, while a delay fault held the request) has closed the
        # connection: the answer has nowhere to go, which is no error of the emulator's.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class Server:
    """A running emulator on ``url`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, emulator: Emulator, host: str, port: int):
        handler = _handler_for(emulator)
        self.httpd = _Httpd((host, port), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        # a short poll interval: close() waits for the serving loop to notice
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name=f"{emulator.name}-emulator", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler_for(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else every keep-alive request waits ~40 ms for delayed ACKs

        def log_message(self, *args: Any) -> None:  # quiet: tests read emulator.log instead
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                              {k: v for k, v in self.headers.items()}, body)
            try:
                response = emulator.handle(request)
            except Dropped:
                self.close_connection = True
                self.connection.close()
                return
            data = response.encode()
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


def paginate(items: list[Any], page: int, limit: int) -> tuple[list[Any], int]:
    """One page (1-based) of ``items`` and the number of pages (0 when there are no items)."""
    pages = (len(items) + limit - 1) // limit
    start = (page - 1) * limit
    return items[start:start + limit], pages


def int_arg(request: Request, name: str, default: int, *, low: int = 1, high: int | None = None,
            error: Callable[[str], HttpError] | None = None) -> int:
    """An integer query argument within [low, high]; otherwise ``error(message)`` is raised (the
    platform's own 400; default ``{"message": ...}``)."""
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        problem = f"{name} must be an integer {bound}"
        raise error(problem) if error else HttpError(400, {"message": f"Invalid request data: {problem}"})
    return value
