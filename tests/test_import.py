"""``promptops import`` (issue 6): prompt files from what a target holds, such that ``plan`` right
after shows no changes.

The YAML emission is checked as a property: any data (awkward strings: CRLF, tabs, trailing
spaces, control and invisible characters, unicode, leading and trailing newlines, empty strings,
in keys too) is written as YAML that promptops' own loader reads back exactly, and any contents a
local registry holds import into files whose versions have the remote digests and plan clean.
The rest drives the real CLI on real files against the local registry (a SQLite file), with the
remote state made through the provider's create calls (stamped or, for "made outside
promptops", not) and past it (SQL on the registry's tables).
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import write
from promptops.config import Target, load_config
from promptops.digest import canonical_content, content_digest
from promptops.importer import NotImportable, dump_yaml, import_prompts
from promptops.model import RemotePrompt, RemoteVersion
from promptops.plan import build_plan
from promptops.prompts import load_project
from promptops.providers.base import NewVersion
from promptops.providers.local import LocalProvider
from promptops.provenance import stamp
from promptops.yamlload import load_yaml

LOCAL = Target("local", "local")


def text(template: str, fmt: str = "mustache", **kw) -> dict:
    return canonical_content(type="text", template_format=fmt, template=template, **kw)


def chat(*messages, fmt: str = "mustache", **kw) -> dict:
    """(role, content) pairs; a bare string is a placeholder."""
    return canonical_content(type="chat", template_format=fmt, messages=[
        {"placeholder": m} if isinstance(m, str) else {"role": m[0], "content": m[1]} for m in messages], **kw)


def registry(root: Path) -> LocalProvider:
    return LocalProvider(root / ".promptops" / "registry.db")


def put(root: Path, name: str, content: dict, key: str | None = "v", labels: dict | None = None) -> str:
    """Create a version in the project's registry: stamped with local key ``key``, or made outside
    promptops (``key=None``); ``labels`` are moved onto it. Its remote id."""
    provenance = None if key is None else stamp("3f2c1ab" * 5 + "abcde", "Import test", False,
                                                 f"prompts/{name}.yaml", key)
    with registry(root) as reg:
        rid = reg.create_version(NewVersion(name, content, content_digest(content), provenance))
        for label in labels or ():
            reg.move_label(name, label, rid)
    return rid


def sql(root: Path, statement: str, params: tuple = ()) -> None:
    conn = sqlite3.connect(root / ".promptops" / "registry.db")
    with conn:
        conn.execute(statement, params)
    conn.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project: no promptops.yaml (one local target), an empty prompts folder."""
    root = tmp_path / "project"
    (root / "prompts").mkdir(parents=True)
    return root


def run_import(cli, root: Path, *args: str):
    return cli("-C", root, "import", "--no-color", *args)


def assert_clean(cli, root: Path, target: str = "local") -> None:
    r = cli("-C", root, "validate")
    assert r.code == 0, r.out + r.err
    r = cli("-C", root, "plan", "-t", target, "--no-color", "--detailed-exitcode")
    assert r.code == 0, r.out + r.err
    assert r.out.splitlines()[-1] == "No changes. Remote matches the files."


def loaded(root: Path, rel: str) -> dict:
    return yaml.safe_load((root / rel).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- YAML emission, as properties

# Awkward text: any character a str can hold but a lone surrogate (controls included), and pieces
# that trouble YAML or the eye.
PIECES = ("\r\n", "\n", "\r", "\t", " ", "  \n", "\n\n", "\u200b", "\u00a0", "\ufeff", "\u2028", "\u2029", "\x85",
          "\u202e", "\x00", "\x1b", "\x7f", "e\u0301", "😀", "日本語", "\\", '"', "'", "#", ": ", " #", "- ", "? ",
          "&a", "*a", "!tag", "%", "@", "`", "|", ">", "{", "}", "[", "]", ",", "---", "...", "null", "~", "true",
          "no", "0x1F", "1e3", "1.0", "012", ".inf", "2024-05-01", "<<", "=")
CHARS = st.characters(blacklist_categories=("Cs",))
awkward = st.lists(st.one_of(st.text(CHARS, max_size=6), st.sampled_from(PIECES)), max_size=8).map("".join)
floats = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70), floats, awkward)
json_data = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(awkward, inner, max_size=3)), max_leaves=12)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(awkward, json_data, max_size=4))
def test_any_data_is_written_as_yaml_that_reads_back_exactly(data):
    out = dump_yaml(data)
    back = load_yaml(out.encode("utf-8"), "x")
    assert back.diagnostics == []
    assert json.dumps(back.data, sort_keys=True) == json.dumps(data or {}, sort_keys=True) or (data == {} and
                                                                                                 back.data is None)


