"""The README's examples are real: its promptops.yaml and prompt files validate and plan."""
from __future__ import annotations

import re

from conftest import REPO, write

README = (REPO / "README.md").read_text(encoding="utf-8")


def yaml_block_after(marker: str) -> str:
    """The first ```yaml block after ``marker`` in the README."""
    start = README.index(marker)
    match = re.compile(r"```yaml\n(.*?)```", re.S).search(README, start)
    assert match, f"no yaml block after {marker!r}"
    return match.group(1)


def test_readme_file_format_examples_validate(cli, tmp_path):
    write(tmp_path, "promptops.yaml", yaml_block_after("### `promptops.yaml`"))
    write(tmp_path, "prompts/checkout/assistant.yaml", yaml_block_after("**Full form**"))
    write(tmp_path, "prompts/summarizer.yaml", yaml_block_after("**Short form**"))
    r = cli("-C", tmp_path, "validate")
    assert (r.code, r.err) == (0, ""), r.err
    assert r.out == "Success! 2 prompt files are valid.\n"
    r = cli("-C", tmp_path, "plan", "--json")
    assert r.code == 0, r.err
