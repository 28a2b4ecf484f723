"""The CLI end to end on temporary directories: the workflows a new user runs."""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest

from conftest import REPO, git, write

SUMMARIZER = "prompts/summarizer.yaml"


def versions_in(registry: Path) -> dict[str, int]:
    db = sqlite3.connect(registry)
    try:
        rows = db.execute("select p.name, count(*) from versions v join prompts p on p.id = v.prompt_id group by 1")
        return dict(rows.fetchall())
    finally:
        db.close()


def test_examples_plan_apply_then_no_changes(cli, examples):
    r = cli("-C", examples, "plan", "--detailed-exitcode")
    assert r.code == 2, r.err
    assert r.out.count('+ version "') == 11
    assert r.out.rstrip().endswith(
        "Plan: 11 versions to create, 14 labels to move, 1 traffic split to change, 7 metadata updates, "
        "0 prompts to delete.")
    r = cli("-C", examples, "apply", "--auto-approve")
    assert r.code == 0, r.err
    assert "Apply complete! 11 versions created, 14 labels moved, 1 traffic split changed" in r.out
    r = cli("-C", examples, "plan", "--detailed-exitcode")
    assert (r.code, r.err) == (0, "")
    assert r.out == 'promptops plan for target "local" (provider: local)\n\nNo changes. Remote matches the files.\n'


def test_edit_then_revert_moves_labels_back_without_new_version(cli, examples):
    assert cli("-C", examples, "apply", "--auto-approve").code == 0
    original = (examples / SUMMARIZER).read_text()
    (examples / SUMMARIZER).write_text(original.replace("under 20 words", "under 15 words"))

    r = cli("-C", examples, "plan", "--format", "json")
    plan = json.loads(r.out)
    assert plan["summary"] == {"create_version": 1, "move_label": 2, "remove_label": 0, "set_traffic": 0,
                               "update_metadata": 0, "delete_prompt": 0}
    text = cli("-C", examples, "plan").out
    assert "          -Keep each bullet under 20 words.\n          +Keep each bullet under 15 words.\n" in text
    assert '  ~ label "production": v1 -> (new) default\n' in text
    assert cli("-C", examples, "apply", "--auto-approve").code == 0

    (examples / SUMMARIZER).write_text(original)
    r = cli("-C", examples, "plan", "--format", "json")
    plan = json.loads(r.out)
    assert [(a["kind"], a.get("label"), a["to"]) for a in plan["actions"]] == [
        ("move_label", "production", {"remote_version": "1", "version": "default"}),
        ("move_label", "staging", {"remote_version": "1", "version": "default"}),
    ]
    assert cli("-C", examples, "apply", "--auto-approve").code == 0
    assert cli("-C", examples, "plan", "--detailed-exitcode").code == 0
    assert versions_in(examples / ".promptops/registry.db")["summarizer"] == 2


def test_whitespace_only_edit_is_visible_in_the_diff(cli, examples):
    assert cli("-C", examples, "apply", "--auto-approve").code == 0
    text = (examples / SUMMARIZER).read_text()
    (examples / SUMMARIZER).write_text(text.replace("3 bullet points.", "3 bullet points.  "))
    out = cli("-C", examples, "plan").out
    assert "          -Summarize the following article in 3 bullet points.\n" in out
    assert "          +Summarize the following article in 3 bullet points.··\n" in out


def test_saved_plan_is_refused_when_stale(cli, examples, tmp_path):
    assert cli("-C", examples, "apply", "--auto-approve").code == 0
    path = examples / SUMMARIZER
    original = path.read_text()
    path.write_text(original.replace("under 20 words", "under 10 words"))
    planfile = tmp_path / "change.plan"
    r = cli("-C", examples, "plan", "-o", planfile)
    assert r.code == 0 and f'    promptops -C {examples} apply "{planfile}"\n' in r.out

    # someone else applies a different change first
    path.write_text(original.replace("under 20 words", "under 12 words"))
    assert cli("-C", examples, "apply", "--auto-approve").code == 0

    r = cli("-C", examples, "apply", planfile)
    assert r.code == 1
    assert r.err.startswith("Error: plan is stale: the remote changed since the plan was made (summarizer: ")
    assert ("(summarizer: version v2 added, label production v1 -> v2, label staging v1 -> v2); "
            "run promptops plan again") in r.err
    assert r.err.rstrip().endswith("run promptops plan again")
    assert "Traceback" not in r.err
    assert versions_in(examples / ".promptops/registry.db")["summarizer"] == 2


