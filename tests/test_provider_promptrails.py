"""The PromptRails provider against the PromptRails emulator: the system + user mapping and its
round trip, version strings from the digest, the current version as the one pointer (set with
the create, or promoted with POST and PUT as a fallback), every envelope and error variant, a
version whose create answer was lost, description and delete, the workspace header, and the CLI
end to end against the emulator running as a real server, read back by the official
``promptrails`` SDK."""
from __future__ import annotations

from pathlib import Path

import pytest
from promptrails import PromptRails

from conftest import commit, git, init_repo, write
from emulators.promptrails import PromptRailsEmulator
from promptops.config import Target
from promptops.digest import canonical_content, content_digest
from promptops.errors import ProviderError
from promptops.providers.base import NewVersion
from promptops.providers.promptrails import PromptRailsProvider
from promptops.provenance import stamp

KEY = "pr_live_5be2a9c04d11"


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("PROMPTRAILS_API_KEY", KEY)
    return KEY


def provider(emu: PromptRailsEmulator, **options) -> PromptRailsProvider:
    credentials = {"api_key": "PROMPTRAILS_API_KEY", **options.pop("credentials", {})}
    target = Target("pr", "promptrails", base_url="http://promptrails.test", concurrency=4,
                    credentials=credentials, **options)
    return PromptRailsProvider(target, transport=emu.transport(), sleep=lambda _s: None)


def new(prompt: str, content: dict, key: str = "v", labels: tuple[str, ...] = ()) -> NewVersion:
    return NewVersion(prompt, content, content_digest(content),
                      stamp("9e8d7c6" * 5 + "abcde", "Reword", False, f"prompts/{prompt}.yaml", key), labels=labels)


def chat(system: str, user: str, **extra) -> dict:
    return canonical_content(type="chat", template_format="jinja2", messages=[
        {"role": "system", "content": system}, {"role": "user", "content": user}], **extra)


def text(template: str, **extra) -> dict:
    return canonical_content(type="text", template_format="jinja2", template=template, **extra)


CHAT = chat("You are {{ persona }}.\r\n ünïcode – ok", "{% if q %}{{ q }}{% endif %}",
            model={"name": "gpt-4o", "temperature": 0.25, "nested": {"a": [1, 2.5]}},
            tools=[{"type": "function", "function": {"name": "lookup"}}])


# --------------------------------------------------------------------------- content and the pointer


def test_chat_and_text_round_trip_and_the_version_string_is_the_digest(key):
    emu = PromptRailsEmulator(KEY)
    plain = text("Summarize {{ article }}")
    with provider(emu) as pr:
        first = pr.create_version(new("support/reply", CHAT, key="stable", labels=("production",)))
        assert first == content_digest(CHAT).split(":")[1][:12]
        pr.create_version(new("summarize", plain))
        state = pr.read()
    reply = state.prompts["support/reply"]
    assert [(v.id, v.content) for v in reply.versions] == [(first, CHAT)]
    assert reply.labels == {"production": first}  # set_current with the create: one request
    assert reply.versions[0].provenance["version"] == "stable"
    assert state.prompts["summarize"].versions[0].content == plain
    assert state.prompts["summarize"].labels == {}  # created, not current
    stored = emu.versions("support/reply")[0]
    assert (stored["system_prompt"], stored["user_prompt"]) == ("You are {{ persona }}.\r\n ünïcode – ok",
                                                                "{% if q %}{{ q }}{% endif %}")
    assert stored["config"] == {"name": "gpt-4o", "temperature": 0.25, "nested": {"a": [1, 2.5]},
                                "tools": [{"type": "function", "function": {"name": "lookup"}}]}
    assert emu.calls("PUT") + emu.calls("POST", "promote") == 0
    assert emu.versions("summarize")[0]["system_prompt"] == ""


def test_promote_moves_the_one_pointer_and_rollback_promotes_the_old_version(key):
    emu = PromptRailsEmulator(KEY)
    a, b = text("A {{ x }}"), text("B {{ x }}")
    with provider(emu) as pr:
        va = pr.create_version(new("p", a, labels=("production",)))
        vb = pr.create_version(new("p", b))
        pr.move_label("p", "production", vb)
        assert emu.current("p")["version"] == vb
        pr.move_label("p", "production", va)
        assert pr.read(["p"]).prompts["p"].labels == {"production": va}
        with pytest.raises(ProviderError, match="one current version"):
            pr.move_label("p", "staging", va)
        with pytest.raises(ProviderError, match="promote another version"):
            pr.remove_label("p", "production")
    assert [v["is_current"] for v in emu.versions("p")] == [True, False]
    assert emu.calls("POST", "/promote$") == 2


