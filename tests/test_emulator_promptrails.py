"""The PromptRails emulator against ../shared/providers-api.md section 3, run as a real HTTP server and
driven by the official ``promptrails`` SDK (0.9.2) as an independent client, plus plain httpx for
what the SDK never sends (POST promote, X-Workspace-ID, Bearer, the envelope and error variants).

The SDK's retry loop (sdk-contracts.md 3.5) retries 5xx *and every unmapped 4xx* (405, 409, 422)
three times, sleeping 1, 2, 4 s, and never retries 429. Its ``time`` module is replaced here by a
recorder, so the tests do not wait and can assert the sleeps and the requests the emulator logged.
Rate limits and timestamps use injected clocks."""
from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import httpx
import promptrails._http
import pytest
from conftest import env_factory
from emulators.base import HttpError
from emulators.promptrails import (
    CHOICES,
    DEFAULT_WORKSPACE,
    PromptRailsEmulator,
    ksuid_time,
)
from promptrails import PromptRails
from promptrails.exceptions import (
    ForbiddenError,
    NotFoundError,
    RateLimitError,
    ServerError,
    UnauthorizedError,
    ValidationError,
)

REPO = Path(__file__).resolve().parent.parent
KEY = "pr_live_test"
PROMPTS = "/api/v1/prompts"
KSUID = re.compile(r"^[0-9A-Za-z]{27}$")
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,5}[1-9])?Z$")  # Go's RFC3339Nano, to the µs
PROMPT_FIELDS = {"id", "workspace_id", "name", "description", "status", "created_at", "updated_at",
                 "current_version", "current_version_id"}
VERSION_FIELDS = {"id", "prompt_id", "version", "system_prompt", "user_prompt", "llm_model_id",
                  "fallback_llm_model_id", "temperature", "max_tokens", "top_p", "input_schema", "output_schema",
                  "is_current", "is_active", "config", "message", "cache_timeout", "created_at"}
WALL_START = 1746713400.0  # 2025-05-08T14:10:00Z


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Env:
    """One emulator served on 127.0.0.1, the official SDK and a raw httpx client pointed at it."""

    def __init__(self, **options):
        self.clock, self.wall = FakeClock(), FakeClock(WALL_START)
        options.setdefault("seed", 7)
        self.emu = PromptRailsEmulator(clock=self.clock, wall_clock=self.wall, **options)
        self.server = self.emu.serve()
        self.url = self.server.url
        self.sdk = PromptRails(api_key=options.get("api_key", KEY), base_url=self.url, timeout=5)
        self.http = httpx.Client(base_url=self.url, headers={"X-API-Key": options.get("api_key", KEY)}, timeout=5)

    def sdk_for(self, key: str) -> PromptRails:
        return PromptRails(api_key=key, base_url=self.url, timeout=5)

    def close(self) -> None:
        self.sdk.close()
        self.http.close()
        # Server.close() waits for the serving loop's poll; nothing needs the port back synchronously
        threading.Thread(target=self.server.close, daemon=True).start()


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The SDK's retry sleeps, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(promptrails._http, "time", SimpleNamespace(sleep=slept.append))
    return slept


@pytest.fixture
def make_env(sleeps):
    yield from env_factory(Env)


@pytest.fixture
def env(make_env) -> Env:
    return make_env()


