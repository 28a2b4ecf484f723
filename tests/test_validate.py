"""`promptops validate`: every broken file gets located diagnostics, all in one run, exit 1.

Each case is a small project written into tmp_path and run through the real CLI entry point
(``main(["-C", dir, "validate"])``). A case lists every diagnostic it expects as the exact
``file:line:column`` plus a distinctive fragment of the message or hint; the number of error
lines must match too, so a spurious extra diagnostic fails the case.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from promptops.cli import main
from promptops.yamlload import MAX_BYTES


def y(*lines: str) -> str:
    """A file from its lines: line N of the file is argument N, which keeps positions readable."""
    return "\n".join(lines) + "\n"


@dataclass
class Case:
    id: str
    files: dict[str, str | bytes]
    # (exact "file:line:col", fragment of that diagnostic, or several fragments it must all hold)
    expected: list[tuple[str, str | tuple[str, ...]]]
    config: str | None = None
    setup: Callable[[Path], None] | None = None
    absent: list[str] = field(default_factory=list)  # text that must not appear anywhere


def run_validate(root: Path, capsys: pytest.CaptureFixture[str], *files: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["-C", str(root), "validate", *files])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_project(root: Path, files: dict[str, str | bytes], config: str | None = None) -> None:
    (root / "prompts").mkdir(exist_ok=True)
    if config is not None:
        (root / "promptops.yaml").write_text(config, encoding="utf-8")
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if ": error: " in line]


def assert_diagnostics(err: str, expected: list[tuple[str, str | tuple[str, ...]]]) -> None:
    """Every expected (location, fragments) matches its own error line, and there are no others."""
    lines = error_lines(err)
    assert len(lines) == len(expected), f"expected {len(expected)} error lines, got:\n{err}"
    remaining = list(lines)
    for where, fragments in expected:
        wanted = (fragments,) if isinstance(fragments, str) else fragments
        match = next((line for line in remaining
                      if line.startswith(f"{where}: error: ") and all(f in line for f in wanted)), None)
        assert match is not None, f"no error at {where} containing {wanted!r} in:\n{err}"
        remaining.remove(match)


def assert_no_crash(out: str, err: str) -> None:
    assert "Traceback" not in out + err
    assert "internal error" not in out + err


# --------------------------------------------------------------------------- fixtures for cases

LANGFUSE = y(
    "targets:",
    "  lf:",
    "    provider: langfuse",
    "    credentials:",
    "      public_key: ${LANGFUSE_PUBLIC_KEY}",
    "      secret_key: ${LANGFUSE_SECRET_KEY}",
)
LOCAL_AND_LANGFUSE = y(
    "default_target: local",
    "targets:",
    "  local:",
    "    provider: local",
    "  lf:",
    "    provider: langfuse",
    "    credentials:",
    "      public_key: ${LANGFUSE_PUBLIC_KEY}",
    "      secret_key: ${LANGFUSE_SECRET_KEY}",
)
PROMPTLAYER = y(
    "targets:",
    "  pl:",
    "    provider: promptlayer",
    "    credentials:",
    "      api_key: ${PROMPTLAYER_API_KEY}",
)
PROMPTLAB = y(
    "targets:",
    "  lab:",
    "    provider: promptlab",
    "    credentials:",
    "      api_key: ${PROMPTLAB_API_KEY}",
)
OK_PROMPT = y("template: Summarize {{article}}", "labels: [production]")
TWO_VERSIONS = ("versions:", "  stable: {template: Hi}", "  concise: {template: Hey}",
                "labels:", "  production: stable")
TRAFFIC_OK = y(*TWO_VERSIONS, "traffic:", "  production: {stable: 90, concise: 10}")


def billion_laughs() -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    return y(*lines)


def symlink_outside(root: Path) -> None:
    outside = root / "elsewhere.yaml"
    outside.write_text(OK_PROMPT, encoding="utf-8")
    os.symlink(outside, root / "prompts" / "link.yaml")


BIG = "template: " + "x" * MAX_BYTES + "\n"
BIG_SIZE = f"{len(BIG):,}"

CASES: list[Case] = [
    # ------------------------------------------------------------------ reading and YAML syntax
    Case("unclosed-flow-sequence", {"prompts/a.yaml": y("template: Hi", "labels: [production, staging")},
         [("prompts/a.yaml:2:9", "'[' is never closed")]),
    Case("unclosed-flow-sequence-before-next-key",
         {"prompts/a.yaml": y("labels: [production, staging", "template: Hi")},
         [("prompts/a.yaml:2:9", "is the bracket opened at line 1, column 9 closed?")]),
    Case("unclosed-quote", {"prompts/a.yaml": y("labels: [production]", 'template: "Hi there')},
         [("prompts/a.yaml:2:11", "quoted string is never closed")]),
    Case("bad-indentation-nested-key", {"prompts/a.yaml": y("template: Hi", "  labels: [production]")},
         [("prompts/a.yaml:2:9", "fix the indentation of this key")]),
    Case("bad-indentation-dedent", {"prompts/a.yaml": y("versions:", "  v1:", "    template: Hi", "   model: {}")},
         [("prompts/a.yaml:4:4", "does not fit the indentation of the block above it")]),
    Case("tab-indentation", {"prompts/a.yaml": y("versions:", "\tv1:", "    template: Hi")},
         [("prompts/a.yaml:2:1", "replace the tab with spaces")]),
    Case("mustache-value-not-quoted", {"prompts/a.yaml": y("labels: [production]", "template: {{name}} says hi")},
         [("prompts/a.yaml:2:11", "quote the template")]),
    Case("env-reference-in-flow-mapping-not-quoted", {"prompts/a.yaml": OK_PROMPT},
         [("promptops.yaml:5:28", 'quote ${VAR} references')],
         config=y("targets:", "  pl:", "    provider: promptlayer", "    base_url: https://pl.example.com",
                  "    credentials: {api_key: ${PL_KEY}}")),
    Case("non-utf8-byte", {"prompts/a.yaml": b"template: Hi\ndescription: caf\xe9 menu\n"},
         [("prompts/a.yaml:2:17", "not valid UTF-8 (byte 0xe9)")]),
    Case("utf16-file", {"prompts/a.yaml": OK_PROMPT.encode("utf-16")},
         [("prompts/a.yaml:1:1", "looks like UTF-16")]),
    Case("duplicate-key", {"prompts/a.yaml": y("template: Hi", "labels: [production]", "template: Hello")},
         [("prompts/a.yaml:3:1", "duplicate key 'template' (first defined on line 1)")]),
    Case("duplicate-nested-key",
         {"prompts/a.yaml": y("versions:", "  v1: {template: Hi}", "  v1: {template: Hey}")},
         [("prompts/a.yaml:3:3", "duplicate key 'v1'")]),
    Case("alias-bomb", {"prompts/a.yaml": billion_laughs()},
         [("prompts/a.yaml:5:36", "anchors and aliases expand to more than 100,000 values")]),
    Case("alias-recursive", {"prompts/a.yaml": y("template: Hi", "tags: &t [a, *t]")},
         [("prompts/a.yaml:2:14", "alias *t refers to a node that contains it")]),
    Case("alias-undefined", {"prompts/a.yaml": y("template: *greeting")},
         [("prompts/a.yaml:1:11", "alias *greeting has no anchor")]),
    Case("anchor-defined-twice", {"prompts/a.yaml": y("template: &t Hi", "description: &t Hey")},
         [("prompts/a.yaml:2:14", "anchor &t is defined twice (first on line 1)")]),
    Case("deep-nesting", {"prompts/a.yaml": "template: " + "[" * 1000 + "]" * 1000 + "\n"},
         [("prompts/a.yaml:1:74", "nesting is deeper than 64 levels")]),
    Case("file-over-1-mib", {"prompts/a.yaml": BIG},
         [("prompts/a.yaml:1:1", f"file is {BIG_SIZE} bytes; the limit is 1,048,576")]),
    Case("multiple-documents", {"prompts/a.yaml": y("template: Hi", "---", "template: Hey")},
         [("prompts/a.yaml:2:1", "a prompt file holds one YAML document")]),
    Case("control-character", {"prompts/a.yaml": y("template: Hi\x07there")},
         [("prompts/a.yaml:1:13", "control character U+0007")]),
    Case("date-value", {"prompts/a.yaml": y("template: Hi", "description: 2024-05-01")},
         [("prompts/a.yaml:2:14", "'2024-05-01' is read as a YAML timestamp")]),
    Case("python-tag", {"prompts/a.yaml": y("template: !!python/object/apply:os.system [echo hi]")},
         [("prompts/a.yaml:1:11", "unsupported YAML tag !!python/object/apply:os.system")]),
    Case("binary-tag", {"prompts/a.yaml": y("template: !!binary aGVsbG8=")},
         [("prompts/a.yaml:1:11", "unsupported YAML tag !!binary")]),
    Case("nan-number", {"prompts/a.yaml": y("template: Hi", "model: {temperature: .nan}")},
         [("prompts/a.yaml:2:22", "'.nan' is not a finite number")]),
    Case("empty-file", {"prompts/a.yaml": ""}, [("prompts/a.yaml:1:1", "file is empty")]),
    Case("comments-only", {"prompts/a.yaml": y("# nothing here yet")}, [("prompts/a.yaml:1:1", "file is empty")]),
    Case("top-level-list", {"prompts/a.yaml": y("- template: Hi")},
         [("prompts/a.yaml:1:1", "a prompt file must be a YAML mapping")]),
    Case("top-level-string", {"prompts/a.yaml": y("Summarize the article")},
         [("prompts/a.yaml:1:1", "a prompt file must be a YAML mapping")]),
    # ------------------------------------------------------------------ schema
    Case("unknown-key-did-you-mean", {"prompts/a.yaml": y("template: Hi", "lables: [production]")},
         [("prompts/a.yaml:2:1", "unknown key 'lables' (did you mean 'labels'?)")]),
    Case("wrong-type", {"prompts/a.yaml": y("template: Hi", "tags: checkout")},
         [("prompts/a.yaml:2:7", "tags: expected an array, got a string")]),
    Case("template-not-a-string", {"prompts/a.yaml": y("template: 42")},
         [("prompts/a.yaml:1:11", "template: expected a string, got a number (42)")]),
    Case("bad-enum", {"prompts/a.yaml": y("type: chatt", "messages:", "  - {role: user, content: Hi}")},
         [("prompts/a.yaml:1:7", "did you mean 'chat'?")]),
    Case("bad-template-format", {"prompts/a.yaml": y("template_format: jinja", "template: Hi")},
         [("prompts/a.yaml:1:18", "did you mean 'jinja2'?")]),
    Case("bad-label-format-short-form", {"prompts/a.yaml": y("template: Hi", "labels: [Production]")},
         [("prompts/a.yaml:2:10", "labels are 1-36 lowercase ASCII letters")]),
    Case("bad-label-format-full-form",
         {"prompts/a.yaml": y("versions:", "  v1: {template: Hi}", "labels:", "  Prod: v1")},
         [("prompts/a.yaml:4:3", 'labels: key "Prod" has the wrong form')]),
    Case("bad-variable-name", {"prompts/a.yaml": y("variables:", "  1st: {type: string}", "template: Hi {{1st}}")},
         [("prompts/a.yaml:2:3", 'variables: key "1st" has the wrong form')]),
    Case("name-escapes-with-dotdot", {"prompts/a.yaml": y("name: ../../etc/passwd", "template: Hi")},
         [("prompts/a.yaml:1:7", '"../../etc/passwd" would point outside the prompts folder')]),
    Case("name-absolute", {"prompts/a.yaml": y("name: /abs", "template: Hi")},
         [("prompts/a.yaml:1:7", '"/abs" would point outside the prompts folder')]),
    Case("symlink-pointing-outside", {"prompts/ok.yaml": OK_PROMPT},
         [("prompts/link.yaml:1:1", "file resolves outside the prompts folder")], setup=symlink_outside),
    Case("derived-name-invalid", {"prompts/my prompt.yaml": OK_PROMPT},
         [("prompts/my prompt.yaml:1:1", "\"my prompt\", is not a valid prompt name")]),
    # ------------------------------------------------------------------ labels and traffic
    Case("label-to-undeclared-version",
         {"prompts/a.yaml": y("versions:", "  stable: {template: Hi}", "  concise: {template: Hey}",
                              "labels:", "  production: stabel")},
         [("prompts/a.yaml:5:15", "did you mean 'stable'?")]),
    Case("traffic-label-not-in-labels",
         {"prompts/a.yaml": y(*TWO_VERSIONS, "traffic:", "  staging: {stable: 50, concise: 50}")},
         [("prompts/a.yaml:7:3", "traffic label 'staging' is not declared in labels:")]),
    Case("traffic-version-undeclared",
         {"prompts/a.yaml": y(*TWO_VERSIONS, "traffic:", "  production: {stable: 50, concize: 50}")},
         [("prompts/a.yaml:7:28", ("names 'concize', which is not a declared version", "did you mean 'concise'?"))]),
    Case("weights-sum-to-95",
         {"prompts/a.yaml": y(*TWO_VERSIONS, "traffic:", "  production: {stable: 90, concise: 5}")},
         [("prompts/a.yaml:7:3", "sum to 95, not 100")]),
    Case("weight-101",
         {"prompts/a.yaml": y(*TWO_VERSIONS, "traffic:", "  production: {stable: 101, concise: 0}")},
         [("prompts/a.yaml:7:24", "101 is out of range (use a value from 0 to 100)")]),
    Case("weight-not-integer",
         {"prompts/a.yaml": y(*TWO_VERSIONS, "traffic:", "  production: {stable: 90.5, concise: 9.5}")},
         [("prompts/a.yaml:7:24", "expected an integer, got a number (90.5)"),
          ("prompts/a.yaml:7:39", "expected an integer, got a number (9.5)")]),
    Case("short-form-labels-as-mapping", {"prompts/a.yaml": y("template: Hi", "labels:", "  production: default")},
         [("prompts/a.yaml:2:1", "in the short form, labels: is a list")]),
    Case("full-form-labels-as-list", {"prompts/a.yaml": y("versions:", "  stable: {template: Hi}", "labels: [production]")},
         [("prompts/a.yaml:3:1", "labels: {production: stable}")]),
    Case("traffic-in-short-form",
         {"prompts/a.yaml": y("template: Hi", "labels: [production]", "traffic:", "  production: {default: 100}")},
         [("prompts/a.yaml:3:1", "traffic: needs several versions")]),
    # ------------------------------------------------------------------ content
    Case("versions-and-template", {"prompts/a.yaml": y("template: Hi", "versions:", "  stable: {template: Hey}")},
         [("prompts/a.yaml:1:1", "template: cannot be used together with versions:")]),
    Case("template-and-messages",
         {"prompts/a.yaml": y("template: Hi", "messages:", "  - {role: system, content: Hey}")},
         [("prompts/a.yaml:2:1", "template: and messages: cannot both be set")]),
    Case("no-content", {"prompts/a.yaml": y("name: summarizer", "labels: [production]")},
         [("prompts/a.yaml:1:1", "the prompt has no content")]),
    Case("version-without-content", {"prompts/a.yaml": y("versions:", "  stable:", "    model: {name: gpt-4o}")},
         [("prompts/a.yaml:2:3", "version 'stable' has no template: or messages:")]),
    Case("chat-version-with-template", {"prompts/a.yaml": y("type: chat", "versions:", "  stable:", "    template: Hi")},
         [("prompts/a.yaml:4:5", "type is chat, so version 'stable' needs messages:, not template:")]),
    Case("unknown-role", {"prompts/a.yaml": y("messages:", "  - role: sytem", "    content: Hi")},
         [("prompts/a.yaml:2:11", "unknown role 'sytem' (did you mean 'system'?")]),
    Case("message-missing-content", {"prompts/a.yaml": y("messages:", "  - role: system")},
         [("prompts/a.yaml:2:5", "message is missing content:")]),
    Case("placeholder-with-content",
         {"prompts/a.yaml": y("messages:", "  - role: system", "    content: Hi", "  - placeholder: history",
                              "    content: x")},
         [("prompts/a.yaml:4:5", "a placeholder message has only placeholder: NAME")]),
    Case("placeholder-collides-with-variable",
         {"prompts/a.yaml": y("messages:", "  - role: system", "    content: Hi {{history}}",
                              "  - placeholder: history")},
         [("prompts/a.yaml:4:18", "placeholder 'history' has the same name as a template variable")]),
    Case("identical-versions", {"prompts/a.yaml": y("versions:", "  a: {template: Hi}", "  b: {template: Hi}")},
         [("prompts/a.yaml:3:3", "versions 'a' and 'b' have identical content")]),
    # ------------------------------------------------------------------ template syntax, exact positions
    Case("mustache-unclosed-section-in-block",
         {"prompts/a.yaml": y("labels: [production]", "template: |", "  Hello {{name}}.",
                              "  Your items:", "    {{#items}}- {{title}}")},
         [("prompts/a.yaml:5:5", "unclosed section {{#items}}")]),
    Case("mustache-unclosed-tag-in-block",
         {"prompts/a.yaml": y("messages:", "  - role: system", "    content: |", "      You are {{role",
                              "      Be kind.")},
         [("prompts/a.yaml:4:15", "unclosed tag {{role")]),
    Case("mustache-mismatched-close-in-block",
         {"prompts/a.yaml": y("template: |-", "  {{#items}}", "    x", "  {{/itemz}}")},
         [("prompts/a.yaml:4:3", "closing tag {{/itemz}} does not match open section {{#items}}")]),
    Case("mustache-in-folded-block",
         {"prompts/a.yaml": y("template: >", "  Hello there,", "  dear {{#user}}")},
         [("prompts/a.yaml:3:8", "unclosed section {{#user}}")]),
    Case("mustache-in-block-with-indent-indicator",
         {"prompts/a.yaml": y("template: |2", "    indented first line", "  {{#x}}")},
         [("prompts/a.yaml:3:3", "unclosed section {{#x}}")]),
    Case("mustache-in-crlf-block",
         {"prompts/a.yaml": "template: |\r\n  Hi\r\n  there {{#x}}\r\n"},
         [("prompts/a.yaml:3:9", "unclosed section {{#x}}")]),
    Case("mustache-in-double-quotes-after-escape",
         {"prompts/a.yaml": y('template: "Line\\n\\u00e9 {{#x}}"')},
         [("prompts/a.yaml:1:25", "unclosed section {{#x}}")]),
    Case("mustache-in-single-quotes-after-escape",
         {"prompts/a.yaml": y("template: 'It''s {{name'")},
         [("prompts/a.yaml:1:18", "unclosed tag {{name")]),
    Case("jinja2-syntax-error",
         {"prompts/a.yaml": y("template_format: jinja2", "template: |", "  Hello {{ name }}",
                              "  {% if vip %}VIP", "  more")},
         [("prompts/a.yaml:4:3", "jinja2 template:")]),
    Case("fstring-single-brace",
         {"prompts/a.yaml": y("template_format: f-string", 'template: "Hello {name"')},
         [("prompts/a.yaml:2:18", "unclosed '{'")]),
    Case("fstring-positional-fields",
         {"prompts/a.yaml": y("template_format: f-string", 'template: "Hello {0} and {}"')},
         [("prompts/a.yaml:2:18", "f-string fields must be named: {0}"),
          ("prompts/a.yaml:2:26", "f-string fields must be named: {}")]),
    # ------------------------------------------------------------------ variables
    Case("variable-used-not-declared",
         {"prompts/a.yaml": y("variables:", "  name: {type: string}", "template: Hi {{name}}, {{nmae}}")},
         [("prompts/a.yaml:3:24", ("variable 'nmae' is used but not declared", "did you mean 'name'?"))]),
    Case("variable-used-not-declared-in-block",
         {"prompts/a.yaml": y("variables:", "  name: {type: string}", "template: |", "  Hi {{name}}",
                              "  Order {{ order_id }}")},
         [("prompts/a.yaml:5:9", "variable 'order_id' is used but not declared")]),
    Case("variable-declared-unused",
         {"prompts/a.yaml": y("variables:", "  name: {type: string}", "  locale: {type: string}",
                              "template: Hi {{name}}")},
         [("prompts/a.yaml:3:3", "variable 'locale' is declared but no version uses it")]),
    # ------------------------------------------------------------------ across files
    Case("duplicate-prompt-names",
         {"prompts/a.yaml": y("name: shared", "template: Hi"), "prompts/b.yaml": y("name: shared", "template: Hey")},
         [("prompts/a.yaml:1:7", "prompt name 'shared' is also used by prompts/b.yaml:1:7"),
          ("prompts/b.yaml:1:7", "prompt name 'shared' is already used by prompts/a.yaml:1:7")]),
    Case("duplicate-derived-and-explicit-name",
         {"prompts/support/reply.yaml": y("template: Hi"),
          "prompts/z.yaml": y("labels: [production]", "name: support/reply", "template: Hey")},
         [("prompts/support/reply.yaml:1:1", "prompt name 'support/reply' is already used by prompts/z.yaml:2:7"),
          ("prompts/z.yaml:2:7", "prompt name 'support/reply' is also used by prompts/support/reply.yaml:1:1")]),
    Case("unknown-target", {"prompts/a.yaml": y("targets: [prod]", "template: Hi")},
         [("prompts/a.yaml:1:11", "unknown target 'prod'")]),
    # ------------------------------------------------------------------ promptops.yaml
    Case("literal-secret", {"prompts/a.yaml": OK_PROMPT},
         [("promptops.yaml:5:19", "credentials.public_key must be an environment variable reference"),
          ("promptops.yaml:6:19", "credentials.secret_key must be an environment variable reference")],
         config=y("targets:", "  lf:", "    provider: langfuse", "    credentials:",
                  "      public_key: pk-lf-1234", "      secret_key: sk-lf-TOPSECRET-5678"),
         absent=["sk-lf-TOPSECRET-5678", "pk-lf-1234"]),
    Case("missing-credentials", {"prompts/a.yaml": OK_PROMPT},
         [("promptops.yaml:3:15", "missing credentials.public_key for provider langfuse"),
          ("promptops.yaml:3:15", "missing credentials.secret_key for provider langfuse")],
         config=y("targets:", "  lf:", "    provider: langfuse")),
    Case("http-base-url-not-loopback", {"prompts/a.yaml": OK_PROMPT},
         [("promptops.yaml:4:15", "plain http:// for a host that is not loopback")],
         config=y("targets:", "  lf:", "    provider: langfuse", "    base_url: http://langfuse.example.com",
                  "    credentials:", "      public_key: ${PK}", "      secret_key: ${SK}")),
    Case("unknown-provider", {"prompts/a.yaml": OK_PROMPT},
         [("promptops.yaml:3:15", "did you mean 'langfuse'?")],
         config=y("targets:", "  lf:", "    provider: langfuze")),
    Case("default-target-missing", {"prompts/a.yaml": OK_PROMPT},
         [("promptops.yaml:1:17", "default_target 'prod' is not a configured target")],
         config=y("default_target: prod", "targets:", "  local:", "    provider: local")),
    Case("prompts-folder-missing", {"prompts/a.yaml": OK_PROMPT},
         [("promptops.yaml:1:10", "prompts folder 'src/prompts' does not exist")],
         config=y("prompts: src/prompts")),
    Case("config-error-does-not-cascade-into-prompts",
         {"prompts/a.yaml": y("targets: [prod]", "template: Hi")},
         [("promptops.yaml:3:15", "did you mean 'langfuse'?")],
         # the unknown provider makes the targets unreadable: the prompt's targets: is not
         # reported against the default targets
         config=y("targets:", "  prod:", "    provider: langfuze", "    credentials:",
                  "      public_key: ${PK}", "      secret_key: ${SK}")),
    # ------------------------------------------------------------------ provider capabilities
    Case("name-reserved-on-langfuse-from-the-path", {"prompts/new.yaml": OK_PROMPT, "prompts/team/new.yaml": OK_PROMPT},
         [("prompts/new.yaml:1:1", ("prompt name 'new' is reserved on target 'lf' (langfuse)",
                                    "add targets: [local] to leave 'lf' out"))],
         config=LOCAL_AND_LANGFUSE),
    Case("name-reserved-on-langfuse-set-by-name", {"prompts/a.yaml": y("name: prompt-detail", "template: Hi"),
                                                   "prompts/b.yaml": y("name: metrics", "template: Hi")},
         [("prompts/a.yaml:1:7", "prompt name 'prompt-detail' is reserved on target 'lf' (langfuse)"),
          ("prompts/b.yaml:1:7", "prompt name 'metrics' is reserved on target 'lf' (langfuse)")],
         config=LANGFUSE),
    Case("traffic-on-langfuse", {"prompts/a.yaml": TRAFFIC_OK},
         [("prompts/a.yaml:7:3", ("target 'lf' (langfuse) has no traffic splits",
                                  "add targets: [local] to leave 'lf' out"))],
         config=LOCAL_AND_LANGFUSE),
    Case("mustache-on-promptlayer", {"prompts/a.yaml": OK_PROMPT},
         [("prompts/a.yaml:1:1", "target 'pl' (promptlayer) does not support mustache templates")],
         config=PROMPTLAYER),
    Case("explicit-mustache-on-promptlayer",
         {"prompts/a.yaml": y("template_format: mustache", "template: Hi {{name}}")},
         [("prompts/a.yaml:1:18", "set template_format: f-string or jinja2")],
         config=PROMPTLAYER),
    Case("chat-on-promptlab", {"prompts/a.yaml": y("messages:", "  - role: system", "    content: Hi")},
         [("prompts/a.yaml:1:1", "target 'lab' (promptlab) cannot hold chat prompts")],
         config=PROMPTLAB),
    Case("model-and-tools-on-promptlab",
         {"prompts/a.yaml": y("model: {name: gpt-4o}", "versions:", "  a: {template: Hi}",
                              "  b: {template: Ho, tools: [{type: function}]}")},
         # the prompt-level model once (not once per version), the version's own tools where they are
         [("prompts/a.yaml:1:1", ("target 'lab' (promptlab) stores only the template, so model: cannot be "
                                  "represented", "remove model:")),
          ("prompts/a.yaml:4:21", "so tools: cannot be represented")],
         config=PROMPTLAB),
    Case("empty-template-on-promptlab", {"prompts/a.yaml": y("template: ''")},
         [("prompts/a.yaml:1:11", "target 'lab' (promptlab) cannot store an empty template")],
         config=PROMPTLAB),
    Case("model-key-clashing-with-langfuse-config",
         {"prompts/a.yaml": y("model: {name: gpt-4o, template_format: jinja2}", "versions:",
                              "  a: {template: Hi}", "  b: {template: Ho, model: {tools: [x]}}")},
         [("prompts/a.yaml:1:23", ("model key 'template_format' cannot be represented on target 'lf' (langfuse)",
                                   "set template_format: on the prompt")),
          ("prompts/a.yaml:4:29", "model key 'tools' cannot be represented")],
         config=LANGFUSE),
    Case("placeholder-name-langfuse-refuses",
         {"prompts/a.yaml": y("messages:", "  - {role: system, content: Hi}", "  - placeholder: _history")},
         [("prompts/a.yaml:3:18", "target 'lf' (langfuse) needs placeholder names matching")],
         config=LANGFUSE),
    Case("reserved-latest-on-langfuse", {"prompts/a.yaml": y("template: Hi", "labels: [production, latest]")},
         [("prompts/a.yaml:2:1", "label 'latest' is reserved on target 'lf' (langfuse)")],
         config=LANGFUSE),
    Case("reserved-latest-on-langfuse-full-form",
         {"prompts/a.yaml": y("versions:", "  v1: {template: Hi}", "labels:", "  latest: v1")},
         [("prompts/a.yaml:4:3", "label 'latest' is reserved on target 'lf' (langfuse)")],
         config=LANGFUSE),
    # ------------------------------------------------------------------ hostile files and text
    # A lone surrogate (PyYAML reads "\ud800" into a str UTF-8 cannot encode) is refused where
    # the escape is, whatever holds it: nothing downstream (digest, registry, output) sees one.
    Case("surrogate-in-template", {"prompts/a.yaml": y('template: "Hi \\ud800"')},
         [("prompts/a.yaml:1:15", ("\\ud800 is a UTF-16 surrogate, not a character", "remove it"))]),
    Case("surrogate-in-chat-content", {"prompts/a.yaml": y("messages:", "  - role: user", '    content: "\\ud800"')},
         [("prompts/a.yaml:3:15", "\\ud800 is a UTF-16 surrogate")]),
    Case("surrogate-in-model-value", {"prompts/a.yaml": y("template: Hi", 'model: {name: "\\udfff"}')},
         [("prompts/a.yaml:2:16", "\\udfff is a UTF-16 surrogate")]),
    Case("surrogate-in-description", {"prompts/a.yaml": y("template: Hi", 'description: "caf\\u00e9 \\ud83d"')},
         [("prompts/a.yaml:2:25", "\\ud83d is a UTF-16 surrogate")]),
    Case("surrogate-pair-in-tag", {"prompts/a.yaml": y("template: Hi", 'tags: [ok, "\\ud83d\\ude00"]')},
         [("prompts/a.yaml:2:13", ("\\ud83d is a UTF-16 surrogate", "write \\U0001F600"))]),
    Case("surrogate-in-key", {"prompts/a.yaml": y("template: Hi", "variables:", '  "x\\udc00": {}')},
         [("prompts/a.yaml:3:5", "\\udc00 is a UTF-16 surrogate")]),
    Case("prompts-folder-is-a-symlink-loop", {}, [("prompts:1:1", "the prompts folder is a symlink that loops")],
         setup=lambda root: ((root / "prompts").rmdir(), os.symlink("prompts", root / "prompts"))),
    # File names are printed escaped, as git quotes them: a name cannot split or forge an output
    # line or drive the terminal.
    Case("file-name-with-a-newline", {"prompts/a\nb.yaml": y("template: Hi", "lables: [x]")},
         [('"prompts/a\\nb.yaml":2:1', "unknown key 'lables'")]),
    Case("file-name-with-an-ansi-escape", {"prompts/a\x1b[31mb.yaml": y("template: Hi", "lables: [x]")},
         [('"prompts/a\\033[31mb.yaml":2:1', "unknown key 'lables'")], absent=["\x1b"]),
    Case("file-name-not-utf8", {}, [('"prompts/caf\\351.yaml":1:1', "the file name is not valid UTF-8")],
         setup=lambda root: (root / "prompts" / os.fsdecode(b"caf\xe9.yaml")).write_text(y("name: cafe",
                                                                                           "template: Hi"))),
]


def test_enough_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_file(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, case.files, case.config)
    if case.setup is not None:
        case.setup(tmp_path)
    code, out, err = run_validate(tmp_path, capsys)
    assert_no_crash(out, err)
    assert code == 1, err
    assert_diagnostics(err, case.expected)
    assert "Success" not in out
    for text in case.absent:
        assert text not in out + err


# --------------------------------------------------------------------------- whole runs


def test_every_problem_in_every_file_in_one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {
        "prompts/syntax.yaml": y("template: Hi", "labels: [production"),
        "prompts/schema.yaml": y("template: Hi", "lables: [production]", "type: chatt"),
        "prompts/refs.yaml": y(*TWO_VERSIONS[:3], "labels:", "  production: stabel", "  staging: concise",
                               "traffic:", "  production: {stable: 90, concise: 5}"),
        "prompts/sub/template.yaml": y("template: |", "  {{#open}}", "  {{name"),
        "prompts/good.yaml": OK_PROMPT,
    }, config=y("targets:", "  local:", "    provider: local", "    base_url: https://x.example.com"))
    code, out, err = run_validate(tmp_path, capsys)
    assert_no_crash(out, err)
    assert code == 1
    assert_diagnostics(err, [
        ("promptops.yaml:4:5", "the local provider has no base_url"),
        ("prompts/syntax.yaml:2:9", "'[' is never closed"),
        ("prompts/schema.yaml:2:1", "unknown key 'lables'"),
        ("prompts/schema.yaml:3:7", "did you mean 'chat'?"),
        ("prompts/refs.yaml:5:15", "points at 'stabel'"),
        ("prompts/refs.yaml:8:3", "sum to 95, not 100"),
        ("prompts/sub/template.yaml:2:3", "unclosed section {{#open}}"),
        ("prompts/sub/template.yaml:3:3", "unclosed tag {{name"),
    ])
    assert err.rstrip().endswith("Error: 8 errors in 5 files")


def test_validate_files_reports_only_the_given_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {
        "prompts/a.yaml": y("template: Hi", "lables: [production]"),
        "prompts/b.yaml": y("template: Hi {{#x}}"),
        "prompts/c.yaml": OK_PROMPT,
    }, config=y("targets:", "  local:", "    provider: locl"))
    # relative FILES are relative to the -C directory, like `git -C`
    code, out, err = run_validate(tmp_path, capsys, "prompts/b.yaml")
    assert_no_crash(out, err)
    assert code == 1
    assert_diagnostics(err, [("prompts/b.yaml:1:14", "unclosed section {{#x}}")])

    # promptops.yaml is broken, but only c.yaml is asked about (absolute paths work too)
    code, out, err = run_validate(tmp_path, capsys, str(tmp_path / "prompts" / "c.yaml"))
    assert code == 0, err
    assert "Success!" in out

    # with promptops.yaml among FILES, every prompt file is checked (they all depend on it)
    code, out, err = run_validate(tmp_path, capsys, "promptops.yaml", "prompts/a.yaml")
    assert code == 1
    assert_diagnostics(err, [("promptops.yaml:3:15", "\"locl\" is not allowed"),
                             ("prompts/a.yaml:2:1", "unknown key 'lables'"),
                             ("prompts/b.yaml:1:14", "unclosed section {{#x}}")])


def test_validate_files_still_checks_names_across_all_files(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {"prompts/a.yaml": y("name: shared", "template: Hi"),
                             "prompts/b.yaml": y("name: shared", "template: Hey")})
    # pre-commit passes only the changed file; the clash is reported whichever one it is
    for changed, other in (("a", "b"), ("b", "a")):
        code, _out, err = run_validate(tmp_path, capsys, f"prompts/{changed}.yaml")
        assert code == 1
        assert_diagnostics(err, [(f"prompts/{changed}.yaml:1:7", f"used by prompts/{other}.yaml:1:7")])


def test_explicit_file_outside_the_prompts_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {"prompts/a.yaml": OK_PROMPT, "other/b.yaml": OK_PROMPT, "prompts/notes.txt": "x"})
    code, out, err = run_validate(tmp_path, capsys, "other/b.yaml", "prompts/notes.txt", "prompts/missing.yaml")
    assert_no_crash(out, err)
    assert code == 1
    assert_diagnostics(err, [
        ("other/b.yaml:1:1", "not inside the prompts folder prompts/"),
        ("prompts/notes.txt:1:1", "not a prompt file"),
        ("prompts/missing.yaml:1:1", "file not found"),
    ])


def test_explicit_symlink_outside_is_reported_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {"prompts/a.yaml": OK_PROMPT})
    symlink_outside(tmp_path)
    code, _out, err = run_validate(tmp_path, capsys, "prompts/link.yaml")
    assert code == 1
    assert_diagnostics(err, [("prompts/link.yaml:1:1", "file resolves outside the prompts folder")])


def test_valid_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {
        "prompts/summarizer.yaml": OK_PROMPT,
        "prompts/checkout/assistant.yaml": y(
            "type: chat",
            "variables:",
            "  locale: {type: string, example: en-US}",
            "  history: {type: array}",
            "versions:",
            "  stable:",
            "    messages:",
            "      - role: system",
            "        content: |",
            "          You are a helpful checkout assistant. Locale: {{locale}}.",
            "      - placeholder: history",
            "  concise:",
            "    messages:",
            "      - {role: system, content: 'Be brief. Locale: {{locale}}.'}",
            "    model: {temperature: 0.1}",
            "labels:",
            "  production: stable",
            "  staging: concise",
            "traffic:",
            "  production: {stable: 90, concise: 10}",
        ),
        "prompts/empty-config-ok.yml": y("template: Hi"),
    }, config=y("# only comments: the defaults apply"))
    code, out, err = run_validate(tmp_path, capsys)
    assert_no_crash(out, err)
    assert code == 0, err
    assert "Success! 3 prompt files are valid." in out
    assert error_lines(err) == []


def test_shipped_examples_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    examples = Path(__file__).resolve().parent.parent / "examples"
    code, _out, err = run_validate(examples, capsys)
    assert code == 0, err


# --------------------------------------------------------------------------- validate promptops.yaml


LOCAL_ONLY = y("targets:", "  local:", "    provider: local")


@pytest.mark.parametrize("files, old_config, new_config, expected", [
    # a langfuse target is added while a prompt splits traffic: langfuse has no traffic splits
    ({"prompts/split.yaml": TRAFFIC_OK}, LOCAL_ONLY, LOCAL_AND_LANGFUSE,
     [("prompts/split.yaml:7:3", "target 'lf' (langfuse) has no traffic splits")]),
    # the target a prompt's targets: names is removed
    ({"prompts/only-lf.yaml": y("template: Hi", "targets: [lf]")}, LOCAL_AND_LANGFUSE, LOCAL_ONLY,
     [("prompts/only-lf.yaml:2:11", "unknown target 'lf'")]),
], ids=["target-added", "target-removed"])
def test_validate_config_alone_checks_every_prompt_file_against_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str], old_config: str,
        new_config: str, expected: list[tuple[str, str]]) -> None:
    """The pre-commit hook runs `validate promptops.yaml` when a commit changes only the config;
    a config that breaks prompt files that did not change must fail there, not on the next run."""
    write_project(tmp_path, {**files, "prompts/ok.yaml": OK_PROMPT}, config=old_config)
    code, out, err = run_validate(tmp_path, capsys, "promptops.yaml")
    assert code == 0, err
    assert "Success! promptops.yaml and 2 prompt files are valid." in out

    (tmp_path / "promptops.yaml").write_text(new_config, encoding="utf-8")
    full_code, _out, full_err = run_validate(tmp_path, capsys)
    code, out, err = run_validate(tmp_path, capsys, "promptops.yaml")
    assert_no_crash(out, err)
    assert (code, full_code) == (1, 1)
    assert "Success" not in out
    assert_diagnostics(err, expected)
    assert error_lines(err) == error_lines(full_err)  # the same as validating everything


def test_validate_config_with_files_still_reports_listed_files_discovery_skips(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {"prompts/a.yaml": OK_PROMPT, "prompts/.draft.yaml": y("template: Hi", "lables: []"),
                             "prompts/notes.txt": "x"}, config=y("targets:", "  local:", "    provider: local"))
    code, out, err = run_validate(tmp_path, capsys, "promptops.yaml", "prompts/.draft.yaml", "prompts/notes.txt")
    assert_no_crash(out, err)
    assert code == 1
    assert_diagnostics(err, [("prompts/.draft.yaml:2:1", "unknown key 'lables'"),
                             ("prompts/notes.txt:1:1", "not a prompt file")])


# --------------------------------------------------------------------------- names and suffixes


def test_non_ascii_name_is_shown_as_written_and_the_rule_says_ascii(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {"prompts/a.yaml": y('name: "Café Olé 🚀"', "template: Hi"),
                             "prompts/日本/挨拶.yaml": y("template: Hi"),
                             "prompts/b.yaml": y('name: "zero\u200bwidth"', "template: Hi")})
    code, out, err = run_validate(tmp_path, capsys)
    assert_no_crash(out, err)
    assert code == 1
    assert_diagnostics(err, [
        ("prompts/a.yaml:1:7", ('name: "Café Olé 🚀" has the wrong form', "ASCII letters, digits")),
        ("prompts/日本/挨拶.yaml:1:1", ('the name derived from the file path, "日本/挨拶", is not a valid prompt name',
                                      "ASCII letters, digits")),
        # an invisible character stays visible as an escape
        ("prompts/b.yaml:1:7", 'name: "zero\\u200bwidth" has the wrong form'),
    ])
    assert "\\u00e9" not in err and "\\ud83d" not in err


def test_non_ascii_enum_value_is_shown_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {"prompts/a.yaml": y("type: tëxt", "template: Hi")})
    code, _out, err = run_validate(tmp_path, capsys)
    assert code == 1
    assert_diagnostics(err, [("prompts/a.yaml:1:7", 'type: "tëxt" is not allowed')])


def test_prompt_file_suffix_is_matched_in_any_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {"prompts/Up.YAML": OK_PROMPT, "prompts/sub/Mixed.Yml": OK_PROMPT,
                             "prompts/.Hidden.YAML": y("lables: []"), "prompts/.hidden/x.YML": y("lables: []")})
    code, out, err = run_validate(tmp_path, capsys)
    assert code == 0, err
    assert "Success! 2 prompt files are valid." in out

    # validate FILES accepts them too, and the name drops the suffix whatever its case
    (tmp_path / "prompts" / "Up.yaml").write_text(OK_PROMPT, encoding="utf-8")
    code, out, err = run_validate(tmp_path, capsys, "prompts/Up.YAML", "prompts/sub/Mixed.Yml")
    assert_no_crash(out, err)
    assert code == 1
    assert_diagnostics(err, [("prompts/Up.YAML:1:1", "prompt name 'Up' is also used by prompts/Up.yaml:1:1")])


# --------------------------------------------------------------------------- composition references


BASE = y("template: Be kind and brief.", "labels: [production]")


def test_a_composition_tag_naming_an_undeclared_label_is_located_at_the_tag(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {
        "prompts/shared/tone.yaml": BASE,
        "prompts/reply.yaml": y("versions:",
                                "  stable:",
                                "    template: |",
                                "      Reply to {{question}}.",
                                "      Tone: @@@langfusePrompt:name=shared/tone|label=staging@@@",
                                "labels: {production: stable}"),
    }, config=LANGFUSE)
    code, out, err = run_validate(tmp_path, capsys)
    assert_no_crash(out, err)
    assert code == 1
    assert_diagnostics(err, [("prompts/reply.yaml:5:13", (
        "names label 'staging' of 'shared/tone', which prompts/shared/tone.yaml does not declare (its labels: "
        "production)", "add 'staging' to labels: in prompts/shared/tone.yaml"))])
    # validating only the composed-from file still reports it: its labels decide, and a commit
    # dropping a label would break the composer
    code, out, err = run_validate(tmp_path, capsys, "prompts/shared/tone.yaml")
    assert code == 1
    assert_diagnostics(err, [("prompts/reply.yaml:5:13", "names label 'staging' of 'shared/tone'")])
    # and validating only the composer reads the composed-from file's labels
    code, out, err = run_validate(tmp_path, capsys, "prompts/reply.yaml")
    assert code == 1
    assert_diagnostics(err, [("prompts/reply.yaml:5:13", "names label 'staging' of 'shared/tone'")])


def test_a_chat_prompt_cannot_be_composed_on_langfuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {
        "prompts/persona.yaml": y("messages:", "  - {role: system, content: You are terse.}", "labels: [production]"),
        "prompts/reply.yaml": y("messages:",
                                "  - role: system",
                                "    content: 'Reply. @@@langfusePrompt:name=persona|label=production@@@'",
                                "labels: [production]"),
    }, config=LANGFUSE)
    code, out, err = run_validate(tmp_path, capsys)
    assert code == 1
    assert_diagnostics(err, [("prompts/reply.yaml:3:22", (
        "names 'persona', a chat prompt (prompts/persona.yaml); Langfuse composes only text prompts"))])


def test_a_composition_cycle_among_files_is_an_error_in_each_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {
        "prompts/a.yaml": y('template: "A then @@@langfusePrompt:name=b|label=production@@@"', "labels: [production]"),
        "prompts/b.yaml": y('template: "B then @@@langfusePrompt:name=a|version=1@@@"', "labels: [production]"),
        "prompts/c.yaml": y('template: "@@@langfusePrompt:name=c|label=production@@@"', "labels: [production]"),
    }, config=LANGFUSE)
    code, out, err = run_validate(tmp_path, capsys)
    assert code == 1
    assert_diagnostics(err, [
        ("prompts/a.yaml:1:19", "closes a composition cycle (a -> b -> a), which Langfuse refuses to create"),
        ("prompts/b.yaml:1:19", "closes a composition cycle (b -> a -> b)"),
        ("prompts/c.yaml:1:12", "names the prompt itself"),
    ])


def test_a_chain_of_five_nested_compositions_is_an_error_on_langfuse(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # PromptService refuses a dependency at nesting level 5: p0 -> p1 -> ... -> p5 fails, p1 -> ... -> p5 is fine
    files = {f"prompts/p{i}.yaml": y(f'template: "{i} @@@langfusePrompt:name=p{i + 1}|label=production@@@"',
                                     "labels: [production]") for i in range(5)}
    files["prompts/p5.yaml"] = BASE
    write_project(tmp_path, files, config=LANGFUSE)
    code, out, err = run_validate(tmp_path, capsys)
    assert code == 1
    assert_diagnostics(err, [("prompts/p0.yaml:1:14", (
        "starts a chain of 5 nested compositions (p0 -> p1 -> p2 -> p3 -> p4 -> p5)", "resolves at most 4"))])


def test_composition_tags_naming_other_prompts_or_the_platform_only_are_fine(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {
        "prompts/shared/tone.yaml": BASE,
        "prompts/reply.yaml": y(
            "template: >-",
            "  @@@langfusePrompt:name=shared/tone|label=production@@@",
            "  @@@langfusePrompt:name=shared/tone|label=latest@@@",
            "  @@@langfusePrompt:name=shared/tone|version=3@@@",
            "  @@@langfusePrompt:name=only/on/the/platform|label=whatever@@@",
            "labels: [production]"),
    }, config=LANGFUSE)
    code, out, err = run_validate(tmp_path, capsys)
    assert (code, error_lines(err)) == (0, []), err


def test_composition_tags_are_plain_text_for_targets_that_do_not_resolve_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {
        "prompts/base.yaml": BASE,
        "prompts/reply.yaml": y('template: "@@@langfusePrompt:name=base|label=staging@@@ @@@base@label:x@@@"'),
    }, config=LOCAL_ONLY)
    code, out, err = run_validate(tmp_path, capsys)
    assert (code, error_lines(err)) == (0, []), err


def test_a_malformed_langfuse_tag_is_a_warning_that_it_is_served_as_text(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {"prompts/reply.yaml": y(
        'template: "Hi @@@langfusePrompt:label=production|name=base@@@ @@@langfusePrompt:name=base|version=x1@@@"')},
        config=LANGFUSE)
    code, out, err = run_validate(tmp_path, capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if ": warning: " in line]
    assert [w.split(": warning: ")[0] for w in warnings] == ["prompts/reply.yaml:1:15", "prompts/reply.yaml:1:63"]
    assert all("is not a composition tag Langfuse reads: it is served as plain text" in w for w in warnings)


def test_promptlayer_snippets_are_checked_like_langfuse_tags(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, {
        "prompts/base.yaml": y("template_format: f-string", "template: Be kind.", "labels: [prod]"),
        "prompts/chatty.yaml": y("template_format: f-string", "messages:", "  - {role: system, content: Hi}"),
        "prompts/reply.yaml": y(
            "template_format: f-string",
            'template: "@@@base@@@ @@@base@label:prod@@@ @@@base@version_number:2@@@ @@@base@label:staging@@@"',
            'labels: [prod]'),
        "prompts/ask.yaml": y("template_format: f-string", 'template: "@@@chatty@@@ @@@base@version_number:two@@@"'),
    }, config=PROMPTLAYER)
    code, out, err = run_validate(tmp_path, capsys)
    assert code == 1
    assert_diagnostics(err, [
        ("prompts/reply.yaml:2:73", "names label 'staging' of 'base', which prompts/base.yaml does not declare"),
        ("prompts/ask.yaml:2:12", "names 'chatty', a chat prompt (prompts/chatty.yaml); PromptLayer composes only text"),
        ("prompts/ask.yaml:2:25", "pins version 'two', which is not a positive whole number"),
    ])


# --------------------------------------------------------------------------- hostile files


def run_cli_subprocess(root: Path, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process, killed after 30 s: a hang fails the test instead of the suite."""
    return subprocess.run([*prefix, sys.executable, "-m", "promptops", "-C", str(root), *args],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("command", [("validate",), ("plan",), ("validate", "prompts/ok.yaml")])
def test_a_fifo_among_the_prompt_files_is_an_error_not_a_hang(tmp_path: Path, command: tuple[str, ...]) -> None:
    write_project(tmp_path, {"prompts/ok.yaml": OK_PROMPT})
    os.mkfifo(tmp_path / "prompts" / "pipe.yaml")  # opening it for reading waits for a writer
    started = time.monotonic()
    result = run_cli_subprocess(tmp_path, *command)
    assert time.monotonic() - started < 10
    assert_no_crash(result.stdout, result.stderr)
    if len(command) == 2:  # validate FILE reads the others for their names only: a broken one takes no part
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 1, result.stderr
    assert_diagnostics(result.stderr, [("prompts/pipe.yaml:1:1", "not a regular file: it is a FIFO (named pipe)")])


@pytest.mark.parametrize("field, line", [("description", 'description: "\\ud800"'), ("tags", 'tags: ["\\ud800"]')])
def test_a_surrogate_in_description_or_tags_fails_validate_and_plan_alike(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, line: str) -> None:
    # description and tags are not part of a version's content: they used to pass validate and
    # then break plan (exit 3) when written out
    write_project(tmp_path, {"prompts/a.yaml": y("template: Hi", line)})
    for command in ("validate", "plan"):
        capsys.readouterr()
        code = main(["-C", str(tmp_path), command])
        out, err = capsys.readouterr()
        assert_no_crash(out, err)
        assert code == 1, err
        assert_diagnostics(err, [(f"prompts/a.yaml:2:{line.index(chr(92)) + 1}", "\\ud800 is a UTF-16 surrogate")])


def test_a_megabyte_invalid_label_is_echoed_shortened(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = "X" * (MAX_BYTES - 100)
    write_project(tmp_path, {"prompts/a.yaml": y("template: Hi", f"labels: [{label}]")})
    started = time.monotonic()
    code, out, err = run_validate(tmp_path, capsys)
    assert time.monotonic() - started < 10
    assert code == 1
    assert_diagnostics(err, [("prompts/a.yaml:2:10", ('labels[0]: "' + "X" * 60 + '…" (1,048,476 characters) has the '
                                                      "wrong form", "labels are 1-36 lowercase"))])
    assert len(err) < 500


@pytest.mark.parametrize("where, text, location", [
    ("role", y("messages:", "  - role: {big}", "    content: Hi"), "prompts/a.yaml:2:11"),
    ("target", y("template: Hi", "targets: [{big}]"), "prompts/a.yaml:2:11"),
    ("declared variable", y("template: Hi", "variables:", "  ? {big}", "  : {{}}"), "prompts/a.yaml:3:5"),
    ("used variable", y("template: 'Hi {{{{{big}}}}}'", "variables: {{}}"), "prompts/a.yaml:1:15"),
    ("tagged value", y("template: Hi", "description: !!int {big}"), "prompts/a.yaml:2:14"),
])
def test_every_echoed_value_is_shortened(tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, text: str,
                                         location: str) -> None:
    write_project(tmp_path, {"prompts/a.yaml": text.format(big="q" * 500_000)})
    code, out, err = run_validate(tmp_path, capsys)
    assert code == 1
    assert_diagnostics(err, [(location, "q" * 60 + "…")])
    assert len(err) < 600, where


def unreadable_sub_folder(root: Path) -> None:
    write_project(root, {"prompts/ok.yaml": OK_PROMPT, "prompts/sub/a.yaml": OK_PROMPT})


def test_a_folder_that_cannot_be_listed_is_an_error_not_skipped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    unreadable_sub_folder(tmp_path)
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:
        if os.fspath(path).endswith("sub"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)  # what os.walk lists folders with
    for args in (["validate"], ["plan"], ["validate", "prompts/ok.yaml"]):
        capsys.readouterr()
        code = main(["-C", str(tmp_path), *args])
        out, err = capsys.readouterr()
        assert_no_crash(out, err)
        assert code == 1, (args, out, err)
        assert_diagnostics(err, [("prompts/sub:1:1", ("cannot read folder: Permission denied",
                                                      "the prompt files in it were not checked", "chmod +rx"))])


def test_a_folder_without_read_permission_is_an_error(tmp_path: Path) -> None:
    """chmod 000 for real. root reads any folder (CAP_DAC_OVERRIDE), so as root the CLI runs with
    those capabilities dropped (setpriv), which is where a real root-owned CI job would differ."""
    unreadable_sub_folder(tmp_path)
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: chmod 000 does not deny root; the monkeypatched test covers it")
        prefix = (setpriv, "--inh-caps=-dac_override,-dac_read_search",
                  "--bounding-set=-dac_override,-dac_read_search", "--")
    sub = tmp_path / "prompts" / "sub"
    sub.chmod(0)
    try:
        result = run_cli_subprocess(tmp_path, "validate", prefix=prefix)
    finally:
        sub.chmod(stat.S_IRWXU)
    assert_no_crash(result.stdout, result.stderr)
    assert result.returncode == 1, result.stderr
    assert "Success" not in result.stdout
    assert_diagnostics(result.stderr, [("prompts/sub:1:1", "cannot read folder: Permission denied")])
