"""Review of the PromptLayer and PromptRails providers (issue 5): the CLI against the emulators run
as real servers, and the provider classes in-process.

Tests named ``test_bug_*`` pin the fixes of the bugs the review found (each failed before its fix);
the others pin behaviour the review checked and found correct.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import commit, init_repo, write
from emulators.base import HttpError
from emulators.promptlayer import PromptLayerEmulator
from emulators.promptrails import PromptRailsEmulator

from promptops.config import Target
from promptops.digest import canonical_content, content_digest
from promptops.providers.promptlayer import PromptLayerProvider

PL_KEY = "pl_review_5f0c2d9e7a1b"
PR_KEY = "pr_live_review_8e1a4c7b0d2f"

CONFIG = """\
default_target: t
targets:
  t:
    provider: {provider}
    base_url: {url}
    credentials: {credentials}
"""


def project(tmp_path: Path, provider: str, url: str, files: dict[str, str],
            credentials: str = '{api_key: "${REVIEW_KEY}"}') -> Path:
    root = init_repo(tmp_path / "repo")
    write(root, "promptops.yaml", CONFIG.format(provider=provider, url=url, credentials=credentials))
    for rel, text in files.items():
        write(root, rel, text)
    commit(root, "Add prompts")
    return root


def pl_emulator() -> PromptLayerEmulator:
    return PromptLayerEmulator(PL_KEY)


def pr_emulator(**options) -> PromptRailsEmulator:
    return PromptRailsEmulator(PR_KEY, **options)


EMULATORS = {"promptlayer": (pl_emulator, PL_KEY), "promptrails": (pr_emulator, PR_KEY)}

TEXT = """\
type: text
template_format: jinja2
template: "Summarize {{ article }}"
labels: [production]
"""


def sections(err: str) -> tuple[str, str]:
    """(applied, not applied) parts of an apply failure report."""
    applied = err.split("Applied before the stop:", 1)[1].split("Not applied:", 1)[0]
    not_applied = err.split("Not applied:", 1)[1].split("Run `promptops apply`", 1)[0]
    return applied, not_applied


# =========================================================================== bugs: secrets and bad input


@pytest.mark.parametrize("provider", ["promptlayer", "promptrails"])
def test_bug_a_key_with_a_trailing_newline_is_printed_in_full(cli, tmp_path, monkeypatch, provider):
    """A secret pasted with its newline (a common CI-secret mistake) makes httpx refuse the header;
    the error then quotes the header value, i.e. the API key, and the redaction misses it because
    the message holds its repr (``b'pl_...\\n'``). Expected: exit 1, the variable named, the key
    never printed."""
    make, key = EMULATORS[provider]
    emu = make()
    with emu.serve() as server:
        root = project(tmp_path, provider, server.url, {"prompts/summarize.yaml": TEXT})
        monkeypatch.setenv("REVIEW_KEY", key + "\n")
        r = cli("-C", root, "plan", "--no-color")
    assert r.code == 1
    assert key not in r.out + r.err, r.err
    assert "REVIEW_KEY" in r.err, r.err


@pytest.mark.parametrize("provider", ["promptlayer", "promptrails"])
def test_bug_a_non_ascii_key_is_an_internal_error(cli, tmp_path, monkeypatch, provider):
    """A key with a non-ASCII character (a typographic dash pasted from a doc) crashes with
    UnicodeEncodeError: exit 3 "This is a bug in promptops". Expected: a user error (exit 1)
    naming the variable."""
    make, key = EMULATORS[provider]
    emu = make()
    with emu.serve() as server:
        root = project(tmp_path, provider, server.url, {"prompts/summarize.yaml": TEXT})
        monkeypatch.setenv("REVIEW_KEY", key + "\u2013x")
        r = cli("-C", root, "plan", "--no-color")
    assert r.code == 1, r.err
    assert "REVIEW_KEY" in r.err and "internal error" not in r.err, r.err


def test_bug_promptrails_a_wrong_workspace_id_403_does_not_name_its_variable(cli, tmp_path, monkeypatch):
    """A 403 caused by ``credentials.workspace_id`` tells the user to check the key's permissions
    and names only the key's variable; the variable actually at fault is never named."""
    emu = pr_emulator()
    other = emu.add_key("pr_live_other_workspace")
    with emu.serve() as server:
        root = project(tmp_path, "promptrails", server.url, {"prompts/summarize.yaml": TEXT},
                       credentials='{api_key: "${REVIEW_KEY}", workspace_id: "${REVIEW_WORKSPACE}"}')
        monkeypatch.setenv("REVIEW_KEY", PR_KEY)
        monkeypatch.setenv("REVIEW_WORKSPACE", other)
        r = cli("-C", root, "plan", "--no-color")
    assert r.code == 1 and "403" in r.err
    assert PR_KEY not in r.out + r.err
    assert "REVIEW_WORKSPACE" in r.err, r.err


