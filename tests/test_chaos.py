"""A seeded chaos test of apply under faults, through the real CLI, on every remote provider
(Langfuse, PromptLab, PromptLayer, PromptRails: their emulators served as real HTTP servers on
127.0.0.1, set up as tests/test_contract.py sets them up).

Each scenario is drawn from ``random.Random`` with a seed fixed in this file: a small project (2-4
prompts, 1-3 versions each, ``production`` and, where the platform has many labels, ``staging``),
an edit after the first apply (a reworded version, a new version a label moves to, a label moved
between versions, a new prompt), the target's concurrency (1, 2 or 4) and a ``timeout:`` of
``TIMEOUT`` seconds, and a random sequence of 1-3 faults, each aimed at a request class (creates
of versions and prompts, label moves and every other write, reads) after letting the first 0-2
requests of that class pass (``Faults.pass_next``), for 1-5 requests in a row: a 5xx before the
request is handled (``Retry-After: 0``), a reset before it, an answer lost after it was handled, a
delay past the client timeout, a 429 with ``Retry-After`` 0 or 1, a garbled 2xx answer. The faults
are injected into either the first apply or the apply of the edit (``promptops apply
--auto-approve``); for that apply, every scenario asserts:

* the exit code is 0 or 1, and no output holds a traceback or "internal error";
* the report matches what the server holds, exactly: on exit 0 ("Apply complete!") every action
  of the plan is on the server; on exit 1 the lists "Applied before the stop", "May have been
  applied" and "Not applied" (or an error before any action: all not applied) name each action of
  the plan once; an applied create's template is stored, a not-applied one's is not; an applied
  label move has the label on the version with its template, a not-applied one has not; a
  may-have-been-applied action may be either;
* with the faults cleared, at most two applies bring ``plan --detailed-exitcode`` to 0, the
  server then holds exactly what the files say, and no prompt has two versions of one template;
* no 8-character piece of any credential (the API keys, Langfuse's keys and Basic token) appears
  in any stdout, stderr or file the CLI wrote (the saved plan among them).


The other apply of the scenario runs without faults and must succeed. Requests still held by a
delay fault are waited for before the server is read, so a late write is seen. With concurrency
above 1 the order in which prompts meet the faults may vary between runs of one seed; the
scenario's description (printed on failure) names everything that was drawn.

Widen it locally: ``PROMPTOPS_CHAOS_SEED=N`` draws other scenarios, ``PROMPTOPS_CHAOS_SCENARIOS=N``
runs N per provider (default ``SCENARIOS``), e.g.
``PROMPTOPS_CHAOS_SEED=7 PROMPTOPS_CHAOS_SCENARIOS=50 python -m pytest -q tests/test_chaos.py``.
"""
from __future__ import annotations

import base64
import copy
import json
import os
import random
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from conftest import Result, commit, git, write
from test_contract import CONFIGS, CREATE_ROUTE, SECRETS, Platform, platform, report  # noqa: F401 - a fixture

SEED = int(os.environ.get("PROMPTOPS_CHAOS_SEED") or 20261202)
SCENARIOS = int(os.environ.get("PROMPTOPS_CHAOS_SCENARIOS") or 8)
KINDS = ("langfuse", "promptlab", "promptlayer", "promptrails")
TIMEOUT = 1.0  # the target's `timeout:` (seconds); a delay fault holds a request longer than this
DELAY = TIMEOUT + 0.3
CALM_TIMEOUT = 30.0  # the target's `timeout:` for the applies without faults
MAX_ACTIONS = 10  # a failed apply lists 10 actions of each kind in full: every plan stays within it
FRAGMENT = 8  # no piece of a credential this long may appear anywhere

# --------------------------------------------------------------------------- scenarios


@dataclass
class Prompt:
    """One prompt file: local version name -> template, label -> local version name."""

    versions: dict[str, str]
    labels: dict[str, str]


Project = dict[str, Prompt]  # prompt name -> its file


