"""promptops is git-backed, end to end on real temporary repositories (the git binary, no mocks):
--ref, provenance, rollback by ``git revert``, ``history``, ``plan --changed-since``, the dirty
check before applying to a platform, and git's errors as one line with exit 1."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PLATFORM_CONFIG, commit, git, init_repo, write
from promptops.config import Target
from promptops.errors import ConfigError
from promptops.model import Plan
from promptops.providers.local import LocalProvider
from promptops.source import require_committed_plan



def rev(root: Path, ref: str, short: bool = False) -> str:
    return git(root, "rev-parse", *(["--short=7"] if short else []), ref).strip()


REPLY_A = """\
type: text
variables:
  question: {type: string}
versions:
  stable:
    template: "Answer politely: {{question}}"
  concise:
    template: "Answer in one sentence: {{question}}"
labels: {production: stable, staging: concise}
traffic:
  production: {stable: 90, concise: 10}
"""

SUMMARY = """\
type: text
variables:
  text: {type: string}
template: "Summarize: {{text}}"
labels: [production]
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with .gitignore (the registry), promptops.yaml and two prompts, committed."""
    root = init_repo(tmp_path / "repo")
    write(root, "promptops.yaml", "prompts: prompts\ntargets:\n  local: {provider: local}\n")
    write(root, "prompts/reply.yaml", REPLY_A)
    write(root, "prompts/summary.yaml", SUMMARY)
    commit(root, "A: reply and summary")
    return root


def registry(root: Path) -> LocalProvider:
    return LocalProvider(root / ".promptops/registry.db")


def remote(root: Path, name: str):
    with registry(root) as reg:
        return reg.read([name]).prompts[name]


def plan_json(cli, root: Path, *args: str) -> dict:
    r = cli("-C", root, "plan", "--json", *args)
    assert r.code == 0, r.err
    return json.loads(r.out)


def kinds(plan: dict) -> list[tuple[str, str]]:
    return [(a["kind"], a["prompt"]) for a in plan["actions"]]


def apply(cli, root: Path, *args: str) -> str:
    r = cli("-C", root, "apply", "--auto-approve", *args)
    assert r.code == 0, r.err
    return r.out


# --------------------------------------------------------------------------- rollback by revert


def _rollback(cli, repo: Path, change: dict[str, str], message: str, expect_after_revert: set[str]) -> None:
    """Apply A, commit and apply B (``change``), revert B, and check the plan only moves things
    back to A's versions and the registry holds exactly the versions of A and B."""
    apply(cli, repo)
    versions_a = {v.digest for v in remote(repo, "reply").versions}
    for rel, text in change.items():
        write(repo, rel, text)
    commit(repo, message)
    apply(cli, repo)
    versions_ab = {v.digest for v in remote(repo, "reply").versions}
    git(repo, "revert", "--no-edit", "HEAD")
    plan = plan_json(cli, repo)
    assert {a["kind"] for a in plan["actions"]} == expect_after_revert
    assert plan["summary"]["create_version"] == 0
    for action in plan["actions"]:
        target = action.get("to")
        if action["kind"] == "move_label":
            assert target["remote_version"] is not None  # an existing version, not a new one
    apply(cli, repo)
    after = remote(repo, "reply")
    assert {v.digest for v in after.versions} == versions_ab  # no third version
    assert len(after.versions) == len(versions_ab)
    assert cli("-C", repo, "plan", "--detailed-exitcode").code == 0
    return versions_a


def test_revert_of_a_content_label_and_traffic_commit_moves_back_without_new_versions(cli, repo):
    changed = (REPLY_A.replace("one sentence", "two sentences")
               .replace("staging: concise", "staging: stable")
               .replace("stable: 90, concise: 10", "stable: 50, concise: 50"))
    versions_a = _rollback(cli, repo, {"prompts/reply.yaml": changed}, "B: longer concise, staging, 50/50",
                           {"move_label", "set_traffic"})
    after = remote(repo, "reply")
    by_digest = {v.digest: v.id for v in after.versions}
    assert after.labels["staging"] in {by_digest[d] for d in versions_a}
    assert set(after.traffic["production"]) <= {by_digest[d] for d in versions_a}
    assert sorted(after.traffic["production"].values()) == [10, 90]
    git(repo, "revert", "--no-edit", "HEAD")  # re-apply B: its version exists, so nothing is created
    assert plan_json(cli, repo)["summary"]["create_version"] == 0
    apply(cli, repo)
    assert len(remote(repo, "reply").versions) == 3


