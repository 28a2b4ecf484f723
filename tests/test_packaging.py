"""The wheel is self-contained: it ships the JSON Schemas and the CLI works from it.

Issue requirement: "The wheel contains the JSON Schemas: a test builds the wheel, installs it in a
fresh venv and runs `promptops validate` on examples/prompts from outside the source tree".

The wheel is built once per module (without build isolation when hatchling is importable here,
else with it, which fetches hatchling from PyPI). It is installed with ``--no-deps`` into a fresh
venv; the venv sees the runtime dependencies of the environment running the tests, appended
*after* its own site-packages, so the only promptops it can import is the wheel's. Nothing here is
skipped: when the wheel cannot be built or installed the tests fail and say why.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = ("prompt", "config", "plan")
BIN = "Scripts" if os.name == "nt" else "bin"
EXE = ".exe" if os.name == "nt" else ""


def _run(cmd: list[str], *, cwd: Path, timeout: float = 600, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _describe(proc: subprocess.CompletedProcess[str]) -> str:
    return (f"$ {' '.join(map(str, proc.args))}\nexit {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")


def _clean_env() -> dict[str, str]:
    """The environment for commands run inside the fresh venv: nothing that could point Python at
    the source checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV")}
    env.update(NO_COLOR="1", PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _build_wheel(out: Path) -> Path:
    """Build the wheel of the checkout into ``out``; fail with the pip output if it cannot be built."""
    base = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-w", out]
    attempts = []
    if importlib.util.find_spec("hatchling") is not None:
        attempts.append(("without build isolation (hatchling is installed here)", base + ["--no-build-isolation", REPO]))
    attempts.append(("with build isolation (fetches hatchling from PyPI)", base + [REPO]))
    reports = []
    for how, cmd in attempts:
        proc = _run(cmd, cwd=out)
        wheels = sorted(out.glob("promptops-*.whl"))
        if proc.returncode == 0 and len(wheels) == 1:
            return wheels[0]
        reports.append(f"building the wheel {how} failed:\n{_describe(proc)}\nwheels in {out}: {wheels}")
        for w in wheels:
            w.unlink()
    pytest.fail("cannot build the promptops wheel; install hatchling in the test environment "
                "(pip install hatchling) or allow pip to reach PyPI.\n\n" + "\n\n".join(reports),
                pytrace=False)


def _outer_site_dirs() -> list[str]:
    """site-packages folders of the interpreter running the tests (its runtime dependencies)."""
    dirs = list(site.getsitepackages())
    for key in ("purelib", "platlib"):
        dirs.append(sysconfig.get_paths()[key])
    seen: list[str] = []
    for d in dirs:
        d = os.path.realpath(d)
        if os.path.isdir(d) and d not in seen:
            seen.append(d)
    return seen


@dataclass
class Installed:
    wheel: Path
    venv: Path
    python: Path
    promptops: Path
    site_packages: Path
    outside: Path  # a scratch folder outside the source checkout
    env: dict[str, str]


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    scratch = Path(tempfile.mkdtemp(prefix="promptops-packaging-")).resolve()
    try:
        if scratch.is_relative_to(REPO):
            pytest.fail(f"the temporary folder {scratch} is inside the checkout {REPO}; set TMPDIR elsewhere",
                        pytrace=False)
        dist = scratch / "dist"
        dist.mkdir()
        wheel = _build_wheel(dist)

        venv = scratch / "venv"
        # --system-site-packages: the base interpreter's packages. When the tests themselves run in a
        # venv (CI, the dev .venv) the dependencies live in that venv instead, so its site-packages
        # are appended below via a .pth file: plain path lines, so the .pth files in there (such as an
        # editable install of this checkout) are NOT executed.
        proc = _run([sys.executable, "-m", "venv", "--system-site-packages", venv], cwd=scratch)
        assert proc.returncode == 0, "cannot create a venv:\n" + _describe(proc)
        python = venv / BIN / f"python{EXE}"
        env = _clean_env()
        proc = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=scratch, env=env)
        assert proc.returncode == 0, _describe(proc)
        site_packages = Path(proc.stdout.strip()).resolve()
        outer = [d for d in _outer_site_dirs() if Path(d) != site_packages]
        (site_packages / "zz_promptops_test_outer_env.pth").write_text("".join(f"{d}\n" for d in outer))

        proc = _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check",
                     wheel], cwd=scratch, env=env)
        assert proc.returncode == 0, "cannot install the wheel into the fresh venv:\n" + _describe(proc)

        outside = scratch / "work"
        outside.mkdir()
        yield Installed(wheel, venv, python, venv / BIN / f"promptops{EXE}", site_packages, outside, env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_wheel_contains_the_json_schemas(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as zf:
        names = set(zf.namelist())
    for name in SCHEMAS:
        member = f"promptops/schemas/{name}.schema.json"
        assert member in names, f"{member} is missing from {installed.wheel.name}: {sorted(names)}"
    with zipfile.ZipFile(installed.wheel) as zf:
        for name in SCHEMAS:
            assert zf.read(f"promptops/schemas/{name}.schema.json").strip().startswith(b"{")
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "promptops = promptops.cli:main" in zf.read(entry_points).decode()


def test_the_venv_imports_the_wheel_not_the_checkout(installed: Installed) -> None:
    code = ("import promptops, promptops.schemas as s, sys; print(promptops.__file__); "
            "print(s.schema_path('prompt')); print(s.schema_path('config')); print(s.schema_path('plan'))")
    proc = _run([installed.python, "-c", code], cwd=installed.outside, env=installed.env)
    assert proc.returncode == 0, _describe(proc)
    module, *schemas = [Path(line).resolve() for line in proc.stdout.split()]
    package = installed.site_packages / "promptops"
    assert module == package / "__init__.py", (
        f"the fresh venv imported promptops from {module}, not from the installed wheel in {package}")
    assert not module.is_relative_to(REPO)
    for name, path in zip(SCHEMAS, schemas):
        assert path == package / "schemas" / f"{name}.schema.json", f"{name} schema found at {path}"


def test_validate_examples_from_outside_the_source_tree(installed: Installed) -> None:
    project = installed.outside / "examples"
    shutil.copytree(REPO / "examples", project, ignore=shutil.ignore_patterns(".promptops", "__pycache__"))
    assert not project.resolve().is_relative_to(REPO)
    proc = _run([installed.promptops, "validate"], cwd=project, env=installed.env)
    assert proc.returncode == 0, _describe(proc)
    assert "Success!" in proc.stdout, _describe(proc)
    count = sum(1 for _ in (project / "prompts").rglob("*.yaml"))
    assert f"{count} prompt file" in proc.stdout, _describe(proc)


def test_validate_from_the_wheel_applies_the_schema(installed: Installed) -> None:
    """A schema error is reported by the installed CLI: the packaged schema is really in use."""
    project = installed.outside / "broken"
    (project / "prompts").mkdir(parents=True)
    (project / "prompts" / "bad.yaml").write_text("name: bad\ntype: text\ntemplate: hi\ncolour: blue\n")
    proc = _run([installed.promptops, "validate"], cwd=project, env=installed.env)
    assert proc.returncode == 1, _describe(proc)
    assert "colour" in proc.stdout + proc.stderr, _describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, _describe(proc)


def test_python_dash_m_promptops_version(installed: Installed) -> None:
    proc = _run([installed.python, "-m", "promptops", "--version"], cwd=installed.outside, env=installed.env)
    assert proc.returncode == 0, _describe(proc)
    from promptops import __version__

    assert __version__ in proc.stdout, _describe(proc)
