#!/usr/bin/env python3
"""Benchmark of the remote providers through the CLI, against their emulators over real HTTP.

Langfuse, PromptLab, PromptLayer and PromptRails, each against its emulator served over real HTTP
on 127.0.0.1, with a simulated network latency on every request:

    python bench/bench_providers.py [--prompts N] [--latency-ms L] [--repeat R] [--repeat-slow S]
                                    [--backlog B] [--provider NAME ...]

A synthetic project of N text prompts (two versions each, label ``production``; Langfuse and
PromptLayer also ``staging``; no model config, which PromptLab cannot store) is committed to a git
repository per provider. The files are mustache for Langfuse and PromptLab; PromptLayer refuses
mustache and PromptRails renders only Jinja2, so theirs are jinja2 (the same text, the mustache
section written as a ``{% for %}`` loop). The emulators (tests/emulators) run as threads of this
process (``emu.serve()``), wrapped so that every request first sleeps L ms (default 20) outside the
emulator's lock, as a network round trip would. Everything runs through the CLI in-process. Per provider, side by side
in one run:

  (a) apply to an empty emulator       the first apply (default concurrency), a fresh emulator per run
  (b) plan, no changes, concurrency 1  target ``concurrency: 1`` (median of S, default 3: the slow one)
  (c) plan, no changes, default        the provider's DEFAULT_CONCURRENCY (langfuse 8, the others 4)
  (d) plan, no changes, concurrency 16
  (e) validate                         the same files, no network: the floor of any plan

with the HTTP requests each made (counted in the emulator's request log, by route). Ratios are
against (b). Nothing asserts on time; it is for reading, not for CI. PromptLab runs without rate
limits (``plan=None``); Langfuse's only limited route (label PATCH) is not used by these runs;
PromptLayer and PromptRails have no rate limit unless one is configured (``rate_limit=None``).
``--provider`` (repeatable) restricts a run to some providers.

The emulator server listens with a backlog of 128 (tests/emulators/base.py); ``--backlog N`` sets
another after it starts. The stock one (``socketserver``'s 5) overflows when a client opens more
than about 6 connections at once, and each overflow stalls that plan by a 1 s TCP retransmit
(``--backlog 5`` shows it at concurrency 16: about a third of the plans take 1 s longer).
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "bench", REPO / "tests"):
    if str(path) not in sys.path:  # run from a checkout without installing; the emulators are test code
        sys.path.insert(0, str(path))

from bench_core import fmt_s, timed  # noqa: E402
from bench_git import git, run  # noqa: E402
from emulators.base import Emulator, Request, Response  # noqa: E402
from emulators.langfuse import LangfuseEmulator  # noqa: E402
from emulators.promptlab import PromptLabEmulator  # noqa: E402
from emulators.promptlayer import PromptLayerEmulator  # noqa: E402
from emulators.promptrails import PromptRailsEmulator  # noqa: E402
from promptops.config import DEFAULT_CONCURRENCY  # noqa: E402

AREAS = ["support", "checkout", "search", "marketing", "onboarding", "triage", "billing", "legal"]
ENV = {"BENCH_LF_PUBLIC": "pk-lf-bench", "BENCH_LF_SECRET": "sk-lf-bench-secret", "BENCH_PL_KEY": "pl-bench-key",
       "BENCH_PLAYER_KEY": "pl_bench_promptlayer_key", "BENCH_PRAILS_KEY": "pr_live_bench_key"}


class Delayed(Emulator):
    """Serves ``inner`` (swappable between runs, so the server and its port stay), sleeping
    ``latency`` seconds before each request, outside the emulator's lock: a network round trip."""

    name = "delayed"

    def __init__(self, inner: Emulator, latency: float):
        super().__init__()
        self.inner, self.latency = inner, latency

    def handle(self, request: Request) -> Response:
        time.sleep(self.latency)
        return self.inner.handle(request)


# ------------------------------------------------------------------------------------- providers

def langfuse_route(method: str, path: str) -> str:
    if re.fullmatch(r"/api/public/v2/prompts/?", path):
        return f"{method} list" if method == "GET" else f"{method} create"
    if re.search(r"/versions/\d+/?$", path):
        return f"{method} label"
    return f"{method} one version"


def promptlab_route(method: str, path: str) -> str:
    if path == "/v1/prompts":
        return f"{method} list" if method == "GET" else f"{method} create prompt"
    tail = re.sub(r"^/v1/prompts/[^/]+", "", path)
    return {"": f"{method} prompt", "/versions": f"{method} versions", "/deploy": f"{method} deploy"}.get(
        tail, f"{method} {tail}")


