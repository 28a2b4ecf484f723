"""Shared fixtures: run the real CLI in-process on real files in temporary directories."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from promptops.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cli(*args, input=None)`` runs ``promptops ARGS`` and returns (code, out, err)."""

    def run(*args: str, input: str | None = None) -> Result:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(input or ""))
        cwd = os.getcwd()
        try:
            code = main([str(a) for a in args])
        finally:
            os.chdir(cwd)  # -C changes the process's directory, as git -C does
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A private copy of examples/ (promptops.yaml + prompts/)."""
    dest = tmp_path / "examples"
    shutil.copytree(EXAMPLES, dest, ignore=shutil.ignore_patterns(".promptops"))
    return dest


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def git(cwd: Path, *args: str) -> str:
    """Run the real git in ``cwd`` with a fixed identity and no user or system configuration;
    its stdout (CalledProcessError on failure)."""
    env = {"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com", "GIT_COMMITTER_NAME": "Ada",
           "GIT_COMMITTER_EMAIL": "ada@example.com", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def commit(root: Path, message: str) -> str:
    """Stage everything in ``root`` and commit it; the new commit's full sha."""
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD").strip()


def init_repo(root: Path) -> Path:
    """A new git repository at ``root`` (branch main) that ignores the local registry."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    write(root, ".gitignore", ".promptops/\n")
    return root


# A project with a local target and a langfuse target "prod" (base_url to be replaced where a
# test talks to an emulator; the port-9 discard address refuses connections).
PLATFORM_CONFIG = """\
default_target: local
targets:
  local: {provider: local}
  prod:
    provider: langfuse
    base_url: http://127.0.0.1:9
    credentials: {public_key: "${LF_PUBLIC}", secret_key: "${LF_SECRET}"}
"""


def env_factory(make: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """The body of a ``make_env`` fixture: yields a factory of test environments (an emulator
    served on 127.0.0.1 and its clients, with ``close()`` and ``emu``), closes each one at the end
    and checks that its emulator never failed by itself (``internal_errors``, where it keeps them)."""
    made: list[Any] = []

    def factory(**options: Any) -> Any:
        env = make(**options)
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()
        assert getattr(env.emu, "internal_errors", []) == []
