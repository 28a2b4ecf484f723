"""The PromptLab emulator against ../shared/providers-api.md section 2, over a real HTTP server with
plain httpx (PromptLab has no official SDK). Rate limits use an injected clock, so nothing sleeps."""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from emulators.promptlab import PromptLabEmulator

REPO = Path(__file__).resolve().parent.parent
KEY = "pl-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PROMPT_SUMMARY = {"id", "name", "active_version", "version_count", "updated_at"}
VERSION_FIELDS = {"version_id", "version", "prompt_id", "content_hash", "message", "created_by", "created_at"}
DEPLOY_FIELDS = {"deployment_id", "prompt_id", "label", "traffic", "deployed_at", "deployed_by"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def serve(emu: PromptLabEmulator, key: str = KEY):
    """(server, client) for ``emu``; the caller closes both."""
    server = emu.serve()
    return server, httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=5, verify=False)


@pytest.fixture
def wall() -> FakeClock:
    w = FakeClock()
    w.now = 1746713400.0  # 2025-05-08T14:10:00Z
    return w


@pytest.fixture
def emu(clock, wall) -> PromptLabEmulator:
    """No rate limits (those have their own tests); the emulator must never have answered a 500 by itself."""
    # a fixed seed: prompt ids feed the resolve hash, so the statistical tests are deterministic
    e = PromptLabEmulator(plan=None, clock=clock, owner="usr_team_member", wall_clock=wall, seed=7)
    yield e
    assert e.internal_errors == []


@pytest.fixture
def c(emu):
    server, client = serve(emu)
    with server, client:
        yield client


