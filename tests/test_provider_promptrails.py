"""The PromptRails provider against the PromptRails emulator: the system + user mapping and its
round trip, version strings from the digest, the current version as the one pointer (set with
the create, or promoted with POST and PUT as a fallback), every envelope and error variant, a
version whose create answer was lost (found by its digest before anything is sent again, whether
or not the server refuses a taken version string), versions sharing a string, the order of Go's
trimmed timestamps, paging (100 asked, 20 silently used, no counts, ``page`` ignored), description
and delete, the workspace header, and the CLI end to end against the emulator running as a real
server, read back by the official ``promptrails`` SDK."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from promptrails import PromptRails

from conftest import commit, git, init_repo, write
from emulators.promptrails import PromptRailsEmulator
from promptops.config import Target
from promptops.digest import canonical_content, content_digest
from promptops.errors import ProviderError
from promptops.providers.base import NewVersion
from promptops.providers.promptrails import PromptRailsProvider, _oldest_first
from promptops.provenance import stamp

KEY = "pr_live_5be2a9c04d11"


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("PROMPTRAILS_API_KEY", KEY)
    return KEY


def provider(emu: PromptRailsEmulator, transport: httpx.BaseTransport | None = None, **options
             ) -> PromptRailsProvider:
    credentials = {"api_key": "PROMPTRAILS_API_KEY", **options.pop("credentials", {})}
    target = Target("pr", "promptrails", base_url="http://promptrails.test", concurrency=4,
                    credentials=credentials, **options)
    return PromptRailsProvider(target, transport=transport or emu.transport(), sleep=lambda _s: None)


class Between(httpx.MockTransport):
    """The emulator's transport with a server's quirks in between: ``query`` rewrites the query
    arguments sent, ``answer`` the decoded JSON answered; every query sent is kept in ``queries``."""

    def __init__(self, emu: PromptRailsEmulator, *, query: Callable[[dict[str, str]], dict[str, str]] = dict,
                 answer: Callable[[Any], Any] = lambda body: body):
        inner = emu.transport()
        self.queries: list[dict[str, str]] = []

        def handle(request: httpx.Request) -> httpx.Response:
            params = dict(request.url.params)
            self.queries.append(params)
            sent = httpx.Request(request.method, request.url.copy_with(params=query(params)),
                                 headers=request.headers, content=request.read())
            response = inner.handle_request(sent)
            response.read()
            if not response.content:
                return response
            return httpx.Response(response.status_code, headers={"Content-Type": "application/json"},
                                  content=json.dumps(answer(response.json())).encode())

        super().__init__(handle)


def without_counts(body: Any) -> Any:
    """A list answer without page counts (a server that sends none)."""
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        return {"data": body["data"]}
    return body


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


@pytest.mark.parametrize("reject_duplicates", [False, True])
def test_a_create_whose_answer_was_lost_is_looked_up_by_digest_before_it_is_sent_again(key, reject_duplicates):
    emu = PromptRailsEmulator(KEY, reject_duplicates=reject_duplicates)
    content = text("Hello {{ name }}")
    with provider(emu) as pr:
        pr.create_version(new("p", text("first")))
        emu.faults.drop_next(1, after=True, match="^POST .*/versions$")
        with pytest.raises(ProviderError) as err:
            pr.create_version(new("p", content, labels=("production",)))
        assert err.value.ambiguous
        # the retry reads the versions first and finds the same content there: no second POST,
        # whether or not the server would have refused the string
        assert pr.create_version(new("p", content, labels=("production",))) == content_digest(content)[7:19]
    assert [v["user_prompt"] for v in emu.versions("p")] == ["first", "Hello {{ name }}"]
    assert emu.current("p")["user_prompt"] == "Hello {{ name }}" and emu.calls("POST", "/versions$") == 2


@pytest.mark.parametrize("reject_duplicates", [False, True])
def test_a_version_string_taken_by_other_content_is_a_clear_error(key, reject_duplicates):
    emu = PromptRailsEmulator(KEY, reject_duplicates=reject_duplicates)
    content = text("Hello {{ name }}")
    emu.seed("p", "something else", version=content_digest(content)[7:19])
    with provider(emu) as pr, pytest.raises(ProviderError, match="already has a version .* with other content"):
        pr.create_version(new("p", content))
    assert len(emu.versions("p")) == 1 and emu.calls("POST") == 0  # refused before any write


@pytest.mark.parametrize("same_content", [True, False])
def test_a_string_taken_since_the_read_is_found_through_the_409_of_a_server_refusing_duplicates(key, same_content):
    emu = PromptRailsEmulator(KEY, reject_duplicates=True)
    content = text("Hello {{ name }}")
    emu.seed("p", "first")
    with provider(emu) as pr:
        pr.read()
        # another apply makes it after this session read the prompt
        emu.seed("p", "Hello {{ name }}" if same_content else "other", version=content_digest(content)[7:19],
                 current=False)
        if same_content:
            assert pr.create_version(new("p", content, labels=("production",))) == content_digest(content)[7:19]
            assert emu.current("p")["user_prompt"] == "Hello {{ name }}"
        else:
            with pytest.raises(ProviderError, match="already has a version .* with other content"):
                pr.create_version(new("p", content))
    assert len(emu.versions("p")) == 2 and emu.calls("POST", "/versions$") == 1  # the one refused with 409


def test_versions_sharing_a_string_read_back_with_unique_ids_and_the_right_current_one(key):
    emu = PromptRailsEmulator(KEY)  # accepts duplicate version strings, as promptrails-local does
    content = text("Hello {{ name }}")
    string = content_digest(content)[7:19]
    one = emu.seed("p", "Hello {{ name }}", version=string, current=False)
    other = emu.seed("p", "something else", version=string, current=False)
    two = emu.seed("p", "Hello {{ name }}", version=string, current=True)  # the same content again
    plain = emu.seed("p", "plain", version="1.0.0", current=False)
    with provider(emu) as pr:
        remote = pr.read(["p"]).prompts["p"]
        assert [v.id for v in remote.versions] == [one["id"], other["id"], two["id"], "1.0.0"]  # oldest first
        assert [v.digest for v in remote.versions] == [content_digest(content), content_digest(text("something else")),
                                                        content_digest(content), content_digest(text("plain"))]
        assert remote.labels == {"production": two["id"]}
        pr.move_label("p", "production", one["id"])  # promotes exactly that one
        assert emu.current("p")["id"] == one["id"]
        assert pr.read(["p"]).prompts["p"].labels == {"production": one["id"]}
        pr.move_label("p", "production", "1.0.0")
        assert emu.current("p")["id"] == plain["id"]
        # the content is there (twice): creating it again makes nothing, it picks the oldest, as
        # the planner does, so racing applies settle on the same one
        assert pr.create_version(new("p", content, labels=("production",))) == one["id"]
    assert emu.current("p")["id"] == one["id"] and len(emu.versions("p")) == 4 and emu.calls("POST", "/versions$") == 0


def test_a_create_without_a_read_lists_first_and_uses_the_existing_prompt(key):
    emu = PromptRailsEmulator(KEY)  # a second prompt of one name would not be refused
    pid = emu.seed_prompt("p")["id"]
    with provider(emu) as pr:
        pr.create_version(new("p", text("Hello")))
    assert emu.names() == ["p"] and emu.versions("p")[0]["prompt_id"] == pid and emu.calls("POST", "/prompts$") == 0


def test_two_prompts_of_one_name_are_a_clear_error(key):
    emu = PromptRailsEmulator(KEY)
    emu.seed_prompt("p")
    emu.seed_prompt("p")
    with provider(emu) as pr, pytest.raises(ProviderError, match="2 PromptRails prompts are named 'p'"):
        pr.read()


def test_versions_made_in_one_second_read_oldest_first_with_gos_trimmed_fractions(key):
    now = [1746713400.0]
    emu = PromptRailsEmulator(KEY, wall_clock=lambda: now[0])
    # created at :00Z, :00.1Z, :00.12Z, :01Z: as text ":00.12Z" < ":00.1Z" < ":00Z"
    for offset, name in ((0.0, "a"), (0.1, "b"), (0.12, "c"), (1.0, "d")):
        now[0] = 1746713400.0 + offset
        emu.seed("p", name, version=name, current=name == "a")
    assert [v["created_at"][16:] for v in emu.versions("p")] == [":00Z", ":00.1Z", ":00.12Z", ":01Z"]
    with provider(emu) as pr:
        remote = pr.read(["p"]).prompts["p"]
    assert [v.id for v in remote.versions] == ["a", "b", "c", "d"]


def test_version_order_reads_zones_and_falls_back_to_the_servers_order():
    rows = [{"id": "3", "created_at": "2025-05-08T14:10:00+02:00"},  # 12:10Z: the newest
            {"id": "2", "created_at": "2025-05-08T12:09:59.9Z"},
            {"id": "1", "created_at": "2025-05-08T12:09:59.000000001Z"}]
    assert [r["id"] for r in _oldest_first(rows)] == ["1", "2", "3"]
    assert [r["id"] for r in _oldest_first(list(reversed(rows)))] == ["1", "2", "3"]  # an oldest-first server
    same = [{"id": str(i), "created_at": "2025-05-08T12:00:00Z"} for i in (3, 2, 1)]
    assert [r["id"] for r in _oldest_first(same)] == ["1", "2", "3"]  # equal times: newest-first order reversed
    odd = [{"id": "2", "created_at": "yesterday"}, {"id": "1", "created_at": "2025-05-08T12:00:00Z"}]
    assert [r["id"] for r in _oldest_first(odd)] == ["1", "2"]


# --------------------------------------------------------------------------- paging


def test_the_page_size_asked_for_is_100_at_most(key):
    emu = PromptRailsEmulator(KEY, versions_paged=True)
    for i in range(3):
        emu.seed(f"p{i}", "x", version="1")
    between = Between(emu)
    with provider(emu, transport=between) as pr:
        pr.read()
    limits = [q["limit"] for q in between.queries if "limit" in q]
    assert limits and all(1 <= int(limit) <= 100 for limit in limits)


@pytest.mark.parametrize("counts", [True, False])
def test_prompts_are_all_read_when_the_server_silently_pages_by_20(key, counts):
    emu = PromptRailsEmulator(KEY)
    for i in range(105):
        emu.seed_prompt(f"p{i:03}")
    # a server whose maximum is below 100: promptrails-local answers 20 a page for a limit it does not take
    between = Between(emu, query=lambda q: {**q, "limit": "500"}, answer=(lambda b: b) if counts else without_counts)
    with provider(emu, transport=between) as pr:
        assert pr.list_names() == [f"p{i:03}" for i in range(105)]
    pages = [q["page"] for q in between.queries]
    assert pages == [str(n) for n in range(1, 7 if counts else 8)]  # 6 pages of 20; without counts, one empty


def test_versions_are_all_read_over_pages_of_100_and_of_20(key):
    emu = PromptRailsEmulator(KEY, versions_paged=True)
    for i in range(130):
        emu.seed("p", f"text {i}", version=f"1.{i}", current=i == 7)
    with provider(emu) as pr:
        remote = pr.read(["p"]).prompts["p"]
    assert [v.id for v in remote.versions] == [f"1.{i}" for i in range(130)] and remote.labels == {"production": "1.7"}
    assert emu.calls("GET", "/versions$") == 2
    silently_20 = Between(emu, query=lambda q: {**q, "limit": "500"})
    with provider(emu, transport=silently_20) as pr:
        assert [v.id for v in pr.read(["p"]).prompts["p"].versions] == [f"1.{i}" for i in range(130)]
    # the listing (one page), the prompt, then its versions: 7 pages of 20
    assert [q.get("page") for q in silently_20.queries] == ["1", None] + [str(n) for n in range(1, 8)]


def test_a_server_ignoring_the_page_argument_is_an_error_not_a_short_list(key):
    emu = PromptRailsEmulator(KEY)
    for i in range(25):
        emu.seed_prompt(f"p{i:02}")
    ignoring = Between(emu, query=lambda q: {"limit": "20"})  # every answer is page 1, "of 2 pages"
    with provider(emu, transport=ignoring) as pr, pytest.raises(ProviderError, match="page 2 of 2 .* nothing new"):
        pr.read()


def test_a_versions_list_without_counts_is_the_whole_list_in_one_request(key):
    emu = PromptRailsEmulator(KEY, envelope="meta")  # promptrails-local: every version, no meta, page ignored
    for i in range(45):
        emu.seed("p", f"text {i}", version=f"1.{i}", current=i == 44)
    with provider(emu) as pr:
        remote = pr.read(["p"]).prompts["p"]
    assert len(remote.versions) == 45 and remote.labels == {"production": "1.44"}  # read from current_version
    assert emu.calls("GET", "/versions$") == 1


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


@pytest.mark.parametrize("reject_duplicates", [False, True])
def test_an_apply_whose_create_was_dropped_after_commit_and_a_reapply_make_exactly_one_version(
        cli, key, tmp_path: Path, reject_duplicates):
    emu = PromptRailsEmulator(KEY, reject_duplicates=reject_duplicates)
    with emu.serve() as server:
        root = init_repo(tmp_path / "repo")
        write(root, "promptops.yaml", CONFIG % server.url)
        write(root, "prompts/support/reply.yaml", REPLY)
        commit(root, "Add the reply prompt")
        # the version carrying production lands, and its answer never arrives
        emu.faults.drop_next(1, after=True, match=r"^POST /api/v1/prompts/[^/]+/versions$")
        first = cli("-C", root, "apply", "--auto-approve", "--no-color")
        again = cli("-C", root, "apply", "--auto-approve", "--no-color")
        assert again.code == 0, again.out + again.err
        assert cli("-C", root, "plan", "--detailed-exitcode").code == 0

        sdk = PromptRails(api_key=KEY, base_url=server.url)
        (listed,) = sdk.prompts.list(limit=100).data
        versions = sdk.prompts.list_versions(listed.id)
        assert sorted(v.system_prompt for v in versions) == ["Be brief. You help customers of {{ shop }}.",
                                                             "You help customers of {{ shop }}."]
        assert len({v.version for v in versions}) == 2
        assert sdk.prompts.get(listed.id).current_version.system_prompt == "You help customers of {{ shop }}."
    assert first.code == 0, first.out + first.err  # the lost create was found by its digest, not made twice
    assert "2 versions created, 1 label moved" in first.out
    assert emu.calls("POST", "/versions$") == 2


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


def test_a_prompt_whose_create_timed_out_while_the_server_still_made_it_is_not_made_twice(cli, key, tmp_path: Path):
    emu = PromptRailsEmulator(KEY)
    with emu.serve() as server:
        root = init_repo(tmp_path / "repo")
        write(root, "promptops.yaml", CONFIG % server.url + "    timeout: 0.3\n")
        write(root, "prompts/support/reply.yaml", REPLY)
        commit(root, "Add the reply prompt")
        # handled after the client gave up, and after its retry (sent within 0.3 + 0.5 s of backoff)
        emu.faults.delay(1.2, 1, match=r"^POST /api/v1/prompts$")
        landed = time.monotonic() + 1.5  # by then the held create has been handled
        first = cli("-C", root, "apply", "--auto-approve", "--no-color")
        assert first.code in (0, 1), first.out + first.err
        time.sleep(max(0.0, landed - time.monotonic()))
        assert emu.names() == ["support/reply"], first.out + first.err
        again = cli("-C", root, "apply", "--auto-approve", "--no-color")
        assert again.code == 0, again.out + again.err
