"""The provider contract: the same scenarios, driven through the real CLI on real files in real
git repositories, against every provider promptops implements: ``local`` (the SQLite registry,
the reference), ``langfuse``, ``promptlab``, ``promptlayer`` and ``promptrails`` (their emulators
running as real HTTP servers on 127.0.0.1). A scenario is parametrized over the providers it
applies to (traffic splits only where the provider has them; capability errors only where there
is a gap; label removal, metadata and prune where the platform has them, and what it does
instead where it has not).

What every provider must do (design.md 1.3, 3, 5): apply creates the versions and a re-plan is
clean (a second apply writes nothing); an edit is one create plus a label move; a ``git revert`` of
the edit moves the label back to the version that already exists and creates nothing; a label move
is only a move; a traffic split is set, changed and removed, a canary of a new version is started
and reverted, each time with a clean re-plan; a label moved outside promptops is drift that apply
undoes; a saved plan is refused once the remote changed; what a target cannot represent is a
plan-time error naming the target, before any request; apply refuses uncommitted files on remote
targets; wrong credentials name the variables, never the secret; ``import`` writes files from what
the target holds (versions made outside promptops included) and a plan right after is clean. Where
the platform has them: a label dropped from the file is removed, a description change is one
metadata update, and ``--prune`` deletes a prompt whose file was removed (elsewhere each is a
warning and no request).

The scenarios use the label ``production`` (PromptLab's one pointer, its current deployment;
PromptRails' one pointer, its current version); many-label providers also carry ``staging``.
Version ids are the platforms' own: ``1``, ``2``... (shown ``v1``), PromptLab's ``v1``...,
PromptRails' first 12 hex digits of the content digest. PromptLayer and PromptRails have no
mustache, so their files say ``template_format: jinja2`` (``{{name}}`` is the same text there, but
another digest). Plans are checked as exact action lines and as the JSON actions, with
``--detailed-exitcode``.

Remote state is read through the emulators' test hooks, the platforms' own HTTP APIs and the
registry's own SQLite tables, not through the provider under test.
"""
from __future__ import annotations

import itertools
import json
import shutil
import sqlite3
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from conftest import commit, git, init_repo, write
from emulators.langfuse import LangfuseEmulator
from emulators.promptlab import PromptLabEmulator
from emulators.promptlayer import PromptLayerEmulator
from emulators.promptrails import PromptRailsEmulator
from promptops.digest import canonical_content, content_digest, short_digest
from promptops.importer import OUTSIDE
from promptops.providers.base import CAPABILITIES

# --------------------------------------------------------------------------- the platforms

_keys = itertools.count()
PL_KEY = "pl-contract-key-0123456789"
PLY_KEY = "pl_contract_layer_key_5e0b77"
PR_KEY = "pr_live_contract_rails_key_3a9c"

CONFIGS = {
    "local": """\
default_target: local
targets:
  local: {provider: local}
""",
    "langfuse": """\
default_target: lf
targets:
  lf:
    provider: langfuse
    base_url: %(url)s
    credentials: {public_key: "${LF_PUBLIC}", secret_key: "${LF_SECRET}"}
""",
    "promptlab": """\
default_target: lab
targets:
  lab:
    provider: promptlab
    base_url: %(url)s
    credentials: {api_key: "${PL_API_KEY}"}
""",
    "promptlayer": """\
default_target: layer
targets:
  layer:
    provider: promptlayer
    base_url: %(url)s
    credentials: {api_key: "${PROMPTLAYER_API_KEY}"}
""",
    "promptrails": """\
default_target: rails
targets:
  rails:
    provider: promptrails
    base_url: %(url)s
    credentials: {api_key: "${PROMPTRAILS_API_KEY}"}
""",
}
TARGETS = {"local": "local", "langfuse": "lf", "promptlab": "lab", "promptlayer": "layer", "promptrails": "rails"}
# the variables holding each platform's secret (the first one is the one made wrong)
SECRETS = {"langfuse": ["LF_SECRET", "LF_PUBLIC"], "promptlab": ["PL_API_KEY"],
           "promptlayer": ["PROMPTLAYER_API_KEY"], "promptrails": ["PROMPTRAILS_API_KEY"]}


