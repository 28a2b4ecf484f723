"""The one HTTP layer every remote provider uses (httpx): timeouts, retries honouring
``Retry-After``, the mapping of status codes and error bodies to promptops errors, and credential
redaction in every message.

Retry rules (what may be sent again without changing the outcome):

* 429 is retried for every method: the server refused the request, so nothing happened. The wait
  is ``Retry-After`` (seconds or an HTTP date), else a ``retryAfterSeconds`` in the error body,
  else exponential backoff; never more than ``max_wait`` at a time. 429s are retried until
  ``rate_limit_budget`` seconds have been spent waiting on them (a count would fail a busy apply
  whose threads keep losing the race for a slow endpoint's next token).
* 5xx, 408 and broken connections are retried only for idempotent requests (GET, PUT, DELETE, and
  calls the adapter marks ``idempotent=True``, such as "move label to version 3"). For a create,
  they raise ``ProviderError(ambiguous=True)`` (a 5xx and a lost answer alike say "the request may
  have taken effect"): the request may have landed, so the apply engine looks for the version by
  digest and only then sends it again, with the backoff and budget of :meth:`HttpClient.retry`.
* A 2xx answer to a write that cannot be read (truncated, not JSON, not the expected shape) is
  ambiguous too: the write happened, what it made is unknown (:meth:`HttpClient.accepted`).
* A connection that could not be opened is retried for every method (nothing was sent).

Interruption (Ctrl-C during apply): :meth:`HttpClient.interrupt` ends every wait of the client at
once (a retry's backoff, a 429's ``Retry-After``, client-side pacing): the request waiting raises
:class:`Interrupted`, which is not ambiguous: a request only waits where giving up counts as not
applied anyway (a 429 refused it; an idempotent request whose retries ran out is reported so too),
or, for a create sent again, where the apply engine keeps it "may have been applied" itself. No
request is sent after it either; requests already on the wire finish.

Errors never contain a credential, whole or in part: every message passes through
:class:`Redactor` (:meth:`HttpClient.redact`), which masks the secret values it was given, their
Basic-auth token, the forms a server may echo them in, and any piece of 8 characters of those;
a server's words are redacted before they are cut to what a message quotes (:meth:`HttpClient.excerpt`).
"""
from __future__ import annotations

import base64
import contextlib
import email.utils
import json
import logging
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping
from urllib.parse import quote

import httpx

from . import __version__
from .errors import Interrupted, ProviderError

# Waits of a second or more are announced here (the CLI prints them), so a rate-limited apply is
# never a silent pause.
log = logging.getLogger("promptops.http")
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({408, 500, 502, 503, 504})
# the hint every ambiguous failure of a write carries, a server error's and a lost answer's alike
MAYBE = " (the request may have taken effect; run plan again to see)"
USER_AGENT = f"promptops/{__version__}"
MASK = "***"
FRAGMENT = 8  # this many characters of a secret (or more) are masked wherever they appear
QUOTE = 200  # characters of an unreadable answer (a proxy's page, unknown JSON) a message quotes
DETAIL = 2000  # characters of a server's own error message a message quotes
SCAN = 16_384  # characters of a server's text read at all: bounds the work, far beyond any quote


class RemoteError(ProviderError):
    """A non-2xx answer: ``status`` and the server's own ``detail`` message (redacted)."""

    status: int

    def __init__(self, message: str, *, status: int, detail: str = "", ambiguous: bool = False,
                 retry_after: float | None = None):
        super().__init__(message, ambiguous=ambiguous, status=status)
        self.detail = detail
        self.retry_after = retry_after  # the answer's Retry-After, for a retry decided by the caller


class NotFound(RemoteError):
    """404: adapters turn it into "absent" where absence is an answer (reading a new prompt)."""


@dataclass
class HttpSettings:
    """How a provider talks to its platform.

    ``auth_hint`` names the environment variables behind the credentials, for 401/403 messages.
    ``secrets`` are the credential values to redact. ``sleep`` is injectable so tests of retry
    timing need not wait; None (the default) is the client's own wait, which
    :meth:`HttpClient.interrupt` ends at once (an injected ``sleep`` cannot be cut short: the
    interruption is seen when it returns)."""

    base_url: str
    target: str
    platform: str = "the platform"  # its name in messages ("Langfuse")
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    secrets: Iterable[str] = ()
    auth_hint: str = ""
    timeout: float = 10.0
    max_retries: int = 4
    max_wait: float = 60.0
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] | None = None
    rate_limits: Mapping[str, str] = field(default_factory=dict)  # {"read"|"write"|endpoint class: "20/min"}
    rate_limit_budget: float = 300.0  # seconds of 429 waits per request before giving up
    clock: Callable[[], float] = time.monotonic


