"""Prompt composition (promptops.composition): references read exactly as each platform reads them,
resolved from the files by `render`, ordered by `apply`, and end to end on the Langfuse emulator
served over HTTP, read back by the official SDK."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from conftest import commit, init_repo, write
from emulators.langfuse import LangfuseEmulator, parse_dependency_tags
from promptops.composition import dependency_order, find_references
from promptops.digest import canonical_content


def text(template: str) -> dict:
    return canonical_content(type="text", template_format="mustache", template=template)


def refs(template: str, syntax: str = "langfuse") -> list[tuple]:
    return [(r.name, r.label, r.version, r.offset) for r in find_references(text(template), syntax)]


# --------------------------------------------------------------------------- reading references


@pytest.mark.parametrize("template, expected", [
    ("@@@langfusePrompt:name=a|label=production@@@", [("a", "production", None, 0)]),
    ("x @@@langfusePrompt:name=f/b|version=3@@@", [("f/b", None, "3", 2)]),
    ("@@@langfusePrompt:name=a|foo=b@@@", []),
    ("@@@langfusePrompt:label=x|name=a@@@", []),  # name must come first
    ("@@@langfusePrompt:name=a|label=x|version=2@@@", []),  # exactly two parts
    ("@@@langfusePrompt:name=a|version=@@@", []),  # an empty version falls back to label=, which is absent
    ("@@@langfusePrompt:name=a|version=x1@@@", []),  # NaN: not a tag
    ("@@@langfusePrompt:name=a|label=b=c@@@", [("a", "b", None, 0)]),  # JS keeps the piece before the next '='
    ("@@@langfusePrompt:name=|label=b@@@", []),  # no name
    ("é @@@langfusePrompt:name=a|label=@@@", [("a", "", None, 2)]),  # an empty label is a tag (never found)
    ("two @@@langfusePrompt:name=a|label=p@@@@@@langfusePrompt:name=b|label=q@@@",
     [("a", "p", None, 4), ("b", "q", None, 39)]),
])
def test_langfuse_tags_are_read_as_the_server_reads_them(template, expected):
    assert refs(template) == expected
    # the emulator ports the server's parser: both agree on what is a tag
    assert [(d["name"], d.get("label")) for d in parse_dependency_tags(template)] == _dedupe(
        [(n, label if version is None else None) for n, label, version, _ in expected])


def _dedupe(items: list) -> list:
    return list(dict.fromkeys(items))


def test_a_langfuse_tag_holding_a_line_break_is_read_on_its_json_escaped_text():
    # the server's regex runs over JSON.stringify(prompt): a newline inside a tag is the two
    # characters \n there, so the tag still matches, naming a prompt "a\n" that cannot exist
    [ref] = find_references(text("go\n@@@langfusePrompt:name=a\n|label=b@@@ end"), "langfuse")
    assert (ref.name, ref.label, ref.offset, ref.text) == ("a\\n", "b", 3, "@@@langfusePrompt:name=a\n|label=b@@@")


def test_langfuse_tags_are_found_in_chat_message_contents():
    content = canonical_content(type="chat", template_format="mustache", messages=[
        {"role": "system", "content": "Tone: @@@langfusePrompt:name=t|label=p@@@"}, {"placeholder": "history"},
        {"role": "user", "content": "@@@langfusePrompt:name=u|version=2@@@"}])
    assert [(r.name, r.path, r.offset) for r in find_references(content, "langfuse")] == [
        ("t", ("messages", 0, "content"), 6), ("u", ("messages", 2, "content"), 0)]


@pytest.mark.parametrize("template, expected", [
    ("@@@base@@@", [("base", None, None, 0)]),
    ("a @@@base-instructions@version_number:3@@@", [("base-instructions", None, "3", 2)]),
    ("@@@tone@label:prod@@@ and @@@tone@@@", [("tone", "prod", None, 0), ("tone", None, None, 26)]),
    ("email me @ home", []),
    ("@@@@@@", []),
])
def test_promptlayer_snippets_follow_its_documented_forms(template, expected):
    assert refs(template, "promptlayer") == expected


def test_the_latest_version_is_followed_by_promptlayers_bare_snippet_and_langfuses_latest_label():
    [bare] = find_references(text("@@@base@@@"), "promptlayer")
    [latest] = find_references(text("@@@langfusePrompt:name=base|label=latest@@@"), "langfuse")
    [label] = find_references(text("@@@base@label:latest@@@"), "promptlayer")
    assert (bare.latest, latest.latest, label.latest) == (True, True, False)


def test_dependency_order_puts_composed_prompts_first_and_breaks_a_cycle():
    assert dependency_order(["a", "b", "c", "d"], {"a": {"c"}, "c": {"d"}}) == ["d", "c", "a", "b"]
    assert dependency_order(["a", "b"], {"a": {"b"}, "b": {"a"}}) == ["b", "a"]


# --------------------------------------------------------------------------- render


LANGFUSE_CONFIG = """\
default_target: local
targets:
  local: {provider: local}
  lf:
    provider: langfuse
    base_url: %s
    credentials: {public_key: "${LF_PUBLIC}", secret_key: "${LF_SECRET}"}
