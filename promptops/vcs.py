"""What git says about the project: the commit a plan is made from and whether the tree is dirty.

Outside a git repository (or without git installed) everything is None: plans and the local
registry still work, they just carry no commit.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Commit:
    """The HEAD commit (``sha`` full, ``short`` 7 characters) and whether the work tree differs."""

    sha: str
    short: str
    subject: str
    dirty: bool


def head(root: Path) -> Commit | None:
    """The commit checked out at ``root``, or None when there is no repository or no commit."""
    try:
        import git  # gitpython; imported lazily because it spawns git and costs ~50 ms
    except ImportError:  # pragma: no cover - gitpython is a dependency, git the binary may be absent
        return None
    try:
        repo = git.Repo(root, search_parent_directories=True)
        commit = repo.head.commit
        dirty = repo.is_dirty(untracked_files=True)
    except (git.exc.InvalidGitRepositoryError, git.exc.NoSuchPathError, git.exc.GitCommandError,
            git.exc.GitCommandNotFound, ValueError):
        return None
    subject = commit.message.splitlines()[0] if commit.message else ""
    return Commit(sha=commit.hexsha, short=commit.hexsha[:7], subject=subject, dirty=dirty)