class Redactor:
    """Masks credentials in text. Masked: each secret in every form a server may echo it (as is;
    percent-encoded, with either case of hex digits; JSON-escaped, with or without ``\\/``; as a
    Python repr; and each of those once more, as in a request echoed inside a JSON string), and
    any run of text made of ``FRAGMENT``-character pieces of those forms, so a secret cut short
    (by the server, by Python's own error messages) is masked too. A secret shorter than
    ``FRAGMENT`` is masked whole only. The work is one set lookup per character of the text."""

    def __init__(self, secrets: Iterable[str]):
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= _forms(secret)
        self._short = sorted((f for f in forms if len(f) < FRAGMENT), key=len, reverse=True)
        self._pieces = frozenset(f[i:i + FRAGMENT] for f in forms for i in range(len(f) - FRAGMENT + 1))

    def redact(self, text: str) -> str:
        """``text`` with every credential, and every piece of one, replaced by ``***``."""
        runs: list[list[int]] = []  # [start, end) of the text covered by pieces, merged
        if self._pieces:
            for i in range(len(text) - FRAGMENT + 1):
                if text[i:i + FRAGMENT] in self._pieces:
                    if runs and i <= runs[-1][1]:
                        runs[-1][1] = i + FRAGMENT
                    else:
                        runs.append([i, i + FRAGMENT])
        if runs:
            parts, end = [], 0
            for start, stop in runs:
                parts += [text[end:start], MASK]
                end = stop
            text = "".join(parts) + text[end:]
        for secret in self._short:
            text = text.replace(secret, MASK)
        return text

    def excerpt(self, text: str, limit: int = QUOTE) -> str:
        """The start of a server's ``text`` as a message quotes it: redacted first, then cut to
        ``limit`` characters ("…" when cut, never inside a mask). A cut before the redaction
        would leave a prefix of a secret that matches it no longer; only the first ``SCAN``
        characters are read, which bounds the work and cannot matter: a piece of a secret cut
        there is masked like any other, and the quote ends long before."""
        shown = self.redact(text[:SCAN])
        if len(shown) <= limit and len(text) <= SCAN:
            return shown
        end = min(limit, len(shown))
        while 0 < end < len(shown) and shown[end - 1] == shown[end] == "*":
            end += 1
        return shown[:end] + "…"


def _forms(secret: str) -> set[str]:
    """``secret`` as a server may echo it: as is, and escaped once or twice (see :class:`Redactor`)."""
    forms = {secret}
    for _ in range(2):
        forms |= {escaped for form in forms for escaped in _escaped(form)}
    return forms


def _escaped(text: str) -> set[str]:
    url = quote(text, safe="")
    json_text = json.dumps(text)[1:-1]
    return {url, re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), url), quote(text), json_text,
            json_text.replace("/", "\\/"), repr(text)[1:-1]}


