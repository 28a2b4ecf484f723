"""The Langfuse provider against the Langfuse emulator: content round trips, labels, retries and
ambiguous failures through the shared HTTP layer, the official SDK reading back what promptops
wrote, and the CLI end to end against the emulator running as a real server."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from conftest import commit, git, init_repo, write
from emulators.langfuse import LangfuseEmulator
from promptops.config import Target
from promptops.digest import canonical_content, content_digest
from promptops.errors import ProviderError
from promptops.providers.base import NewVersion
from promptops.providers.langfuse import LangfuseProvider
from promptops.provenance import stamp

_keys = itertools.count()


def keys() -> tuple[str, str]:
    # the official SDK keeps one client per public key for the whole process: fresh keys per test
    n = next(_keys)
    return f"pk-lf-{n}", f"sk-lf-secret-{n}"


@pytest.fixture
def creds(monkeypatch):
    pk, sk = keys()
    monkeypatch.setenv("LF_PUBLIC", pk)
    monkeypatch.setenv("LF_SECRET", sk)
    return pk, sk


def target(flavour: str | None = None, base_url: str = "http://langfuse.test") -> Target:
    return Target("lf", "langfuse", base_url=base_url, concurrency=4, flavour=flavour,
                  credentials={"public_key": "LF_PUBLIC", "secret_key": "LF_SECRET"})


def provider(emu: LangfuseEmulator, flavour: str | None = None, sleeps: list | None = None) -> LangfuseProvider:
    return LangfuseProvider(target(flavour), transport=emu.transport(),
                            sleep=(sleeps.append if sleeps is not None else lambda _s: None))


TEXT = canonical_content(type="text", template_format="mustache", template="Answer {{question}} politely.",
                         model={"name": "gpt-4o", "temperature": 0.2})
CHAT = canonical_content(type="chat", template_format="jinja2",
                         messages=[{"role": "system", "content": "You help with {{ product }}."},
                                   {"placeholder": "history"}, {"role": "user", "content": "{{ question }}"}],
                         model={"name": "gpt-4o-mini", "max_tokens": 300},
                         tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}])


def new(prompt: str, content: dict, labels: tuple[str, ...] = (), key: str = "v") -> NewVersion:
    return NewVersion(prompt, content, content_digest(content),
                      stamp("3f2c1ab" * 5 + "abcde", "Tighten the tone", False, f"prompts/{prompt}.yaml", key),
                      labels=labels)


# --------------------------------------------------------------------------- content and labels


@pytest.mark.parametrize("flavour", [None, "browserstack"])
@pytest.mark.parametrize("content", [TEXT, CHAT], ids=["text", "chat"])
def test_round_trip_keeps_the_digest(creds, flavour, content):
    emu = LangfuseEmulator(*creds, flavour=flavour or "langfuse")
    with provider(emu, flavour) as lf:
        vid = lf.create_version(new("support/reply", content, ("production",), key="stable"))
        remote = lf.read(["support/reply"]).prompts["support/reply"]
    assert vid == "1"
    (version,) = remote.versions
    assert version.digest == content_digest(content)
    assert version.content == content
    assert version.provenance == {"commit": "3f2c1ab", "dirty": False, "subject": "Tighten the tone",
                                  "path": "prompts/support/reply.yaml", "version": "stable"}
    assert remote.labels == {"latest": "1", "production": "1"}
    row = emu.versions("support/reply")[0]
    if flavour == "browserstack":
        assert row["modelParams"]["model"] == content["model"]["name"] and row["toolList"] == content["tools"]
    else:
        assert row["config"]["model"] == content["model"]["name"]


def test_labels_move_and_latest_follows_the_newest(creds):
    emu = LangfuseEmulator(*creds)
    with provider(emu) as lf:
        lf.create_version(new("a", TEXT, ("production", "staging")))
        changed = canonical_content(type="text", template_format="mustache", template="Answer {{question}}.")
        lf.create_version(new("a", changed, ("staging",)))
        assert lf.read().prompts["a"].labels == {"latest": "2", "production": "1", "staging": "2"}
        lf.move_label("a", "production", "2")
        lf.move_label("a", "staging", "1")
        assert lf.read(["a"]).prompts["a"].labels == {"latest": "2", "production": "2", "staging": "1"}
        assert lf.list_names() == ["a"]
        with pytest.raises(ProviderError, match="cannot remove a label"):
            lf.remove_label("a", "staging")
        lf.delete_prompt("a")
        assert lf.list_names() == []
        assert lf.read().prompts == {}


def test_reading_pages_through_more_than_a_hundred_prompts(creds):
    emu = LangfuseEmulator(*creds)
    for i in range(205):
        emu.seed(f"p/{i:03d}", f"prompt {i}", labels=["production"])
    with provider(emu) as lf:
        state = lf.read(["p/007", "p/204", "missing"])
        names = lf.list_names()
    assert len(names) == 205 and names[:2] == ["p/000", "p/001"]
    assert sorted(state.prompts) == ["p/007", "p/204"]
    assert state.prompts["p/204"].versions[0].content["template"] == "prompt 204"
    assert state.prompts["p/204"].versions[0].provenance is None  # made outside promptops
    assert emu.calls("GET", r"^/api/public/v2/prompts$") == 3  # 3 pages, once: the names reuse them


def test_rows_made_outside_promptops_read_without_guessing(creds):
    # config fields promptops would never write stay model parameters instead of crashing the read
    emu = LangfuseEmulator(*creds)
    emu.seed("odd", "Hi", config={"tools": 5, "template_format": "handlebars", "model": "gpt-4o"})
    emu.seed("odd", "Hi", config="not an object")
    with provider(emu) as lf:
        first, second = lf.read(["odd"]).prompts["odd"].versions
    assert first.content == canonical_content(type="text", template_format="mustache", template="Hi", model={
        "name": "gpt-4o", "tools": 5, "template_format": "handlebars"})
    assert first.provenance is None
    assert second.content == canonical_content(type="text", template_format="mustache", template="Hi")


# --------------------------------------------------------------------------- the HTTP layer


def test_rate_limited_label_moves_wait_as_told(creds):
    emu = LangfuseEmulator(*creds)
    sleeps: list[float] = []
    with provider(emu, sleeps=sleeps) as lf:
        lf.create_version(new("a", TEXT))
        emu.faults.rate_limit(2, retry_after=7, match="PATCH")
        lf.move_label("a", "production", "1")
    assert sleeps == [7, 7]
    assert emu.prompts.labels("a")["production"] == 1


def test_server_errors_on_reads_are_retried_and_on_creates_are_ambiguous(creds):
    emu = LangfuseEmulator(*creds)
    with provider(emu) as lf:
        emu.faults.fail_next(2, 503, match="GET")
        assert lf.list_names() == []
        emu.faults.fail_next(1, 500, match="POST")
        with pytest.raises(ProviderError) as err:
            lf.create_version(new("a", TEXT))
    assert err.value.ambiguous
    assert "may have taken effect" in str(err.value)


def test_a_dropped_create_that_landed_is_found_by_digest_not_created_twice(cli, creds, tmp_path):
    emu = LangfuseEmulator(*creds)
    with emu.serve() as server:
        root = project(tmp_path, server.url)
        emu.faults.drop_next(1, after=True, match="POST")  # created, but the answer is lost
        r = cli("-C", root, "apply", "-t", "lf", "--auto-approve")
        assert r.code == 0, r.err
        assert emu.calls("POST") == 2  # the lost answer was found by digest, not sent again
        assert len(emu.versions("summary")) == 2  # short and long, once each
        assert {k: v for k, v in emu.prompts.labels("summary").items() if k != "latest"} == {
            "production": 1, "staging": 2}
        assert cli("-C", root, "plan", "-t", "lf", "--detailed-exitcode").code == 0


def test_reading_one_prompt_looks_it_up_by_name_not_through_every_page_of_the_list(creds):
    emu = LangfuseEmulator(*creds)
    with provider(emu) as lf:
        for i in range(250):  # three pages of 100
            lf.create_version(new(f"other-{i}", TEXT))
        lf.create_version(new("a", TEXT))
        before = emu.calls("GET", "^/api/public/v2/prompts$")
        one = lf.read(["a"])  # what apply does right before each create
        assert emu.calls("GET", "^/api/public/v2/prompts$") - before == 1
        assert [v.id for v in one.prompts["a"].versions] == ["1"]
        assert lf.read(["missing"]).prompts == {}
        assert len(lf.read().prompts) == 251  # a full read still lists every page
    assert emu.calls("GET", "^/api/public/v2/prompts$") - before == 2 + 3


def test_wrong_credentials_name_the_variables_and_never_print_the_secret(cli, creds, tmp_path, monkeypatch):
    emu = LangfuseEmulator(*creds)
    with emu.serve() as server:
        root = project(tmp_path, server.url)
        monkeypatch.setenv("LF_SECRET", "sk-lf-wrong-and-secret")
        r = cli("-C", root, "plan", "-t", "lf")
        assert (r.code, r.out) == (1, "")
        assert r.err == ("Error: target 'lf': authentication failed (401): Invalid credentials. Confirm that you've "
                         "configured the correct host.; check the keys in LF_PUBLIC and LF_SECRET\n")
        assert "sk-lf-wrong-and-secret" not in r.err + r.out
        monkeypatch.delenv("LF_SECRET")
        r = cli("-C", root, "plan", "-t", "lf")
        assert r.code == 1 and "environment variable LF_SECRET is not set" in r.err


# --------------------------------------------------------------------------- end to end


CONFIG = """\
default_target: local
targets:
  local: {provider: local}
  lf:
    provider: langfuse
    base_url: %s
    credentials: {public_key: "${LF_PUBLIC}", secret_key: "${LF_SECRET}"}