def test_saved_plan_applies_exactly_and_show_renders_it(cli, examples, tmp_path):
    planfile = tmp_path / "all.plan"
    planned = cli("-C", examples, "plan", "-o", planfile)
    shown = cli("-C", examples, "show", planfile)
    assert planned.out.startswith(shown.out)
    data = json.loads(planfile.read_text())
    schema = json.loads((REPO / "schemas/plan.schema.json").read_text())
    jsonschema.validate(data, schema)
    assert data["target"] == "local" and data["provider"] == "local"
    r = cli("-C", examples, "apply", planfile)
    assert r.code == 0 and "Apply complete! 11 versions created" in r.out
    assert "support/reply: create version concise: done [v2]" in r.err
    # the same plan again is stale: everything it planned now exists
    assert cli("-C", examples, "apply", planfile).code == 1


def test_apply_asks_for_yes(cli, examples):
    r = cli("-C", examples, "apply", input="no\n")
    assert r.code == 1 and "Only 'yes' will be accepted to approve." in r.out
    assert "Apply cancelled." in r.err
    assert not (examples / ".promptops/registry.db").exists()
    r = cli("-C", examples, "apply", input="")  # EOF (CI without stdin) is a no
    assert r.code == 1
    r = cli("-C", examples, "apply", input="yes\n")
    assert r.code == 0 and "Apply complete!" in r.out


def test_json_and_markdown_formats(cli, examples):
    data = json.loads(cli("-C", examples, "plan", "--json").out)
    assert data["format_version"] == 1 and data["summary"]["create_version"] == 11
    assert data["remote_fingerprint"].startswith("sha256:")
    jsonschema.validate(data, json.loads((REPO / "schemas/plan.schema.json").read_text()))
    md = cli("-C", examples, "plan", "--format", "markdown").out
    assert md.startswith("### promptops plan: `local` (local)")
    assert "```diff" in md


def test_prune_deletes_prompts_without_files(cli, examples):
    assert cli("-C", examples, "apply", "--auto-approve").code == 0
    (examples / SUMMARIZER).unlink()
    assert cli("-C", examples, "plan", "--detailed-exitcode").code == 0
    r = cli("-C", examples, "plan", "--prune", "--json")
    assert [(a["kind"], a["prompt"]) for a in json.loads(r.out)["actions"]] == [("delete_prompt", "summarizer")]
    assert cli("-C", examples, "apply", "--prune", "--auto-approve").code == 0
    assert "summarizer" not in versions_in(examples / ".promptops/registry.db")


def test_init_scaffolds_a_working_project(cli, tmp_path):
    r = cli("-C", tmp_path, "init")
    assert r.code == 0
    for rel in ("promptops.yaml", "prompts/example.yaml", ".pre-commit-config.yaml", ".github/workflows/promptops.yml"):
        assert f"wrote {rel}" in r.out and (tmp_path / rel).is_file()
    assert ".promptops/" in (tmp_path / ".gitignore").read_text()
    assert cli("-C", tmp_path, "validate").code == 0
    assert cli("-C", tmp_path, "apply", "--auto-approve").code == 0
    assert cli("-C", tmp_path, "plan", "--detailed-exitcode").code == 0
    again = cli("-C", tmp_path, "init")
    assert "kept promptops.yaml (exists; --force overwrites it)" in again.out
    assert (tmp_path / ".gitignore").read_text().count(".promptops/") == 1