class HttpClient:
    """A connection to one platform; thread-safe (httpx.Client is), so apply can run prompts in
    parallel on one client."""

    def __init__(self, settings: HttpSettings):
        self.settings = settings
        secrets = [s for s in settings.secrets if s]
        if settings.auth:
            user, password = settings.auth
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            secrets += [token, password]
        self._redactor = Redactor(secrets)
        # One event ends every wait and stops every new request (interrupt()); the count of requests
        # on the wire is kept under the same lock, so each request is either counted or not sent.
        self._interrupted = threading.Event()
        self._flight_lock = threading.Lock()
        self._in_flight = 0
        self._pacers = {kind: _Pacer(f"{self._who()}: pacing {kind} requests to {rate}", _per_second(rate),
                                     settings.clock, self._pause)
                        for kind, rate in settings.rate_limits.items()}
        self._client = httpx.Client(
            base_url=settings.base_url.rstrip("/"),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **settings.headers},
            auth=settings.auth,
            timeout=settings.timeout,
            transport=settings.transport,
            follow_redirects=False,  # a redirect would resend credentials to another place
        )

    def close(self) -> None:
        self.interrupt()  # a thread still waiting to retry on this client gives up instead
        self._client.close()

    def interrupt(self) -> int:
        """Stop: every wait of this client (retry backoff, 429 waits, pacing) ends at once with
        :class:`Interrupted`, and no request is sent from now on; requests already sent finish.
        Returns how many requests were on the wire at this moment (those that finish). For good:
        a client is interrupted when the command using it ends."""
        with self._flight_lock:
            self._interrupted.set()
            return self._in_flight

    # ------------------------------------------------------------------ requests

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json_body: Any = None, idempotent: bool | None = None, what: str = "",
                pace: str | None = None) -> Any:
        """Send a request, retrying as the module docstring says; the decoded JSON body of a 2xx
        answer (None when empty). ``what`` names the operation in error messages. ``pace`` is the
        endpoint class whose ``rate_limits`` entry paces this request (a platform's per-endpoint
        limit, e.g. "deploy"); without one, or when that class has no limit, "read" or "write"."""
        method = method.upper()
        safe = method in IDEMPOTENT if idempotent is None else idempotent
        what = what or f"{method} {path}"
        attempt = 0  # retries after connection failures and server errors
        limited, limited_for = 0, 0.0  # 429s answered, and the seconds waited on them
        pacer = self._pacers.get(pace or "") or self._pacers.get("read" if method in ("GET", "HEAD") else "write")
        while True:
            if pacer is not None:
                pacer.wait(what)
            try:
                response = self._send(method, path, params, json_body, what)
            except httpx.ConnectError as exc:  # nothing was sent
                if attempt < self.settings.max_retries:
                    self._wait(attempt, None, f"cannot connect for {what}")
                    attempt += 1
                    continue
                raise ProviderError(self.redact(f"{self._who()}: cannot connect to {self.settings.base_url} "
                                                f"({_reason(exc)}); check base_url and the network")) from None
            except httpx.TransportError as exc:  # sent, but the answer was lost: it may have landed
                if safe and attempt < self.settings.max_retries:
                    self._wait(attempt, None, f"{what} failed ({_reason(exc)})")
                    attempt += 1
                    continue
                # a write whose last answer was lost may have landed, retried (idempotent) or not;
                # one that timed out may still be under way on the platform (pending)
                write = method not in ("GET", "HEAD", "OPTIONS")
                raise ProviderError(self.redact(f"{self._who()}: {what} failed: {_reason(exc)}"
                                                + (MAYBE if write else "")), ambiguous=write,
                                    pending=write and isinstance(exc, httpx.TimeoutException)) from None
            status = response.status_code
            if status < 300:
                return _decode(response)
            if status == 429 and limited_for < self.settings.rate_limit_budget:
                # its own count: 429s must not use up the retries a later server error is owed
                limited_for += self._wait(min(limited, 6), _retry_after(response), f"rate limited (429) for {what}")
                limited += 1
                continue
            if status in RETRY_STATUSES and safe and attempt < self.settings.max_retries:
                self._wait(attempt, _retry_after(response), f"{what} failed with {status}")
                attempt += 1
                continue
            # a write answered 5xx may have landed (retried when idempotent, or not): so says the error
            error = self._error(response, what, ambiguous=status >= 500 and method not in ("GET", "HEAD", "OPTIONS"),
                                waited=limited_for)
            error.retry_after = _retry_after(response)
            raise error

    def retry(self, attempt: int, error: ProviderError) -> bool:
        """For a caller that retries a non-idempotent request itself once it has made sure the
        last attempt did not land (apply's create: :func:`promptops.apply._create`): True, after
        the backoff (or the answer's ``Retry-After``), while attempt ``attempt`` (0 for the first
        retry) is within ``max_retries``, the budget every other request has; False once spent."""
        if attempt >= self.settings.max_retries:
            return False
        self._wait(attempt, getattr(error, "retry_after", None), f"{error}: sending it again")
        return True

    @contextlib.contextmanager
    def accepted(self, what: str) -> Iterator[None]:
        """Read the 2xx answer of a write inside this block: a failure to read it (a truncated or
        malformed body, a missing field: any ProviderError, or the errors :meth:`parsing` turns
        into one) is ``ProviderError(ambiguous=True)``, since the platform accepted the write and
        only what it made is unknown; never "not applied"."""
        try:
            yield
        except ProviderError as exc:
            if exc.ambiguous:
                raise
            raise ProviderError(f"{exc}; {self.settings.platform} accepted {what} (a 2xx answer), so it took "
                                "effect: run plan again to see", ambiguous=True) from None
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderError(self.redact(f"{self._who()}: {self.settings.platform} accepted {what} (a 2xx answer) "
                                            f"but its answer could not be read ({type(exc).__name__}: {exc}), so it "
                                            "took effect: run plan again to see"), ambiguous=True) from None

    def get(self, path: str, *, params: Mapping[str, Any] | None = None, what: str = "", pace: str | None = None
            ) -> Any:
        return self.request("GET", path, params=params, what=what, pace=pace)

    def expect(self, body: Any, key: str, kind: type) -> Any:
        """``body[key]`` when the answer is an object holding a ``kind`` there; else ProviderError
        quoting the start of the answer (a proxy's HTML page, an API change), redacted."""
        if not isinstance(body, dict) or not isinstance(body.get(key), kind):
            raise ProviderError(self.redact(f"{self._who()}: unexpected answer from {self.settings.platform}: no "
                                            f"{key!r} in {self.excerpt(str(body))}"))
        return body[key]

    @contextlib.contextmanager
    def parsing(self, what: str, body: Any) -> Iterator[None]:
        """Turn a malformed answer met while reading ``body`` (a missing field, a wrong type) into
        a ProviderError naming ``what``, instead of a crash."""
        try:
            yield
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderError(self.redact(f"{self._who()}: unexpected answer from {self.settings.platform} for "
                                            f"{what} ({type(exc).__name__}: {self.excerpt(str(exc))}): "
                                            f"{self.excerpt(str(body))}")) from None

    def redact(self, text: str) -> str:
        """``text`` with every credential, and every piece of one, replaced by ``***`` (:class:`Redactor`)."""
        return self._redactor.redact(text)

    def excerpt(self, text: str, limit: int = QUOTE) -> str:
        """The start of a server's ``text`` for a message: redacted, then cut (:meth:`Redactor.excerpt`)."""
        return self._redactor.excerpt(text, limit)

    # ------------------------------------------------------------------ internals

    def _who(self) -> str:
        return f"target {self.settings.target!r}"

    def _send(self, method: str, path: str, params: Mapping[str, Any] | None, json_body: Any, what: str
              ) -> httpx.Response:
        """One attempt, counted as in flight while it is on the wire; Interrupted, unsent, once
        :meth:`interrupt` was called."""
        with self._flight_lock:
            if self._interrupted.is_set():
                raise Interrupted(self.redact(f"{self._who()}: {what} not sent: interrupted"))
            self._in_flight += 1
        try:
            return self._client.request(method, path, params=_clean(params), json=json_body)
        finally:
            with self._flight_lock:
                self._in_flight -= 1

    def _pause(self, seconds: float, reason: str) -> None:
        """Wait ``seconds`` before ``reason``'s request is sent (again); Interrupted at once when
        :meth:`interrupt` is called before or during the wait."""
        if self.settings.sleep is None:
            cut_short = self._interrupted.wait(seconds)
        else:
            self.settings.sleep(seconds)
            cut_short = self._interrupted.is_set()
        if cut_short:
            raise Interrupted(self.redact(f"{self._who()}: {reason}; stopped waiting: interrupted"))

    def _wait(self, attempt: int, retry_after: float | None, reason: str) -> float:
        """Sleep before a retry (announced when it is a second or more); the seconds slept."""
        if retry_after is None:
            # exponential backoff with full jitter: 0.5, 1, 2, 4 s ceilings
            retry_after = random.uniform(0, 0.5 * 2 ** attempt)
        seconds = min(max(retry_after, 0.0), self.settings.max_wait)
        if seconds >= 1:
            log.warning(self.redact(f"{self._who()}: {reason}; retrying in {seconds:.0f}s"))
        self._pause(seconds, reason)
        # a zero wait still counts a little, so a server answering "Retry-After: 0" forever ends
        return max(seconds, 1.0)

    def _error(self, response: httpx.Response, what: str, *, ambiguous: bool, waited: float = 0.0) -> RemoteError:
        status = response.status_code
        detail = self.excerpt(*_detail(response))
        who = self._who()
        if status == 401:
            message = f"{who}: authentication failed (401){_colon(detail)}; check {self.settings.auth_hint or 'the credentials'}"
        elif status == 403:
            message = f"{who}: access denied (403) for {what}{_colon(detail)}; check the key's permissions"
            if self.settings.auth_hint:
                message += f" ({self.settings.auth_hint})"
        elif status == 429:
            message = (f"{who}: rate limited (429) for {what}, still after waiting {waited:.0f}s; try again later, "
                       "or pace requests with the target's rate_limits")
        else:
            message = f"{who}: {what} failed with {status} {response.reason_phrase}{_colon(detail)}"
            if ambiguous:
                message += MAYBE
        cls = NotFound if status == 404 else RemoteError
        return cls(self.redact(message), status=status, detail=detail, ambiguous=ambiguous)