@dataclass
class Fault:
    """One injected fault: ``what`` (see FAULTS), aimed at requests of class ``at`` (CLASSES)
    after ``skip`` of them passed, for ``n`` requests."""

    what: str
    at: str
    n: int
    skip: int
    option: Any = None  # the status of a 5xx, the Retry-After of a 429, "malformed" or "truncated"

    def __str__(self) -> str:
        option = "" if self.option is None else f"({self.option})"
        return f"{self.n}x {self.what}{option} on {self.at}" + (f" after {self.skip}" if self.skip else "")


# what each fault does, and how many requests in a row it may hit (a 429 of 1 s and a delay cost
# test time: at most two of those)
FAULTS: dict[str, tuple[int, ...]] = {"5xx": (1, 1, 2, 5), "reset": (1, 1, 2), "lost answer": (1, 1, 2, 5),
                                      "timeout": (1, 1, 2), "429": (1, 1, 2), "garbled 2xx": (1, 1, 2)}
CLASSES = ("creates", "label moves", "reads")
# the creation of a prompt, where it is a request of its own (a create, as a version's is)
PROMPT_ROUTE = {"promptlab": r"^POST /v1/prompts$", "promptrails": r"^POST /api/v1/prompts$"}


@dataclass
class Scenario:
    """What one scenario drew (printed when it fails)."""

    seed: str
    first: Project
    edited: Project
    faulted: str  # "first" or "edit": the apply the faults are injected into
    faults: list[Fault]
    concurrency: int
    edits: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        def files(project: Project) -> str:
            return "; ".join(f"{name} {p.versions} {p.labels}" for name, p in project.items())

        return (f"scenario {self.seed}: faults in the {self.faulted} apply: {', '.join(map(str, self.faults))}; "
                f"concurrency {self.concurrency}\n  first: {files(self.first)}\n  edits: {', '.join(self.edits)}\n"
                f"  edited: {files(self.edited)}")


def actions_of(before: Project, after: Project) -> int:
    """How many actions the plan from ``before`` (as applied) to ``after`` has at most."""
    count = 0
    for name, prompt in after.items():
        old = before.get(name, Prompt({}, {}))
        stored = set(old.versions.values())
        count += sum(1 for t in prompt.versions.values() if t not in stored)
        count += sum(1 for label, v in prompt.labels.items()
                     if old.labels.get(label) is None or old.versions[old.labels[label]] != prompt.versions[v])
    return count


def draw(kind: str, index: int) -> Scenario:
    """Scenario ``index`` of ``kind``, from the seed ``SEED:kind:index`` (a string seed is hashed
    the same way on every run and platform)."""
    seed = f"{SEED}:{kind}:{index}"
    rng = random.Random(seed)
    many = kind in ("langfuse", "promptlayer")
    labels = ("production", "staging") if many else ("production",)
    serial = iter(range(1, 1000))

    def template(name: str) -> str:
        return f"{name.split('/')[-1]} {next(serial)}: hello {{{{name}}}}, {rng.choice(WORDS)} {rng.choice(WORDS)}"

    def new_prompt(name: str) -> Prompt:
        versions = {v: template(name) for v in "abc"[:rng.randint(1, 3)]}
        chosen = {"production": rng.choice(list(versions))}
        if many and rng.random() < 0.6:
            chosen["staging"] = rng.choice(list(versions))
        return Prompt(versions, chosen)

    while True:
        first = {f"chaos/p{i}": new_prompt(f"chaos/p{i}") for i in range(1, rng.randint(2, 4) + 1)}
        if actions_of({}, first) <= MAX_ACTIONS:
            break
    while True:
        edited, edits = copy.deepcopy(first), []
        for _ in range(rng.randint(1, 2)):
            kind_of_edit = rng.choice(("reword", "add", "move", "new prompt"))
            name = rng.choice(sorted(edited))
            prompt = edited[name]
            if kind_of_edit == "reword":
                version = rng.choice(sorted(prompt.versions))
                prompt.versions[version] = template(name)
                edits.append(f"reword {name} {version}")
            elif kind_of_edit == "add" and len(prompt.versions) < 4:
                version = "abcd"[len(prompt.versions)]
                prompt.versions[version] = template(name)
                if rng.random() < 0.7:
                    label = rng.choice(labels)
                    prompt.labels[label] = version
                    edits.append(f"add {name} {version}, {label} on it")
                else:
                    edits.append(f"add {name} {version}")
            elif kind_of_edit == "move" and len(prompt.versions) > 1:
                label = rng.choice(labels)
                choices = sorted(v for v in prompt.versions if v != prompt.labels.get(label))
                prompt.labels[label] = rng.choice(choices)
                edits.append(f"move {name} {label} to {prompt.labels[label]}")
            elif kind_of_edit == "new prompt" and len(edited) < 5:
                name = f"chaos/p{len(edited) + 1}"
                edited[name] = new_prompt(name)
                edits.append(f"new prompt {name}")
        if edits and 0 < actions_of(first, edited) <= MAX_ACTIONS:
            break
    faults = []
    for _ in range(rng.randint(1, 3)):
        what = rng.choice(sorted(FAULTS))
        at = rng.choice(CLASSES)
        option = {"5xx": lambda: rng.choice((500, 502, 503)), "429": lambda: rng.choice((0, 1)),
                  "garbled 2xx": lambda: rng.choice(("malformed", "truncated"))}.get(what, lambda: None)()
        faults.append(Fault(what, at, rng.choice(FAULTS[what]), rng.choice((0, 0, 1, 2)), option))
    return Scenario(seed, first, edited, rng.choice(("first", "edit")), faults, rng.choice((1, 2, 4)), edits)


