"""The promptops-validate pre-commit hook, run by the real pre-commit tool in temporary git
repositories: the hook this repository publishes (.pre-commit-hooks.yaml, language: python) and the
one `promptops init` writes (repo: local, language: system), which must stay the same hook.

The hook repository is a git copy of this checkout: its tracked files with their work-tree
content, as one commit (uncommitted edits are tested, untracked files are not: a clone would not
have them). That works the same in a CI clone and in a dev tree, and gives `pre-commit install` a
committed rev. pre-commit builds the hook's environment by pip-installing that copy and its
dependencies (from PyPI): once per session in a session-wide PRE_COMMIT_HOME, plus once per
`pre-commit try-repo` call, which always uses a temporary store of its own.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import REPO, git, init_repo, write  # REPO: the checkout under test

from promptops.prompts import discover
from promptops.scaffold import PRE_COMMIT, scaffold

HOOK_ID = "promptops-validate"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

CONFIG = "targets:\n  local: {provider: local}\n"
GOOD = "description: A greeting\ntemplate: Say hello to {{name}}.\ntargets: [local]\n"
BROKEN = "template: Hi\nlables: [production]\n"
BROKEN_AT = "prompts/x.yaml:2:1: error: unknown key 'lables'"


def published_hooks() -> list[dict]:
    return yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))


def selected_by(hook: dict, path: str) -> bool:
    """Whether pre-commit passes ``path`` (relative to the git root) to ``hook``: it searches the
    path with ``files`` and ``exclude``."""
    return bool(re.search(hook.get("files", ""), path)) and not re.search(hook.get("exclude", "^$"), path)


@dataclass
class Ran:
    code: int
    out: str  # stdout and stderr as the user sees them, without colours


def run(cwd: Path, *args: str, home: Path) -> Ran:
    """Run a command as a user would, without their git configuration or hook settings: pre-commit
    (and the hook it runs) finds this environment's scripts first, with PRE_COMMIT_HOME ``home``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "PRE_COMMIT")) and k != "SKIP"}
    env.update(GIT_AUTHOR_NAME="Ada", GIT_AUTHOR_EMAIL="ada@example.com", GIT_COMMITTER_NAME="Ada",
               GIT_COMMITTER_EMAIL="ada@example.com", GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    env["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), env.get("PATH", os.defpath)])
    env["PRE_COMMIT_HOME"] = str(home)
    proc = subprocess.run(args, check=False, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=900)
    return Ran(proc.returncode, ANSI.sub("", proc.stdout))


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pre-commit's cache for the session: the hook's environment is built once."""
    return tmp_path_factory.mktemp("pre-commit-home")


# --------------------------------------------------------------------------- the hook definitions


def test_the_published_hook_is_a_valid_manifest(pre_commit_home: Path) -> None:
    r = run(REPO, sys.executable, "-m", "pre_commit", "validate-manifest", ".pre-commit-hooks.yaml",
            home=pre_commit_home)
    assert r.code == 0, r.out
    [hook] = published_hooks()
    assert hook["id"] == HOOK_ID
    assert (hook["entry"], hook["language"], hook["pass_filenames"]) == ("promptops validate", "python", True)


def test_init_writes_the_published_hook_as_a_local_hook(tmp_path: Path, pre_commit_home: Path) -> None:
    list(scaffold(tmp_path))
    written = tmp_path / ".pre-commit-config.yaml"
    assert written.read_text(encoding="utf-8") == PRE_COMMIT
    r = run(tmp_path, sys.executable, "-m", "pre_commit", "validate-config", str(written), home=pre_commit_home)
    assert r.code == 0, r.out
    [repo] = yaml.safe_load(PRE_COMMIT)["repos"]
    [local] = repo["hooks"]
    [published] = published_hooks()
    assert repo["repo"] == "local" and local["language"] == "system"
    # the same hook: every setting but how pre-commit gets promptops (and the manifest-only keys)
    same = {k: v for k, v in published.items() if k not in ("language", "description", "minimum_pre_commit_version")}
    assert {k: v for k, v in local.items() if k != "language"} == same


def test_the_hook_selects_the_files_validate_discovers(tmp_path: Path) -> None:
    """pre-commit passes a prompt file exactly when `promptops validate` would find it: hidden
    files and folders, other suffixes and other folders are left out (an explicitly named hidden
    file would be validated, and fail a commit that promptops otherwise ignores)."""
    paths = ["prompts/a.yaml", "prompts/B.YML", "prompts/sub/c.Yaml", "prompts/sub/deeper/d.yml",
             "prompts/.draft.yaml", "prompts/.wip/e.yaml", "prompts/sub/.f.yml", "prompts/notes.txt",
             "prompts/yaml", "prompts/g.yaml.bak", "other/prompts/i.yaml", "docs/j.yaml",
             "promptops.yaml", "promptops.yml", "sub/promptops.yaml", ".github/workflows/promptops.yml"]
    for p in paths:
        write(tmp_path, p, "x")
    discovered = {p.relative_to(tmp_path).as_posix() for p in discover(tmp_path / "prompts")}
    assert discovered == {"prompts/a.yaml", "prompts/B.YML", "prompts/sub/c.Yaml", "prompts/sub/deeper/d.yml"}
    for hook in (published_hooks()[0], yaml.safe_load(PRE_COMMIT)["repos"][0]["hooks"][0]):
        assert {p for p in paths if selected_by(hook, p)} == discovered | {"promptops.yaml"}
        # only the suffix is matched in any case: prompts/ and promptops.yaml are names promptops knows
        assert not any(selected_by(hook, p) for p in ("Prompts/h.yaml", "PROMPTS/h.yaml", "PromptOps.yaml"))


# --------------------------------------------------------------------------- the real tool


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(path, sha): this checkout's tracked files with their work-tree content, as one commit."""
    try:
        tracked = git(REPO, "ls-files", "-z", "--cached").split("\0")
    except (subprocess.CalledProcessError, FileNotFoundError):
        pytest.skip(f"{REPO} is not a git checkout: the hook repository is the git repository")
    dest = tmp_path_factory.mktemp("hook-repo")
    for rel in filter(None, tracked):
        src = REPO / rel
        if src.is_symlink() or src.is_file():  # not deleted in the work tree
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel, follow_symlinks=False)
    assert (dest / ".pre-commit-hooks.yaml").is_file(), ".pre-commit-hooks.yaml is not tracked by git"
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A", "-f")
    git(dest, "commit", "-qm", "promptops as checked out")
    return dest, git(dest, "rev-parse", "HEAD").strip()


def project(root: Path) -> Path:
    """A promptops project in a new git repository, with one good prompt, committed."""
    init_repo(root)
    write(root, "promptops.yaml", CONFIG)
    write(root, "prompts/greeting.yaml", GOOD)
    write(root, "README.md", "# prompts\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "start")
    return root


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def hook_line(out: str) -> str:
    """pre-commit's status line for the hook: 'promptops validate....Passed' and the like."""
    [line] = [ln for ln in out.splitlines() if ln.startswith("promptops validate.")]
    return line


def test_try_repo_fails_on_a_broken_prompt_and_passes_a_good_one(hook_repo: tuple[Path, str], tmp_path: Path,
                                                                  pre_commit_home: Path) -> None:
    """try-repo builds the hook's environment in a temporary store of its own, each time."""
    root = project(tmp_path / "project")
    write(root, "prompts/x.yaml", BROKEN)
    r = run(root, sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo[0]), HOOK_ID,
            "--files", "prompts/x.yaml", "prompts/greeting.yaml", home=pre_commit_home)
    assert r.code == 1, r.out
    assert hook_line(r.out).endswith("Failed")
    assert BROKEN_AT in r.out
    assert "prompts/greeting.yaml:" not in r.out

    write(root, "prompts/x.yaml", GOOD.replace("Say hello", "Say goodbye").replace("greeting", "farewell"))
    r = run(root, sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo[0]), HOOK_ID,
            "--files", "prompts/x.yaml", "prompts/greeting.yaml", home=pre_commit_home)
    assert r.code == 0, r.out
    assert hook_line(r.out).endswith("Passed")