@dataclass
class Platform:
    """One provider under contract: its project (a git repository) and a view of its remote state."""

    kind: str
    root: Path
    emu: Any = None
    url: str | None = None
    auth: tuple[str, str] | None = None  # langfuse keys
    key: str | None = None  # the API key (promptlayer, promptrails)

    @property
    def target(self) -> str:
        return TARGETS[self.kind]

    @property
    def many_labels(self) -> bool:
        return self.kind not in ("promptlab", "promptrails")

    @property
    def fmt(self) -> str:
        """The template format of the files: mustache, or jinja2 where there is no mustache."""
        return "jinja2" if self.kind in ("promptlayer", "promptrails") else "mustache"

    def rid(self, n: int) -> str:
        """The platform's id of its n-th version of a prompt, as plans report it. PromptRails names
        a version by its content: in the scenarios it applies to, the n-th version holds
        ``CREATED[n - 1]``."""
        if self.kind == "promptrails":
            return short(self, CREATED[n - 1])[len("sha256:"):]
        return f"v{n}" if self.kind == "promptlab" else str(n)

    def shown(self, n: int) -> str:
        """The n-th version as plan text shows it: ``v3`` for ``3``, other ids as they are."""
        rid = self.rid(n)
        return f"v{rid}" if rid.isdigit() else rid

    # ---- remote state, read past the provider under test

    def _db(self, sql: str, params: tuple = ()) -> list[tuple]:
        db = self.root / ".promptops" / "registry.db"
        if not db.exists():
            return []
        conn = sqlite3.connect(db)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def templates(self, name: str) -> list[str]:
        """The stored template of each version, oldest first."""
        if self.kind == "local":
            rows = self._db("SELECT v.content FROM versions v JOIN prompts p ON p.id = v.prompt_id "
                            "WHERE p.name = ? ORDER BY v.number", (name,))
            return [json.loads(content)["template"] for (content,) in rows]
        if self.kind == "langfuse":
            return [row["prompt"] for row in self.emu.versions(name)]
        if self.kind == "promptlayer":
            if self.emu.template(name) is None:
                return []
            rows = self.emu.versions(name)
            assert all(r["prompt_template"]["type"] == "completion" for r in rows)
            return ["".join(block["text"] for block in r["prompt_template"]["content"]) for r in rows]
        if self.kind == "promptrails":
            if self.emu.prompt_id(name) is None:
                return []
            rows = self.emu.versions(name)
            assert all(r["system_prompt"] == "" for r in rows)  # a text prompt is the user prompt alone
            return [r["user_prompt"] for r in rows]
        if self.emu.prompt_by_name(name) is None:
            return []
        return [v["content"] for v in self.emu.versions(name)]

    def count(self, name: str) -> int:
        return len(self.templates(name))

    def labels(self, name: str) -> dict[str, str]:
        """Managed labels -> remote version id. PromptLab's one pointer is its current deployment,
        read as ``production`` when it sends all traffic to one version."""
        if self.kind == "local":
            rows = self._db("SELECT l.label, l.version FROM labels l JOIN prompts p ON p.id = l.prompt_id "
                            "WHERE p.name = ?", (name,))
            return {label: str(version) for label, version in rows}
        if self.kind == "langfuse":
            return {k: str(v) for k, v in self.emu.prompts.labels(name).items() if k != "latest"}
        if self.kind == "promptlayer":
            if self.emu.template(name) is None:
                return {}
            return {k: str(v) for k, v in self.emu.labels(name).items()}
        if self.kind == "promptrails":
            current = self.emu.current(name) if self.emu.prompt_id(name) else None
            return {"production": current["version"]} if current else {}
        weights = self.deployed(name)
        full = [v for v, w in weights.items() if w == 100]
        return {"production": full[0]} if full else {}

    def deployed(self, name: str) -> dict[str, int]:
        """PromptLab: the current deployment as {version: weight}, zero weights left out."""
        if self.emu.prompt_by_name(name) is None:
            return {}
        current = self.emu.current_deployment(name)
        return {e["version"]: e["weight"] for e in (current or {}).get("traffic", []) if e["weight"]}

    def traffic(self, name: str) -> dict[str, int] | None:
        """The split of ``production`` as {remote version id: weight}, None when there is none."""
        if self.kind == "local":
            rows = self._db("SELECT t.weights FROM traffic t JOIN prompts p ON p.id = t.prompt_id "
                            "WHERE p.name = ? AND t.label = 'production'", (name,))
            return json.loads(rows[0][0]) if rows else None
        assert self.kind == "promptlab", "langfuse has no traffic splits"
        weights = self.deployed(name)
        return weights if len(weights) > 1 else None

    def move_outside(self, name: str, label: str, n: int) -> None:
        """Point ``label`` at the n-th version the way someone in the platform's UI would: past
        promptops (the registry's table, the platform's own API or the emulator's state)."""
        if self.kind == "local":
            conn = sqlite3.connect(self.root / ".promptops" / "registry.db")
            with conn:
                conn.execute("UPDATE labels SET version = ? WHERE label = ? AND prompt_id = "
                             "(SELECT id FROM prompts WHERE name = ?)", (n, label, name))
            conn.close()
        elif self.kind == "langfuse":
            r = httpx.patch(f"{self.url}/api/public/v2/prompts/{quote(name, safe='')}/versions/{n}",
                            json={"newLabels": [label]}, auth=self.auth)
            assert r.status_code == 200, r.text
        elif self.kind == "promptlayer":
            headers = {"X-API-KEY": self.key}
            r = httpx.get(f"{self.url}/prompt-templates/{quote(name, safe='')}/labels", headers=headers)
            assert r.status_code == 200, r.text
            (label_id,) = [e["release_label_id"] for e in r.json()["release_labels"] if e["release_label"] == label]
            r = httpx.patch(f"{self.url}/prompt-labels/{label_id}", json={"prompt_version_number": n},
                            headers=headers)
            assert r.status_code == 200, r.text
        elif self.kind == "promptrails":
            assert label == "production"
            pid, vid = self.emu.prompt_id(name), self.emu.versions(name)[n - 1]["id"]
            r = httpx.post(f"{self.url}/api/v1/prompts/{pid}/versions/{vid}/promote", json={},
                           headers={"X-API-Key": self.key})
            assert r.status_code == 200, r.text
        else:
            self.emu.deploy(name, {f"v{n}": 100}, label=label)
        assert self.labels(name)[label] == self.rid(n)

    def writes(self) -> int:
        """Write requests the platform received (emulators only)."""
        return sum(1 for method, _ in self.emu.log if method != "GET")


# "promptlayer@2025-04": PromptLayer answering a publish as its recorded 2025-04 answer did (no
# version_number), the emulator's answers="2025-04"
ALL = ["local", "langfuse", "promptlab", "promptlayer", "promptlayer@2025-04", "promptrails"]
REMOTE = ["langfuse", "promptlab", "promptlayer", "promptlayer@2025-04", "promptrails"]
TRAFFIC = ["local", "promptlab"]


@pytest.fixture
def platform(request, tmp_path: Path, monkeypatch) -> Platform:
    kind, _, answers = request.param.partition("@")
    root = init_repo(tmp_path / "repo")
    with ExitStack() as stack:
        emu, url, auth, key = None, None, None, None
        if kind == "langfuse":
            n = next(_keys)
            pk, sk = f"pk-lf-contract-{n}", f"sk-lf-contract-secret-{n}"
            monkeypatch.setenv("LF_PUBLIC", pk)
            monkeypatch.setenv("LF_SECRET", sk)
            emu = LangfuseEmulator(pk, sk, plan="none")
            auth = (pk, sk)
        elif kind == "promptlab":
            monkeypatch.setenv("PL_API_KEY", PL_KEY)
            emu = PromptLabEmulator(PL_KEY, plan=None)
        elif kind == "promptlayer":
            monkeypatch.setenv("PROMPTLAYER_API_KEY", PLY_KEY)
            emu, key = PromptLayerEmulator(api_key=PLY_KEY, answers=answers or "current"), PLY_KEY
        elif kind == "promptrails":
            monkeypatch.setenv("PROMPTRAILS_API_KEY", PR_KEY)
            emu, key = PromptRailsEmulator(api_key=PR_KEY), PR_KEY
        if emu is not None:
            url = stack.enter_context(emu.serve()).url
        write(root, "promptops.yaml", CONFIGS[kind] % {"url": url})
        yield Platform(kind, root, emu, url, auth, key)


def on(*kinds: str):
    """Parametrize a test's ``platform`` over ``kinds``."""
    return pytest.mark.parametrize("platform", kinds, indirect=True)


# --------------------------------------------------------------------------- the files

NAME, FILE = "support/greet", "prompts/support/greet.yaml"  # a folder: names with "/" on every platform
A, B = "Hello {{name}}, how can I help?", "Hi {{name}}!"
A2 = "Hello {{name}}, what can I do for you?"
CREATED = (A, B, A2)  # the versions in the order the scenarios create them (C only where there is traffic)


def greet(p: Platform, *, a: str = A, b: str = B, production: str | None = "a", traffic: dict | None = None,
          extra: str = "", staging: bool = True, fmt: str | None = None) -> str:
    """The greet file: versions a and b, ``production`` on a (no label when None), ``staging`` on b
    on many-label platforms, in the platform's template format (``fmt`` overrides it)."""
    labels = ", ".join(([f"production: {production}"] if production else [])
                       + (["staging: b"] if p.many_labels and staging else []))
    fmt = fmt or p.fmt
    text = ("type: text\n"
            + (f"template_format: {fmt}\n" if fmt != "mustache" else "")
            + "variables:\n  name: {type: string}\n"
            "versions:\n"
            f"  a:\n    template: {json.dumps(a)}\n"
            f"  b:\n    template: {json.dumps(b)}\n"
            f"labels: {{{labels}}}\n")
    if traffic:
        text += "traffic:\n  production: {%s}\n" % ", ".join(f"{k}: {v}" for k, v in traffic.items())
    return text + extra


def short(p: Platform, template: str) -> str:
    """``sha256:<12 hex>`` of a text version of the platform's format without model config, as
    plans show it."""
    digest = content_digest(canonical_content(type="text", template_format=p.fmt, template=template))
    return "sha256:" + short_digest(digest)