WORDS = ("short", "polite", "formal", "warm", "brief", "clear", "kind", "exact")


def route(kind: str, at: str) -> str:
    """The fault match (a regex on "METHOD path") for requests of class ``at`` on ``kind``."""
    create = f"(?:{CREATE_ROUTE[kind]})" + (f"|(?:{PROMPT_ROUTE[kind]})" if kind in PROMPT_ROUTE else "")
    if at == "creates":
        return create
    if at == "label moves":  # every other write: label PATCHes, release labels, deployments, promotions
        return f"(?!{create})^(?:POST|PATCH|PUT|DELETE) "
    return "^GET "


def inject(emu: Any, kind: str, fault: Fault) -> None:
    match = route(kind, fault.at)
    faults = emu.faults
    if fault.skip:
        faults.pass_next(fault.skip, match=match)
    if fault.what == "5xx":
        faults.fail_next(fault.n, fault.option, headers={"Retry-After": "0"}, match=match)
    elif fault.what == "reset":
        faults.drop_next(fault.n, match=match)
    elif fault.what == "lost answer":
        faults.drop_next(fault.n, after=True, match=match)
    elif fault.what == "timeout":
        faults.delay(DELAY, fault.n, match=match)
    elif fault.what == "429" and fault.option == 0:  # the emulators' own 429s ask for at least 1 s
        faults.fail_next(fault.n, 429, headers={"Retry-After": "0"}, match=match)
    elif fault.what == "429":
        faults.rate_limit(fault.n, retry_after=1, match=match)
    else:
        faults.garble_next(fault.n, malformed=fault.option == "malformed", match=match)


# --------------------------------------------------------------------------- the project and the server


def prompt_file(p: Platform, prompt: Prompt) -> str:
    text = ("type: text\n" + (f"template_format: {p.fmt}\n" if p.fmt != "mustache" else "")
            + "variables:\n  name: {type: string}\nversions:\n")
    for version, template in prompt.versions.items():
        text += f"  {version}:\n    template: {json.dumps(template)}\n"
    return text + "labels: {%s}\n" % ", ".join(f"{label}: {v}" for label, v in sorted(prompt.labels.items()))


def write_project(p: Platform, project: Project, message: str) -> None:
    for name, prompt in project.items():
        write(p.root, f"prompts/{name}.yaml", prompt_file(p, prompt))
    commit(p.root, message)