@settings(max_examples=300, deadline=None, database=None)
@given(awkward)
def test_strings_read_back_byte_exact_in_every_position(s):
    data = {"template": s, "messages": [{"role": "user", "content": s}], "model": {s: [s]}, "labels": [s]}
    back = load_yaml(dump_yaml(data).encode("utf-8"), "x").data
    assert back == data
    assert back["template"].encode("utf-8") == s.encode("utf-8")


@pytest.mark.parametrize("value, shown", [
    ("Line one\nline two\n", "|\n  Line one\n  line two\n"),                 # literal block, readable
    ("Summarize:\n\n{{article}}", "|-\n  Summarize:\n\n  {{article}}\n"),   # no final newline: |-
    ("trailing  \nspace", '"trailing  \\n\\\n  space"'),                     # invisible at line end: quoted
    ("crlf\r\nline", '"crlf\\r\\n\\\n  line"'),                               # CR shown as \r
    ("tab\there", '"tab\\there"'),
    ("zero\u200bwidth", '"zero\\u200Bwidth"'),
    ("nbsp\u00a0", '"nbsp\\_"'),
    ("", "''"),
    ("yes", "'yes'"),                                                        # would read as a boolean
    ("Grüße 😀", "Grüße 😀"),                                                  # unicode as itself
    ("\n  indented", "|2-\n\n    indented\n"),                          # leading spaces: indentation indicator
])
def test_strings_are_written_readably_and_whitespace_is_made_visible(value, shown):
    out = dump_yaml({"template": value})
    assert out == f"template: {shown}" + ("" if shown.endswith("\n") else "\n")
    assert load_yaml(out.encode(), "x").data == {"template": value}


def test_what_yaml_cannot_read_back_is_not_importable(monkeypatch):
    import promptops.importer as importer

    monkeypatch.setattr(importer, "_reload", lambda text: None)
    with pytest.raises(NotImportable, match="cannot be written as YAML that reads back the same"):
        dump_yaml({"template": "x"})


# --------------------------------------------------------------------------- any registry content imports clean

VARIABLE = {"mustache": "{{name}}", "jinja2": "{{ name }}", "f-string": "{name}"}
# text without braces (they make templates), awkward otherwise; a variable in each template's syntax
plain = st.lists(st.one_of(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="{}%#"),
                                   max_size=6),
                           st.sampled_from([p for p in PIECES if p not in "{}%#"])), max_size=6).map("".join)
model_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10 ** 6, 10 ** 6), floats, plain),
                            lambda inner: st.one_of(st.lists(inner, max_size=2),
                                                    st.dictionaries(plain, inner, max_size=2)), max_leaves=6)
models = st.one_of(st.just({}), st.fixed_dictionaries(
    {"name": st.sampled_from(["gpt-4o", "claude-3-5-sonnet"])},
    optional={"temperature": st.sampled_from([0, 0.3, 1.0, 2]), "seed": st.integers(0, 9),
              "response_format": model_values}))
tool_lists = st.one_of(st.just([]), st.lists(st.fixed_dictionaries(
    {"type": st.just("function"), "function": st.fixed_dictionaries({"name": st.sampled_from(["lookup", "search"]),
                                                                      "parameters": model_values})}), max_size=2))


