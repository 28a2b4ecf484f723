"""The PromptLab provider against the PromptLab emulator: content round trips, the deployment as
the single pointer (moves, splits ordered by version, ending a split), prompts created on first
apply, the rate limits answered with 429 + Retry-After and honoured, ambiguous failures, and the
CLI end to end against the emulator running as a real server (canary, ramp, promote, revert,
``resolve`` asking the platform)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from conftest import commit, git, init_repo, write
from emulators.promptlab import PromptLabEmulator
from promptops.config import Target
from promptops.digest import canonical_content, content_digest
from promptops.errors import ProviderError
from promptops.providers.base import NewVersion
from promptops.providers.promptlab import PromptLabProvider
from promptops.provenance import stamp

KEY = "pl_sk_test_4f9a0c2e7b"


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("PL_API_KEY", KEY)
    return KEY


class FakeTime:
    """One clock for the emulator's token buckets and the provider's sleeps: sleeping moves it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Notices(logging.Handler):
    """The retry notices the HTTP layer logs (the CLI prints them on stderr)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def target(**options) -> Target:
    return Target("lab", "promptlab", base_url="http://promptlab.test", concurrency=4,
                  credentials={"api_key": "PL_API_KEY"}, **options)


def provider(emu: PromptLabEmulator, time: FakeTime | None = None, **options) -> PromptLabProvider:
    return PromptLabProvider(target(**options), transport=emu.transport(),
                             sleep=time.sleep if time else (lambda _s: None))


def text(template: str) -> dict:
    return canonical_content(type="text", template_format="mustache", template=template)


def new(prompt: str, content: dict, key: str = "v") -> NewVersion:
    return NewVersion(prompt, content, content_digest(content),
                      stamp("3f2c1ab" * 5 + "abcde", "Tighten the tone", False, f"prompts/{prompt}.yaml", key))


# --------------------------------------------------------------------------- content and the pointer


def test_round_trip_keeps_the_digest_and_the_provenance(key):
    emu = PromptLabEmulator(KEY, plan=None)
    content = text("Hi {{name}},\r\n  ünïcode – {{#items}}{{.}}{{/items}} \n")
    with provider(emu) as lab:
        assert lab.create_version(new("support/reply", content, key="stable")) == "v1"
        remote = lab.read(["support/reply"]).prompts["support/reply"]
    (version,) = remote.versions
    assert (version.id, version.digest, version.content) == ("v1", content_digest(content), content)
    assert version.provenance == {"commit": "3f2c1ab", "dirty": False, "subject": "Tighten the tone",
                                  "path": "prompts/support/reply.yaml", "version": "stable"}
    assert remote.labels == {} and remote.traffic == {}  # created, not deployed
    stored = emu.versions("support/reply")[0]
    assert stored["content"] == content["template"]
    assert stored["content_hash"].startswith("sha256:")


def test_content_promptlab_cannot_store_is_refused_before_any_request(key):
    emu = PromptLabEmulator(KEY, plan=None)
    with provider(emu) as lab:
        for content in (canonical_content(type="text", template_format="mustache", template="x", model={"name": "m"}),
                        canonical_content(type="chat", template_format="mustache",
                                          messages=[{"role": "user", "content": "x"}]),
                        canonical_content(type="text", template_format="jinja2", template="{{ x }}")):
            with pytest.raises(ProviderError, match="PromptLab stores one mustache text template"):
                lab.create_version(new("a", content))
        with pytest.raises(ProviderError, match="PromptLab cannot store an empty template"):
            lab.create_version(new("a", text("")))
    assert emu.log == []  # refused before the prompt was created: nothing left behind


def test_the_label_is_the_deployment_and_a_split_is_one_deploy_ordered_by_version(key):
    emu = PromptLabEmulator(KEY, plan=None)
    with provider(emu) as lab:
        ids = [lab.create_version(new("a", text(f"version {i}"))) for i in range(1, 11)]
        assert ids[-1] == "v10" and emu.calls("POST", r"^/v1/prompts$") == 1  # the prompt is created once
        lab.move_label("a", "production", "v2")
        assert lab.read().prompts["a"].labels == {"production": "v2"}
        lab.set_traffic("a", "production", {"v10": 10, "v2": 90})
        # by version number, not as strings: the newest, listed last, keeps its users as it ramps
        assert emu.current_deployment("a")["traffic"] == [{"version": "v2", "weight": 90},
                                                          {"version": "v10", "weight": 10}]
        assert emu.current_deployment("a")["label"] == "production"
        remote = lab.read(["a"]).prompts["a"]
        # under a split the label reads as the last version deployed to everyone
        assert remote.traffic == {"production": {"v2": 90, "v10": 10}} and remote.labels == {"production": "v2"}

        deploys = emu.calls("POST", "/deploy$")
        lab.set_traffic("a", "production", None)  # the split ends: the label's version takes everyone
        assert emu.current_deployment("a")["traffic"] == [{"version": "v2", "weight": 100}]
        lab.move_label("a", "production", "v10")
        lab.set_traffic("a", "production", None)  # already one version: nothing to deploy
        assert emu.calls("POST", "/deploy$") == deploys + 2
        assert lab.read(["a"]).prompts["a"].labels == {"production": "v10"}


def test_a_zero_weight_split_stays_a_split(key):
    # {v1: 100, v2: 0} is a valid split in a file; reading it as a plain label would never converge
    emu = PromptLabEmulator(KEY, plan=None)
    with provider(emu) as lab:
        lab.create_version(new("a", text("one")))
        lab.create_version(new("a", text("two")))
        lab.set_traffic("a", "production", {"v1": 100, "v2": 0})
        remote = lab.read(["a"]).prompts["a"]
    assert remote.traffic == {"production": {"v1": 100, "v2": 0}} and remote.labels == {"production": "v1"}


def test_the_pointer_label_comes_from_the_target(key):
    emu = PromptLabEmulator(KEY, plan=None)
    with provider(emu, labels=("live",)) as lab:
        lab.create_version(new("a", text("one")))
        lab.move_label("a", "live", "v1")
        assert lab.read().prompts["a"].labels == {"live": "v1"}
        with pytest.raises(ProviderError, match="one pointer per prompt, mapped to label 'live'"):
            lab.move_label("a", "production", "v1")
        for call in (lambda: lab.remove_label("a", "live"), lambda: lab.delete_prompt("a"),
                     lambda: lab.update_metadata("a", ["x"], None)):
            with pytest.raises(ProviderError, match="PromptLab"):
                call()


def test_a_prompt_made_since_the_listing_is_found_not_made_twice(key):
    emu = PromptLabEmulator(KEY, plan=None)
    with provider(emu) as lab:
        assert lab.list_names() == []
        emu.add_prompt("a")  # someone else creates it after promptops listed
        assert lab.create_version(new("a", text("one"))) == "v1"
    assert len(emu.prompts) == 1 and len(emu.versions("a")) == 1


def test_reading_pages_and_reuses_the_listing_for_the_names(key):
    emu = PromptLabEmulator(KEY, plan=None)
    for i in range(205):
        emu.add_prompt(f"p/{i:03d}", [f"prompt {i}"], traffic={"v1": 100})
    with provider(emu) as lab:
        state = lab.read(["p/007", "p/204", "missing"])
        names = lab.list_names()
    assert len(names) == 205 and names[:2] == ["p/000", "p/001"]
    assert sorted(state.prompts) == ["p/007", "p/204"]
    assert state.prompts["p/204"].versions[0].content["template"] == "prompt 204"
    assert state.prompts["p/204"].versions[0].provenance is None  # made outside promptops
    assert emu.calls("GET", r"^/v1/prompts$") == 3  # 3 pages of 100, once: the names reuse them


# --------------------------------------------------------------------------- rate limits and failures


def test_the_free_plan_limits_are_answered_with_retry_after_and_honoured(key):
    time = FakeTime()
    emu = PromptLabEmulator(KEY, plan="free", clock=time)
    notices = Notices()
    logging.getLogger("promptops.http").addHandler(notices)
    with provider(emu, time) as lab:
        lab.create_version(new("a", text("one")))
        lab.create_version(new("a", text("two")))
        for i in range(7):  # 5 deploys per minute: the 6th and 7th wait for a token
            lab.move_label("a", "production", "v1" if i % 2 else "v2")
        assert lab.read(["a"]).prompts["a"].labels == {"production": "v2"}
    assert emu.calls("POST", "/deploy$") == 9  # 7 deploys + 2 refused with 429
    assert time.sleeps == [12, 12]  # Retry-After: one token per 12 s
    logging.getLogger("promptops.http").removeHandler(notices)
    assert notices.lines == [
        "target 'lab': rate limited (429) for deploy v1 100% of 'a'; retrying in 12s",
        "target 'lab': rate limited (429) for deploy v2 100% of 'a'; retrying in 12s"]


def test_pacing_per_endpoint_keeps_under_the_limits_without_a_429(key):
    time = FakeTime()
    emu = PromptLabEmulator(KEY, plan="free", clock=time)
    lab = provider(emu, time, rate_limits={"deploy": "5/min"})
    lab.http.settings.clock = time
    lab.http._pacers["deploy"].clock = time
    with lab:
        for i in range(3):
            lab.create_version(new("a", text(f"v{i}")))  # versions: not paced by the deploy limit
        for i in range(7):
            lab.move_label("a", "production", f"v{1 + i % 3}")
    assert time.sleeps == [12.0] * 6
    assert emu.calls("POST", "/deploy$") == 7  # no 429 at all


def test_rate_limited_past_the_budget_says_so(key):
    emu = PromptLabEmulator(KEY, plan=None)
    emu.faults.rate_limit(100, retry_after=60, match="POST")
    time = FakeTime()
    with provider(emu, time) as lab, pytest.raises(ProviderError) as err:
        lab.create_version(new("a", text("one")))
    assert "rate limited (429) for create prompt 'a', still after waiting 300s" in str(err.value)
    assert sum(time.sleeps) == 300


def test_server_errors_on_reads_are_retried_on_creates_ambiguous_on_deploys_retried(key):
    emu = PromptLabEmulator(KEY, plan=None)
    with provider(emu) as lab:
        emu.faults.fail_next(2, 503, match="GET")
        assert lab.list_names() == []
        lab.create_version(new("a", text("one")))
        emu.faults.fail_next(1, 500, match="POST")
        with pytest.raises(ProviderError) as err:
            lab.create_version(new("a", text("two")))
        assert err.value.ambiguous and "may have taken effect" in str(err.value)
        emu.faults.fail_next(1, 502, match="POST")
        lab.move_label("a", "production", "v1")  # the same deploy again changes nothing: retried
    assert emu.current_deployment("a")["traffic"] == [{"version": "v1", "weight": 100}]


# --------------------------------------------------------------------------- end to end


CONFIG = """\
default_target: local
targets:
  local: {provider: local}
  lab:
    provider: promptlab
    base_url: %s
    credentials: {api_key: "${PL_API_KEY}"}