def test_revert_of_a_label_only_commit(cli, repo):
    _rollback(cli, repo, {"prompts/reply.yaml": REPLY_A.replace("staging: concise", "staging: stable")},
              "B: staging to stable", {"move_label"})
    assert remote(repo, "reply").labels["staging"] == "2"


def test_revert_of_a_traffic_only_commit(cli, repo):
    _rollback(cli, repo, {"prompts/reply.yaml": REPLY_A.replace("stable: 90, concise: 10", "stable: 70, concise: 30")},
              "B: 70/30", {"set_traffic"})
    assert remote(repo, "reply").traffic["production"] == {"1": 90, "2": 10}


def test_revert_plan_text_names_the_existing_versions(cli, repo):
    apply(cli, repo)
    write(repo, "prompts/summary.yaml", SUMMARY.replace("Summarize", "Summarize briefly"))
    commit(repo, "B: briefer summary")
    apply(cli, repo)
    git(repo, "revert", "--no-edit", "HEAD")
    r = cli("-C", repo, "plan", "--no-color")
    assert '~ label "production": v2 -> v1 (default)' in r.out
    assert "Plan: 0 versions to create, 1 label to move, 0 traffic splits to change, 0 prompts to delete." in r.out


# --------------------------------------------------------------------------- provenance


def test_provenance_carries_short_sha_subject_path_and_key(cli, repo):
    sha = rev(repo, "HEAD")
    apply(cli, repo)
    stamp = remote(repo, "reply").versions[1].provenance
    assert stamp == {"commit": sha[:7], "dirty": False, "subject": "A: reply and summary",
                     "path": "prompts/reply.yaml", "version": "concise"}


def test_local_apply_from_a_dirty_tree_stamps_dirty(cli, repo):
    sha = rev(repo, "HEAD")
    write(repo, "prompts/summary.yaml", SUMMARY.replace("Summarize", "Sum up"))
    plan = plan_json(cli, repo)
    assert (plan["commit"], plan["dirty"]) == (sha, True)
    apply(cli, repo)  # the local target takes uncommitted files
    stamp = remote(repo, "summary").versions[0].provenance
    assert (stamp["commit"], stamp["dirty"]) == (sha[:7], True)


def test_registry_file_and_unrelated_files_do_not_make_the_tree_dirty(cli, repo):
    apply(cli, repo)
    write(repo, "notes.txt", "scratch\n")
    write(repo, "prompts/README.md", "how we write prompts\n")
    assert plan_json(cli, repo)["dirty"] is False


# --------------------------------------------------------------------------- --ref


def test_plan_and_apply_ref_read_that_commits_tree_without_a_checkout(cli, repo):
    sha_a = rev(repo, "HEAD")
    write(repo, "prompts/summary.yaml", SUMMARY.replace("Summarize", "Condense"))
    sha_b = commit(repo, "B: condense")
    write(repo, "prompts/summary.yaml", SUMMARY.replace("Summarize", "Work tree edit"))
    plan = plan_json(cli, repo, "--ref", "HEAD~1")
    assert (plan["commit"], plan["dirty"], plan["commit_subject"]) == (sha_a, False, "A: reply and summary")
    created = [a["content"]["template"] for a in plan["actions"] if a["kind"] == "create_version" and a["prompt"] == "summary"]
    assert created == ["Summarize: {{text}}"]
    apply(cli, repo, "--ref", sha_b[:10])
    summary = remote(repo, "summary")
    assert [v.content["template"] for v in summary.versions] == ["Condense: {{text}}"]
    assert summary.versions[0].provenance["commit"] == sha_b[:7]
    assert (repo / "prompts/summary.yaml").read_text().startswith("type: text")  # work tree untouched
    assert "Work tree edit" in (repo / "prompts/summary.yaml").read_text()
    assert rev(repo, "HEAD") == sha_b