@st.composite
def contents(draw) -> list[dict]:
    """1-4 distinct contents of one type and template format (a file declares one of each)."""
    fmt = draw(st.sampled_from(sorted(VARIABLE)))
    ptype = draw(st.sampled_from(["text", "chat"]))
    same_model = draw(st.booleans())
    shared = draw(models), draw(tool_lists)
    out: dict[str, dict] = {}
    for _ in range(draw(st.integers(1, 4))):
        model, tools = shared if same_model else (draw(models), draw(tool_lists))
        body = draw(plain) + VARIABLE[fmt] + draw(plain)
        if ptype == "text":
            c = text(body, fmt, model=model, tools=tools)
        else:
            messages = [("system", draw(plain))] + (["history"] if draw(st.booleans()) else []) + [("user", body)]
            c = chat(*messages, fmt=fmt, model=model, tools=tools)
        out[content_digest(c)] = c
    return list(out.values())


@settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(contents(), st.data())
def test_any_registry_contents_import_into_files_that_plan_clean(tmp_path_factory, cs, data):
    root = tmp_path_factory.mktemp("prop")
    (root / "prompts").mkdir()
    name = "support/prop"
    ids = [put(root, name, c, key=data.draw(st.sampled_from([None, f"k{i}", "k0"]), label=f"key {i}"))
           for i, c in enumerate(cs)]
    labels = data.draw(st.dictionaries(st.sampled_from(["production", "staging", "canary"]), st.sampled_from(ids),
                                       max_size=3), label="labels")
    with registry(root) as reg:
        for label, rid in labels.items():
            reg.move_label(name, label, rid)
        if "production" in labels and len(ids) > 1 and data.draw(st.booleans(), label="split"):
            split = data.draw(st.lists(st.sampled_from(ids), min_size=2, max_size=3, unique=True), label="split")
            weights = [100 // len(split)] * len(split)
            weights[0] += 100 - sum(weights)
            reg.set_traffic(name, "production", dict(zip(split, weights)))
        remote = reg.read([name]).prompts[name]

    config, _ = load_config(root)
    with registry(root) as reg:
        result = import_prompts(config, LOCAL, reg)
    assert [o.error for o in result.outcomes] == [None]
    project = load_project(root)
    assert project.errors == []
    (spec,) = project.specs
    digests = {v.digest for v in spec.versions.values()}
    live = set(remote.labels.values()) | {r for s in remote.traffic.values() for r in s} or {ids[-1]}
    assert digests == {remote.version(r).digest for r in live}
    plan = build_plan(project.specs, reg.read(None), LOCAL)
    assert plan.actions == ()


# --------------------------------------------------------------------------- the command, end to end


def test_import_writes_a_file_per_prompt_and_plan_shows_no_changes(cli, project):
    put(project, "support/reply", chat(("system", "You help with {{product}}.\r\n"), "history",
                                       ("user", "{{question}}  "), model={"name": "gpt-4o", "temperature": 0.3}),
        key="stable", labels=["production"])
    put(project, "support/reply", chat(("system", "Be brief."), ("user", "{{question}}"),
                                       model={"name": "gpt-4o", "temperature": 0.1}),
        key="concise", labels=["staging"])
    put(project, "summarize", text("Summarize:\n\n{{article}}\n"), key="default", labels=["production"])
    r = run_import(cli, project)
    assert r.code == 0, r.out + r.err
    assert r.out.splitlines() == [
        "wrote prompts/summarize.yaml: 1 version (v1), 1 label (production)",
        "wrote prompts/support/reply.yaml: 2 versions (stable = v1, concise = v2), 2 labels (production, staging)",
        "",
        "Import complete! 2 prompts imported.",
        f"Run `promptops -C {project} plan -t local`: it shows no changes for the imported prompts.",
    ]
    assert r.err == 'Importing from target "local" (local)...\n\n'
    assert_clean(cli, project)
    reply = loaded(project, "prompts/support/reply.yaml")
    assert reply["versions"]["stable"]["messages"] == [
        {"role": "system", "content": "You help with {{product}}.\r\n"}, {"placeholder": "history"},
        {"role": "user", "content": "{{question}}  "}]
    assert reply["labels"] == {"production": "stable", "staging": "concise"}
    assert reply["versions"]["stable"]["model"] == {"name": "gpt-4o", "temperature": 0.3}  # models differ: per version
    assert "model" not in reply
    text_ = (project / "prompts/summarize.yaml").read_text()
    assert text_.startswith('# Imported by `promptops import` from target "local" (local) at ')
    assert text_.splitlines()[1:] == ["# Version: remote v1.", "type: text", "template: |", "  Summarize:", "",
                                      "  {{article}}", "labels: [production]"]


def test_the_header_names_the_target_the_time_and_the_remote_versions(project):
    put(project, "p", text("A {{x}}"), key="a", labels=["production"])
    put(project, "p", text("B {{x}}"), key=None, labels=["staging"])
    config, _ = load_config(project)
    with registry(project) as reg:
        import_prompts(config, LOCAL, reg, now=datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc))
    lines = (project / "prompts/p.yaml").read_text().splitlines()
    assert lines[:2] == ['# Imported by `promptops import` from target "local" (local) at 2024-05-01T12:00:00Z.',
                         "# Versions: a = remote v1; v2 = remote v2, made outside promptops."]