@pytest.mark.parametrize("only", ["PUT", "POST"])
def test_promote_falls_back_to_put_once_and_remembers(key, only):
    emu = PromptRailsEmulator(KEY, promote_methods=only)
    with provider(emu) as pr:
        va = pr.create_version(new("p", text("A")))
        vb = pr.create_version(new("p", text("B")))
        pr.move_label("p", "production", va)
        pr.move_label("p", "production", vb)
    assert emu.current("p")["version"] == vb
    if only == "PUT":  # one refused POST, then PUT for the rest of the session
        assert (emu.calls("POST", "/promote$"), emu.calls("PUT", "/promote$")) == (1, 2)
    else:
        assert (emu.calls("POST", "/promote$"), emu.calls("PUT", "/promote$")) == (2, 0)


@pytest.mark.parametrize("envelope", ["union", "pagination", "meta", "v2"])
@pytest.mark.parametrize("errors", ["flat", "nested"])
def test_every_envelope_and_error_variant_is_read(key, envelope, errors):
    emu = PromptRailsEmulator(KEY, envelope=envelope, errors=errors)
    for i in range(105):  # more than one page of 100
        emu.seed(f"p{i:03}", f"text {i}", version="1.0.0", current=i % 2 == 0)
    with provider(emu) as pr:
        state = pr.read()
        assert len(state.prompts) == 105
        assert state.prompts["p000"].labels == {"production": "1.0.0"} and state.prompts["p001"].labels == {}
        with emu.lock:  # deleted in the platform since the read
            del emu.prompts[emu.prompt_id("p000")]
        with pytest.raises(ProviderError) as err:
            pr.update_metadata("p000", (), "gone")
    # the server's own words reach the message, whichever error shape it used
    assert "failed with 404 Not Found: prompt not found" in str(err.value)


def test_a_create_whose_answer_was_lost_is_found_by_its_version_string(key):
    emu = PromptRailsEmulator(KEY)
    content = text("Hello {{ name }}")
    with provider(emu) as pr:
        pr.create_version(new("p", text("first")))
        emu.faults.drop_next(1, after=True, match="^POST .*/versions$")
        with pytest.raises(ProviderError) as err:
            pr.create_version(new("p", content, labels=("production",)))
        assert err.value.ambiguous
        # the retry hits 409 (the string is taken) and finds the same content there
        assert pr.create_version(new("p", content, labels=("production",))) == content_digest(content)[7:19]
    assert len(emu.versions("p")) == 2 and emu.current("p")["user_prompt"] == "Hello {{ name }}"


def test_a_version_string_taken_by_other_content_is_a_clear_error(key):
    emu = PromptRailsEmulator(KEY)
    content = text("Hello {{ name }}")
    emu.seed("p", "something else", version=content_digest(content)[7:19])
    with provider(emu) as pr, pytest.raises(ProviderError, match="already has a version .* with other content"):
        pr.create_version(new("p", content))


def test_versions_made_outside_promptops_keep_their_strings(key):
    emu = PromptRailsEmulator(KEY)
    emu.seed("p", "Hi {{ n }}", "Sys", version="1.0.0", current=False, temperature=0.7)
    emu.seed("p", "Hi again", version="1.1.0", current=True)
    with provider(emu) as pr:
        remote = pr.read(["p"]).prompts["p"]
    assert [v.id for v in remote.versions] == ["1.0.0", "1.1.0"]  # oldest first
    assert remote.versions[0].content == chat("Sys", "Hi {{ n }}")  # config only: older fields are not read
    assert remote.versions[0].provenance is None and remote.labels == {"production": "1.1.0"}


def test_the_description_is_patched_and_a_prompt_is_deleted(key):
    emu = PromptRailsEmulator(KEY)
    with provider(emu) as pr:
        pr.create_version(new("p", text("A")))
        pr.update_metadata("p", (), "Summaries for the weekly digest")
        assert pr.read(["p"]).prompts["p"].description == "Summaries for the weekly digest"
        pr.delete_prompt("p")
        pr.delete_prompt("p")  # gone already: nothing to do
        assert pr.list_names() == [] and pr.read().prompts == {}
    assert emu.names() == [] and emu.calls("DELETE") == 1