def test_render_text_chat_and_variables(cli, examples):
    r = cli("-C", examples, "render", "summarizer", "--var", "article=Cats sleep a lot.")
    assert r.code == 0
    assert r.out == ("Summarize the following article in 3 bullet points.\nKeep each bullet under 20 words.\n\n"
                     "Cats sleep a lot.\n")
    r = cli("-C", examples, "render", "support/reply", "--version", "concise", "--examples")
    assert r.code == 0 and r.out.startswith("[system]\nYou are a support agent for Acme Router X2.")
    assert "[placeholder: history]\n" in r.out and '[user]\nDana writes: My router drops' in r.out
    r = cli("-C", examples, "render", "summarizer")
    assert r.code == 1 and "article" in r.err and "--var" in r.err
    r = cli("-C", examples, "render", "checkout/assistant", "--version", "v1", "--examples", "--var", "cart_value=abc")
    assert r.code == 1 and "declared as number" in r.err
    r = cli("-C", examples, "render", "nope")
    assert r.code == 1 and "no prompt named 'nope'" in r.err


def test_resolve_is_sticky_and_follows_the_split(cli, examples):
    assert cli("-C", examples, "apply", "--auto-approve").code == 0
    picks = {}
    for i in range(200):
        r = cli("-C", examples, "resolve", "support/reply", "--user", f"user-{i}", "--json")
        picks[i] = json.loads(r.out)["version"]
    share = sum(1 for v in picks.values() if v == "concise") / len(picks)
    assert 0.04 < share < 0.17
    r = cli("-C", examples, "resolve", "support/reply", "--user", "user-1")
    assert r.out.startswith("support/reply production -> ") and "bucket" in r.out
    assert cli("-C", examples, "resolve", "support/reply", "--user", "user-1").out == r.out
    r = cli("-C", examples, "resolve", "summarizer", "--user", "u", "--label", "nope")
    assert r.code == 1 and "no label" in r.err


def test_exit_codes_for_usage_config_and_internal_errors(cli, examples, monkeypatch):
    assert cli("-C", examples, "plan", "--bogus").code == 1
    r = cli("-C", examples, "plan", "-t", "prod")
    assert r.code == 1 and "unknown target 'prod'" in r.err
    r = cli("-C", examples / "nowhere", "plan")
    assert r.code == 1 and "No such file or directory" in r.err

    import promptops.commands

    def boom(*a, **k):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(promptops.commands, "build_plan", boom)
    r = cli("-C", examples, "plan")
    assert r.code == 3 and "internal error: RuntimeError: simulated bug" in r.err and "Traceback" not in r.err
    r = cli("--debug", "-C", examples, "plan")
    assert r.code == 3 and "Traceback" in r.err


def test_broken_registry_and_plan_files_fail_cleanly(cli, examples, tmp_path):
    write(examples, ".promptops/registry.db", "this is not sqlite")
    r = cli("-C", examples, "plan")
    assert r.code == 1 and ".promptops/registry.db" in r.err and "Traceback" not in r.err
    bad = write(tmp_path, "bad.plan", "{not json")
    r = cli("-C", examples, "show", bad)
    assert r.code == 1 and "not a promptops plan file" in r.err
    r = cli("-C", examples, "apply", tmp_path / "missing.plan")
    assert r.code == 1 and "not found" in r.err


def test_version_and_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "promptops", "--version"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip() == "promptops, version 0.1.0"


def test_plan_records_commit_and_dirty_flag_and_apply_stamps_provenance(cli, tmp_path):
    assert cli("-C", tmp_path, "init").code == 0
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "Add the example prompt")
    sha = git(tmp_path, "rev-parse", "HEAD").strip()
    data = json.loads(cli("-C", tmp_path, "plan", "--json").out)
    assert (data["commit"], data["dirty"], data["commit_subject"]) == (sha, False, "Add the example prompt")
    assert cli("-C", tmp_path, "apply", "--auto-approve").code == 0
    from promptops.providers.local import LocalProvider

    registry = LocalProvider(tmp_path / ".promptops/registry.db")
    stamp = registry.read().prompts["example"].versions[0].provenance
    registry.close()
    assert stamp == {"commit": sha[:7], "dirty": False, "subject": "Add the example prompt", "path": "prompts/example.yaml",
                     "version": "default"}
    (tmp_path / "prompts/example.yaml").write_text((tmp_path / "prompts/example.yaml").read_text() + "\n")
    assert json.loads(cli("-C", tmp_path, "plan", "--json").out)["dirty"] is True