def test_one_model_config_and_tools_for_every_version_are_written_once_on_the_prompt(cli, project):
    model, tools = {"name": "gpt-4o", "temperature": 0.2}, [{"type": "function", "function": {"name": "f"}}]
    put(project, "p", text("A {{x}}", model=model, tools=tools), key="a", labels=["production"])
    put(project, "p", text("B {{x}}", model=model, tools=tools), key="b", labels=["staging"])
    put(project, "q", text("A {{x}}", model=model), key="a", labels=["production"])
    put(project, "q", text("B {{x}}"), key="b", labels=["staging"])  # no model: a file cannot hoist it
    assert run_import(cli, project).code == 0
    p, q = loaded(project, "prompts/p.yaml"), loaded(project, "prompts/q.yaml")
    assert (p["model"], p["tools"]) == (model, tools)
    assert p["versions"] == {"a": {"template": "A {{x}}"}, "b": {"template": "B {{x}}"}}
    assert "model" not in q and q["versions"] == {"a": {"template": "A {{x}}", "model": model},
                                                  "b": {"template": "B {{x}}"}}
    assert_clean(cli, project)


def test_names_select_prompts_and_an_unknown_name_is_an_error_naming_close_ones(cli, project):
    put(project, "support/reply", text("Hi {{x}}"), labels=["production"])
    put(project, "summarize", text("Sum {{x}}"), labels=["production"])
    r = run_import(cli, project, "summarize", "suport/reply")
    assert r.code == 1, r.out + r.err
    assert "Error: prompt 'suport/reply' does not exist on target 'local' (local); did you mean 'support/reply'?" \
        in r.err
    assert "Import incomplete: 1 prompt imported, 1 not imported (see the errors above)." in r.out
    assert sorted(p.name for p in (project / "prompts").rglob("*.yaml")) == ["summarize.yaml"]
    r = run_import(cli, project, "support/reply")
    assert r.code == 0, r.out + r.err
    assert (project / "prompts/support/reply.yaml").is_file()
    assert_clean(cli, project)


def test_an_existing_file_is_never_overwritten_without_force(cli, project):
    put(project, "p", text("Remote {{x}}"), labels=["production"])
    mine = write(project, "prompts/p.yaml", "template: Mine\nlabels: [production]\n")
    r = run_import(cli, project)
    assert r.code == 1, r.out + r.err
    assert r.err.splitlines()[-1] == ("Error: p: not imported: prompts/p.yaml already declares prompt 'p' "
                                      "(--force overwrites it with what the target holds)")
    assert mine.read_text() == "template: Mine\nlabels: [production]\n"
    assert "Import incomplete: 0 prompts imported, 1 not imported (see the errors above)." in r.out
    r = run_import(cli, project, "--force")
    assert r.code == 0, r.out + r.err
    assert "wrote prompts/p.yaml (replaced): " in r.out
    assert loaded(project, "prompts/p.yaml")["template"] == "Remote {{x}}"
    assert_clean(cli, project)


