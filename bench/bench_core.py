#!/usr/bin/env python3
"""Benchmark of the core paths on a synthetic project: validate, plan, apply.

    python bench/bench_core.py [--prompts N] [--repeat R] [--profile]

Generates N realistic prompt files (text and chat, mustache and jinja2, two versions each,
production/staging labels, a traffic split on some) in a temporary folder and times, in one run,
each operation R times (default 5) and reports the median (and min) as a markdown table:

  (a) validate all N files         load_project(root)
  (b) validate 1 file              load_project(root, only=[file])       (the pre-commit hook)
  (b') the same through the CLI    `python -m promptops -C root validate FILE` in a new process
  (c) first plan, empty registry   load_project + LocalProvider.read + build_plan
  (d) apply everything             apply_plan into a fresh LocalProvider registry per repetition
  (e) plan with no changes         (c) against the registry after apply; must have no actions

Ratios are against (a). Nothing here asserts on time; it is for reading, not for CI.
``--profile`` adds a cProfile of one (a) run (top functions by own time and by cumulative time).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

import promptops  # noqa: E402
from promptops.apply import apply_plan  # noqa: E402
from promptops.plan import build_plan  # noqa: E402
from promptops.prompts import load_project  # noqa: E402
from promptops.providers.local import LocalProvider  # noqa: E402

AREAS = ["support", "checkout", "search", "marketing", "onboarding", "triage", "billing", "legal",
         "content", "agents"]
TOPICS = ["refund requests", "shipping delays", "password resets", "invoice questions", "product search",
          "contract clauses", "onboarding emails", "bug reports", "feature requests", "account upgrades"]
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3.1-70b"]

CONFIG = """\
prompts: prompts
default_target: local
targets:
  local:
    provider: local
    path: .promptops/registry.db