def error(r: httpx.Response, status: int, code: str) -> str:
    """Assert the platform's error shape; return the message."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "docs"}
    assert body["error"]["code"] == code
    assert body["error"]["docs"] == f"https://docs.promptlab.dev/errors#{code}"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["message"]


def new_prompt(c: httpx.Client, name: str = "checkout-assistant") -> str:
    r = c.post("/v1/prompts", json={"name": name, "description": ""})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def new_version(c: httpx.Client, pid: str, content: str, message: str = "") -> dict:
    r = c.post(f"/v1/prompts/{pid}/versions", json={"content": content, "message": message})
    assert r.status_code == 201, r.text
    return r.json()


def deploy(c: httpx.Client, pid: str, split: dict[str, int], label: str | None = None) -> dict:
    body = {"traffic": [{"version": v, "weight": w} for v, w in split.items()]}
    if label is not None:
        body["label"] = label
    r = c.post(f"/v1/prompts/{pid}/deploy", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def resolve(c: httpx.Client, name: str, user: str, context: dict | None = None) -> httpx.Response:
    body = {"prompt": name, "user_id": user}
    if context is not None:
        body["context"] = context
    return c.post("/v1/resolve", json=body)


def spec_bucket(prompt_id: str, user: str) -> int:
    """providers-api.md 2.3, written out independently of the emulator."""
    return int.from_bytes(hashlib.sha256(f"{prompt_id}:{user}".encode()).digest()[:8], "big") % 10000


# ---------------------------------------------------------------------------------------------- prompts


def test_create_prompt_answers_201_with_the_extension_shape_and_refuses_a_duplicate_name(c, emu):
    r = c.post("/v1/prompts", json={"name": "checkout-assistant", "description": "the checkout bot"})
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"id", "name", "active_version", "version_count", "created_at", "updated_at"}
    assert re.fullmatch(r"prm_[0-9a-z]{12}", body["id"])
    assert (body["name"], body["active_version"], body["version_count"]) == ("checkout-assistant", None, 0)
    assert STAMP.match(body["created_at"]) and body["updated_at"] == body["created_at"]
    assert emu.prompts[body["id"]].description == "the checkout bot"

    message = error(c.post("/v1/prompts", json={"name": "checkout-assistant"}), 400, "invalid_request")
    assert message == "prompt name already exists"
    assert len(emu.prompts) == 1
    assert new_prompt(c, "other") != body["id"]


@pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]", b'{"description": "x"}', b'{"name": ""}',
                                     b'{"name": 7}', b'{"name": "a", "description": 3}'])
def test_create_prompt_with_a_bad_body_is_400_and_stores_nothing(c, emu, content):
    error(c.post("/v1/prompts", content=content, headers={"Content-Type": "application/json"}), 400,
          "invalid_request")
    assert emu.prompts == {}


def test_list_prompts_without_query_is_the_documented_unpaginated_shape(c, emu):
    assert c.get("/v1/prompts").json() == {"prompts": [], "total": 0}
    for i in range(55):
        emu.add_prompt(f"p{i:02d}", ["hello"], {"v1": 100} if i == 0 else None)
    r = c.get("/v1/prompts")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"prompts", "total"} and body["total"] == 55
    assert [p["name"] for p in body["prompts"]] == [f"p{i:02d}" for i in range(55)]  # all of them, creation order
    first = body["prompts"][0]
    assert set(first) == PROMPT_SUMMARY
    assert (first["active_version"], first["version_count"]) == ("v1", 1)
    assert body["prompts"][1]["active_version"] is None


def test_list_prompts_name_filter_and_pagination_are_additive(c, emu):
    for i in range(7):
        emu.add_prompt(f"p{i}")
    assert [p["name"] for p in c.get("/v1/prompts", params={"name": "p3"}).json()["prompts"]] == ["p3"]
    assert c.get("/v1/prompts", params={"name": "p"}).json() == {"prompts": [], "total": 0}  # exact match
    assert c.get("/v1/prompts", params={"name": ""}).json()["total"] == 7
    page2 = c.get("/v1/prompts", params={"page": 2, "limit": 3}).json()
    assert [p["name"] for p in page2["prompts"]] == ["p3", "p4", "p5"] and page2["total"] == 7
    assert [p["name"] for p in c.get("/v1/prompts", params={"page": 3, "limit": 3}).json()["prompts"]] == ["p6"]
    assert c.get("/v1/prompts", params={"page": 9, "limit": 3}).json() == {"prompts": [], "total": 7}
    assert len(c.get("/v1/prompts", params={"page": 1}).json()["prompts"]) == 7  # limit defaults to 50
    both = c.get("/v1/prompts", params={"name": "p6", "page": 1, "limit": 1}).json()
    assert [p["name"] for p in both["prompts"]] == ["p6"] and both["total"] == 1
    for bad in ({"limit": 0}, {"limit": 101}, {"limit": "x"}, {"page": 0}, {"page": "-1"}):
        error(c.get("/v1/prompts", params=bad), 400, "invalid_request")


def test_get_prompt_shows_the_current_deployment(c, emu, wall):
    pid = new_prompt(c)
    r = c.get(f"/v1/prompts/{pid}")
    assert r.status_code == 200
    assert r.json() == {"id": pid, "name": "checkout-assistant", "active_version": None, "version_count": 0,
                        "updated_at": "2025-05-08T14:10:00Z", "current_deployment": None}
    wall.advance(60)
    assert new_version(c, pid, "hello")["created_at"] == "2025-05-08T14:11:00Z"
    assert c.get(f"/v1/prompts/{pid}").json()["updated_at"] == "2025-05-08T14:11:00Z"  # a version updates it
    wall.advance(60)
    dep = deploy(c, pid, {"v1": 100}, "prod")
    assert dep["deployed_at"] == "2025-05-08T14:12:00Z"
    body = c.get(f"/v1/prompts/{pid}").json()
    assert body["current_deployment"] == dep
    assert (body["active_version"], body["version_count"], body["updated_at"]) == ("v1", 1, "2025-05-08T14:12:00Z")
    assert emu.prompts[pid].created_at == "2025-05-08T14:10:00Z"
    wall.advance(60)
    c.get(f"/v1/prompts/{pid}/versions")
    assert c.get("/v1/prompts").json()["prompts"][0]["updated_at"] == "2025-05-08T14:12:00Z"  # reads do not
    error(c.get("/v1/prompts/prm_doesnotexist"), 404, "not_found")


# ---------------------------------------------------------------------------------------------- versions


def test_create_version_is_201_hashes_content_and_does_not_deploy(c, emu):
    pid = new_prompt(c)
    r = c.post(f"/v1/prompts/{pid}/versions",
               json={"content": "You are a helpful checkout assistant...", "message": "Remove product suggestion"})
    assert r.status_code == 201
    v1 = r.json()
    assert set(v1) == VERSION_FIELDS
    assert re.fullmatch(r"ver_[0-9a-z]{12}", v1["version_id"])
    assert (v1["version"], v1["prompt_id"], v1["message"], v1["created_by"]) == (
        "v1", pid, "Remove product suggestion", "usr_team_member")
    assert v1["content_hash"] == "sha256:" + hashlib.sha256(b"You are a helpful checkout assistant...").hexdigest()
    assert STAMP.match(v1["created_at"])

    v2 = new_version(c, pid, "You are a helpful checkout assistant...")  # same content: still a new version
    assert (v2["version"], v2["content_hash"], v2["message"]) == ("v2", v1["content_hash"], "")
    assert v2["version_id"] != v1["version_id"]
    assert new_version(c, pid, "ünïcode")["content_hash"] == "sha256:" + hashlib.sha256("ünïcode".encode()).hexdigest()

    summary = c.get(f"/v1/prompts/{pid}").json()
    assert (summary["version_count"], summary["active_version"], summary["current_deployment"]) == (3, None, None)
    error(resolve(c, "checkout-assistant", "u1"), 404, "not_found")  # created, not deployed


def test_create_version_errors(c, emu):
    error(c.post("/v1/prompts/prm_nope/versions", json={"content": "x"}), 404, "not_found")
    pid = new_prompt(c)
    for body in ({}, {"content": ""}, {"content": 5}, {"content": "x", "message": 5}):
        error(c.post(f"/v1/prompts/{pid}/versions", json=body), 400, "invalid_request")
    error(c.post(f"/v1/prompts/{pid}/versions", content=b"{oops"), 400, "invalid_request")
    assert emu.versions(pid) == []


def test_list_versions_oldest_first_with_content(c, emu):
    pid = new_prompt(c)
    created = [new_version(c, pid, f"content {i}", f"m{i}") for i in range(3)]
    r = c.get(f"/v1/prompts/{pid}/versions")
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 3
    assert [v["version"] for v in body["versions"]] == ["v1", "v2", "v3"]
    for listed, made, i in zip(body["versions"], created, range(3)):
        assert listed == {**made, "content": f"content {i}"}
    assert emu.versions(pid) == body["versions"] == emu.versions("checkout-assistant")
    error(c.get("/v1/prompts/prm_nope/versions"), 404, "not_found")


# ---------------------------------------------------------------------------------------------- deploy


def test_deploy_answers_the_documented_shape_and_replaces_the_split(c, emu):
    pid = new_prompt(c)
    for i in range(2):
        new_version(c, pid, f"content {i}")
    first = c.post(f"/v1/prompts/{pid}/deploy", json={
        "traffic": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}], "label": "canary-v2-10pct"})
    assert first.status_code == 200
    dep = first.json()
    assert set(dep) == DEPLOY_FIELDS
    assert re.fullmatch(r"dep_[0-9a-z]{12}", dep["deployment_id"])
    assert (dep["prompt_id"], dep["label"], dep["deployed_by"]) == (pid, "canary-v2-10pct", "usr_team_member")
    assert dep["traffic"] == [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}]
    assert STAMP.match(dep["deployed_at"])

    second = deploy(c, pid, {"v1": 50, "v2": 50})
    assert second["label"] is None and second["deployment_id"] != dep["deployment_id"]
    assert emu.current_deployment(pid) == second
    listed = c.get(f"/v1/prompts/{pid}/deployments")
    assert listed.status_code == 200
    assert listed.json() == {"deployments": [second, dep], "total": 2}  # newest first; element 0 is current
    assert c.get(f"/v1/prompts/{pid}").json()["current_deployment"] == second
    r = resolve(c, "checkout-assistant", "u1")
    assert r.json()["traffic_rule"] == second["deployment_id"]  # the new rule, no label -> its id
    error(c.get("/v1/prompts/prm_nope/deployments"), 404, "not_found")


@pytest.mark.parametrize("traffic,status,code", [
    ([{"version": "v1", "weight": 90}, {"version": "v2", "weight": 5}], 422, "weight_mismatch"),
    ([{"version": "v1", "weight": 90}, {"version": "v2", "weight": 20}], 422, "weight_mismatch"),
    ([{"version": "v1", "weight": 90}, {"version": "v9", "weight": 10}], 404, "not_found"),
    ([{"version": "v1", "weight": 110}, {"version": "v2", "weight": -10}], 400, "invalid_request"),
    ([{"version": "v1", "weight": 100}, {"version": "v2", "weight": -1}], 400, "invalid_request"),
    ([{"version": "v1", "weight": 101}], 400, "invalid_request"),
    ([{"version": "v1", "weight": 99.5}, {"version": "v2", "weight": 0.5}], 400, "invalid_request"),
    ([{"version": "v1", "weight": "100"}], 400, "invalid_request"),
    ([{"version": "v1", "weight": True}], 400, "invalid_request"),
    ([{"version": "v1", "weight": 50}, {"version": "v1", "weight": 50}], 400, "invalid_request"),
    ([{"version": "v1"}], 400, "invalid_request"),
    ([{"weight": 100}], 400, "invalid_request"),
    (["v1"], 400, "invalid_request"),
    ([], 400, "invalid_request"),
    (None, 400, "invalid_request"),
    ({"v1": 100}, 400, "invalid_request"),
])
def test_deploy_validation_leaves_the_deployment_alone(c, emu, traffic, status, code):
    pid = emu.add_prompt("p", ["a", "b"], {"v1": 100})
    before = emu.deployments(pid)
    body = {} if traffic is None else {"traffic": traffic}
    message = error(c.post(f"/v1/prompts/{pid}/deploy", json=body), status, code)
    if code == "weight_mismatch":
        assert message == f"Traffic weights must sum to 100. Got {sum(e['weight'] for e in traffic)}."
    assert emu.deployments(pid) == before


def test_deploy_other_errors(c, emu):
    error(c.post("/v1/prompts/prm_nope/deploy", json={"traffic": [{"version": "v1", "weight": 100}]}), 404,
          "not_found")
    pid = emu.add_prompt("p", ["a"])
    error(c.post(f"/v1/prompts/{pid}/deploy", json={"traffic": [{"version": "v1", "weight": 100}], "label": 3}),
          400, "invalid_request")
    error(c.post(f"/v1/prompts/{pid}/deploy", content=b"nope"), 400, "invalid_request")
    assert emu.deployments(pid) == []
    ok = deploy(c, pid, {"v1": 100}, label="")
    assert ok["label"] == "" and resolve(c, "p", "u").json()["traffic_rule"] == ok["deployment_id"]


def test_active_version_follows_the_last_full_deployment(c, emu):
    pid = emu.add_prompt("p", ["a", "b", "c"])
    active = lambda: c.get(f"/v1/prompts/{pid}").json()["active_version"]
    assert active() is None
    deploy(c, pid, {"v1": 70, "v2": 30})
    assert active() == "v1"  # never fully deployed: the heaviest of the current split
    deploy(c, pid, {"v1": 40, "v2": 60})
    assert active() == "v2"
    deploy(c, pid, {"v2": 50, "v3": 50})
    assert active() == "v2"  # a tie: first in stored order
    deploy(c, pid, {"v3": 100})
    assert active() == "v3"
    deploy(c, pid, {"v3": 90, "v1": 10})
    assert active() == "v3"  # the last fully-deployed version, not the heaviest
    deploy(c, pid, {"v1": 0, "v2": 100})
    assert active() == "v2"  # a weight-0 companion still sends everything to one version
    assert c.get("/v1/prompts").json()["prompts"][0]["active_version"] == "v2"


# ---------------------------------------------------------------------------------------------- rollback


def test_rollback_returns_to_the_previous_full_deployment(c, emu):
    pid = emu.add_prompt("p", ["one", "two", "three"])
    deploy(c, pid, {"v1": 100})
    deploy(c, pid, {"v2": 100})
    deploy(c, pid, {"v2": 90, "v3": 10}, "canary")
    r = c.post(f"/v1/prompts/{pid}/rollback")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"rolled_back_to", "version", "rolled_back_at"}
    d2 = emu.deployments(pid)[2]
    assert (body["rolled_back_to"], body["version"]) == (d2["deployment_id"], "v2")
    assert STAMP.match(body["rolled_back_at"])
    current = emu.current_deployment(pid)
    assert (current["label"], current["traffic"]) == ("rollback", [{"version": "v2", "weight": 100}])
    assert current["deployed_at"] == body["rolled_back_at"] and len(emu.deployments(pid)) == 4
    assert {resolve(c, "p", f"u{i}").json()["version"] for i in range(50)} == {"v2"}
    again = c.post(f"/v1/prompts/{pid}/rollback").json()  # strictly before the rollback deployment: d2 again
    assert (again["rolled_back_to"], again["version"]) == (d2["deployment_id"], "v2")


def test_rollback_errors(c, emu):
    error(c.post("/v1/prompts/prm_nope/rollback"), 404, "not_found")
    pid = emu.add_prompt("p", ["a", "b"])
    assert error(c.post(f"/v1/prompts/{pid}/rollback"), 400, "invalid_request") == "no previous stable deployment"
    deploy(c, pid, {"v1": 100})
    error(c.post(f"/v1/prompts/{pid}/rollback"), 400, "invalid_request")  # nothing before the only deployment
    deploy(c, pid, {"v1": 50, "v2": 50})
    deploy(c, pid, {"v1": 60, "v2": 40})
    r = c.post(f"/v1/prompts/{pid}/rollback")
    assert r.status_code == 200 and r.json()["version"] == "v1"
    assert len(emu.deployments(pid)) == 4


# ---------------------------------------------------------------------------------------------- resolve


def test_resolve_answers_the_documented_shape_and_interpolates_context(c, emu):
    pid = emu.add_prompt("checkout-assistant",
                         ["Cart {{cart_value}} in {{ locale }} for {{missing}}; {{flag}} {{obj}}"],
                         {"v1": 100}, label="experiment-april")
    r = resolve(c, "checkout-assistant", "usr_8f3k2a",
                {"cart_value": 42.5, "locale": "en-US", "flag": True, "obj": {"a": 1}})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"prompt", "version", "content", "resolved_at", "traffic_rule"}
    assert (body["prompt"], body["version"], body["traffic_rule"]) == ("checkout-assistant", "v1", "experiment-april")
    assert body["content"] == 'Cart 42.5 in en-US for {{missing}}; true {"a": 1}'
    assert STAMP.match(body["resolved_at"])
    assert resolve(c, "checkout-assistant", "u").json()["content"] == emu.versions(pid)[0]["content"]
    assert c.post("/v1/resolve", json={"prompt": "checkout-assistant", "user_id": "u", "context": None}).status_code == 200


def test_resolve_errors(c, emu):
    emu.add_prompt("undeployed", ["a"])
    emu.add_prompt("p", ["a"], {"v1": 100})
    assert "not found" in error(resolve(c, "nope", "u"), 404, "not_found")
    error(resolve(c, "undeployed", "u"), 404, "not_found")
    for body in ({"user_id": "u"}, {"prompt": "p"}, {"prompt": "p", "user_id": 7}, {"prompt": "p", "user_id": ""},
                 {"prompt": 1, "user_id": "u"}, {"prompt": "p", "user_id": "u", "context": [1]}):
        error(c.post("/v1/resolve", json=body), 400, "invalid_request")
    error(c.post("/v1/resolve", content=b"{"), 400, "invalid_request")


def test_resolve_uses_the_spec_hash_and_honours_a_90_10_split(c, emu):
    pid = emu.add_prompt("p", ["old", "new"], {"v1": 90, "v2": 10})
    expected = lambda user: "v1" if spec_bucket(pid, user) < 9000 else "v2"
    users = [f"usr_{i}" for i in range(2000)]
    got = {u: resolve(c, "p", u).json()["version"] for u in users}
    assert got == {u: expected(u) for u in users}
    assert abs(sum(v == "v2" for v in got.values()) / len(users) - 0.10) <= 0.02
    for u in users[:100]:  # sticky: asked again, the same answer
        assert resolve(c, "p", u).json()["version"] == got[u]
    many = [emu.resolve_version(pid, f"user-{i}") for i in range(10_000)]
    assert abs(many.count("v2") / 10_000 - 0.10) <= 0.02
    assert many[:50] == [expected(f"user-{i}") for i in range(50)]


def test_ramping_the_new_version_only_moves_users_onto_it(c, emu):
    pid = emu.add_prompt("p", ["old", "new"])
    deploy(c, pid, {"v1": 90, "v2": 10})
    users = [f"u{i}" for i in range(1000)]
    before = {u: resolve(c, "p", u).json()["version"] for u in users}
    deploy(c, pid, {"v1": 50, "v2": 50})
    after = {u: resolve(c, "p", u).json()["version"] for u in users}
    assert all(after[u] == "v2" for u in users if before[u] == "v2")  # nobody on v2 goes back
    moved = sum(before[u] == "v1" and after[u] == "v2" for u in users)
    assert abs(moved / len(users) - 0.40) <= 0.05
    assert abs(sum(v == "v2" for v in after.values()) / len(users) - 0.50) <= 0.05
    deploy(c, pid, {"v1": 50, "v2": 50}, "same split, new deployment")
    assert {u: resolve(c, "p", u).json()["version"] for u in users[:200]} == {u: after[u] for u in users[:200]}


# ---------------------------------------------------------------------------------------------- auth


ENDPOINTS = [
    ("GET", "/v1/prompts", None),
    ("POST", "/v1/prompts", {"name": "x"}),
    ("GET", "/v1/prompts/{pid}", None),
    ("GET", "/v1/prompts/{pid}/versions", None),
    ("POST", "/v1/prompts/{pid}/versions", {"content": "x"}),
    ("POST", "/v1/prompts/{pid}/deploy", {"traffic": [{"version": "v1", "weight": 100}]}),
    ("POST", "/v1/prompts/{pid}/rollback", None),
    ("GET", "/v1/prompts/{pid}/deployments", None),
    ("POST", "/v1/resolve", {"prompt": "p", "user_id": "u"}),
]


@pytest.mark.parametrize("method,path,body", ENDPOINTS)
@pytest.mark.parametrize("header", [None, "Bearer wrong-key", f"Basic {KEY}", "Bearer", KEY])
def test_every_endpoint_needs_the_bearer_key(emu, method, path, body, header):
    pid = emu.add_prompt("p", ["a", "b"], {"v1": 100})
    emu.deploy(pid, {"v2": 100})  # so that rollback has somewhere to go
    before = emu.snapshot()
    server = emu.serve()
    with server, httpx.Client(base_url=server.url, verify=False) as raw:
        headers = {} if header is None else {"Authorization": header}
        r = raw.request(method, path.format(pid=pid), json=body, headers=headers)
        message = error(r, 401, "unauthorized")
        assert message == ("Missing API key" if header is None else "Invalid API key")
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert emu.snapshot() == before
        ok = raw.request(method, path.format(pid=pid), json=body, headers={"Authorization": f"bearer {KEY}"})
        assert ok.status_code < 300, ok.text


def test_read_only_keys_are_forbidden_to_write_but_may_read_and_resolve(clock):
    emu = PromptLabEmulator(plan=None, clock=clock, read_only_keys=["pl-read-only"])
    pid = emu.add_prompt("p", ["a"], {"v1": 100})
    before = emu.snapshot()
    server, ro = serve(emu, "pl-read-only")
    with server, ro:
        for method, path, body in ENDPOINTS:
            r = ro.request(method, path.format(pid=pid), json=body)
            if method == "GET" or path == "/v1/resolve":
                assert r.status_code == 200, (path, r.text)
            else:
                error(r, 403, "forbidden")
    assert emu.snapshot() == before


def test_unknown_routes_are_404_after_auth(c):
    raw = httpx.Client(base_url=str(c.base_url), verify=False)
    with raw:
        error(raw.get("/v1/nothing"), 401, "unauthorized")
    for method, path in [("GET", "/v1/nothing"), ("DELETE", "/v1/prompts/prm_x"), ("PUT", "/v1/prompts"),
                         ("GET", "/v1/resolve"), ("GET", "/v1/prompts/prm_x/rollback"), ("GET", "/prompts")]:
        error(c.request(method, path), 404, "not_found")


# ---------------------------------------------------------------------------------------------- rate limits


@pytest.mark.parametrize("plan,endpoint,limit,retry_after", [
    ("free", "resolve", 10, 1), ("free", "list", 30, 2), ("free", "versions", 20, 3), ("free", "deploy", 5, 12),
    ("pro", "resolve", 500, 1), ("pro", "list", 300, 1), ("pro", "versions", 200, 1), ("pro", "deploy", 60, 1),
])
def test_rate_limit_table_per_plan_and_endpoint(clock, plan, endpoint, limit, retry_after):
    emu = PromptLabEmulator(plan=plan, clock=clock)
    pid = emu.add_prompt("p", ["a"], {"v1": 100})
    call = {
        "resolve": lambda c: c.post("/v1/resolve", json={"prompt": "p", "user_id": "u"}),
        "list": lambda c: c.get("/v1/prompts"),
        "versions": lambda c: c.post(f"/v1/prompts/{pid}/versions", json={"content": "x"}),
        "deploy": lambda c: c.post(f"/v1/prompts/{pid}/deploy", json={"traffic": [{"version": "v1", "weight": 100}]}),
    }[endpoint]
    server, c = serve(emu)
    with server, c:
        assert all(call(c).status_code in (200, 201) for _ in range(limit))
        before = emu.snapshot()
        r = call(c)
        error(r, 429, "rate_limited")
        assert r.headers["Retry-After"] == str(retry_after)
        assert emu.snapshot() == before  # refused: nothing happened
        window = 1 if endpoint == "resolve" else 60
        clock.advance(window / limit * 0.9)
        error(call(c), 429, "rate_limited")
        clock.advance(window / limit * 0.1)
        assert call(c).status_code in (200, 201)  # the bucket has refilled one token, one only
        error(call(c), 429, "rate_limited")
    assert emu.internal_errors == []


def test_rate_limits_are_per_key_and_per_endpoint_and_refill(clock):
    emu = PromptLabEmulator(clock=clock)  # the default plan is free
    assert emu.plan == "free"
    emu.add_key("pl-second-key", owner="usr_other")
    pid = emu.add_prompt("p", ["a", "b"], {"v1": 100})
    split = {"traffic": [{"version": "v1", "weight": 100}]}
    server, c = serve(emu)
    other = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer pl-second-key"}, verify=False)
    with server, c, other:
        for _ in range(5):
            assert c.post(f"/v1/prompts/{pid}/deploy", json=split).status_code == 200
        r = c.post(f"/v1/prompts/{pid}/deploy", json=split)
        error(r, 429, "rate_limited")
        assert r.headers["Retry-After"] == "12"  # 5 per minute: one token every 12 s
        # requests with a bad key cost the real key nothing (they are answered 401, not 429)
        bad = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer nope"}, verify=False)
        with bad:
            for _ in range(10):
                error(bad.post(f"/v1/prompts/{pid}/deploy", json=split), 401, "unauthorized")
        r2 = other.post(f"/v1/prompts/{pid}/deploy", json=split)  # another key has its own bucket
        assert r2.status_code == 200 and r2.json()["deployed_by"] == "usr_other"
        assert c.post(f"/v1/prompts/{pid}/versions", json={"content": "x"}).status_code == 201  # another endpoint
        for _ in range(40):  # endpoints outside the table are not limited
            assert c.get(f"/v1/prompts/{pid}").status_code == 200
            assert c.get(f"/v1/prompts/{pid}/deployments").status_code == 200
        clock.advance(6)
        r = c.post(f"/v1/prompts/{pid}/deploy", json=split)
        assert r.status_code == 429 and r.headers["Retry-After"] == "6"
        clock.advance(6)
        assert c.post(f"/v1/prompts/{pid}/deploy", json=split).status_code == 200
        assert c.post(f"/v1/prompts/{pid}/deploy", json=split).status_code == 429
        clock.advance(60)  # a full window refills the bucket to its capacity, no more
        assert [c.post(f"/v1/prompts/{pid}/deploy", json=split).status_code for _ in range(6)] == [200] * 5 + [429]
        emu.set_plan("pro")
        assert c.post(f"/v1/prompts/{pid}/deploy", json=split).status_code == 200
    with pytest.raises(ValueError):
        PromptLabEmulator(plan="enterprise")


# ---------------------------------------------------------------------------------------------- forms and faults


def script(c: httpx.Client) -> list[tuple[int, object, str | None]]:
    """A run touching every endpoint, answers as (status, body, Retry-After)."""
    out = []

    def rec(r: httpx.Response) -> httpx.Response:
        out.append((r.status_code, r.json(), r.headers.get("Retry-After")))
        return r

    pid = rec(c.post("/v1/prompts", json={"name": "checkout-assistant"})).json()["id"]
    rec(c.post("/v1/prompts", json={"name": "checkout-assistant"}))
    rec(c.post(f"/v1/prompts/{pid}/versions", json={"content": "Hi {{who}}", "message": "first"}))
    rec(c.post(f"/v1/prompts/{pid}/versions", json={"content": "Hello {{who}}"}))
    rec(c.post(f"/v1/prompts/{pid}/deploy", json={"traffic": [{"version": "v1", "weight": 100}]}))
    rec(c.post(f"/v1/prompts/{pid}/deploy", json={"traffic": [{"version": "v1", "weight": 80},
                                                               {"version": "v2", "weight": 10}]}))
    rec(c.post(f"/v1/prompts/{pid}/deploy", json={"traffic": [{"version": "v1", "weight": 80},
                                                               {"version": "v2", "weight": 20}], "label": "c"}))
    for i in range(5):
        rec(c.post("/v1/resolve", json={"prompt": "checkout-assistant", "user_id": f"u{i}", "context": {"who": i}}))
    rec(c.get("/v1/prompts"))
    rec(c.get("/v1/prompts", params={"page": 1, "limit": 1}))
    rec(c.get(f"/v1/prompts/{pid}"))
    rec(c.get(f"/v1/prompts/{pid}/versions"))
    rec(c.get(f"/v1/prompts/{pid}/deployments"))
    rec(c.post(f"/v1/prompts/{pid}/rollback"))
    rec(c.get("/v1/prompts/prm_nope"))
    rec(c.get("/v1/prompts", headers={"Authorization": "Bearer wrong"}))
    for _ in range(30):  # free plan with a clock that stands still: the 31st list is refused
        rec(c.get("/v1/prompts", params={"name": "x"}))
    return out


def test_in_process_transport_answers_as_the_server_does():
    def fresh() -> PromptLabEmulator:
        return PromptLabEmulator(clock=lambda: 5.0, wall_clock=lambda: 1746713400.0, seed=42)

    served = fresh()
    server, c = serve(served)
    with server, c:
        over_http = script(c)
    in_process = fresh()
    with httpx.Client(transport=in_process.transport(), base_url="http://promptlab.test", headers=AUTH) as t:
        assert over_http == script(t)
    statuses = [s for s, _, _ in over_http]
    assert {200, 201, 400, 401, 404, 422, 429} <= set(statuses)
    assert over_http[-1][2] == "2"
    assert served.snapshot() == in_process.snapshot()


def test_fault_injection_through_the_server(c, emu):
    pid = emu.add_prompt("p", ["a"], {"v1": 100})
    emu.faults.fail_next()
    error(c.post(f"/v1/prompts/{pid}/versions", json={"content": "x"}), 500, "internal_error")
    assert len(emu.versions(pid)) == 1  # not handled
    emu.faults.fail_next(status=503, match=r"^POST .*/versions$")
    assert c.get("/v1/prompts").status_code == 200  # the fault waits for its match
    r = c.post(f"/v1/prompts/{pid}/versions", json={"content": "x"})
    error(r, 503, "internal_error")
    emu.faults.rate_limit(retry_after=7)
    r = c.get("/v1/prompts")
    error(r, 429, "rate_limited")
    assert r.headers["Retry-After"] == "7"

    emu.faults.drop_next()
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        c.post(f"/v1/prompts/{pid}/versions", json={"content": "dropped before"})
    assert len(emu.versions(pid)) == 1
    emu.faults.drop_next(after=True)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        c.post(f"/v1/prompts/{pid}/versions", json={"content": "dropped after"})
    assert [v["content"] for v in emu.versions(pid)] == ["a", "dropped after"]  # it landed; the client never heard
    assert new_version(c, pid, "next")["version"] == "v3"
    assert emu.calls("POST", r"/versions$") == 5


def test_an_unexpected_exception_is_a_500_in_the_platform_shape(c, emu):
    pid = emu.add_prompt("p")

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    emu._list_versions = broken
    error(c.get(f"/v1/prompts/{pid}/versions"), 500, "internal_error")
    assert [str(e) for e in emu.internal_errors] == ["boom"]
    emu.internal_errors.clear()


def test_concurrent_version_creation_numbers_versions_without_gaps(c, emu):
    pid = emu.add_prompt("p")
    results: list[dict] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=str(c.base_url), verify=False, headers=AUTH) as own:
            for _ in range(5):
                body = new_version(own, pid, "same")
                with lock:
                    results.append(body)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(v["version"][1:]) for v in results) == list(range(1, 41))
    assert len({v["version_id"] for v in results}) == 40
    assert [v["version"] for v in emu.versions(pid)] == [f"v{i}" for i in range(1, 41)]


def test_runs_as_a_subprocess_from_the_repository_root():
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulators", "promptlab", "--port", "0"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), (url, proc.poll())
        r = httpx.get(f"{url}/v1/prompts", headers=AUTH, timeout=5)
        assert r.status_code == 200 and r.json() == {"prompts": [], "total": 0}
        error(httpx.get(f"{url}/v1/prompts", timeout=5), 401, "unauthorized")
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
