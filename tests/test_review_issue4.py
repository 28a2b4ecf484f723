"""Review of the PromptLab provider and the shared HTTP changes (git diff c311a81 -- promptops/).

Each test but the last pins the fix of a defect the review found (one-version splits converging,
a 404 on a listed prompt, listings following total, redacted unexpected answers, malformed answers
as remote errors, 429s keeping the retries of server errors, announced pacing waits, resolve
advice); the last pins subtle behaviour that was correct but untested. Everything runs against tests/emulators/promptlab.py,
in-process (``emu.transport()``) or as a real server (``emu.serve()``) behind the real CLI.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from conftest import git, write
from emulators.promptlab import PromptLabEmulator
from promptops.config import Target
from promptops.digest import canonical_content, content_digest
from promptops.providers.base import NewVersion
from promptops.providers.promptlab import PromptLabProvider
from promptops.provenance import stamp
from test_provider_promptlab import FakeTime, Notices

KEY = "pl_sk_test_review4_5c1d9e"

CONFIG = """\
default_target: lab
targets:
  lab:
    provider: promptlab
    base_url: %s
    credentials: {api_key: "${PL_API_KEY}"}
"""


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("PL_API_KEY", KEY)
    return KEY


def project(tmp_path: Path, url: str, files: dict[str, str]) -> Path:
    root = tmp_path / "repo"
    write(root, "promptops.yaml", CONFIG % url)
    write(root, ".gitignore", ".promptops/\n")
    for rel, text in files.items():
        write(root, rel, text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "A: prompts")
    return root


def target(**options) -> Target:
    return Target("lab", "promptlab", base_url="http://promptlab.test", concurrency=4,
                  credentials={"api_key": "PL_API_KEY"}, **options)


def text(template: str) -> dict:
    return canonical_content(type="text", template_format="mustache", template=template)


def new(prompt: str, content: dict) -> NewVersion:
    return NewVersion(prompt, content, content_digest(content),
                      stamp("3f2c1ab" * 5 + "abcde", "subject", False, f"prompts/{prompt}.yaml", "v"))


# --------------------------------------------------------------------------- non-convergence


ONE_VERSION_SPLIT = """\
type: text
versions:
  stable: {template: "Hello {{name}}"}
  canary: {template: "Hi {{name}}"}
labels: {production: stable}
traffic:
  production: {stable: 100}