def test_paths_are_relative_to_dash_c_like_git(cli, examples, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = cli("-C", "examples", "plan", "-o", "change.plan")
    assert r.code == 0 and (examples / "change.plan").is_file() and not (tmp_path / "change.plan").exists()
    assert '    promptops -C examples apply "change.plan"\n' in r.out
    assert cli("-C", "examples", "apply", "change.plan").code == 0
    assert cli("-C", "examples", "validate", "prompts/summarizer.yaml").code == 0
    r = cli("-C", "nowhere", "plan")
    assert r.code == 1 and r.err == "Error: cannot use -C nowhere: No such file or directory\n"


def test_global_flags_also_after_the_subcommand(cli, examples):
    assert cli("-C", examples, "plan", "--no-color").code == 0
    assert cli("-C", examples, "validate", "--debug").code == 0


def test_saved_plan_refuses_prune(cli, examples, tmp_path):
    planfile = tmp_path / "p.plan"
    assert cli("-C", examples, "plan", "-o", planfile).code == 0
    r = cli("-C", examples, "apply", planfile, "--prune")
    assert r.code == 1 and "--prune cannot be used with a saved plan" in r.err


def test_undeclared_prompts_are_named_in_the_plan(cli, examples):
    assert cli("-C", examples, "apply", "--auto-approve").code == 0
    (examples / SUMMARIZER).unlink()
    r = cli("-C", examples, "plan")
    assert r.code == 0
    assert r.out == ('promptops plan for target "local" (provider: local)\n\n'
                     "Warning: 1 prompt on target 'local' is not declared by any file and will be\n"
                     "  kept: summarizer (plan with --prune to delete it)\n\n"
                     "No changes. Remote matches the files.\n")


def test_os_errors_are_user_errors_not_bugs(cli, examples, tmp_path):
    r = cli("-C", examples, "plan", "-o", "/proc/nope/x.plan")
    assert r.code == 1 and r.err.startswith("Error: ") and "internal error" not in r.err


def test_a_second_apply_waits_for_the_lock_or_stops(cli, examples):
    from promptops.locking import file_lock

    lock = examples / ".promptops/registry.db.lock"
    with file_lock(lock, timeout=0, what="test"):
        r = cli("-C", examples, "apply", "--auto-approve")
    assert r.code == 1
    assert r.err.startswith("Error: registry ") and "is locked by another promptops apply (process " in r.err
    assert "--lock-timeout" in r.err
    assert cli("-C", examples, "apply", "--auto-approve").code == 0


def test_concurrent_applies_create_each_version_once(examples):
    """Two real processes apply at once: one applies, the other waits for the lock and then finds
    nothing to do (or stops on the lock); never duplicate versions."""
    cmd = [sys.executable, "-m", "promptops", "-C", str(examples), "apply", "--auto-approve", "--lock-timeout", "60"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert [code for _, _, code in results] == [0, 0], results
    assert sum(out.count("Apply complete!") for out, _, _ in results) == 1
    assert sum(versions_in(examples / ".promptops/registry.db").values()) == 11


class Running:
    """``promptops ARGS`` in a child process, as a user runs it (stdout discarded: a full pipe would
    block it); its stderr read on a thread, line by line, each with the time it arrived."""

    def __init__(self, *args: object):
        self.proc = subprocess.Popen([sys.executable, "-m", "promptops", *map(str, args)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.err: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self._lines.put((time.monotonic(), line))
        self._lines.put((time.monotonic(), None))

    def wait_for(self, text: str, timeout: float = 30) -> float:
        """When the next line holding ``text`` arrived (a failure after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                at, line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {text!r} on stderr within {timeout}s:\n{''.join(self.err)}")
            if line is None:
                pytest.fail(f"exited ({self.proc.wait()}) without {text!r} on stderr:\n{''.join(self.err)}")
            self.err.append(line)
            if text in line:
                return at

    def interrupt(self) -> float:
        """Ctrl-C (SIGINT); when it was sent."""
        at = time.monotonic()
        os.kill(self.proc.pid, signal.SIGINT)
        return at

    def finish(self, timeout: float = 30) -> tuple[int, str, float]:
        """The exit code, the whole stderr and when the process ended."""
        code = self.proc.wait(timeout)
        ended = time.monotonic()
        self._reader.join(5)
        while not self._lines.empty():
            line = self._lines.get()[1]
            if line is not None:
                self.err.append(line)
        return code, "".join(self.err), ended

    def __enter__(self) -> "Running":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_ctrl_c_during_a_local_apply_says_what_happens_next_and_reports_what_was_applied(tmp_path):
    for i in range(600):
        write(tmp_path, f"prompts/p{i}.yaml", f"template: 'Hello {i} {{{{x}}}}'\nlabels: [production, staging]\n")
    with Running("-C", tmp_path, "apply", "--auto-approve") as apply:
        apply.wait_for(": done")  # apply is under way
        sent = apply.interrupt()
        # one call at a time on the local registry (an SQLite transaction of milliseconds), none waits
        said = apply.wait_for("Interrupt received: finishing ")
        code, err, _ = apply.finish()
    assert said - sent < 5  # measured: a few milliseconds
    assert re.search(r"^Interrupt received: finishing [01] calls? in flight, starting no new ones$", err, re.M), err
    assert code == 130, err[-2000:]
    assert "Error: apply interrupted: interrupted (Ctrl-C)" in err and "Not applied: " in err
    assert "May have been applied" not in err and "Traceback" not in err  # the call in flight finished
    applied = int(re.search(r"^Applied before the stop: (\d+) actions?$", err, re.M).group(1))
    created = sum(versions_in(tmp_path / ".promptops/registry.db").values())
    assert 0 < created < 600
    # each prompt: a create, then one call moving both labels; the one under way may be between them
    assert applied in (3 * created, 3 * created - 2), (applied, created)


def test_running_inside_the_project_points_at_its_root(cli, examples, monkeypatch):
    monkeypatch.chdir(examples / "prompts" / "support")
    r = cli("plan")
    assert r.code == 1
    assert r.err == (f"Error: no prompts folder prompts/ in {examples / 'prompts' / 'support'}; this is inside the "
                     f"project at {examples}: run promptops there, or use -C ../..\n")


LF_CONFIG = """\
targets:
  lf:
    provider: langfuse
    base_url: %s
    credentials: {public_key: "${LF_PUBLIC}", secret_key: "${LF_SECRET}"}
"""


@pytest.mark.parametrize(("status", "next_step"), [
    (400, "The platform refused the request (400), and running `promptops apply` again would be refused the same "
          "way: change what the error names"),
    (422, "The platform refused the request (422)"),
    (403, "Running `promptops apply` again fails the same way until the key may do this"),
    (404, "The platform no longer has what the plan names (changed outside promptops?): run `promptops plan` again"),
    (503, "Run `promptops apply` again to finish"),
])
def test_a_failed_apply_says_whether_running_again_can_help(cli, tmp_path, monkeypatch, status, next_step):
    from emulators.langfuse import LangfuseEmulator

    monkeypatch.setenv("LF_PUBLIC", "pk-lf-cli")
    monkeypatch.setenv("LF_SECRET", "sk-lf-cli-secret")
    emu = LangfuseEmulator("pk-lf-cli", "sk-lf-cli-secret", plan="none")
    with emu.serve() as server:
        write(tmp_path, "promptops.yaml", LF_CONFIG % server.url)
        write(tmp_path, "prompts/a.yaml", "template: Hi {{name}}\nlabels: [production]\n")
        emu.faults.fail_next(50, status=status, body={"message": "refused by the test"}, match="POST",
                             headers={"Retry-After": "0"})
        r = cli("-C", tmp_path, "apply", "-t", "lf", "--auto-approve", "--allow-dirty")
    assert r.code == 1
    assert next_step in " ".join(r.err.split())
    assert ("again to finish" in r.err) == (status == 503)
    assert "Traceback" not in r.err and "sk-lf-cli-secret" not in r.err


def apply_under_way(cli, tmp_path: Path, emu, url: str) -> Running:
    """A Langfuse apply on two threads, caught at the moment one call waits out a 429 (Retry-After:
    30 s: the label move of prompt a) while another is on the wire (the create of prompt b, which
    the server holds for 3 s, then makes)."""
    write(tmp_path, "promptops.yaml", LF_CONFIG % url + "    concurrency: 2\n")
    write(tmp_path, "prompts/a.yaml", "template: A\nlabels: [production]\n")
    assert cli("-C", tmp_path, "apply", "-t", "lf", "--auto-approve", "--allow-dirty").code == 0
    write(tmp_path, "prompts/a.yaml", "template: A\nlabels: [production, staging]\n")
    write(tmp_path, "prompts/b.yaml", "template: B\nlabels: [production]\n")
    emu.faults.rate_limit(1, retry_after=30, match=r"^PATCH /api/public/v2/prompts/a/")
    emu.faults.delay(3, match=r"^POST /api/public/v2/prompts$")
    creates = emu.calls("POST")
    apply = Running("-C", tmp_path, "apply", "-t", "lf", "--auto-approve", "--allow-dirty", "--no-color")
    apply.wait_for("rate limited (429) for move label 'staging' of 'a' to version 1; retrying in 30s")
    deadline = time.monotonic() + 30
    while emu.calls("POST") == creates and time.monotonic() < deadline:
        time.sleep(0.01)
    return apply


@pytest.fixture
def langfuse(monkeypatch):
    from emulators.langfuse import LangfuseEmulator

    monkeypatch.setenv("LF_PUBLIC", "pk-lf-cli")
    monkeypatch.setenv("LF_SECRET", "sk-lf-cli-secret")
    emu = LangfuseEmulator("pk-lf-cli", "sk-lf-cli-secret", plan="none")
    with emu.serve() as server:
        yield emu, server.url


def test_ctrl_c_says_at_once_what_happens_next_ends_a_429_wait_and_lets_the_call_in_flight_finish(
        cli, tmp_path, langfuse):
    emu, url = langfuse
    with apply_under_way(cli, tmp_path, emu, url) as apply:
        sent = apply.interrupt()
        said = apply.wait_for("Interrupt received: finishing 1 call in flight, starting no new ones")
        code, err, ended = apply.finish()
    assert said - sent < 5  # measured: a few milliseconds (it was silent until every wait ended)
    assert ended - sent < 15  # the create's 3 s, not the 30 s of the rate limit
    assert code == 130, err
    assert "a: move label staging to default: not applied (interrupted)" in err
    assert ("Applied before the stop: 2 actions\n  - b: create version default\n  - b: move label production to "
            "default\n\nNot applied: 1 action\n  - a: move label staging to default\n") in err
    assert "May have been applied" not in err and "Traceback" not in err
    # the summary is the server's state
    assert [row["labels"] for row in emu.versions("a")] == [["production", "latest"]]
    assert [(row["prompt"], row["labels"]) for row in emu.versions("b")] == [("B", ["production", "latest"])]
    assert cli("-C", tmp_path, "apply", "-t", "lf", "--auto-approve", "--allow-dirty").code == 0
    assert [sorted(row["labels"]) for row in emu.versions("a")] == [["latest", "production", "staging"]]


def test_a_second_ctrl_c_ends_at_once_and_lists_the_call_in_flight_as_may_have_been_applied(cli, tmp_path, langfuse):
    emu, url = langfuse
    with apply_under_way(cli, tmp_path, emu, url) as apply:
        apply.interrupt()
        apply.wait_for("Interrupt received: finishing 1 call in flight")
        # (a call woken from its wait reports in microseconds; a second Ctrl-C before that lists it
        # as may have been applied too, which is never wrong)
        apply.wait_for("a: move label staging to default: not applied (interrupted)")
        again = apply.interrupt()
        code, err, ended = apply.finish()
    assert ended - again < 2  # measured: a tenth of a second; the create it gave up on had ~3 s to go
    assert code == 130, err
    assert "Interrupt received again: not waiting for 1 call in flight (may have been applied)" in err
    assert ("May have been applied: 2 actions\n  - b: create version default\n  - b: move label production to "
            "default\n\nNot applied: 1 action\n  - a: move label staging to default\n") in err
    assert "Applied before the stop" not in err and "Traceback" not in err
    assert "`promptops plan` shows whether it was" in err
    # and it was: the server made the version after promptops had gone
    deadline = time.monotonic() + 10
    while not emu.versions("b") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [row["prompt"] for row in emu.versions("b")] == ["B"]
    assert [row["labels"] for row in emu.versions("a")] == [["production", "latest"]]
    assert cli("-C", tmp_path, "apply", "-t", "lf", "--auto-approve", "--allow-dirty").code == 0
    assert [row["prompt"] for row in emu.versions("b")] == ["B"]  # found by content, not made twice


def test_ctrl_c_while_apply_reads_the_platform_does_not_wait_out_a_rate_limit(cli, tmp_path, langfuse):
    emu, url = langfuse
    write(tmp_path, "promptops.yaml", LF_CONFIG % url)
    write(tmp_path, "prompts/a.yaml", "template: A\nlabels: [production]\n")
    assert cli("-C", tmp_path, "apply", "-t", "lf", "--auto-approve", "--allow-dirty").code == 0
    write(tmp_path, "prompts/a.yaml", "template: A2\nlabels: [production]\n")
    emu.faults.rate_limit(1, retry_after=30, match=r"^GET /api/public/v2/prompts/a$")  # the plan's read of v1
    with Running("-C", tmp_path, "apply", "-t", "lf", "--auto-approve", "--allow-dirty") as apply:
        apply.wait_for("rate limited (429) for read 'a' version 1; retrying in 30s")
        sent = apply.interrupt()
        code, err, ended = apply.finish()
    assert ended - sent < 5  # measured: a tenth of a second (the read's thread held it for the 30 s)
    assert code == 130 and err.endswith("\nInterrupted.\n") and "Traceback" not in err, err
    assert [row["prompt"] for row in emu.versions("a")] == ["A"]


def test_a_second_ctrl_c_ends_a_local_apply_at_once_while_another_writer_holds_the_registry(cli, examples,
                                                                                          monkeypatch):
    """The local registry's write waits (in SQLite, up to its 10 s busy timeout) for a writer
    outside promptops; a second Ctrl-C does not wait for it, nor for closing the registry."""
    import promptops.commands as commands
    from promptops.providers.local import LocalProvider

    assert cli("-C", examples, "apply", "--auto-approve").code == 0
    original = (examples / SUMMARIZER).read_text()
    (examples / SUMMARIZER).write_text(original.replace("under 20 words", "under 15 words"))
    writing, said, second = threading.Event(), threading.Event(), []
    create, progress = LocalProvider.create_version, commands._progress

    def create_version(self, new):
        writing.set()
        return create(self, new)

    def watched(message: str) -> None:
        progress(message)
        if message.startswith("Interrupt received:"):
            said.set()

    def ctrl_c(after: threading.Event) -> None:  # SIGINT to the main thread, which runs the CLI
        if after.wait(10):
            second.append(time.monotonic())
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    monkeypatch.setattr(LocalProvider, "create_version", create_version)
    monkeypatch.setattr(commands, "_progress", watched)
    foreign = sqlite3.connect(examples / ".promptops/registry.db", isolation_level=None)
    foreign.execute("BEGIN IMMEDIATE")
    try:
        for event in (writing, said):
            threading.Thread(target=ctrl_c, args=(event,), daemon=True).start()
        r = cli("-C", examples, "apply", "--auto-approve")
        ended = time.monotonic()
    finally:
        foreign.execute("ROLLBACK")
        foreign.close()
    assert len(second) == 2 and ended - second[1] < 5  # measured: milliseconds; the busy timeout is 10 s
    assert r.code == 130, r.err
    assert "Interrupt received: finishing 1 call in flight, starting no new ones\n" in r.err
    assert ("May have been applied: 1 action\n  - summarizer: create version default\n\nNot applied: 2 actions\n"
            "  - summarizer: move label production to default\n  - summarizer: move label staging to default\n"
            ) in r.err
    assert "Traceback" not in r.err