"""

REPLY = """\
type: text
variables:
  name: {type: string}
versions:
  stable:
    template: "Hello {{name}}, how can I help?"
  concise:
    template: "Hi {{name}}."
labels: {production: stable}
"""


def project(tmp_path: Path, url: str) -> Path:
    root = init_repo(tmp_path / "repo")
    write(root, "promptops.yaml", CONFIG % url)
    write(root, "prompts/reply.yaml", REPLY)
    commit(root, "A: reply")
    return root


def change(root: Path, old: str, new_text: str, subject: str) -> None:
    path = root / "prompts/reply.yaml"
    body = path.read_text()
    assert old in body
    path.write_text(body.replace(old, new_text))
    git(root, "commit", "-qam", subject)


def actions(cli, root: Path) -> list[tuple]:
    plan = json.loads(cli("-C", root, "plan", "-t", "lab", "--json").out)
    return [(a["kind"], a.get("version") or a.get("label")) for a in plan["actions"]]


def test_cli_canary_ramp_promote_and_revert_against_the_server(cli, key, tmp_path):
    emu = PromptLabEmulator(KEY, plan=None)
    with emu.serve() as server:
        root = project(tmp_path, server.url)
        r = cli("-C", root, "apply", "-t", "lab", "--auto-approve")
        assert r.code == 0, r.err
        assert "Apply complete! 2 versions created, 1 label moved" in r.out
        assert emu.current_deployment("reply")["traffic"] == [{"version": "v1", "weight": 100}]
        sha = git(root, "rev-parse", "--short=7", "HEAD").strip()
        assert emu.versions("reply")[0]["message"] == f"A: reply [promptops {sha} prompts/reply.yaml#stable]"
        assert cli("-C", root, "plan", "-t", "lab", "--detailed-exitcode").code == 0

        # canary: one deploy, no 100% detour through the label
        change(root, "labels: {production: stable}",
               "labels: {production: stable}\ntraffic:\n  production: {stable: 90, concise: 10}", "B: canary")
        assert actions(cli, root) == [("set_traffic", "production")]
        assert cli("-C", root, "apply", "-t", "lab", "--auto-approve").code == 0
        assert emu.current_deployment("reply")["traffic"] == [{"version": "v1", "weight": 90},
                                                              {"version": "v2", "weight": 10}]
        assert cli("-C", root, "plan", "-t", "lab", "--detailed-exitcode").code == 0

        # resolve asks the platform, and agrees with what the platform serves
        for user in ("alice", "bob", "carol"):
            r = cli("-C", root, "resolve", "reply", "--user", user, "-t", "lab", "--json")
            assert r.code == 0, r.err
            got = json.loads(r.out)
            assert got["remote_version"] == emu.resolve_version("reply", user)
            assert got["resolved_by"] == "promptlab" and got["weights"] == {"v1": 90, "v2": 10}
        assert emu.calls("POST", "^/v1/resolve$") == 3
        r = cli("-C", root, "resolve", "reply", "--user", "alice", "-t", "lab", "--label", "staging")
        assert r.code == 1 and "mapped to label 'production'" in r.err

        change(root, "{stable: 90, concise: 10}", "{stable: 50, concise: 50}", "C: ramp")
        assert cli("-C", root, "apply", "-t", "lab", "--auto-approve").code == 0
        # moving the label under a split deploys nothing, and the plan says why
        (root / "prompts/reply.yaml").write_text(
            (root / "prompts/reply.yaml").read_text().replace("production: stable}", "production: concise}"))
        r = cli("-C", root, "plan", "-t", "lab", "--detailed-exitcode", "--no-color")
        assert r.code == 0 and ("reply: label 'production' is served by its traffic split on provider promptlab; "
                                "its version 'concise' is deployed when the file drops the split") in " ".join(r.out.split())
        git(root, "checkout", "--", "prompts/reply.yaml")
        # promote: the split ends and the label moves to concise, in one deploy
        change(root, "labels: {production: stable}\ntraffic:\n  production: {stable: 50, concise: 50}",
               "labels: {production: concise}", "D: promote")
        assert actions(cli, root) == [("move_label", "production"), ("set_traffic", "production")]
        deploys = emu.calls("POST", "/deploy$")
        assert cli("-C", root, "apply", "-t", "lab", "--auto-approve").code == 0
        assert emu.calls("POST", "/deploy$") == deploys + 1
        assert emu.current_deployment("reply")["traffic"] == [{"version": "v2", "weight": 100}]
        assert cli("-C", root, "plan", "-t", "lab", "--detailed-exitcode").code == 0

        # revert the promotion: back to the 50/50 split of existing versions, nothing created
        git(root, "revert", "--no-edit", "HEAD")
        assert actions(cli, root) == [("set_traffic", "production")]
        assert cli("-C", root, "apply", "-t", "lab", "--auto-approve").code == 0
        assert emu.current_deployment("reply")["traffic"] == [{"version": "v1", "weight": 50},
                                                              {"version": "v2", "weight": 50}]
        assert len(emu.versions("reply")) == 2
        assert cli("-C", root, "plan", "-t", "lab", "--detailed-exitcode").code == 0
        history = cli("-C", root, "history", "reply", "-t", "lab")
        assert history.code == 0 and sha in history.out
        assert emu.internal_errors == []


def test_a_dropped_create_that_landed_is_found_by_digest_not_created_twice(cli, key, tmp_path):
    emu = PromptLabEmulator(KEY, plan=None)
    with emu.serve() as server:
        root = project(tmp_path, server.url)
        emu.faults.drop_next(1, after=True, match="^POST .*/versions$")  # created, but the answer is lost
        r = cli("-C", root, "apply", "-t", "lab", "--auto-approve")
        assert r.code == 0, r.err
        assert emu.calls("POST", "/versions$") == 2  # the lost answer was found by digest, not sent again
        assert [v["content"] for v in emu.versions("reply")] == ["Hello {{name}}, how can I help?", "Hi {{name}}."]
        assert cli("-C", root, "plan", "-t", "lab", "--detailed-exitcode").code == 0


def test_a_rate_limited_apply_says_that_it_waits(cli, key, tmp_path):
    emu = PromptLabEmulator(KEY, plan=None)
    with emu.serve() as server:
        root = project(tmp_path, server.url)
        emu.faults.rate_limit(1, retry_after=1, match="/deploy$")
        r = cli("-C", root, "apply", "-t", "lab", "--auto-approve")
        assert r.code == 0, r.err
        assert ("target 'lab': rate limited (429) for deploy v1 100% of 'reply'; retrying in 1s\n") in r.err
        assert emu.calls("POST", "/deploy$") == 2


def test_what_promptlab_cannot_hold_is_a_validate_error_naming_the_target(cli, key, tmp_path):
    emu = PromptLabEmulator(KEY, plan=None)
    with emu.serve() as server:
        root = project(tmp_path, server.url)
        write(root, "prompts/chat.yaml", "messages:\n  - {role: user, content: hi}\nlabels: [production]\n")
        write(root, "prompts/model.yaml", "template: hi\nmodel: {name: gpt-4o}\nlabels: [production]\n")
        r = cli("-C", root, "validate")
        assert r.code == 1
        assert "prompts/chat.yaml:1:1: error: target 'lab' (promptlab) cannot hold chat prompts, only text" in r.err
        assert ("prompts/model.yaml:2:1: error: target 'lab' (promptlab) stores only the template, "
                "so model: cannot be represented") in r.err
        r = cli("-C", root, "plan", "-t", "lab")
        assert r.code == 1 and emu.log == []  # refused before any request


def test_wrong_key_names_the_variable_and_never_prints_it(cli, key, tmp_path, monkeypatch):
    emu = PromptLabEmulator(KEY, plan=None)
    with emu.serve() as server:
        root = project(tmp_path, server.url)
        monkeypatch.setenv("PL_API_KEY", "pl_sk_live_wrong_and_secret")
        r = cli("-C", root, "plan", "-t", "lab")
        assert (r.code, r.out) == (1, "")
        assert r.err == "Error: target 'lab': authentication failed (401): Invalid API key; check the key in PL_API_KEY\n"
        assert "wrong_and_secret" not in r.err


def test_reading_one_prompt_looks_it_up_by_name_not_through_every_page_of_the_list(key):
    emu = PromptLabEmulator(KEY, plan=None)
    with provider(emu) as lab:
        for i in range(250):  # three pages of 100
            lab.create_version(new(f"other-{i}", text(f"other {i}")))
        lab.create_version(new("a", text("A")))
        before = emu.calls("GET", "^/v1/prompts$")
        one = lab.read(["a"])  # what apply does right before each create
        assert emu.calls("GET", "^/v1/prompts$") - before == 1
        assert [v.id for v in one.prompts["a"].versions] == ["v1"]
        assert lab.read(["missing"]).prompts == {}
        assert len(lab.read().prompts) == 251  # a full read still lists every page
    assert emu.calls("GET", "^/v1/prompts$") - before == 2 + 3