# =========================================================================== bugs: PromptLayer reading


PL_CHAT = """\
type: chat
template_format: jinja2
versions:
  stable:
    messages:
      - {role: system, content: "You help {{ shop }}."}
      - {role: user, content: "{{ question }}"}
labels: {production: stable}
"""


def _plan_code(cli, root: Path) -> tuple[int, str]:
    r = cli("-C", root, "plan", "--no-color", "--detailed-exitcode")
    assert "Traceback" not in r.err
    return r.code, r.out + r.err


def test_bug_promptlayer_a_message_in_another_format_reads_as_equal(cli, tmp_path, monkeypatch):
    """A version made in PromptLayer's UI whose user message is f-string (the UI's default) while
    the system message is jinja2 is read as all-jinja2 (the first message's format). A file with
    both messages in jinja2 then reads as equal: plan says "No changes" although PromptLayer renders
    the user message ``{{ question }}`` as the literal ``{ question }``."""
    monkeypatch.setenv("REVIEW_KEY", PL_KEY)
    emu = pl_emulator()
    emu.seed("support/reply", {"type": "chat", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "You help {{ shop }}."}], "template_format": "jinja2"},
        {"role": "user", "content": [{"type": "text", "text": "{{ question }}"}], "template_format": "f-string"}]},
        release_labels=["production"])
    with emu.serve() as server:
        root = project(tmp_path, "promptlayer", server.url, {"prompts/support/reply.yaml": PL_CHAT})
        code, out = _plan_code(cli, root)
    assert code == 2 and "1 version to create" in out, out


def test_bug_promptlayer_a_parameter_called_name_is_dropped_and_reads_as_equal(cli, tmp_path, monkeypatch):
    """``metadata.model.parameters`` holding ``name`` (or ``provider``) is overwritten by the model's
    own name when read, so a version whose parameters differ from the file reads as equal."""
    monkeypatch.setenv("REVIEW_KEY", PL_KEY)
    emu = pl_emulator()
    emu.seed("summarize", {"type": "completion", "template_format": "jinja2",
                           "content": [{"type": "text", "text": "Summarize {{ article }}"}]},
             metadata={"model": {"provider": "openai", "name": "gpt-4o",
                                 "parameters": {"name": "assistant-bot", "temperature": 1}}},
             release_labels=["production"])
    with emu.serve() as server:
        root = project(tmp_path, "promptlayer", server.url, {"prompts/summarize.yaml": TEXT.replace(
            "labels:", "model: {provider: openai, name: gpt-4o, temperature: 1}\nlabels:")})
        code, out = _plan_code(cli, root)
    assert code == 2 and "1 version to create" in out, out


def test_bug_promptlayer_tool_choice_made_in_the_ui_reads_as_equal(cli, tmp_path, monkeypatch):
    """Template-level ``tool_choice`` (and ``function_call``/``functions``, an assistant's
    ``tool_calls``, a message ``name``) are dropped when read: a version forcing a tool call reads
    as equal to a file that does not."""
    monkeypatch.setenv("REVIEW_KEY", PL_KEY)
    emu = pl_emulator()
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    emu.seed("support/reply", {"type": "chat", "tools": tools, "tool_choice": "required", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "You help {{ shop }}."}], "template_format": "jinja2"},
        {"role": "user", "content": [{"type": "text", "text": "{{ question }}"}], "template_format": "jinja2"}]},
        release_labels=["production"])
    file = PL_CHAT.replace("labels:", "tools:\n  - " + json.dumps(tools[0]) + "\nlabels:")
    with emu.serve() as server:
        root = project(tmp_path, "promptlayer", server.url, {"prompts/support/reply.yaml": file})
        code, out = _plan_code(cli, root)
    assert code == 2 and "1 version to create" in out, out


