"""Sticky consistent hashing for traffic splits (promptops resolve)."""
from __future__ import annotations

import hashlib

import pytest

from promptops.digest import canonical_content, content_digest
from promptops.errors import PromptOpsError
from promptops.model import RemotePrompt, RemoteVersion
from promptops.providers.base import NewVersion
from promptops.providers.local import LocalProvider
from promptops.resolve import BUCKETS, Resolution, bucket, pick, resolve

USERS = [f"user-{i}" for i in range(10_000)]


def remote(n_versions: int, labels=None, traffic=None, name: str = "checkout-assistant") -> RemotePrompt:
    versions = tuple(RemoteVersion(id=str(i), digest=f"sha256:{i}", content={}) for i in range(1, n_versions + 1))
    return RemotePrompt(name=name, versions=versions, labels=labels or {}, traffic=traffic or {})


# --------------------------------------------------------------------------- bucket: the documented contract


@pytest.mark.parametrize("prompt, label, user, expected", [
    ("checkout-assistant", "production", "user-42", 2200),
    ("summarizer", "staging", "alice@example.com", 9257),
    ("", "", "", 8966),
])
def test_bucket_values_are_pinned(prompt, label, user, expected):
    assert bucket(prompt, label, user) == expected


def test_bucket_is_the_documented_formula():
    for prompt, label, user in [("p", "production", "u1"), ("caf\u00e9", "canary", "\u65e5\u672c"), ("a", "b", "")]:
        digest = hashlib.sha256(f"{prompt}\x00{label}\x00{user}".encode("utf-8")).digest()
        assert bucket(prompt, label, user) == int.from_bytes(digest[:8], "big") % 10000
    assert BUCKETS == 10_000


def test_bucket_depends_on_prompt_and_label_and_separator_prevents_collisions():
    assert bucket("ab", "c", "u") != bucket("a", "bc", "u")
    assert len({bucket("p", "production", u) for u in USERS[:200]}) > 150
    assert all(0 <= bucket("p", "l", u) < BUCKETS for u in USERS)


# --------------------------------------------------------------------------- pick


def test_pick_lays_versions_out_in_order():
    weights = {"1": 90, "2": 10}
    assert pick(weights, ["1", "2"], 0) == "1"
    assert pick(weights, ["1", "2"], 8999) == "1"
    assert pick(weights, ["1", "2"], 9000) == "2"
    assert pick(weights, ["1", "2"], 9999) == "2"


def test_zero_weight_versions_get_no_users():
    weights = {"1": 50, "2": 0, "3": 50}
    picked = {pick(weights, ["1", "2", "3"], b) for b in range(BUCKETS)}
    assert picked == {"1", "3"}
    assert {pick({"1": 100}, ["1", "2", "3"], b) for b in range(BUCKETS)} == {"1"}  # absent = weight 0


@pytest.mark.parametrize("weights, order, b", [
    ({"1": 90, "2": 9}, ["1", "2"], 0),
    ({"1": 90, "9": 10}, ["1", "2"], 0),
    ({"1": 100}, ["1"], 10_000),
    ({"1": 100}, ["1"], -1),
    ({"1": 110, "2": -10}, ["1", "2"], 0),
])
def test_pick_rejects_bad_input(weights, order, b):
    with pytest.raises(ValueError):
        pick(weights, order, b)


# --------------------------------------------------------------------------- resolve


def test_distribution_follows_the_weights():
    prompt = remote(2, labels={"production": "1"}, traffic={"production": {"1": 90, "2": 10}})
    on_canary = sum(resolve(prompt, "production", u).version_id == "2" for u in USERS)
    assert abs(on_canary / len(USERS) - 0.10) <= 0.02


def test_ramping_the_canary_never_moves_a_user_off_it():
    users = USERS[:2000]
    prompt_at = lambda w: remote(2, traffic={"production": {"1": 100 - w, "2": w}})  # noqa: E731
    previous: set[str] = set()
    for weight in (10, 20, 50, 100):
        on_canary = {u for u in users if resolve(prompt_at(weight), "production", u).version_id == "2"}
        assert previous <= on_canary, f"users moved off the canary at {weight}%"
        assert abs(len(on_canary) / len(users) - weight / 100) <= 0.04
        previous = on_canary
    assert previous == set(users)


def test_newest_version_is_sticky_with_three_versions():
    users = USERS[:2000]
    before = remote(3, traffic={"p": {"1": 60, "2": 30, "3": 10}})
    after = remote(3, traffic={"p": {"1": 40, "2": 30, "3": 30}})
    on_newest = {u for u in users if resolve(before, "p", u).version_id == "3"}
    assert on_newest and all(resolve(after, "p", u).version_id == "3" for u in on_newest)


def test_label_without_split_serves_its_single_version():
    prompt = remote(3, labels={"production": "2", "staging": "3"})
    results = {resolve(prompt, "production", u).version_id for u in USERS[:2000]}
    assert results == {"2"}
    r = resolve(prompt, "staging", "alice")
    assert r == Resolution(prompt="checkout-assistant", label="staging", user="alice", version_id="3",
                           bucket=bucket("checkout-assistant", "staging", "alice"), weights=None)


def test_split_wins_over_the_label_pointer_and_is_reported():
    prompt = remote(2, labels={"production": "1"}, traffic={"production": {"1": 0, "2": 100}})
    r = resolve(prompt, "production", "user-42")
    assert (r.version_id, r.weights) == ("2", {"1": 0, "2": 100})
    assert r.bucket == bucket("checkout-assistant", "production", "user-42") == 2200


def test_resolution_is_sticky_for_the_same_user():
    prompt = remote(2, traffic={"production": {"1": 50, "2": 50}})
    assert len({resolve(prompt, "production", "bob").version_id for _ in range(20)}) == 1


def test_missing_label_is_a_user_error_listing_labels():
    prompt = remote(2, labels={"production": "1", "staging": "2"}, traffic={"canary": {"1": 100}})
    expected = r"prompt checkout-assistant has no label beta; labels: canary, production, staging"
    with pytest.raises(PromptOpsError, match=expected):
        resolve(prompt, "beta", "u")
    with pytest.raises(PromptOpsError, match="labels: none"):
        resolve(remote(1), "production", "u")


def test_split_naming_a_missing_version_is_a_user_error():
    prompt = remote(1, traffic={"production": {"1": 50, "7": 50}})
    with pytest.raises(PromptOpsError, match="prompt checkout-assistant label production: .*7"):
        resolve(prompt, "production", "u")


def test_resolve_against_the_local_registry(tmp_path):
    reg = LocalProvider(tmp_path / "registry.db")
    for template in ("stable", "canary"):
        content = canonical_content(type="text", template_format="mustache", template=template)
        reg.create_version(NewVersion("greet", content, content_digest(content), {}))
    reg.move_label("greet", "production", "1")
    reg.set_traffic("greet", "production", {"1": 90, "2": 10})
    prompt = reg.read(["greet"]).prompts["greet"]
    got = [resolve(prompt, "production", u).version_id for u in USERS]
    assert abs(got.count("2") / len(got) - 0.10) <= 0.02
    reg.set_traffic("greet", "production", None)
    prompt = reg.read(["greet"]).prompts["greet"]
    assert {resolve(prompt, "production", u).version_id for u in USERS[:500]} == {"1"}
    reg.close()