def plan(cli, p: Platform, *args: str):
    return cli("-C", p.root, "plan", "-t", p.target, "--no-color", *args)


def plan_actions(cli, p: Platform) -> list[tuple]:
    """The plan as (kind, prompt, version or label, from, to) tuples; ``from``/``to`` are remote
    version ids, or ``new:<local name>`` for a version the plan creates."""
    r = plan(cli, p, "--json")
    assert r.code == 0, r.err
    out = []
    for a in json.loads(r.out)["actions"]:
        if a["kind"] == "create_version":
            out.append(("create_version", a["prompt"], a["version"]))
        elif a["kind"] == "move_label":
            out.append(("move_label", a["prompt"], a["label"], _ref(a["from"]), _ref(a["to"])))
        else:
            out.append((a["kind"], a["prompt"], a.get("label"), a.get("from"), a.get("to")))
    return out


def _ref(ref: dict | None) -> str | None:
    if not ref:
        return None
    return ref["remote_version"] if ref["remote_version"] is not None else f"new:{ref['version']}"


def apply(cli, p: Platform) -> str:
    r = cli("-C", p.root, "apply", "-t", p.target, "--auto-approve", "--no-color")
    assert r.code == 0, r.out + r.err
    return r.out


def assert_clean(cli, p: Platform) -> None:
    r = plan(cli, p, "--detailed-exitcode")
    assert r.code == 0, r.out + r.err
    assert r.out.splitlines()[-1] == "No changes. Remote matches the files."


def action_lines(out: str) -> list[str]:
    """The plan's action lines (prompt headers, versions, labels, traffic) and its summary line."""
    return [line for line in out.splitlines()
            if line.startswith(("  # ", "  + version", "  ~ label", "  - label", "  ~ traffic", "  ~ description",
                                "  - prompt", "Plan: "))]


def summary(created: int, moved: int, traffic: int = 0) -> str:
    s = lambda n, word: f"{n} {word}{'' if n == 1 else 's'}"  # noqa: E731
    return (f"Plan: {s(created, 'version')} to create, {s(moved, 'label')} to move, "
            f"{traffic} traffic split{'' if traffic == 1 else 's'} to change, 0 prompts to delete.")


def applied(cli, p: Platform, **kw: Any) -> None:
    """The greet prompt committed and applied: versions a (1) and b (2), production on a."""
    write(p.root, FILE, greet(p, **kw))
    commit(p.root, "Add greet")
    apply(cli, p)


# --------------------------------------------------------------------------- scenarios


@on(*ALL)
def test_apply_creates_the_versions_and_a_replan_is_clean(cli, platform):
    p = platform
    write(p.root, FILE, greet(p))
    commit(p.root, "Add greet")
    labels = 2 if p.many_labels else 1

    r = plan(cli, p, "--detailed-exitcode")
    assert r.code == 2, r.out + r.err
    assert action_lines(r.out) == [
        "  # support/greet will be created",
        f'  + version "a" ({short(p, A)})',
        f'  + version "b" ({short(p, B)})',
        '  ~ label "production": (none) -> (new) a',
        *(['  ~ label "staging": (none) -> (new) b'] if p.many_labels else []),
        summary(2, labels),
    ]

    out = apply(cli, p)
    assert f"Apply complete! 2 versions created, {labels} label{'s' if labels > 1 else ''} moved, " in out
    assert p.templates(NAME) == [A, B]
    assert p.labels(NAME) == {"production": p.rid(1), **({"staging": p.rid(2)} if p.many_labels else {})}
    assert_clean(cli, p)

    # applying again changes nothing on the platform
    writes = p.writes() if p.emu is not None else None
    out = apply(cli, p)
    assert "No changes. Remote matches the files." in out
    assert p.count(NAME) == 2
    if p.emu is not None:
        assert p.writes() == writes


@on(*ALL)
def test_an_edit_is_one_create_and_a_label_move(cli, platform):
    p = platform
    applied(cli, p)
    write(p.root, FILE, greet(p, a=A2))
    commit(p.root, "Reword greet")

    assert plan_actions(cli, p) == [("create_version", NAME, "a"),
                                    ("move_label", NAME, "production", p.rid(1), "new:a")]
    r = plan(cli, p, "--detailed-exitcode")
    assert r.code == 2
    assert action_lines(r.out)[2:] == [f'  ~ label "production": {p.shown(1)} -> (new) a', summary(1, 1)]
    assert "          -Hello {{name}}, how can I help?" in r.out.splitlines()
    assert "          +Hello {{name}}, what can I do for you?" in r.out.splitlines()

    out = apply(cli, p)
    assert "Apply complete! 1 version created, 1 label moved, " in out
    assert p.templates(NAME) == [A, B, A2]
    assert p.labels(NAME)["production"] == p.rid(3)
    assert_clean(cli, p)


@on(*ALL)
def test_reverting_an_edit_moves_the_label_back_and_creates_nothing(cli, platform):
    p = platform
    applied(cli, p)
    write(p.root, FILE, greet(p, a=A2))
    commit(p.root, "Reword greet")
    apply(cli, p)
    before = p.count(NAME)
    assert before == 3

    git(p.root, "revert", "--no-edit", "HEAD")
    assert plan_actions(cli, p) == [("move_label", NAME, "production", p.rid(3), p.rid(1))]
    r = plan(cli, p, "--detailed-exitcode")
    assert r.code == 2
    assert action_lines(r.out) == ["  # support/greet will be updated",
                                   f'  ~ label "production": {p.shown(3)} -> {p.shown(1)} (a)',
                                   summary(0, 1)]

    out = apply(cli, p)
    assert "Apply complete! 0 versions created, 1 label moved, " in out
    assert p.count(NAME) == before
    assert p.templates(NAME) == [A, B, A2]
    assert p.labels(NAME)["production"] == p.rid(1)
    assert_clean(cli, p)


@on(*ALL)
def test_a_label_move_between_existing_versions_is_only_a_move(cli, platform):
    p = platform
    applied(cli, p)
    write(p.root, FILE, greet(p, production="b"))
    commit(p.root, "Promote b")

    assert plan_actions(cli, p) == [("move_label", NAME, "production", p.rid(1), p.rid(2))]
    r = plan(cli, p)
    assert action_lines(r.out) == ["  # support/greet will be updated",
                                   f'  ~ label "production": {p.shown(1)} (a) -> {p.shown(2)} (b)',
                                   summary(0, 1)]
    out = apply(cli, p)
    assert "Apply complete! 0 versions created, 1 label moved, " in out
    assert p.count(NAME) == 2
    assert p.labels(NAME)["production"] == p.rid(2)
    if p.kind == "promptlab":  # the pointer is the deployment: b takes all traffic
        assert p.deployed(NAME) == {"v2": 100}
    assert_clean(cli, p)