"""


def test_a_one_version_split_converges_on_promptlab(cli, key, tmp_path):
    # validate accepts a split of one version at 100 (the local registry stores it as a split);
    # PromptLab stores it as a deployment of one version, which reads back as the label with no
    # split, so the planner wants to set the split again on every run.
    emu = PromptLabEmulator(KEY, plan=None)
    with emu.serve() as server:
        root = project(tmp_path, server.url, {"prompts/reply.yaml": ONE_VERSION_SPLIT})
        assert cli("-C", root, "validate").code == 0
        r = cli("-C", root, "apply", "--auto-approve", "--no-color")
        assert r.code == 0, r.err
        assert emu.current_deployment("reply")["traffic"] == [{"version": "v1", "weight": 100}]
        deploys = emu.calls("POST", "/deploy$")

        r = cli("-C", root, "plan", "--detailed-exitcode", "--no-color")
        # observed: exit 2, '~ traffic "production": (no split) -> stable 100%' after every apply
        assert r.code == 0, r.out
        assert cli("-C", root, "drift", "--no-color").code == 0
        assert cli("-C", root, "apply", "--auto-approve").code == 0
        assert emu.calls("POST", "/deploy$") == deploys  # observed: a new deployment on every apply


# --------------------------------------------------------------------------- duplicate versions


def test_a_404_reading_a_listed_prompt_is_an_error_not_a_missing_prompt(cli, key, tmp_path):
    # PromptLab has no delete, so a prompt the list just named cannot have gone; a 404 on its
    # reads (an endpoint the server lacks: they are x-emulator-extensions, or a proxy hiccup) was
    # taken as "absent": the plan says "will be created" and apply mints a duplicate version.
    emu = PromptLabEmulator(KEY, plan=None)
    with emu.serve() as server:
        root = project(tmp_path, server.url, {"prompts/reply.yaml": "template: 'Hello {{name}}'\nlabels: [production]\n"})
        assert cli("-C", root, "apply", "--auto-approve").code == 0
        emu.faults.fail_next(10, 404, match=r"^GET /v1/prompts/prm_[a-z0-9]+/versions$")
        r = cli("-C", root, "apply", "--auto-approve", "--no-color")
        assert [v["content"] for v in emu.versions("reply")] == ["Hello {{name}}"]  # observed: a second copy (v2)
        assert r.code == 1 and "reply will be created" not in r.out


def test_the_listing_follows_total_past_a_short_page(key):
    # The client asks for 100 a page and stops at the first shorter page even when "total" says
    # more: against a server whose largest page is 50 (the spec's default page size) it sees 50 of
    # 120 prompts, and the unseen ones get duplicate versions on the next apply.
    emu = PromptLabEmulator(KEY, plan=None)
    for i in range(120):
        emu.add_prompt(f"p{i:03d}", [f"prompt {i}"], traffic={"v1": 100})
    inner = emu.transport()

    def capped(request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.path == "/v1/prompts" and url.params.get("limit"):
            url = url.copy_set_param("limit", str(min(50, int(url.params["limit"]))))
            request = httpx.Request(request.method, url, headers=request.headers, content=request.read())
        return inner.handle_request(request)

    with PromptLabProvider(target(), transport=httpx.MockTransport(capped), sleep=lambda _s: None) as lab:
        state = lab.read()
        assert len(state.prompts) == 120  # observed: 50
        assert len(lab.list_names()) == 120
        assert "p100" in lab.read(["p100"]).prompts


# --------------------------------------------------------------------------- secrets and odd answers


def test_an_unexpected_answer_never_quotes_the_key(cli, key, tmp_path):
    # http.expect() quotes the start of an unexpected body without HttpClient.redact: a base_url
    # that reaches an echo/debug endpoint (which answers 200 with the request it got) puts the
    # Bearer key into the error message.
    emu = PromptLabEmulator(KEY, plan=None)
    with emu.serve() as server:
        root = project(tmp_path, server.url, {"prompts/reply.yaml": "template: 'Hello'\nlabels: [production]\n"})
        emu.faults.fail_next(1, 200, body={"method": "GET", "headers": {"Authorization": f"Bearer {KEY}"}},
                             match=r"^GET /v1/prompts$")
        r = cli("-C", root, "plan", "--no-color")
        assert r.code == 1 and "unexpected answer from PromptLab" in r.err
        assert KEY not in r.err + r.out  # observed: "... {'Authorization': 'Bearer pl_sk_test_review4_5c1d9e'}}"


@pytest.mark.parametrize("route, body", [
    (r"^GET /v1/prompts/prm_[a-z0-9]+$", "<html><body>Proxy error</body></html>"),  # AttributeError
    (r"^GET /v1/prompts/prm_[a-z0-9]+$", {"id": "x", "current_deployment": {"traffic": [{"version": "v1"}]}}),
    (r"^GET /v1/prompts/prm_[a-z0-9]+/versions$", {"versions": [{"content": "Hello"}]}),  # KeyError 'version'
    (r"^GET /v1/prompts$", {"prompts": [{"name": "reply"}], "total": 1}),  # KeyError 'id'
])
def test_a_malformed_answer_is_a_remote_error_not_an_internal_error(cli, key, tmp_path, route, body):
    # observed: exit 3 "promptops: internal error: ... This is a bug in promptops"; expect() exists
    # for exactly these answers elsewhere ("unexpected answer from PromptLab", exit 1)
    emu = PromptLabEmulator(KEY, plan=None)
    with emu.serve() as server:
        root = project(tmp_path, server.url, {"prompts/reply.yaml": "template: 'Hello'\nlabels: [production]\n"})
        assert cli("-C", root, "apply", "--auto-approve").code == 0
        emu.faults.fail_next(1, 200, body=body, match=route)
        r = cli("-C", root, "plan", "--no-color")
        assert r.code == 1, r.err
        assert "internal error" not in r.err and "PromptLab" in r.err


# --------------------------------------------------------------------------- the HTTP layer


def test_429s_do_not_use_up_the_retries_of_a_server_error(key):
    # README: 5xx retried "up to 4 times" for reads; a 429 is counted in the same attempt counter,
    # so a read rate-limited 4 times gets no retry for the 503 that follows.
    emu = PromptLabEmulator(KEY, plan=None)
    emu.faults.rate_limit(4, retry_after=1, match="^GET /v1/prompts$")
    emu.faults.fail_next(1, 503, match="^GET /v1/prompts$")
    with PromptLabProvider(target(), transport=emu.transport(), sleep=lambda _s: None) as lab:
        assert lab.list_names() == []  # observed: RemoteError "list prompts failed with 503"


def test_a_paced_wait_of_a_second_or_more_is_announced(key):
    # README (Providers): "every wait of a second or more is printed on stderr ..., so a slow apply
    # is never a silent one"; only retry waits are: a rate_limits pacing wait (12 s per deploy
    # with the README's own {deploy: 5/min}) sleeps without a word.
    time = FakeTime()
    emu = PromptLabEmulator(KEY, plan=None)
    notices = Notices()
    logging.getLogger("promptops.http").addHandler(notices)
    try:
        lab = PromptLabProvider(target(rate_limits={"deploy": "5/min"}), transport=emu.transport(),
                                sleep=time.sleep)
        lab.http._pacers["deploy"].clock = time
        with lab:
            lab.create_version(new("a", text("one")))
            lab.move_label("a", "production", "v1")
            lab.move_label("a", "production", "v1")
    finally:
        logging.getLogger("promptops.http").removeHandler(notices)
    assert time.sleeps == [12.0]
    assert len(notices.lines) == 1 and "12s" in notices.lines[0]  # observed: no notice


# --------------------------------------------------------------------------- messages


def test_resolve_of_a_prompt_the_target_never_deploys_does_not_advise_apply(cli, key, tmp_path):
    # The file declares no label, so apply creates the version and never deploys it: "run
    # promptops apply first" is advice that changes nothing. (A label other than the target's one
    # pointer is a validation error.)
    emu = PromptLabEmulator(KEY, plan=None)
    with emu.serve() as server:
        root = project(tmp_path, server.url, {"prompts/reply.yaml": "template: 'Hello'\n"})
        assert cli("-C", root, "apply", "--auto-approve").code == 0
        assert cli("-C", root, "plan", "--detailed-exitcode").code == 0  # nothing left to apply
        r = cli("-C", root, "resolve", "reply", "--user", "alice")
        assert r.code == 1 and "not deployed" in r.err
        assert "run promptops apply first" not in r.err, r.err  # observed: exactly that advice


# --------------------------------------------------------------------------- pinned (correct) behaviour


CANARY = """\
type: text
versions:
  stable: {template: "Hello {{name}}"}
  canary: {template: "Hi {{name}}"}