"""
TONE = """\
type: text
versions:
  kind:
    template: "Be kind. @@@langfusePrompt:name=shared/core|label=production@@@"
  brief:
    template: "Be brief."
labels: {production: kind, staging: brief}
"""
CORE = """\
template: "Never invent facts about {{product}}."
labels: [production]
"""
REPLY = """\
type: text
template: "Reply to {{question}}. @@@langfusePrompt:name=shared/tone|label=production@@@"
labels: [production]
"""


def render_project(root: Path) -> Path:
    write(root, "promptops.yaml", LANGFUSE_CONFIG % "http://127.0.0.1:9")
    write(root, "prompts/shared/tone.yaml", TONE)
    write(root, "prompts/shared/core.yaml", CORE)
    write(root, "prompts/assist/reply.yaml", REPLY)
    return root


def test_render_resolves_nested_tags_from_the_files_as_the_target_platform_serves_them(cli, tmp_path):
    root = render_project(tmp_path)
    r = cli("-C", root, "render", "assist/reply", "-t", "lf", "--var", "question=refunds", "--var", "product=mugs")
    assert (r.code, r.out) == (0, "Reply to refunds. Be kind. Never invent facts about mugs.\n"), r.err
    write(root, "prompts/assist/reply.yaml", REPLY.replace("label=production", "label=staging"))
    r = cli("-C", root, "render", "assist/reply", "-t", "lf", "--var", "question=refunds")
    assert (r.code, r.out) == (0, "Reply to refunds. Be brief.\n"), r.err
    # the default target here is the local registry, which serves the text as written
    r = cli("-C", root, "render", "assist/reply", "--var", "question=refunds")
    assert (r.code, r.out) == (0, "Reply to refunds. @@@langfusePrompt:name=shared/tone|label=staging@@@\n"), r.err


def test_render_resolves_tags_in_chat_messages(cli, tmp_path):
    root = render_project(tmp_path)
    write(root, "prompts/assist/chat.yaml", "messages:\n  - role: system\n    content: "
          "'Rules: @@@langfusePrompt:name=shared/core|label=production@@@'\n  - {role: user, content: '{{q}}'}\n")
    r = cli("-C", root, "render", "assist/chat", "-t", "lf", "--var", "q=hi", "--var", "product=mugs")
    assert (r.code, r.out) == (0, "[system]\nRules: Never invent facts about mugs.\n\n[user]\nhi\n"), r.err


@pytest.mark.parametrize("template, message", [
    ("@@@langfusePrompt:name=elsewhere|label=production@@@",
     "names prompt 'elsewhere', which no file declares for this target, so render cannot resolve it from the files"),
    ("@@@langfusePrompt:name=shared/core|version=1@@@",
     "pins Langfuse version 1 of 'shared/core', a platform version number the files do not know"),
    ("@@@langfusePrompt:name=shared/tone|label=latest@@@",
     "names the latest version of 'shared/tone', which the files cannot tell among its 2 versions"),
])
def test_render_says_when_the_files_cannot_tell_what_the_platform_serves(cli, tmp_path, template, message):
    root = render_project(tmp_path)
    write(root, "prompts/assist/reply.yaml", f'template: "Reply. {template}"\n')
    r = cli("-C", root, "render", "assist/reply", "-t", "lf")
    assert r.code == 1 and "Traceback" not in r.err
    assert message in r.err


# --------------------------------------------------------------------------- end to end on Langfuse

_keys = itertools.count()


@pytest.fixture
def creds(monkeypatch):
    # the official SDK keeps one client per public key for the whole process: fresh keys per test
    n = next(_keys)
    pk, sk = f"pk-lf-compose-{n}", f"sk-lf-compose-secret-{n}"
    monkeypatch.setenv("LF_PUBLIC", pk)
    monkeypatch.setenv("LF_SECRET", sk)
    return pk, sk


def test_a_composed_prompt_and_what_it_composes_apply_in_one_run_once_and_serve_resolved(cli, creds, tmp_path):
    from langfuse import Langfuse

    emu = LangfuseEmulator(*creds)
    with emu.serve() as server:
        # assist/reply sorts before shared/tone, which composes shared/core: created in plan order,
        # the composer would be refused (400 "Prompt dependency not found")
        root = render_project(init_repo(tmp_path / "repo"))
        write(root, "promptops.yaml", LANGFUSE_CONFIG % server.url)
        commit(root, "A: composed prompts")
        for _ in range(3):
            r = cli("-C", root, "apply", "-t", "lf", "--auto-approve")
            assert r.code == 0, r.out + r.err
        assert {name: len(emu.versions(name)) for name in ("assist/reply", "shared/tone", "shared/core")} == {
            "assist/reply": 1, "shared/tone": 2, "shared/core": 1}
        assert emu.versions("assist/reply")[0]["prompt"] == (
            "Reply to {{question}}. @@@langfusePrompt:name=shared/tone|label=production@@@")
        assert cli("-C", root, "plan", "-t", "lf", "--detailed-exitcode").code == 0

        sdk = Langfuse(public_key=creds[0], secret_key=creds[1], base_url=server.url, tracing_enabled=False)
        served = sdk.get_prompt("assist/reply", cache_ttl_seconds=0)
        assert served.prompt == "Reply to {{question}}. Be kind. Never invent facts about {{product}}."
        assert served.compile(question="refunds", product="mugs") == (
            "Reply to refunds. Be kind. Never invent facts about mugs.")

        # a label move of the composed prompt: the plan names the composer, whose served text changes
        write(root, "prompts/shared/tone.yaml", TONE.replace("{production: kind, staging: brief}",
                                                             "{production: brief, staging: kind}"))
        commit(root, "B: brief tone")
        r = cli("-C", root, "plan", "-t", "lf", "--no-color")
        assert r.code == 0, r.err
        assert '~ label "production": v1 (kind) -> v2 (brief)\n      # affects: assist/reply\n' in r.out
        moves = [a for a in json.loads(cli("-C", root, "plan", "-t", "lf", "--json").out)["actions"]
                 if a["kind"] == "move_label"]
        assert [(a["label"], a["affects"]) for a in moves] == [("production", ["assist/reply"]), ("staging", [])]
        assert cli("-C", root, "apply", "-t", "lf", "--auto-approve").code == 0
        assert len(emu.versions("assist/reply")) == 1
        assert sdk.get_prompt("assist/reply", cache_ttl_seconds=0).prompt == "Reply to {{question}}. Be brief."
        r = cli("-C", root, "render", "assist/reply", "-t", "lf", "--var", "question=refunds")
        assert r.out == "Reply to refunds. Be brief.\n"

        # import writes the tag verbatim, and the imported file plans clean
        (root / "prompts/assist/reply.yaml").unlink()
        r = cli("-C", root, "import", "assist/reply", "-t", "lf")
        assert r.code == 0, r.out + r.err
        assert "@@@langfusePrompt:name=shared/tone|label=production@@@" in (
            root / "prompts/assist/reply.yaml").read_text()
        commit(root, "C: imported")
        assert cli("-C", root, "plan", "-t", "lf", "--detailed-exitcode").code == 0


# --------------------------------------------------------------------------- end to end on PromptLayer

PROMPTLAYER_CONFIG = """\
default_target: local
targets:
  local: {provider: local}
  pl:
    provider: promptlayer
    base_url: %s
    credentials: {api_key: "${PL_COMPOSE_KEY}"}