def test_the_workspace_header_is_sent_and_a_wrong_one_is_refused(key, monkeypatch):
    emu = PromptRailsEmulator(KEY)
    other = emu.add_key("pr_live_other_ws")  # a second workspace
    monkeypatch.setenv("PR_WORKSPACE", emu.workspace_id)
    with provider(emu, credentials={"workspace_id": "PR_WORKSPACE"}) as pr:
        assert pr.read().prompts == {}
    monkeypatch.setenv("PR_WORKSPACE", other)
    with provider(emu, credentials={"workspace_id": "PR_WORKSPACE"}) as pr:
        with pytest.raises(ProviderError, match="403") as err:
            pr.read()
    assert KEY not in str(err.value)


def test_content_promptrails_cannot_store_is_refused_before_any_request(key):
    emu = PromptRailsEmulator(KEY)
    refused = [
        canonical_content(type="chat", template_format="jinja2", messages=[{"role": "user", "content": "x"}]),
        chat("", "user only in a chat"),
        text(""),
        canonical_content(type="text", template_format="mustache", template="{{x}}"),
        canonical_content(type="chat", template_format="jinja2", messages=[
            {"role": "system", "content": "s"}, {"placeholder": "history"}, {"role": "user", "content": "u"}]),
    ]
    with provider(emu) as pr:
        for content in refused:
            with pytest.raises(ProviderError, match="target 'pr'"):
                pr.create_version(new("p", content))
    assert emu.log == []


# --------------------------------------------------------------------------- the CLI, read back by the SDK

CONFIG = """\
default_target: pr
targets:
  pr:
    provider: promptrails
    base_url: %s
    credentials: {api_key: "${PROMPTRAILS_API_KEY}"}
"""
REPLY = """\
type: chat
template_format: jinja2
description: Answers customer questions
model: {name: gpt-4o-mini, temperature: 0.2}
versions:
  stable:
    messages:
      - {role: system, content: "You help customers of {{ shop }}."}
      - {role: user, content: "{{ question }}"}
  concise:
    messages:
      - {role: system, content: "Be brief. You help customers of {{ shop }}."}
      - {role: user, content: "{{ question }}"}
labels: {production: stable}
"""


def test_cli_apply_is_read_back_by_the_official_sdk_and_revert_and_prune_work(cli, key, tmp_path: Path):
    emu = PromptRailsEmulator(KEY)
    with emu.serve() as server:
        root = init_repo(tmp_path / "repo")
        write(root, "promptops.yaml", CONFIG % server.url)
        write(root, "prompts/support/reply.yaml", REPLY)
        write(root, "prompts/old.yaml", "type: text\ntemplate_format: jinja2\ntemplate: Old {{ x }}\n")
        commit(root, "Add prompts")
        r = cli("-C", root, "apply", "--auto-approve", "--no-color")
        assert r.code == 0, r.out + r.err
        assert "3 versions created, 1 label moved" in r.out

        sdk = PromptRails(api_key=KEY, base_url=server.url)
        listed = {p.name: p for p in sdk.prompts.list(limit=100).data}
        reply = sdk.prompts.get(listed["support/reply"].id)
        assert reply.description == "Answers customer questions"
        assert (reply.current_version.system_prompt, reply.current_version.user_prompt) == (
            "You help customers of {{ shop }}.", "{{ question }}")
        assert reply.current_version.config == {"name": "gpt-4o-mini", "temperature": 0.2}
        assert len(sdk.prompts.list_versions(reply.id)) == 2
        stable = reply.current_version.version

        # promote concise, then git revert: the old version is promoted again, nothing created
        write(root, "prompts/support/reply.yaml", REPLY.replace("production: stable", "production: concise"))
        commit(root, "Promote concise")
        assert cli("-C", root, "apply", "--auto-approve").code == 0
        assert sdk.prompts.get(reply.id).current_version.system_prompt.startswith("Be brief.")
        git(root, "revert", "--no-edit", "HEAD")
        assert cli("-C", root, "apply", "--auto-approve").code == 0
        assert sdk.prompts.get(reply.id).current_version.version == stable
        assert len(sdk.prompts.list_versions(reply.id)) == 2

        # a removed file's prompt is deleted with --prune (PromptRails can delete prompts)
        git(root, "rm", "-q", "prompts/old.yaml")
        commit(root, "Drop the old prompt")
        r = cli("-C", root, "apply", "--auto-approve", "--prune", "--no-color")
        assert r.code == 0, r.out + r.err
        assert "1 prompt deleted" in r.out
        assert [p.name for p in sdk.prompts.list().data] == ["support/reply"]
        assert cli("-C", root, "plan", "--prune", "--detailed-exitcode").code == 0
