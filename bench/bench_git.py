#!/usr/bin/env python3
"""Benchmark of the git paths on the synthetic project of bench_core.py, committed to a real git
repository and applied to a local registry, with one prompt file changed in a second commit:

    python bench/bench_git.py [--prompts N] [--repeat R]

Times, side by side in one run (median of R, default 5), through the CLI in-process:

  (a) plan                           the full plan of the work tree (the default)
  (b) plan --changed-since HEAD~1    only the one changed file is validated and read
  (c) plan --ref HEAD                the same state read from the commit's tree (no checkout)
  (d) validate --ref HEAD            the commit's files written to a temp dir and validated
  (e) the dirty check alone          `git status` scoped to promptops.yaml and the prompts folder

Ratios are against (a). Nothing asserts on time; it is for reading, not for CI.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:  # run from a checkout without installing
        sys.path.insert(0, str(path))

from bench_core import fmt_s, generate, timed  # noqa: E402
from promptops.cli import main as promptops  # noqa: E402
from promptops.config import load_config  # noqa: E402
from promptops.source import work_tree_commit  # noqa: E402

GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "bench@example.com"}


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, env=dict(os.environ, **GIT_ENV), check=True, capture_output=True)


def run(*args: str, expect: int = 0) -> None:
    """promptops ARGS in this process, output discarded; SystemExit on an unexpected exit code."""
    cwd = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = promptops(list(args))
    finally:
        os.chdir(cwd)
    if code != expect:
        raise SystemExit(f"promptops {' '.join(args)} exited {code}:\n{out.getvalue()}{err.getvalue()}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=500, help="number of prompt files (default 500)")
    ap.add_argument("--repeat", type=int, default=5, help="timings per operation (default 5)")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="promptops-bench-git-"))
    try:
        root = work / "project"
        root.mkdir()
        files = generate(root, args.prompts)
        (root / ".gitignore").write_text(".promptops/\n")
        git(root, "init", "-q")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "A")
        run("-C", str(root), "apply", "--auto-approve")
        changed = files[len(files) // 2]
        changed.write_text(changed.read_text().replace("Be ", "Please be ", 1).replace("You ", "Please, you ", 1))
        git(root, "commit", "-qam", "B: one prompt changed")
        c = str(root)
        run("-C", c, "plan", "--detailed-exitcode", expect=2)  # warm-up, and B really changed something
        config, _ = load_config(root)
        rows = [
            ("(a) plan (full)", timed(lambda: run("-C", c, "plan"), args.repeat)[0], f"{len(files)} files"),
            ("(b) plan --changed-since HEAD~1", timed(lambda: run("-C", c, "plan", "--changed-since", "HEAD~1"),
                                                      args.repeat)[0], "1 file changed"),
            ("(c) plan --ref HEAD", timed(lambda: run("-C", c, "plan", "--ref", "HEAD"), args.repeat)[0],
             "files read from the commit"),
            ("(d) validate --ref HEAD", timed(lambda: run("-C", c, "validate", "--ref", "HEAD"), args.repeat)[0], ""),
            ("(e) dirty check (git status)", timed(lambda: work_tree_commit(config), args.repeat)[0], ""),
        ]
        base = sorted(rows[0][1])[len(rows[0][1]) // 2]
        print(f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, CPython "
              f"{platform.python_version()}, N = {len(files)}, median of {args.repeat}\n")
        print("| operation | median | min | vs (a) | note |\n| --- | ---: | ---: | ---: | --- |")
        for name, times, note in rows:
            median = sorted(times)[len(times) // 2]
            print(f"| {name} | {fmt_s(median)} | {fmt_s(min(times))} | {median / base:.2f}x | {note} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