"""
PL_KEY = "pl_compose_5e0c1d"
PL_TONE = """\
type: text
template_format: f-string
versions:
  kind:
    template: "Be kind. @@@shared/core@label:production@@@"
  brief:
    template: "Be brief."
labels: {production: kind, staging: brief}
"""
PL_CORE = """\
template_format: f-string
template: "Never invent facts about {product}."
labels: [production]
"""
PL_REPLY = """\
type: text
template_format: f-string
template: "Reply to {question}. @@@shared/tone@label:production@@@"
labels: [production]
"""


@pytest.mark.parametrize("answers", ["current", "2025-04"])
def test_promptlayer_snippets_and_their_composer_apply_in_one_run_once_and_serve_resolved(
        cli, monkeypatch, tmp_path, answers):
    """With "2025-04" a publish answer names no version: each is found by reading the template back,
    which must keep the snippet references (resolve_snippets=false), or the digest would not match."""
    from emulators.base import HttpError
    from emulators.promptlayer import PromptLayerEmulator
    from promptlayer import PromptLayer

    monkeypatch.setenv("PL_COMPOSE_KEY", PL_KEY)
    emu = PromptLayerEmulator(PL_KEY, answers=answers)
    reads: list[dict] = []  # the query of every read of a version, as sent
    route = emu.route

    def recording(request):
        if request.method == "GET" and request.path.startswith("/prompt-templates/") \
                and not request.path.endswith("/labels"):
            reads.append({k: v[-1] for k, v in request.query.items()})
        return route(request)

    emu.route = recording
    with emu.serve() as server:
        # assist/reply sorts before shared/tone, which composes shared/core: published in plan order,
        # the composer would be refused (422: the snippet does not exist yet)
        with pytest.raises(HttpError) as refused:
            emu.seed("assist/reply", "Reply. @@@shared/tone@label:production@@@")
        assert refused.value.response.status == 422
        root = init_repo(tmp_path / "repo")
        write(root, "promptops.yaml", PROMPTLAYER_CONFIG % server.url)
        write(root, "prompts/shared/tone.yaml", PL_TONE)
        write(root, "prompts/shared/core.yaml", PL_CORE)
        write(root, "prompts/assist/reply.yaml", PL_REPLY)
        commit(root, "A: composed prompts")
        for _ in range(3):
            r = cli("-C", root, "apply", "-t", "pl", "--auto-approve")
            assert r.code == 0, r.out + r.err
        assert {name: len(emu.versions(name)) for name in ("assist/reply", "shared/tone", "shared/core")} == {
            "assist/reply": 1, "shared/tone": 2, "shared/core": 1}
        assert emu.versions("assist/reply")[0]["prompt_template"]["content"][0]["text"] == (
            "Reply to {question}. @@@shared/tone@label:production@@@")
        assert cli("-C", root, "plan", "-t", "pl", "--detailed-exitcode").code == 0
        assert reads and all(q.get("resolve_snippets") == "false" for q in reads), reads

        sdk = PromptLayer(api_key=PL_KEY, base_url=server.url)
        served = sdk.templates.get("assist/reply", {"label": "production",
                                                    "input_variables": {"question": "refunds", "product": "mugs"}})
        assert served["prompt_template"]["content"][0]["text"] == (
            "Reply to refunds. Be kind. Never invent facts about mugs.")
        assert served["snippets"] == [{"prompt_name": "shared/tone", "version": 1, "label": "production"},
                                      {"prompt_name": "shared/core", "version": 1, "label": "production"}]

        # a label move of the snippet: the plan names the composer, whose served text changes
        write(root, "prompts/shared/tone.yaml", PL_TONE.replace("{production: kind, staging: brief}",
                                                                "{production: brief, staging: kind}"))
        commit(root, "B: brief tone")
        r = cli("-C", root, "plan", "-t", "pl", "--no-color")
        assert r.code == 0, r.err
        assert '~ label "production": v1 (kind) -> v2 (brief)\n      # affects: assist/reply\n' in r.out
        assert cli("-C", root, "apply", "-t", "pl", "--auto-approve").code == 0
        assert len(emu.versions("assist/reply")) == 1
        served = sdk.templates.get("assist/reply", {"label": "production", "input_variables": {"question": "refunds"}})
        assert served["prompt_template"]["content"][0]["text"] == "Reply to refunds. Be brief."
        r = cli("-C", root, "render", "assist/reply", "-t", "pl", "--var", "question=refunds")
        assert (r.code, r.out) == (0, "Reply to refunds. Be brief.\n"), r.err

        # import writes the snippet reference verbatim, and the imported file plans clean
        (root / "prompts/assist/reply.yaml").unlink()
        r = cli("-C", root, "import", "assist/reply", "-t", "pl")
        assert r.code == 0, r.out + r.err
        assert "@@@shared/tone@label:production@@@" in (root / "prompts/assist/reply.yaml").read_text()
        commit(root, "C: imported")
        assert cli("-C", root, "plan", "-t", "pl", "--detailed-exitcode").code == 0
        assert all(q.get("resolve_snippets") == "false" for q in reads), reads