@on(*TRAFFIC)
def test_a_traffic_split_is_set_changed_and_removed(cli, platform):
    p = platform
    applied(cli, p)
    steps = [({"a": 90, "b": 10}, '  ~ traffic "production": (no split) -> a 90%, b 10%'),
             ({"a": 50, "b": 50}, '  ~ traffic "production": a 90%, b 10% -> a 50%, b 50%'),
             (None, '  ~ traffic "production": a 50%, b 50% -> (no split)')]
    for weights, line in steps:
        write(p.root, FILE, greet(p, traffic=weights))
        commit(p.root, f"Traffic {weights}")
        r = plan(cli, p, "--detailed-exitcode")
        assert r.code == 2, r.out + r.err
        assert action_lines(r.out) == ["  # support/greet will be updated", line, summary(0, 0, 1)]

        out = apply(cli, p)
        assert "Apply complete! 0 versions created, 0 labels moved, 1 traffic split changed, " in out
        expected = None if weights is None else {p.rid(1): weights["a"], p.rid(2): weights["b"]}
        assert p.traffic(NAME) == expected
        if p.kind == "promptlab":
            assert p.deployed(NAME) == (expected or {"v1": 100})
        else:
            assert p.labels(NAME)["production"] == p.rid(1)
        assert p.count(NAME) == 2
        assert_clean(cli, p)


@on(*TRAFFIC)
def test_reverting_a_traffic_change_restores_the_split_and_creates_nothing(cli, platform):
    p = platform
    applied(cli, p, traffic={"a": 90, "b": 10})
    write(p.root, FILE, greet(p, traffic={"a": 50, "b": 50}))
    commit(p.root, "Ramp b to 50%")
    apply(cli, p)
    git(p.root, "revert", "--no-edit", "HEAD")

    assert plan_actions(cli, p) == [("set_traffic", NAME, "production", {"a": 50, "b": 50},
                                     {"a": 90, "b": 10})]
    apply(cli, p)
    assert p.traffic(NAME) == {p.rid(1): 90, p.rid(2): 10}
    assert p.count(NAME) == 2
    assert_clean(cli, p)


C = "Hey {{name}} :)"


@on(*TRAFFIC)
def test_a_canary_of_a_new_version_and_its_revert(cli, platform):
    p = platform
    applied(cli, p)
    write(p.root, FILE, greet(p, traffic={"a": 90, "c": 10}).replace(
        "labels:", f"  c:\n    template: {json.dumps(C)}\nlabels:"))
    canary = commit(p.root, "Canary c at 10%")

    assert plan_actions(cli, p) == [("create_version", NAME, "c"),
                                    ("set_traffic", NAME, "production", None, {"a": 90, "c": 10})]
    r = plan(cli, p)
    assert action_lines(r.out)[2:] == ['  ~ traffic "production": (no split) -> a 90%, c 10%', summary(1, 0, 1)]
    out = apply(cli, p)
    assert "Apply complete! 1 version created, 0 labels moved, 1 traffic split changed, " in out
    assert p.templates(NAME) == [A, B, C]
    assert p.traffic(NAME) == {p.rid(1): 90, p.rid(3): 10}
    assert_clean(cli, p)

    git(p.root, "revert", "--no-edit", canary)
    # c is no longer in the file: its remote version is named by its id
    assert plan_actions(cli, p) == [("set_traffic", NAME, "production", {"a": 90, f"remote:{p.rid(3)}": 10}, None)]
    assert action_lines(plan(cli, p).out)[1:] == ['  ~ traffic "production": a 90%, v3 10% -> (no split)',
                                                  summary(0, 0, 1)]
    apply(cli, p)
    assert p.templates(NAME) == [A, B, C]  # nothing created, nothing deleted
    assert p.traffic(NAME) is None
    assert p.labels(NAME)["production"] == p.rid(1)
    if p.kind == "promptlab":
        assert p.deployed(NAME) == {"v1": 100}
    assert_clean(cli, p)


# --------------------------------------------------------------------------- changes made outside promptops


@on(*ALL)
def test_a_label_moved_outside_promptops_is_drift_and_apply_moves_it_back(cli, platform):
    p = platform
    applied(cli, p)
    assert cli("-C", p.root, "drift", "-t", p.target).code == 0
    p.move_outside(NAME, "production", 2)

    r = cli("-C", p.root, "drift", "-t", p.target, "--no-color")
    assert r.code == 2, r.out + r.err
    assert r.out.startswith(f'Drift detected: target "{p.target}" ({p.kind}) differs from commit ')
    assert action_lines(r.out) == ["  # support/greet will be updated",
                                   f'  ~ label "production": {p.shown(2)} (b) -> {p.shown(1)} (a)',
                                   summary(0, 1)]
    out = apply(cli, p)
    assert "Apply complete! 0 versions created, 1 label moved, " in out
    assert p.labels(NAME)["production"] == p.rid(1)
    assert p.count(NAME) == 2
    r = cli("-C", p.root, "drift", "-t", p.target)
    assert (r.code, r.out) == (0, f'No drift: target "{p.target}" ({p.kind}) matches commit '
                                  f'{git(p.root, "rev-parse", "--short=7", "HEAD").strip()}.\n')


@on(*ALL)
def test_a_saved_plan_is_refused_once_the_remote_changed_and_a_new_plan_converges(cli, platform):
    p = platform
    applied(cli, p)
    write(p.root, FILE, greet(p, a=A2))
    commit(p.root, "Reword greet")
    assert plan(cli, p, "-o", "edit.plan").code == 0
    p.move_outside(NAME, "production", 2)

    r = cli("-C", p.root, "apply", "edit.plan", "--no-color")
    assert r.code == 1, r.out + r.err
    assert "plan is stale: the remote changed since the plan was made" in r.err
    assert f"{NAME}: label production" in r.err
    assert p.count(NAME) == 2  # nothing of the stale plan was applied

    assert plan_actions(cli, p) == [("create_version", NAME, "a"),
                                    ("move_label", NAME, "production", p.rid(2), "new:a")]
    apply(cli, p)
    assert p.templates(NAME) == [A, B, A2]
    assert p.labels(NAME)["production"] == p.rid(3)
    assert_clean(cli, p)


# --------------------------------------------------------------------------- labels, metadata and prune


@on("promptlayer", "promptrails")
def test_a_label_dropped_from_the_file_is_removed_where_the_platform_can(cli, platform):
    p = platform
    applied(cli, p)
    before = p.writes()
    if p.kind == "promptlayer":  # staging goes; the release label is deleted
        write(p.root, FILE, greet(p, staging=False))
        commit(p.root, "Drop staging")
        assert plan_actions(cli, p) == [("remove_label", NAME, "staging", {"remote_version": "2", "version": "b"},
                                         None)]
        r = plan(cli, p, "--detailed-exitcode")
        assert r.code == 2, r.out + r.err
        assert action_lines(r.out) == ["  # support/greet will be updated", '  - label "staging": v2 (b)',
                                       "Plan: 0 versions to create, 0 labels to move, 1 label to remove, "
                                       "0 traffic splits to change, 0 prompts to delete."]
        out = apply(cli, p)
        assert ("Apply complete! 0 versions created, 0 labels moved, 1 label removed, 0 traffic splits changed, "
                "0 prompts deleted.") in out
        assert p.emu.log[-1][0] == "DELETE" and p.emu.log[-1][1].startswith("/prompt-labels/")
        assert p.writes() == before + 1
        assert p.labels(NAME) == {"production": "1"}
    else:  # PromptRails always has a current version: dropping production is a warning, nothing changes
        write(p.root, FILE, greet(p, production=None))
        commit(p.root, "Drop production")
        r = plan(cli, p, "--detailed-exitcode")
        assert r.code == 0, r.out + r.err
        assert "label 'production' is no longer declared, but provider promptrails cannot remove labels" in " ".join(
            (r.out + r.err).split())
        assert "No changes. Remote matches the files." in apply(cli, p)
        assert p.writes() == before
        assert p.labels(NAME) == {"production": p.rid(1)}
    assert p.count(NAME) == 2
    assert_clean(cli, p)


