"""What git says about the project (gitpython): the commit a plan is made from, whether the files
that make the desired state have uncommitted changes, the project's files at any commit, and
which prompt files changed since a ref.

Two ways in:

* :func:`head` is lenient: outside a repository, in one without commits, or without git
  installed it returns None, so plans and the local registry work anywhere (they carry no commit).
* :meth:`Repository.open` is strict, for what cannot work without git (``--ref``,
  ``--changed-since``, the dirty check before applying to a platform): every failure is a
  :class:`GitError`, one line that says what to do, exit 1.

"Dirty" is scoped to what promptops reads (promptops.yaml and the prompts folder), not the whole
repository: an unrelated edit in a monorepo, or the local registry file, never blocks an apply.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from .errors import ConfigError
from .prompts import is_prompt_file_name

# A blob's mode in a git tree: regular files (either executable bit), symlinks and submodules.
_SYMLINK = 0o120000
_SUBMODULE = 0o160000


class GitError(ConfigError):
    """git could not answer: not a repository, an unknown ref, git missing, history too shallow."""


class NoGit(GitError):
    """There is nothing git can say here: not a repository, no commit yet, or no git installed.
    The lenient :func:`head` turns this (and only this) into None; any other git failure, such as
    a repository git refuses to read ("dubious ownership"), is an error everywhere."""


NOT_INSTALLED = ("git is not installed or not on PATH (promptops needs it here); install git, "
                 "or set GIT_PYTHON_GIT_EXECUTABLE to its path")


@dataclass(frozen=True)
class Commit:
    """A commit (``sha`` full, ``short`` 7 characters) and whether the project's files in the work
    tree differ from it (always False for a commit named by ``--ref``: its tree is what it is)."""

    sha: str
    short: str
    subject: str
    dirty: bool = False
    dirty_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Changes:
    """Prompt files changed since a ref, relative to the project directory ('/'-separated).

    ``config_changed`` is True when promptops.yaml changed: every prompt file depends on it, so the
    caller must plan everything. ``deleted`` are prompt files that existed at the base and no
    longer do (their prompts are left alone without --prune, as in a full plan)."""

    base: Commit
    changed: tuple[str, ...]
    deleted: tuple[str, ...]
    config_changed: bool


def _git() -> Any:
    """The gitpython module; GitError when git itself cannot be found (gitpython refuses to import
    without it). Imported lazily: it costs ~50 ms, and validate must stay fast."""
    try:
        import git
    except ImportError as exc:
        raise NoGit(NOT_INSTALLED) from exc
    return git


def head(root: Path, paths: Iterable[str] = ()) -> Commit | None:
    """The commit checked out at ``root`` (dirty when any of ``paths``, relative to ``root``, has
    uncommitted changes), or None when there is no repository, no commit yet or no git."""
    try:
        return Repository.open(root).head(paths)
    except NoGit:
        return None


class Repository:
    """The git repository holding a promptops project directory."""

    def __init__(self, repo: Any, root: Path):
        self._repo = repo
        self.root = root
        self.top = Path(repo.working_tree_dir).resolve()
        # The project directory as a path inside the repository ('.' at its top).
        self.prefix = PurePosixPath(Path(os.path.relpath(root, self.top)).as_posix())

    @classmethod
    def open(cls, root: Path) -> "Repository":
        """The repository at or above ``root``; GitError when there is none or git is missing."""
        git = _git()
        root = root.resolve()
        try:
            repo = git.Repo(root, search_parent_directories=True)
        except (git.exc.InvalidGitRepositoryError, git.exc.NoSuchPathError):
            raise NoGit(f"{root} is not in a git repository; run `git init` and commit the prompt "
                        "files first") from None
        if repo.bare or repo.working_tree_dir is None:
            raise GitError(f"{root} is in a bare git repository; run promptops in a clone with a work tree")
        return cls(repo, root)

    # ------------------------------------------------------------------ commits

    def head(self, paths: Iterable[str] = ()) -> Commit:
        """HEAD (detached or on a branch), dirty when any of ``paths`` has uncommitted changes."""
        commit = self._head_commit()
        dirty = self.uncommitted(paths) if paths else []
        return _commit(commit, dirty)

    def commit(self, ref: str) -> Commit:
        """The commit ``ref`` names (branch, tag, sha, ``HEAD~2``, ``origin/main``...)."""
        return _commit(self._resolve(ref), [])

    def _resolve(self, ref: str) -> Any:
        git = _git()
        if not ref or ref.startswith("-"):
            raise GitError(f"invalid git ref {ref!r}")
        try:
            # git itself resolves the name: gitpython's resolver would walk into the parents a
            # shallow clone does not have and fail later, on first use.
            sha = self._repo.git.rev_parse("--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
        except git.exc.GitCommandNotFound:
            raise NoGit(NOT_INSTALLED) from None
        except git.exc.GitCommandError as exc:
            complaint = _stderr(exc, default="")
            if "expected commit type" in complaint:  # a tree or blob sha
                raise GitError(f"unknown git ref {ref!r}: it does not name a commit ({complaint})") from None
            if complaint:  # git itself failed (e.g. dubious ownership), not the name
                raise GitError(f"git failed: {complaint}") from None
            if self._no_commits():
                raise NoGit("the repository has no commits yet; commit the prompt files first") from None
            raise GitError(self._unknown(ref)) from None
        try:
            found = self._repo.commit(sha)
            found.message  # noqa: B018 - loads the object now, so a missing one fails here
            return found
        except (git.exc.BadName, git.exc.BadObject, ValueError, git.exc.GitCommandError, OSError):
            raise GitError(self._unknown(ref)) from None

    def _no_commits(self) -> bool:
        try:
            return not self._repo.git.rev_list("-n1", "--all").strip()
        except _git().exc.GitError:
            return False

    def _unknown(self, ref: str) -> str:
        if self.shallow:
            return (f"unknown git ref {ref!r}: this clone is shallow, so older commits are missing; fetch more "
                    "history (git fetch --unshallow, or fetch-depth: 0 in actions/checkout)")
        if re.fullmatch(r"[0-9a-fA-F]{4,40}|.*[~^@:].*", ref):  # a sha or a relative ref: no name to fetch
            return f"unknown git ref {ref!r}: no such commit in this clone; check it, or fetch more history"
        return (f"unknown git ref {ref!r}: no branch, tag or commit of that name here; check the name, or "
                f"fetch it first (git fetch origin {ref})")

    @property
    def shallow(self) -> bool:
        """True in a shallow clone (also in a linked worktree of one: git knows, the files may not)."""
        try:
            return self._repo.git.rev_parse("--is-shallow-repository").strip() == "true"
        except _git().exc.GitError:
            return (Path(self._repo.common_dir) / "shallow").is_file()

    def knows(self, sha: str) -> bool:
        """True when ``sha`` (full or abbreviated) is a commit in this clone."""
        try:
            self._resolve(sha)
        except GitError:
            return False
        return True

    # ------------------------------------------------------------------ work tree

    def uncommitted(self, paths: Iterable[str]) -> list[str]:
        """Files under ``paths`` (relative to the project directory) that differ from HEAD:
        modified, staged, deleted, untracked, and ignored ones too (promptops would read them, but
        they are in no commit). Only files promptops reads count (``*.yaml``/``*.yml`` outside
        hidden folders). Project-relative, sorted; a path outside the repository is listed as
        "PATH (outside the repository)": nothing there is committed."""
        paths = list(paths)
        outside = [f"{p} (outside the repository)" for p in paths if self._inside(p) is None]
        specs = self._pathspecs(paths)
        if not specs:
            return outside
        try:
            # "traditional" with "all" lists each ignored file, also inside an ignored folder
            out = self._repo.git.status("--porcelain=v1", "-z", "--untracked-files=all", "--ignored=traditional",
                                        "--no-renames", "--", *specs)
        except _git().exc.GitCommandNotFound:
            raise NoGit(NOT_INSTALLED) from None
        except _git().exc.GitCommandError as exc:
            raise GitError(f"git status failed: {_stderr(exc)}") from None
        found = set()
        for entry in filter(None, out.split("\0")):
            path = self._project_relative(entry[3:])
            if _is_prompt_file(path):  # a README or a hidden draft folder is nothing promptops reads
                found.add(path)
        return sorted(found) + outside

    def changed_since(self, ref: str, paths: Iterable[str], config_file: str, until: str | None = None) -> Changes:
        """Files under ``paths`` changed between the merge base of ``ref`` and ``until`` (a ref, or
        None for HEAD plus the work tree, untracked files included) and ``until``.

        The merge base, as ``git diff ref...HEAD`` does: on a pull request branch, commits that
        landed on the base branch since the branch started are not the branch's changes."""
        git = _git()
        start = self._resolve(ref)
        end = self._resolve(until) if until else self._head_commit()
        try:
            bases = self._repo.merge_base(start, end)
        except git.exc.GitCommandError as exc:
            raise GitError(f"git merge-base failed: {_stderr(exc)}") from None
        if not bases:
            hint = ("this clone is shallow: fetch more history (git fetch --unshallow, or fetch-depth: 0 in "
                    "actions/checkout)" if self.shallow else "they share no history")
            raise GitError(f"cannot find where {ref!r} and {until or 'HEAD'!r} meet: {hint}")
        base = bases[0]
        specs = self._pathspecs(paths)
        if not specs:
            return Changes(base=_commit(base, []), changed=(), deleted=(), config_changed=False)
        args = ["--name-status", "-z", "--no-renames", base.hexsha] + ([end.hexsha] if until else []) + ["--", *specs]
        try:
            out = self._repo.git.diff(*args)
            # ignored prompt files too: promptops reads them, as the dirty check knows
            untracked = "" if until else self._repo.git.ls_files("--others", "-z", "--", *specs)
        except git.exc.GitCommandError as exc:
            raise GitError(f"git diff failed: {_stderr(exc)}") from None
        fields = out.split("\0")
        changed: set[str] = set()
        deleted: set[str] = set()
        for status, path in zip(fields[0::2], fields[1::2]):
            (deleted if status == "D" else changed).add(self._project_relative(path))
        changed |= {self._project_relative(p) for p in untracked.split("\0") if p}
        config_changed = config_file in changed or config_file in deleted
        keep = sorted(p for p in changed if _is_prompt_file(p))
        return Changes(base=_commit(base, []), changed=tuple(keep),
                       deleted=tuple(sorted(p for p in deleted if _is_prompt_file(p))),
                       config_changed=config_changed)

    def _head_commit(self) -> Any:
        return self._resolve("HEAD")

    # ------------------------------------------------------------------ trees

    def read_file(self, ref: str, path: str) -> bytes | None:
        """The bytes of project file ``path`` at ``ref``, or None when it does not exist there."""
        blob = self._entry(self._resolve(ref).tree, path)
        if blob is None or blob.type != "blob" or blob.mode == _SYMLINK:
            return None
        return blob.data_stream.read()

    def materialize(self, ref: str, paths: Iterable[str], dest: Path) -> Path:
        """Write project files and folders ``paths`` as they are at ``ref`` below ``dest``, laid out
        as in the repository (so '..' in promptops.yaml still works), and return where the project
        directory is in ``dest``. A path that is a symlink in the work tree (a linked prompts
        folder or promptops.yaml) is read where it points and written where promptops looks for
        it. Symlinks inside folders stay symlinks (the loader refuses those that leave the prompts
        folder); submodules are skipped. Nothing in the work tree is touched."""
        tree = self._resolve(ref).tree
        project = dest / self.prefix
        project.mkdir(parents=True, exist_ok=True)
        for path in paths:
            entry = self._entry(tree, path)
            logical = self._logical(path)
            if entry is None or logical is None:
                continue
            if entry.type != "tree":
                self._write(entry, dest / logical)
                continue
            for item in entry.traverse():
                inner = PurePosixPath(item.path)
                if entry.path:
                    inner = inner.relative_to(entry.path)
                self._write(item, dest / logical / inner)
        return project

    def _entry(self, tree: Any, path: str) -> Any:
        inside = self._inside(path)
        if inside is None:
            return None
        if str(inside) == ".":
            return tree
        try:
            return tree / str(inside)
        except KeyError:
            return None

    @staticmethod
    def _write(item: Any, where: Path) -> None:
        if item.type == "tree":
            where.mkdir(parents=True, exist_ok=True)
            return
        if item.type != "blob" or item.mode == _SUBMODULE:
            return
        where.parent.mkdir(parents=True, exist_ok=True)
        data = item.data_stream.read()
        if item.mode == _SYMLINK:
            os.symlink(os.fsdecode(data), where)
        else:
            where.write_bytes(data)

    # ------------------------------------------------------------------ paths

    def _inside(self, path: str) -> PurePosixPath | None:
        """Project-relative ``path`` as a path from the repository's top, following symlinks in the
        work tree (a prompts folder linked elsewhere in the repository is read where it is);
        None when it is outside the repository."""
        real = (self.root / path).resolve()
        if not real.is_relative_to(self.top):
            return None
        return PurePosixPath(real.relative_to(self.top).as_posix())

    def _logical(self, path: str) -> PurePosixPath | None:
        """Where promptops looks for project-relative ``path``, from the repository's top, without
        following symlinks; None when that is outside the repository."""
        parts: list[str] = []
        for part in (self.prefix / PurePosixPath(path)).parts:
            if part == "..":
                if not parts:
                    return None
                parts.pop()
            elif part != ".":
                parts.append(part)
        return PurePosixPath(*parts) if parts else PurePosixPath(".")

    def _pathspecs(self, paths: Iterable[str]) -> list[str]:
        """git pathspecs for project-relative ``paths``; those outside the repository are left out
        (git knows nothing of them). ':(top)' makes them independent of the process's directory."""
        return [f":(top,literal){inside}" for inside in map(self._inside, paths) if inside is not None]

    def _project_relative(self, path: str) -> str:
        return Path(os.path.relpath(self.top / path, self.top / self.prefix)).as_posix()