def test_a_file_elsewhere_that_declares_the_name_is_refused_and_with_force_rewritten_in_place(cli, project):
    put(project, "p", text("Remote {{x}}"), labels=["production"])
    write(project, "prompts/team/mine.yml", "name: p\ntemplate: Mine\nlabels: [production]\n")
    r = run_import(cli, project)
    assert r.code == 1
    assert "prompts/team/mine.yml already declares prompt 'p'" in r.err
    assert not (project / "prompts/p.yaml").exists()
    r = run_import(cli, project, "--force")
    assert r.code == 0, r.out + r.err
    assert "wrote prompts/team/mine.yml (replaced): " in r.out
    data = loaded(project, "prompts/team/mine.yml")
    assert (data["name"], data["template"]) == ("p", "Remote {{x}}")
    assert not (project / "prompts/p.yaml").exists()
    assert_clean(cli, project)


def test_a_file_at_the_path_that_declares_another_prompt_is_never_overwritten(cli, project):
    put(project, "p", text("Remote {{x}}"), labels=["production"])
    write(project, "prompts/p.yaml", "name: other\ntemplate: Other\n")
    for args in ((), ("--force",)):
        r = run_import(cli, project, *args)
        assert r.code == 1
        assert ("Error: p: not imported: prompts/p.yaml exists and declares prompt 'other'; --force never "
                "overwrites another prompt's file: move or rename it first") in r.err
        assert loaded(project, "prompts/p.yaml") == {"name": "other", "template": "Other"}


def test_a_broken_file_at_the_path_is_kept_without_force_and_replaced_with_it(cli, project):
    put(project, "p", text("Remote {{x}}"), labels=["production"])
    write(project, "prompts/p.yaml", "name: [unclosed\n")
    r = run_import(cli, project)
    assert r.code == 1 and "Error: p: not imported: prompts/p.yaml exists (--force overwrites it)" in r.err
    assert run_import(cli, project, "--force").code == 0
    assert_clean(cli, project)


def test_one_prompt_refused_does_not_stop_the_others(cli, project):
    put(project, "a", text("A {{x}}"), labels=["production"])
    put(project, "b", text("B {{x}}"), labels=["production"])
    write(project, "prompts/a.yaml", "template: Mine\n")
    r = run_import(cli, project)
    assert r.code == 1
    assert "wrote prompts/b.yaml: " in r.out and "Error: a: not imported:" in r.err
    assert "Import incomplete: 1 prompt imported, 1 not imported (see the errors above)." in r.out


def test_dry_run_checks_everything_and_writes_nothing(cli, project):
    put(project, "support/reply", text("Hi {{x}}"), labels=["production"])
    r = run_import(cli, project, "--dry-run")
    assert r.code == 0, r.out + r.err
    assert r.out.splitlines() == ["would write prompts/support/reply.yaml: 1 version (v1), 1 label (production)", "",
                                  "Dry run: 1 prompt would be imported; nothing was written."]
    assert list((project / "prompts").iterdir()) == []


def test_a_version_made_outside_promptops_gets_a_key_from_its_remote_id(cli, project):
    put(project, "p", text("A {{x}}"), key="a", labels=["production", "staging"])
    put(project, "p", text("B {{x}}"), key=None, labels=["production"])
    r = run_import(cli, project)
    assert r.code == 0, r.out + r.err
    assert "2 versions (a = v1, v2 = v2 (made outside promptops))" in r.out
    assert loaded(project, "prompts/p.yaml")["labels"] == {"production": "v2", "staging": "a"}
    assert_clean(cli, project)


def test_live_versions_stamped_with_the_same_key_get_unique_keys(cli, project):
    put(project, "p", text("A {{x}}"), key="a", labels=["production", "staging"])
    put(project, "p", text("A2 {{x}}"), key="a", labels=["production"])  # an edit of a; staging left behind
    assert run_import(cli, project).code == 0
    data = loaded(project, "prompts/p.yaml")
    assert data["versions"] == {"a-v1": {"template": "A {{x}}"}, "a": {"template": "A2 {{x}}"}}  # newest keeps "a"
    assert data["labels"] == {"production": "a", "staging": "a-v1"}
    assert_clean(cli, project)


