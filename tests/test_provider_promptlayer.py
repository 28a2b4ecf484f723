"""The PromptLayer provider against the PromptLayer emulator: the content mapping (completion and
chat templates, metadata.model, the 72-character commit message) and its round trip, release
labels carried by the publish and created, moved and deleted with their own endpoints, versions
made outside promptops, paging, failures, and the CLI end to end against the emulator running as
a real server, read back by the official ``promptlayer`` SDK."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from promptlayer import PromptLayer

from conftest import commit, git, init_repo, write
from emulators.promptlayer import PromptLayerEmulator
from promptops.config import Target
from promptops.digest import canonical_content, content_digest
from promptops.errors import ProviderError
from promptops.providers.base import NewVersion
from promptops.providers.promptlayer import PromptLayerProvider
from promptops.provenance import stamp
from test_provider_promptlab import FakeTime

KEY = "pl_test_9c1f44e0b2d7"
SUBJECT = "Tighten the refund tone so that customers feel heard and the answer stays short"


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("PROMPTLAYER_API_KEY", KEY)
    return KEY


def provider(emu: PromptLayerEmulator, time: FakeTime | None = None, **options) -> PromptLayerProvider:
    target = Target("pl", "promptlayer", base_url="http://promptlayer.test", concurrency=4,
                    credentials={"api_key": "PROMPTLAYER_API_KEY"}, **options)
    return PromptLayerProvider(target, transport=emu.transport(), sleep=time.sleep if time else (lambda _s: None))


def new(prompt: str, content: dict, key: str = "v", labels: tuple[str, ...] = ()) -> NewVersion:
    return NewVersion(prompt, content, content_digest(content),
                      stamp("3f2c1ab" * 5 + "abcde", SUBJECT, False, f"prompts/{prompt}.yaml", key), labels=labels)


CHAT = canonical_content(
    type="chat", template_format="jinja2",
    messages=[{"role": "system", "content": "You are {{ persona }}.\r\n  ünïcode – ok"},
              {"placeholder": "history"}, {"role": "user", "content": ""}],
    model={"provider": "openai", "name": "gpt-4o", "temperature": 0.25, "response_format": {"type": "json"}},
    tools=[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}])
TEXT = canonical_content(type="text", template_format="f-string", template="Summarize {article} in {n:d} lines")


# --------------------------------------------------------------------------- content


def test_chat_and_text_round_trip_with_the_digest_and_the_provenance(key):
    emu = PromptLayerEmulator(KEY)
    with provider(emu) as pl:
        assert pl.create_version(new("support/reply", CHAT, key="stable")) == "1"
        assert pl.create_version(new("summarize", TEXT)) == "1"
        state = pl.read()
    reply, summarize = state.prompts["support/reply"], state.prompts["summarize"]
    assert [(v.id, v.digest) for v in reply.versions] == [("1", content_digest(CHAT))]
    assert reply.versions[0].content == CHAT
    assert [(v.id, v.digest) for v in summarize.versions] == [("1", content_digest(TEXT))]
    provenance = reply.versions[0].provenance
    assert (provenance["commit"], provenance["path"], provenance["version"]) == (
        "3f2c1ab", "prompts/support/reply.yaml", "stable")


def test_the_wire_shape_is_what_the_platform_documents(key):
    emu = PromptLayerEmulator(KEY)
    with provider(emu) as pl:
        pl.create_version(new("support/reply", CHAT))
        pl.create_version(new("summarize", TEXT))
    (stored,) = emu.versions("support/reply")
    template = stored["prompt_template"]
    assert template["type"] == "chat"
    system, placeholder, user = template["messages"]
    assert system["content"] == [{"type": "text", "text": "You are {{ persona }}.\r\n  ünïcode – ok"}]
    assert (system["role"], system["template_format"], system["input_variables"]) == ("system", "jinja2", ["persona"])
    assert (placeholder["role"], placeholder["name"]) == ("placeholder", "history")
    assert user["content"] == [{"type": "text", "text": ""}]
    assert template["tools"] == CHAT["tools"]
    assert stored["metadata"] == {"model": {"provider": "openai", "name": "gpt-4o", "parameters": {
        "temperature": 0.25, "response_format": {"type": "json"}}}}
    # the commit message keeps the version key and commit whole within the API's 72 characters
    assert len(stored["commit_message"]) <= 72 and stored["commit_message"].endswith("#v]")
    (text,) = emu.versions("summarize")
    assert text["prompt_template"]["type"] == "completion"
    assert text["prompt_template"]["content"] == [{"type": "text", "text": "Summarize {article} in {n:d} lines"}]
    assert (text["prompt_template"]["template_format"], text["prompt_template"]["input_variables"]) == (
        "f-string", ["article", "n"])
    assert text["metadata"] is None


def test_versions_made_outside_promptops_are_read_without_a_stamp(key):
    emu = PromptLayerEmulator(KEY)
    emu.seed("ui-made", {"type": "chat", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "A "}, {"type": "text", "text": "B"}]},
        {"role": "user", "content": [{"type": "text", "text": "look:"}, {"type": "image_url", "image_url": {}}],
         "template_format": "jinja2"}]},
        metadata={"model": {"provider": "anthropic", "name": "claude", "parameters": {}}}, release_labels=["prod"])
    with provider(emu) as pl:
        remote = pl.read(["ui-made"]).prompts["ui-made"]
    (version,) = remote.versions
    assert version.provenance is None and remote.labels == {"prod": "1"}
    # text blocks joined; a block promptops cannot write stays visible, so no file reads as equal
    assert version.content["messages"] == [{"role": "system", "content": "A B"},
                                           {"role": "user", "content": "look:[image_url]"}]
    assert version.content["template_format"] == "f-string"  # the first message's (PromptLayer's default)
    assert version.content["model"] == {"provider": "anthropic", "name": "claude"}


# --------------------------------------------------------------------------- release labels


def test_a_publish_carries_its_labels_and_moves_them_in_the_same_request(key):
    emu = PromptLayerEmulator(KEY)
    with provider(emu) as pl:
        pl.create_version(new("p", TEXT, labels=("production", "staging")))
        before = emu.calls("POST")
        v2 = canonical_content(type="text", template_format="f-string", template="Shorter: {article}")
        assert pl.create_version(new("p", v2, labels=("production",))) == "2"
        assert emu.calls("POST") == before + 1 and emu.calls("PATCH") == 0
    assert emu.labels("p") == {"production": 2, "staging": 1}


def test_labels_are_created_moved_and_deleted_with_their_own_endpoints(key):
    emu = PromptLayerEmulator(KEY)
    with provider(emu) as pl:
        pl.create_version(new("p", TEXT, labels=("production",)))
        pl.create_version(new("p", canonical_content(type="text", template_format="f-string", template="B")))
        pl.read()
        pl.move_label("p", "staging", "2")  # new: POST /prompts/{id}/label
        pl.move_label("p", "production", "2")  # existing: PATCH /prompt-labels/{id}
        assert emu.labels("p") == {"production": 2, "staging": 2}
        pl.remove_label("p", "staging")  # DELETE /prompt-labels/{id}
        pl.remove_label("p", "staging")  # already gone: nothing to do
        assert emu.labels("p") == {"production": 2}
        remote = pl.read(["p"]).prompts["p"]
    assert remote.labels == {"production": "2"}
    assert emu.calls("POST", r"^/prompts/\d+/label$") == 1
    assert emu.calls("PATCH", r"^/prompt-labels/\d+$") == 1
    assert emu.calls("DELETE", r"^/prompt-labels/\d+$") == 1


def test_a_label_created_since_the_read_is_moved_not_duplicated(key):
    emu = PromptLayerEmulator(KEY)
    with provider(emu) as pl:
        pl.create_version(new("p", TEXT))
        pl.create_version(new("p", canonical_content(type="text", template_format="f-string", template="B")))
        pl.read()  # no labels yet
        emu.seed("p", "C", release_labels=["staging"])  # someone labels version 3 meanwhile
        pl.move_label("p", "staging", "1")
    assert emu.labels("p") == {"staging": 1}


def test_a_prompt_named_with_digits_is_addressed_by_its_id(key):
    emu = PromptLayerEmulator(KEY)
    with provider(emu) as pl:
        pl.create_version(new("other", TEXT))
        pl.create_version(new("1", canonical_content(type="text", template_format="f-string", template="one")))
        pl.move_label("1", "production", "1")
        state = pl.read()
    assert state.prompts["1"].versions[0].content["template"] == "one"
    assert state.prompts["other"].labels == {} and emu.labels("1") == {"production": 1}


# --------------------------------------------------------------------------- reading at scale, failures


def test_listing_follows_the_pages_and_each_version_is_read(key):
    emu = PromptLayerEmulator(KEY)
    for i in range(130):
        emu.seed(f"p{i:03}", f"text {i}")
    emu.seed("p000", "second")
    with provider(emu) as pl:
        state = pl.read()
        assert pl.list_names() == sorted(f"p{i:03}" for i in range(130))
    assert len(state.prompts) == 130 and [v.id for v in state.prompts["p000"].versions] == ["1", "2"]
    assert emu.calls("GET", r"^/prompt-templates$") == 2  # 100 a page; list_names reused the listing


def test_a_rate_limit_without_retry_after_backs_off_and_succeeds(key):
    emu = PromptLayerEmulator(KEY)
    time = FakeTime()
    emu.faults.fail_next(2, 429, {"success": False, "message": "Too many requests"}, match="^GET")
    with provider(emu, time) as pl:
        assert pl.read().prompts == {}
    assert len(time.sleeps) == 2  # exponential backoff: the SDK's own policy ignores Retry-After too


def test_a_validation_error_quotes_the_fields_and_a_server_error_on_publish_is_ambiguous(key):
    emu = PromptLayerEmulator(KEY)
    emu.faults.fail_next(1, 422, {"detail": [{"loc": ["body", "prompt_version", "commit_message"],
                                              "msg": "ensure this value has at most 72 characters",
                                              "type": "value_error.any_str.max_length"}]})
    with provider(emu) as pl:
        with pytest.raises(ProviderError) as err:
            pl.create_version(new("p", TEXT))
        assert "body.prompt_version.commit_message: ensure this value has at most 72 characters" in str(err.value)
        assert not err.value.ambiguous
        emu.faults.fail_next(1, 500, {"success": False, "message": "boom"})
        with pytest.raises(ProviderError) as err:
            pl.create_version(new("p", TEXT))
        assert err.value.ambiguous and emu.calls("POST", "^/rest/prompt-templates$") == 2


def test_what_promptlayer_cannot_do_is_refused(key):
    emu = PromptLayerEmulator(KEY)
    with provider(emu) as pl:
        for call in (lambda: pl.set_traffic("p", "production", {"1": 50, "2": 50}),
                     lambda: pl.delete_prompt("p"), lambda: pl.update_metadata("p", ["a"], None)):
            with pytest.raises(ProviderError, match="PromptLayer"):
                call()
    assert emu.log == []


# --------------------------------------------------------------------------- the CLI, read back by the SDK

CONFIG = """\
default_target: pl
targets:
  pl:
    provider: promptlayer
    base_url: %s
    credentials: {api_key: "${PROMPTLAYER_API_KEY}"}