def served(p: Platform, name: str) -> dict[str, str]:
    """label -> the template of the version it is on, read past the provider (PromptLab's current
    deployment and PromptRails' current version read as ``production``)."""
    ids = p.labels(name)
    if not ids:
        return {}
    if p.kind == "promptrails":
        return {"production": p.emu.current(name)["user_prompt"]}
    templates = p.templates(name)  # version numbers 1..N (PromptLab: v1..vN), oldest first
    return {label: templates[int(rid.lstrip("v")) - 1] for label, rid in ids.items()}


def assert_no_duplicates(p: Platform, names: list[str], scenario: Scenario) -> None:
    """No prompt has two versions of one template (nor, on PromptRails, two prompts one name)."""
    found = []
    if p.kind == "promptrails":
        names_ = p.emu.names()
        found += [f"{n}: {names_.count(n)} prompts of this name" for n in sorted(set(names_)) if names_.count(n) > 1]
    if not found:  # templates() reads one prompt of a name
        for name in names:
            templates = p.templates(name)
            if len(templates) != len(set(templates)):
                found.append(f"{name}: duplicate versions {templates}")
    assert not found, f"{found}\n{scenario}"


def assert_holds(p: Platform, project: Project, scenario: Scenario) -> None:
    """The server holds exactly what the files say: every version, each once, the labels on them."""
    assert_no_duplicates(p, list(project), scenario)
    for name, prompt in project.items():
        assert set(prompt.versions.values()) <= set(p.templates(name)), f"{name}\n{scenario}"
        want = {label: prompt.versions[v] for label, v in prompt.labels.items()}
        assert served(p, name) == want, f"{name}\n{scenario}"


class InFlight:
    """Counts the requests the emulator is handling, so the test reads the server only once a
    request held by a delay fault (which the client gave up on) has landed."""

    def __init__(self, emu: Any):
        self._count = 0
        self._cond = threading.Condition()
        handle = emu.handle

        def counted(request: Any) -> Any:
            with self._cond:
                self._count += 1
            try:
                return handle(request)
            finally:
                with self._cond:
                    self._count -= 1
                    self._cond.notify_all()

        emu.handle = counted

    def settle(self) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self._count == 0, timeout=30), "a request never finished"


def credential_pieces(p: Platform) -> set[str]:
    """Every ``FRAGMENT``-character piece of the platform's credentials (Langfuse's Basic token too)."""
    values = [os.environ[var] for var in SECRETS[p.kind]]
    if p.kind == "langfuse":
        values.append(base64.b64encode(f"{os.environ['LF_PUBLIC']}:{os.environ['LF_SECRET']}".encode()).decode())
    return {v[i:i + FRAGMENT] for v in values for i in range(len(v) - FRAGMENT + 1)}


# --------------------------------------------------------------------------- the check of a report


def check_report(p: Platform, r: Result, plan: list[dict], before: dict[str, list[str]], project: Project,
                 scenario: Scenario) -> None:
    """The faulted apply's exit code and report against what the server holds (module docstring)."""
    where = f"{scenario}\n--- stdout\n{r.out}\n--- stderr\n{r.err}"
    assert r.code in (0, 1), where
    # action line -> (prompt, the label it moves or None for a create, the template it is about)
    described: dict[str, tuple[str, str | None, str]] = {}
    for a in plan:
        name = a["prompt"]
        if a["kind"] == "create_version":
            described[f"{name}: create version {a['version']}"] = (name, None, project[name].versions[a["version"]])
        else:
            assert a["kind"] == "move_label", a
            described[f"{name}: move label {a['label']} to {a['to']['version']}"] = (
                name, a["label"], project[name].versions[a["to"]["version"]])

    def holds(line: str) -> bool:
        """Whether the server holds the action: the created template, the label on its version."""
        name, label, template = described[line]
        return template in p.templates(name) if label is None else served(p, name).get(label) == template

    if r.code == 0:
        assert "Apply complete!" in r.out, where
        lists = {"Applied before the stop": list(described)}
    else:
        assert "Apply complete!" not in r.out and "Error: " in r.err, where
        lists = report(r.err)
        if lists:
            nothing = not lists.get("Applied before the stop") and not lists.get("May have been applied")
            assert ("Nothing was applied." in r.err) == nothing, where
        else:  # it stopped before the first action (a read of the plan failed)
            lists = {"Not applied": list(described)}
    listed = [line for items in lists.values() for line in items]
    assert sorted(listed) == sorted(described), f"the report names each action of the plan once\n{where}"
    for line in lists.get("Applied before the stop", []):
        assert holds(line), f"reported applied, but the server does not hold it: {line}\n{where}"
    for line in lists.get("Not applied", []):
        assert not holds(line), f"reported not applied, but the server holds it: {line}\n{where}"
    for name, templates in before.items():  # nothing the server held before is lost
        assert p.templates(name)[:len(templates)] == templates, where