labels: {production: stable}
traffic:
  production: {stable: 90, canary: 10}
"""


def test_a_rollback_made_outside_promptops_is_drift_that_a_saved_plan_undoes_without_creating(cli, key, tmp_path):
    # PromptLab's own /rollback (never called by promptops) replaces the split by the previous full
    # deployment; promptops reads that as the label with no split, plans the split back, and a
    # saved plan of it applies exactly one deploy and creates nothing.
    emu = PromptLabEmulator(KEY, plan=None)
    with emu.serve() as server:
        root = project(tmp_path, server.url, {"prompts/reply.yaml": CANARY.replace(
            "traffic:\n  production: {stable: 90, canary: 10}\n", "")})
        assert cli("-C", root, "apply", "--auto-approve").code == 0
        write(root, "prompts/reply.yaml", CANARY)
        git(root, "commit", "-qam", "B: canary")
        assert cli("-C", root, "apply", "--auto-approve").code == 0
        r = httpx.post(f"{server.url}/v1/prompts/{emu.prompt_by_name('reply').id}/rollback",
                       headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 200 and r.json()["version"] == "v1"

        assert cli("-C", root, "drift", "--no-color").code == 2
        r = cli("-C", root, "plan", "-o", "undo.plan", "--json")
        assert [(a["kind"], a.get("label")) for a in json.loads(r.out)["actions"]] == [("set_traffic", "production")]
        deploys = emu.calls("POST", "/deploy$")
        assert cli("-C", root, "apply", "undo.plan").code == 0
        assert emu.calls("POST", "/deploy$") == deploys + 1
        assert emu.current_deployment("reply")["traffic"] == [{"version": "v1", "weight": 90},
                                                              {"version": "v2", "weight": 10}]
        assert len(emu.versions("reply")) == 2
        assert cli("-C", root, "plan", "--detailed-exitcode").code == 0
        assert emu.calls("POST", "/rollback$") == 1  # only the one made outside