"""

SUMMARY = """\
type: text
variables:
  text: {type: string}
versions:
  short:
    template: "Summarize in one line: {{text}}"
  long:
    template: "Summarize in three lines: {{text}}"
labels: {production: short, staging: long}
model: {name: gpt-4o-mini, temperature: 0.1}
"""


def project(tmp_path: Path, url: str) -> Path:
    root = init_repo(tmp_path / "repo")
    write(root, "promptops.yaml", CONFIG % url)
    write(root, "prompts/summary.yaml", SUMMARY)
    commit(root, "A: summary")
    return root


def test_cli_end_to_end_against_the_emulator_server_and_the_sdk_reads_it_back(cli, creds, tmp_path):
    from langfuse import Langfuse

    emu = LangfuseEmulator(*creds)
    with emu.serve() as server:
        root = project(tmp_path, server.url)
        r = cli("-C", root, "apply", "-t", "lf", "--auto-approve")
        assert r.code == 0, r.err
        assert "Apply complete! 2 versions created, 2 labels moved" in r.out
        assert emu.calls("PATCH") == 0  # the labels went with the creates
        assert cli("-C", root, "plan", "-t", "lf", "--detailed-exitcode").code == 0

        sdk = Langfuse(public_key=creds[0], secret_key=creds[1], base_url=server.url, tracing_enabled=False)
        production = sdk.get_prompt("summary", label="production", cache_ttl_seconds=0)
        assert production.prompt == "Summarize in one line: {{text}}"
        assert production.config == {"model": "gpt-4o-mini", "temperature": 0.1}
        assert production.compile(text="a long article") == "Summarize in one line: a long article"
        sha = git(root, "rev-parse", "--short=7", "HEAD").strip()
        assert production.commit_message == f"A: summary [promptops {sha} prompts/summary.yaml#short]"

        # edit, apply, revert, apply: labels go back, no third version
        write(root, "prompts/summary.yaml", SUMMARY.replace("one line", "one short line"))
        git(root, "commit", "-qam", "B: shorter")
        assert cli("-C", root, "apply", "-t", "lf", "--auto-approve").code == 0
        git(root, "revert", "--no-edit", "HEAD")
        plan = json.loads(cli("-C", root, "plan", "-t", "lf", "--json").out)
        assert [(a["kind"], a.get("label")) for a in plan["actions"]] == [("move_label", "production")]
        assert plan["actions"][0]["to"]["remote_version"] == "1"
        assert cli("-C", root, "apply", "-t", "lf", "--auto-approve").code == 0
        assert len(emu.versions("summary")) == 3
        assert sdk.get_prompt("summary", label="production", cache_ttl_seconds=0).version == 1

        # a label dropped from the file cannot be removed on Langfuse: a warning, not a silent no-op
        write(root, "prompts/summary.yaml", SUMMARY.replace("labels: {production: short, staging: long}",
                                                          "labels: {production: short}"))
        git(root, "commit", "-qam", "C: no staging")
        r = cli("-C", root, "plan", "-t", "lf", "--no-color")
        assert "staging" in r.out and "cannot remove labels" in r.out
        history = cli("-C", root, "history", "summary", "-t", "lf")
        assert history.code == 0 and f"{sha}" in history.out


COMPOSED = """\
type: text
versions:
  v1:
    template: "Reply to {{question}}. @@@langfusePrompt:name=shared/tone|label=production@@@"
