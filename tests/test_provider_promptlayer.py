"""The PromptLayer provider against the PromptLayer emulator: the content mapping (completion and
chat templates, metadata.model, the 72-character commit message) and its round trip, release
labels carried by the publish and created, moved and deleted with their own endpoints, versions
made outside promptops, what the server fills in (model metadata, block keys) and publish
answers without a version number (the emulator's ``answers="2025-04"``), paging, failures, and
the CLI end to end against the emulator running as a real server, read back by the official
``promptlayer`` SDK."""
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


def publishes(emu: PromptLayerEmulator) -> list[dict]:
    """The bodies of the publishes the emulator receives from now on (what promptops sent)."""
    bodies: list[dict] = []
    route = emu.route

    def recording(request):
        if (request.method, request.path) == ("POST", "/rest/prompt-templates"):
            bodies.append(json.loads(request.body))
        return route(request)

    emu.route = recording  # type: ignore[method-assign]
    return bodies


def test_the_wire_shape_is_what_the_platform_documents(key):
    emu = PromptLayerEmulator(KEY)
    sent = publishes(emu)
    with provider(emu) as pl:
        pl.create_version(new("support/reply", CHAT))
        pl.create_version(new("summarize", TEXT))
    stored, text = (body["prompt_version"] for body in sent)
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
    assert text["prompt_template"]["type"] == "completion"
    assert text["prompt_template"]["content"] == [{"type": "text", "text": "Summarize {article} in {n:d} lines"}]
    assert (text["prompt_template"]["template_format"], text["prompt_template"]["input_variables"]) == (
        "f-string", ["article", "n"])
    assert "metadata" not in text


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


# --------------------------------------------------------------------------- what the server fills in

# A chat version promptops writes, with a model: the base the cases below change one field of
MODELLED = canonical_content(type="chat", template_format="f-string",
                             messages=[{"role": "user", "content": "Say {x}"}],
                             model={"provider": "openai", "name": "gpt-4o-mini", "temperature": 1})


def test_server_filled_model_metadata_and_block_keys_keep_the_digest_promptops_published(key):
    emu = PromptLayerEmulator(KEY)
    with provider(emu) as pl:
        pl.create_version(new("p", MODELLED))
        (version,) = pl.read(["p"]).prompts["p"].versions
    # stored as the real server stores it (2026-02 cassette): keys promptops never sent
    (stored,) = emu.versions("p")
    assert stored["metadata"]["model"]["api_type"] == "chat-completions"
    assert stored["metadata"]["model"]["display_params"] == {} and stored["metadata"]["model"]["base_model"] is None
    assert stored["prompt_template"]["messages"][0]["content"][0]["annotations"] is None
    assert version.digest == content_digest(MODELLED) and version.content == MODELLED


PLAIN = canonical_content(type="chat", template_format="f-string", messages=[{"role": "user", "content": "Say {x}"}])


def _model(**changes):
    def change(template, metadata):
        metadata["model"].update(changes)
    return MODELLED, change


def _block(**changes):  # on a version without a model, so only the block differs
    def change(template, metadata):
        template["messages"][0]["content"][0].update(changes)
    return PLAIN, change


@pytest.mark.parametrize("case, own", [
    (_model(api_type="chat-completions", display_params={}, base_model=None, model_config_display_name=None), False),
    (_model(api_type=None), False),
    (_block(id=None, annotations=None), False),
    (_model(api_type="responses"), True),
    (_model(display_params={"temperature": "1"}), True),
    (_model(base_model="gpt-4o"), True),
    (_model(model_config_display_name="Support (cheap)"), True),
    (_block(id="msg_0a1b"), True),
    (_block(annotations=[{"type": "url_citation", "url": "https://example.com"}]), True),
    (_block(cache_control={"type": "ephemeral"}), True),
], ids=["defaults", "api-type-null", "block-defaults", "api-type", "display-params", "base-model",
        "display-name", "block-id", "block-annotations", "cache-control"])