"""
REPLY = """\
type: chat
template_format: f-string
model: {provider: openai, name: gpt-4o-mini, temperature: 0.2}
versions:
  stable:
    messages:
      - {role: system, content: "You help customers of {shop}."}
      - {role: user, content: "{question}"}
  concise:
    messages:
      - {role: system, content: "Be brief. You help customers of {shop}."}
      - {role: user, content: "{question}"}
labels: {production: stable, staging: concise}
"""


def _project(tmp_path: Path, url: str) -> Path:
    root = init_repo(tmp_path / "repo")
    write(root, "promptops.yaml", CONFIG % url)
    write(root, "prompts/support/reply.yaml", REPLY)
    commit(root, "Add the support reply")
    return root


def test_cli_apply_is_read_back_by_the_official_sdk_and_a_revert_moves_labels_back(cli, key, tmp_path):
    emu = PromptLayerEmulator(KEY)
    with emu.serve() as server:
        root = _project(tmp_path, server.url)
        r = cli("-C", root, "apply", "--auto-approve", "--no-color")
        assert r.code == 0, r.out + r.err
        assert "2 versions created, 2 labels moved" in r.out

        sdk = PromptLayer(api_key=KEY, base_url=server.url)
        # PromptLayer renders the f-string templates itself, with the variables the file declares
        got = sdk.templates.get("support/reply", {"label": "production",
                                                  "input_variables": {"shop": "Acme", "question": "Where is it?"}})
        assert got["version"] == 1
        texts = [m["content"][0]["text"] for m in got["prompt_template"]["messages"]]
        assert texts == ["You help customers of Acme.", "Where is it?"]
        assert got["metadata"]["model"] == {"provider": "openai", "name": "gpt-4o-mini",
                                            "parameters": {"temperature": 0.2}}
        assert sdk.templates.get("support/reply", {"label": "staging"})["version"] == 2
        assert [t["prompt_name"] for t in sdk.templates.all()] == ["support/reply"]

        # promote concise to production, then git revert: the label goes back, nothing is created
        write(root, "prompts/support/reply.yaml", REPLY.replace("production: stable", "production: concise"))
        commit(root, "Promote concise")
        assert cli("-C", root, "apply", "--auto-approve").code == 0
        assert sdk.templates.get("support/reply", {"label": "production"})["version"] == 2
        git(root, "revert", "--no-edit", "HEAD")
        r = cli("-C", root, "plan", "--no-color", "--detailed-exitcode")
        assert r.code == 2 and "0 versions to create, 1 label to move" in r.out, r.out
        assert cli("-C", root, "apply", "--auto-approve").code == 0
        assert sdk.templates.get("support/reply", {"label": "production"})["version"] == 1
        assert len(emu.versions("support/reply")) == 2
        r = cli("-C", root, "plan", "--detailed-exitcode")
        assert r.code == 0, r.out


def test_cli_a_publish_whose_answer_was_lost_is_found_by_digest_not_made_twice(cli, key, tmp_path):
    emu = PromptLayerEmulator(KEY)
    with emu.serve() as server:
        root = _project(tmp_path, server.url)
        emu.faults.drop_next(1, after=True, match="^POST /rest/prompt-templates$")
        r = cli("-C", root, "apply", "--auto-approve", "--no-color")
        assert r.code == 0, r.out + r.err
        assert len(emu.versions("support/reply")) == 2
        assert emu.labels("support/reply") == {"production": 1, "staging": 2}
        assert cli("-C", root, "plan", "--detailed-exitcode").code == 0


def test_cli_a_wrong_key_names_the_variable_and_never_prints_it(cli, key, tmp_path, monkeypatch):
    emu = PromptLayerEmulator(KEY)
    with emu.serve() as server:
        root = _project(tmp_path, server.url)
        monkeypatch.setenv("PROMPTLAYER_API_KEY", "pl_wrong_secret_value_123")
        r = cli("-C", root, "plan", "--json")
        assert r.code == 1
        assert "PROMPTLAYER_API_KEY" in r.err and "401" in r.err
        assert "pl_wrong_secret_value_123" not in r.out + r.err
        assert "Traceback" not in r.err
    json.dumps(r.err)  # printable
