"""The apply engine on a real local registry, with failures injected between the engine and it."""
from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from conftest import commit, init_repo, write
from emulators.langfuse import LangfuseEmulator
from promptops.apply import apply_plan, check_fresh
from promptops.config import Target
from promptops.errors import ApplyFailed, Interrupted, ProviderError, StalePlanError
from promptops.plan import build_plan
from promptops.prompts import load_project
from promptops.providers.local import LocalProvider

LOCAL = Target("local", "local")


class Flaky:
    """The real LocalProvider, except that write number ``fail_at`` (1-based) fails.

    ``landed=True`` makes that write happen before the error, like a response lost after the server
    committed (an ambiguous failure); otherwise nothing is written.
    """

    WRITES = ("create_version", "move_label", "remove_label", "set_traffic", "update_metadata", "delete_prompt")

    def __init__(self, inner: LocalProvider, fail_at: int, *, landed: bool = False):
        self.inner, self.fail_at, self.landed, self.writes = inner, fail_at, landed, 0
        self.kind, self.capabilities = inner.kind, inner.capabilities

    def __getattr__(self, name):
        method = getattr(self.inner, name)
        if name not in self.WRITES:
            return method

        def call(*args, **kwargs):
            self.writes += 1
            if self.writes == self.fail_at:
                if self.landed:
                    method(*args, **kwargs)
                raise ProviderError("connection dropped", ambiguous=self.landed)
            return method(*args, **kwargs)

        return call


def plan_for(root: Path, provider) -> object:
    project = load_project(root)
    assert not project.errors
    return build_plan(project.specs, provider.read(), LOCAL)


def count_versions(provider: LocalProvider) -> int:
    return sum(len(p.versions) for p in provider.read().prompts.values())


def test_failure_mid_apply_reports_done_and_not_done_then_rerun_converges(examples, tmp_path):
    registry = LocalProvider(tmp_path / "r.db")
    plan = plan_for(examples, registry)
    flaky = Flaky(registry, fail_at=5)
    with pytest.raises(ApplyFailed) as info:
        apply_plan(plan, flaky)
    failed = info.value
    assert str(failed) == "connection dropped"
    assert len(failed.done) == 4
    assert len(failed.done) + len(failed.not_done) == len(plan.actions)
    assert failed.done == [
        "checkout/assistant: create version v1", "checkout/assistant: create version v2",
        "checkout/assistant: move label production to v1", "checkout/assistant: move label staging to v2"]
    assert failed.not_done[0] == "checkout/assistant: update metadata"
    assert count_versions(registry) == 2

    again = plan_for(examples, registry)
    assert again.summary["create_version"] == 9  # the two created versions are found by digest
    apply_plan(again, registry)
    assert count_versions(registry) == 11
    assert not plan_for(examples, registry).has_changes


def test_ambiguous_create_is_found_by_digest_not_created_twice(examples, tmp_path):
    registry = LocalProvider(tmp_path / "r.db")
    plan = plan_for(examples, registry)
    apply_plan(plan, Flaky(registry, fail_at=1, landed=True))
    assert count_versions(registry) == 11
    assert not plan_for(examples, registry).has_changes


def test_parallel_apply_matches_serial(examples, tmp_path):
    serial, parallel = LocalProvider(tmp_path / "s.db"), LocalProvider(tmp_path / "p.db")
    apply_plan(plan_for(examples, serial), serial, concurrency=1)
    apply_plan(plan_for(examples, parallel), parallel, concurrency=4)
    strip = lambda state: {n: p.snapshot() for n, p in state.prompts.items()}  # noqa: E731
    assert strip(serial.read()) == strip(parallel.read())


def test_failure_with_concurrency_stops_new_work(examples, tmp_path):
    registry = LocalProvider(tmp_path / "r.db")
    plan = plan_for(examples, registry)
    with pytest.raises(ApplyFailed) as info:
        apply_plan(plan, Flaky(registry, fail_at=3), concurrency=3)
    assert info.value.not_done  # something was left undone, and reported
    apply_plan(plan_for(examples, registry), registry)
    assert not plan_for(examples, registry).has_changes