# --------------------------------------------------------------------------- the test


@pytest.mark.parametrize("platform, index", [(kind, i) for kind in KINDS for i in range(SCENARIOS)],
                         indirect=["platform"], ids=[f"{kind}-{i}" for kind in KINDS for i in range(SCENARIOS)])
def test_apply_under_random_faults_reports_exactly_what_landed_and_converges(cli, platform, index):
    p = platform
    scenario = draw(p.kind, index)
    inflight = InFlight(p.emu)
    results: list[Result] = []

    def run(*args: str) -> Result:
        r = cli("-C", p.root, *args)
        results.append(r)
        for text in (r.out, r.err):
            assert "Traceback" not in text and "internal error" not in text, f"{scenario}\n{r.out}\n{r.err}"
        return r

    def apply(timeout: float = CALM_TIMEOUT) -> Result:
        # only the faulted apply has the short timeout its delay faults outlast; the others must not
        # meet a timeout of their own on a loaded machine (a create that timed out is not sent again)
        write(p.root, "promptops.yaml", CONFIGS[p.kind] % {"url": p.url}
              + f"    timeout: {timeout}\n    concurrency: {scenario.concurrency}\n")
        git(p.root, "add", "-A")
        git(p.root, "commit", "-q", "--allow-empty", "-m", f"timeout {timeout}")
        return run("apply", "-t", p.target, "--auto-approve", "--no-color")

    for phase, project in (("first", scenario.first), ("edit", scenario.edited)):
        write_project(p, project, f"{phase} of {scenario.seed}")
        if phase != scenario.faulted:
            r = apply()
            assert r.code == 0, f"{scenario}\n{r.out}\n{r.err}"
            assert_holds(p, project, scenario)
            continue
        r = run("plan", "-t", p.target, "--json", "-o", str(p.root.parent / "chaos.plan"))
        assert r.code == 0, f"{scenario}\n{r.err}"
        plan = json.loads(r.out)["actions"]
        assert plan, scenario
        before = {name: p.templates(name) for name in project}
        for fault in scenario.faults:
            inject(p.emu, p.kind, fault)
        r = apply(TIMEOUT)
        inflight.settle()
        p.emu.faults.clear()
        assert_no_duplicates(p, list(project), scenario)
        check_report(p, r, plan, before, project, scenario)
        for _ in range(2):  # the faults gone, the next apply finishes (a second one at most)
            r = apply()
            assert r.code == 0, f"{scenario}\n{r.out}\n{r.err}"
            if run("plan", "-t", p.target, "--detailed-exitcode", "--no-color").code == 0:
                break
        else:
            pytest.fail(f"two applies after the faults did not converge\n{scenario}\n{results[-1].out}")
        assert_holds(p, project, scenario)

    pieces = credential_pieces(p)
    texts = [r.out + r.err for r in results]
    texts += [f.read_text(errors="replace") for f in p.root.parent.rglob("*")  # the project and the saved plan
              if f.is_file() and ".git" not in f.parts]
    for text in texts:
        found = sorted(piece for piece in pieces if piece in text)
        assert not found, f"a piece of a credential in the output: {found}\n{scenario}"