def test_validate_ref_reports_the_commits_errors_with_positions(cli, repo):
    write(repo, "prompts/summary.yaml", SUMMARY.replace("labels: [production]", "labels: production"))
    commit(repo, "B: broken labels")
    write(repo, "prompts/summary.yaml", SUMMARY)  # fixed in the work tree only
    assert cli("-C", repo, "validate").code == 0
    r = cli("-C", repo, "validate", "--ref", "HEAD")
    assert r.code == 1
    assert r.err.startswith("prompts/summary.yaml:5:9: error:"), r.err
    ok = cli("-C", repo, "validate", "--ref", "HEAD~1")
    short = rev(repo, "HEAD~1", short=True)
    assert (ok.code, ok.out) == (0, f"Success! 2 prompt files are valid at {short} (HEAD~1).\n")


def test_ref_uses_the_commits_promptops_yaml_and_a_project_in_a_subdirectory(cli, tmp_path):
    root = tmp_path / "mono"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, "README.md", "monorepo\n")
    write(root, "app/promptops.yaml", "prompts: prompt-files\n")
    write(root, "app/prompt-files/summary.yaml", SUMMARY)
    commit(root, "A")
    git(root, "mv", "app/prompt-files", "app/prompts")
    write(root, "app/promptops.yaml", "prompts: prompts\n")
    commit(root, "B: rename the folder")
    plan = plan_json(cli, root / "app", "--ref", "HEAD~1")
    assert kinds(plan) == [("create_version", "summary"), ("move_label", "summary")]
    assert plan["actions"][0]["path"] == "prompt-files/summary.yaml"
    assert cli("-C", root / "app", "validate", "--ref", "HEAD").code == 0


def test_ref_in_a_shallow_detached_ci_clone(cli, repo, tmp_path):
    write(repo, "prompts/summary.yaml", SUMMARY.replace("Summarize", "Condense"))
    sha_b = commit(repo, "B")
    clone = tmp_path / "ci"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    git(clone, "checkout", "-q", "--detach")
    plan = plan_json(cli, clone, "--ref", "HEAD")
    assert plan["commit"] == sha_b
    r = cli("-C", clone, "plan", "--ref", "HEAD~1")
    assert r.code == 1 and r.out == ""
    assert r.err.strip().count("\n") == 0
    assert "unknown git ref 'HEAD~1': this clone is shallow" in r.err and "fetch-depth: 0" in r.err


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("args", [("plan", "--ref", "HEAD"), ("validate", "--ref", "HEAD"),
                                  ("plan", "--changed-since", "HEAD")])
def test_not_a_repository_is_one_line(cli, tmp_path, args):
    write(tmp_path, "prompts/summary.yaml", SUMMARY)
    r = cli("-C", tmp_path, *args)
    assert r.code == 1
    assert r.err == f"Error: {tmp_path.resolve()} is not in a git repository; run `git init` and commit the prompt files first\n"


def test_unknown_ref_is_one_line(cli, repo):
    r = cli("-C", repo, "apply", "--ref", "no-such-branch", "--auto-approve")
    assert r.code == 1
    assert r.err == ("Error: unknown git ref 'no-such-branch': no branch, tag or commit of that name here; "
                     "check the name, or fetch it first (git fetch origin no-such-branch)\n")
    assert not (repo / ".promptops/registry.db").exists()