def body_of(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    return r.json()


def flat_error(r: httpx.Response, status: int, code: str) -> str:
    """Assert the default (flat) error shape; return the message."""
    body = body_of(r, status)
    assert set(body) == {"data", "error", "message", "code"}
    assert body["data"] is None and body["code"] == code
    assert isinstance(body["error"], str) and body["error"] and body["message"] == body["error"]
    return body["error"]


def new_prompt(env: Env, name: str = "support-reply", description: str = "") -> str:
    return body_of(env.http.post(PROMPTS, json={"name": name, "description": description}), 201)["data"]["id"]


def new_version(env: Env, pid: str, version: str | None, user: str = "Hi {{ name }}", **extra) -> dict:
    body = {"user_prompt": user, **extra}
    if version is not None:
        body["version"] = version
    return body_of(env.http.post(f"{PROMPTS}/{pid}/versions", json=body), 201)["data"]


# ------------------------------------------------------------------------------------ the official SDK


def test_sdk_prompt_crud_round_trip(env):
    created = env.sdk.prompts.create(name="support-reply", description="the support bot")
    assert KSUID.match(created.id) and created.workspace_id == DEFAULT_WORKSPACE
    assert (created.name, created.description, created.current_version) == ("support-reply", "the support bot", None)
    assert created.created_at == created.updated_at == "2025-05-08T14:10:00Z"

    got = env.sdk.prompts.get(created.id)
    assert (got.id, got.name, got.description) == (created.id, "support-reply", "the support bot")

    env.wall.advance(90)
    updated = env.sdk.prompts.update(created.id, description="tone: friendly", name="support-reply-v2")
    assert (updated.name, updated.description) == ("support-reply-v2", "tone: friendly")
    assert updated.updated_at == "2025-05-08T14:11:30Z" and updated.created_at == created.created_at
    assert env.emu.prompt("support-reply-v2")["status"] == "active" and env.emu.prompt_id("support-reply") is None

    page = env.sdk.prompts.list()
    assert [p.id for p in page.data] == [created.id]
    assert (page.meta.total, page.meta.page, page.meta.limit, page.meta.pages) == (1, 1, 20, 1)

    assert env.sdk.prompts.delete(created.id) is None  # a 204 with an empty body: the SDK does not parse it
    assert env.emu.names() == []
    with pytest.raises(NotFoundError) as exc:
        env.sdk.prompts.get(created.id)
    assert exc.value.status_code == 404 and exc.value.message == "prompt not found"
    assert env.emu.calls("DELETE") == 1 and env.emu.calls("GET", created.id) == 2  # 404 is not retried


def test_sdk_versions_set_current_and_promote_with_put(env):
    pid = env.sdk.prompts.create(name="support-reply").id
    draft = env.sdk.prompts.create_version(pid, version="1.0.0", system_prompt="You are {{ persona }}",
                                           user_prompt="Customer: {{ message }}", set_current=False,
                                           input_schema={"type": "object"}, config={"temperature": 0.1},
                                           message="first")
    assert (draft.version, draft.is_current, draft.prompt_id) == ("1.0.0", False, pid)
    assert (draft.system_prompt, draft.user_prompt) == ("You are {{ persona }}", "Customer: {{ message }}")
    assert (draft.input_schema, draft.config, draft.message) == ({"type": "object"}, {"temperature": 0.1}, "first")
    assert env.sdk.prompts.get(pid).current_version is None  # nothing is current before a promotion

    live = env.sdk.prompts.create_version(pid, version="1.1.0", user_prompt="Customer says: {{ message }}",
                                          set_current=True)
    assert live.is_current is True and live.message == "" and live.config == {} and live.system_prompt == ""
    current = env.sdk.prompts.get(pid).current_version
    assert current is not None and (current.id, current.version, current.is_current) == (live.id, "1.1.0", True)

    listed = env.sdk.prompts.list_versions(pid)
    assert [(v.version, v.is_current) for v in listed] == [("1.1.0", True), ("1.0.0", False)]  # newest first

    promoted = env.sdk.prompts.promote_version(pid, draft.id)  # the SDK's PUT; a raw dict comes back
    assert promoted["id"] == draft.id and promoted["is_current"] is True and promoted["is_active"] is True
    assert env.emu.calls("PUT", rf"/versions/{draft.id}/promote$") == 1 and env.emu.calls("POST", "promote") == 0
    assert [(v.version, v.is_current) for v in env.sdk.prompts.list_versions(pid)] == [("1.1.0", False),
                                                                                      ("1.0.0", True)]
    assert env.sdk.prompts.get(pid).current_version.id == draft.id
    assert env.emu.current("support-reply")["version"] == "1.0.0"


def test_sdk_preview_renders_jinja_with_the_current_or_a_given_version(env):
    old = env.emu.seed("greeter", "Hello {{ name }}", "Be {{ tone | default('kind') }}.", version="1", current=False)
    env.emu.seed("greeter", "{% for i in items %}{{ i | upper }}{% if not loop.last %}, {% endif %}{% endfor %}\n",
                 version="2", current=True)
    pid = env.emu.prompt_id("greeter")
    preview = env.sdk.prompts.preview(pid, input={"items": ["a", "b", "c"]})
    assert preview == {"prompt_id": pid, "version_id": env.emu.current("greeter")["id"], "version": "2",
                       "system_prompt": "", "user_prompt": "A, B, C\n", "input": {"items": ["a", "b", "c"]}}
    by_id = env.sdk.prompts.preview(pid, input={"name": "Ada"}, version_id=old["id"])
    assert (by_id["user_prompt"], by_id["system_prompt"], by_id["version"]) == ("Hello Ada", "Be kind.", "1")
    assert env.sdk.prompts.preview(pid, input={}, version_id=old["id"])["user_prompt"] == "Hello "  # undefined: ""


def test_sdk_exceptions_for_400_401_403_404(env):
    with pytest.raises(ValidationError) as exc:
        env.sdk.prompts.create(name="")
    assert exc.value.status_code == 400 and exc.value.message == "name is required" and exc.value.code is None
    assert env.emu.names() == []

    with pytest.raises(UnauthorizedError) as exc:
        env.sdk_for("pr_live_wrong").prompts.list()
    assert exc.value.message == "invalid API key"

    pid = new_prompt(env)
    with pytest.raises(NotFoundError):
        env.sdk.prompts.create_version(pid + "x", version="1", user_prompt="x")
    with pytest.raises(NotFoundError) as exc:
        env.sdk.prompts.promote_version(pid, "2N8Dx8a2a1qUspBKbP02vqA01aA")
    assert exc.value.message == "version not found"

    other_workspace = env.emu.add_key("pr_live_other")
    env.sdk._http._client.headers["X-Workspace-ID"] = other_workspace  # the SDK never sends it by itself
    with pytest.raises(ForbiddenError):
        env.sdk.prompts.get(pid)
    assert len(env.emu.log) == 6  # six calls, none of them retried


def test_sdk_retries_409_three_times_and_then_raises_server_error(make_env, sleeps):
    env = make_env(reject_duplicates=True)
    pid = new_prompt(env)
    env.sdk.prompts.create_version(pid, version="1.0.0", user_prompt="one")
    with pytest.raises(ServerError) as exc:
        env.sdk.prompts.create_version(pid, version="1.0.0", user_prompt="two")
    assert exc.value.status_code == 409 and exc.value.message == "version '1.0.0' already exists for this prompt"
    assert env.emu.calls("POST", r"/versions$") == 5  # 1 success + 4 attempts of the conflicting create
    assert sleeps == [1, 2, 4]
    assert [v["user_prompt"] for v in env.emu.versions("support-reply")] == ["one"]  # nothing overwritten

    with pytest.raises(ServerError) as exc:  # a duplicate name is a 409 too
        env.sdk.prompts.create(name="support-reply")
    assert exc.value.status_code == 409 and env.emu.calls("POST", r"/prompts$") == 5


def test_sdk_retries_422_from_preview_and_5xx_until_it_succeeds(env, sleeps):
    env.emu.seed("p", "{{ x + 1 }}")
    pid = env.emu.prompt_id("p")
    with pytest.raises(ServerError) as exc:
        env.sdk.prompts.preview(pid, input={})
    assert exc.value.status_code == 422 and exc.value.message == "cannot render user_prompt: 'x' is undefined"
    assert env.emu.calls("POST", "preview") == 4 and sleeps == [1, 2, 4]

    sleeps.clear()
    env.emu.faults.fail_next(2, 503, match=r"^GET /api/v1/prompts$")
    assert env.sdk.prompts.list().meta.total == 1
    assert env.emu.calls("GET", r"/prompts$") == 3 and sleeps == [1, 2]

    env.emu.faults.fail_next(4, 500, match=r"^GET ")
    with pytest.raises(ServerError) as exc:
        env.sdk.prompts.get(pid)
    assert exc.value.status_code == 500 and exc.value.message == "injected fault"  # the flat "error" string


def test_sdk_does_not_retry_429(make_env, sleeps):
    env = make_env(rate_limit=3, rate_window=60)
    for _ in range(3):
        env.sdk.prompts.list()
    with pytest.raises(RateLimitError) as exc:
        env.sdk.prompts.list()
    assert exc.value.status_code == 429 and exc.value.message == "rate limit exceeded"
    assert env.emu.calls("GET") == 4 and sleeps == []
    env.clock.advance(60)
    assert env.sdk.prompts.list().meta.total == 0


def test_sdk_reads_nested_errors_with_their_code(make_env):
    env = make_env(errors="nested")
    with pytest.raises(NotFoundError) as exc:
        env.sdk.prompts.get("2N8Dx8a2a1qUspBKbP02vqA01aA")
    assert (exc.value.code, exc.value.message, exc.value.details) == ("not_found", "prompt not found", {})
    with pytest.raises(ValidationError) as exc:
        env.sdk.prompts.create(name="x" * 256)
    assert exc.value.code == "bad_request" and exc.value.details == {"field": "name"}


@pytest.mark.parametrize("envelope, pages_seen", [("union", 3), ("meta", 3), ("v2", 3), ("pagination", 0)])
def test_sdk_paginates_through_meta(make_env, envelope, pages_seen):
    env = make_env(envelope=envelope)
    for i in range(45):
        env.emu.seed_prompt(f"p{i:02d}")
    first = env.sdk.prompts.list(page=1, limit=20)
    assert [p.name for p in first.data] == [f"p{i:02d}" for i in range(44, 24, -1)]  # newest first
    # meta.pages (v2) or meta.total_pages (promptrails-local) both reach the SDK; the docs' "pagination" key
    # alone is never read, so the SDK sees its defaults
    assert first.meta.pages == pages_seen
    assert first.meta.total == (45 if pages_seen else 0)
    names: list[str] = []
    page = 1
    while True:
        chunk = env.sdk.prompts.list(page=page, limit=20)
        names += [p.name for p in chunk.data]
        if len(chunk.data) < 20:
            break
        page += 1
    assert page == 3 and sorted(names) == [f"p{i:02d}" for i in range(45)]


# ------------------------------------------------------------------------------------ shapes and variants


def test_get_prompt_has_current_version_and_current_version_id(env):
    pid = new_prompt(env, description="d")
    data = body_of(env.http.get(f"{PROMPTS}/{pid}"), 200)["data"]
    assert set(data) == PROMPT_FIELDS
    assert (data["current_version"], data["current_version_id"], data["status"]) == (None, None, "active")
    env.wall.advance(5)
    v = new_version(env, pid, "2.0", user="U", system_prompt="S", set_current=True, temperature=0.7, max_tokens=256,
                    llm_model_id="2N8Dx8a2a1qUspBKbP02vqA01aA", output_schema={"type": "object"}, cache_timeout=30)
    assert set(v) == VERSION_FIELDS
    data = body_of(env.http.get(f"{PROMPTS}/{pid}"), 200)["data"]
    assert data["current_version_id"] == v["id"] and data["current_version"] == v
    assert data["updated_at"] == v["created_at"] == "2025-05-08T14:10:05Z"  # a new version touches the prompt
    assert (v["temperature"], v["max_tokens"], v["top_p"], v["cache_timeout"]) == (0.7, 256, None, 30)
    assert (v["llm_model_id"], v["fallback_llm_model_id"], v["output_schema"]) == (
        "2N8Dx8a2a1qUspBKbP02vqA01aA", None, {"type": "object"})
    listed = body_of(env.http.get(PROMPTS), 200)["data"]
    assert listed == [data]


def test_envelope_variants(make_env):
    shapes = {}
    for envelope in ("union", "pagination", "meta", "v2"):
        env = make_env(envelope=envelope)
        pid = new_prompt(env)
        single = body_of(env.http.get(f"{PROMPTS}/{pid}"), 200)
        listing = body_of(env.http.get(PROMPTS, params={"limit": 1}), 200)
        versions = body_of(env.http.get(f"{PROMPTS}/{pid}/versions"), 200)
        assert single["data"]["id"] == pid and listing["data"][0]["id"] == pid and versions["data"] == []
        shapes[envelope] = (single, {k: v for k, v in listing.items() if k != "data"}, versions)
    union = shapes["union"]
    assert union[0]["message"] == "Prompt retrieved successfully" and set(union[0]) == {"data", "message"}
    assert union[1] == {"message": "OK", "pagination": {"page": 1, "limit": 1, "total": 1, "total_pages": 1},
                        "meta": {"page": 1, "limit": 1, "total": 1, "total_pages": 1, "pages": 1}}
    assert union[2] == {"data": [], "message": "OK"}
    assert set(shapes["pagination"][0]) == {"data", "message"}
    assert shapes["pagination"][1] == {"message": "OK",
                                       "pagination": {"page": 1, "limit": 1, "total": 1, "total_pages": 1}}
    assert set(shapes["meta"][0]) == {"data"} and shapes["meta"][2] == {"data": []}
    assert shapes["meta"][1] == {"meta": {"total": 1, "page": 1, "limit": 1, "total_pages": 1}}
    assert set(shapes["v2"][0]) == {"data"}
    assert shapes["v2"][1] == {"meta": {"total": 1, "page": 1, "limit": 1, "pages": 1}}


def test_the_meta_envelope_has_promptrails_locals_objects(make_env):
    env = make_env(envelope="meta")
    pid = new_prompt(env)
    bare = body_of(env.http.get(f"{PROMPTS}/{pid}"), 200)["data"]
    assert set(bare) == PROMPT_FIELDS - {"current_version", "current_version_id"}  # omitempty, no v2 field
    v = new_version(env, pid, "1", set_current=True)
    assert set(v) == VERSION_FIELDS - {"is_active"} and v["is_current"] is True
    data = body_of(env.http.get(f"{PROMPTS}/{pid}"), 200)["data"]
    assert set(data) == PROMPT_FIELDS - {"current_version_id"} and data["current_version"] == v
    assert body_of(env.http.get(PROMPTS), 200)["data"] == [data]
    assert body_of(env.http.get(f"{PROMPTS}/{pid}/versions"), 200) == {"data": [v]}


def test_timestamps_are_go_rfc3339nano_with_the_fraction_trimmed(env):
    pid = new_prompt(env)
    stamps = []
    for step in (0.25, 0.000001, 0.749999, 0.1):
        env.wall.advance(step)
        stamps.append(new_version(env, pid, None)["created_at"])
    assert stamps == ["2025-05-08T14:10:00.25Z", "2025-05-08T14:10:00.250001Z", "2025-05-08T14:10:01Z",
                      "2025-05-08T14:10:01.1Z"]
    assert all(STAMP.match(s) for s in stamps)


def test_error_variants(make_env):
    flat = make_env()
    assert body_of(flat.http.get(f"{PROMPTS}/nope"), 404) == {"data": None, "error": "prompt not found",
                                                            "message": "prompt not found", "code": "not_found"}
    nested = make_env(errors="nested")
    assert body_of(nested.http.get(f"{PROMPTS}/nope"), 404) == {
        "error": {"code": "not_found", "message": "prompt not found", "details": {}}}
    assert body_of(nested.http.post(PROMPTS, json={"name": 3}), 400) == {
        "error": {"code": "bad_request", "message": "name is required", "details": {"field": "name"}}}
    assert body_of(nested.http.get(PROMPTS, headers={"X-API-Key": "bad"}), 401)["error"]["code"] == "unauthorized"
    nested.emu.faults.fail_next(1, 502)
    assert body_of(nested.http.get(PROMPTS), 502) == {
        "error": {"code": "internal_error", "message": "injected fault", "details": {}}}
    with pytest.raises(ValueError):
        PromptRailsEmulator(errors="xml")
    with pytest.raises(ValueError):
        PromptRailsEmulator(envelope="data")


def test_ids_are_ksuids_carrying_the_creation_time(env):
    pid = new_prompt(env)
    env.wall.advance(3600)
    v = new_version(env, pid, "1")
    ids = [pid, v["id"]] + [env.emu.seed_prompt(f"p{i}")["id"] for i in range(50)]
    assert all(KSUID.match(i) for i in ids) and len(set(ids)) == len(ids)
    assert ksuid_time(pid) == int(WALL_START) and ksuid_time(v["id"]) == int(WALL_START) + 3600
    assert STAMP.match(v["created_at"]) and v["created_at"] == "2025-05-08T15:10:00Z"
    assert ksuid_time(DEFAULT_WORKSPACE) > 1_400_000_000  # the default workspace id is a KSUID too


# ------------------------------------------------------------------------------------ versions


def test_promote_accepts_put_and_post_with_an_empty_or_object_body(env):
    pid = new_prompt(env)
    a, b = new_version(env, pid, "a"), new_version(env, pid, "b")
    r = env.http.post(f"{PROMPTS}/{pid}/versions/{a['id']}/promote")  # no body at all
    assert body_of(r, 200)["data"] == {**a, "is_current": True, "is_active": True}
    assert body_of(env.http.put(f"{PROMPTS}/{pid}/versions/{b['id']}/promote", json={}), 200)["data"]["is_current"]
    assert env.emu.current("support-reply")["id"] == b["id"]
    assert body_of(env.http.post(f"{PROMPTS}/{pid}/versions/{b['id']}/promote", json={"x": 1}), 200)["data"]["id"] \
        == b["id"]  # promoting the current one changes nothing
    flat_error(env.http.post(f"{PROMPTS}/{pid}/versions/{a['id']}/promote", json=[1]), 400, "bad_request")
    other = new_prompt(env, "other")
    c = new_version(env, other, "c")
    flat_error(env.http.put(f"{PROMPTS}/{pid}/versions/{c['id']}/promote", json={}), 404, "not_found")
    assert env.emu.current("support-reply")["id"] == b["id"] and env.emu.current("other") is None


@pytest.mark.parametrize("allowed, refused", [("PUT", "POST"), ("POST", "PUT")])
def test_promote_methods_option_answers_the_other_verb_405(make_env, allowed, refused):
    env = make_env(promote_methods=allowed)
    pid = new_prompt(env)
    v = new_version(env, pid, "1")
    r = env.http.request(refused, f"{PROMPTS}/{pid}/versions/{v['id']}/promote", json={})
    flat_error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == allowed and env.emu.current("support-reply") is None
    assert body_of(env.http.request(allowed, f"{PROMPTS}/{pid}/versions/{v['id']}/promote", json={}), 200)
    assert env.emu.current("support-reply")["id"] == v["id"]


def test_a_post_only_server_makes_the_sdk_put_fail_after_its_retries(make_env, sleeps):
    env = make_env(promote_methods="POST")
    pid = new_prompt(env)
    v = new_version(env, pid, "1")
    with pytest.raises(ServerError) as exc:
        env.sdk.prompts.promote_version(pid, v["id"])
    assert exc.value.status_code == 405 and env.emu.calls("PUT", "promote") == 4 and sleeps == [1, 2, 4]
    with pytest.raises(ValueError):
        PromptRailsEmulator(promote_methods="PATCH")


def test_versions_are_immutable_and_version_strings_unique_per_prompt_when_duplicates_are_rejected(make_env):
    env = make_env(reject_duplicates=True)
    pid = new_prompt(env)
    v = new_version(env, pid, "1.0.0", user="original", set_current=True)
    for method in ("PATCH", "PUT", "DELETE", "GET"):
        flat_error(env.http.request(method, f"{PROMPTS}/{pid}/versions/{v['id']}", json={"user_prompt": "changed"}),
                   404, "not_found")
    assert flat_error(env.http.post(f"{PROMPTS}/{pid}/versions", json={"version": "1.0.0", "user_prompt": "new"}),
                      409, "conflict") == "version '1.0.0' already exists for this prompt"
    assert env.emu.versions("support-reply") == [v]
    other = new_prompt(env, "other")
    assert new_version(env, other, "1.0.0")["version"] == "1.0.0"  # unique per prompt, not globally
    # a version with the same content is a new version (no server-side dedupe)
    again = new_version(env, pid, "1.0.1", user="original")
    assert again["id"] != v["id"] and [x["version"] for x in env.emu.versions("support-reply")] == ["1.0.0", "1.0.1"]


def test_a_duplicate_version_string_is_a_second_version_as_in_promptrails_local(env):
    pid = new_prompt(env)
    first = new_version(env, pid, "1.0.0", user="original", set_current=True)
    second = new_version(env, pid, "1.0.0", user="other", set_current=False)
    third = new_version(env, pid, "1.0.0", user="original")  # the same content too: still a new version
    assert len({first["id"], second["id"], third["id"]}) == 3
    listed = body_of(env.http.get(f"{PROMPTS}/{pid}/versions"), 200)["data"]
    assert [(v["id"], v["version"], v["is_current"]) for v in listed] == [
        (third["id"], "1.0.0", False), (second["id"], "1.0.0", False), (first["id"], "1.0.0", True)]
    body_of(env.http.put(f"{PROMPTS}/{pid}/versions/{second['id']}/promote", json={}), 200)
    assert env.emu.current("support-reply")["id"] == second["id"]  # promote goes by id, not by string
    assert body_of(env.http.get(f"{PROMPTS}/{pid}"), 200)["data"]["current_version"]["user_prompt"] == "other"


def test_version_string_is_optional_and_numbered_past_taken_ones(env):
    pid = new_prompt(env)
    assert new_version(env, pid, None)["version"] == "v1"
    new_version(env, pid, "v3")
    assert new_version(env, pid, None)["version"] == "v4"  # v3 (= count + 1) is taken
    assert new_version(env, pid, None)["version"] == "v5"
    assert [v["version"] for v in env.emu.versions("support-reply")] == ["v1", "v3", "v4", "v5"]


@pytest.mark.parametrize("body, field", [
    ({"version": "1"}, "user_prompt"),
    ({"version": "1", "user_prompt": "", "system_prompt": ""}, "user_prompt"),
    ({"version": "", "user_prompt": "u"}, "version"),
    ({"version": "  ", "user_prompt": "u"}, "version"),
    ({"version": 1, "user_prompt": "u"}, "version"),
    ({"version": "x" * 65, "user_prompt": "u"}, "version"),
    ({"user_prompt": 5}, "user_prompt"),
    ({"user_prompt": "u", "system_prompt": ["s"]}, "system_prompt"),
    ({"user_prompt": "u", "set_current": "yes"}, "set_current"),
    ({"user_prompt": "u", "config": []}, "config"),
    ({"user_prompt": "u", "input_schema": "object"}, "input_schema"),
    ({"user_prompt": "u", "input_schema": {"type": "banana"}}, "input_schema"),
    ({"user_prompt": "u", "message": 3}, "message"),
    ({"user_prompt": "u", "temperature": "hot"}, "temperature"),
    ({"user_prompt": "u", "temperature": True}, "temperature"),
    ({"user_prompt": "u", "max_tokens": 0}, "max_tokens"),
    ({"user_prompt": "u", "max_tokens": 1.5}, "max_tokens"),
    ({"user_prompt": "u", "cache_timeout": -1}, "cache_timeout"),
    ({"user_prompt": "u", "output_schema": 1}, "output_schema"),
    ({"user_prompt": "u", "llm_model_id": 7}, "llm_model_id"),
])
def test_create_version_validation_is_400_and_stores_nothing(make_env, body, field):
    env = make_env(errors="nested")
    pid = new_prompt(env)
    r = env.http.post(f"{PROMPTS}/{pid}/versions", json=body)
    assert body_of(r, 400)["error"]["details"] == {"field": field}
    assert env.emu.versions("support-reply") == []


def test_create_version_bad_json_and_unknown_prompt(env):
    pid = new_prompt(env)
    for content in (b"", b"not json", b"[1]", b'"s"'):
        flat_error(env.http.post(f"{PROMPTS}/{pid}/versions", content=content), 400, "bad_request")
    # the prompt is looked up before the body is read
    flat_error(env.http.post(f"{PROMPTS}/missing/versions", content=b"not json"), 404, "not_found")
    assert env.emu.versions("support-reply") == []


def test_exactly_one_current_version_once_any_is_promoted(env):
    pid = new_prompt(env)
    created: list[dict] = []
    steps = [("create", False), ("create", False), ("create", True), ("create", False), ("promote", 0),
             ("create", True), ("promote", 1), ("promote", 1), ("create", False), ("promote", 4)]
    seen_current = False
    for i, (kind, arg) in enumerate(steps):
        if kind == "create":
            created.append(new_version(env, pid, f"{i}", set_current=arg))
            seen_current = seen_current or arg
        else:
            body_of(env.http.put(f"{PROMPTS}/{pid}/versions/{created[arg]['id']}/promote", json={}), 200)
            seen_current = True
        listed = body_of(env.http.get(f"{PROMPTS}/{pid}/versions"), 200)["data"]
        currents = [v["id"] for v in listed if v["is_current"]]
        assert all(v["is_active"] == v["is_current"] for v in listed)
        assert len(currents) == (1 if seen_current else 0), (i, currents)
        prompt = body_of(env.http.get(f"{PROMPTS}/{pid}"), 200)["data"]
        assert prompt["current_version_id"] == (currents[0] if currents else None)
    assert env.emu.current("support-reply")["version"] == "5"  # the last step promoted created[4], made at step 5


def test_versions_list_ignores_page_and_limit_as_in_promptrails_local(env):
    pid = new_prompt(env)
    for i in range(25):
        new_version(env, pid, f"{i}")
    for params in ({}, {"page": 2, "limit": 2}, {"limit": 500}, {"page": "x"}):
        everything = body_of(env.http.get(f"{PROMPTS}/{pid}/versions", params=params), 200)
        assert [v["version"] for v in everything["data"]] == [str(i) for i in reversed(range(25))]
        assert "meta" not in everything and "pagination" not in everything


def test_versions_list_paginates_only_when_asked_with_versions_paged(make_env):
    env = make_env(versions_paged=True)
    pid = new_prompt(env)
    for i in range(5):
        new_version(env, pid, f"{i}")
    everything = body_of(env.http.get(f"{PROMPTS}/{pid}/versions"), 200)
    assert [v["version"] for v in everything["data"]] == ["4", "3", "2", "1", "0"] and "meta" not in everything
    page = body_of(env.http.get(f"{PROMPTS}/{pid}/versions", params={"page": 2, "limit": 2}), 200)
    assert [v["version"] for v in page["data"]] == ["2", "1"]
    assert page["meta"] == {"page": 2, "limit": 2, "total": 5, "total_pages": 3, "pages": 3}
    silent = body_of(env.http.get(f"{PROMPTS}/{pid}/versions", params={"limit": 0}), 200)  # 0 -> 20, no 400
    assert len(silent["data"]) == 5 and silent["meta"]["limit"] == 20


# ------------------------------------------------------------------------------------ prompts


def test_create_prompt_with_content_makes_a_current_v1(env):
    r = env.http.post(PROMPTS, json={"name": "go-v2", "description": "", "system_prompt": "S {{ a }}",
                                     "user_prompt": "U", "config": {"k": 1}})
    data = body_of(r, 201)["data"]
    assert data["current_version"]["version"] == "v1" and data["current_version_id"] == data["current_version"]["id"]
    assert (data["current_version"]["system_prompt"], data["current_version"]["config"]) == ("S {{ a }}", {"k": 1})
    empty = body_of(env.http.post(PROMPTS, json={"name": "empty", "system_prompt": "", "user_prompt": ""}), 201)
    assert empty["data"]["current_version"] is None and env.emu.versions("empty") == []
    flat_error(env.http.post(PROMPTS, json={"name": "bad", "user_prompt": "u", "input_schema": 1}), 400,
               "bad_request")
    assert env.emu.names() == ["go-v2", "empty"]


def test_prompt_names_are_unique_per_workspace_when_duplicates_are_rejected(make_env):
    env = make_env(reject_duplicates=True)
    pid = new_prompt(env, "a")
    new_prompt(env, "b")
    flat_error(env.http.post(PROMPTS, json={"name": "a"}), 409, "conflict")
    flat_error(env.http.patch(f"{PROMPTS}/{pid}", json={"name": "b"}), 409, "conflict")
    assert body_of(env.http.patch(f"{PROMPTS}/{pid}", json={"name": "a"}), 200)["data"]["name"] == "a"  # itself
    env.emu.add_key("pr_live_other", "3MSIfHx532S4iOp5OSTOJd0eCJO")
    r = env.http.post(PROMPTS, json={"name": "a"}, headers={"X-API-Key": "pr_live_other"})
    assert body_of(r, 201)["data"]["workspace_id"] == "3MSIfHx532S4iOp5OSTOJd0eCJO"


def test_a_duplicate_prompt_name_is_a_second_prompt_as_in_promptrails_local(env):
    first = new_prompt(env, "a")
    second = new_prompt(env, "a")
    other = new_prompt(env, "b")
    assert first != second
    assert body_of(env.http.patch(f"{PROMPTS}/{other}", json={"name": "a"}), 200)["data"]["name"] == "a"
    listed = body_of(env.http.get(PROMPTS), 200)
    assert [(p["id"], p["name"]) for p in listed["data"]] == [(other, "a"), (second, "a"), (first, "a")]
    assert listed["meta"]["total"] == 3


def test_update_prompt_fields_and_validation(env):
    pid = new_prompt(env, description="old")
    data = body_of(env.http.patch(f"{PROMPTS}/{pid}", json={"status": "archived", "unknown": 1}), 200)["data"]
    assert (data["status"], data["description"], data["name"]) == ("archived", "old", "support-reply")
    for bad in ({"status": "deleted"}, {"name": ""}, {"name": None}, {"description": 5}):
        flat_error(env.http.patch(f"{PROMPTS}/{pid}", json=bad), 400, "bad_request")
    assert env.emu.prompt("support-reply")["status"] == "archived"
    flat_error(env.http.patch(f"{PROMPTS}/nope", json={}), 404, "not_found")


def test_delete_is_204_empty_and_takes_the_versions(env):
    pid = new_prompt(env)
    v = new_version(env, pid, "1", set_current=True)
    r = env.http.delete(f"{PROMPTS}/{pid}")
    assert r.status_code == 204 and r.content == b""
    flat_error(env.http.delete(f"{PROMPTS}/{pid}"), 404, "not_found")
    flat_error(env.http.get(f"{PROMPTS}/{pid}/versions"), 404, "not_found")
    flat_error(env.http.put(f"{PROMPTS}/{pid}/versions/{v['id']}/promote", json={}), 404, "not_found")
    assert body_of(env.http.post(PROMPTS, json={"name": "support-reply"}), 201)  # the name is free again


def test_list_query_limits_and_search(env):
    for i in range(120):
        env.emu.seed_prompt(f"Support-{i:03d}" if i % 2 else f"sales-{i:03d}")
    full = body_of(env.http.get(PROMPTS, params={"limit": 100}), 200)
    assert len(full["data"]) == 100 and full["meta"]["limit"] == 100 and full["meta"]["total_pages"] == 2
    last = body_of(env.http.get(PROMPTS, params={"page": 2, "limit": 100}), 200)
    assert len(last["data"]) == 20 and last["data"][-1]["name"] == "sales-000"
    assert body_of(env.http.get(PROMPTS, params={"page": 9}), 200)["data"] == []
    found = body_of(env.http.get(PROMPTS, params={"search": "support-11"}), 200)
    assert [p["name"] for p in found["data"]] == ["Support-119", "Support-117", "Support-115", "Support-113",
                                                  "Support-111"]
    assert found["meta"]["total"] == 5
    assert body_of(env.http.get(PROMPTS, params={"search": ""}), 200)["meta"]["total"] == 120
    empty = body_of(env.http.get(PROMPTS, params={"search": "zzz"}), 200)
    assert empty["data"] == [] and empty["meta"] == {"page": 1, "limit": 20, "total": 0, "total_pages": 0,
                                                         "pages": 0}



@pytest.mark.parametrize("limit", ["101", "500", "0", "-3", "1.5", "x", "", " 5", "99999999999999999999999"])
def test_a_limit_promptrails_local_does_not_take_is_silently_20(env, limit):
    for i in range(45):
        env.emu.seed_prompt(f"p{i:02d}")
    body = body_of(env.http.get(PROMPTS, params={"limit": limit}), 200)
    assert [p["name"] for p in body["data"]] == [f"p{i:02d}" for i in range(44, 24, -1)]  # newest first, 20
    assert body["meta"] == {"page": 1, "limit": 20, "total": 45, "total_pages": 3, "pages": 3}
    assert body["pagination"] == {"page": 1, "limit": 20, "total": 45, "total_pages": 3}
    third = body_of(env.http.get(PROMPTS, params={"limit": limit, "page": 3}), 200)
    assert [p["name"] for p in third["data"]] == [f"p{i:02d}" for i in range(4, -1, -1)]


@pytest.mark.parametrize("params, page, limit", [
    ({"page": "0"}, 1, 20), ({"page": "-2"}, 1, 20), ({"page": "x"}, 1, 20), ({"page": "2.0"}, 1, 20),
    ({"page": "+2", "limit": "+3"}, 2, 3), ({"page": "02", "limit": "100"}, 2, 100), ({"limit": "1"}, 1, 1),
    ([("limit", "2"), ("limit", "500")], 1, 2),  # the first of repeated arguments, as Go's url.Values.Get
])
def test_page_and_limit_are_read_as_promptrails_local_reads_them(env, params, page, limit):
    for i in range(5):
        env.emu.seed_prompt(f"p{i}")
    meta = body_of(env.http.get(PROMPTS, params=params), 200)["meta"]
    assert (meta["page"], meta["limit"]) == (page, limit)


def test_quota_is_402(make_env):
    env = make_env(max_prompts=2)
    new_prompt(env, "a")
    new_prompt(env, "b")
    assert "quota" in flat_error(env.http.post(PROMPTS, json={"name": "c"}), 402, "quota_exceeded")
    env.emu.seed_prompt("seeded")  # seeding "outside promptops" is not limited
    assert env.emu.names() == ["a", "b", "seeded"]


# ------------------------------------------------------------------------------------ preview


def test_preview_errors(make_env):
    env = make_env(errors="nested")
    pid = env.emu.seed_prompt("p")["id"]
    r = env.http.post(f"{PROMPTS}/{pid}/preview", json={"input": {}})
    assert body_of(r, 400)["error"]["details"] == {"field": "version_id"}  # nothing is current yet
    bad_syntax = env.emu.seed("p", "{% if %}", version="syntax", current=False)
    schema = env.emu.seed("p", "{{ n }}", version="schema", current=True,
                          input_schema={"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}})
    unsafe = env.emu.seed("p", "{{ ''.__class__.__mro__ }}", version="unsafe", current=False)

    def preview(input, version_id=None):
        body = {"input": input}
        if version_id:
            body["version_id"] = version_id
        return env.http.post(f"{PROMPTS}/{pid}/preview", json=body)

    assert body_of(preview({"n": 3}), 200)["data"]["user_prompt"] == "3"
    err = body_of(preview({"n": "three"}), 422)["error"]
    assert err["code"] == "unprocessable_entity" and err["details"] == {"path": ["n"]}
    assert "input_schema" in err["message"]
    assert body_of(preview({}), 422)["error"]["details"] == {"path": []}
    assert body_of(preview({}, bad_syntax["id"]), 422)["error"]["details"] == {"field": "user_prompt"}
    assert "unsafe" in body_of(preview({}, unsafe["id"]), 422)["error"]["message"]
    assert body_of(preview({}, "2N8Dx8a2a1qUspBKbP02vqA01aA"), 404)["error"]["message"] == "version not found"
    assert body_of(preview([1]), 400)["error"]["details"] == {"field": "input"}
    r = env.http.post(f"{PROMPTS}/{pid}/preview", json={"version_id": schema["id"], "input": None})
    assert body_of(r, 422)["error"]["code"] == "unprocessable_entity"  # no input = {} (n is required)


# ------------------------------------------------------------------------------------ auth and workspaces


@pytest.mark.parametrize("headers, message", [
    ({}, "missing API key"),
    ({"X-API-Key": ""}, "missing API key"),
    ({"X-API-Key": "pr_live_nope"}, "invalid API key"),
    ({"Authorization": "Bearer pr_live_test"}, "invalid API key"),  # a key is not a Bearer token
    ({"Authorization": "Basic cHI6bGl2ZQ=="}, "invalid API key"),
])
def test_auth_failures_are_401(env, headers, message):
    r = httpx.get(env.url + PROMPTS, headers=headers)
    assert flat_error(r, 401, "unauthorized") == message
    r = httpx.get(env.url + "/api/v1/not-a-route", headers=headers)  # auth is checked before routing
    assert r.status_code == 401


def test_header_name_is_case_insensitive_and_unknown_routes_are_404_after_auth(env):
    assert httpx.get(env.url + PROMPTS, headers={"x-api-key": KEY}).status_code == 200
    assert httpx.get(env.url + PROMPTS, headers={"X-API-KEY": KEY}).status_code == 200
    flat_error(env.http.get("/api/v1/agents"), 404, "not_found")
    flat_error(env.http.get(PROMPTS + "/"), 404, "not_found")
    r = env.http.put(PROMPTS, json={})
    flat_error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "GET, POST"


def test_workspace_header_and_isolation(env):
    pid = new_prompt(env)
    assert body_of(env.http.get(f"{PROMPTS}/{pid}", headers={"X-Workspace-ID": DEFAULT_WORKSPACE}), 200)
    other = env.emu.add_key("pr_live_other")
    assert KSUID.match(other) and other != DEFAULT_WORKSPACE
    assert "workspace" in flat_error(env.http.get(PROMPTS, headers={"X-Workspace-ID": other}), 403, "forbidden")
    theirs = {"X-API-Key": "pr_live_other"}
    flat_error(env.http.get(f"{PROMPTS}/{pid}", headers=theirs), 404, "not_found")  # another workspace's prompt
    assert body_of(env.http.get(PROMPTS, headers=theirs), 200)["data"] == []
    flat_error(env.http.delete(f"{PROMPTS}/{pid}", headers=theirs), 404, "not_found")
    assert env.emu.prompt_id("support-reply") == pid


def test_bearer_jwt_needs_a_workspace(make_env):
    env = make_env(jwt="eyJhbGciOiJIUzI1NiJ9.e30.sig")
    pid = new_prompt(env)
    bearer = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"}
    assert flat_error(httpx.get(env.url + PROMPTS, headers=bearer), 400, "bad_request") == \
        "X-Workspace-ID header is required"
    r = httpx.get(f"{env.url}{PROMPTS}/{pid}", headers={**bearer, "X-Workspace-ID": DEFAULT_WORKSPACE})
    assert body_of(r, 200)["data"]["id"] == pid
    flat_error(httpx.get(env.url + PROMPTS, headers={**bearer, "X-Workspace-ID": "3MSIfHx532S4iOp5OSTOJd0eCJO"}),
               403, "forbidden")
    flat_error(httpx.get(env.url + PROMPTS, headers={"Authorization": "Bearer other"}), 401, "unauthorized")


# ------------------------------------------------------------------------------------ rate limits and faults


def test_rate_limit_window_with_and_without_retry_after(make_env):
    env = make_env(rate_limit=2, rate_window=10)
    assert env.http.get(PROMPTS).status_code == 200
    env.clock.advance(4)
    assert env.http.get(PROMPTS).status_code == 200
    r = env.http.get(PROMPTS)
    flat_error(r, 429, "rate_limited")
    assert r.headers["Retry-After"] == "6"  # the first hit leaves the window in 6 s
    for _ in range(3):  # unauthenticated requests are neither limited nor counted
        assert httpx.get(env.url + PROMPTS).status_code == 401
    env.emu.add_key("pr_live_second")
    assert env.http.get(PROMPTS, headers={"X-API-Key": "pr_live_second"}).status_code == 200  # per key
    env.clock.advance(6)
    assert env.http.get(PROMPTS).status_code == 200

    quiet = make_env(rate_limit=1, retry_after=False)
    quiet.http.get(PROMPTS)
    r = quiet.http.get(PROMPTS)
    assert r.status_code == 429 and "Retry-After" not in r.headers
    quiet.emu.reset()
    assert quiet.http.get(PROMPTS).status_code == 200  # reset empties the window too


def test_injected_faults_use_the_platform_shape(env):
    env.emu.faults.rate_limit(1, retry_after=2.5)
    r = env.http.get(PROMPTS)
    flat_error(r, 429, "rate_limited")
    assert r.headers["Retry-After"] == "3"
    env.emu.faults.fail_next(1, 500)
    assert flat_error(env.http.get(PROMPTS), 500, "internal_error") == "injected fault"
    env.emu.faults.drop_next(1, after=True, match="POST")
    with pytest.raises(httpx.RemoteProtocolError):
        env.http.post(PROMPTS, json={"name": "landed"})
    assert env.emu.names() == ["landed"]  # it took effect although the client never heard


def test_an_unexpected_exception_is_a_500_in_the_platform_shape(env):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    env.emu._list_prompts = broken
    assert flat_error(env.http.get(PROMPTS), 500, "internal_error") == "internal server error"
    assert [str(e) for e in env.emu.internal_errors] == ["boom"]
    env.emu.internal_errors.clear()


# ------------------------------------------------------------------------------------ helpers and forms


def test_seed_helpers_and_reset():
    emu = PromptRailsEmulator(seed=1)
    v1 = emu.seed("greeter", "Hi {{ name }}", "S", version="1.0.0", config={"t": 1}, message="m", temperature=0.2)
    v2 = emu.seed("greeter", "Hello", version="1.1.0", current=False)
    assert emu.prompt_id("greeter") == v1["prompt_id"] == v2["prompt_id"]
    assert [v["version"] for v in emu.versions("greeter")] == ["1.0.0", "1.1.0"]  # oldest first
    assert emu.current("greeter")["id"] == v1["id"] and v1["temperature"] == 0.2 and v1["config"] == {"t": 1}
    assert emu.prompt("greeter")["current_version_id"] == v1["id"]
    assert emu.seed("greeter", "dup", version="1.0.0", current=False)["version"] == "1.0.0"  # duplicates are kept
    strict = PromptRailsEmulator(reject_duplicates=True)
    strict.seed("greeter", "one", version="1.0.0")
    with pytest.raises(HttpError) as exc:
        strict.seed("greeter", "dup", version="1.0.0")
    assert exc.value.response.status == 409 and len(strict.versions("greeter")) == 1
    with pytest.raises(HttpError) as exc:
        emu.seed("new-one", "")  # invalid: the prompt is not left behind
    assert exc.value.response.status == 400 and emu.prompt_id("new-one") is None
    assert emu.prompt("absent") is None and emu.prompt_id("absent") is None
    with pytest.raises(KeyError):
        emu.versions("absent")
    emu.reset()
    assert emu.names() == [] and emu.prompt_id("greeter") is None


def test_in_process_transport_answers_as_the_server_does():
    answers = []
    for use_server in (False, True):
        emu = PromptRailsEmulator(seed=3, wall_clock=lambda: WALL_START)
        server = emu.serve() if use_server else None
        client = httpx.Client(base_url=server.url if server else "http://promptrails.test",
                              transport=None if server else emu.transport(), headers={"X-API-Key": KEY})
        with client:
            pid = client.post(PROMPTS, json={"name": "p"}).json()["data"]["id"]
            client.post(f"{PROMPTS}/{pid}/versions", json={"version": "1", "user_prompt": "x", "set_current": True})
            answers.append([client.get(PROMPTS).json(), client.get(f"{PROMPTS}/{pid}/versions").json(),
                            client.get(f"{PROMPTS}/nope").json()])
        if server:
            server.close()
    assert answers[0] == answers[1]


def test_concurrent_set_current_creates_leave_exactly_one_current(env):
    pid = new_prompt(env)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with httpx.Client(base_url=env.url, headers={"X-API-Key": KEY}, timeout=5) as own:
                for i in range(5):
                    r = own.post(f"{PROMPTS}/{pid}/versions", json={"version": f"{n}.{i}", "user_prompt": "u",
                                                                    "set_current": True})
                    assert r.status_code == 201
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    listed = body_of(env.http.get(f"{PROMPTS}/{pid}/versions"), 200)["data"]
    assert len(listed) == 40 and len({v["id"] for v in listed}) == 40
    assert [v["is_current"] for v in listed].count(True) == 1 and listed[0]["is_current"]  # the newest one won


def test_choices_are_documented():
    for key in ("auth", "workspace_header", "envelopes", "pagination", "version_body", "preview", "promote",
                "rate_limit", "quota", "prompt_create", "duplicates", "versions_list", "timestamps"):
        assert CHOICES[key]


def test_runs_as_a_subprocess_from_the_repository_root():
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulators", "promptrails", "--port", "0",
                             "--option", "api_key=pr_live_cli", "--option", "envelope=v2",
                             "--option", "rate_limit=100"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), (url, proc.poll())
        r = httpx.get(url + PROMPTS, headers={"X-API-Key": "pr_live_cli"}, timeout=5)
        assert r.status_code == 200 and r.json() == {"data": [], "meta": {"total": 0, "page": 1, "limit": 20,
                                                                          "pages": 0}}
        assert httpx.get(url + PROMPTS, headers={"X-API-Key": KEY}, timeout=5).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
