"""The PromptLayer emulator, run as a real HTTP server and driven by the official ``promptlayer`` SDK
(1.5.16) as an independent client, plus raw httpx for the endpoints the SDK never calls (release
labels, raw GET, PATCH, list filters, A/B releases) and for exact bodies and statuses.

SDK facts that keep these tests fast and honest (sdk-contracts.md §2.7, §2.8):
* sync calls go through a shared ``requests`` session with no timeout; tracing is off unless
  ``enable_tracing=True``, so nothing but the emulator is contacted;
* ``get``/``all``/``publish`` retry 429 and 5xx with tenacity, 4 attempts waiting 2/4/8 s: the
  tests replace each function's ``retry.sleep`` and assert the waits instead of sleeping;
* ``publish`` raises only on 400: any other error body is returned as if it were the template.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from conftest import env_factory
from emulators.promptlayer import CHOICES, PromptLayerEmulator, ab_bucket
from promptlayer import PromptLayer
from promptlayer import utils as pl_utils
from promptlayer.exceptions import (
    PromptLayerAuthenticationError,
    PromptLayerInternalServerError,
    PromptLayerNotFoundError,
    PromptLayerRateLimitError,
    PromptLayerUnprocessableEntityError,
)

REPO = Path(__file__).resolve().parent.parent
KEY = "pl_test_key"


def text(t: str) -> list[dict]:
    return [{"type": "text", "text": t}]


def chat(*messages: tuple[str, str], fmt: str | None = None) -> dict:
    out = []
    for role, body in messages:
        message = {"role": role, "content": text(body)}
        if fmt:
            message["template_format"] = fmt
        out.append(message)
    return {"type": "chat", "messages": out}


def stored(t: str) -> list[dict]:
    """A text block as the server stores and returns it (2026-02 cassette: ``id``/``annotations`` null)."""
    return [{"type": "text", "text": t, "id": None, "annotations": None}]


MODEL = {"model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {"temperature": 0.2}}}
#: MODEL as the server stores it: the keys it fills in, in the order of the real answer recorded on
#: 2026-02-23 (prompt-layer-library tests/fixtures/cassettes/test_run_logs_error_on_llm_auth_failure.yaml)
STORED_MODEL = {"model": {"provider": "openai", "model_config_display_name": None, "base_model": None,
                          "name": "gpt-4o-mini", "parameters": {"temperature": 0.2}, "display_params": {},
                          "api_type": "chat-completions"}}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Env:
    """One emulator on 127.0.0.1, an SDK client and a raw httpx client for it."""

    def __init__(self, **options):
        self.emu = PromptLayerEmulator(**options)
        self.server = self.emu.serve()
        self.url = self.server.url
        self.key = options.get("api_key", KEY)
        self.pl = PromptLayer(api_key=self.key, base_url=self.url)
        self.http = httpx.Client(base_url=self.url, headers={"X-API-KEY": self.key}, timeout=5)
        self.bodies: list[tuple[str, str, object]] = []
        route = self.emu.route

        def recording(request):  # what the clients sent, for wire assertions
            try:
                body = json.loads(request.body) if request.body else None
            except ValueError:
                body = request.body
            self.bodies.append((request.method, request.path, body))
            return route(request)

        self.emu.route = recording

    def publish(self, name: str, template: dict, **fields) -> httpx.Response:
        body = {"prompt_template": {"prompt_name": name, "tags": fields.pop("tags", None)},
                "prompt_version": {"prompt_template": template, "commit_message": fields.pop("commit_message", None),
                                   "metadata": fields.pop("metadata", None)}, **fields}
        return self.http.post("/rest/prompt-templates", json=body)

    def close(self) -> None:
        self.http.close()
        threading.Thread(target=self.server.close, daemon=True).start()


@pytest.fixture
def make_env():
    yield from env_factory(Env)


@pytest.fixture
def env(make_env) -> Env:
    return make_env()


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The waits the SDK's tenacity retries asked for (nothing actually sleeps)."""
    waited: list[float] = []
    for fn in (pl_utils.get_prompt_template, pl_utils.get_all_prompt_templates, pl_utils.publish_prompt_template):
        monkeypatch.setattr(fn.retry, "sleep", waited.append)
    return waited