def test_only_non_default_values_make_a_version_made_in_the_web_app(key, case, own):
    """A version as promptops writes it, one field set as the web app (or the server) would: the
    server's defaults read as the file's digest; any other value gives the version a digest of its
    own, so no file reads as equal to what it cannot express."""
    content, change = case
    template, metadata = PromptLayerProvider.to_template(content), PromptLayerProvider.to_metadata(content)
    change(template, metadata)
    emu = PromptLayerEmulator(KEY)
    emu.seed("p", template, metadata=metadata)
    with provider(emu) as pl:
        (version,) = pl.read(["p"]).prompts["p"].versions
    assert (version.digest != content_digest(content)) is own
    assert version.content == content  # shown as near as promptops can


# --------------------------------------------------------------------------- publish answers without a version number


def test_a_publish_answer_without_a_version_number_is_found_by_digest_with_its_labels(key):
    emu = PromptLayerEmulator(KEY, answers="2025-04")
    with provider(emu) as pl:
        assert pl.create_version(new("p", TEXT, labels=("production", "staging"))) == "1"
        assert emu.calls("POST", "^/rest/prompt-templates$") == 1
        v2 = canonical_content(type="text", template_format="f-string", template="Shorter: {article}")
        assert pl.create_version(new("p", v2, labels=("production",))) == "2"
        assert emu.labels("p") == {"production": 2, "staging": 1}
        # one read back of the latest version per publish, one of the labels it carried
        assert emu.calls("GET", r"^/prompt-templates/1$") == 2 and emu.calls("PATCH") == 0
        assert [v.digest for v in pl.read(["p"]).prompts["p"].versions] == [content_digest(TEXT), content_digest(v2)]


def test_a_publish_answer_without_a_version_number_names_ours_when_another_landed_after_it(key):
    emu = PromptLayerEmulator(KEY, answers="2025-04")
    route = emu.route

    def someone_publishes_right_after(request):
        answer = route(request)
        if (request.method, request.path) == ("POST", "/rest/prompt-templates"):
            emu.seed("p", "someone else's", release_labels=["staging"])
        return answer

    emu.route = someone_publishes_right_after  # type: ignore[method-assign]
    with provider(emu) as pl:
        assert pl.create_version(new("p", TEXT, labels=("production",))) == "1"
        b = canonical_content(type="text", template_format="f-string", template="B")
        assert pl.create_version(new("p", b, labels=("production",))) == "3"
    assert emu.labels("p") == {"production": 3, "staging": 4}


def test_a_publish_answer_without_a_version_number_that_cannot_be_matched_is_ambiguous(key):
    emu = PromptLayerEmulator(KEY, answers="2025-04")
    route = emu.route

    def stored_otherwise(request):  # a server that keeps the text in another form than it was sent
        answer = route(request)
        if request.method == "GET" and isinstance(answer.body, dict) and "prompt_template" in answer.body:
            answer.body["prompt_template"]["content"][0]["text"] += " "
        return answer

    emu.route = stored_otherwise  # type: ignore[method-assign]
    with provider(emu) as pl:
        with pytest.raises(ProviderError) as err:
            pl.create_version(new("p", TEXT, labels=("production",)))
    assert err.value.ambiguous
    assert "answer names no version number" in str(err.value) and "no version of it has the content's digest" in \
        str(err.value) and "may have been applied" in str(err.value)
    emu.route = route  # type: ignore[method-assign]
    emu.faults.fail_next(1, 404, match=r"^GET /prompt-templates/\d+$")
    with provider(emu) as pl:
        with pytest.raises(ProviderError) as err:
            pl.create_version(new("p", TEXT))
    assert err.value.ambiguous and "reading the template back failed" in str(err.value)
    assert len(emu.versions("p")) == 2  # both landed: neither is reported as not applied


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