def test_git_missing_is_one_line_and_plain_plans_still_work(repo):
    env = {"PATH": "/nonexistent", "HOME": str(repo), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    run = [sys.executable, "-m", "promptops", "-C", str(repo)]
    r = subprocess.run(run + ["plan", "--ref", "HEAD"], capture_output=True, text=True, env=env)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == ("Error: git is not installed or not on PATH (promptops needs it here); install git, "
                        "or set GIT_PYTHON_GIT_EXECUTABLE to its path\n")
    r = subprocess.run(run + ["plan", "--json"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["commit"] is None


# --------------------------------------------------------------------------- dirty tree and platforms



@pytest.fixture
def platform_repo(repo, monkeypatch):
    """``repo`` with a langfuse target ``prod`` served by the Langfuse emulator."""
    from emulators.langfuse import LangfuseEmulator

    monkeypatch.setenv("LF_PUBLIC", "pk-lf-git")
    monkeypatch.setenv("LF_SECRET", "sk-lf-secret-value")
    with LangfuseEmulator("pk-lf-git", "sk-lf-secret-value").serve() as server:
        write(repo, "promptops.yaml", PLATFORM_CONFIG.replace("http://127.0.0.1:9", server.url))
        write(repo, "prompts/reply.yaml", "targets: [local]  # langfuse has no traffic splits\n" + REPLY_A)
        commit(repo, "Add the prod target")
        yield repo


def test_apply_to_a_platform_refuses_uncommitted_prompt_files(cli, platform_repo):
    write(platform_repo, "prompts/summary.yaml", SUMMARY.replace("Summarize", "Sum up"))
    write(platform_repo, "prompts/fresh.yaml", SUMMARY)
    r = cli("-C", platform_repo, "apply", "-t", "prod", "--auto-approve")
    assert (r.code, r.out) == (1, "")
    assert r.err == ("Error: uncommitted changes in prompts/fresh.yaml, prompts/summary.yaml; commit them before "
                     "applying to target 'prod' (langfuse), or pass --allow-dirty\n")
    assert "sk-lf-secret-value" not in r.err


def test_apply_to_a_platform_passes_the_dirty_check_when_committed_or_allowed(cli, platform_repo):
    clean = cli("-C", platform_repo, "apply", "-t", "prod", "--auto-approve")
    assert clean.code == 0, clean.err
    assert "1 version created" in clean.out
    write(platform_repo, "prompts/summary.yaml", SUMMARY.replace("Summarize", "Sum up"))
    allowed = cli("-C", platform_repo, "apply", "-t", "prod", "--auto-approve", "--allow-dirty")
    assert allowed.code == 0 and "1 version created" in allowed.out, allowed.err
    from_ref = cli("-C", platform_repo, "apply", "-t", "prod", "--auto-approve", "--ref", "HEAD")
    assert from_ref.code == 0 and "0 versions created, 1 label moved" in from_ref.out, from_ref.err
    # the local target never asks
    assert cli("-C", platform_repo, "apply", "--auto-approve").code == 0


def test_apply_to_a_platform_outside_git_needs_allow_dirty(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("LF_PUBLIC", "pk")
    monkeypatch.setenv("LF_SECRET", "sk")
    write(tmp_path, "promptops.yaml", PLATFORM_CONFIG)
    write(tmp_path, "prompts/summary.yaml", SUMMARY)
    r = cli("-C", tmp_path, "apply", "-t", "prod", "--auto-approve")
    assert r.code == 1
    assert "is not in a git repository" in r.err and "--allow-dirty" in r.err
    assert r.err.count("\n") == 1


def test_saved_plan_from_uncommitted_files_is_refused_for_a_platform(tmp_path):
    prod, local = Target("prod", "langfuse"), Target("local", "local")
    dirty = Plan(target="prod", provider="langfuse", actions=(object(),), remote={}, commit="a" * 40, dirty=True)
    outside = Plan(target="prod", provider="langfuse", actions=(object(),), remote={}, commit=None, dirty=None)
    clean = Plan(target="prod", provider="langfuse", actions=(object(),), remote={}, commit="a" * 40, dirty=False)
    with pytest.raises(ConfigError, match="made from files with uncommitted changes.*--allow-dirty"):
        require_committed_plan(dirty, prod, allow_dirty=False)
    with pytest.raises(ConfigError, match="made from files outside git"):
        require_committed_plan(outside, prod, allow_dirty=False)
    require_committed_plan(clean, prod, allow_dirty=False)
    require_committed_plan(dirty, prod, allow_dirty=True)
    require_committed_plan(dirty, local, allow_dirty=False)


def test_saved_plan_and_ref_do_not_mix(cli, repo, tmp_path):
    out = tmp_path / "p.plan"
    assert cli("-C", repo, "plan", "-o", out).code == 0
    r = cli("-C", repo, "apply", out, "--ref", "HEAD")
    assert r.code == 1 and "--ref cannot be used with a saved plan" in r.err


# --------------------------------------------------------------------------- history


def test_history_answers_which_commit_is_live(cli, repo):
    sha_a = rev(repo, "HEAD")
    apply(cli, repo)
    write(repo, "prompts/reply.yaml", REPLY_A.replace("Answer politely", "Answer kindly")
          .replace("stable: 90, concise: 10", "stable: 80, concise: 20"))
    sha_b = commit(repo, "B: kinder stable answer")
    apply(cli, repo)
    r = cli("-C", repo, "history", "reply")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == 'History of prompt "reply" on target "local" (local)'
    production = next(line for line in lines if line.strip().startswith("production "))
    assert "v3 (stable)" in production and sha_b[:7] in production and "B: kinder stable answer" in production
    staging = next(line for line in lines if line.strip().startswith("staging "))
    assert "v2 (concise)" in staging and sha_a[:7] in staging
    split = [line.split() for line in lines if "(split)" in line]
    assert [(s[2], s[4], s[5]) for s in split] == [("v3", "80%", sha_b[:7]), ("v2", "20%", sha_a[:7])]
    data = json.loads(cli("-C", repo, "history", "reply", "--json").out)
    assert data["labels"]["production"]["commit"] == sha_b[:7]
    assert data["labels"]["production"]["remote_version"] == "3"
    assert [(t["remote_version"], t["weight"], t["commit"]) for t in data["traffic"]["production"]] == [
        ("3", 80, sha_b[:7]), ("2", 20, sha_a[:7])]
    assert [v["remote_version"] for v in data["versions"]] == ["3", "2", "1"]


def test_history_of_an_unknown_prompt(cli, repo):
    apply(cli, repo)
    r = cli("-C", repo, "history", "replies")
    assert (r.code, r.err) == (1, "Error: prompt 'replies' does not exist on target 'local' (local); "
                                  "did you mean 'reply'?\n")


# --------------------------------------------------------------------------- --changed-since


def test_changed_since_plans_only_the_changed_prompt_files(cli, repo):
    git(repo, "tag", "v1")
    apply(cli, repo)
    write(repo, "prompts/summary.yaml", SUMMARY.replace("Summarize", "Condense"))
    commit(repo, "B: condense")
    write(repo, "prompts/new.yaml", SUMMARY.replace("Summarize", "New"))  # untracked counts too
    full = plan_json(cli, repo)
    partial = plan_json(cli, repo, "--changed-since", "v1")
    assert kinds(partial) == kinds(full) == [("create_version", "new"), ("move_label", "new"),
                                             ("create_version", "summary"), ("move_label", "summary")]
    assert partial["warnings"][0].startswith("Partial plan: only 2 prompt files changed since v1 (")
    none = plan_json(cli, repo, "--changed-since", "HEAD", "--ref", "HEAD")
    assert none["actions"] == [] and none["warnings"][0].startswith("Partial plan: no prompt file changed since HEAD (")


def test_changed_since_ignores_what_changed_elsewhere(cli, repo):
    apply(cli, repo)
    with registry(repo) as reg:  # drift in a prompt nobody touched: only a full plan sees it
        reg.move_label("reply", "staging", "1")
    write(repo, "prompts/summary.yaml", SUMMARY.replace("Summarize", "Condense"))
    commit(repo, "B")
    assert {p for _, p in kinds(plan_json(cli, repo, "--changed-since", "HEAD~1"))} == {"summary"}
    assert {p for _, p in kinds(plan_json(cli, repo))} == {"summary", "reply"}


def test_changed_since_uses_the_merge_base_like_a_pull_request(cli, repo):
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo, "prompts/summary.yaml", SUMMARY.replace("Summarize", "Condense"))
    commit(repo, "feature: condense")
    git(repo, "checkout", "-q", "main")
    write(repo, "prompts/reply.yaml", REPLY_A.replace("politely", "warmly"))
    commit(repo, "main moved on")
    git(repo, "checkout", "-q", "feature")
    partial = plan_json(cli, repo, "--changed-since", "main")
    assert {p for _, p in kinds(partial)} == {"summary"}


def test_changed_since_a_config_change_plans_everything(cli, repo):
    write(repo, "promptops.yaml", "prompts: prompts\ntargets:\n  local: {provider: local, concurrency: 2}\n")
    commit(repo, "B: config")
    plan = plan_json(cli, repo, "--changed-since", "HEAD~1")
    assert {p for _, p in kinds(plan)} == {"reply", "summary"}
    assert not any(w.startswith("Partial plan") for w in plan["warnings"])


def test_changed_since_names_deleted_files_and_refuses_prune(cli, repo):
    apply(cli, repo)
    (repo / "prompts/summary.yaml").unlink()
    commit(repo, "B: drop summary")
    plan = plan_json(cli, repo, "--changed-since", "HEAD~1")
    assert plan["actions"] == []
    assert "Deleted since then: prompts/summary.yaml" in plan["warnings"][0]
    r = cli("-C", repo, "plan", "--changed-since", "HEAD~1", "--prune")
    assert (r.code, r.err) == (1, "Error: --prune needs a full plan (it deletes what no file declares); "
                                  "drop --changed-since\n")


def test_changed_since_still_checks_name_clashes_with_unchanged_files(cli, repo):
    write(repo, "prompts/other.yaml", "name: summary\n" + SUMMARY)
    r = cli("-C", repo, "plan", "--changed-since", "HEAD")
    assert r.code == 1
    assert "prompt name 'summary'" in r.err and "prompts/other.yaml:1:7" in r.err


# --------------------------------------------------------------------------- drift


def test_drift_compares_the_target_with_head_not_the_work_tree(cli, repo):
    apply(cli, repo)
    short = rev(repo, "HEAD", short=True)
    r = cli("-C", repo, "drift")
    assert (r.code, r.out) == (0, f'No drift: target "local" (local) matches commit {short}.\n')
    write(repo, "prompts/summary.yaml", SUMMARY.replace("Summarize", "Uncommitted"))
    assert cli("-C", repo, "drift").code == 0  # an edit in progress is not drift
    with registry(repo) as reg:
        reg.move_label("reply", "staging", "1")  # someone clicked in the platform's UI
    r = cli("-C", repo, "drift", "--no-color")
    assert r.code == 2
    assert r.out.startswith(f'Drift detected: target "local" (local) differs from commit {short}.')
    assert '~ label "staging": v1 (stable) -> v2 (concise)' in r.out
    assert "summary" not in r.out
    data = json.loads(cli("-C", repo, "drift", "--json").out)
    assert kinds(data) == [("move_label", "reply")] and data["commit"] == rev(repo, "HEAD")


def test_drift_at_a_ref_and_outside_git(cli, repo, tmp_path):
    apply(cli, repo)
    write(repo, "prompts/summary.yaml", SUMMARY.replace("Summarize", "Condense"))
    commit(repo, "B")
    assert cli("-C", repo, "drift", "--ref", "HEAD~1").code == 0
    assert cli("-C", repo, "drift").code == 2
    plain = tmp_path / "plain"
    write(plain, "prompts/summary.yaml", SUMMARY)
    assert cli("-C", plain, "drift").code == 2  # nothing applied yet
    apply(cli, plain)
    r = cli("-C", plain, "drift")
    assert (r.code, r.out) == (0, 'No drift: target "local" (local) matches the files.\n')
