"""promptops.http: a credential never reaches a message, whole or in part, wherever the server
echoes it (an error body, an unreadable 2xx answer, an exception quoting the answer) and wherever
the message cuts the server's words; through the real CLI against a real server on 127.0.0.1."""
from __future__ import annotations

import base64
import json
import logging
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest

from promptops.errors import Interrupted, ProviderError
from promptops.http import HttpClient, HttpSettings, Redactor
from tests.conftest import write
from tests.emulators.echo import FORMS, EchoServer, encoded

PR_KEY = "pr_live_Jfx6qtHSivvp3oXprrRqR7"  # 30 characters, as PromptRails keys are
LF_PUBLIC = "pk-lf-7c1e93ab"
LF_SECRET = "sk-lf-4d~08?3a2f1e"  # its Basic token holds '+' and '/', which URL and JSON forms escape
LF_TOKEN = base64.b64encode(f"{LF_PUBLIC}:{LF_SECRET}".encode()).decode()  # 44 characters
OFFSETS = range(150, 261)  # every offset around the 200-character cut of a quoted answer

PROVIDERS = {
    "promptrails": ('{api_key: "${ECHO_KEY}"}', {"ECHO_KEY": PR_KEY}, [PR_KEY], PR_KEY),
    "langfuse": ('{public_key: "${ECHO_PUBLIC}", secret_key: "${ECHO_SECRET}"}',
                 {"ECHO_PUBLIC": LF_PUBLIC, "ECHO_SECRET": LF_SECRET}, [LF_SECRET, LF_TOKEN], LF_TOKEN),
}
# (status, shape): error bodies the error parser reads, and 2xx answers a provider cannot read
ANSWERS = [(400, "text"), (400, "json"), (403, "string"), (200, "text"), (200, "object"), (200, "list")]


def fragments(secret: str, size: int = 8) -> set[str]:
    """Every ``size``-character piece of ``secret`` in every form a server may write it, and its
    first 4 characters (all that a quote cut just after them leaves)."""
    found: set[str] = set()
    for form in FORMS:
        text = encoded(secret, form)
        found |= {text[i:i + size] for i in range(len(text) - size + 1)} | {text[:4]}
    return found


def leaked(text: str, secrets: list[str]) -> list[str]:
    return sorted({piece for secret in secrets for piece in fragments(secret) if piece in text})


def project(tmp_path: Path, provider: str, url: str, credentials: str) -> Path:
    root = tmp_path / "project"
    write(root, "promptops.yaml", f"default_target: t\ntargets:\n  t:\n    provider: {provider}\n"
                                  f"    base_url: {url}\n    credentials: {credentials}\n")
    write(root, "prompts/reply.yaml", "template_format: jinja2\ntemplate: 'Hello {{ name }}'\nlabels: [production]\n")
    return root


@pytest.fixture
def one_ssl_context(monkeypatch):
    """Every client shares one TLS context: the echo server is plain HTTP, and loading the CA store
    for each of the ~2,700 runs below would take most of their time."""
    context = ssl.create_default_context()
    monkeypatch.setattr(httpx._transports.default, "create_ssl_context", lambda **_: context)


@pytest.mark.parametrize("status, shape", ANSWERS)
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_an_echoed_credential_never_reaches_the_output_at_any_offset(cli, tmp_path, monkeypatch, caplog,
                                                                     one_ssl_context, provider, status, shape):
    credentials, env, secrets, sent = PROVIDERS[provider]
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    caplog.set_level(logging.DEBUG)
    with EchoServer() as echo:
        root = project(tmp_path, provider, echo.url, credentials)
        echo.status, echo.shape = status, shape
        leaks = []
        # the forms in which the credential reads differently (a PromptRails key has nothing to escape)
        forms = {encoded(sent, form): form for form in reversed(FORMS)}.values()
        for form in forms:
            for offset in OFFSETS:
                echo.form, echo.offset = form, offset
                caplog.clear()
                r = cli("-C", root, "plan", "--no-color", "--out", "plan.json")
                assert r.code == 1 and ("unexpected answer" in r.err or f"{status}" in r.err), r.err
                saved = root / "plan.json"
                text = r.out + r.err + caplog.text + (saved.read_text() if saved.exists() else "")
                if leaked(text, secrets):
                    leaks.append((form, offset, leaked(text, secrets), r.err))
        assert echo.seen and set(echo.seen) == {sent}  # the server did echo the credential
    assert not leaks, leaks[:3]


def test_redaction_masks_every_piece_of_a_secret_and_of_its_basic_token():
    redactor = Redactor([LF_SECRET, LF_TOKEN])
    for secret in (LF_SECRET, LF_TOKEN):
        for form in FORMS:
            text = encoded(secret, form)
            for start in range(len(text) - 8 + 1):
                for end in range(start + 8, len(text) + 1):
                    shown = redactor.redact(f"before {text[start:end]} after")
                    assert shown == "before *** after", (form, start, end, shown)


def test_redaction_leaves_other_words_alone():
    redactor = Redactor([PR_KEY])
    text = "validation failed: prompt 'reply' has no version 'v1' (see https://example.com/docs)"
    assert redactor.redact(text) == text
    assert redactor.redact(f"{text} key={PR_KEY}") == f"{text} key=***"