class _Pacer:
    """Client-side pacing (the target's ``rate_limits``): requests of one class start at least
    ``1/rate`` seconds apart, across threads, so apply stays under a platform's published limit
    instead of collecting 429s. A wait of a second or more is announced, like a retry's; it is the
    client's own (``pause``), so :meth:`HttpClient.interrupt` ends it."""

    def __init__(self, label: str, rate: float, clock: Callable[[], float], pause: Callable[[float, str], None]):
        self.label = label
        self.interval = 1.0 / rate
        self.clock, self.pause = clock, pause
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, what: str) -> None:
        """Wait for the turn of the request ``what``."""
        with self._lock:
            now = self.clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            if start - now >= 1:
                log.warning(f"{self.label}; waiting {start - now:.0f}s")
            self.pause(start - now, f"{what} waiting for its turn (pacing)")


_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def _per_second(rate: str) -> float:
    """``"20/min"`` -> 0.333... requests per second (the config schema checks the form)."""
    count, unit = rate.split("/")
    return int(count) / _UNITS[unit]


def segment(value: str) -> str:
    """``value`` as one URL path segment: '/' in a prompt name is sent as %2F (as the SDKs do)."""
    return quote(value, safe="")


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    return {k: v for k, v in params.items() if v is not None}


def _decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or HTTP date), else from an error body's
    ``retryAfterSeconds`` (Langfuse, PromptLab), else None."""
    header = response.headers.get("Retry-After")
    if header:
        header = header.strip()
        if header.replace(".", "", 1).isdigit():
            return float(header)
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - time.time())
    try:
        body = response.json()
    except ValueError:
        return None
    details = body.get("details") if isinstance(body, dict) else None
    for source in (details, body):
        if isinstance(source, dict) and isinstance(source.get("retryAfterSeconds"), (int, float)):
            return float(source["retryAfterSeconds"])
    return None


def _detail(response: httpx.Response) -> tuple[str, int]:
    """The server's own words from an error body of any of the platforms' shapes: ``message``,
    ``error`` (a string, or ``{code, message}``), ``detail`` (a string, or FastAPI's list of
    validation issues), GitHub's ``errors`` list; or the text. With how many characters of them
    a message quotes (``DETAIL``, or ``QUOTE`` of a page or of JSON in no known shape). Not cut:
    :meth:`HttpClient.excerpt` redacts them first."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text[:SCAN].split()), QUOTE
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error.get("code") or json.dumps(error)), DETAIL
        parts = [str(body[k]) for k in ("message", "detail") if isinstance(body.get(k), (str, int))]
        if isinstance(body.get("detail"), list):  # FastAPI validation: [{loc, msg, type}]
            parts.append("; ".join(_issue(e) for e in body["detail"]))
        if isinstance(error, str) and error not in parts and (not parts or " " in error):
            parts.append(error)  # a sentence; a bare class name or code ("UnauthorizedError") adds nothing
        elif isinstance(error, list) and error:  # validation issues (zod): each has a message
            parts.append("; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in error))
        errors = body.get("errors")
        if isinstance(errors, list) and errors:  # GitHub's 422: [{resource, field, code, message?}]
            parts.append("; ".join((e.get("message") or f"{e.get('field')} {e.get('code')}") if isinstance(e, dict)
                                   else str(e) for e in errors))
        if parts:
            return ": ".join(parts), DETAIL
    return json.dumps(body), QUOTE


def _issue(entry: Any) -> str:
    """One FastAPI validation issue: ``body.prompt_version.commit_message: too long``."""
    if not isinstance(entry, dict):
        return str(entry)
    where = ".".join(str(p) for p in entry.get("loc") or ())
    return f"{where}: {entry.get('msg', '')}" if where else str(entry.get("msg", entry))


def _colon(detail: str) -> str:
    return f": {detail}" if detail else ""


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]