def test_provenance_is_stamped_on_created_versions(examples, tmp_path):
    registry = LocalProvider(tmp_path / "r.db")
    plan = plan_for(examples, registry)
    from dataclasses import replace

    apply_plan(replace(plan, commit="abcdef0123456789", commit_subject="Tune prompts"), registry)
    version = registry.read(["summarizer"]).prompts["summarizer"].versions[0]
    assert version.provenance == {"commit": "abcdef0", "dirty": False, "subject": "Tune prompts",
                                  "path": "prompts/summarizer.yaml", "version": "default"}


def test_check_fresh_names_what_changed(examples, tmp_path):
    registry = LocalProvider(tmp_path / "r.db")
    apply_plan(plan_for(examples, registry), registry)
    text = (examples / "prompts/summarizer.yaml").read_text()
    (examples / "prompts/summarizer.yaml").write_text(text.replace("3 bullet", "4 bullet"))
    plan = plan_for(examples, registry)
    check_fresh(plan, registry)  # nothing changed yet
    registry.remove_label("summarizer", "staging")
    with pytest.raises(StalePlanError, match=r"summarizer: label staging removed\)"):
        check_fresh(plan, registry)


def test_stale_message_names_a_changed_traffic_split(examples, tmp_path):
    registry = LocalProvider(tmp_path / "r.db")
    apply_plan(plan_for(examples, registry), registry)
    text = (examples / "prompts/support/reply.yaml").read_text()
    (examples / "prompts/support/reply.yaml").write_text(text.replace("{stable: 90, concise: 10}", "{stable: 80, concise: 20}"))
    plan = plan_for(examples, registry)
    registry.set_traffic("support/reply", "production", None)
    with pytest.raises(StalePlanError, match=r"support/reply: traffic production v1 90%, v2 10% -> \(no split\)\)"):
        check_fresh(plan, registry)


class Composing:
    """The real LocalProvider as a platform that resolves Langfuse composition tags: a create
    naming a label of another prompt that does not hold it yet is refused, as Langfuse refuses it
    (400 "Prompt dependency not found")."""

    def __init__(self, inner: LocalProvider):
        from dataclasses import replace

        self.inner, self.kind = inner, inner.kind
        self.capabilities = replace(inner.capabilities, composition="langfuse")
        self.creates: list[str] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def create_version(self, new):
        from promptops.composition import find_references

        for ref in find_references(new.content, "langfuse"):
            there = self.inner.read([ref.name]).prompts.get(ref.name)
            if there is None or ref.label not in there.labels:
                raise ProviderError(f"Prompt dependency not found: {ref.name} - label {ref.label}")
        created = self.inner.create_version(new)
        self.creates.append(new.prompt)
        return created


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_prompt_composing_another_is_created_after_it(tmp_path, concurrency):
    root = tmp_path / "project"
    (root / "prompts").mkdir(parents=True)
    # names sort composer first, so the plan lists it first
    (root / "prompts/a-reply.yaml").write_text(
        'template: "Reply. @@@langfusePrompt:name=z-tone|label=production@@@"\nlabels: [production]\n')
    (root / "prompts/m-summary.yaml").write_text('template: "@@@langfusePrompt:name=a-reply|label=production@@@"\n')
    (root / "prompts/z-tone.yaml").write_text("template: Be kind.\nlabels: [production]\n")
    (root / "prompts/other.yaml").write_text("template: Unrelated.\n")
    platform = Composing(LocalProvider(tmp_path / "r.db"))
    plan = plan_for(root, platform)
    assert [a.prompt for a in plan.actions][:2] == ["a-reply", "a-reply"]
    apply_plan(plan, platform, concurrency=concurrency)
    assert platform.creates.index("z-tone") < platform.creates.index("a-reply") < platform.creates.index("m-summary")
    assert not plan_for(root, platform).has_changes