@on("promptrails")
def test_a_description_change_is_one_metadata_update(cli, platform):
    p = platform
    applied(cli, p)
    pid = p.emu.prompt_id(NAME)
    steps = [("Greets a customer by name", '(none) -> "Greets a customer by name"'),
             ("Greets a customer", '"Greets a customer by name" -> "Greets a customer"'),
             (None, '"Greets a customer" -> (none)')]
    for description, change in steps:
        write(p.root, FILE, greet(p, extra=f"description: {description}\n" if description else ""))
        commit(p.root, f"Description {description}")
        assert [a[0] for a in plan_actions(cli, p)] == ["update_metadata"]
        r = plan(cli, p, "--detailed-exitcode")
        assert r.code == 2, r.out + r.err
        assert action_lines(r.out) == ["  # support/greet will be updated", f"  ~ description: {change}",
                                       "Plan: 0 versions to create, 0 labels to move, 0 traffic splits to change, "
                                       "1 metadata update, 0 prompts to delete."]
        before = len(p.emu.log)
        out = apply(cli, p)
        assert ("Apply complete! 0 versions created, 0 labels moved, 0 traffic splits changed, 1 metadata update "
                "made, 0 prompts deleted.") in out
        assert [c for c in p.emu.log[before:] if c[0] != "GET"] == [("PATCH", f"/api/v1/prompts/{pid}")]
        assert p.emu.prompt(NAME)["description"] == (description or "")
        assert p.count(NAME) == 2 and p.labels(NAME) == {"production": p.rid(1)}
        assert_clean(cli, p)


OLD, OLD_FILE = "support/old", "prompts/support/old.yaml"


@on("promptrails", "promptlayer")
def test_prune_deletes_a_prompt_whose_file_was_removed_where_the_platform_can(cli, platform):
    p = platform
    write(p.root, OLD_FILE, greet(p, a="Old {{name}}", b="Older {{name}}"))
    applied(cli, p)
    git(p.root, "rm", "-q", OLD_FILE)
    commit(p.root, "Remove old")
    before = p.writes()
    old_versions = [v["version"] for v in p.emu.versions(OLD)] if p.kind == "promptrails" else ["1", "2"]

    # without --prune the prompt is kept, with a note
    r = plan(cli, p, "--detailed-exitcode")
    assert r.code == 0, r.out + r.err
    assert (f"1 prompt on target {p.target!r} is not declared by any file and will be kept: {OLD} (plan with "
            "--prune to delete it)") in " ".join((r.out + r.err).split())

    r = plan(cli, p, "--prune", "--detailed-exitcode")
    if p.kind == "promptrails":
        assert r.code == 2, r.out + r.err
        assert action_lines(r.out) == [f"  # {OLD} will be deleted",
                                       f'  # (because no file declares it for target "{p.target}")',
                                       f"  - prompt and its 2 versions ({', '.join(old_versions)})",
                                       "Plan: 0 versions to create, 0 labels to move, 0 traffic splits to change, "
                                       "1 prompt to delete."]
        pid = p.emu.prompt_id(OLD)
        r = cli("-C", p.root, "apply", "-t", p.target, "--prune", "--auto-approve", "--no-color")
        assert r.code == 0, r.out + r.err
        assert "Apply complete! 0 versions created, 0 labels moved, 0 traffic splits changed, 1 prompt deleted." in r.out
        assert p.writes() == before + 1 and p.emu.log[-1] == ("DELETE", f"/api/v1/prompts/{pid}")
        assert p.emu.prompt(OLD) is None
        assert p.emu.names() == [NAME]
    else:  # PromptLayer's API cannot delete a template: a warning, no request
        assert r.code == 0, r.out + r.err
        assert f"{OLD}: no file declares it, but provider promptlayer cannot delete prompts" in " ".join(
            (r.out + r.err).split())
        r = cli("-C", p.root, "apply", "-t", p.target, "--prune", "--auto-approve", "--no-color")
        assert r.code == 0, r.out + r.err
        assert p.writes() == before
        assert sorted(p.emu.names()) == [NAME, OLD]
    assert p.templates(NAME) == [A, B]
    r = plan(cli, p, "--prune", "--detailed-exitcode")
    assert (r.code, r.out.splitlines()[-1]) == (0, "No changes. Remote matches the files."), r.out + r.err


# --------------------------------------------------------------------------- capability errors


def assert_refused(cli, p: Platform, *needles: str) -> str:
    """plan exits 1 before any request, with an error naming the target and what it lacks."""
    commit(p.root, "Ask for too much")
    r = plan(cli, p)
    assert (r.code, r.out) == (1, ""), r.out + r.err
    assert f"target {p.target!r} ({p.kind})" in r.err
    for needle in needles:
        assert needle in r.err
    assert "Traceback" not in r.err
    if p.emu is not None:
        assert p.emu.log == []
    return r.err


@on("langfuse", "promptlayer", "promptrails")
def test_traffic_on_a_target_without_splits_is_a_plan_time_error(cli, platform):
    write(platform.root, FILE, greet(platform, traffic={"a": 90, "b": 10}))
    err = assert_refused(cli, platform, "has no traffic splits", "traffic for 'production'")
    assert err.startswith(f"{FILE}:")


@on("promptlab")
def test_a_chat_prompt_on_a_text_only_target_is_a_plan_time_error(cli, platform):
    write(platform.root, "prompts/assist.yaml",
          "messages:\n  - {role: system, content: You help.}\n  - {role: user, content: '{{question}}'}\n"
          "labels: [production]\n")
    err = assert_refused(cli, platform, "chat")
    assert err.startswith("prompts/assist.yaml:")


@on("promptlab")
@pytest.mark.parametrize("field, yaml", [
    ("model", "model: {name: gpt-4o, temperature: 0.2}\n"),
    ("tools", "tools:\n  - {type: function, function: {name: lookup, parameters: {}}}\n"),
])
def test_model_config_or_tools_on_a_content_string_target_is_a_plan_time_error(cli, platform, field, yaml):
    write(platform.root, FILE, greet(platform, extra=yaml))
    err = assert_refused(cli, platform, f"{field}:")
    assert err.startswith(f"{FILE}:")


CHAT = "prompts/assist.yaml"
TOOLS = "tools:\n  - {type: function, function: {name: lookup, parameters: {}}}\n"


def chat(*messages: str, fmt: str = "jinja2") -> str:
    """A chat prompt file of ``messages`` (YAML flow mappings), production on its one version."""
    return (f"type: chat\ntemplate_format: {fmt}\nmessages:\n"
            + "".join(f"  - {m}\n" for m in messages) + "labels: [production]\n")