def _commit(commit: Any, dirty: list[str]) -> Commit:
    message = commit.message if isinstance(commit.message, str) else commit.message.decode("utf-8", "replace")
    subject = message.splitlines()[0].strip() if message.strip() else ""
    return Commit(sha=commit.hexsha, short=commit.hexsha[:7], subject=subject, dirty=bool(dirty),
                  dirty_files=tuple(dirty))


def _is_prompt_file(path: str) -> bool:
    """A project-relative path promptops would read: a prompt file name (or promptops.yaml), no
    hidden file or folder on the way, as discovery skips them."""
    parts = PurePosixPath(path).parts
    return is_prompt_file_name(path) and not any(p.startswith(".") and p != ".." for p in parts)


def _stderr(exc: Any, default: str = "unknown error") -> str:
    """git's own complaint from a GitCommandError: its first fatal/error line (the rest of git's
    advice shortened to the safe.directory fix when that is the problem)."""
    text = str(getattr(exc, "stderr", "") or "").strip()
    text = text.removeprefix("stderr:").strip().strip("'").strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return default
    first = next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), lines[0])
    if "safe.directory" in text:
        fix = next((ln for ln in lines if "safe.directory" in ln and ln.startswith("git ")), "")
        first += f" (the repository belongs to another user; if you trust it: {fix or 'git config --global --add safe.directory DIR'})"
    return first