labels: {production: v1}
"""


def test_a_composed_prompt_is_read_with_its_tag_verbatim_and_applied_once(cli, creds, tmp_path):
    emu = LangfuseEmulator(*creds)
    emu.seed("shared/tone", "Be kind and brief.", labels=["production"])  # made outside this project
    with emu.serve() as server:
        root = project(tmp_path, server.url)
        write(root, "prompts/reply.yaml", COMPOSED)
        commit(root, "B: composed reply")
        for _ in range(3):
            r = cli("-C", root, "apply", "-t", "lf", "--auto-approve")
            assert r.code == 0, r.err
        assert [row["prompt"] for row in emu.versions("reply")] == [
            "Reply to {{question}}. @@@langfusePrompt:name=shared/tone|label=production@@@"]
        assert cli("-C", root, "plan", "-t", "lf", "--detailed-exitcode").code == 0
        # what the platform serves is the composition, resolved
        from langfuse import Langfuse

        sdk = Langfuse(public_key=creds[0], secret_key=creds[1], base_url=server.url, tracing_enabled=False)
        assert sdk.get_prompt("reply", cache_ttl_seconds=0).prompt == "Reply to {{question}}. Be kind and brief."

        (root / "prompts" / "reply.yaml").unlink()
        r = cli("-C", root, "import", "reply", "-t", "lf")
        assert r.code == 0, r.err
        assert "@@@langfusePrompt:name=shared/tone|label=production@@@" in (root / "prompts/reply.yaml").read_text()
        assert cli("-C", root, "plan", "-t", "lf", "--detailed-exitcode").code == 0


def test_tags_go_with_the_create_and_a_tags_only_change_is_a_warning(cli, creds, tmp_path):
    from langfuse import Langfuse

    emu = LangfuseEmulator(*creds)
    with emu.serve() as server:
        root = project(tmp_path, server.url)
        write(root, "prompts/summary.yaml", SUMMARY + "tags: [support, summaries]\n")
        commit(root, "B: tags")
        r = cli("-C", root, "apply", "-t", "lf", "--auto-approve")
        assert r.code == 0, r.err
        assert "1 metadata update made" in r.out
        assert [row["tags"] for row in emu.versions("summary")] == [["summaries", "support"]] * 2
        assert emu.calls("POST") == 2 and emu.calls("PATCH") == 0  # no call of their own
        sdk = Langfuse(public_key=creds[0], secret_key=creds[1], base_url=server.url, tracing_enabled=False)
        assert sorted(sdk.get_prompt("summary", cache_ttl_seconds=0).tags) == ["summaries", "support"]
        assert cli("-C", root, "plan", "-t", "lf", "--detailed-exitcode").code == 0

        # only tags differ: Langfuse has no call for that; the plan says so instead of "No changes" silently
        write(root, "prompts/summary.yaml", SUMMARY + "tags: [support]\n")
        commit(root, "C: fewer tags")
        r = cli("-C", root, "plan", "-t", "lf", "--no-color", "--detailed-exitcode")
        assert r.code == 0, r.err
        assert ("summary: tags ['summaries', 'support'] -> ['support'] differ from the file, but provider langfuse "
                "writes them only with a new version") in " ".join(r.out.split())
        before = len(emu.log)
        assert cli("-C", root, "apply", "-t", "lf", "--auto-approve").code == 0
        assert [m for m, _ in emu.log[before:] if m != "GET"] == []

        # the next new version carries them
        write(root, "prompts/summary.yaml", SUMMARY.replace("one line", "a line") + "tags: [support]\n")
        commit(root, "D: edit")
        r = cli("-C", root, "apply", "-t", "lf", "--auto-approve")
        assert r.code == 0 and "1 version created" in r.out and "1 metadata update made" in r.out, r.out + r.err
        assert {tuple(row["tags"]) for row in emu.versions("summary")} == {("support",)}
        assert cli("-C", root, "plan", "-t", "lf", "--detailed-exitcode").code == 0


def test_a_failed_create_reports_its_tags_not_applied(cli, creds, tmp_path):
    emu = LangfuseEmulator(*creds)
    with emu.serve() as server:
        root = project(tmp_path, server.url)
        write(root, "prompts/summary.yaml", SUMMARY + "tags: [support]\n")
        commit(root, "B: tags")
        emu.faults.fail_next(5, status=400, body={"message": "Invalid request data"}, match="POST")
        r = cli("-C", root, "apply", "-t", "lf", "--auto-approve")
        assert r.code == 1
        not_applied = r.err.split("Not applied:")[1]
        assert "summary: update metadata" in not_applied


def test_a_text_prompt_turned_chat_is_a_plan_time_error_not_a_400_mid_apply(cli, creds, tmp_path):
    emu = LangfuseEmulator(*creds)
    with emu.serve() as server:
        root = project(tmp_path, server.url)
        assert cli("-C", root, "apply", "-t", "lf", "--auto-approve").code == 0
        write(root, "prompts/summary.yaml", "type: chat\nmessages:\n  - {role: user, content: 'Sum up {{text}}'}\n"
                                           "labels: [production]\n")
        commit(root, "B: chat")
        posts = emu.calls("POST")
        for command in ("plan", "apply"):
            r = cli("-C", root, command, "-t", "lf", "--auto-approve" if command == "apply" else "--no-color")
            assert r.code == 1
            assert ("prompts/summary.yaml: prompt 'summary' is a chat prompt, but target 'lf' (langfuse) holds it "
                    "as a text prompt") in r.err
            assert "give the chat prompt a new name (name:), or delete the remote prompt first" in r.err
            assert "Traceback" not in r.err
        assert emu.calls("POST") == posts  # refused before any write


def test_labels_moving_to_one_version_are_one_patch(cli, creds, tmp_path):
    emu = LangfuseEmulator(*creds)
    with emu.serve() as server:
        root = project(tmp_path, server.url)
        assert cli("-C", root, "apply", "-t", "lf", "--auto-approve").code == 0
        write(root, "prompts/summary.yaml", SUMMARY.replace("labels: {production: short, staging: long}",
                                                          "labels: {production: long, staging: long, canary: long, "
                                                          "beta: short}"))
        commit(root, "B: promote long")
        emu.faults.fail_next(20, status=403, body={"message": "forbidden", "error": "ForbiddenError"}, match="PATCH")
        failed = cli("-C", root, "apply", "-t", "lf", "--auto-approve")
        assert failed.code == 1
        not_applied = failed.err.split("Not applied:")[1]
        assert "summary: move label canary to long" in not_applied  # the batch failed as one
        assert "summary: move label production to long" in not_applied
        emu.faults.clear()
        patches = emu.calls("PATCH")
        r = cli("-C", root, "apply", "-t", "lf", "--auto-approve")
        assert r.code == 0 and "3 labels moved" in r.out, r.out + r.err
        assert emu.calls("PATCH") - patches == 2  # canary+production to v2 in one, beta to v1 in another
        assert {k: v for k, v in emu.prompts.labels("summary").items() if k != "latest"} == {
            "production": 2, "staging": 2, "canary": 2, "beta": 1}
        assert cli("-C", root, "plan", "-t", "lf", "--detailed-exitcode").code == 0


def test_traffic_in_a_file_targeted_at_langfuse_is_a_plan_time_error(cli, creds, tmp_path):
    emu = LangfuseEmulator(*creds)
    with emu.serve() as server:
        root = project(tmp_path, server.url)
        write(root, "prompts/summary.yaml", SUMMARY + "traffic:\n  production: {short: 90, long: 10}\n")
        r = cli("-C", root, "plan", "-t", "lf")
        assert r.code == 1
        assert "target 'lf' (langfuse) has no traffic splits" in r.err
        assert emu.log == []  # refused before any request


def test_rate_limits_pace_writes_on_the_client_side(creds):
    emu = LangfuseEmulator(*creds)
    sleeps: list[float] = []
    paced = Target("lf", "langfuse", base_url="http://langfuse.test", rate_limits={"write": "30/min"},
                   credentials={"public_key": "LF_PUBLIC", "secret_key": "LF_SECRET"})
    now = [100.0]
    with LangfuseProvider(paced, transport=emu.transport(), sleep=sleeps.append) as lf:
        lf.http.settings.clock = lambda: now[0]
        lf.http._pacers["write"].clock = lambda: now[0]
        lf.create_version(new("a", TEXT))
        lf.move_label("a", "production", "1")
        lf.move_label("a", "staging", "1")
        lf.list_names()  # reads are not paced by a write limit
    assert sleeps == [2.0, 4.0]  # 30/min: writes start 2 s apart; the clock did not move