"""


# ----------------------------------------------------------------------------------- generation

def _block(text: str, indent: int) -> str:
    pad = " " * indent
    return "|\n" + "".join(f"{pad}{line}\n" if line else "\n" for line in text.splitlines())


def _body(rng: random.Random, fmt: str, i: int, variant: int) -> str:
    """A multi-line template using the variables locale, product, ticket, history_items, tone."""
    topic = rng.choice(TOPICS)
    v = (lambda n: f"{{{{{n}}}}}") if fmt == "mustache" else (lambda n: f"{{{{ {n} }}}}")
    lines = [
        f"You are an assistant for {topic} (prompt {i}, revision {variant}).",
        f"Always answer in {v('locale')} and refer to the product as {v('product')}.",
        f"Tone: {v('tone')}. Keep the answer under {120 + 20 * variant} words.",
        "",
        "Rules:",
        "1. Acknowledge the request first.",
        "2. Give numbered steps when the user must do something.",
        "3. Never invent order numbers, prices or policies.",
    ]
    if variant == 2:
        lines.append("4. End with one question that moves the conversation forward.")
    lines.append("")
    if fmt == "mustache":
        lines += ["Earlier messages:", "{{#history_items}}", "- {{.}}", "{{/history_items}}"]
    else:
        lines += ["Earlier messages:", "{% for item in history_items %}", "- {{ item }}", "{% endfor %}"]
    lines += ["", f"Request: {v('ticket')}"]
    return "\n".join(lines) + "\n"


def prompt_file(rng: random.Random, i: int) -> str:
    kind = "chat" if i % 2 == 0 else "text"
    fmt = "jinja2" if i % 3 == 0 else "mustache"
    model = rng.choice(MODELS)
    out = [
        f"# Synthetic prompt {i}",
        f"type: {kind}",
        f"template_format: {fmt}",
        f"description: Handles {rng.choice(TOPICS)} for team {i % 17}",
        f"tags: [{AREAS[i % len(AREAS)]}, synthetic]",
        "variables:",
        "  locale: {type: string, example: en-US}",
        "  product: {type: string, example: Acme Router X2}",
        "  tone: {type: string, example: friendly}",
        "  ticket: {type: string, example: My router drops the connection every evening.}",
        "  history_items: {type: array, description: Earlier messages}",
        f"model: {{name: {model}, temperature: {rng.choice([0, 0.2, 0.3, 0.7])}, max_tokens: {rng.choice([300, 600, 1000])}}}",
        "versions:",
    ]
    for key, variant in (("stable", 1), ("candidate", 2)):
        out.append(f"  {key}:")
        body = _body(rng, fmt, i, variant)
        if kind == "text":
            out.append(f"    template: {_block(body, 6)}".rstrip("\n"))
        else:
            out += ["    messages:", "      - role: system", f"        content: {_block(body, 10)}".rstrip("\n"),
                    "      - role: user", "        content: " + ('"{{ticket}}"' if fmt == "mustache" else '"{{ ticket }}"')]
        if variant == 2:
            out.append("    model: {temperature: 0.1}")
    out += ["labels:", "  production: stable", "  staging: candidate"]
    if i % 5 == 0:
        weight = rng.choice([5, 10, 20, 50])
        out += ["traffic:", f"  production: {{stable: {100 - weight}, candidate: {weight}}}"]
    return "\n".join(out) + "\n"


def generate(root: Path, n: int, seed: int = 1) -> list[Path]:
    rng = random.Random(seed)
    (root / "promptops.yaml").write_text(CONFIG, encoding="utf-8")
    files = []
    for i in range(n):
        path = root / "prompts" / AREAS[i % len(AREAS)] / f"prompt-{i:05d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(prompt_file(rng, i), encoding="utf-8")
        files.append(path)
    return files


# -------------------------------------------------------------------------------------- timing

def timed(fn: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None) -> tuple[list[float], Any]:
    """Run ``fn`` ``repeat`` times (``setup`` untimed before each); the timings and the last result."""
    times, result = [], None
    for _ in range(repeat):
        arg = setup() if setup else None
        start = time.perf_counter()
        result = fn(arg) if setup else fn()
        times.append(time.perf_counter() - start)
    return times, result


def fmt_s(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=500, help="number of prompt files (default 500)")
    ap.add_argument("--repeat", type=int, default=5, help="timings per operation; the median is reported (default 5)")
    ap.add_argument("--profile", action="store_true", help="also cProfile one 'validate all' run")
    ap.add_argument("--keep", action="store_true", help="keep the generated project and print its path")
    args = ap.parse_args(argv)
    n, repeat = args.prompts, args.repeat

    work = Path(tempfile.mkdtemp(prefix="promptops-bench-"))
    try:
        root = work / "project"
        root.mkdir()
        files = generate(root, n)
        one = files[len(files) // 2]
        total_bytes = sum(f.stat().st_size for f in files)

        # a first call outside the timings: imports, schema compilation (cached per process)
        t0 = time.perf_counter()
        project = load_project(root)
        first_call = time.perf_counter() - t0
        if project.errors or len(project.specs) != n:
            for d in project.diagnostics[:20]:
                print(d.format(), file=sys.stderr)
            raise SystemExit(f"generated project is not valid ({len(project.errors)} errors)")
        target = project.config.target(None)
        names = [s.name for s in project.specs if s.managed_by(target.name)]

        rows: list[tuple[str, list[float], str]] = []

        t_all, _ = timed(lambda: load_project(root), repeat)
        rows.append(("(a) validate all files", t_all, f"{n} files"))

        t_one, p1 = timed(lambda: load_project(root, only=[one]), repeat)
        assert not p1.errors
        rows.append(("(b) validate 1 file (in-process)", t_one, "reads all files for unique names"))

        cli = [sys.executable, "-m", "promptops", "-C", str(root), "validate", str(one)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))

        def run_cli() -> None:
            proc = subprocess.run(cli, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                raise SystemExit(f"CLI validate failed:\n{proc.stdout}{proc.stderr}")
        t_cli, _ = timed(run_cli, repeat)
        rows.append(("(b') validate 1 file via CLI (new process)", t_cli, "what pre-commit runs"))

        counter = iter(range(10**6))

        def fresh_registry(_: Any = None) -> LocalProvider:
            return LocalProvider(work / f"reg-{next(counter)}" / "registry.db")

        def plan_with(provider: LocalProvider) -> Any:
            proj = load_project(root)
            remote = provider.read(names)
            return build_plan(proj.specs, remote, target)

        t_plan0, plan0 = timed(lambda prov: plan_with(prov), repeat, setup=fresh_registry)
        rows.append(("(c) plan, empty registry", t_plan0, f"{len(plan0.actions)} actions"))

        def apply_fresh(prov: LocalProvider) -> Any:
            try:
                return apply_plan(plan0, prov, concurrency=target.concurrency)
            finally:
                prov.close()
        t_apply, result = timed(apply_fresh, repeat, setup=fresh_registry)
        rows.append(("(d) apply everything (fresh registry)", t_apply,
                     f"{sum(result.counts.values())} calls, concurrency {target.concurrency}"))

        applied = fresh_registry()
        apply_plan(plan0, applied, concurrency=target.concurrency)
        t_plan1, plan1 = timed(lambda: plan_with(applied), repeat)
        if plan1.actions:
            raise SystemExit(f"plan after apply is not empty: {len(plan1.actions)} actions")
        rows.append(("(e) plan, no changes (after apply)", t_plan1, "0 actions"))

        # the parts of (e) besides validation, for reading the ratios
        t_read, remote = timed(lambda: applied.read(names), repeat)
        rows.append(("(e1) of which: registry read", t_read, f"{len(remote.prompts)} prompts"))
        t_diff, _ = timed(lambda: build_plan(project.specs, remote, target), repeat)
        rows.append(("(e2) of which: build_plan (diff)", t_diff, ""))
        applied.close()

        base = statistics.median(t_all)
        print(f"## promptops core benchmark: {n} prompt files ({total_bytes / 1024:.0f} KiB), "
              f"median of {repeat}\n")
        print(f"promptops {promptops.__version__}, Python {platform.python_version()} "
              f"({platform.python_implementation()}), {platform.system()} {platform.machine()}, "
              f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}\n")
        print("| operation | median | min | per file | vs (a) | note |")
        print("| --- | ---: | ---: | ---: | ---: | --- |")
        for label, ts, note in rows:
            med = statistics.median(ts)
            per_file = fmt_s(med / n) if not label.startswith("(b") else ""
            print(f"| {label} | {fmt_s(med)} | {fmt_s(min(ts))} | {per_file} | {med / base:.2f}x | {note} |")
        print(f"\nFirst load_project call in the process (imports and schema compilation included): "
              f"{fmt_s(first_call)}.")
        print(f"Validate cost per file: {fmt_s(base / n)}; 1-file validate is "
              f"{statistics.median(t_one) / base:.0%} of validate-all (every file is read for unique names); "
              f"plan with no changes is {statistics.median(t_plan1) / base:.2f}x validate-all.")

        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            load_project(root)
            prof.disable()
            for key in ("tottime", "cumulative"):
                buf = io.StringIO()
                pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(12)
                print(f"\n### cProfile of (a), by {key}\n```\n" + buf.getvalue().strip() + "\n```")
        if args.keep:
            print(f"\nproject kept in {root}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
