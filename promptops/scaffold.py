"""`promptops init`: the files a new repository starts with. Existing files are never overwritten
without ``force``; for an existing .pre-commit-config.yaml the hook snippet is printed instead."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

CONFIG = """\
# promptops configuration (see the promptops README, "File format")
prompts: prompts
default_target: local
targets:
  local:                          # the embedded registry: no account, no network
    provider: local
    path: .promptops/registry.db
  # prod:
  #   provider: langfuse
  #   base_url: https://cloud.langfuse.com
  #   credentials:                # only ${ENV_VAR} references, never literal keys
  #     public_key: ${LANGFUSE_PUBLIC_KEY}
  #     secret_key: ${LANGFUSE_SECRET_KEY}
  #   labels: [production, staging]
"""

EXAMPLE = """\
# One prompt per file; its name is the path under prompts/ without .yaml ("example").
type: text
description: A first prompt managed by promptops
tags: [example]
variables:
  topic: {type: string, example: the moon}
template: |
  Write three short facts about {{topic}} for a curious ten-year-old.
labels: [production]
"""

# The promptops-validate hook of this repository's .pre-commit-hooks.yaml as a `repo: local` hook:
# the same id, name, entry, files and exclude (tests/test_precommit.py keeps them in sync). Local
# rather than `repo: <url>` + `rev:` because promptops has no public URL or PyPI release to pin yet
# (the PyPI name is another project): a remote entry would be a placeholder that fails until edited.
# `language: system` runs the promptops installed where `promptops init` ran, the one that plans and
# applies. The snippet's comment shows the remote form, in which pre-commit installs promptops.
PRE_COMMIT_HOOK = """\
  # promptops-validate runs the promptops installed where pre-commit runs (language: system).
  # To let pre-commit install a pinned promptops itself, use this instead:
  #   - repo: https://github.com/<owner>/promptops    # where you get promptops from
  #     rev: v0.1.0
  #     hooks:
  #       - id: promptops-validate
  # files: follows prompts: in promptops.yaml; change both together.
  - repo: local
    hooks:
      - id: promptops-validate
        name: promptops validate
        entry: promptops validate
        language: system
        files: ^(prompts/.*\\.(?i:ya?ml)|promptops\\.yaml)$
        exclude: /\\.
        pass_filenames: true
"""
PRE_COMMIT = "repos:\n" + PRE_COMMIT_HOOK

WORKFLOW = """\
# Validate prompt changes on pull requests and plan them against a real target; apply on merge.
# The local registry lives on the runner and is thrown away, so plan/apply run only once the
# repository variable PROMPTOPS_TARGET names a remote target from promptops.yaml (its credentials
# come from secrets, as env vars).
name: promptops
on:
  pull_request:
    paths: ["prompts/**", "promptops.yaml"]
  push:
    branches: [main]
    paths: ["prompts/**", "promptops.yaml"]
permissions:
  contents: read
env:
  # How to install this promptops. Note: the PyPI name "promptops" is a different project, so
  # point this at your source of the tool, e.g. git+https://github.com/<owner>/promptops@v0.1.0
  PROMPTOPS_INSTALL: ${{ vars.PROMPTOPS_INSTALL }}
  PROMPTOPS_TARGET: ${{ vars.PROMPTOPS_TARGET }}
# Applies to one target run one at a time, as terraform's state lock serialises applies: pushes
# share one group per target (a newer push waits; GitHub keeps only the newest one waiting).
# Pull-request plans only read, so each ref has its own group and never queues behind an apply.
concurrency:
  group: ${{ github.event_name == 'push' && format('promptops-apply-{0}', vars.PROMPTOPS_TARGET) || format('promptops-{0}', github.ref) }}
  cancel-in-progress: false
jobs:
  promptops:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - run: |
          test -n "$PROMPTOPS_INSTALL" || { echo "::error::set the PROMPTOPS_INSTALL repository variable"; exit 1; }
          pip install "$PROMPTOPS_INSTALL"
      - run: promptops validate
      - name: plan
        if: github.event_name == 'pull_request' && env.PROMPTOPS_TARGET != ''
        run: promptops plan -t "$PROMPTOPS_TARGET" --detailed-exitcode || [ $? -eq 2 ]
      - name: apply
        if: github.event_name == 'push' && env.PROMPTOPS_TARGET != ''
        run: promptops apply -t "$PROMPTOPS_TARGET" --auto-approve
"""

FILES = {
    "promptops.yaml": CONFIG,
    "prompts/example.yaml": EXAMPLE,
    ".pre-commit-config.yaml": PRE_COMMIT,
    ".github/workflows/promptops.yml": WORKFLOW,
}


def scaffold(root: Path, *, force: bool = False) -> Iterator[str]:
    """Write the starter files under ``root``; yield one line per file saying what happened."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in FILES.items():
        path = root / rel
        if path.exists() and not force:
            if rel == ".pre-commit-config.yaml" and "promptops-validate" not in path.read_text(errors="replace"):
                yield f"kept {rel} (exists); add this hook under repos: to validate prompts on commit:\n{PRE_COMMIT_HOOK}"
            else:
                yield f"kept {rel} (exists; --force overwrites it)"
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        yield f"wrote {rel}"
    yield from _gitignore(root)


def _gitignore(root: Path) -> Iterator[str]:
    """The local registry is state, not source: keep it out of git."""
    path = root / ".gitignore"
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if ".promptops/" in existing.split():
        return
    sep = "" if not existing or existing.endswith("\n") else "\n"
    path.write_text(existing + sep + ".promptops/\n", encoding="utf-8")
    yield "added .promptops/ to .gitignore"