def test_a_prompt_composing_one_that_failed_is_not_attempted(tmp_path):
    root = tmp_path / "project"
    (root / "prompts").mkdir(parents=True)
    (root / "prompts/a-reply.yaml").write_text(
        'template: "Reply. @@@langfusePrompt:name=z-tone|label=production@@@"\nlabels: [production]\n')
    (root / "prompts/z-tone.yaml").write_text("template: Be kind.\nlabels: [production]\n")
    registry = LocalProvider(tmp_path / "r.db")
    platform = Composing(Flaky(registry, fail_at=1))
    platform.capabilities = Composing(registry).capabilities
    with pytest.raises(ApplyFailed) as info:
        apply_plan(plan_for(root, registry), platform, concurrency=2)
    assert str(info.value) == "connection dropped"
    assert info.value.done == []
    assert "a-reply: create version default" in info.value.not_done
    assert platform.creates == []


class Unlucky:
    """The real LocalProvider behind a platform whose creates fail ambiguously: each create in
    ``outcomes`` ("landed": written, its answer lost; "lost": not written, a 5xx; "refused": a 400,
    not written), and reads fail once ``read_fails`` creates have been attempted."""

    def __init__(self, inner: LocalProvider, outcomes: list[str], read_fails: int | None = None):
        self.inner, self.outcomes, self.read_fails, self.attempts = inner, list(outcomes), read_fails, 0
        self.kind, self.capabilities = inner.kind, inner.capabilities

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def read(self, names=None):
        if self.read_fails is not None and self.attempts >= self.read_fails:
            raise ProviderError("target 'x': read 'p' failed with 503 Service Unavailable", status=503)
        return self.inner.read(names)

    def create_version(self, new):
        self.attempts += 1
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if outcome == "landed":
            self.inner.create_version(new)
        if outcome in ("landed", "lost"):
            raise ProviderError("target 'x': create failed (the request may have taken effect)", ambiguous=True)
        if outcome == "refused":
            raise ProviderError("target 'x': create failed with 400", status=400)
        return self.inner.create_version(new)


def one_prompt(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "prompts").mkdir(parents=True)
    (root / "prompts/p.yaml").write_text("versions:\n  a: {template: A}\n  b: {template: B}\n"
                                         "labels: {production: a, staging: b}\n")
    return root


def test_a_create_whose_look_up_fails_after_an_ambiguous_failure_is_reported_as_may_have_been_applied(tmp_path):
    registry = LocalProvider(tmp_path / "r.db")
    root = one_prompt(tmp_path)
    with pytest.raises(ApplyFailed) as info:
        apply_plan(plan_for(root, registry), Unlucky(registry, ["landed"], read_fails=1))
    failed = info.value
    assert failed.cause.ambiguous
    assert failed.done == []
    assert failed.maybe == ["p: create version a"]
    assert failed.not_done == ["p: create version b", "p: move label production to a", "p: move label staging to b"]
    apply_plan(plan_for(root, registry), registry)  # the next apply finds it by digest
    assert count_versions(registry) == 2


def test_every_failure_after_an_ambiguous_attempt_of_a_create_counts_as_may_have_been_applied(tmp_path):
    registry = LocalProvider(tmp_path / "r.db")
    root = one_prompt(tmp_path)
    with pytest.raises(ApplyFailed) as info:
        apply_plan(plan_for(root, registry), Unlucky(registry, ["lost", "refused"]))
    assert info.value.cause.ambiguous and "an earlier attempt to create the version of 'p' may have taken effect" \
        in str(info.value)
    assert info.value.maybe == ["p: create version a"] and info.value.cause.status == 400


def test_an_ambiguous_create_is_looked_up_then_retried_up_to_the_budget(tmp_path):
    registry = LocalProvider(tmp_path / "r.db")
    root = one_prompt(tmp_path)
    platform = Unlucky(registry, ["lost", "lost", "lost", "lost", "landed"])
    apply_plan(plan_for(root, registry), platform)  # the fifth attempt landed: found, not sent a sixth time
    assert platform.attempts == 6 and count_versions(registry) == 2  # 5 for a, 1 for b
    registry2 = LocalProvider(tmp_path / "r2.db")
    with pytest.raises(ApplyFailed) as info:
        apply_plan(plan_for(root, registry2), Unlucky(registry2, ["lost"] * 5))
    assert info.value.maybe == ["p: create version a"] and count_versions(registry2) == 0