@pytest.mark.parametrize("malformed", [False, True], ids=["truncated", "malformed"])
def test_a_label_created_with_an_unreadable_answer_is_found_not_reported_as_failed(key, malformed):
    emu = PromptLayerEmulator(KEY)
    with provider(emu) as pl:
        pl.create_version(new("p", TEXT))
        pl.read()  # no labels yet
        emu.faults.garble_next(1, malformed=malformed, match=r"^POST /prompts/\d+/label$")
        pl.move_label("p", "staging", "1")  # created (a 2xx answer), then looked up: not an error
        pl.move_label("p", "staging", "1")  # known now: nothing to send
    assert emu.labels("p") == {"staging": 1}
    assert emu.calls("POST", r"^/prompts/\d+/label$") == 1 and emu.calls("PATCH") == 0


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
        model = got["metadata"]["model"]
        assert (model["provider"], model["name"], model["parameters"]) == ("openai", "gpt-4o-mini",
                                                                           {"temperature": 0.2})
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


def test_cli_against_publish_answers_without_version_numbers_applies_once_and_plans_clean(cli, key, tmp_path):
    """The platform answering a publish as it did in 2025-04 (no version_number, no
    prompt_version_id) and storing the model metadata it fills in: apply finds each new version by
    its digest, reports the labels the publish carried, and running it again changes nothing."""
    emu = PromptLayerEmulator(KEY, answers="2025-04")
    with emu.serve() as server:
        root = _project(tmp_path, server.url)
        r = cli("-C", root, "apply", "--auto-approve", "--no-color")
        assert r.code == 0, r.out + r.err
        assert "2 versions created, 2 labels moved" in r.out
        for _ in range(2):
            r = cli("-C", root, "apply", "--auto-approve", "--no-color")
            assert r.code == 0 and "No changes" in r.out, r.out + r.err
        assert len(emu.versions("support/reply")) == 2 and emu.calls("POST", "^/rest/prompt-templates$") == 2
        assert emu.labels("support/reply") == {"production": 1, "staging": 2}
        assert cli("-C", root, "plan", "--detailed-exitcode").code == 0

        # the official SDK reads back what promptops wrote, server-filled metadata and all
        sdk = PromptLayer(api_key=KEY, base_url=server.url)
        got = sdk.templates.get("support/reply", {"label": "production",
                                                  "input_variables": {"shop": "Acme", "question": "Where is it?"}})
        assert got["version"] == 1
        assert [m["content"][0]["text"] for m in got["prompt_template"]["messages"]] == [
            "You help customers of Acme.", "Where is it?"]
        assert got["metadata"]["model"] == {"provider": "openai", "model_config_display_name": None,
                                            "base_model": None, "name": "gpt-4o-mini",
                                            "parameters": {"temperature": 0.2}, "display_params": {},
                                            "api_type": "chat-completions"}
        assert got["llm_kwargs"]["messages"][1] == {"role": "user", "content": [{"type": "text",
                                                                                 "text": "Where is it?"}]}
        assert sdk.templates.get("support/reply", {"label": "staging"})["version"] == 2


def test_cli_a_publish_answer_without_a_version_number_and_a_failed_read_back_is_not_made_twice(cli, key, tmp_path):
    emu = PromptLayerEmulator(KEY, answers="2025-04")
    with emu.serve() as server:
        root = _project(tmp_path, server.url)
        # the read back after the first publish fails: which version it made is unknown, so apply
        # reads the prompt again, finds the version by digest and makes sure of its labels
        emu.faults.fail_next(1, 403, match=r"^GET /prompt-templates/\d+$")
        r = cli("-C", root, "apply", "--auto-approve", "--no-color")
        assert r.code == 0, r.out + r.err
        assert emu.faults.take("GET", "/prompt-templates/1") is None  # the fault was met
        assert "2 versions created, 2 labels moved" in r.out
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