def promptlayer_route(method: str, path: str) -> str:
    if path in ("/prompt-templates", "/prompt-templates/"):
        return f"{method} list"
    if path == "/rest/prompt-templates":
        return f"{method} publish"
    if path.startswith("/prompt-templates/"):
        return f"{method} labels" if path.endswith("/labels") else f"{method} one version"
    if re.fullmatch(r"/prompts/[^/]+/label", path):
        return f"{method} create label"
    if path.startswith("/prompt-labels/"):
        return f"{method} label"  # PATCH moves it, DELETE removes it
    return f"{method} {path}"


def promptrails_route(method: str, path: str) -> str:
    if path == "/api/v1/prompts":
        return f"{method} list" if method == "GET" else f"{method} create prompt"
    tail = re.sub(r"^/api/v1/prompts/[^/]+", "", path)
    if re.fullmatch(r"/versions/[^/]+/promote", tail):
        return f"{method} promote"
    return {"": f"{method} prompt", "/versions": f"{method} versions"}.get(tail, f"{method} {tail}")


PROVIDERS: dict[str, dict[str, Any]] = {
    "langfuse": {
        "format": "mustache", "labels": ("production", "staging"), "route": langfuse_route,
        "new": lambda: LangfuseEmulator(ENV["BENCH_LF_PUBLIC"], ENV["BENCH_LF_SECRET"]),
        "target": 'provider: langfuse\n    base_url: {url}\n    credentials: {{public_key: "${{BENCH_LF_PUBLIC}}", '
                  'secret_key: "${{BENCH_LF_SECRET}}"}}',
    },
    "promptlab": {
        "format": "mustache", "labels": ("production",), "route": promptlab_route,
        "new": lambda: PromptLabEmulator(ENV["BENCH_PL_KEY"], plan=None),
        "target": 'provider: promptlab\n    base_url: {url}\n    credentials: {{api_key: "${{BENCH_PL_KEY}}"}}',
    },
    "promptlayer": {
        "format": "jinja2", "labels": ("production", "staging"), "route": promptlayer_route,
        "new": lambda: PromptLayerEmulator(api_key=ENV["BENCH_PLAYER_KEY"]),
        "target": 'provider: promptlayer\n    base_url: {url}\n    credentials: {{api_key: "${{BENCH_PLAYER_KEY}}"}}',
    },
    "promptrails": {
        "format": "jinja2", "labels": ("production",), "route": promptrails_route,
        "new": lambda: PromptRailsEmulator(api_key=ENV["BENCH_PRAILS_KEY"]),
        "target": 'provider: promptrails\n    base_url: {url}\n    credentials: {{api_key: "${{BENCH_PRAILS_KEY}}"}}',
    },
}


def config(kind: str, url: str) -> str:
    """Three targets on the same server: concurrency 1, the provider's default (unset), 16."""
    spec = PROVIDERS[kind]["target"].format(url=url)
    return (f"default_target: {kind}\ntargets:\n  {kind}-c1:\n    {spec}\n    concurrency: 1\n"
            f"  {kind}:\n    {spec}\n  {kind}-c16:\n    {spec}\n    concurrency: 16\n")


#: The history section in each format: a mustache section, or the same as a Jinja2 loop.
HISTORY = {"mustache": ["{{#history_items}}", "- {{.}}", "{{/history_items}}"],
           "jinja2": ["{% for item in history_items %}", "- {{ item }}", "{% endfor %}"]}


def prompt_file(i: int, labels: tuple[str, ...], fmt: str = "mustache") -> str:
    def body(variant: int) -> str:
        lines = [f"You answer questions about {AREAS[i % len(AREAS)]} (prompt {i}, revision {variant}).",
                 "Always answer in {{locale}} and call the product {{product}}.",
                 f"Keep the answer under {120 + 20 * variant} words.", "",
                 "Earlier messages:", *HISTORY[fmt], "",
                 "Request: {{ticket}}"]
        return "".join(f"      {line}\n" if line else "\n" for line in lines)

    out = (f"# Synthetic prompt {i}\ntype: text\ntemplate_format: {fmt}\n"
           f"description: Handles {AREAS[i % len(AREAS)]} requests\ntags: [{AREAS[i % len(AREAS)]}, synthetic]\n"
           "variables:\n  locale: {type: string}\n  product: {type: string}\n  ticket: {type: string}\n"
           "  history_items: {type: array}\nversions:\n"
           f"  stable:\n    template: |\n{body(1)}  candidate:\n    template: |\n{body(2)}labels:\n")
    keys = ("stable", "candidate")[:len(labels)]
    return out + "".join(f"  {label}: {key}\n" for label, key in zip(labels, keys, strict=True))


def project(work: Path, kind: str, url: str, n: int) -> Path:
    root = work / kind
    (root / "prompts").mkdir(parents=True)
    (root / "promptops.yaml").write_text(config(kind, url), encoding="utf-8")
    (root / ".gitignore").write_text(".promptops/\n")
    for i in range(n):
        path = root / "prompts" / AREAS[i % len(AREAS)] / f"prompt-{i:05d}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(prompt_file(i, PROVIDERS[kind]["labels"], PROVIDERS[kind]["format"]), encoding="utf-8")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "A: synthetic prompts")
    return root