def test_an_apply_planned_before_another_one_landed_creates_nothing_twice(examples, tmp_path):
    registry = LocalProvider(tmp_path / "r.db")
    first, second = plan_for(examples, registry), plan_for(examples, registry)
    apply_plan(first, registry)
    apply_plan(second, registry)  # each prompt is read again right before its creates
    assert count_versions(registry) == 11
    assert not plan_for(examples, registry).has_changes


def test_a_create_that_timed_out_while_the_server_still_made_it_is_not_made_twice(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("LF_PUBLIC", "pk-lf-apply")
    monkeypatch.setenv("LF_SECRET", "sk-lf-apply")
    emu = LangfuseEmulator("pk-lf-apply", "sk-lf-apply", plan="none")
    with emu.serve() as server:
        root = init_repo(tmp_path / "repo")
        write(root, "promptops.yaml", "targets:\n  lf:\n    provider: langfuse\n    base_url: %s\n    timeout: 0.3\n"
              '    credentials: {public_key: "${LF_PUBLIC}", secret_key: "${LF_SECRET}"}\n' % server.url)
        write(root, "prompts/p.yaml", "versions:\n  a: {template: A}\nlabels: {production: a}\n")
        commit(root, "Add p")
        # handled after the client gave up, and after its retry (sent within 0.3 + 0.5 s of backoff)
        emu.faults.delay(1.2, 1, match=r"^POST /api/public/v2/prompts$")
        landed = time.monotonic() + 1.5  # by then the held create has been handled
        first = cli("-C", root, "apply", "-t", "lf", "--auto-approve", "--no-color")
        assert first.code == 1, first.out + first.err
        assert "p: create version a" in first.err.split("May have been applied:")[1]  # not sent again, not "not applied"
        time.sleep(max(0.0, landed - time.monotonic()))
        assert cli("-C", root, "apply", "-t", "lf", "--auto-approve").code == 0
        assert [row["prompt"] for row in emu.versions("p")] == ["A"], first.err


# --------------------------------------------------------------------------- Ctrl-C


def ctrl_c() -> None:
    """Ctrl-C as the terminal sends it: SIGINT to the main thread, which is running apply_plan."""
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


def when(event: threading.Event, then) -> None:
    """``then()`` on a thread once ``event`` is set."""
    threading.Thread(target=lambda: event.wait(10) and then(), daemon=True).start()


class Stalling:
    """The real LocalProvider behind a platform whose calls can be held: the create of version
    ``hold`` stays on the wire until ``release`` is set, and, with ``waits``, the first create
    fails ambiguously and then waits to be sent again until ``interrupt()`` ends the wait (as
    HttpClient's waits do). ``entered`` is set when a held call or a wait has begun."""

    def __init__(self, inner: LocalProvider, *, hold: str | None = None, waits: bool = False, interruptible: bool = True):
        self.inner, self.hold, self.waits = inner, hold, waits
        self.kind, self.capabilities = inner.kind, inner.capabilities
        self.entered, self.release, self.woken = threading.Event(), threading.Event(), threading.Event()
        self.in_flight = 0
        if not interruptible:
            self.interrupt = None  # a provider without waits of its own (the local registry)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def interrupt(self) -> int:
        self.woken.set()
        return self.in_flight

    def create_version(self, new):
        if new.provenance["version"] == self.hold:
            self.in_flight += 1
            self.entered.set()
            self.release.wait(10)
            self.in_flight -= 1
        elif self.waits:
            self.waits = False
            raise ProviderError("target 'x': create failed with 503 (the request may have taken effect)",
                                ambiguous=True, status=503)
        return self.inner.create_version(new)

    def retry_create(self, attempt, error) -> bool:
        self.entered.set()
        if self.woken.wait(10):
            raise Interrupted("target 'x': sending it again; stopped waiting: interrupted")
        return True


def interrupted_run(plan, provider, **options) -> tuple[ApplyFailed, list[str], float]:
    """apply_plan's ApplyFailed, its progress lines and the seconds it took."""
    lines: list[str] = []
    start = time.monotonic()
    with pytest.raises(ApplyFailed) as info:
        apply_plan(plan, provider, progress=lines.append, **options)
    return info.value, lines, time.monotonic() - start


def test_ctrl_c_while_a_create_waits_to_be_sent_again_after_an_ambiguous_attempt_keeps_it_may_have_been_applied(
        tmp_path):
    registry = LocalProvider(tmp_path / "r.db")
    platform = Stalling(registry, waits=True)
    when(platform.entered, ctrl_c)
    failed, lines, seconds = interrupted_run(plan_for(one_prompt(tmp_path), registry), platform)
    assert seconds < 5  # the wait was for 10 s
    assert failed.interrupted and isinstance(failed.cause, KeyboardInterrupt)
    assert lines == ["Interrupt received: finishing 0 calls in flight, starting no new ones",
                     "p: create version a: failed"]
    assert failed.done == []
    assert failed.maybe == ["p: create version a"]  # its first attempt may have landed
    assert failed.not_done == ["p: create version b", "p: move label production to a", "p: move label staging to b"]
    assert count_versions(registry) == 0


def test_ctrl_c_lets_the_call_in_flight_finish_and_starts_no_new_one(tmp_path):
    root = tmp_path / "project"
    for name in ("x", "y", "z"):
        (root / "prompts").mkdir(parents=True, exist_ok=True)
        (root / f"prompts/{name}.yaml").write_text(f"template: {name.upper()}\nlabels: [production]\n")
    registry = LocalProvider(tmp_path / "r.db")
    # no interrupt(): the calls in flight are the calls under way
    platform = Stalling(registry, hold="default", interruptible=False)
    when(platform.entered, ctrl_c)
    said = threading.Event()
    when(said, platform.release.set)
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if line.startswith("Interrupt received"):
            said.set()

    with pytest.raises(ApplyFailed) as info:
        apply_plan(plan_for(root, registry), platform, progress=progress)
    failed = info.value
    assert lines == ["Interrupt received: finishing 1 call in flight, starting no new ones",
                     "x: create version default: done [v1]"]
    assert failed.done == ["x: create version default"] and failed.maybe == []
    assert failed.not_done == ["x: move label production to default", "y: create version default",
                               "y: move label production to default", "z: create version default",
                               "z: move label production to default"]
    assert {name: len(p.versions) for name, p in registry.read().prompts.items()} == {"x": 1}


def test_a_second_ctrl_c_stops_waiting_and_lists_the_call_in_flight_as_may_have_been_applied(tmp_path):
    registry = LocalProvider(tmp_path / "r.db")
    platform = Stalling(registry, hold="a")
    when(platform.entered, ctrl_c)
    said = threading.Event()
    when(said, ctrl_c)
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if line.startswith("Interrupt received:"):
            said.set()

    start = time.monotonic()
    with pytest.raises(ApplyFailed) as info:
        apply_plan(plan_for(one_prompt(tmp_path), registry), platform, progress=progress)
    assert time.monotonic() - start < 5  # the call in flight is held for 10 s
    failed = info.value
    assert lines == ["Interrupt received: finishing 1 call in flight, starting no new ones",
                     "Interrupt received again: not waiting for 1 call in flight (may have been applied)"]
    assert failed.interrupted and failed.done == []
    assert failed.maybe == ["p: create version a"]
    assert failed.not_done == ["p: create version b", "p: move label production to a", "p: move label staging to b"]
    platform.release.set()  # the call it gave up on lands after all: "not applied" would have been wrong
    deadline = time.monotonic() + 5
    while not count_versions(registry) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert count_versions(registry) == 1
    assert len(lines) == 2  # an abandoned run prints nothing more
