"""The Langfuse emulator, run as a real HTTP server and driven by the official ``langfuse`` SDK (5.0.4)
as an independent client: whatever the emulator answers must be something the SDK sends and parses.

Retries to keep in mind (sdk-contracts.md §1.5), so that these tests stay fast:
* every SDK call goes through the Fern HTTP client, which retries 408/409/429/5xx twice, waiting for
  ``Retry-After`` (or 1 s, 2 s); ``request_options={"max_retries": 0}`` turns that off per call;
* ``get_prompt`` also retries *every* exception (404 included) with a 0-1 s wait, so it is always
  called here with ``max_retries=0`` (and ``cache_ttl_seconds=0``, bypassing the SDK's prompt cache).
The SDK keeps one resource manager per public key for the whole process, so every test uses fresh
keys (a client for an old key would silently reuse the old server's URL and secret).
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import env_factory
from emulators.langfuse import LangfuseEmulator
from langfuse import Langfuse
from langfuse.api import AccessDeniedError, Error, NotFoundError, UnauthorizedError
from langfuse.api.core.api_error import ApiError

REPO = Path(__file__).resolve().parent.parent
PROMPTS = "/api/public/v2/prompts"
NO_RETRY = {"max_retries": 0}


def keys() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:12]
    return f"pk-lf-{tag}", f"sk-lf-{tag}"


def basic(public: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()}


class Env:
    """One emulator served on 127.0.0.1, an SDK client and a raw httpx client for it."""

    def __init__(self, **options):
        self.pk, self.sk = keys()
        self.emu = LangfuseEmulator(public_key=self.pk, secret_key=self.sk, **options)
        self.server = self.emu.serve()
        # base.py's handler writes headers and body separately; with Nagle on, every keep-alive
        # request waits ~40 ms for a delayed ACK. Per-server handler class, so this stays local.
        self.server.httpd.RequestHandlerClass.disable_nagle_algorithm = True
        self.url = self.server.url
        self.lf = Langfuse(public_key=self.pk, secret_key=self.sk, base_url=self.url, tracing_enabled=False)
        self.http = httpx.Client(base_url=self.url, headers=basic(self.pk, self.sk), timeout=5)

    def get(self, name: str, **kwargs):
        return self.lf.get_prompt(name, cache_ttl_seconds=0, max_retries=0, **kwargs)

    def close(self) -> None:
        self.http.close()
        self.lf.shutdown()
        # Server.close() waits up to serve_forever's 0.5 s poll interval; nothing here needs the port
        # closed synchronously, so close in the background and keep the suite fast.
        threading.Thread(target=self.server.close, daemon=True).start()


@pytest.fixture
def make_env():
    yield from env_factory(Env)


@pytest.fixture
def env(make_env) -> Env:
    return make_env(plan="none")


# ------------------------------------------------------------------------------------ create + get


def test_text_prompt_round_trip(env):
    created = env.lf.create_prompt(name="greet", prompt="Hi {{name}}", labels=["production"], tags=["demo"],
                                   config={"model": "gpt-4o", "temperature": 0.2}, commit_message="first")
    assert (created.version, created.labels, created.tags) == (1, ["production", "latest"], ["demo"])

    got = env.get("greet")  # no label, no version: the server's default label, production
    assert got.prompt == "Hi {{name}}" and got.compile(name="Bob") == "Hi Bob"
    assert got.config == {"model": "gpt-4o", "temperature": 0.2}
    assert got.commit_message == "first" and got.version == 1 and got.tags == ["demo"]
    assert sorted(got.labels) == ["latest", "production"]

    raw = env.http.get(f"{PROMPTS}/greet").json()  # the row plus isActive and resolutionGraph
    assert raw["isActive"] is True and raw["resolutionGraph"] is None
    assert raw["type"] == "text" and raw["createdBy"] == "API" and raw["projectId"]
    [row] = env.emu.versions("greet")
    assert row["isActive"] is None and row["commitMessage"] == "first" and row["config"]["model"] == "gpt-4o"

    # the SDK sends no "type" for text prompts and "config": {} when none is given
    env.lf.create_prompt(name="greet", prompt="Hello {{name}}")
    second = env.get("greet", version=2)
    assert second.config == {} and second.commit_message is None and second.labels == ["latest"]


def test_chat_prompt_with_placeholders_round_trip(env):
    messages = [{"role": "system", "content": "You help with {{product}}"},
                {"type": "placeholder", "name": "history"},
                {"type": "chatmessage", "role": "user", "content": "{{question}}"}]
    env.lf.create_prompt(name="support/reply", type="chat", prompt=messages, labels=["staging"],
                         config={"model": "gpt-4o"}, commit_message="tone")
    got = env.get("support/reply", label="staging")
    assert got.version == 1 and got.commit_message == "tone" and got.config == {"model": "gpt-4o"}
    compiled = got.compile(product="Widgets", question="Why?",
                           history=[{"role": "user", "content": "earlier"}])
    assert compiled == [{"role": "system", "content": "You help with Widgets"},
                        {"role": "user", "content": "earlier"}, {"role": "user", "content": "Why?"}]
    # stored as the server's zod schema leaves them: {role, content} (type stripped) and placeholders
    assert env.emu.versions("support/reply")[0]["prompt"] == [
        {"role": "system", "content": "You help with {{product}}"}, {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{question}}"}]


def test_chat_validation_collisions_and_message_type(env):
    with pytest.raises(Error) as err:  # a placeholder named like a {{variable}}
        env.lf.create_prompt(name="clash", type="chat", prompt=[
            {"role": "system", "content": "Use {{history}}"}, {"type": "placeholder", "name": "history"}])
    assert err.value.status_code == 400 and err.value.body["error"] == "InvalidRequestError"
    assert "following are not: history" in err.value.body["message"]

    # the SDK refuses {"type": "message"} itself; the emulator refuses it too (raw request)
    r = env.http.post(PROMPTS, json={"name": "m", "type": "chat",
                                     "prompt": [{"type": "message", "role": "user", "content": "x"}]})
    assert r.status_code == 400 and r.json()["message"] == "Invalid request data"
    assert r.json()["error"][0]["path"] == ["prompt", 0, "type"]

    r = env.http.post(PROMPTS, json={"name": "m", "type": "chat", "prompt": [{"type": "placeholder", "name": "1x"}]})
    assert r.status_code == 400 and r.json()["error"][0]["path"] == ["prompt", 0, "name"]
    assert "clash" not in env.emu.prompts and "m" not in env.emu.prompts


def test_create_validation_is_zod_shaped(env):
    def post(body):
        r = env.http.post(PROMPTS, json=body)
        assert r.status_code == 400, r.text
        assert r.json()["message"] == "Invalid request data"
        return r.json()["error"]

    assert post({"name": "new", "prompt": "x"})[0]["message"] == "Prompt name cannot be 'new'"
    assert post({"name": "a|b", "prompt": "x"})[0]["code"] == "invalid_format"
    assert [i["message"] for i in post({"name": "/a", "prompt": "x"})] == ["Name cannot start with a slash"]
    assert post({"name": "x" * 256, "prompt": "x"})[0]["code"] == "too_big"
    assert post({"name": "ok", "prompt": "x", "commitMessage": "c" * 501})[0]["path"] == ["commitMessage"]
    issues = post({"name": "ok", "prompt": "x", "labels": ["Prod", "a" * 37]})
    assert [(i["code"], i["path"]) for i in issues] == [("invalid_format", ["labels", 0]), ("too_big", ["labels", 1])]
    # a chat array without "type" matches neither branch of the text|chat union
    union = post({"name": "ok", "prompt": [{"role": "user", "content": "x"}]})
    assert union[0]["code"] == "invalid_union" and len(union[0]["errors"]) == 2
    env.lf.create_prompt(name="ok", prompt="x", commit_message="c" * 500, labels=["a" * 36])  # the limits
    assert env.emu.prompts.labels("ok") == {"a" * 36: 1, "latest": 1}


def test_type_change_is_refused(env):
    env.lf.create_prompt(name="t", prompt="text")
    with pytest.raises(Error) as err:
        env.lf.create_prompt(name="t", type="chat", prompt=[{"role": "user", "content": "x"}])
    assert err.value.body == {"message": "Previous versions have different prompt type. Create a new prompt "
                                         "with a different name.", "error": "InvalidRequestError"}
    assert [r["version"] for r in env.emu.versions("t")] == [1]


def test_patch_labels_are_not_format_checked(env):
    # the PATCH route's schema is z.array(z.string()) (refusing only 'latest'): any string is stored
    env.lf.create_prompt(name="p", prompt="x")
    answer = env.http.patch(f"{PROMPTS}/p/versions/1", json={"newLabels": ["Not A Label!", "a" * 40]})
    assert answer.status_code == 200
    assert env.emu.prompts.labels("p") == {"Not A Label!": 1, "a" * 40: 1, "latest": 1}
    assert env.http.patch(f"{PROMPTS}/p/versions/1", json={"newLabels": [3]}).status_code == 400
    assert env.http.patch(f"{PROMPTS}/p/versions/1", json={"newLabels": ["latest"]}).status_code == 400


# ------------------------------------------------------------------------------------ composition


def test_composition_tags_are_inlined_unless_resolve_false(env):
    env.lf.create_prompt(name="base", prompt="Be kind to {{name}} ($1 \"q\").", labels=["production"])
    env.lf.create_prompt(name="base", prompt="Be brief.", labels=["staging"])
    tagged = "Intro. @@@langfusePrompt:name=base|label=production@@@ / @@@langfusePrompt:name=base|version=2@@@"
    env.lf.create_prompt(name="reply", prompt=tagged, labels=["production"])

    # the SDK never sends resolve: it is served the inlined text
    assert env.get("reply").prompt == 'Intro. Be kind to {{name}} ($1 "q"). / Be brief.'
    served = env.http.get(f"{PROMPTS}/reply").json()
    assert served["resolutionGraph"]["root"]["name"] == "reply"
    assert [d["version"] for deps in served["resolutionGraph"]["dependencies"].values() for d in deps] == [1, 2]
    raw = env.http.get(f"{PROMPTS}/reply", params={"resolve": "false"}).json()
    assert raw["prompt"] == tagged and raw["resolutionGraph"] is None
    assert env.http.get(f"{PROMPTS}/reply", params={"resolve": "no"}).status_code == 400

    # a label move on the composed-from prompt changes what the composer serves, with no version of its own
    env.lf.update_prompt(name="base", version=2, new_labels=["production"])
    assert env.get("reply").prompt == "Intro. Be brief. / Be brief."
    assert [r["version"] for r in env.emu.versions("reply")] == [1]


def test_composition_in_chat_messages_and_nested(env):
    env.lf.create_prompt(name="leaf", prompt="leaf text", labels=["production"])
    env.lf.create_prompt(name="mid", prompt="mid(@@@langfusePrompt:name=leaf|label=production@@@)",
                         labels=["production"])
    env.lf.create_prompt(name="chat", type="chat", labels=["production"], prompt=[
        {"role": "system", "content": "S @@@langfusePrompt:name=mid|label=production@@@"}])
    assert env.http.get(f"{PROMPTS}/chat").json()["prompt"] == [
        {"role": "system", "content": "S mid(leaf text)"}]


def test_composition_is_checked_when_a_version_is_created(env):
    def create(name, prompt, **body):
        return env.http.post(PROMPTS, json={"name": name, "prompt": prompt, **body})

    missing = create("a", "@@@langfusePrompt:name=nope|label=production@@@")
    assert missing.status_code == 400
    assert missing.json() == {"message": "Prompt dependency not found: nope - label production",
                              "error": "InvalidRequestError"}
    env.lf.create_prompt(name="chatty", type="chat", prompt=[{"role": "user", "content": "x"}], labels=["production"])
    assert create("a", "@@@langfusePrompt:name=chatty|label=production@@@").json()["message"] == (
        "Prompt dependency is not a text prompt: chatty - label production")
    env.lf.create_prompt(name="self", prompt="one")
    assert create("self", "@@@langfusePrompt:name=self|version=1@@@").json()["message"].startswith(
        "Circular dependency detected involving prompt 'self'")
    chain = ["n0"]
    env.lf.create_prompt(name="n0", prompt="end", labels=["production"])
    for i in range(1, 6):
        answer = create(f"n{i}", f"@@@langfusePrompt:name=n{i - 1}|label=production@@@", labels=["production"])
        chain.append(answer.json().get("message", "ok") if answer.status_code != 201 else "ok")
    assert chain[1:5] == ["ok"] * 4 and chain[5] == "Maximum nesting depth exceeded (5)"
    # malformed tags are not dependencies: kept and served as plain text
    plain = "@@@langfusePrompt:label=x|name=y@@@ @@@langfusePrompt:name=z|version=abc@@@ @@@langfusePrompt:name=q@@@"
    assert create("plain", plain).status_code == 201
    assert env.http.get(f"{PROMPTS}/plain", params={"version": 1}).json()["prompt"] == plain
    assert "a" not in env.emu.prompts


def test_delete_refuses_to_leave_a_composition_tag_dangling(env):
    env.lf.create_prompt(name="base", prompt="v1", labels=["production"])
    env.lf.create_prompt(name="base", prompt="v2")
    env.lf.create_prompt(name="reply", prompt="@@@langfusePrompt:name=base|label=production@@@")
    env.lf.create_prompt(name="pinned", prompt="@@@langfusePrompt:name=base|version=2@@@")
    whole = env.http.delete(f"{PROMPTS}/base")
    assert whole.status_code == 400
    assert whole.json()["message"] == (
        "Other prompts are depending on prompt versions you are trying to delete:\n\n"
        "reply v1 depends on base production\npinned v1 depends on base v2\n\nPlease delete the dependent "
        "prompts first.")
    assert env.http.delete(f"{PROMPTS}/base", params={"version": 1}).status_code == 400  # production would go
    assert env.http.delete(f"{PROMPTS}/pinned").status_code == 204  # a composer may go; its tags with it
    assert env.http.delete(f"{PROMPTS}/base", params={"version": 2}).status_code == 204
    assert [r["version"] for r in env.emu.versions("base")] == [1]


# ------------------------------------------------------------------------------------ labels


def test_label_moves_union_patch_and_latest(env):
    for text, labels in (("v1", ["production"]), ("v2", ["staging"]), ("v3", ["production"])):
        env.lf.create_prompt(name="p", prompt=text, labels=labels)
    env.lf.create_prompt(name="p", prompt="v3")  # identical content is still a new version
    assert env.emu.prompts.labels("p") == {"staging": 2, "production": 3, "latest": 4}
    assert [r["labels"] for r in env.emu.versions("p")] == [[], ["staging"], ["production"], ["latest"]]

    # PATCH adds (union) and moves each added label off the other versions
    updated = env.lf.update_prompt(name="p", version=1, new_labels=["production", "canary"])
    assert updated.version == 1 and updated.labels == ["production", "canary"]
    env.lf.update_prompt(name="p", version=1, new_labels=["staging"])
    assert env.get("p", version=1).labels == ["staging", "production", "canary"]  # nothing removed
    assert env.get("p", version=2).labels == [] and env.get("p").version == 1

    with pytest.raises(Error) as err:  # latest is the server's
        env.lf.update_prompt(name="p", version=2, new_labels=["latest"])
    assert err.value.body["message"] == "Invalid request data"
    assert err.value.body["error"][0]["message"] == "Label 'latest' is always assigned to the latest prompt version"

    with pytest.raises(NotFoundError) as err:
        env.lf.update_prompt(name="p", version=9, new_labels=["x"])
    assert err.value.body == {"message": "Prompt 'p' version 9 not found in project"}

    env.lf.create_prompt(name="p", prompt="v5", labels=["latest", "canary"])  # explicit latest: allowed, no-op
    assert env.emu.prompts.labels("p") == {"staging": 1, "production": 1, "canary": 5, "latest": 5}
    assert env.get("p", label="latest").version == 5


def test_names_with_slashes_and_odd_characters(env):
    odd = "team/ü x%41"  # the SDK percent-encodes it all (%2F, %C3%BC, %20, %25); nothing is decoded twice
    env.lf.create_prompt(name=odd, prompt="odd", labels=["production"])
    assert env.get(odd).prompt == "odd"
    env.lf.update_prompt(name=odd, version=1, new_labels=["staging"])
    assert env.emu.prompts.labels(odd) == {"staging": 1, "production": 1, "latest": 1}

    env.lf.create_prompt(name="team/support/reply", prompt="x", labels=["production"])
    assert env.get("team/support/reply").name == "team/support/reply"  # sent as team%2Fsupport%2Freply
    # the routes take one path segment ([promptName]): a raw slash reaches no route at all
    assert env.http.get(f"{PROMPTS}/team/support/reply", params={"version": 1}).status_code == 404
    assert env.http.patch(f"{PROMPTS}/team/support/reply/versions/1", json={"newLabels": ["x"]}).status_code == 404
    assert env.http.delete(f"{PROMPTS}/team/support/reply").status_code == 404
    assert env.http.get(f"{PROMPTS}/team%2Fsupport%2Freply", params={"version": 1}).json()["version"] == 1
    env.lf.update_prompt(name="team/support/reply", version=1, new_labels=["staging"])
    assert env.emu.prompts.labels("team/support/reply")["staging"] == 1
    listed = env.lf.api.prompts.list(name="team/support/reply")
    assert [p.name for p in listed.data] == ["team/support/reply"]
    env.lf.api.prompts.delete("team%2Fsupport%2Freply", version=1)
    assert "team/support/reply" not in env.emu.prompts


# ------------------------------------------------------------------------------------ list


def test_pagination_over_a_hundred_prompts(env):
    names = [f"p{i:03d}" for i in range(205)]
    for name in reversed(names):
        env.emu.seed(name, f"text {name}")
    seen, page = [], 1
    while True:
        result = env.lf.api.prompts.list(page=page, limit=100)
        assert (result.meta.page, result.meta.limit, result.meta.total_items, result.meta.total_pages) == \
               (page, 100, 205, 3)
        seen += [p.name for p in result.data]
        if page >= result.meta.total_pages:
            break
        page += 1
    assert seen == names and len(result.data) == 5

    default = env.http.get(PROMPTS).json()
    assert default["meta"] == default["pagination"] == {"page": 1, "limit": 10, "totalItems": 205, "totalPages": 21}
    assert env.lf.api.prompts.list(page=30).data == []
    with pytest.raises(Error) as err:
        env.lf.api.prompts.list(limit=101)
    assert err.value.body["error"][0]["path"] == ["limit"]


def test_list_filters_apply_before_aggregation(env):
    env.lf.create_prompt(name="a", prompt="1", labels=["production"], config={"v": 1}, tags=["x"])
    env.lf.create_prompt(name="a", prompt="2", labels=["staging"], config={"v": 2})
    env.lf.create_prompt(name="b", prompt="1", tags=["y"])

    everything = env.lf.api.prompts.list()
    [a, b] = everything.data
    assert (a.name, a.versions, a.labels, a.tags, a.last_config) == ("a", [1, 2], ["latest", "production", "staging"],
                                                                    ["x"], {"v": 2})
    assert (b.name, b.type, b.versions) == ("b", "text", [1])
    assert a.last_updated_at.tzinfo is not None

    production = env.lf.api.prompts.list(label="production")
    assert [(p.name, p.versions, p.labels, p.last_config) for p in production.data] == [("a", [1], ["production"],
                                                                                         {"v": 1})]
    assert [p.name for p in env.lf.api.prompts.list(tag="y").data] == ["b"]
    assert [p.name for p in env.lf.api.prompts.list(name="b").data] == ["b"]
    assert env.http.get(PROMPTS, params={"version": 2}).json()["data"][0]["versions"] == [2]
    flt = json.dumps([{"type": "string", "column": "name", "operator": "starts with", "value": "A"},
                      {"type": "number", "column": "version", "operator": ">=", "value": 2}])
    assert [(p.name, p.versions) for p in env.lf.api.prompts.list(filter=flt).data] == [("a", [2])]


# ------------------------------------------------------------------------------------ errors


def test_wrong_credentials(make_env):
    env = make_env(plan="none")
    env.emu.seed("p", "x", labels=["production"])
    # a right public key with a wrong secret: a key the process has not seen yet (see the module doc)
    pk, sk = keys()
    env.emu.public_key, env.emu.secret_key = pk, sk
    env.http.headers.update(basic(pk, sk))
    bad = Langfuse(public_key=pk, secret_key=sk + "-wrong", base_url=env.url, tracing_enabled=False)
    try:
        with pytest.raises(UnauthorizedError) as err:
            bad.get_prompt("p", cache_ttl_seconds=0, max_retries=0)
        assert err.value.status_code == 401 and err.value.body["error"] == "UnauthorizedError"
        with pytest.raises(UnauthorizedError):
            bad.api.prompts.list()
        with pytest.raises(UnauthorizedError):
            bad.create_prompt(name="p", prompt="y")
        with pytest.raises(UnauthorizedError) as err:  # the PATCH route's 401 has no "error" key
            bad.update_prompt(name="p", version=1, new_labels=["x"])
        assert set(err.value.body) == {"message"}
        # the public key alone (no secret) is a valid key without access to prompts: 403
        bearer = {"Authorization": f"Bearer {pk}"}
        with pytest.raises(AccessDeniedError) as err:  # how the SDK reads a 403
            bad.api.prompts.list(request_options={"additional_headers": bearer})
        assert err.value.body["error"] == "ForbiddenError"
    finally:
        bad.shutdown()
    assert len(env.emu.versions("p")) == 1 and env.emu.versions("p")[0]["labels"] == ["production", "latest"]
    assert httpx.get(env.url + PROMPTS).json()["error"] == "UnauthorizedError"  # no header at all
    assert env.http.get(PROMPTS).status_code == 200  # the right pair


def test_not_found_is_parsed_by_the_sdk(env):
    with pytest.raises(NotFoundError) as err:
        env.get("missing")
    assert err.value.body == {"message": "Prompt not found: 'missing' with label 'production'",
                              "error": "LangfuseNotFoundError"}
    env.lf.create_prompt(name="there", prompt="x")
    with pytest.raises(NotFoundError) as err:
        env.get("there", version=7)
    assert err.value.body["message"] == "Prompt not found: 'there' with version 7"
    with pytest.raises(NotFoundError):
        env.get("there")  # exists, but nothing carries production
    assert env.emu.calls("GET", "/missing$") == 1  # max_retries=0: the SDK asked once
    with pytest.raises(Error):
        env.lf.api.prompts.get("there", version=1, label="latest")  # both -> 400

    assert env.http.put(PROMPTS).json() == {"message": "Method not allowed", "error": "MethodNotAllowedError"}
    assert env.http.patch(f"{PROMPTS}/there").status_code == 405
    assert env.http.get("/api/public/v2/nothing").status_code == 404


def test_patch_rate_limit_hobby_plan_with_a_fake_clock(make_env):
    now = [1000.0]
    env = make_env(plan="cloud:hobby", clock=lambda: now[0])
    env.lf.create_prompt(name="p", prompt="x")
    for i in range(30):
        now[0] += 0.5
        env.lf.update_prompt(name="p", version=1, new_labels=[f"l{i}"])
    now[0] = 1020.2  # the first of the 30 was at 1000.5: its slot frees at 1060.5
    with pytest.raises(ApiError) as err:
        env.lf.api.prompt_version.update("p", 1, new_labels=["late"], request_options=NO_RETRY)
    assert err.value.status_code == 429
    headers = {k.lower(): v for k, v in err.value.headers.items()}
    assert headers["retry-after"] == "41" and headers["x-ratelimit-limit"] == "30"
    assert headers["x-ratelimit-remaining"] == "0" and "GMT" in headers["x-ratelimit-reset"]
    body = err.value.body
    assert (body["message"], body["code"]) == ("Rate limit exceeded", "rate_limited")
    assert {k: body["details"][k] for k in ("retryAfterSeconds", "limit", "remaining")} == \
           {"retryAfterSeconds": 41, "limit": 30, "remaining": 0}
    assert body["details"]["resetAt"].endswith("Z")
    assert "late" not in env.emu.prompts.labels("p")

    # the prompts resource itself is not limited
    env.lf.create_prompt(name="p", prompt="y")
    assert env.get("p", version=2).version == 2 and env.lf.api.prompts.list().meta.total_items == 1
    # a wrong key is refused before the bucket is consulted
    assert httpx.patch(env.url + PROMPTS + "/p/versions/1", json={"newLabels": ["z"]}).status_code == 401

    now[0] = 1060.6  # one slot free again
    assert env.lf.update_prompt(name="p", version=1, new_labels=["late"]).labels[0] == "late"
    with pytest.raises(ApiError):
        env.lf.api.prompt_version.update("p", 1, new_labels=["later"], request_options=NO_RETRY)


def test_sdk_honours_retry_after_of_an_injected_429(env):
    env.lf.create_prompt(name="p", prompt="x")
    env.emu.faults.rate_limit(1, retry_after=1, match=r"^PATCH ")
    started = time.monotonic()
    updated = env.lf.update_prompt(name="p", version=1, new_labels=["production"])  # Fern retries after 1 s
    assert updated.labels == ["production", "latest"] and time.monotonic() - started >= 0.9
    assert env.emu.calls("PATCH") == 2

    env.emu.faults.rate_limit(1, retry_after=2.2)
    r = env.http.get(PROMPTS)  # too_many is overridden: injected 429s have the platform's shape
    assert r.status_code == 429 and r.headers["Retry-After"] == "3" and r.json()["code"] == "rate_limited"


def test_other_plans(make_env):
    now = [0.0]
    core = make_env(plan="core", clock=lambda: now[0])
    assert core.emu.patch_bucket.limit == 1000 and core.emu.patch_bucket.window == 60
    free = make_env(plan="none")
    free.emu.seed("p", "x")
    for i in range(40):
        assert free.http.patch(f"{PROMPTS}/p/versions/1", json={"newLabels": [f"l{i}"]}).status_code == 200
    with pytest.raises(ValueError):
        LangfuseEmulator(plan="enterprise")


# ------------------------------------------------------------------------------------ tags, delete


def test_tags_are_shared_by_all_versions(env):
    env.lf.create_prompt(name="t", prompt="1", tags=["a"])
    env.lf.create_prompt(name="t", prompt="2")  # tags null: inherit
    assert [r["tags"] for r in env.emu.versions("t")] == [["a"], ["a"]]
    env.lf.create_prompt(name="t", prompt="3", tags=["b", "c", "b"])  # rewrites every version
    assert [r["tags"] for r in env.emu.versions("t")] == [["b", "c"]] * 3
    assert env.get("t", version=1).tags == ["b", "c"]
    assert env.lf.api.prompts.list(tag="a").data == []
    env.lf.create_prompt(name="t", prompt="4", tags=[])
    assert [r["tags"] for r in env.emu.versions("t")] == [[]] * 4


def test_delete_by_version_label_and_all(env):
    for i in range(1, 5):
        env.lf.create_prompt(name="d", prompt=f"v{i}", labels=["production"] if i == 2 else [])
    env.lf.api.prompts.delete("d", version=4)  # held latest: it goes to the highest remaining version
    assert env.emu.prompts.labels("d") == {"production": 2, "latest": 3}
    assert env.get("d", label="latest").version == 3

    env.lf.api.prompts.delete("d", label="production")
    assert [r["version"] for r in env.emu.versions("d")] == [1, 3]
    with pytest.raises(NotFoundError):
        env.get("d")
    with pytest.raises(NotFoundError) as err:
        env.lf.api.prompts.delete("d", version=2, request_options=NO_RETRY)
    assert err.value.body == {"message": "Prompt not found", "error": "LangfuseNotFoundError"}
    with pytest.raises(Error):
        env.lf.api.prompts.delete("d", version=1, label="latest")

    env.lf.create_prompt(name="d", prompt="v5")  # numbering continues from the highest remaining
    assert [r["version"] for r in env.emu.versions("d")] == [1, 3, 4]
    env.lf.api.prompts.delete("d")
    assert "d" not in env.emu.prompts and env.lf.api.prompts.list().data == []
    with pytest.raises(NotFoundError):
        env.lf.api.prompts.delete("d")


# ------------------------------------------------------------------------------------ BrowserStack


def test_browserstack_flavour(make_env):
    env = make_env(flavour="browserstack", plan="none")
    r = env.http.post(PROMPTS, json={"name": "bs", "prompt": "Hi {{x}}", "labels": ["production"],
                                     "modelParams": {"model": "gpt-4o", "temperature": 0.1},
                                     "toolList": [{"name": "search"}]})
    assert r.status_code == 201
    assert r.json()["modelParams"] == {"model": "gpt-4o", "temperature": 0.1}
    assert r.json()["toolList"] == [{"name": "search"}]
    got = env.get("bs")  # the SDK keeps the extra fields (extra="allow")
    assert got.prompt == "Hi {{x}}"
    raw = env.http.get(f"{PROMPTS}/bs").json()
    assert raw["modelParams"]["model"] == "gpt-4o" and raw["toolList"] == [{"name": "search"}]
    env.lf.create_prompt(name="bs", prompt="v2")  # through the SDK (which cannot send them): defaults
    assert env.emu.versions("bs")[1]["modelParams"] == {} and env.emu.versions("bs")[1]["toolList"] == []

    for i in range(60):
        env.emu.seed(f"n{i:02d}", "x")
    listed = env.lf.api.prompts.list()
    assert listed.meta.limit == 50 and len(listed.data) == 50 and listed.meta.total_pages == 2
    assert "pagination" not in env.http.get(PROMPTS).json()

    with pytest.raises(NotFoundError) as err:  # errors are {"message"} only
        env.get("nope")
    assert err.value.body == {"message": "Prompt not found: 'nope' with label 'production'"}
    assert set(httpx.get(env.url + PROMPTS).json()) == {"message"}
    bad = env.http.post(PROMPTS, json={"name": "bs", "prompt": "x", "modelParams": [1]})
    assert bad.status_code == 400 and set(bad.json()) == {"message"} and "modelParams" in bad.json()["message"]

    plain = make_env(plan="none")  # Langfuse proper strips both fields
    created = plain.http.post(PROMPTS, json={"name": "p", "prompt": "x", "modelParams": {"a": 1}, "toolList": []})
    assert created.status_code == 201 and "modelParams" not in created.json()


# ------------------------------------------------------------------------------------ forms, faults


def test_in_process_transport_answers_as_the_server_does(env):
    inproc = httpx.Client(transport=env.emu.transport(), base_url="http://langfuse.test",
                          headers=basic(env.pk, env.sk))
    created = inproc.post(PROMPTS, json={"name": "f/x", "prompt": "hi", "labels": ["production"]})
    assert created.status_code == 201
    for path, params in ((f"{PROMPTS}/f%2Fx", {}), (f"{PROMPTS}/f/x", {"version": 1}), (PROMPTS, {}),
                         (f"{PROMPTS}/nope", {}), (PROMPTS, {"limit": 0})):
        a, b = inproc.get(path, params=params), env.http.get(path, params=params)
        assert (a.status_code, a.json()) == (b.status_code, b.json())
    assert inproc.get(PROMPTS, headers={"Authorization": "Basic eDp5"}).status_code == 401
    # and the SDK itself over the transport
    pk, sk = keys()
    env.emu.public_key, env.emu.secret_key = pk, sk
    lf = Langfuse(public_key=pk, secret_key=sk, base_url="http://langfuse.test", tracing_enabled=False,
                  httpx_client=httpx.Client(transport=env.emu.transport()))
    try:
        assert lf.get_prompt("f/x", cache_ttl_seconds=0, max_retries=0).prompt == "hi"
    finally:
        lf.shutdown()


def test_fault_injection_against_the_server(env):
    env.emu.seed("p", "x", labels=["production"])
    env.emu.faults.fail_next(1, 503, {"message": "down"})
    first = env.http.get(f"{PROMPTS}/p")
    assert (first.status_code, first.json()) == (503, {"message": "down"})
    assert env.http.get(f"{PROMPTS}/p").status_code == 200

    env.emu.faults.drop_next(1)
    with pytest.raises(httpx.RemoteProtocolError):
        env.http.get(f"{PROMPTS}/p")
    assert env.http.get(f"{PROMPTS}/p").status_code == 200

    # dropped after the create took effect: the SDK (no retry on network errors) raises, the version exists
    env.emu.faults.drop_next(1, after=True, match=r"^POST ")
    with pytest.raises(httpx.TransportError):
        env.lf.create_prompt(name="p", prompt="y")
    assert [r["version"] for r in env.emu.versions("p")] == [1, 2]


def test_command_line_server():
    pk = "pk-lf-test"
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulators", "langfuse", "--port", "0"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else url
        r = httpx.get(url + PROMPTS, headers=basic(pk, "sk-lf-test"), timeout=5)
        assert r.status_code == 200 and r.json()["meta"]["totalItems"] == 0
        assert httpx.get(url + PROMPTS, headers=basic(pk, "wrong"), timeout=5).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_concurrent_creates_and_moves_stay_consistent(env):
    def work(worker: int) -> None:
        with httpx.Client(base_url=env.url, headers=basic(env.pk, env.sk), timeout=10) as client:
            for i in range(15):
                assert client.post(PROMPTS, json={"name": "hot", "prompt": f"{worker}-{i}",
                                                  "labels": ["production"]}).status_code == 201

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = env.emu.versions("hot")
    assert [r["version"] for r in rows] == list(range(1, 121))
    assert env.emu.prompts.labels("hot") == {"production": 120, "latest": 120}
    assert sum(1 for r in rows if r["labels"]) == 1