@pytest.fixture
def installed(hook_repo: tuple[Path, str], pre_commit_home: Path, tmp_path: Path) -> Path:
    """A project whose .pre-commit-config.yaml uses the published hook at the hook repository's
    commit, installed as its git pre-commit hook."""
    root = project(tmp_path / "project")
    path, sha = hook_repo
    write(root, ".pre-commit-config.yaml",
          f"repos:\n  - repo: {path}\n    rev: {sha}\n    hooks:\n      - id: {HOOK_ID}\n")
    git(root, "add", ".pre-commit-config.yaml")
    git(root, "commit", "-qm", "pre-commit")
    r = run(root, sys.executable, "-m", "pre_commit", "install", home=pre_commit_home)
    assert r.code == 0, r.out
    return root


def commit(root: Path, home: Path, *files: str) -> Ran:
    """Stage ``files`` and `git commit` them, with the installed hook."""
    git(root, "add", "--", *files)
    return run(root, "git", "commit", "-m", f"change {' '.join(files)}", home=home)


def test_a_broken_prompt_blocks_the_commit_and_a_good_one_lands(installed: Path, pre_commit_home: Path) -> None:
    root, before = installed, head(installed)
    write(root, "prompts/x.yaml", BROKEN)
    r = commit(root, pre_commit_home, "prompts/x.yaml")
    assert r.code == 1, r.out
    assert hook_line(r.out).endswith("Failed")
    assert BROKEN_AT in r.out
    assert head(root) == before

    write(root, "prompts/x.yaml", "template: Hi\nlabels: [production]\n")
    r = commit(root, pre_commit_home, "prompts/x.yaml")
    assert r.code == 0, r.out
    assert hook_line(r.out).endswith("Passed")
    assert head(root) != before
    assert git(root, "show", "--name-only", "--format=", "HEAD").split() == ["prompts/x.yaml"]