SYSTEM, USER = "{role: system, content: You help.}", "{role: user, content: '{{question}}'}"
# (platform, file, its text or a function of the platform making it, what the error says)
GAPS = {
    "mustache-layer": ("promptlayer", FILE, lambda p: greet(p, fmt="mustache"), ["mustache"]),
    "mustache-rails": ("promptrails", FILE, lambda p: greet(p, fmt="mustache"), ["mustache"]),
    "f-string-rails": ("promptrails", FILE, lambda p: greet(p, fmt="f-string", a="Hello {name}", b="Hi {name}!"),
                       ["f-string"]),
    "tools-on-text-layer": ("promptlayer", FILE, lambda p: greet(p, extra=TOOLS), ["tools only in chat prompts"]),
    "model-without-provider-layer": ("promptlayer", FILE, lambda p: greet(p, extra="model: {name: gpt-4o}\n"),
                                     ["missing: provider"]),
    "user-only-chat-rails": ("promptrails", CHAT, chat(USER), ["system + user", "write it as a text prompt"]),
    "placeholder-rails": ("promptrails", CHAT, chat(SYSTEM, "{placeholder: history}", USER), ["placeholder"]),
    "three-messages-rails": ("promptrails", CHAT, chat(SYSTEM, USER, "{role: assistant, content: Sure.}"),
                             ["system + user"]),
    "empty-system-rails": ("promptrails", CHAT, chat("{role: system, content: ''}", USER), ["empty system message"]),
    "empty-template-rails": ("promptrails", FILE, lambda p: greet(p, b=""), ["empty template"]),
    "model-key-tools-rails": ("promptrails", FILE,
                              lambda p: greet(p, extra="model: {name: gpt-4o, tools: [lookup]}\n"), ["'tools'"]),
}


@pytest.mark.parametrize("platform, case", [(kind, case) for case, (kind, *_) in GAPS.items()],
                         indirect=["platform"], ids=list(GAPS))
def test_what_promptlayer_or_promptrails_cannot_hold_is_a_plan_time_error(cli, platform, case):
    _, path, text, needles = GAPS[case]
    write(platform.root, path, text(platform) if callable(text) else text)
    err = assert_refused(cli, platform, *needles)
    assert err.startswith(f"{path}:")


# --------------------------------------------------------------------------- apply's guards


@on(*REMOTE)
def test_apply_to_a_remote_target_refuses_uncommitted_files(cli, platform):
    p = platform
    applied(cli, p)
    write(p.root, FILE, greet(p, a=A2))
    r = cli("-C", p.root, "apply", "-t", p.target, "--auto-approve", "--no-color")
    assert r.code == 1, r.out + r.err
    assert f"uncommitted changes in {FILE}" in r.err and "--allow-dirty" in r.err
    assert p.templates(NAME) == [A, B]
    r = cli("-C", p.root, "apply", "-t", p.target, "--auto-approve", "--allow-dirty", "--no-color")
    assert r.code == 0, r.out + r.err
    assert p.templates(NAME) == [A, B, A2]


# --------------------------------------------------------------------------- credentials

WRONG = "this-is-the-wrong-secret-4d1f9c"


@on(*REMOTE)
@pytest.mark.parametrize("command", ["plan", "apply"])
def test_wrong_credentials_name_the_variables_and_never_print_the_secret(cli, platform, monkeypatch, command):
    p = platform
    write(p.root, FILE, greet(p))
    commit(p.root, "Add greet")
    variables = SECRETS[p.kind]
    monkeypatch.setenv(variables[0], WRONG)
    args = ["--auto-approve"] if command == "apply" else []
    r = cli("-C", p.root, command, "-t", p.target, "--no-color", *args)
    assert r.code == 1, r.out + r.err
    assert r.err.startswith(f"Error: target {p.target!r}: authentication failed (401)")
    for var in variables:
        assert var in r.err
    shown = r.out + r.err
    assert not [WRONG[i:i + 8] for i in range(len(WRONG) - 7) if WRONG[i:i + 8] in shown]  # not even a part
    assert "Traceback" not in r.err
    assert p.count(NAME) == 0



@on("promptlayer")
@pytest.mark.parametrize("value", ["null", "7"])
def test_a_promptlayer_model_provider_that_is_not_text_is_a_plan_time_error(cli, platform, value):
    write(platform.root, FILE, greet(platform, extra=f"model: {{provider: {value}, name: gpt-4o}}\n"))
    assert_refused(cli, platform, "provider")


# --------------------------------------------------------------------------- import


ASSIST, ASSIST_FILE = "assist", "prompts/assist.yaml"


def model_yaml(p: Platform) -> str:
    """Model config the platform can hold (PromptLab: none; PromptLayer needs a provider)."""
    if p.kind == "promptlab":
        return ""
    provider = "provider: openai, " if p.kind == "promptlayer" else ""
    return f"model: {{{provider}name: gpt-4o, temperature: 0.2}}\n"


def assist(p: Platform) -> str:
    """A chat prompt in the shape the platform holds (PromptRails: system + user), with CRLF,
    trailing spaces and a placeholder where there can be one."""
    placeholder = "  - {placeholder: history}\n" if p.kind != "promptrails" else ""
    fmt = "" if p.fmt == "mustache" else f"template_format: {p.fmt}\n"
    return (f"type: chat\n{fmt}" + model_yaml(p) + "messages:\n"
            '  - {role: system, content: "You help with {{product}}.\\r\\n\\tBe brief.  "}\n'
            + placeholder + '  - {role: user, content: "{{question}}\\n"}\n' + "labels: [production]\n")


def import_(cli, p: Platform, *args: str):
    return cli("-C", p.root, "import", "-t", p.target, "--no-color", *args)


def imported(p: Platform, rel: str) -> dict:
    return yaml.safe_load((p.root / rel).read_text(encoding="utf-8"))


def create_outside(p: Platform, template: str) -> None:
    """A third version of greet, made past promptops (no provenance stamp: the registry's table,
    the platform's own API or the emulator's state), with production on it."""
    if p.kind == "promptrails":  # its version id is the platform's own choice; current from the start
        p.emu.seed(NAME, user_prompt=template, current=True)
        return
    if p.kind == "local":
        content = canonical_content(type="text", template_format="mustache", template=template)
        conn = sqlite3.connect(p.root / ".promptops" / "registry.db")
        with conn:
            conn.execute("INSERT INTO versions (prompt_id, number, digest, content, provenance, created_at) "
                         "SELECT id, 3, ?, ?, NULL, '2024-05-01T12:00:00.000+00:00' FROM prompts WHERE name = ?",
                         (content_digest(content), json.dumps(content), NAME))
        conn.close()
    elif p.kind == "langfuse":
        r = httpx.post(f"{p.url}/api/public/v2/prompts", auth=p.auth,
                       json={"name": NAME, "type": "text", "prompt": template, "labels": []})
        assert r.status_code in (200, 201), r.text
    elif p.kind == "promptlayer":
        p.emu.seed(NAME, {"type": "completion", "content": [{"type": "text", "text": template}],
                          "input_variables": ["name"], "template_format": "jinja2"})
    else:
        p.emu.add_version(NAME, template)
    p.move_outside(NAME, "production", 3)