# ---------------------------------------------------------------------------------------- timing

def requests(emu: Emulator, route: Callable[[str, str], str]) -> Counter:
    with emu.lock:
        return Counter(route(method, path) for method, path in emu.log)


def counted(emu_of: Callable[[], Emulator], route: Callable[[str, str], str], fn: Callable[[], None]
            ) -> Callable[[], None]:
    """``fn``, recording the emulator's requests by route for each run in ``counts``."""
    def wrapped() -> None:
        emu = emu_of()
        with emu.lock:
            emu.log.clear()
        fn()
        wrapped.counts.append(requests(emu, route))  # type: ignore[attr-defined]
    wrapped.counts = []  # type: ignore[attr-defined]
    return wrapped


def describe(counts: list[Counter]) -> tuple[str, str]:
    """(total, breakdown) of the last run; flagged when the runs did not all make the same requests."""
    last = counts[-1]
    total = str(sum(last.values())) + ("" if all(c == last for c in counts) else " (varies)")
    return total, ", ".join(f"{n} {route}" for route, n in sorted(last.items(), key=lambda kv: -kv[1]))


def bench_provider(kind: str, work: Path, n: int, latency: float, repeat: int, repeat_slow: int, backlog: int
                   ) -> list[tuple[str, list[float], str, str]]:
    spec = PROVIDERS[kind]
    route = spec["route"]
    delayed = Delayed(spec["new"](), latency)
    rows: list[tuple[str, list[float], str, str]] = []
    with delayed.serve() as server:
        server.httpd.socket.listen(backlog)  # listen() again on a listening socket sets its backlog
        root = str(project(work, kind, server.url, n))
        default = DEFAULT_CONCURRENCY[kind]

        def fresh() -> None:
            delayed.inner = spec["new"]()

        apply = counted(lambda: delayed.inner, route, lambda: run("-C", root, "apply", "--auto-approve"))
        t_apply, _ = timed(lambda _: apply(), repeat, setup=fresh)
        total, parts = describe(apply.counts)
        rows.append((f"(a) apply to an empty emulator (concurrency {default})", t_apply, total, parts))

        run("-C", root, "plan", "--detailed-exitcode")  # warm-up, and the applied state has no changes
        for label, target, times in (("(b) plan, no changes, concurrency 1", f"{kind}-c1", repeat_slow),
                                     (f"(c) plan, no changes, concurrency {default} (default)", kind, repeat),
                                     ("(d) plan, no changes, concurrency 16", f"{kind}-c16", repeat)):
            plan = counted(lambda: delayed.inner, route,
                           lambda t=target: run("-C", root, "plan", "-t", t, "--detailed-exitcode"))
            t_plan, _ = timed(plan, times)
            total, parts = describe(plan.counts)
            rows.append((label, t_plan, total, parts))

        t_validate, _ = timed(lambda: run("-C", root, "validate"), repeat)
        rows.append(("(e) validate (no network)", t_validate, "0", ""))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=200, help="number of prompt files (default 200)")
    ap.add_argument("--latency-ms", type=float, default=20.0, help="simulated latency per request (default 20)")
    ap.add_argument("--repeat", type=int, default=5, help="timings per operation (default 5)")
    ap.add_argument("--repeat-slow", type=int, default=3, help="timings of the concurrency-1 plans (default 3)")
    ap.add_argument("--backlog", type=int, default=128, help="the emulator server's listen backlog (default 128)")
    ap.add_argument("--provider", choices=sorted(PROVIDERS), action="append", metavar="NAME",
                    help=f"only this provider, one of {', '.join(sorted(PROVIDERS))} (repeatable; default all)")
    args = ap.parse_args(argv)
    os.environ.update(ENV)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="promptops-bench-providers-"))
    try:
        results = {kind: bench_provider(kind, work, args.prompts, args.latency_ms / 1000, args.repeat,
                                        args.repeat_slow, args.backlog)
                   for kind in (args.provider or sorted(PROVIDERS))}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, CPython {platform.python_version()}, "
          f"N = {args.prompts} prompts x 2 versions, {args.latency_ms:g} ms simulated latency per request, "
          f"median of {args.repeat} ({args.repeat_slow} for concurrency 1)\n")
    print("| provider | operation | median | min | vs (b) | HTTP requests | of which |\n"
          "| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for kind, rows in results.items():
        base = statistics.median(rows[1][1])
        for name, times, total, parts in rows:
            median = statistics.median(times)
            print(f"| {kind} | {name} | {fmt_s(median)} | {fmt_s(min(times))} | {median / base:.2f}x | {total} | "
                  f"{parts} |")
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