def test_remote_versions_with_the_same_content_are_one_version_in_the_file(cli, project):
    put(project, "p", text("A {{x}}"), key=None, labels=["staging"])
    put(project, "p", text("A {{x}}"), key=None, labels=["production"])
    assert run_import(cli, project).code == 0
    data = loaded(project, "prompts/p.yaml")
    assert (data["template"], data["labels"]) == ("A {{x}}", ["production", "staging"])
    assert_clean(cli, project)


def test_a_prompt_no_label_points_at_is_imported_as_its_newest_version_without_labels(cli, project):
    put(project, "p", text("Old {{x}}"))
    put(project, "p", text("New {{x}}"), key=None)
    r = run_import(cli, project)
    assert r.code == 0, r.out + r.err
    assert ("wrote prompts/p.yaml: 1 version (v2 (made outside promptops)); no label or traffic split points at a "
            "version, so this is the newest, with no labels") in r.out
    data = loaded(project, "prompts/p.yaml")
    assert data == {"type": "text", "template": "New {{x}}"}
    assert "# No label or traffic split points at a version" in (project / "prompts/p.yaml").read_text()
    assert_clean(cli, project)


def test_traffic_splits_are_imported_with_their_label(cli, project):
    for key, body in (("a", "A {{x}}"), ("b", "B {{x}}"), ("c", "C {{x}}")):
        put(project, "p", text(body), key=key)
    with registry(project) as reg:
        reg.move_label("p", "production", "1")
        reg.set_traffic("p", "production", {"1": 80, "3": 20})
    assert run_import(cli, project).code == 0
    data = loaded(project, "prompts/p.yaml")
    assert list(data["versions"]) == ["a", "c"]
    assert (data["labels"], data["traffic"]) == ({"production": "a"}, {"production": {"a": 80, "c": 20}})
    assert "traffic:\n  production: {a: 80, c: 20}\n" in (project / "prompts/p.yaml").read_text()
    assert_clean(cli, project)


def test_a_split_without_its_label_is_not_importable_on_a_many_label_target(cli, project):
    put(project, "p", text("A {{x}}"))
    put(project, "p", text("B {{x}}"))
    with registry(project) as reg:
        reg.set_traffic("p", "production", {"1": 50, "2": 50})
    r = run_import(cli, project)
    assert r.code == 1
    assert ("Error: p: not imported: label 'production' has a traffic split but does not point at a version "
            "itself") in r.err
    assert list((project / "prompts").iterdir()) == []


def test_labels_the_target_does_not_manage_are_left_out(cli, project):
    write(project, "promptops.yaml", "targets:\n  local: {provider: local, labels: [production]}\n")
    put(project, "p", text("A {{x}}"), key="a", labels=["production"])
    put(project, "p", text("B {{x}}"), key="b", labels=["staging"])
    assert run_import(cli, project).code == 0
    data = loaded(project, "prompts/p.yaml")
    assert (data["template"], data["labels"]) == ("A {{x}}", ["production"])
    assert_clean(cli, project)


def test_tags_and_description_are_imported_where_the_provider_stores_them(cli, project):
    put(project, "p", text("A {{x}}"), labels=["production"])
    with registry(project) as reg:
        reg.update_metadata("p", ["support", "b-team"], "Greets\na customer")
    assert run_import(cli, project).code == 0
    data = loaded(project, "prompts/p.yaml")
    assert (data["tags"], data["description"]) == (["b-team", "support"], "Greets\na customer")
    assert_clean(cli, project)


def test_a_prompt_another_target_cannot_hold_is_kept_to_this_target(cli, project, monkeypatch):
    write(project, "promptops.yaml", "default_target: local\ntargets:\n  local: {provider: local}\n"
                                     "  lab: {provider: promptlab, base_url: 'http://127.0.0.1:9', "
                                     "credentials: {api_key: '${PL_API_KEY}'}}\n")
    put(project, "assist", chat(("system", "You help."), ("user", "{{q}}")), labels=["production"])
    put(project, "plain", text("Hi {{x}}"), labels=["production"])
    r = run_import(cli, project)
    assert r.code == 0, r.out + r.err
    assert loaded(project, "prompts/assist.yaml")["targets"] == ["local"]  # PromptLab has no chat prompts
    assert "targets" not in loaded(project, "prompts/plain.yaml")
    assert_clean(cli, project)