@on(*ALL)
def test_import_writes_files_that_plan_clean_and_never_overwrites_without_force(cli, platform):
    p = platform
    traffic = {"a": 90, "b": 10} if p.kind in TRAFFIC else None
    write(p.root, FILE, greet(p, traffic=traffic, extra=model_yaml(p) + "description: Greets a customer\n"))
    if p.kind != "promptlab":
        write(p.root, ASSIST_FILE, assist(p))
    commit(p.root, "Add prompts")
    apply(cli, p)
    writes = p.writes() if p.emu is not None else None
    shutil.rmtree(p.root / "prompts")

    r = import_(cli, p)
    assert r.code == 0, r.out + r.err
    names = [NAME] + ([ASSIST] if p.kind != "promptlab" else [])
    assert [line.split(":")[0] for line in r.out.splitlines() if line.startswith("wrote ")] == sorted(
        f"wrote prompts/{n}.yaml" for n in names)
    assert "Import complete! " + (f"{len(names)} prompts" if len(names) > 1 else "1 prompt") + " imported." in r.out
    assert "Traceback" not in r.err
    if p.emu is not None:
        assert p.writes() == writes  # import only reads
    r = cli("-C", p.root, "validate")
    assert r.code == 0, r.out + r.err
    assert_clean(cli, p)

    data = imported(p, FILE)
    if p.kind == "promptrails":  # one pointer, no split: only a is live, in the short form
        assert (data["template"], data["labels"]) == (A, ["production"])
        assert "versions" not in data
    else:
        assert list(data["versions"]) == ["a", "b"]  # the keys promptops stamped on the versions
        assert [v["template"] for v in data["versions"].values()] == [A, B]
        assert data["labels"] == {"production": "a", **({"staging": "b"} if p.many_labels else {})}  # no 'latest'
        assert all("model" not in v for v in data["versions"].values())
    assert data.get("traffic") == ({"production": {"a": 90, "b": 10}} if traffic else None)
    if p.kind != "promptlab":
        assert data["model"]["name"] == "gpt-4o" and data["model"]["temperature"] == 0.2  # one model: on the prompt
    assert ("description" in data) == ("description" in CAPABILITIES[p.kind].metadata)
    if p.kind != "promptlab":
        chat = imported(p, ASSIST_FILE)
        assert chat["labels"] == ["production"] and "versions" not in chat  # the short form
        assert chat["messages"][0]["content"] == "You help with {{product}}.\r\n\tBe brief.  "

    # an existing file is never overwritten without --force, and nothing else is written then
    before = (p.root / FILE).read_bytes()
    r = import_(cli, p, NAME)
    assert r.code == 1, r.out + r.err
    assert f"Error: {NAME}: not imported: {FILE} already declares prompt {NAME!r} (--force overwrites it" in r.err
    assert (p.root / FILE).read_bytes() == before
    r = import_(cli, p, NAME, "--force")
    assert r.code == 0, r.out + r.err
    assert f"wrote {FILE} (replaced): " in r.out
    assert_clean(cli, p)


@on(*ALL)
def test_import_picks_up_a_version_made_outside_promptops(cli, platform):
    p = platform
    write(p.root, FILE, greet(p, extra=model_yaml(p)))
    commit(p.root, "Add greet")
    apply(cli, p)
    create_outside(p, "Howdy {{name}}")
    shutil.rmtree(p.root / "prompts")

    r = import_(cli, p)
    assert r.code == 0, r.out + r.err
    assert f"({OUTSIDE})" in r.out
    text = (p.root / FILE).read_text(encoding="utf-8")
    assert f"# Imported by `promptops import` from target \"{p.target}\" ({p.kind})" in text
    assert OUTSIDE in text.splitlines()[1]
    data = imported(p, FILE)
    if p.many_labels:  # staging still on b: two versions, keyed by the stamp and by the remote id
        assert list(data["versions"]) == ["b", "v3"]
        assert data["versions"]["v3"] == {"template": "Howdy {{name}}"}
        assert data["labels"] == {"production": "v3", "staging": "b"}
        # the versions' model configs differ now: each version says its own
        assert "model" not in data and data["versions"]["b"]["model"]["temperature"] == 0.2
    else:  # one pointer: the outside version alone, in the short form
        assert (data["template"], data["labels"]) == ("Howdy {{name}}", ["production"])
        assert "model" not in data
    r = cli("-C", p.root, "validate")
    assert r.code == 0, r.out + r.err
    assert_clean(cli, p)


@on("promptlayer")
def test_import_reports_a_version_a_file_cannot_express_and_imports_the_rest(cli, platform):
    p = platform
    write(p.root, FILE, greet(p))
    commit(p.root, "Add greet")
    apply(cli, p)
    # made in PromptLayer's web app: two content blocks, which promptops never writes
    p.emu.seed("blocks", {"type": "completion", "template_format": "jinja2",
                          "content": [{"type": "text", "text": "One"}, {"type": "text", "text": "Two"}]},
               release_labels=["production"])
    shutil.rmtree(p.root / "prompts")

    r = import_(cli, p)
    assert r.code == 1, r.out + r.err
    assert "Error: blocks: not imported: version v1 holds what a prompt file cannot express" in r.err
    assert "Import incomplete: 1 prompt imported, 1 not imported (see the errors above)." in r.out
    assert not (p.root / "prompts" / "blocks.yaml").exists()
    assert (p.root / FILE).exists()
    r = cli("-C", p.root, "plan", "-t", p.target, "--no-color", "--detailed-exitcode")
    assert r.code == 0, r.out + r.err


@on(*TRAFFIC)
def test_import_picks_up_a_traffic_split_set_outside_promptops(cli, platform):
    p = platform
    applied(cli, p)
    if p.kind == "local":
        conn = sqlite3.connect(p.root / ".promptops" / "registry.db")
        with conn:
            conn.execute("INSERT INTO traffic (prompt_id, label, weights) SELECT id, 'production', ? FROM prompts "
                         "WHERE name = ?", (json.dumps({"1": 70, "2": 30}), NAME))
        conn.close()
    else:
        p.emu.deploy(NAME, {"v1": 70, "v2": 30}, label="production")
    assert p.traffic(NAME) == {p.rid(1): 70, p.rid(2): 30}
    shutil.rmtree(p.root / "prompts")

    r = import_(cli, p)
    assert r.code == 0, r.out + r.err
    assert "1 traffic split (production)" in r.out
    data = imported(p, FILE)
    assert data["traffic"] == {"production": {"a": 70, "b": 30}}
    assert data["labels"]["production"] == "a"
    assert_clean(cli, p)


# --------------------------------------------------------------------------- faults and concurrent applies

# the request that creates a version, as the emulators' fault matching sees it ("METHOD path")
CREATE_ROUTE = {"langfuse": r"^POST /api/public/v2/prompts$", "promptlab": r"^POST /v1/prompts/[^/]+/versions$",
                "promptlayer": r"^POST /rest/prompt-templates$",
                "promptrails": r"^POST /api/v1/prompts/[^/]+/versions$"}
NOW = {"Retry-After": "0"}


def creates(p: Platform) -> int:
    """How many create requests the platform received."""
    return p.emu.calls("POST", CREATE_ROUTE[p.kind].split(" ", 1)[1])  # server errors that ask for no wait, so the retries cost no test time