def test_an_excerpt_is_redacted_before_it_is_cut():
    redactor = Redactor([PR_KEY])
    for offset in range(150, 230):
        shown = redactor.excerpt("x" * offset + PR_KEY + " and more", 200)
        assert not leaked(shown, [PR_KEY]) and PR_KEY[:3] not in shown, (offset, shown)
        assert len(shown) <= 201 + len("**")


def test_the_client_redacts_the_basic_token_of_its_auth():
    client = HttpClient(HttpSettings(base_url="http://127.0.0.1:9", target="t", auth=(LF_PUBLIC, LF_SECRET)))
    try:
        assert client.redact(f"got Authorization: Basic {LF_TOKEN[:30]}") == "got Authorization: Basic ***"
        assert client.redact(json.dumps({"auth": LF_TOKEN})) == '{"auth": "***"}'
    finally:
        client.close()


def test_an_idempotent_write_whose_answer_was_lost_on_every_attempt_may_have_taken_effect():
    sent: list[str] = []

    def lost(request: httpx.Request) -> httpx.Response:  # handled by the server, the answer never arrives
        sent.append(request.method)
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    client = HttpClient(HttpSettings("http://platform.test", "t", transport=httpx.MockTransport(lost),
                                     sleep=lambda _s: None))
    with pytest.raises(ProviderError) as info:
        client.request("PATCH", "/prompts/p/versions/2", json_body={"newLabels": ["production"]}, idempotent=True)
    assert sent == ["PATCH"] * 5  # the first attempt and max_retries
    assert info.value.ambiguous


# --------------------------------------------------------------------------- interrupt (Ctrl-C)


def _in_thread(fn):
    """Run ``fn`` on a thread; ``(thread, outcome)``: outcome gets ``("ok", value)`` or ``("error", exc)``
    and the seconds it took."""
    outcome: dict = {}

    def run():
        start = time.monotonic()
        try:
            outcome["result"] = ("ok", fn())
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            outcome["result"] = ("error", exc)
        outcome["seconds"] = time.monotonic() - start

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _client(handler, **settings) -> HttpClient:
    return HttpClient(HttpSettings(base_url="http://platform.test", target="t", transport=httpx.MockTransport(handler),
                                   **settings))


@pytest.mark.parametrize("answer", [
    httpx.Response(429, headers={"Retry-After": "30"}),  # waited out for every method
    httpx.Response(503, headers={"Retry-After": "30"}),  # the backoff of an idempotent request
])
def test_interrupt_ends_the_wait_of_a_request_at_once_and_sends_it_no_more(answer):
    sent, answered = [], threading.Event()

    def handler(request):
        sent.append(request.method)
        answered.set()
        return answer

    client = _client(handler)
    thread, outcome = _in_thread(lambda: client.request("PUT", "/labels/production", what="move label production"))
    assert answered.wait(5)
    assert client.interrupt() == 0  # waiting, not on the wire
    thread.join(5)
    kind, error = outcome["result"]
    assert kind == "error" and isinstance(error, Interrupted) and not error.ambiguous, outcome
    assert "move label production" in str(error) and "stopped waiting: interrupted" in str(error)
    assert outcome["seconds"] < 5  # measured well under a second; the Retry-After was 30 s
    assert sent == ["PUT"]
    client.close()


def test_interrupt_ends_a_pacing_wait_and_no_request_is_sent_after_it():
    sent, times, pacing = [], [], threading.Event()

    def clock() -> float:  # the pacer reads it right before it waits
        times.append(time.monotonic())
        if len(times) == 2:
            pacing.set()
        return times[-1]

    client = _client(lambda request: sent.append(request.url.path) or httpx.Response(200, json={}),
                     rate_limits={"write": "1/min"}, clock=clock)
    client.request("POST", "/first")  # the next write may start in 60 s
    thread, outcome = _in_thread(lambda: client.request("POST", "/second", what="create"))
    assert pacing.wait(5)
    client.interrupt()
    thread.join(5)
    kind, error = outcome["result"]
    assert kind == "error" and isinstance(error, Interrupted), outcome
    assert "create waiting for its turn (pacing); stopped waiting: interrupted" in str(error)
    assert outcome["seconds"] < 5
    with pytest.raises(Interrupted, match="not sent: interrupted"):
        client.request("GET", "/third")
    assert sent == ["/first"]
    client.close()


def test_interrupt_counts_the_requests_on_the_wire_and_lets_them_finish():
    arrived, release = threading.Semaphore(0), threading.Event()

    def handler(request):
        arrived.release()
        release.wait(5)
        return httpx.Response(200, json={"id": request.url.path})

    client = _client(handler)
    calls = [_in_thread(lambda p=p: client.request("POST", p)) for p in ("/a", "/b")]
    assert arrived.acquire(timeout=5) and arrived.acquire(timeout=5)
    assert client.interrupt() == 2
    release.set()
    for thread, outcome in calls:
        thread.join(5)
    assert [outcome["result"] for _, outcome in calls] == [("ok", {"id": "/a"}), ("ok", {"id": "/b"})]
    client.close()