def test_a_name_the_file_format_cannot_hold_is_not_importable(cli, project):
    put(project, "bad name", text("A {{x}}"), labels=["production"])
    put(project, "good", text("A {{x}}"), labels=["production"])
    r = run_import(cli, project)
    assert r.code == 1
    assert 'Error: bad name: not imported: its name "bad name" is not a valid prompt name in the file format' in r.err
    assert sorted(p.name for p in (project / "prompts").iterdir()) == ["good.yaml"]


def test_a_name_too_long_for_a_file_name_gets_a_short_path_and_says_its_name(cli, project):
    name = "n" * 255
    put(project, name, text("A {{x}}"), labels=["production"])
    r = run_import(cli, project)
    assert r.code == 0, r.out + r.err
    (path,) = (project / "prompts").iterdir()
    assert len(path.name) < 255 and path.name.startswith("n" * 200 + "-")
    assert yaml.safe_load(path.read_text())["name"] == name
    assert_clean(cli, project)


def test_content_that_would_not_validate_is_not_importable_and_nothing_is_written(cli, project):
    put(project, "broken", text("Hello {{name"), labels=["production"])  # an unclosed mustache tag
    r = run_import(cli, project)
    assert r.code == 1
    assert "Error: broken: not imported: the file would not validate: mustache template:" in r.err
    assert list((project / "prompts").iterdir()) == []
    assert "Traceback" not in r.err


def test_a_split_of_versions_with_the_same_content_is_not_importable(cli, project):
    put(project, "p", text("A {{x}}"), key="a", labels=["production"])
    put(project, "p", text("A {{x}}"), key=None)
    with registry(project) as reg:
        reg.set_traffic("p", "production", {"1": 50, "2": 50})
    r = run_import(cli, project)
    assert r.code == 1
    assert ("Error: p: not imported: the traffic split of 'production' names versions with the same content "
            "(v1, v2), which a file cannot tell apart") in r.err


def test_an_empty_target_imports_nothing_and_succeeds(cli, project):
    r = run_import(cli, project)
    assert (r.code, r.out) == (0, 'Target "local" (local) holds no prompts; nothing to import.\n')


def test_an_unknown_target_is_an_error(cli, project):
    r = run_import(cli, project, "-t", "prod")
    assert r.code == 1
    assert r.err.startswith("Error: unknown target 'prod'")


def test_import_creates_the_prompts_folder(cli, tmp_path):
    root = tmp_path / "fresh"
    root.mkdir()
    write(root, "promptops.yaml", "prompts: src/prompts\n")
    put(root, "p", text("A {{x}}"), labels=["production"])
    r = run_import(cli, root)
    assert r.code == 0, r.out + r.err
    assert "wrote src/prompts/p.yaml: " in r.out
    assert_clean(cli, root)


def test_import_never_leaves_temporary_files(cli, project):
    for i in range(3):
        put(project, f"p{i}", text(f"P{i} {{{{x}}}}"), labels=["production"])
    assert run_import(cli, project).code == 0
    assert sorted(p.name for p in (project / "prompts").iterdir()) == ["p0.yaml", "p1.yaml", "p2.yaml"]


def test_help_lists_import(cli):
    r = cli("import", "--help")
    assert r.code == 0
    assert "--force" in r.out and "--dry-run" in r.out and "-t, --target TARGET" in r.out


# a remote prompt read by another provider may hold a digest of its own (content promptops never
# writes): reported, not written
def test_a_version_with_a_digest_of_its_own_is_not_importable(tmp_path):
    from promptops.importer import draft_prompt

    content = text("One Two")
    remote = RemotePrompt("blocks", versions=(RemoteVersion("1", "sha256:" + "0" * 64, content),),
                          labels={"production": "1"})
    with pytest.raises(NotImportable, match="version v1 holds what a prompt file cannot express"):
        draft_prompt(remote, LOCAL)