def test_bug_promptlayer_an_image_block_reads_as_equal_to_its_marker_text(monkeypatch):
    """A non-text block is read as the text ``[type]``: a stored ``"look:" + image`` has the digest
    of a file whose template is the literal text ``look:[image_url]``."""
    monkeypatch.setenv("REVIEW_PL_KEY", PL_KEY)
    emu = pl_emulator()
    emu.seed("img", {"type": "completion", "template_format": "f-string", "content": [
        {"type": "text", "text": "look:"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]})
    target = Target("t", "promptlayer", base_url="http://pl.test", credentials={"api_key": "REVIEW_PL_KEY"})
    with PromptLayerProvider(target, transport=emu.transport(), sleep=lambda _s: None) as pl:
        (stored,) = pl.read(["img"]).prompts["img"].versions
    file = canonical_content(type="text", template_format="f-string", template="look:[image_url]")
    # the content is shown as near as promptops can; the digest, which plans compare, is its own
    assert stored.digest != content_digest(file)


def test_bug_promptlayer_a_long_version_key_loses_the_provenance_stamp(cli, tmp_path, monkeypatch):
    """Version keys may be 64 characters; past ~51 the 72-character commit message is cut inside
    the ``[promptops ...#key]`` trailer, so promptops's own version reads back as "made outside
    promptops" (plan, history), and README's "commit and version key kept whole" is false.
    Expected: either validate refuses such a key on a PromptLayer target, or the stamp survives."""
    monkeypatch.setenv("REVIEW_KEY", PL_KEY)
    key = "k" * 64
    file = f"type: text\ntemplate_format: jinja2\nversions:\n  {key}: {{template: 'Hi {{{{ x }}}}'}}\n" \
           f"labels: {{production: {key}}}\n"
    emu = pl_emulator()
    with emu.serve() as server:
        root = project(tmp_path, "promptlayer", server.url, {"prompts/p.yaml": file})
        if cli("-C", root, "validate").code == 1:
            return  # refused up front: fine
        assert cli("-C", root, "apply", "--auto-approve").code == 0
        r = cli("-C", root, "history", "p", "--no-color")
    assert "made outside promptops" not in r.out, r.out


# =========================================================================== bugs: apply


@pytest.mark.parametrize("provider", ["promptlayer", "promptrails"])
def test_bug_a_failed_apply_reports_a_label_move_it_made_as_not_applied(cli, tmp_path, monkeypatch, provider):
    """The label a create carried (PromptLayer ``release_labels``, PromptRails ``set_current``) moved
    with the create, but when a later create of the same prompt fails, the report lists that move
    under "Not applied" (design.md 5: print what was applied and what was not)."""
    make, key = EMULATORS[provider]
    monkeypatch.setenv("REVIEW_KEY", key)
    file = ("type: text\ntemplate_format: jinja2\nversions:\n  a: {template: 'A {{ x }}'}\n"
            "  b: {template: 'B {{ x }}'}\nlabels: {production: a}\n")
    emu = make()
    with emu.serve() as server:
        root = project(tmp_path, provider, server.url, {"prompts/p.yaml": file})
        create = r"^POST /rest/prompt-templates$" if provider == "promptlayer" else r"^POST /api/v1/prompts/[^/]+/versions$"
        seen: list[int] = []  # the first create passes (carrying production), the second is refused
        original = emu.route

        def route(request):
            if re.search(create, f"{request.method} {request.path}"):
                seen.append(1)
                if len(seen) == 2:
                    raise HttpError(422, {"message": "rejected"})
            return original(request)

        emu.route = route  # type: ignore[method-assign]
        r = cli("-C", root, "apply", "--auto-approve", "--no-color")
    assert r.code == 1, r.out + r.err
    current = (emu.labels("p") if provider == "promptlayer"
               else {"production": emu.current("p")["user_prompt"]})
    assert current == ({"production": 1} if provider == "promptlayer" else {"production": "A {{ x }}"})
    applied, not_applied = sections(r.err)
    assert "move label production to a" not in not_applied and "move label production to a" in applied, r.err


def test_bug_promptrails_concurrent_first_promotes_on_a_put_only_server_fail(cli, tmp_path, monkeypatch):
    """Against a server of the older API (promote is PUT only) the adapter tries POST, and on 405
    falls back to PUT and remembers it. Two prompts promoting at once race: the one whose 405
    arrives after the other switched the verb re-raises the 405 (``self._promote_verb != "POST"``)
    instead of retrying with PUT, so the apply fails on every first run with 2+ promotes."""
    monkeypatch.setenv("REVIEW_KEY", PR_KEY)
    emu = pr_emulator(promote_methods="PUT")
    file = ("type: text\ntemplate_format: jinja2\nversions:\n  a: {template: 'A%d {{ x }}'}\n"
            "  b: {template: 'B%d {{ x }}'}\nlabels: {production: a}\n")
    with emu.serve() as server:
        root = project(tmp_path, "promptrails", server.url, {"prompts/p1.yaml": file % (1, 1),
                                                             "prompts/p2.yaml": file % (2, 2)})
        assert cli("-C", root, "apply", "--auto-approve").code == 0  # set_current with the creates
        for i in (1, 2):
            write(root, f"prompts/p{i}.yaml", (file % (i, i)).replace("production: a", "production: b"))
        commit(root, "Promote b")
        # the first POST /promote is answered (405) a little later than the second one
        emu.faults.delay(1.0, 1, match=r"^POST /api/v1/prompts/[^/]+/versions/[^/]+/promote$")
        r = cli("-C", root, "apply", "--auto-approve", "--no-color")
    assert r.code == 0, r.err
    assert emu.current("p1")["user_prompt"].startswith("B1") and emu.current("p2")["user_prompt"].startswith("B2")


# =========================================================================== verified behaviour (passing)


def test_promptrails_every_envelope_variant_with_lost_answers_converges_without_duplicates(cli, tmp_path,
                                                                                        monkeypatch):
    monkeypatch.setenv("REVIEW_KEY", PR_KEY)
    emu = pr_emulator(envelope="meta", errors="nested", promote_methods="PUT")
    file = ("type: text\ntemplate_format: jinja2\ndescription: d%d\nversions:\n  a: {template: 'A%d {{ x }}'}\n"
            "  b: {template: 'B%d {{ x }}'}\nlabels: {production: a}\n")
    with emu.serve() as server:
        root = project(tmp_path, "promptrails", server.url,
                       {f"prompts/team/p{i}.yaml": file % (i, i, i) for i in range(3)})
        emu.faults.drop_next(1, after=True, match=r"^POST /api/v1/prompts$")
        emu.faults.drop_next(1, after=True, match=r"^POST /api/v1/prompts/[^/]+/versions$")
        emu.faults.fail_next(1, 500, match="^PATCH")
        emu.faults.fail_next(1, 422, match=r"^POST /api/v1/prompts/[^/]+/versions$")
        r = cli("-C", root, "apply", "--auto-approve", "--no-color")
        if r.code != 0:
            # the injected 422 is a refusal: promptops says to change what it names, then apply again
            assert "Traceback" not in r.err
            assert "Run `promptops apply` again" in r.err or "The platform refused the request (422)" in r.err
            r = cli("-C", root, "apply", "--auto-approve", "--no-color")
        assert r.code == 0, r.err
        assert cli("-C", root, "plan", "--detailed-exitcode").code == 0
    for i in range(3):
        versions = emu.versions(f"team/p{i}")
        assert len(versions) == 2
        assert emu.current(f"team/p{i}")["user_prompt"] == f"A{i} {{{{ x }}}}"
        assert emu.prompt(f"team/p{i}")["description"] == f"d{i}"


def test_promptlayer_a_saved_plan_is_refused_after_a_label_moved_outside(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_KEY", PL_KEY)
    emu = pl_emulator()
    with emu.serve() as server:
        root = project(tmp_path, "promptlayer", server.url, {"prompts/support/reply.yaml": PL_CHAT})
        assert cli("-C", root, "apply", "--auto-approve").code == 0
        write(root, "prompts/support/reply.yaml", PL_CHAT.replace("You help", "You gladly help"))
        commit(root, "Reword")
        assert cli("-C", root, "plan", "-o", tmp_path / "p.plan").code == 0
        emu.seed("support/reply", {"type": "chat", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hotfix"}]}]}, release_labels=["production"])
        r = cli("-C", root, "apply", tmp_path / "p.plan", "--no-color")
        assert r.code == 1 and "plan is stale" in r.err, r.err
        assert len(emu.versions("support/reply")) == 2
        assert cli("-C", root, "apply", "--auto-approve").code == 0
    assert emu.labels("support/reply") == {"production": 3}
    assert len(emu.versions("support/reply")) == 3


def test_prune_warns_on_promptlayer_and_deletes_on_promptrails(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_KEY", PL_KEY)
    emu = pl_emulator()
    emu.seed("orphan", "made in the UI")
    with emu.serve() as server:
        root = project(tmp_path, "promptlayer", server.url, {"prompts/summarize.yaml": TEXT})
        r = cli("-C", root, "apply", "--auto-approve", "--prune", "--no-color")
        assert r.code == 0, r.err
        assert "cannot delete" in r.out + r.err and "orphan" in r.out + r.err
    assert sorted(emu.names()) == ["orphan", "summarize"]

    monkeypatch.setenv("REVIEW_KEY", PR_KEY)
    emu2 = pr_emulator()
    emu2.seed("orphan", "made in the UI")
    with emu2.serve() as server:
        root = project(tmp_path / "pr", "promptrails", server.url, {"prompts/summarize.yaml": TEXT})
        r = cli("-C", root, "apply", "--auto-approve", "--no-color")
        assert r.code == 0 and "orphan" in r.out + r.err  # kept without --prune, and said so
        assert sorted(emu2.names()) == ["orphan", "summarize"]
        r = cli("-C", root, "apply", "--auto-approve", "--prune", "--no-color")
        assert r.code == 0 and "1 prompt deleted" in r.out, r.out + r.err
    assert emu2.names() == ["summarize"]


def test_a_wrong_key_names_the_variable_on_both_providers(cli, tmp_path, monkeypatch):
    for provider, (make, key) in EMULATORS.items():
        emu = make()
        with emu.serve() as server:
            root = project(tmp_path / provider, provider, server.url, {"prompts/summarize.yaml": TEXT})
            monkeypatch.setenv("REVIEW_KEY", key[:3] + "_wrong_value_731")
            r = cli("-C", root, "plan", "--no-color")
        assert r.code == 1 and "401" in r.err and "REVIEW_KEY" in r.err, r.err
        assert "wrong_value_731" not in r.out + r.err and "Traceback" not in r.err


def test_bug_promptlayer_resolve_ignores_an_ab_release_the_platform_serves(cli, tmp_path, monkeypatch):
    """Arguable (design choice): with an A/B release on ``production`` (set in PromptLayer's web
    app), ``promptops resolve`` answers "no traffic split: every user gets this version" although
    the platform serves some users another version. The API says which version a user gets
    (``POST /prompt-templates/{id}`` with ``label`` and ``metadata_filters``, providers-api.md 1.7),
    so resolve could ask it (``Capabilities.server_resolve``), as it does on PromptLab."""
    monkeypatch.setenv("REVIEW_KEY", PL_KEY)
    file = "type: text\ntemplate_format: jinja2\nversions:\n  a: {template: 'A'}\n  b: {template: 'B'}\n" \
           "labels: {production: a, staging: b}\n"
    emu = pl_emulator()
    with emu.serve() as server:
        root = project(tmp_path, "promptlayer", server.url, {"prompts/p.yaml": file})
        assert cli("-C", root, "apply", "--auto-approve").code == 0
        emu.set_ab_release("p", "production", {1: 50, 2: 50})
        wrong = []
        for user in (f"user-{i}" for i in range(8)):
            r = cli("-C", root, "resolve", "p", "--user", user, "--json")
            assert r.code == 0, r.err
            served = emu.ab_version("p", "production", {"user_id": user})
            if json.loads(r.out)["remote_version"] != str(served):
                wrong.append((user, served, r.out))
    assert wrong == []