def test_other_files_and_hidden_prompt_files_skip_the_hook(installed: Path, pre_commit_home: Path) -> None:
    root, before = installed, head(installed)
    write(root, "README.md", "# prompts\n\nMore.\n")
    write(root, "prompts/.draft.yaml", BROKEN)  # promptops skips hidden files; so does the hook
    r = commit(root, pre_commit_home, "README.md", "prompts/.draft.yaml")
    assert r.code == 0, r.out
    assert hook_line(r.out).endswith("(no files to check)Skipped")
    assert head(root) != before


def test_a_config_change_is_checked_against_the_unchanged_prompts(installed: Path, pre_commit_home: Path) -> None:
    root, before = installed, head(installed)
    write(root, "promptops.yaml", "targets:\n  dev: {provider: local}\n")  # greeting.yaml names 'local'
    r = commit(root, pre_commit_home, "promptops.yaml")
    assert r.code == 1, r.out
    assert "prompts/greeting.yaml:3:11: error: unknown target 'local'" in r.out
    assert head(root) == before


def test_a_changed_file_is_checked_for_a_unique_name(installed: Path, pre_commit_home: Path) -> None:
    root, before = installed, head(installed)
    write(root, "prompts/other.yaml", "name: greeting\ntemplate: Hi\n")
    r = commit(root, pre_commit_home, "prompts/other.yaml")
    assert r.code == 1, r.out
    assert ("prompts/other.yaml:1:7: error: prompt name 'greeting' is already used by prompts/greeting.yaml:1:1"
            in r.out)
    assert head(root) == before


def test_the_hook_init_writes_runs_the_installed_promptops(tmp_path: Path, pre_commit_home: Path) -> None:
    """`language: system`: no environment to build; the promptops of this environment runs."""
    root = init_repo(tmp_path / "project")
    r = run(root, sys.executable, "-m", "promptops", "init", home=pre_commit_home)
    assert r.code == 0 and "wrote .pre-commit-config.yaml" in r.out, r.out
    assert run(root, sys.executable, "-m", "pre_commit", "install", home=pre_commit_home).code == 0
    git(root, "add", "-A")
    r = run(root, "git", "commit", "-m", "promptops init", home=pre_commit_home)
    assert r.code == 0, r.out
    assert hook_line(r.out).endswith("Passed")
    before = head(root)

    example = root / "prompts/example.yaml"
    example.write_text(example.read_text(encoding="utf-8").replace("labels:", "lables:"), encoding="utf-8")
    r = commit(root, pre_commit_home, "prompts/example.yaml")
    assert r.code == 1, r.out
    assert re.search(r"^prompts/example\.yaml:\d+:1: error: unknown key 'lables'", r.out, re.MULTILINE), r.out
    assert head(root) == before