def greet_applied_once(p: Platform) -> None:
    """Versions a and b exactly once each, the labels on them, and a clean plan."""
    assert p.templates(NAME) == [A, B]
    assert p.labels(NAME) == {"production": p.rid(1), **({"staging": p.rid(2)} if p.many_labels else {})}


@on(*REMOTE)
@pytest.mark.parametrize("garbled", ["truncated", "malformed"])
def test_a_create_whose_2xx_answer_cannot_be_read_is_found_by_its_digest_not_reported_as_not_applied(
        cli, platform, garbled):
    p = platform
    write(p.root, FILE, greet(p))
    commit(p.root, "Add greet")
    p.emu.faults.garble_next(1, malformed=garbled == "malformed", match=CREATE_ROUTE[p.kind])
    r = cli("-C", p.root, "apply", "-t", p.target, "--auto-approve", "--no-color")
    assert r.code == 0, r.out + r.err
    assert "Not applied" not in r.err and "Nothing was applied" not in r.err
    assert creates(p) == 2  # the garbled one was not sent again
    greet_applied_once(p)
    assert_clean(cli, p)


@on(*REMOTE)
@pytest.mark.parametrize("faults", ["5xx, then the retry lands and its answer is lost", "two 5xx in a row",
                                    "a reset before it landed, then a 5xx"])
def test_a_create_is_retried_after_each_ambiguous_failure_once_a_read_shows_it_did_not_land(cli, platform, faults):
    p = platform
    write(p.root, FILE, greet(p))
    commit(p.root, "Add greet")
    route = CREATE_ROUTE[p.kind]
    if faults.startswith("5xx"):
        p.emu.faults.fail_next(1, 500, headers=NOW, match=route)
        p.emu.faults.drop_next(1, after=True, match=route)
    elif faults.startswith("two"):
        p.emu.faults.fail_next(2, 503, headers=NOW, match=route)
    else:
        p.emu.faults.drop_next(1, match=route)
        p.emu.faults.fail_next(1, 502, headers=NOW, match=route)
    r = cli("-C", p.root, "apply", "-t", p.target, "--auto-approve", "--no-color")
    assert r.code == 0, r.out + r.err
    greet_applied_once(p)
    assert_clean(cli, p)


def report(err: str) -> dict[str, list[str]]:
    """A failed apply's lists ("Applied before the stop", "May have been applied", "Not applied"),
    each as its action lines."""
    lists: dict[str, list[str]] = {}
    for block in err.split("\n\n"):
        head, _, rest = block.partition(": ")
        if head in ("Applied before the stop", "May have been applied", "Not applied"):
            lists[head] = [line.strip()[2:] for line in rest.splitlines()[1:]]
    return lists


@on(*REMOTE)
def test_a_create_failing_ambiguously_past_the_retry_budget_is_reported_as_may_have_been_applied(cli, platform):
    p = platform
    write(p.root, FILE, greet(p))
    commit(p.root, "Add greet")
    p.emu.faults.fail_next(5, 503, headers=NOW, match=CREATE_ROUTE[p.kind])  # the first attempt and 4 retries
    r = cli("-C", p.root, "apply", "-t", p.target, "--auto-approve", "--no-color")
    assert r.code == 1, r.out + r.err
    err = " ".join(r.err.split())
    assert "may have taken effect" in err and "Nothing was applied" not in err
    lists = report(r.err)
    carried = ["support/greet: move label production to a"] if p.kind != "promptlab" else []  # sent with the create
    assert lists["May have been applied"] == ["support/greet: create version a", *carried]
    assert "support/greet: create version a" not in lists["Not applied"]
    assert "Applied before the stop" not in lists
    assert "`promptops plan` shows whether it was" in err
    assert creates(p) == 5 and p.templates(NAME) == []  # nothing landed: each attempt was looked up first
    apply(cli, p)
    greet_applied_once(p)
    assert_clean(cli, p)


def engine(p: Platform):
    """A plan of the project's files for the platform's target and the provider it was made with,
    as one `promptops apply` makes them (the files as committed, the target's remote state now)."""
    from promptops.config import load_config
    from promptops.plan import build_plan
    from promptops.prompts import load_project
    from promptops.providers import open_provider

    config, _ = load_config(p.root)
    target = config.target(p.target)
    provider = open_provider(target, p.root)
    project = load_project(p.root)
    return build_plan(project.specs, provider.read(), target), provider


@on(*REMOTE)
def test_an_apply_planned_before_another_one_landed_uses_its_versions_instead_of_duplicating_them(cli, platform):
    from promptops.apply import apply_plan

    p = platform
    write(p.root, FILE, greet(p))
    commit(p.root, "Add greet")
    first, second = engine(p), engine(p)  # two CI jobs: both planned against the empty target
    try:
        apply_plan(*first)
        apply_plan(*second)  # reads the prompt again right before each create, finds both versions
    finally:
        first[1].close()
        second[1].close()
    greet_applied_once(p)
    assert creates(p) == 2
    assert_clean(cli, p)


def racing_applies(p: Platform, n: int = 2) -> list[subprocess.CompletedProcess]:
    """``n`` `promptops apply --auto-approve` processes started at once against the platform (two
    CI jobs, a laptop and CI), each creating the same version; their creates are held 0.3 s at the
    server, so both may have read the prompt before either create landed."""
    p.emu.faults.delay(0.3, n, match=CREATE_ROUTE[p.kind])
    procs = [subprocess.Popen([sys.executable, "-m", "promptops", "-C", str(p.root), "apply", "-t", p.target,
                               "--auto-approve", "--no-color"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(n)]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def serving(p: Platform) -> str:
    """The server id of the version ``production`` serves (PromptRails: its current version;
    elsewhere the label's version id)."""
    return p.emu.current(NAME)["id"] if p.kind == "promptrails" else p.labels(NAME)["production"]


def nth_id(p: Platform, n: int) -> str:
    """The server id of the n-th version (1-based, oldest first)."""
    return p.emu.versions(NAME)[n - 1]["id"] if p.kind == "promptrails" else p.rid(n)


@on(*REMOTE)
def test_racing_applies_both_succeed_and_a_clean_plan_names_the_duplicates_they_made(cli, platform):
    p = platform
    applied(cli, p)
    write(p.root, FILE, greet(p, b=A2, production="b"))  # an edit: a new version, production moves to it
    commit(p.root, "Edit greet")
    for run in racing_applies(p):
        assert run.returncode == 0, run.stdout + run.stderr
    templates = p.templates(NAME)
    assert templates[:2] == [A, B] and set(templates[2:]) == {A2}
    # where the platform has no unique or conditional create, the race may have made two copies
    assert len(templates) in (3, 4)
    r = plan(cli, p)
    assert r.code == 0, r.err
    if len(templates) == 4:
        out = " ".join(r.out.split())
        assert "support/greet: 2 remote versions have identical content: " in out, r.out
        if p.kind != "promptrails":  # shown by server id there (two versions of one string)
            assert (f"{p.shown(3)}, {p.shown(4)} (version 'b' of the file); every plan uses the oldest, "
                    f"{p.shown(3)}") in out, r.out
    assert_clean(cli, p)
    assert serving(p) in (nth_id(p, 3), *([nth_id(p, 4)] if len(templates) == 4 else ()))
