"""Where the desired state comes from: the work tree (with HEAD and its dirty flag) or the tree of
any commit (``--ref``), all prompt files or those changed since a ref (``--changed-since``).

A ``--ref`` is read without a checkout: promptops.yaml and the prompts folder at that commit are
written to a temporary directory and loaded from there exactly as from the work tree, so every
check and diagnostic is the same; paths in diagnostics and plans stay project-relative. The
project root stays the real one, so a local target's registry is the usual file.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .config import CONFIG_FILE, Config, Target, load_config
from .errors import ConfigError, ValidationFailed
from .model import Plan
from .prompts import Project, load_project
from .render import plural
from .vcs import Commit, GitError, Repository, head


@dataclass(frozen=True)
class Desired:
    """A loaded project, the commit its files come from (None outside git), and ``partial``: a
    sentence for the plan's warnings when only some prompt files were loaded."""

    project: Project
    commit: Commit | None
    partial: str | None = None


def load_desired(root: Path, *, ref: str | None = None, only: list[Path] | None = None,
                 changed_since: str | None = None) -> Desired:
    """Load the project at ``root`` from the work tree, or from commit ``ref``. With
    ``changed_since``, only prompt files changed since the merge base of that ref and HEAD (or
    ``ref``) are loaded; a change to promptops.yaml loads them all. Raises GitError for git
    problems; the project's own diagnostics are left for the caller."""
    root = root.resolve()
    if not ref and not changed_since:
        return Desired(project=load_project(root, only), commit=None)
    repo = Repository.open(root)
    commit = repo.commit(ref) if ref else None
    partial = None
    # One copy of the commit's files serves both the changed-files question and the loading.
    with tempfile.TemporaryDirectory(prefix="promptops-ref-") as tmp:
        project_dir = repo.materialize(commit.sha, [CONFIG_FILE], Path(tmp)) if commit else root
        if changed_since:
            only, partial = _changed(repo, root, _valid_config(project_dir), commit, changed_since)
        project = _at_commit(repo, root, Path(tmp), commit, ref, only) if commit else load_project(root, only)
    return Desired(project=project, commit=commit, partial=partial)


def work_tree_commit(config: Config, *, strict: bool = False) -> Commit | None:
    """HEAD for a plan of the work tree, dirty when promptops.yaml or the prompts folder has
    uncommitted changes. Lenient (None without git) unless ``strict``."""
    paths = [CONFIG_FILE, config.prompts]
    if strict:
        return Repository.open(config.root).head(paths)
    return head(config.root, paths)


def require_clean(config: Config, target: Target, commit: Commit | None, allow_dirty: bool) -> None:
    """Refuse to apply uncommitted files to a platform: what runs in production must be in git.
    The local registry is a scratch space and takes anything. ``commit`` is the commit the desired
    state comes from; None means it was not read from git yet."""
    if allow_dirty or target.provider == "local":
        return
    commit = commit or _strict_head(config, target)
    if commit.dirty:
        files = list(commit.dirty_files)
        shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        raise GitError(f"uncommitted changes in {shown}; commit them before applying to target "
                       f"{target.name!r} ({target.provider}), or pass --allow-dirty")


def require_committed_plan(plan: Plan, target: Target, allow_dirty: bool) -> None:
    """:func:`require_clean` for a saved plan: it records whether its files were committed."""
    if allow_dirty or target.provider == "local" or not plan.has_changes:
        return
    if plan.commit is None or plan.dirty:
        why = "with uncommitted changes" if plan.commit else "outside git"
        raise GitError(f"the plan was made from files {why}; commit them and plan again before applying to "
                       f"target {target.name!r} ({target.provider}), or pass --allow-dirty")


def _strict_head(config: Config, target: Target) -> Commit:
    try:
        return work_tree_commit(config, strict=True)  # type: ignore[return-value]
    except GitError as exc:
        raise GitError(f"{exc}; promptops applies to target {target.name!r} ({target.provider}) only from "
                       "committed files (or pass --allow-dirty)") from None


def _changed(repo: Repository, root: Path, config: Config, commit: Commit | None,
             since: str) -> tuple[list[Path] | None, str | None]:
    changes = repo.changed_since(since, [CONFIG_FILE, config.prompts], CONFIG_FILE,
                                 until=commit.sha if commit else None)
    where = f"since {since} ({changes.base.short})"
    if changes.config_changed:
        return None, None  # every prompt depends on promptops.yaml: a full plan
    if changes.changed:
        partial = (f"Partial plan: only {plural(len(changes.changed), 'prompt file')} changed {where} "
                   "were compared with the remote; run a full plan to see drift in the others.")
    else:
        partial = (f"Partial plan: no prompt file changed {where}, so nothing was compared with the remote; "
                   "run a full plan to see drift.")
    if changes.deleted:
        partial += (f" Deleted since then: {', '.join(changes.deleted)}; their prompts are left as they are "
                    "(a full plan with --prune deletes them).")
    return [Path(os.path.normpath(root / p)) for p in changes.changed], partial


def _valid_config(project_dir: Path) -> Config:
    config, diags = load_config(project_dir)
    if any(d.severity == "error" for d in diags):
        raise ValidationFailed(diags)
    return config


def _at_commit(repo: Repository, root: Path, copy: Path, commit: Commit, ref: str | None,
               only: list[Path] | None) -> Project:
    """The project as it is in ``commit``, whose promptops.yaml :meth:`Repository.materialize`
    already wrote below ``copy``."""
    project_dir = copy / repo.prefix
    config, _ = load_config(project_dir)
    if Path(config.prompts).is_absolute():
        raise GitError(f"--ref needs prompts: in {CONFIG_FILE} relative to the project directory, not "
                       f"{config.prompts!r} (an absolute path would read the work tree, not the commit)")
    repo.materialize(commit.sha, [config.prompts], copy)
    if not config.prompts_dir.is_dir() and config.prompts_at is None:
        where = "" if str(repo.prefix) == "." else f" under {repo.prefix}/"
        raise GitError(f"no prompts folder {config.prompts}/ in commit {commit.short} ({ref}){where}; "
                       "is this the right ref and project directory?")
    mapped = None if only is None else [project_dir / _relative(p, root) for p in only]
    try:
        project = load_project(project_dir, mapped)
    except ConfigError as exc:
        raise ConfigError(f"at {ref} ({commit.short}): {exc}") from None
    project.config = dataclasses.replace(project.config, root=root)
    return project


def _relative(path: Path, root: Path) -> Path:
    """``path`` relative to the project root, lexically ('..' where it is beside the project), so
    it names the same file below the temporary copy of the commit."""
    return Path(os.path.relpath(os.path.normpath(root / path), root))
