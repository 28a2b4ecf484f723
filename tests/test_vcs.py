"""promptops.vcs against real git repositories made with the git binary in temporary directories."""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from conftest import git, write
from promptops.vcs import Changes, Commit, GitError, Repository, head

PATHS = ["promptops.yaml", "prompts"]


def sha(root: Path, ref: str = "HEAD") -> str:
    return git(root, "rev-parse", ref).strip()


def status(root: Path) -> str:
    return git(root, "status", "--porcelain=v1", "--untracked-files=all", "--ignored")


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Path:
    """A project at the top of a repository, two commits on ``main``:

    * ``v1`` (lightweight tag) "Add prompts": promptops.yaml, prompts/greet.yaml, prompts/support/reply.yaml,
      prompts/README.md, notes.txt, .gitignore;
    * ``release`` (annotated tag) "Tighten greeting": greet.yaml changed, an executable script, a nested
      .yml file, a symlink to a file and one to a folder.
    """
    root = tmp_path_factory.mktemp("template") / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, "promptops.yaml", "prompts: prompts\n")
    write(root, "prompts/greet.yaml", "name: greet\ntemplate: Hello v1\n")
    write(root, "prompts/support/reply.yaml", "name: support/reply\n")
    write(root, "prompts/README.md", "# prompts\n")
    write(root, "notes.txt", "notes\n")
    write(root, ".gitignore", ".promptops/\nprompts/*.local.yaml\nprompts/generated/\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "Add prompts")
    git(root, "tag", "v1")
    write(root, "prompts/greet.yaml", "name: greet\ntemplate: Hello v2\n")
    write(root, "prompts/support/deep/escalate.yml", "name: support/escalate\n")
    script = write(root, "prompts/tools/run.sh", "#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    os.symlink("greet.yaml", root / "prompts/alias.yaml")
    os.symlink("../tools", root / "prompts/support/tools")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "Tighten greeting\n\nThe body of the message.")
    git(root, "tag", "-a", "release", "-m", "Release")
    assert status(root) == ""
    return root


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    """A private copy of the template repository."""
    dest = tmp_path / "repo"
    shutil.copytree(template, dest, symlinks=True)
    return dest


def new_repo(root: Path, files: dict[str, str], message: str = "Initial") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    for rel, text in files.items():
        write(root, rel, text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return root


# ---------------------------------------------------------------------------- opening


def test_open_outside_a_repository_is_a_git_error(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitError) as err:
        Repository.open(plain)
    assert f"{plain.resolve()} is not in a git repository" in str(err.value)
    assert "git init" in str(err.value)
    with pytest.raises(GitError, match="is not in a git repository"):
        Repository.open(tmp_path / "missing")


def test_open_a_bare_repository_is_a_git_error(tmp_path):
    bare = tmp_path / "bare.git"
    bare.mkdir()
    git(bare, "init", "-q", "--bare")
    with pytest.raises(GitError, match="bare git repository"):
        Repository.open(bare)


def test_lenient_head_is_none_outside_a_repository_and_without_commits(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert head(plain) is None
    assert head(plain, PATHS) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    write(empty, "prompts/a.yaml", "name: a\n")
    assert head(empty) is None
    assert head(empty, PATHS) is None
    with pytest.raises(GitError, match="no commits yet"):
        Repository.open(empty).head(PATHS)


def test_open_from_a_subfolder_finds_the_repository_above(repo):
    opened = Repository.open(repo / "prompts" / "support")
    assert opened.top == repo.resolve()
    assert str(opened.prefix) == "prompts/support"


# ---------------------------------------------------------------------------- head and the dirty flag


def test_head_of_a_clean_work_tree(repo):
    expected = Commit(sha=sha(repo), short=sha(repo)[:7], subject="Tighten greeting", dirty=False, dirty_files=())
    assert head(repo, PATHS) == expected
    assert head(repo) == expected
    assert Repository.open(repo).head(PATHS) == expected


def test_files_promptops_does_not_read_never_make_head_dirty(repo):
    write(repo, "notes.txt", "edited\n")                        # tracked, outside the project's paths
    write(repo, "src/app.yaml", "x: 1\n")                       # untracked yaml outside the paths
    write(repo, ".promptops/registry.db", "sqlite")             # the local registry (ignored)
    write(repo, "prompts/README.md", "# changed\n")             # tracked, not a prompt file
    write(repo, "prompts/notes.txt", "scratch\n")               # untracked, not a prompt file
    write(repo, "prompts/.drafts/x.yaml", "name: draft\n")      # hidden folder
    write(repo, "prompts/.hidden.yaml", "name: hidden\n")       # hidden file
    write(repo, "prompts-old/greet.yaml", "name: old\n")        # a sibling whose name starts like the folder
    write(repo, "promptops.yaml.bak", "prompts: old\n")         # a sibling of the config file
    write(repo, "prompts/tools/run.sh", "#!/bin/sh\necho changed\n")
    assert status(repo) != ""
    commit = head(repo, PATHS)
    assert (commit.sha, commit.dirty, commit.dirty_files) == (sha(repo), False, ())


def _modify(repo: Path) -> None:
    write(repo, "prompts/greet.yaml", "name: greet\ntemplate: edited\n")


def _stage(repo: Path) -> None:
    write(repo, "prompts/support/reply.yaml", "name: support/reply\nstaged: true\n")
    git(repo, "add", "prompts/support/reply.yaml")


def _stage_then_revert_work_tree(repo: Path) -> None:
    original = (repo / "prompts/greet.yaml").read_text()
    write(repo, "prompts/greet.yaml", "name: greet\nstaged: true\n")
    git(repo, "add", "prompts/greet.yaml")
    write(repo, "prompts/greet.yaml", original)  # the index differs from HEAD, the work tree does not


def _delete(repo: Path) -> None:
    (repo / "prompts/support/reply.yaml").unlink()


def _git_rm(repo: Path) -> None:
    git(repo, "rm", "-q", "prompts/support/reply.yaml")


def _untracked(repo: Path) -> None:
    write(repo, "prompts/new.yaml", "name: new\n")


def _config(repo: Path) -> None:
    write(repo, "promptops.yaml", "prompts: prompts\ndefault_target: local\n")


def _ignored(repo: Path) -> None:
    write(repo, "prompts/secret.local.yaml", "name: secret\n")


def _nested_yml(repo: Path) -> None:
    write(repo, "prompts/support/deep/escalate.yml", "name: support/escalate\nedited: true\n")


def _rename(repo: Path) -> None:
    git(repo, "mv", "prompts/greet.yaml", "prompts/hello.yaml")


@pytest.mark.parametrize("change, expected", [
    (_modify, ("prompts/greet.yaml",)),
    (_stage, ("prompts/support/reply.yaml",)),
    (_stage_then_revert_work_tree, ("prompts/greet.yaml",)),
    (_delete, ("prompts/support/reply.yaml",)),
    (_git_rm, ("prompts/support/reply.yaml",)),
    (_untracked, ("prompts/new.yaml",)),
    (_config, ("promptops.yaml",)),
    (_ignored, ("prompts/secret.local.yaml",)),
    (_nested_yml, ("prompts/support/deep/escalate.yml",)),
    (_rename, ("prompts/greet.yaml", "prompts/hello.yaml")),
], ids=lambda v: v.__name__.strip("_") if callable(v) else None)
def test_changes_to_files_promptops_reads_make_head_dirty(repo, change, expected):
    change(repo)
    commit = head(repo, PATHS)
    assert (commit.sha, commit.dirty, commit.dirty_files) == (sha(repo), True, expected)
    assert Repository.open(repo).uncommitted(PATHS) == list(expected)


def test_head_without_paths_is_never_dirty(repo):
    _modify(repo)
    _untracked(repo)
    assert head(repo).dirty is False
    assert head(repo).dirty_files == ()


def test_dirty_files_are_sorted_and_keep_unusual_names(repo):
    _modify(repo)
    _config(repo)
    write(repo, "prompts/my prompt.yaml", "name: spaced\n")
    write(repo, "prompts/café.yaml", "name: cafe\n")
    write(repo, "prompts/Upper.YAML", "name: upper\n")
    commit = head(repo, PATHS)
    assert commit.dirty_files == ("promptops.yaml", "prompts/Upper.YAML", "prompts/café.yaml", "prompts/greet.yaml",
                                  "prompts/my prompt.yaml")


def test_dirty_check_is_limited_to_the_paths_given(repo):
    _modify(repo)
    _config(repo)
    assert head(repo, ["promptops.yaml"]).dirty_files == ("promptops.yaml",)
    assert head(repo, ["prompts"]).dirty_files == ("prompts/greet.yaml",)
    assert head(repo, ["prompts/support"]).dirty is False


def test_detached_head(repo):
    first = sha(repo, "v1")
    git(repo, "checkout", "-q", "--detach", "v1")
    assert head(repo, PATHS) == Commit(sha=first, short=first[:7], subject="Add prompts")
    _untracked(repo)
    assert head(repo, PATHS) == Commit(sha=first, short=first[:7], subject="Add prompts", dirty=True,
                                       dirty_files=("prompts/new.yaml",))


# ---------------------------------------------------------------------------- resolving refs


@pytest.mark.parametrize("ref, target", [
    ("main", "HEAD"),
    ("HEAD", "HEAD"),
    ("v1", "v1"),
    ("release", "HEAD"),   # an annotated tag names its commit
    ("HEAD~1", "v1"),
    ("HEAD^", "v1"),
    ("main~1", "v1"),
])
def test_commit_resolves_names(repo, ref, target):
    expected = sha(repo, f"{target}^{{commit}}")
    subject = "Tighten greeting" if target == "HEAD" else "Add prompts"
    assert Repository.open(repo).commit(ref) == Commit(sha=expected, short=expected[:7], subject=subject)


def test_commit_resolves_full_and_short_shas(repo):
    opened = Repository.open(repo)
    first = sha(repo, "v1")
    assert opened.commit(first) == Commit(sha=first, short=first[:7], subject="Add prompts")
    assert opened.commit(first[:7]) == Commit(sha=first, short=first[:7], subject="Add prompts")


def test_commit_is_never_dirty_even_with_a_dirty_work_tree(repo):
    _modify(repo)
    assert Repository.open(repo).commit("HEAD").dirty is False


@pytest.mark.parametrize("ref", ["nope", "HEAD~5", "v1~1", "origin/main", "0123456789abcdef0123456789abcdef01234567"])
def test_unknown_ref_says_to_fetch(repo, ref):
    with pytest.raises(GitError) as err:
        Repository.open(repo).commit(ref)
    text = str(err.value)
    assert f"unknown git ref {ref!r}" in text
    if ref in ("nope", "origin/main"):  # a name: fetch it
        assert f"git fetch origin {ref}" in text
    else:  # a sha or a relative ref: there is no name to fetch
        assert text.endswith("no such commit in this clone; check it, or fetch more history")
    assert "shallow" not in text


def test_a_blob_is_not_a_commit(repo):
    blob = git(repo, "rev-parse", "HEAD:prompts/greet.yaml").strip()
    with pytest.raises(GitError, match="unknown git ref"):
        Repository.open(repo).commit(blob)


@pytest.mark.parametrize("ref", ["-n", "--all", "--output=out.txt", "-", ""])
def test_refs_that_look_like_options_are_refused(repo, ref):
    with pytest.raises(GitError, match="invalid git ref"):
        Repository.open(repo).commit(ref)
    assert not (repo / "out.txt").exists()
    assert status(repo) == ""


def test_shallow_clone(repo, tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    opened = Repository.open(clone)
    assert opened.shallow is True
    assert Repository.open(repo).shallow is False
    top = sha(repo)
    assert opened.head(PATHS) == Commit(sha=top, short=top[:7], subject="Tighten greeting")
    assert opened.commit("HEAD").sha == top
    for ref in ("HEAD~1", "v1", sha(repo, "v1")):
        with pytest.raises(GitError) as err:
            opened.commit(ref)
        assert f"unknown git ref {ref!r}" in str(err.value)
        assert "shallow" in str(err.value)
        assert "fetch-depth: 0" in str(err.value)
    with pytest.raises(GitError, match="fetch-depth: 0"):
        opened.changed_since("HEAD~1", PATHS, "promptops.yaml")


# ---------------------------------------------------------------------------- knows


def test_knows(repo):
    opened = Repository.open(repo)
    assert opened.knows(sha(repo)) is True
    assert opened.knows(sha(repo, "v1")) is True
    assert opened.knows(sha(repo, "v1")[:7]) is True
    assert opened.knows("deadbeefdeadbeefdeadbeefdeadbeefdeadbeef") is False
    assert opened.knows("0123456789abcdef0123456789abcdef01234567") is False
    assert opened.knows("deadbee") is False


# ---------------------------------------------------------------------------- materialize and read_file


def tree(root: Path) -> dict[str, object]:
    """Every entry below ``root``: a file's bytes, ('link', target) for a symlink, 'dir' for a folder."""
    found: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = path.read_bytes()
    return found


def test_materialize_writes_the_files_at_the_ref_not_the_work_tree(repo, tmp_path):
    _modify(repo)
    _untracked(repo)
    _config(repo)
    (repo / "prompts/support/reply.yaml").unlink()
    before = status(repo)
    work_tree = tree(repo / "prompts")
    dest = tmp_path / "out"
    project = Repository.open(repo).materialize("HEAD", [*PATHS, "missing.yaml", "prompts/missing"], dest)
    assert project == dest
    assert tree(dest) == {
        "prompts": "dir",
        "promptops.yaml": b"prompts: prompts\n",
        "prompts/README.md": b"# prompts\n",
        "prompts/alias.yaml": ("link", "greet.yaml"),
        "prompts/greet.yaml": b"name: greet\ntemplate: Hello v2\n",
        "prompts/support": "dir",
        "prompts/support/deep": "dir",
        "prompts/support/deep/escalate.yml": b"name: support/escalate\n",
        "prompts/support/reply.yaml": b"name: support/reply\n",
        "prompts/support/tools": ("link", "../tools"),
        "prompts/tools": "dir",
        "prompts/tools/run.sh": b"#!/bin/sh\necho hi\n",
    }
    assert (dest / "prompts/alias.yaml").read_bytes() == b"name: greet\ntemplate: Hello v2\n"  # the link works
    assert (dest / "prompts/support/tools/run.sh").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert stat.S_ISREG((dest / "prompts/tools/run.sh").lstat().st_mode)
    assert status(repo) == before
    assert tree(repo / "prompts") == work_tree


def test_materialize_an_older_ref(repo, tmp_path):
    dest = tmp_path / "out"
    assert Repository.open(repo).materialize("v1", PATHS, dest) == dest
    assert tree(dest) == {
        "prompts": "dir",
        "promptops.yaml": b"prompts: prompts\n",
        "prompts/README.md": b"# prompts\n",
        "prompts/greet.yaml": b"name: greet\ntemplate: Hello v1\n",
        "prompts/support": "dir",
        "prompts/support/reply.yaml": b"name: support/reply\n",
    }
    assert status(repo) == ""


def test_materialize_single_file_and_nothing(repo, tmp_path):
    opened = Repository.open(repo)
    dest = tmp_path / "one"
    assert opened.materialize("v1", ["prompts/greet.yaml"], dest) == dest
    assert tree(dest) == {"prompts": "dir", "prompts/greet.yaml": b"name: greet\ntemplate: Hello v1\n"}
    empty = tmp_path / "none"
    assert opened.materialize("v1", ["nope", "prompts/tools"], empty) == empty
    assert tree(empty) == {}


def test_materialize_unknown_ref(repo, tmp_path):
    with pytest.raises(GitError, match="unknown git ref 'nope'"):
        Repository.open(repo).materialize("nope", PATHS, tmp_path / "out")


def test_read_file(repo):
    opened = Repository.open(repo)
    _modify(repo)
    assert opened.read_file("v1", "prompts/greet.yaml") == b"name: greet\ntemplate: Hello v1\n"
    assert opened.read_file("HEAD", "prompts/greet.yaml") == b"name: greet\ntemplate: Hello v2\n"
    assert opened.read_file("release", "promptops.yaml") == b"prompts: prompts\n"
    assert opened.read_file("HEAD", "./prompts/support/../greet.yaml") == b"name: greet\ntemplate: Hello v2\n"
    assert opened.read_file("v1", "prompts/support/deep/escalate.yml") is None   # added later
    assert opened.read_file("HEAD", "prompts/missing.yaml") is None
    assert opened.read_file("HEAD", "prompts") is None                           # a folder
    assert opened.read_file("HEAD", "../outside.yaml") is None                   # leaves the repository
    with pytest.raises(GitError, match="unknown git ref"):
        opened.read_file("nope", "promptops.yaml")


# ---------------------------------------------------------------------------- a project in a subfolder


@pytest.fixture
def mono(tmp_path: Path) -> Path:
    """A repository with the project in app/, another project in other/ and shared files in shared/."""
    root = new_repo(tmp_path / "mono", {
        "app/promptops.yaml": "prompts: prompts\n",
        "app/prompts/a.yaml": "name: a\n",
        "app/prompts/team/b.yaml": "name: team/b\n",
        "other/promptops.yaml": "prompts: prompts\n",
        "other/prompts/c.yaml": "name: c\n",
        "shared/common.yaml": "name: common\n",
        "README.md": "# mono\n",
    }, "Start")
    return root


def test_subfolder_project_dirty_paths_are_project_relative(mono, monkeypatch):
    monkeypatch.chdir(mono / "other")  # the process's directory does not matter
    write(mono, "other/prompts/c.yaml", "name: c\nedited: true\n")
    write(mono, "other/promptops.yaml", "prompts: elsewhere\n")
    write(mono, "README.md", "# edited\n")
    write(mono, "shared/common.yaml", "name: common\nedited: true\n")
    app = mono / "app"
    assert head(app, PATHS).dirty is False
    write(mono, "app/prompts/team/b.yaml", "name: team/b\nedited: true\n")
    write(mono, "app/prompts/new.yaml", "name: new\n")
    write(mono, "app/promptops.yaml", "prompts: prompts\n# edited\n")
    commit = head(app, PATHS)
    assert commit.dirty_files == ("promptops.yaml", "prompts/new.yaml", "prompts/team/b.yaml")
    assert head(app, ["../shared"]).dirty_files == ("../shared/common.yaml",)


def test_subfolder_project_changed_paths_are_project_relative(mono, monkeypatch):
    start = sha(mono)
    write(mono, "app/prompts/a.yaml", "name: a\nv: 2\n")
    write(mono, "other/prompts/c.yaml", "name: c\nv: 2\n")
    git(mono, "commit", "-qam", "Edit a and c")
    (mono / "app/prompts/team/b.yaml").unlink()
    write(mono, "app/prompts/new.yaml", "name: new\n")
    write(mono, "other/prompts/new.yaml", "name: other-new\n")
    monkeypatch.chdir(mono / "other")
    changes = Repository.open(mono / "app").changed_since(start, PATHS, "promptops.yaml")
    assert changes == Changes(base=Repository.open(mono).commit(start), changed=("prompts/a.yaml", "prompts/new.yaml"),
                              deleted=("prompts/team/b.yaml",), config_changed=False)
    write(mono, "app/promptops.yaml", "prompts: prompts\n# edited\n")
    assert Repository.open(mono / "app").changed_since(start, PATHS, "promptops.yaml").config_changed is True
    other = Repository.open(mono / "other").changed_since(start, PATHS, "promptops.yaml")
    assert (other.changed, other.deleted, other.config_changed) == (("prompts/c.yaml", "prompts/new.yaml"), (), False)


def test_subfolder_project_materializes_below_its_folder(mono, tmp_path):
    write(mono, "app/prompts/a.yaml", "name: a\nedited: true\n")
    before = status(mono)
    opened = Repository.open(mono / "app")
    assert str(opened.prefix) == "app"
    dest = tmp_path / "out"
    assert opened.materialize("HEAD", [*PATHS, "../shared", "../../outside"], dest) == dest / "app"
    assert tree(dest) == {
        "app": "dir",
        "app/promptops.yaml": b"prompts: prompts\n",
        "app/prompts": "dir",
        "app/prompts/a.yaml": b"name: a\n",
        "app/prompts/team": "dir",
        "app/prompts/team/b.yaml": b"name: team/b\n",
        "shared": "dir",
        "shared/common.yaml": b"name: common\n",
    }
    assert opened.read_file("HEAD", "prompts/a.yaml") == b"name: a\n"
    assert opened.read_file("HEAD", "../shared/common.yaml") == b"name: common\n"
    assert opened.read_file("HEAD", "../../outside") is None
    assert status(mono) == before


def test_subfolder_project_materializes_its_folder_even_when_empty(mono, tmp_path):
    dest = tmp_path / "out"
    assert Repository.open(mono / "app").materialize("HEAD", ["missing"], dest) == dest / "app"
    assert tree(dest) == {"app": "dir"}


# ---------------------------------------------------------------------------- changed_since

# What the release commit changed since v1 among prompt files (the script is not one, a symlink is)
RELEASED = ("prompts/alias.yaml", "prompts/greet.yaml", "prompts/support/deep/escalate.yml")


def test_changed_since_a_ref_with_the_work_tree(repo):
    opened = Repository.open(repo)
    assert opened.changed_since("HEAD", PATHS, "promptops.yaml") == Changes(
        base=opened.commit("HEAD"), changed=(), deleted=(), config_changed=False)
    # since v1: what the release commit changed
    assert opened.changed_since("v1", PATHS, "promptops.yaml") == Changes(
        base=opened.commit("v1"), changed=RELEASED, deleted=(),
        config_changed=False)
    write(repo, "prompts/support/reply.yaml", "name: support/reply\nedited: true\n")   # modified, not committed
    write(repo, "prompts/new.yaml", "name: new\n")                                     # untracked
    write(repo, "prompts/team/staged.yaml", "name: team/staged\n")                     # added to the index
    git(repo, "add", "prompts/team/staged.yaml")
    (repo / "prompts/support/deep/escalate.yml").unlink()                              # deleted
    write(repo, "prompts/README.md", "# edited\n")                                     # not a prompt file
    write(repo, "prompts/tools/run.sh", "echo edited\n")
    write(repo, "prompts/.drafts/draft.yaml", "name: draft\n")                         # hidden folder
    write(repo, "notes.txt", "edited\n")                                               # outside the paths
    write(repo, "elsewhere/x.yaml", "name: x\n")
    assert opened.changed_since("HEAD", PATHS, "promptops.yaml") == Changes(
        base=opened.commit("HEAD"),
        changed=("prompts/new.yaml", "prompts/support/reply.yaml", "prompts/team/staged.yaml"),
        deleted=("prompts/support/deep/escalate.yml",), config_changed=False)
    # escalate.yml did not exist at v1: added then deleted is no change at all
    assert opened.changed_since("v1", PATHS, "promptops.yaml") == Changes(
        base=opened.commit("v1"),
        changed=("prompts/alias.yaml", "prompts/greet.yaml", "prompts/new.yaml", "prompts/support/reply.yaml",
                 "prompts/team/staged.yaml"),
        deleted=(), config_changed=False)


def test_changed_since_config(repo):
    opened = Repository.open(repo)
    _config(repo)
    changes = opened.changed_since("HEAD", PATHS, "promptops.yaml")
    # no prompt file changed (promptops.yaml itself may be listed: the caller plans everything anyway)
    assert ([p for p in changes.changed if p != "promptops.yaml"], changes.deleted, changes.config_changed) == (
        [], (), True)
    git(repo, "commit", "-qam", "Edit config")
    assert opened.changed_since("HEAD~1", PATHS, "promptops.yaml").config_changed is True
    assert opened.changed_since("HEAD", PATHS, "promptops.yaml").config_changed is False
    (repo / "promptops.yaml").unlink()
    assert opened.changed_since("HEAD", PATHS, "promptops.yaml").config_changed is True


def test_changed_since_until_a_ref_ignores_the_work_tree(repo):
    opened = Repository.open(repo)
    _modify(repo)
    _untracked(repo)
    _config(repo)
    _delete(repo)
    assert opened.changed_since("v1", PATHS, "promptops.yaml", until="HEAD") == Changes(
        base=opened.commit("v1"), changed=RELEASED, deleted=(),
        config_changed=False)
    assert opened.changed_since("v1", PATHS, "promptops.yaml", until="v1") == Changes(
        base=opened.commit("v1"), changed=(), deleted=(), config_changed=False)
    git(repo, "rm", "-q", "prompts/support/reply.yaml")
    git(repo, "commit", "-qm", "Remove reply")
    assert opened.changed_since("v1", PATHS, "promptops.yaml", until="HEAD") == Changes(
        base=opened.commit("v1"), changed=RELEASED,
        deleted=("prompts/support/reply.yaml",), config_changed=False)
    with pytest.raises(GitError, match="unknown git ref 'nope'"):
        opened.changed_since("v1", PATHS, "promptops.yaml", until="nope")
    with pytest.raises(GitError, match="unknown git ref 'nope'"):
        opened.changed_since("nope", PATHS, "promptops.yaml")


def test_changed_since_uses_the_merge_base(repo):
    fork = sha(repo)
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo, "prompts/feature.yaml", "name: feature\n")
    git(repo, "add", "prompts/feature.yaml")
    git(repo, "commit", "-qm", "Add feature prompt")
    git(repo, "checkout", "-q", "main")
    write(repo, "prompts/support/reply.yaml", "name: support/reply\non: main\n")
    git(repo, "commit", "-qam", "Edit reply on main")
    git(repo, "checkout", "-q", "feature")
    opened = Repository.open(repo)
    expected = Changes(base=opened.commit(fork), changed=("prompts/feature.yaml",), deleted=(), config_changed=False)
    assert opened.changed_since("main", PATHS, "promptops.yaml") == expected
    assert opened.changed_since("main", PATHS, "promptops.yaml", until="feature") == expected
    git(repo, "checkout", "-q", "main")
    assert opened.changed_since("main", PATHS, "promptops.yaml", until="feature") == expected
    # the other way round: main's own change since it met the feature branch
    assert opened.changed_since("feature", PATHS, "promptops.yaml") == Changes(
        base=opened.commit(fork), changed=("prompts/support/reply.yaml",), deleted=(), config_changed=False)


def test_changed_since_unrelated_history_is_a_git_error(repo):
    git(repo, "checkout", "-q", "--orphan", "other")
    git(repo, "rm", "-rq", "--cached", ".")
    write(repo, "prompts/orphan.yaml", "name: orphan\n")
    git(repo, "add", "prompts/orphan.yaml")
    git(repo, "commit", "-qm", "Unrelated")
    with pytest.raises(GitError) as err:
        Repository.open(repo).changed_since("main", PATHS, "promptops.yaml")
    assert "cannot find where 'main' and 'HEAD' meet" in str(err.value)
    assert "share no history" in str(err.value)



def test_prompt_file_in_an_ignored_folder_makes_head_dirty(repo):
    # .gitignore has prompts/generated/: promptops still reads prompts/generated/x.yaml, which is in no commit
    write(repo, "prompts/generated/x.yaml", "name: generated/x\n")
    commit = head(repo, PATHS)
    assert (commit.dirty, commit.dirty_files) == (True, ("prompts/generated/x.yaml",))


def test_knows_the_null_sha_is_no_commit(repo):
    assert Repository.open(repo).knows("0" * 40) is False


def test_paths_outside_the_repository_are_left_out(repo):
    opened = Repository.open(repo)
    write(repo, "prompts/a.yaml", "changed: true\n")
    assert opened.uncommitted(["../../outside"]) == ["../../outside (outside the repository)"]
    assert opened.changed_since("HEAD", ["../../outside"], "promptops.yaml").changed == ()