def error(r: httpx.Response, status: int) -> str:
    """Assert the platform's {success:false,message,error} shape; return the message."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and isinstance(body["message"], str) and body["message"]
    assert set(body) == ({"success", "message"} if status in (409, 429) else {"success", "message", "error"})
    return body["message"]


def detail(r: httpx.Response) -> list[dict]:
    """Assert a FastAPI 422; return its issues."""
    assert r.status_code == 422, r.text
    body = r.json()
    assert set(body) == {"detail"} and body["detail"]
    for issue in body["detail"]:
        assert {"loc", "msg", "type"} <= set(issue) and isinstance(issue["loc"], list)
    return body["detail"]


# ------------------------------------------------------------------------------------ the SDK


def test_sdk_publish_with_release_labels_then_get_by_label_and_version(env):
    first = env.pl.templates.publish({"prompt_name": "support/reply", "prompt_template": chat(("system", "Be brief.")),
                                      "commit_message": "first", "metadata": MODEL, "tags": ["support"],
                                      "release_labels": ["prod", "staging"]})
    assert (first["id"], first["prompt_version_id"], first["version_number"], first["version"]) == (1, 101, 1, 1)
    assert first["release_labels"] == ["prod", "staging"] and first["tags"] == ["support"]
    # the SDK sends the flat body under both keys, and release_labels once more at the top
    method, path, sent = env.bodies[-1]
    assert (method, path) == ("POST", "/rest/prompt-templates")
    assert sent["prompt_template"] == sent["prompt_version"] and sent["release_labels"] == ["prod", "staging"]

    second = env.pl.templates.publish({"prompt_name": "support/reply", "prompt_template": chat(("system", "Be kind.")),
                                       "commit_message": "second", "metadata": MODEL, "release_labels": ["staging"]})
    assert (second["id"], second["version_number"], second["prompt_version_id"]) == (1, 2, 102)
    assert second["tags"] == ["support"]  # tags absent: the template keeps them
    assert env.emu.labels("support/reply") == {"prod": 1, "staging": 2}  # staging moved

    prod = env.pl.templates.get("support/reply", {"label": "prod"})
    assert prod["version"] == 1 and prod["prompt_template"]["messages"][0]["content"] == stored("Be brief.")
    assert prod["commit_message"] == "first" and prod["metadata"] == STORED_MODEL and prod["id"] == 1
    assert prod["llm_kwargs"] == {"messages": [{"role": "system", "content": "Be brief."}], "model": "gpt-4o-mini",
                                  "temperature": 0.2}
    assert prod["provider_base_url"] is None and prod["snippets"] == [] and prod["workspace_id"] == 1
    assert env.bodies[-1][1] == "/prompt-templates/support%2Freply"  # quote(name, safe='')
    assert env.bodies[-1][2] == {"api_key": KEY, "label": "prod"}  # the key in the body is tolerated

    assert env.pl.templates.get("support/reply", {"version": 2})["commit_message"] == "second"
    assert env.pl.templates.get("support/reply")["version"] == 2  # neither: latest
    assert env.pl.templates.get("support/reply", {"label": "staging"})["version"] == 2


def test_sdk_get_renders_input_variables_on_the_server(env):
    template = {"type": "chat", "messages": [
        {"role": "system", "content": text("You are {persona}."), "input_variables": ["persona"]},
        {"role": "user", "content": text("Hi {{ name }}{% if vip %}, welcome back{% endif %}"),
         "template_format": "jinja2"}]}
    env.pl.templates.publish({"prompt_name": "greet", "prompt_template": template, "metadata": MODEL})

    got = env.pl.templates.get("greet", {"input_variables": {"persona": "a pirate", "name": "Bob", "vip": True}})
    messages = got["prompt_template"]["messages"]
    assert messages[0]["content"] == stored("You are a pirate.")
    assert messages[1]["content"] == stored("Hi Bob, welcome back")
    assert got["llm_kwargs"]["messages"] == [{"role": "system", "content": "You are a pirate."},
                                             {"role": "user", "content": text("Hi Bob, welcome back")}]
    # the stored version is untouched
    assert env.emu.versions("greet")[0]["prompt_template"]["messages"][0]["content"] == stored("You are {persona}.")

    # no input_variables: rendered with none (what the SDK's cache path assumes): variables become ""
    bare = env.pl.templates.get("greet")
    assert bare["prompt_template"]["messages"][0]["content"] == stored("You are .")
    assert bare["prompt_template"]["messages"][1]["content"] == stored("Hi ")


def test_sdk_cache_path_fetches_unrendered_and_renders_locally(make_env):
    env = make_env()
    env.emu.seed("greet", chat(("user", "Hello {name}")), metadata=MODEL, release_labels=["prod"])
    cached = PromptLayer(api_key=KEY, base_url=env.url, cache_ttl_seconds=60)

    got = cached.templates.get("greet", {"label": "prod", "input_variables": {"name": "Ada"}})
    assert got["prompt_template"]["messages"][0]["content"] == stored("Hello Ada")
    assert got["llm_kwargs"]["messages"][0]["content"] == text("Hello Ada")
    # on the wire: the flag, and no input_variables
    assert env.bodies[-1][2] == {"api_key": KEY, "label": "prod", "skip_input_variable_rendering": True}
    assert env.emu.calls("POST", r"^/prompt-templates/greet$") == 1

    again = cached.templates.get("greet", {"label": "prod", "input_variables": {"name": "Bo"}})
    assert again["prompt_template"]["messages"][0]["content"] == stored("Hello Bo")
    assert env.emu.calls("POST", r"^/prompt-templates/greet$") == 1  # served from the cache

    raw = env.http.post("/prompt-templates/greet", json={"skip_input_variable_rendering": True,
                                                         "input_variables": {"name": "X"}}).json()
    assert raw["prompt_template"]["messages"][0]["content"] == stored("Hello {name}")
    assert raw["llm_kwargs"]["messages"][0]["content"] == text("Hello {name}")


def test_sdk_all_paginates_newest_first_and_filters_by_label(env):
    for i in range(5):
        env.emu.seed(f"p{i}", chat(("user", f"v1 of {i}")), release_labels=["prod"] if i % 2 == 0 else [])
    env.emu.seed("p0", chat(("user", "v2 of 0")))

    first = env.pl.templates.all(page=1, per_page=2)
    assert [item["prompt_name"] for item in first] == ["p4", "p3"]
    assert env.bodies[-1][:2] == ("GET", "/prompt-templates")
    assert [i["prompt_name"] for i in env.pl.templates.all(page=3, per_page=2)] == ["p0"]
    assert env.pl.templates.all(page=4, per_page=2) == []
    latest = env.pl.templates.all()
    assert len(latest) == 5 and {i["prompt_name"]: i["version"] for i in latest}["p0"] == 2
    assert latest[-1]["prompt_template"]["messages"][0]["content"] == stored("v2 of 0")

    prod = env.pl.templates.all(label="prod")
    assert [(i["prompt_name"], i["version"]) for i in prod] == [("p4", 1), ("p2", 1), ("p0", 1)]
    assert prod[-1]["prompt_template"]["messages"][0]["content"] == stored("v1 of 0")  # the label's version
    assert env.pl.templates.all(label="nope") == []


def test_sdk_error_classes_and_throw_on_error(env, sleeps):
    env.emu.seed("p", chat(("user", "x")))
    wrong = PromptLayer(api_key="pl_wrong", base_url=env.url)
    with pytest.raises(PromptLayerAuthenticationError) as exc:
        wrong.templates.get("p")
    assert exc.value.response.status_code == 401 and "Invalid API key" in str(exc.value)
    with pytest.raises(PromptLayerAuthenticationError):
        wrong.templates.all()

    with pytest.raises(PromptLayerNotFoundError) as exc:
        env.pl.templates.get("missing")
    assert "'missing' not found" in str(exc.value) and exc.value.body["success"] is False
    with pytest.raises(PromptLayerNotFoundError) as exc:
        env.pl.templates.get("p", {"label": "prod"})
    assert "Release label 'prod' not found" in str(exc.value)
    with pytest.raises(PromptLayerNotFoundError):
        env.pl.templates.get("p", {"version": 7})

    with pytest.raises(PromptLayerUnprocessableEntityError) as exc:
        env.pl.templates.get("p", {"metadata_filters": {"user_id": 5}})
    assert exc.value.body["detail"][0]["loc"] == ["body", "metadata_filters", "user_id"]
    assert sleeps == []  # none of those is retried

    # publish raises only on 400: a 422 or 401 body comes back as if it were the template
    invalid = env.pl.templates.publish({"prompt_name": "p", "prompt_template": {"type": "chat"}})
    assert invalid["detail"][0] == {"loc": ["body", "prompt_version", "prompt_template", "messages"],
                                    "msg": "field required", "type": "value_error.missing"}
    assert wrong.templates.publish({"prompt_name": "p", "prompt_template": chat(("user", "y"))})["success"] is False
    assert len(env.emu.versions("p")) == 1

    quiet = PromptLayer(api_key=KEY, base_url=env.url, throw_on_error=False)
    assert quiet.templates.get("missing") is None
    assert PromptLayer(api_key="pl_wrong", base_url=env.url, throw_on_error=False).templates.all() == []
    env.emu.faults.fail_next(1, 500)
    assert quiet.templates.get("p") is None  # no exception, so no retry either
    assert env.emu.calls("POST", "^/prompt-templates/p$") == 5 and sleeps == []


def test_sdk_retries_429_and_5xx_at_2_4_8_seconds(env, sleeps):
    env.emu.seed("p", chat(("user", "x")), release_labels=["prod"])

    env.emu.faults.fail_next(2, 503)
    assert env.pl.templates.get("p", {"label": "prod"})["version"] == 1
    assert sleeps == [2, 4] and env.emu.calls("POST", "^/prompt-templates/p$") == 3

    sleeps.clear()
    env.emu.faults.rate_limit(3, retry_after=30)  # Retry-After is ignored: the waits stay 2/4/8
    assert len(env.pl.templates.all()) == 1
    assert sleeps == [2, 4, 8] and env.emu.calls("GET", "^/prompt-templates$") == 4

    sleeps.clear()
    env.emu.faults.fail_next(4, 500)
    with pytest.raises(PromptLayerInternalServerError) as exc:
        env.pl.templates.get("p")
    assert exc.value.body == {"success": False, "message": "injected fault", "error": "injected fault"}
    assert sleeps == [2, 4, 8] and env.emu.calls("POST", "^/prompt-templates/p$") == 7

    sleeps.clear()
    env.emu.faults.rate_limit(4)
    with pytest.raises(PromptLayerRateLimitError) as exc:
        env.pl.templates.all()
    assert exc.value.response.headers["Retry-After"] == "1" and "Rate limit exceeded" in str(exc.value)
    assert sleeps == [2, 4, 8]

    # publish: a 429 is not a 400, so it is returned as the "template" and never retried
    sleeps.clear()
    env.emu.faults.rate_limit(1, match="^POST /rest/")
    answer = env.pl.templates.publish({"prompt_name": "p", "prompt_template": chat(("user", "y"))})
    assert answer == {"success": False, "message": "Rate limit exceeded"} and sleeps == []
    assert [v["version_number"] for v in env.emu.versions("p")] == [1]


def test_sdk_reads_an_ab_release_through_metadata_filters(make_env):
    env = make_env(random_seed=7)
    for i in range(1, 4):
        env.emu.seed("p", chat(("user", f"v{i}")), release_labels=["prod"] if i == 1 else [])
    env.emu.set_ab_release("p", "prod", {2: 50, 3: 50})
    seen = {}
    for user in ("u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"):
        got = env.pl.templates.get("p", {"label": "prod", "metadata_filters": {"user_id": user}})
        seen[user] = got["version"]
        expected = 2 if ab_bucket(1, "prod", {"user_id": user}) < 50 else 3
        assert got["version"] == expected == env.emu.ab_version("p", "prod", {"user_id": user})
    assert set(seen.values()) == {2, 3}
    # sticky: the same user gets the same version again
    assert env.pl.templates.get("p", {"label": "prod", "metadata_filters": {"user_id": "u1"}})["version"] == seen["u1"]
    # what promptops can read shows the label's base mapping only
    assert env.pl.templates.all(label="prod")[0]["version"] == 1
    assert env.emu.labels("p") == {"prod": 1}


# ------------------------------------------------------------------------------------ publish, content


def test_publish_response_shape_and_no_dedupe(env):
    template = chat(("system", "Same"))
    r = env.publish("p", template, commit_message="c", metadata=MODEL, tags=["a"], release_labels=["prod"],
                    external_ids=[{"source": "promptops", "external_id": "prompts/p.yaml"}])
    assert r.status_code == 201
    body = r.json()
    assert {"id", "prompt_name", "prompt_version_id", "version_number", "version", "tags", "release_labels",
            "prompt_template", "metadata", "commit_message"} <= set(body)
    assert body["external_ids"] == [{"source": "promptops", "external_id": "prompts/p.yaml"}]
    again = env.publish("p", template).json()
    assert again["version_number"] == 2 and again["prompt_version_id"] == body["prompt_version_id"] + 1
    assert again["release_labels"] is None and again["commit_message"] is None and again["metadata"] is None
    assert [v["version_number"] for v in env.emu.versions("p")] == [1, 2]
    assert env.emu.versions("p")[0]["prompt_template"] == env.emu.versions("p")[1]["prompt_template"]

    # an external id already mapped to another template: 409, nothing changes
    conflict = env.publish("q", template, external_ids=[{"source": "promptops", "external_id": "prompts/p.yaml"}])
    assert "already mapped" in error(conflict, 409)
    assert env.emu.template("q") is None


# The one recorded real publish (prompt-layer-library tests/fixtures/cassettes/
# test_publish_template_async.yaml, 2025-04-14): what the SDK sent and what the server answered.
RECORDED_TEMPLATE = {
    "dataset_examples": [], "function_call": "none", "functions": [], "input_variables": [],
    "messages": [{"content": [{"text": "", "type": "text"}], "dataset_examples": [], "input_variables": [],
                  "name": None, "raw_request_display_role": "", "role": "system", "template_format": "f-string"},
                 {"content": [{"text": "What is the capital of Japan?", "type": "text"}], "dataset_examples": [],
                  "input_variables": [], "name": None, "raw_request_display_role": "", "role": "user",
                  "template_format": "f-string"}],
    "tool_choice": None, "tools": None, "type": "chat"}
RECORDED_PARAMETERS = {"frequency_penalty": 0, "max_tokens": 256, "messages": [{"content": "Hello", "role": "system"}],
                       "model": "gpt-4o", "presence_penalty": 0, "seed": 0, "temperature": 1, "top_p": 1}
RECORDED_ANSWER_KEYS = ["id", "prompt_name", "tags", "prompt_template", "commit_message", "metadata",
                        "release_labels"]


def test_publish_answers_as_the_2025_04_recording_without_version_number_or_id(make_env):
    env = make_env(answers="2025-04")
    answer = env.pl.templates.publish({
        "prompt_name": "sample_template", "prompt_template": RECORDED_TEMPLATE, "tags": ["test"],
        "commit_message": "test", "metadata": {"model": {"name": "gpt-4o-mini", "provider": "openai",
                                                          "parameters": RECORDED_PARAMETERS}}})
    assert list(answer) == RECORDED_ANSWER_KEYS  # no version_number, prompt_version_id, version
    assert (answer["id"], answer["prompt_name"], answer["tags"], answer["commit_message"]) == (
        1, "sample_template", ["test"], "test")
    assert answer["release_labels"] is None  # echoed as the SDK sent it
    assert [m["content"] for m in answer["prompt_template"]["messages"]] == [stored(""),
                                                                            stored("What is the capital of Japan?")]
    assert answer["metadata"]["model"]["parameters"] == RECORDED_PARAMETERS
    # the version is there all the same, and labels a publish carries still land on it
    labelled = env.publish("sample_template", chat(("user", "v2")), release_labels=["prod"]).json()
    assert list(labelled) == RECORDED_ANSWER_KEYS and labelled["release_labels"] == ["prod"]
    assert env.emu.labels("sample_template") == {"prod": 2}
    got = env.pl.templates.get("sample_template", {"label": "prod"})
    assert got["version"] == 2 and got["prompt_template"]["messages"][0]["content"] == stored("v2")
    # only the publish answer differs: reads, labels and patches answer as in the default mode
    assert env.http.get("/prompt-templates/sample_template").json()["version"] == 2
    patched = env.http.patch("/rest/prompt-templates/sample_template", json={"commit_message": "p"}).json()
    assert patched["version_number"] == 3
    with pytest.raises(ValueError, match="answers"):
        PromptLayerEmulator(answers="2024")


def test_stored_versions_carry_the_model_metadata_and_block_keys_the_server_fills_in(env):
    assert env.publish("p", chat(("user", "Say {x}")), metadata=MODEL).status_code == 201
    sent = {"model": {**MODEL["model"], "api_type": "responses", "base_model": "gpt-4o", "display_params": None}}
    assert env.publish("q", {"type": "completion", "content": [{"type": "text", "text": "Q", "id": "b1"}]},
                       metadata=sent).status_code == 201
    assert env.publish("bare", chat(("user", "no model"))).status_code == 201

    raw = env.http.get("/prompt-templates/p").json()
    assert raw["metadata"] == STORED_MODEL and list(raw["metadata"]["model"]) == list(STORED_MODEL["model"])
    assert raw["prompt_template"]["messages"][0]["content"] == stored("Say {x}")
    rendered = env.http.post("/prompt-templates/p", json={"input_variables": {"x": "hi"}}).json()
    assert rendered["metadata"] == STORED_MODEL
    # the provider request carries bare blocks, as the recorded llm_kwargs does
    assert rendered["llm_kwargs"]["messages"] == [{"role": "user", "content": text("Say hi")}]
    assert {i["prompt_name"]: i["metadata"] for i in env.pl.templates.all()}["p"] == STORED_MODEL
    assert env.pl.templates.get("p")["metadata"] == STORED_MODEL  # the official SDK reads them back

    # what the client sent is kept as sent (null included); no model stays no model
    q = env.emu.versions("q")[0]
    assert (q["metadata"]["model"]["api_type"], q["metadata"]["model"]["base_model"]) == ("responses", "gpt-4o")
    assert q["metadata"]["model"]["display_params"] is None
    assert q["metadata"]["model"]["model_config_display_name"] is None
    assert q["prompt_template"]["content"] == [{"type": "text", "text": "Q", "id": "b1", "annotations": None}]
    assert env.emu.versions("bare")[0]["metadata"] is None
    assert set(CHOICES) >= {"answers", "server_filled"}


def test_stored_content_gets_server_defaults_and_keeps_unknown_keys(env):
    template = {"type": "chat", "x_custom": {"a": 1}, "messages": [
        {"role": "system", "content": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
         "my_key": 1},
        {"role": "placeholder", "name": "history"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                              "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]}
    assert env.publish("p", template).status_code == 201
    kept = env.http.get("/prompt-templates/p").json()["prompt_template"]
    assert kept["x_custom"] == {"a": 1}
    assert (kept["functions"], kept["tools"], kept["function_call"], kept["tool_choice"]) == (None,) * 4
    assert kept["input_variables"] == [] and kept["dataset_examples"] == []
    system, placeholder, assistant, tool = kept["messages"]
    assert system["my_key"] == 1 and system["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert (system["template_format"], system["input_variables"], system["name"]) == ("f-string", [], None)
    assert system["raw_request_display_role"] == "" and system["dataset_examples"] == []
    assert placeholder == {"role": "placeholder", "name": "history"}
    assert assistant["content"] == [] and assistant["function_call"] is None and assistant["tool_calls"][0]["id"] == "c1"
    assert tool["tool_call_id"] == "c1" and tool["content"][0]["type"] == "image_url"

    completion = {"type": "completion", "content": text("Summarise {{ doc }}"), "template_format": "jinja2"}
    assert env.publish("c", completion).status_code == 201
    got = env.http.post("/prompt-templates/c", json={"input_variables": {"doc": "this"}}).json()
    assert got["prompt_template"]["content"] == stored("Summarise this")
    assert got["llm_kwargs"] == {"prompt": "Summarise this"}


@pytest.mark.parametrize("template, loc, type_", [
    (None, ["body", "prompt_version", "prompt_template"], "value_error.missing"),
    ("hi", ["body", "prompt_version", "prompt_template"], "type_error.dict"),
    ({"messages": []}, ["body", "prompt_version", "prompt_template"],
     "value_error.discriminated_union.missing_discriminator"),
    ({"type": "text", "content": text("x")}, ["body", "prompt_version", "prompt_template", "type"],
     "value_error.discriminated_union.invalid_discriminator"),
    ({"type": "chat", "messages": [{"role": "bot", "content": text("x")}]},
     ["body", "prompt_version", "prompt_template", "messages", 0, "role"], "type_error.enum"),
    ({"type": "chat", "messages": [{"role": "user", "content": "plain string"}]},
     ["body", "prompt_version", "prompt_template", "messages", 0, "content"], "type_error.list"),
    ({"type": "chat", "messages": [{"role": "user"}]},
     ["body", "prompt_version", "prompt_template", "messages", 0, "content"], "value_error.missing"),
    ({"type": "chat", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
     ["body", "prompt_version", "prompt_template", "messages", 0, "content", 0, "text"], "value_error.missing"),
    ({"type": "chat", "messages": [{"role": "placeholder"}]},
     ["body", "prompt_version", "prompt_template", "messages", 0, "name"], "value_error.missing"),
    ({"type": "chat", "messages": [{"role": "user", "content": text("x"), "template_format": "mustache"}]},
     ["body", "prompt_version", "prompt_template", "messages", 0, "template_format"], "type_error.enum"),
    ({"type": "completion"}, ["body", "prompt_version", "prompt_template", "content"], "value_error.missing"),
])
def test_publish_validation_is_a_fastapi_422(env, template, loc, type_):
    body = {"prompt_template": {"prompt_name": "p"}, "prompt_version": {}}
    if template is not None:
        body["prompt_version"]["prompt_template"] = template
    issues = detail(env.http.post("/rest/prompt-templates", json=body))
    assert [(i["loc"], i["type"]) for i in issues] == [(loc, type_)]
    assert env.emu.names() == []


def test_publish_field_limits(env):
    issues = detail(env.publish("p", chat(("user", "x")), commit_message="x" * 73))
    assert issues == [{"loc": ["body", "prompt_version", "commit_message"],
                       "msg": "ensure this value has at most 72 characters", "type": "value_error.any_str.max_length",
                       "ctx": {"limit_value": 72}}]
    assert env.publish("p", chat(("user", "x")), commit_message="x" * 72).status_code == 201
    assert detail(env.publish("x" * 513, chat(("user", "x"))))[0]["type"] == "value_error.any_str.max_length"
    assert env.publish("y" * 512, chat(("user", "x"))).status_code == 201
    assert detail(env.publish("", chat(("user", "x"))))[0]["loc"] == ["body", "prompt_template", "prompt_name"]
    bad_model = detail(env.publish("p", chat(("user", "x")), metadata={"model": {"provider": "openai"}}))
    assert bad_model[0]["loc"] == ["body", "prompt_version", "metadata", "model", "name"]
    assert detail(env.publish("p", chat(("user", "x")), release_labels="prod"))[0]["type"] == "type_error.list"
    not_json = env.http.post("/rest/prompt-templates", content=b"{nope", headers={"Content-Type": "application/json"})
    assert detail(not_json)[0]["type"] == "value_error.jsondecode"
    assert [v["version_number"] for v in env.emu.versions("p")] == [1]


# ------------------------------------------------------------------------------------ auth, routes


def test_auth_header_only_and_error_bodies(env):
    env.emu.seed("p", chat(("user", "x")))
    bare = httpx.Client(base_url=env.url, timeout=5)
    assert "Missing API key" in error(bare.get("/prompt-templates"), 401)
    # api_key in the query or the body does not authenticate (and is ignored when the header is right)
    assert error(bare.get("/prompt-templates", params={"api_key": KEY}), 401)
    assert error(bare.post("/prompt-templates/p", json={"api_key": KEY}), 401)
    assert error(bare.get("/prompt-templates", headers={"X-API-KEY": "pl_other"}), 401) == "Invalid API key"
    assert bare.get("/prompt-templates", headers={"x-api-key": KEY}).status_code == 200
    assert bare.get("/prompt-templates", headers={"X-Api-Key": KEY}).status_code == 200
    assert env.http.get("/prompt-templates", params={"api_key": "whatever", "workspace_id": 9}).status_code == 200
    assert env.http.post("/prompt-templates/p", json={"api_key": "whatever", "workspace_id": 9}).status_code == 200
    bare.close()

    assert error(env.http.get("/no/such/route"), 404) == "Not found"
    assert error(env.http.delete("/prompt-templates/p"), 405)
    assert error(env.http.get("/rest/prompt-templates"), 405)


def test_several_keys(make_env):
    env = make_env(api_key="pl_a", api_keys="pl_b, pl_c")
    env.emu.seed("p", chat(("user", "x")))
    for key in ("pl_a", "pl_b", "pl_c"):
        assert httpx.get(env.url + "/prompt-templates", headers={"X-API-KEY": key}).json()["total"] == 1
    assert httpx.get(env.url + "/prompt-templates", headers={"X-API-KEY": "pl_d"}).status_code == 401
    env.emu.add_key("pl_d")
    assert httpx.get(env.url + "/prompt-templates", headers={"X-API-KEY": "pl_d"}).status_code == 200


def test_names_with_slashes_and_odd_characters_and_numeric_identifiers(env):
    for name in ("team/support/reply", "50% off & more", "ünïcode name"):
        assert env.publish(name, chat(("user", name))).status_code == 201
    for name in ("team/support/reply", "50% off & more", "ünïcode name"):
        encoded = quote(name, safe="")
        assert env.http.post(f"/prompt-templates/{encoded}", json={}).json()["prompt_name"] == name
        assert env.http.get(f"/prompt-templates/{encoded}").json()["prompt_name"] == name
        assert env.http.get(f"/prompt-templates/{encoded}/labels").json() == {"release_labels": []}
    # a raw slash works too
    assert env.http.get("/prompt-templates/team/support/reply").json()["id"] == 1
    # a literal "%2F" in a name is not a slash
    assert env.publish("a%2Fb", chat(("user", "lit"))).status_code == 201
    assert env.http.get("/prompt-templates/a%252Fb").json()["prompt_name"] == "a%2Fb"
    assert error(env.http.get("/prompt-templates/a%2Fb"), 404)

    # numeric identifiers: the id wins when such a template exists, else the name
    assert env.publish("2", chat(("user", "named two"))).json()["id"] == 5
    assert env.publish("999", chat(("user", "named 999"))).json()["id"] == 6
    assert env.http.get("/prompt-templates/2").json()["prompt_name"] == "50% off & more"
    assert env.http.get("/prompt-templates/5").json()["prompt_name"] == "2"
    assert env.http.get("/prompt-templates/999").json()["prompt_name"] == "999"
    assert env.http.post("/prompt-templates/6", json={}).json()["prompt_name"] == "999"
    assert "'42' not found" in error(env.http.get("/prompt-templates/42"), 404)


# ------------------------------------------------------------------------------------ reads


def test_raw_get_fields_and_errors(env):
    env.emu.seed("p", chat(("user", "Hi {name}")), metadata=MODEL, release_labels=["prod"], tags=["t"],
                 commit_message="one")
    env.emu.seed("p", chat(("user", "Hi {name}!")))
    raw = env.http.get("/prompt-templates/p", params={"label": "prod"}).json()
    assert set(raw) == {"success", "id", "prompt_name", "version", "workspace_id", "prompt_template", "metadata",
                        "commit_message", "tags", "created_at", "snippets"}  # no release labels, no llm_kwargs
    assert raw["success"] is True and raw["version"] == 1 and raw["commit_message"] == "one" and raw["tags"] == ["t"]
    assert raw["prompt_template"]["messages"][0]["content"] == stored("Hi {name}")  # never rendered
    assert env.http.get("/prompt-templates/p").json()["version"] == 2
    assert env.http.get("/prompt-templates/p", params={"version": 1}).json()["commit_message"] == "one"
    with_kwargs = env.http.get("/prompt-templates/p", params={"version": 1, "include_llm_kwargs": "true",
                                                              "resolve_snippets": "false"}).json()
    assert with_kwargs["llm_kwargs"] == {"messages": [{"role": "user", "content": text("Hi {name}")}],
                                         "model": "gpt-4o-mini", "temperature": 0.2}

    assert "both version and label" in error(env.http.get("/prompt-templates/p", params={"version": 1,
                                                                                          "label": "prod"}), 400)
    assert detail(env.http.get("/prompt-templates/p", params={"version": "abc"}))[0]["loc"] == ["query", "version"]
    assert detail(env.http.get("/prompt-templates/p", params={"version": 0}))[0]["type"] == "value_error.number.not_gt"
    assert "Version 3" in error(env.http.get("/prompt-templates/p", params={"version": 3}), 404)
    assert "'staging' not found" in error(env.http.get("/prompt-templates/p", params={"label": "staging"}), 404)


def test_rendered_get_options(env):
    template = {"type": "chat", "messages": [
        {"role": "system", "content": text("Sys {a}")},
        {"role": "placeholder", "name": "history"},
        {"role": "user", "content": text("{b.c} and {x}")}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}], "tool_choice": "auto"}
    env.emu.seed("p", template, metadata=MODEL, release_labels=["prod"])
    env.emu.seed("p", chat(("user", "v2")))
    got = env.http.post("/prompt-templates/p", json={
        "label": "prod", "version": 2,  # the label wins
        "input_variables": {"a": "A", "history": [{"role": "user", "content": "earlier"}]},
        "provider": "anthropic", "model": "claude-x", "model_parameter_overrides": {"temperature": 1, "max_tokens": 9}})
    assert got.status_code == 200
    body = got.json()
    assert body["version"] == 1
    assert body["prompt_template"]["messages"][2]["content"] == stored("{b.c} and {x}")  # dotted field: left as is
    kwargs = body["llm_kwargs"]
    assert kwargs["system"] == "Sys A" and kwargs["model"] == "claude-x"
    assert kwargs["messages"] == [{"role": "user", "content": "earlier"},
                                  {"role": "user", "content": text("{b.c} and {x}")}]
    assert (kwargs["temperature"], kwargs["max_tokens"], kwargs["tool_choice"]) == (1, 9, "auto")
    assert kwargs["tools"][0]["function"]["name"] == "f"

    assert detail(env.http.post("/prompt-templates/p", json={"version": 0}))[0]["loc"] == ["body", "version"]
    assert detail(env.http.post("/prompt-templates/p", json={"input_variables": [1]}))[0]["type"] == "type_error.dict"
    assert detail(env.http.post("/prompt-templates/p", content=b"[]"))[0]["loc"] == ["body"]
    assert env.http.post("/prompt-templates/p").json()["version"] == 2  # no body at all: latest


def completion(t: str) -> dict:
    return {"type": "completion", "content": text(t)}


def test_sdk_get_inlines_snippets_recursively_and_lists_each_one(env):
    base = env.pl.templates.publish({"prompt_name": "shared/base", "release_labels": ["prod"],
                                     "prompt_template": completion("Never invent facts about {product}.")})
    env.pl.templates.publish({"prompt_name": "shared/base", "prompt_template": completion("Be exact.")})
    env.pl.templates.publish({"prompt_name": "tone",
                              "prompt_template": completion("Be kind. @@@shared/base@label:prod@@@")})
    reply = "Reply to {question}. @@@tone@@@ (@@@shared/base@version_number:2@@@)"
    answer = env.pl.templates.publish({"prompt_name": "reply", "prompt_template": completion(reply), "metadata": MODEL})
    assert answer["prompt_template"]["content"] == stored(reply)  # the publish answers with the stored text

    got = env.pl.templates.get("reply", {"input_variables": {"question": "refunds", "product": "mugs"}})
    served = "Reply to refunds. Be kind. Never invent facts about mugs. (Be exact.)"
    assert got["prompt_template"]["content"] == stored(served)
    assert got["llm_kwargs"]["prompt"] == served
    assert got["snippets"] == [{"prompt_name": "tone", "version": 1, "label": None},
                               {"prompt_name": "shared/base", "version": 1, "label": "prod"},
                               {"prompt_name": "shared/base", "version": 2, "label": None}]
    assert env.emu.versions("reply")[0]["prompt_template"]["content"] == stored(reply)  # stored as sent

    # GET resolves by default too; resolve_snippets=false serves the stored text and lists nothing
    raw = env.http.get("/prompt-templates/reply").json()
    assert raw["prompt_template"]["content"] == stored(
        "Reply to {question}. Be kind. Never invent facts about {product}. (Be exact.)")
    assert raw["snippets"] == got["snippets"]
    kept = env.http.get("/prompt-templates/reply", params={"resolve_snippets": "false",
                                                            "include_llm_kwargs": "true"}).json()
    assert (kept["prompt_template"]["content"], kept["snippets"]) == (stored(reply), [])
    assert kept["llm_kwargs"]["prompt"] == reply
    assert env.http.get("/prompt-templates/reply", params={"resolve_snippets": "true"}).json() == raw
    assert detail(env.http.get("/prompt-templates/reply", params={"resolve_snippets": "maybe"}))[0]["loc"] == [
        "query", "resolve_snippets"]
    # the list has no resolve_snippets: it carries the stored text
    listed = {item["prompt_name"]: item for item in env.pl.templates.all()}
    assert listed["reply"]["prompt_template"]["content"] == stored(reply)

    # a label reference is resolved when read: moving the label changes what every composer serves
    [prod] = env.http.get(f"/prompt-templates/{base['id']}/labels").json()["release_labels"]
    assert env.http.patch(f"/prompt-labels/{prod['release_label_id']}",
                          json={"prompt_version_number": 2}).status_code == 200
    assert env.pl.templates.get("tone")["prompt_template"]["content"] == stored("Be kind. Be exact.")
    assert env.pl.templates.get("tone")["snippets"] == [{"prompt_name": "shared/base", "version": 2, "label": "prod"}]


def test_snippets_are_inlined_in_chat_messages(env):
    env.emu.seed("rules", "Cite {source}.")
    template = chat(("system", "Rules: @@@rules@@@"), ("user", "{q} @@@rules@@@"))
    template["messages"].insert(1, {"role": "placeholder", "name": "history"})
    assert env.publish("assist", template).status_code == 201
    got = env.pl.templates.get("assist", {"input_variables": {"source": "the docs", "q": "Why?"}})
    assert [m.get("content") for m in got["prompt_template"]["messages"]] == [
        stored("Rules: Cite the docs."), None, stored("Why? Cite the docs.")]
    assert got["llm_kwargs"]["messages"] == [{"role": "system", "content": "Rules: Cite the docs."},
                                             {"role": "user", "content": text("Why? Cite the docs.")}]
    assert got["snippets"] == [{"prompt_name": "rules", "version": 1, "label": None}]  # each reference once


@pytest.mark.parametrize("reference, message", [
    ("@@@nowhere@@@", "Snippet 'nowhere' not found: no prompt template is named so"),
    ("@@@Base@@@", "Snippet 'Base' not found: no prompt template is named so"),  # names are case-sensitive
    ("@@@base@label:staging@@@", "Snippet 'base' with label 'staging' not found"),
    ("@@@base@version_number:3@@@", "Snippet 'base' version_number 3 not found"),
    ("@@@base@version_number:x@@@", "Snippet 'base' version_number x not found"),
    ("@@@persona@@@", "Snippet '@@@persona@@@' names a chat template: only completion templates can be snippets"),
    ("@@@parent@@@", "Snippet '@@@parent@@@' creates a snippet cycle: it leads back to 'parent'"),
    ("@@@middle@@@", "Snippet '@@@middle@@@' creates a snippet cycle: it leads back to 'parent'"),
])
def test_a_publish_naming_a_snippet_that_cannot_be_inlined_is_a_422_and_stores_nothing(env, reference, message):
    env.emu.seed("base", "Base text.", release_labels=["prod"])
    env.emu.seed("base", "Base text, v2.")
    env.emu.seed("persona", chat(("system", "You are a pirate.")))
    env.emu.seed("parent", "The first parent.")
    env.emu.seed("middle", "Middle: @@@base@@@ @@@parent@version_number:1@@@")
    [issue] = detail(env.publish("parent", completion(f"Intro. @@@base@@@ {reference}")))
    assert issue == {"loc": ["body", "prompt_version", "prompt_template", "content", 0, "text"], "msg": message,
                     "type": "value_error"}
    assert len(env.emu.versions("parent")) == 1


def test_snippet_checks_locate_the_chat_message_and_apply_to_patch_and_to_the_sdk(env):
    env.emu.seed("base", "Base text.")
    [issue] = detail(env.publish("assist", chat(("system", "ok"), ("user", "@@@base@@@ @@@gone@@@"))))
    assert issue["loc"] == ["body", "prompt_version", "prompt_template", "messages", 1, "content", 0, "text"]
    assert env.emu.template("assist") is None  # a refused first publish creates no template

    env.emu.seed("assist", chat(("system", "ok")))
    patched = env.http.patch("/rest/prompt-templates/assist",
                             json={"messages": {"0": {"content": text("@@@base@label:prod@@@")}}})
    assert detail(patched) == [{"loc": ["body", "prompt_template", "messages", 0, "content", 0, "text"],
                                "msg": "Snippet 'base' with label 'prod' not found", "type": "value_error"}]
    assert len(env.emu.versions("assist")) == 1
    ok = env.http.patch("/rest/prompt-templates/assist", json={"messages": {"0": {"content": text("@@@base@@@")}}})
    assert ok.status_code == 201 and len(env.emu.versions("assist")) == 2

    # the SDK's publish raises only on a 400: the 422 body comes back as if it were the answer
    answer = env.pl.templates.publish({"prompt_name": "late", "prompt_template": completion("@@@later@@@")})
    assert answer["detail"][0]["msg"] == "Snippet 'later' not found: no prompt template is named so"
    assert env.emu.template("late") is None


def test_a_reference_that_no_longer_resolves_or_would_loop_is_served_as_written(env):
    a = env.emu.seed("a", "A1", release_labels=["x"])
    b = env.emu.seed("b", "B1", release_labels=["prod"])
    env.emu.seed("b", "B2 @@@a@label:x@@@")  # a's x is on v1 (no references): accepted
    env.emu.seed("a", "A2 @@@b@label:prod@@@")  # b's prod is on v1: accepted
    assert env.pl.templates.get("a")["prompt_template"]["content"] == stored("A2 B1")

    def move(seeded: dict, label: str, number: int) -> None:
        [entry] = [e for e in env.http.get(f"/prompt-templates/{seeded['id']}/labels").json()["release_labels"]
                   if e["release_label"] == label]
        assert env.http.patch(f"/prompt-labels/{entry['release_label_id']}",
                              json={"prompt_version_number": number}).status_code == 200

    move(b, "prod", 2)  # a v2 -> b v2 -> a v1: no loop (label moves are not checked)
    assert env.pl.templates.get("a")["prompt_template"]["content"] == stored("A2 B2 A1")
    move(a, "x", 2)  # a v2 -> b v2 -> a v2 would loop: cut where it closes
    got = env.pl.templates.get("a")
    assert got["prompt_template"]["content"] == stored("A2 B2 @@@a@label:x@@@")
    assert got["snippets"] == [{"prompt_name": "b", "version": 2, "label": "prod"}]

    # a deleted label, a deleted template, a snippet whose latest version is now chat: as written
    env.emu.seed("c", "C1")
    env.emu.seed("d", "D1")
    env.emu.seed("top", "@@@b@label:prod@@@ @@@c@@@ @@@d@@@")
    [prod] = [e for e in env.http.get(f"/prompt-templates/{b['id']}/labels").json()["release_labels"]
              if e["release_label"] == "prod"]
    assert env.http.delete(f"/prompt-labels/{prod['release_label_id']}").status_code == 204
    env.emu.delete_template("c")
    env.emu.seed("d", chat(("user", "now chat")))
    got = env.pl.templates.get("top")
    assert got["prompt_template"]["content"] == stored("@@@b@label:prod@@@ @@@c@@@ @@@d@@@")
    assert got["snippets"] == []
    assert "snippets" in CHOICES and "resolve_snippets" in CHOICES["get_raw"]


def test_list_pagination_ordering_and_filters(make_env):
    clock = FakeClock()
    env = make_env(wall_clock=clock)
    names = ["Alpha", "beta", "Gamma", "delta-alpha", "epsilon"]
    for i, name in enumerate(names):
        clock.now += 60
        env.emu.seed(name, chat(("user", name)), tags=["even", "x"] if i % 2 == 0 else ["odd"])
    clock.now += 60
    env.emu.seed("Alpha", chat(("user", "Alpha v2")))  # updates Alpha, not its creation order

    page = env.http.get("/prompt-templates", params={"per_page": 2}).json()
    assert [i["prompt_name"] for i in page["items"]] == ["epsilon", "delta-alpha"]
    assert {k: page[k] for k in ("page", "per_page", "pages", "total", "has_next", "has_prev", "next_num",
                                 "prev_num")} == {"page": 1, "per_page": 2, "pages": 3, "total": 5, "has_next": True,
                                                  "has_prev": False, "next_num": 2, "prev_num": None}
    middle = env.http.get("/prompt-templates", params={"per_page": 2, "page": 2}).json()
    assert (middle["has_next"], middle["has_prev"], middle["next_num"], middle["prev_num"]) == (True, True, 3, 1)
    last = env.http.get("/prompt-templates", params={"per_page": 2, "page": 3}).json()
    assert [i["prompt_name"] for i in last["items"]] == ["Alpha"] and last["has_next"] is False
    beyond = env.http.get("/prompt-templates", params={"per_page": 2, "page": 9}).json()
    assert beyond["items"] == [] and beyond["total"] == 5
    default = env.http.get("/prompt-templates").json()
    assert default["per_page"] == 30 and default["page"] == 1 and default["pages"] == 1
    item = default["items"][-1]
    assert item["version"] == 2 and {"folder_id", "parent_folder_name", "full_folder_path", "external_ids",
                                     "is_snippet"} <= set(item)

    def names_for(**params):
        return [i["prompt_name"] for i in env.http.get("/prompt-templates", params=params).json()["items"]]

    assert names_for(sort_order="asc") == names
    assert names_for(sort_by="updated_at") == ["Alpha", "epsilon", "delta-alpha", "Gamma", "beta"]
    assert names_for(sort_by="name", sort_order="asc") == ["Alpha", "Gamma", "beta", "delta-alpha", "epsilon"]
    assert names_for(name="ALPHA") == ["delta-alpha", "Alpha"]
    assert names_for(tags=["even", "x"]) == ["epsilon", "Gamma", "Alpha"]
    assert names_for(tags="odd") == ["delta-alpha", "beta"]
    assert names_for(created_after="1970-01-01T00:20:00Z") == ["epsilon", "delta-alpha"]
    assert names_for(is_snippet="true") == []

    env.emu.delete_template("beta")
    assert "beta" not in names_for()
    assert names_for(status="deleted") == ["beta"] and len(names_for(status="all")) == 5
    assert error(env.http.get("/prompt-templates/beta"), 404)

    for params, loc in (({"page": 0}, ["query", "page"]), ({"per_page": "x"}, ["query", "per_page"]),
                        ({"status": "gone"}, ["query", "status"]), ({"sort_by": "size"}, ["query", "sort_by"]),
                        ({"external_source": "promptops"}, ["query"])):
        assert detail(env.http.get("/prompt-templates", params=params))[0]["loc"] == loc


def test_list_by_external_id(env):
    env.publish("a", chat(("user", "x")), external_ids=[{"source": "promptops", "external_id": "a.yaml"}])
    env.publish("b", chat(("user", "y")))
    found = env.http.get("/prompt-templates", params={"external_source": "promptops", "external_id": "a.yaml"}).json()
    assert [i["prompt_name"] for i in found["items"]] == ["a"]


# ------------------------------------------------------------------------------------ labels


def test_release_label_endpoints(env):
    a = env.emu.seed("a", chat(("user", "a1")), release_labels=["prod"])
    env.emu.seed("a", chat(("user", "a2")))
    env.emu.seed("a", chat(("user", "a3")))
    b = env.emu.seed("b", chat(("user", "b1")))
    pid = a["id"]

    listed = env.http.get("/prompt-templates/a/labels").json()
    assert listed == {"release_labels": [{"release_label": "prod", "release_label_id": 1001,
                                          "prompt_version_id": 101, "prompt_version_number": 1}]}

    created = env.http.post(f"/prompts/{pid}/label", json={"prompt_version_number": 2, "name": "staging"})
    assert created.status_code == 200
    label = created.json()
    assert set(label) == {"id", "name", "prompt_id", "prompt_version_id", "created_at"}
    assert (label["name"], label["prompt_id"], label["prompt_version_id"]) == ("staging", pid, 102)
    by_id = env.http.post(f"/prompts/{pid}/label", json={"prompt_version_id": 103, "name": "canary"}).json()
    assert by_id["prompt_version_id"] == 103
    assert env.emu.labels("a") == {"prod": 1, "staging": 2, "canary": 3}
    assert env.http.post("/prompt-templates/a", json={"label": "staging"}).json()["version"] == 2

    dup = env.http.post(f"/prompts/{pid}/label", json={"prompt_version_number": 3, "name": "prod"})
    assert error(dup, 400) == "Release label already exists"
    assert env.emu.labels("a")["prod"] == 1

    moved = env.http.patch(f"/prompt-labels/{label['id']}", json={"prompt_version_number": 3})
    assert moved.status_code == 200
    assert moved.json() == {**label, "prompt_version_id": 103}  # created_at unchanged
    assert env.emu.labels("a")["staging"] == 3
    assert env.http.patch(f"/prompt-labels/{label['id']}", json={"prompt_version_id": 101}).json()[
        "prompt_version_id"] == 101

    # a version of another template: 400; unknown things: 404; malformed: 422
    assert "does not belong" in error(env.http.patch(f"/prompt-labels/{label['id']}",
                                                     json={"prompt_version_id": b["prompt_version_id"]}), 400)
    assert "does not belong" in error(env.http.post(f"/prompts/{pid}/label", json={
        "prompt_version_id": b["prompt_version_id"], "name": "x"}), 400)
    assert error(env.http.patch(f"/prompt-labels/{label['id']}", json={"prompt_version_number": 9}), 404)
    assert error(env.http.patch(f"/prompt-labels/{label['id']}", json={"prompt_version_id": 9999}), 404)
    assert error(env.http.patch(f"/prompt-labels/{label['id']}",
                                json={"prompt_version_number": 1, "prompt_version_id": 102}), 400)
    assert error(env.http.patch("/prompt-labels/77777", json={"prompt_version_number": 1}), 404)
    assert error(env.http.post("/prompts/4242/label", json={"prompt_version_number": 1, "name": "x"}), 404)
    assert error(env.http.post(f"/prompts/{pid}/label", json={"prompt_version_number": 8, "name": "x"}), 404)
    assert detail(env.http.post("/prompts/a/label", json={"prompt_version_number": 1, "name": "x"}))[0][
        "loc"] == ["path", "prompt_id"]
    assert detail(env.http.post(f"/prompts/{pid}/label", json={"name": "x"}))[0]["loc"] == ["body"]
    assert detail(env.http.post(f"/prompts/{pid}/label", json={"prompt_version_number": 1}))[0]["loc"] == [
        "body", "name"]
    assert detail(env.http.patch("/prompt-labels/abc", json={"prompt_version_number": 1}))[0]["loc"] == [
        "path", "prompt_label_id"]
    assert env.emu.labels("a") == {"prod": 1, "staging": 1, "canary": 3}

    deleted = env.http.delete(f"/prompt-labels/{label['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert error(env.http.delete(f"/prompt-labels/{label['id']}"), 404)
    assert env.emu.labels("a") == {"prod": 1, "canary": 3}
    assert [lb["release_label"] for lb in env.http.get(f"/prompt-templates/{pid}/labels").json()[
        "release_labels"]] == ["prod", "canary"]
    assert error(env.http.get("/prompt-templates/zzz/labels"), 404)


# ------------------------------------------------------------------------------------ patch


def test_patch_creates_a_version_from_a_base(env):
    template = {"type": "chat", "messages": [{"role": "system", "content": text("Be brief.")},
                                             {"role": "user", "content": text("{q}")}]}
    env.emu.seed("p", template, metadata=MODEL, release_labels=["prod"], tags=["t"])
    env.emu.seed("p", chat(("user", "v2")), metadata=MODEL)

    r = env.http.patch("/rest/prompt-templates/p", json={
        "label": "prod", "messages": {"0": {"content": text("Be kind.")}},
        "model_parameters": {"max_tokens": 10}, "commit_message": "kinder", "release_labels": ["prod", "staging"]})
    assert r.status_code == 201
    body = r.json()
    assert (body["version_number"], body["commit_message"], body["release_labels"]) == (3, "kinder", ["prod", "staging"])
    messages = body["prompt_template"]["messages"]
    assert messages[0]["content"] == stored("Be kind.") and messages[0]["role"] == "system"
    assert messages[1]["content"] == stored("{q}")  # from the labelled base (v1), not the latest (v2)
    assert body["metadata"]["model"]["parameters"] == {"temperature": 0.2, "max_tokens": 10}
    assert body["tags"] == ["t"]
    assert env.emu.labels("p") == {"prod": 3, "staging": 3}

    replaced = env.http.patch("/rest/prompt-templates/p", json={
        "version": 2, "messages": [{"role": "user", "content": text("only")}], "response_format": {"type": "json"},
        "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto"}).json()
    assert [m["content"] for m in replaced["prompt_template"]["messages"]] == [stored("only")]
    assert replaced["prompt_template"]["messages"][0]["template_format"] == "f-string"
    assert replaced["metadata"]["model"]["parameters"]["response_format"] == {"type": "json"}
    assert replaced["prompt_template"]["tool_choice"] == "auto" and replaced["commit_message"] is None
    latest = env.http.patch("/rest/prompt-templates/1", json={"tools": None}).json()  # default base: latest
    assert latest["version_number"] == 5 and latest["prompt_template"]["tools"] is None

    def patch(body):
        return env.http.patch("/rest/prompt-templates/p", json=body)

    assert "both version and label" in error(patch({"version": 1, "label": "prod"}), 400)
    assert "out of bounds" in error(patch({"messages": {"5": {"content": text("x")}}}), 400)
    assert error(patch({"content": text("x")}), 400)
    assert error(patch({"messages": None}), 400)
    assert detail(patch({"messages": {"0": {"role": "robot"}}}))[0]["loc"][-1] == "role"
    assert detail(patch({"commit_message": "x" * 73}))[0]["loc"] == ["body", "commit_message"]
    assert error(patch({"label": "nope"}), 404) and error(patch({"version": 99}), 404)
    assert error(env.http.patch("/rest/prompt-templates/missing", json={}), 404)
    env.emu.seed("bare", chat(("user", "x")))
    assert "no model" in error(env.http.patch("/rest/prompt-templates/bare", json={"model_parameters": {"t": 1}}), 400)
    completion = env.emu.seed("comp", "Hello {name}")
    assert error(env.http.patch("/rest/prompt-templates/comp", json={"messages": []}), 400)
    changed = env.http.patch(f"/rest/prompt-templates/{completion['id']}", json={"content": {"0": {"text": "Bye"}}})
    assert changed.json()["prompt_template"]["content"] == stored("Bye")
    assert [v["version_number"] for v in env.emu.versions("p")] == [1, 2, 3, 4, 5]


# ------------------------------------------------------------------------------------ A/B releases


def test_ab_release_admin_route_and_resolution(make_env):
    env = make_env(random_seed=1)
    for i in range(1, 5):
        env.emu.seed("p", chat(("user", f"v{i}")), release_labels=["prod"] if i == 1 else [])
    put = env.http.put("/__emulator/ab-releases/1/prod", json={
        "splits": [{"version": 3, "percent": 90}, {"version": 4, "percent": 10}],
        "segments": [{"match": {"company": "acme"}, "splits": [{"version": 2, "percent": 100}]}]})
    assert put.status_code == 200 and put.json()["splits"][0] == {"version": 3, "percent": 90}

    def resolve(filters=None):
        return env.http.post("/prompt-templates/p", json={"label": "prod", "metadata_filters": filters}).json()["version"]

    for user in (f"user-{n}" for n in range(40)):
        digest = hashlib.sha256(f"1:prod:{user}".encode()).digest()
        assert resolve({"user_id": user}) == (3 if int.from_bytes(digest[:8], "big") % 100 < 90 else 4)
    assert {resolve({"user_id": f"user-{n}"}) for n in range(40)} == {3, 4}
    assert resolve({"company": "acme", "user_id": "x"}) == 2  # the segment's split
    no_user = {"team": "blue"}
    expected = 3 if ab_bucket(1, "prod", no_user) < 90 else 4
    assert resolve(no_user) == expected  # keyed by the sorted JSON of the filters
    assert {resolve() for _ in range(30)} == {3, 4}  # no metadata: random (seeded)
    # a version asked for without the label is not affected
    assert env.http.post("/prompt-templates/p", json={"version": 1}).json()["version"] == 1

    # invisible to every public read
    assert env.http.get("/prompt-templates/p", params={"label": "prod"}).json()["version"] == 1
    assert env.http.get("/prompt-templates/p/labels").json()["release_labels"][0]["prompt_version_number"] == 1
    assert env.http.get("/prompt-templates", params={"label": "prod"}).json()["items"][0]["version"] == 1

    # invalid releases
    assert "sum to 100" in error(env.http.put("/__emulator/ab-releases/1/prod",
                                              json={"splits": [{"version": 3, "percent": 50}]}), 400)
    assert error(env.http.put("/__emulator/ab-releases/1/prod", json={"splits": [{"version": 9, "percent": 100}]}), 404)
    assert error(env.http.put("/__emulator/ab-releases/1/nolabel", json={"splits": [{"version": 1, "percent": 100}]}),
                 404)
    assert httpx.put(env.url + "/__emulator/ab-releases/1/prod", json={}).status_code == 401

    # deleting the release reverts the label; deleting the label drops a release
    assert env.http.delete("/__emulator/ab-releases/1/prod").status_code == 204
    assert {resolve({"user_id": f"u{n}"}) for n in range(10)} == {1}
    assert error(env.http.delete("/__emulator/ab-releases/1/prod"), 404)
    env.emu.set_ab_release("p", "prod", [{"version": 2, "percent": 100}])
    assert resolve({"user_id": "u"}) == 2 and env.emu.ab_release("p", "prod")["splits"] == [{"version": 2,
                                                                                            "percent": 100}]
    label_id = env.http.get("/prompt-templates/p/labels").json()["release_labels"][0]["release_label_id"]
    env.http.delete(f"/prompt-labels/{label_id}")
    assert env.emu.ab_release("p", "prod") is None


# ------------------------------------------------------------------------------------ limits, faults, forms


def test_rate_limit_option(make_env):
    clock = FakeClock()
    env = make_env(rate_limit=3, rate_window=10, clock=clock)
    for _ in range(3):
        assert env.http.get("/prompt-templates").status_code == 200
    limited = env.http.get("/prompt-templates")
    assert error(limited, 429) == "Rate limit exceeded" and limited.headers["Retry-After"] == "10"
    assert httpx.get(env.url + "/prompt-templates", headers={"X-API-KEY": "bad"}).status_code == 401  # not counted
    clock.now += 4
    assert env.http.get("/prompt-templates").headers["Retry-After"] == "6"
    clock.now += 6.5
    assert env.http.get("/prompt-templates").status_code == 200
    assert env.http.put("/__emulator/ab-releases/1/x", json={}).status_code == 404  # admin: not limited

    quiet = make_env(rate_limit=1, retry_after_header=False)
    assert quiet.http.get("/prompt-templates").status_code == 200
    second = quiet.http.get("/prompt-templates")
    assert error(second, 429) and "Retry-After" not in second.headers

    with pytest.raises(ValueError):
        PromptLayerEmulator(rate_limit=0)


def test_faults_use_the_platform_shape(env):
    env.emu.seed("p", chat(("user", "x")))
    env.emu.faults.fail_next(1, 502)
    assert error(env.http.get("/prompt-templates/p"), 502) == "injected fault"
    env.emu.faults.rate_limit(1, retry_after=2.5)
    r = env.http.get("/prompt-templates/p")
    assert error(r, 429) and r.headers["Retry-After"] == "3"
    env.emu.faults.drop_next(1, after=True, match="^POST /rest/")
    with pytest.raises(httpx.TransportError):
        env.publish("p", chat(("user", "y")))
    assert [v["version_number"] for v in env.emu.versions("p")] == [1, 2]  # it happened; the client never heard


def test_helpers_and_reset(env):
    seeded = env.emu.seed("p", "Hello {name}", tags=["t"])
    assert seeded["commit_message"] is None and seeded["prompt_template"]["type"] == "completion"
    assert env.emu.template("p")["latest_version"] == 1 and env.emu.template(seeded["id"])["prompt_name"] == "p"
    [version] = env.emu.versions("p")
    assert version["prompt_version_id"] == 101 and version["release_labels"] == []
    with pytest.raises(Exception) as exc:
        env.emu.seed("p", {"type": "chat"})
    assert exc.value.response.status == 422
    with pytest.raises(KeyError):
        env.emu.versions("missing")
    assert env.emu.template("missing") is None
    env.emu.reset()
    assert env.emu.names() == [] and env.emu.seed("q", "x")["id"] == 1
    assert set(CHOICES) >= {"identifier", "ab_releases", "rate_limit", "get_rendered", "patch", "list"}


def test_in_process_transport_answers_as_the_server_does(env):
    inproc = httpx.Client(transport=env.emu.transport(), base_url="http://promptlayer.test",
                          headers={"X-API-KEY": KEY})
    assert inproc.post("/rest/prompt-templates", json={"prompt_template": {"prompt_name": "f/x"}, "prompt_version": {
        "prompt_template": chat(("user", "hi"))}, "release_labels": ["prod"]}).status_code == 201
    for method, path, kwargs in (("GET", "/prompt-templates/f%2Fx", {}), ("POST", "/prompt-templates/f%2Fx", {"json": {}}),
                                 ("GET", "/prompt-templates", {"params": {"page": 0}}),
                                 ("GET", "/prompt-templates/nope", {}), ("GET", "/prompt-templates/1/labels", {})):
        a, b = inproc.request(method, path, **kwargs), env.http.request(method, path, **kwargs)
        assert (a.status_code, a.json()) == (b.status_code, b.json())


def test_command_line_server():
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulators", "promptlayer", "--port", "0",
                             "--option", "api_key=pl_cli", "--option", "rate_limit=100",
                             "--option", "answers=2025-04"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else url
        r = httpx.get(url + "/prompt-templates", headers={"X-API-KEY": "pl_cli"}, timeout=5)
        assert r.status_code == 200 and r.json()["total"] == 0
        assert httpx.get(url + "/prompt-templates", headers={"X-API-KEY": KEY}, timeout=5).status_code == 401
        published = httpx.post(url + "/rest/prompt-templates", headers={"X-API-KEY": "pl_cli"}, timeout=5, json={
            "prompt_template": {"prompt_name": "p"}, "prompt_version": {"prompt_template": chat(("user", "x"))}})
        assert published.status_code == 201 and list(published.json()) == RECORDED_ANSWER_KEYS
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_concurrent_publishes_stay_consistent(env):
    def work(worker: int) -> None:
        with httpx.Client(base_url=env.url, headers={"X-API-KEY": KEY}, timeout=10) as client:
            for i in range(10):
                r = client.post("/rest/prompt-templates", json={
                    "prompt_template": {"prompt_name": "hot"},
                    "prompt_version": {"prompt_template": chat(("user", f"{worker}-{i}"))},
                    "release_labels": ["prod"]})
                assert r.status_code == 201

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    versions = env.emu.versions("hot")
    assert [v["version_number"] for v in versions] == list(range(1, 61))
    assert env.emu.labels("hot") == {"prod": 60} and env.emu.names() == ["hot"]
