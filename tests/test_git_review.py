"""Review of the git integration on real temporary repositories: behaviour the other git tests do
not pin yet (--ref with --changed-since, shallow pull-request clones, linked worktrees, unusual
file names, rollback with apply --ref from another checkout)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import commit, git, write

TEXT = 'type: text\ntemplate: "Hello {{x}}"\nlabels: [production]\n'




def plan_json(cli, root: Path, *args: str) -> dict:
    r = cli("-C", root, "plan", "--json", *args)
    assert r.code == 0, r.err
    return json.loads(r.out)


def created(plan: dict) -> dict[str, str]:
    """prompt -> template of each create_version action."""
    return {a["prompt"]: a["content"]["template"] for a in plan["actions"] if a["kind"] == "create_version"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, ".gitignore", ".promptops/\n")
    write(root, "prompts/a.yaml", TEXT)
    write(root, "prompts/b.yaml", TEXT.replace("Hello", "Bye"))
    commit(root, "A")
    return root


def test_ref_with_changed_since_plans_the_files_changed_up_to_the_ref_as_they_are_there(cli, repo):
    write(repo, "prompts/a.yaml", TEXT.replace("Hello", "Hi"))
    sha_b = commit(repo, "B: a")
    git(repo, "tag", "-a", "v2", "-m", "release 2")
    write(repo, "prompts/b.yaml", TEXT.replace("Hello", "Ciao"))
    commit(repo, "C: b")
    write(repo, "prompts/a.yaml", TEXT.replace("Hello", "WORKTREE"))  # never read with --ref
    plan = plan_json(cli, repo, "--ref", "v2", "--changed-since", "HEAD~2")
    assert plan["commit"] == sha_b and plan["dirty"] is False  # the annotated tag's commit
    assert created(plan) == {"a": "Hi {{x}}"}
    assert "Partial plan: only 1 prompt file changed since HEAD~2" in plan["warnings"][0]


def test_changed_since_in_a_shallow_pull_request_clone_says_to_fetch_more_history(cli, repo, tmp_path):
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo, "prompts/a.yaml", TEXT.replace("Hello", "Hi"))
    commit(repo, "feature: a")
    git(repo, "checkout", "-q", "main")
    write(repo, "prompts/c.yaml", TEXT)
    commit(repo, "main: c")
    clone = tmp_path / "ci"
    git(tmp_path, "clone", "-q", "--depth", "1", "--branch", "feature", f"file://{repo}", str(clone))
    git(clone, "fetch", "-q", "--depth", "1", "origin", "main:refs/remotes/origin/main")
    git(clone, "checkout", "-q", "--detach")
    r = cli("-C", clone, "plan", "--changed-since", "origin/main")
    assert (r.code, r.out) == (1, "")
    assert r.err == ("Error: cannot find where 'origin/main' and 'HEAD' meet: this clone is shallow: fetch more "
                     "history (git fetch --unshallow, or fetch-depth: 0 in actions/checkout)\n")
    git(clone, "fetch", "-q", "--unshallow")
    assert created(plan_json(cli, clone, "--changed-since", "origin/main")) == {"a": "Hi {{x}}"}


def test_linked_worktree_reads_refs_and_has_its_own_dirty_flag(cli, repo, tmp_path):
    write(repo, "prompts/a.yaml", TEXT.replace("Hello", "Hi"))
    sha_b = commit(repo, "B")
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "--detach", str(wt), "HEAD~1")
    plan = plan_json(cli, wt)
    assert plan["commit"] == git(repo, "rev-parse", "HEAD~1").strip() and plan["dirty"] is False
    assert created(plan_json(cli, wt, "--ref", "main"))["a"] == "Hi {{x}}"
    write(wt, "prompts/a.yaml", TEXT.replace("Hello", "Hey"))
    assert plan_json(cli, wt)["dirty"] is True
    main = plan_json(cli, repo)
    assert (main["commit"], main["dirty"]) == (sha_b, False)  # the main work tree is clean
    assert created(plan_json(cli, wt, "--changed-since", "HEAD")) == {"a": "Hey {{x}}"}


def test_file_names_with_spaces_tabs_and_unicode_keep_their_path(cli, repo):
    odd = "prompts/sub dir/héllo\twörld.yaml"
    write(repo, odd, "name: odd\n" + TEXT)
    assert plan_json(cli, repo)["dirty"] is True
    partial = plan_json(cli, repo, "--changed-since", "HEAD")
    assert [a["path"] for a in partial["actions"] if a["kind"] == "create_version"] == [odd]
    commit(repo, "odd name")
    at_ref = plan_json(cli, repo, "--ref", "HEAD", "--changed-since", "HEAD~1")
    assert [a["path"] for a in at_ref["actions"] if a["kind"] == "create_version"] == [odd]


def test_changed_since_a_move_between_folders_plans_the_new_name_and_names_the_old_file(cli, repo):
    (repo / "prompts/team").mkdir()
    git(repo, "mv", "prompts/a.yaml", "prompts/team/a.yaml")
    commit(repo, "move a")
    plan = plan_json(cli, repo, "--changed-since", "HEAD~1")
    assert created(plan) == {"team/a": "Hello {{x}}"}
    assert "Deleted since then: prompts/a.yaml" in plan["warnings"][0]


def test_rollback_with_apply_ref_from_an_older_checkout_creates_nothing(cli, repo):
    sha_a = git(repo, "rev-parse", "HEAD").strip()
    assert cli("-C", repo, "apply", "--auto-approve").code == 0
    write(repo, "prompts/a.yaml", TEXT.replace("Hello", "Hi"))
    sha_b = commit(repo, "B: mistake")
    assert cli("-C", repo, "apply", "--auto-approve").code == 0
    git(repo, "revert", "--no-edit", "HEAD")
    revert = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "HEAD~1")  # CI has something else checked out
    r = cli("-C", repo, "apply", "--ref", revert, "--auto-approve")
    assert r.code == 0, r.err
    assert "0 versions created, 1 label moved" in r.out
    assert plan_json(cli, repo, "--ref", revert)["actions"] == []
    history = json.loads(cli("-C", repo, "history", "a", "--json").out)
    assert history["labels"]["production"]["remote_version"] == "1"
    assert [v["commit"] for v in history["versions"]] == [sha_b[:7], sha_a[:7]]  # the revert made none
