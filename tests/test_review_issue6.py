"""Review of issue 6 (pre-commit hook, GitHub Action, import, drift): pins the fix of what the
review found wrong (the test failed before it).

Import, like terraform's apply/import, must not announce success when nothing was imported: with
every requested prompt refused, the run ends on "Import complete! 0 prompts imported, 1 not
imported." (exit 1) -- the success banner on a total failure.
"""
from __future__ import annotations

from pathlib import Path

from conftest import write
from test_import import put, run_import, text


def test_import_that_imports_nothing_does_not_say_complete(cli, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "prompts").mkdir(parents=True)
    put(project, "p", text("Remote {{x}}"), labels=["production"])
    write(project, "prompts/p.yaml", "template: Mine\nlabels: [production]\n")

    r = run_import(cli, project)           # refused: the file exists and there is no --force
    assert r.code == 1, r.out + r.err
    assert "not imported" in r.err
    assert "complete!" not in r.out + r.err, r.out

    r = run_import(cli, project, "nope")   # a NAME that does not exist
    assert r.code == 1, r.out + r.err
    assert "complete!" not in r.out + r.err, r.out
