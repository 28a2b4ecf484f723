"""Rendering of plans: exact text, markdown and JSON output (promptops.render)."""
from __future__ import annotations

import json
import re

import pytest

from promptops.digest import canonical_content, content_digest
from promptops.model import (
    CreateVersion,
    DeletePrompt,
    MoveLabel,
    Plan,
    RemoveLabel,
    SetTraffic,
    UpdateMetadata,
    VersionRef,
)
from promptops.render import NO_CHANGES, render_json, render_markdown, render_text, summary_line, visible

ANSI = re.compile(r"\x1b\[[0-9;]*m")


# --------------------------------------------------------------------------- plan builders


def text(template, **kw):
    return canonical_content(type="text", template_format=kw.pop("template_format", "mustache"), template=template, **kw)


def chat(*messages, **kw):
    return canonical_content(type="chat", template_format=kw.pop("template_format", "mustache"),
                             messages=list(messages), **kw)


def create(prompt, version, content, *, base=None, base_content=None, new_prompt=False):
    return CreateVersion(prompt=prompt, version=version, digest=content_digest(content), content=content,
                         path=f"prompts/{prompt}.yaml", new_prompt=new_prompt, base=base, base_content=base_content)


def snap(versions=(), outside=(), labels=None, traffic=None):
    return {"versions": {v: "sha256:" + "0" * 64 for v in versions}, "outside_promptops": list(outside),
            "labels": labels or {}, "traffic": traffic or {}, "tags": [], "description": None}


def plan(*actions, remote=None, warnings=(), commit="3f2c1ab" + "0" * 33, dirty=False):
    return Plan(target="local", provider="local", actions=tuple(actions), remote=remote or {},
                warnings=tuple(warnings), commit=commit, dirty=dirty)


def text_change(old, new):
    """One text prompt whose template changes from ``old`` to ``new``."""
    return plan(create("summarizer", "default", text(new), base=VersionRef("2", "default"), base_content=text(old)),
                remote={"summarizer": snap(["2"])})


STABLE = chat({"role": "system", "content": "You are a helpful checkout assistant.\nLocale: {{locale}}.\n"},
              {"role": "user", "content": "Cart: {{cart}}"}, model={"name": "gpt-4o", "temperature": 0.3})
CONCISE = chat({"role": "system", "content": "Be brief.\nLocale: {{locale}}.\n"},
               {"role": "user", "content": "Cart: {{cart_value}}"}, model={"name": "gpt-4o", "temperature": 0.1})


def main_plan(**kw):
    """create + move + traffic on one chat prompt."""
    return plan(
        create("checkout-assistant", "concise", CONCISE, base=VersionRef("3", "stable"), base_content=STABLE),
        MoveLabel(prompt="checkout-assistant", label="staging", from_=VersionRef("3", "stable"),
                  to=VersionRef(None, "concise")),
        SetTraffic(prompt="checkout-assistant", label="production", from_={"stable": 100},
                   to={"stable": 90, "concise": 10}, to_remote={"stable": "3", "concise": None}),
        remote={"checkout-assistant": snap(["1", "2", "3"], labels={"production": "3", "staging": "3"},
                                           traffic={"production": {"3": 100}})}, **kw)


def new_prompt_plan():
    """A prompt that does not exist remotely: whole template added, labels from nowhere."""
    content = text("Summarize the following article in 3 bullet points:\n\n{{article}}",
                   model={"name": "gpt-4o-mini", "response_format": {"type": "text"}})
    return plan(
        create("summarizer", "default", content, new_prompt=True),
        MoveLabel(prompt="summarizer", label="production", from_=None, to=VersionRef(None, "default")),
        MoveLabel(prompt="summarizer", label="staging", from_=None, to=VersionRef(None, "default")),
        UpdateMetadata(prompt="summarizer", from_=None, to={"tags": ["news"], "description": None}),
        remote={"summarizer": None})


def other_kinds_plan():
    """remove_label, update_metadata, delete_prompt, a split removed, outside-promptops markers."""
    return plan(
        MoveLabel(prompt="greeter", label="production", from_=VersionRef("2", None), to=VersionRef("4", "warm")),
        RemoveLabel(prompt="greeter", label="beta", from_=VersionRef("2", None)),
        SetTraffic(prompt="greeter", label="production", from_={"warm": 50, "remote:2": 50}, to=None),
        UpdateMetadata(prompt="greeter", from_={"tags": ["a"], "description": "x"},
                       to={"tags": ["a", "b"], "description": "y"}),
        DeletePrompt(prompt="legacy", versions=("1", "2", "3"), outside_promptops=True),
        DeletePrompt(prompt="old-faq", versions=("v1",)),
        remote={"greeter": snap(["2", "4"], outside=["2"], labels={"production": "2", "beta": "2"},
                                traffic={"production": {"4": 50, "2": 50}}),
                "legacy": snap(["1", "2", "3"], outside=["1", "2", "3"]),
                "old-faq": snap(["v1"])},
        warnings=["greeter: label 'canary' is no longer declared, but provider local cannot remove labels; "
                  "move it to another version or remove it in the platform's UI"])


def config_change_plan():
    """Same text; type, template_format, model and tools change; a placeholder adds a variable."""
    old = text("Hello {{name}}", model={"temperature": 0.3, "stop": ["\n\n"], "extra": {"seed": 1, "top_k": 5}},
               tools=[{"name": "lookup", "parameters": {"type": "object"}}])
    new = chat({"role": "system", "content": "Hello {{name}}"}, {"placeholder": "history"},
               template_format="jinja2", model={"temperature": 0.1, "top_p": 0.9, "extra": {"seed": 2, "top_k": 5}},
               tools=[{"name": "search", "parameters": {"type": "object"}}])
    return plan(create("greeter", "chatty", new, base=VersionRef("7", "plain"), base_content=old),
                remote={"greeter": snap(["7"], outside=["7"])})


ALL_PLANS = {
    "main": main_plan,
    "new_prompt": new_prompt_plan,
    "other_kinds": other_kinds_plan,
    "config_change": config_change_plan,
    "crlf": lambda: text_change("Hello {{name}}\r\nBye\r\n", "Hello {{name}}\nBye\n"),
    "no_changes": lambda: plan(warnings=["a warning"]),
}


# --------------------------------------------------------------------------- text: main cases

MAIN_TEXT = r"""
promptops plan for target "local" (provider: local)

Actions are indicated with the following symbols:
  + create
  ~ update in-place (current -> planned)

promptops will perform the following actions:

  # checkout-assistant will be updated
  + version "concise" (sha256:098bd6b2930f)
      ~ messages:
          --- v3 (stable)
          +++ concise (new)
          @@ -1,5 +1,5 @@
           [system]
          -You are a helpful checkout assistant.
          +Be brief.
           Locale: {{locale}}.
           [user]
          -Cart: {{cart}}
          \ No newline at end of message
          +Cart: {{cart_value}}
          \ No newline at end of message
      + variable {{cart_value}}
      - variable {{cart}}
      ~ model.temperature: 0.3 -> 0.1
  ~ label "staging": v3 (stable) -> (new) concise
  ~ traffic "production": stable 100% -> stable 90%, concise 10%

Plan: 1 version to create, 1 label to move, 1 traffic split to change, 0 prompts to delete.
"""[1:]


def test_create_move_traffic_text():
    assert render_text(main_plan()) == MAIN_TEXT


def test_new_prompt_text():
    assert render_text(new_prompt_plan()) == r"""
promptops plan for target "local" (provider: local)

Actions are indicated with the following symbols:
  + create
  ~ update in-place (current -> planned)

promptops will perform the following actions:

  # summarizer will be created
  + version "default" (sha256:905765a0fe8d)
      + template:
          +++ default (new)
          @@ -0,0 +1,3 @@
          +Summarize the following article in 3 bullet points:
          +
          +{{article}}
          \ No newline at end of template
      + variable {{article}}
      + model.name: "gpt-4o-mini"
      + model.response_format.type: "text"
  ~ label "production": (none) -> (new) default
  ~ label "staging": (none) -> (new) default
  ~ tags: [] -> [news]

Plan: 1 version to create, 2 labels to move, 0 traffic splits to change, 1 metadata update, 0 prompts to delete.
"""[1:]


def test_remove_metadata_delete_outside_and_warning_text():
    assert render_text(other_kinds_plan()) == r"""
promptops plan for target "local" (provider: local)

Actions are indicated with the following symbols:
  ~ update in-place (current -> planned)
  - destroy

promptops will perform the following actions:

  # greeter will be updated
  ~ label "production": v2 (made outside promptops) -> v4 (warm)
  - label "beta": v2 (made outside promptops)
  ~ traffic "production": warm 50%, v2 50% -> (no split)
  ~ tags: [a] -> [a, b]
  ~ description: "x" -> "y"

  # legacy will be deleted
  # (because no file declares it for target "local")
  - prompt and its 3 versions (v1, v2, v3) (made outside promptops)

  # old-faq will be deleted
  # (because no file declares it for target "local")
  - prompt and its 1 version (v1)

Warning: greeter: label 'canary' is no longer declared, but provider local
  cannot remove labels; move it to another version or remove it in the
  platform's UI

Plan: 0 versions to create, 1 label to move, 1 label to remove, 1 traffic split to change, 1 metadata update, 2 prompts to delete.
"""[1:]


def test_type_model_tools_and_placeholder_changes_text():
    assert render_text(config_change_plan()) == r"""
promptops plan for target "local" (provider: local)

Actions are indicated with the following symbols:
  + create

promptops will perform the following actions:

  # greeter will be updated
  + version "chatty" (sha256:927791028f8a)
      ~ type: text -> chat
      ~ template_format: mustache -> jinja2
      ~ messages:
          --- v7 (plain, made outside promptops)
          +++ chatty (new)
          @@ -1 +1,3 @@
          +[system]
           Hello {{name}}
          +[placeholder: history]
      + variable {{history}}
      ~ model.extra.seed: 1 -> 2
      - model.stop: ["\n\n"]
      ~ model.temperature: 0.3 -> 0.1
      + model.top_p: 0.9
      ~ tools:
          @@ -1,6 +1,6 @@
           [
             {
          -    "name": "lookup",
          +    "name": "search",
               "parameters": {
                 "type": "object"
               }

Plan: 1 version to create, 0 labels to move, 0 traffic splits to change, 0 prompts to delete.
"""[1:]


def test_no_changes():
    assert render_text(plan()) == 'promptops plan for target "local" (provider: local)\n\n' + NO_CHANGES + "\n"
    assert summary_line(plan()) == "No changes. Remote matches the files."


def test_no_changes_still_prints_warnings():
    assert render_text(plan(warnings=["a warning", "another\nsecond line"])) == r"""
promptops plan for target "local" (provider: local)

Warning: a warning
Warning: another
  second line

No changes. Remote matches the files.
"""[1:]


def test_warnings_wrap_at_width():
    out = render_text(plan(warnings=["one two three four five six"]), width=20)
    assert "Warning: one two\n  three four five\n  six\n" in out


# --------------------------------------------------------------------------- text: whitespace made visible


def _diff_body(p: Plan) -> str:
    """The lines of the template diff after the hunk header."""
    lines = render_text(p).splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("@@")) + 1
    end = lines.index("", start)
    return "\n".join(lines[start:end]) + "\n"


def test_crlf_only_change_is_visible():
    assert _diff_body(text_change("Hello {{name}}\r\nBye\r\n", "Hello {{name}}\nBye\n")) == """\
          -Hello {{name}}␍
          -Bye␍
          +Hello {{name}}
          +Bye
"""


def test_full_text_of_a_whitespace_only_change():
    assert render_text(text_change("Hello {{name}}\nBye\n", "Hello {{name}}  \nBye\t\n")) == r"""
promptops plan for target "local" (provider: local)

Actions are indicated with the following symbols:
  + create

promptops will perform the following actions:

  # summarizer will be updated
  + version "default" (sha256:5e9aefeda8d5)
      ~ template:
          --- v2 (default)
          +++ default (new)
          @@ -1,2 +1,2 @@
          -Hello {{name}}
          -Bye
          +Hello {{name}}··
          +Bye→

Plan: 1 version to create, 0 labels to move, 0 traffic splits to change, 0 prompts to delete.
"""[1:]


def test_trailing_space_only_change_is_visible():
    assert _diff_body(text_change("Hello {{name}}\n", "Hello {{name}} \n")) == """\
          -Hello {{name}}
          +Hello {{name}}·
"""


def test_tab_and_zero_width_space_are_visible():
    assert _diff_body(text_change("a\tb\nHello {{name}}\n", "a    b\nHello\u200b {{name}}\n")) == """\
          -a→b
          -Hello {{name}}
          +a    b
          +Hello⟨U+200B⟩ {{name}}
"""


def test_nbsp_and_missing_final_newline_are_visible():
    old = "Hi\u00a0{{name}}\n1\n2\n3\n4\n5\n6\n7\n8\n"
    new = "Hi {{name}}\n1\n2\n3\n4\n5\n6\n7\n8"
    lines = render_text(text_change(old, new)).splitlines()
    start = lines.index("          --- v2 (default)")
    assert "\n".join(lines[start:start + 17]) + "\n" == r"""
          --- v2 (default)
          +++ default (new)
          @@ -1,4 +1,4 @@
          -Hi⟨U+00A0⟩{{name}}
          +Hi {{name}}
           1
           2
           3
          @@ -6,4 +6,4 @@
           5
           6
           7
          -8
          +8
          \ No newline at end of template

Plan: 1 version to create, 0 labels to move, 0 traffic splits to change, 0 prompts to delete.
"""[1:]


def test_context_lines_escape_invisibles_but_not_trailing_spaces():
    old = "keep\u200b  \nold\n"
    new = "keep\u200b  \nnew\n"
    assert _diff_body(text_change(old, new)) == """\
           keep⟨U+200B⟩
          -old
          +new
"""


def test_removed_final_newline_in_chat_message():
    old = chat({"role": "system", "content": "Be brief.\n"}, {"role": "user", "content": "{{q}}"})
    new = chat({"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{q}}"})
    p = plan(create("qa", "b", new, base=VersionRef("1", "a"), base_content=old), remote={"qa": snap(["1"])})
    assert _diff_body(p) == r"""
           [system]
          -Be brief.
          +Be brief.
          \ No newline at end of message
           [user]
           {{q}}
"""[1:]


def test_visible():
    assert visible("a\tb  ") == "a→b··"
    assert visible("a\tb  ", trailing=False) == "a→b  "
    assert visible("x\r") == "x␍"
    assert visible("x \r") == "x·␍"
    assert visible("\u200b\u200c\u200d\u2060\ufeff") == "⟨U+200B⟩⟨U+200C⟩⟨U+200D⟩⟨U+2060⟩⟨U+FEFF⟩"
    assert visible("a\u00a0b\u202fc\u2007d") == "a⟨U+00A0⟩b⟨U+202F⟩c⟨U+2007⟩d"
    assert visible("\u2003\u00ad\x0b") == "⟨U+2003⟩⟨U+00AD⟩⟨U+000B⟩"
    assert visible("two  \nlines ") == "two··\nlines·"
    assert visible("plain text, ünïcode ✓") == "plain text, ünïcode ✓"


# --------------------------------------------------------------------------- names and versions


def test_version_names():
    p = plan(
        MoveLabel(prompt="p", label="a", from_=VersionRef("1.0.0", "x"), to=VersionRef("v3", None)),
        MoveLabel(prompt="p", label="b", from_=VersionRef("12", None), to=VersionRef("5", "y")),
        remote={"p": snap(["1.0.0", "v3", "12", "5"], outside=["12"])})
    assert render_text(p).splitlines()[7:10] == [
        "  # p will be updated",
        '  ~ label "a": 1.0.0 (x) -> v3',
        '  ~ label "b": v12 (made outside promptops) -> v5 (y)',
    ]


def test_legend_lists_only_symbols_present():
    p = plan(RemoveLabel(prompt="p", label="beta", from_=VersionRef("2", "old")), remote={"p": snap(["2"])})
    assert render_text(p) == r"""
promptops plan for target "local" (provider: local)

Actions are indicated with the following symbols:
  - destroy

promptops will perform the following actions:

  # p will be updated
  - label "beta": v2 (old)

Plan: 0 versions to create, 0 labels to move, 1 label to remove, 0 traffic splits to change, 0 prompts to delete.
"""[1:]


# --------------------------------------------------------------------------- summary


def _n(kind, n):
    """n actions of one kind."""
    make = {
        "create_version": lambda i: create(f"p{i}", "v", text(f"t{i}")),
        "move_label": lambda i: MoveLabel(prompt="p", label=f"l{i}", from_=None, to=VersionRef("1", "v")),
        "remove_label": lambda i: RemoveLabel(prompt="p", label=f"l{i}", from_=VersionRef("1", "v")),
        "set_traffic": lambda i: SetTraffic(prompt="p", label=f"l{i}", from_=None, to={"v": 100}),
        "update_metadata": lambda i: UpdateMetadata(prompt=f"p{i}", from_=None, to={"tags": ["t"]}),
        "delete_prompt": lambda i: DeletePrompt(prompt=f"p{i}", versions=("1",)),
    }[kind]
    return [make(i) for i in range(n)]


@pytest.mark.parametrize("counts, expected", [
    ({"create_version": 1, "move_label": 2, "set_traffic": 1},
     "Plan: 1 version to create, 2 labels to move, 1 traffic split to change, 0 prompts to delete."),
    ({"create_version": 2, "move_label": 1, "set_traffic": 2, "delete_prompt": 1},
     "Plan: 2 versions to create, 1 label to move, 2 traffic splits to change, 1 prompt to delete."),
    ({"remove_label": 1},
     "Plan: 0 versions to create, 0 labels to move, 1 label to remove, 0 traffic splits to change, 0 prompts to delete."),
    ({"remove_label": 2, "update_metadata": 1, "delete_prompt": 2},
     "Plan: 0 versions to create, 0 labels to move, 2 labels to remove, 0 traffic splits to change, "
     "1 metadata update, 2 prompts to delete."),
    ({"update_metadata": 3},
     "Plan: 0 versions to create, 0 labels to move, 0 traffic splits to change, 3 metadata updates, "
     "0 prompts to delete."),
])
def test_summary_line(counts, expected):
    p = plan(*[a for kind, n in counts.items() for a in _n(kind, n)])
    assert summary_line(p) == expected
    assert render_text(p).endswith("\n\n" + expected + "\n")


# --------------------------------------------------------------------------- colour


@pytest.mark.parametrize("name", sorted(ALL_PLANS))
def test_no_color_has_no_ansi_and_color_only_adds_ansi(name):
    p = ALL_PLANS[name]()
    plain = render_text(p)
    colored = render_text(p, color=True)
    assert "\x1b" not in plain
    assert "\x1b[" in colored
    assert ANSI.sub("", colored) == plain


def test_color_choices():
    colored = render_text(main_plan(), color=True)
    assert "\x1b[1m  # checkout-assistant will be updated\x1b[0m" in colored
    assert "  \x1b[32m+\x1b[0m version" in colored
    assert "  \x1b[33m~\x1b[0m label" in colored
    assert "\x1b[31m          -Cart: {{cart}}\x1b[0m" in colored
    assert "\x1b[32m          +Cart: {{cart_value}}\x1b[0m" in colored
    assert "\x1b[1mPlan:\x1b[0m 1 version" in colored
    warned = render_text(plan(warnings=["w"]), color=True)
    assert "\x1b[33m\x1b[1mWarning:\x1b[0m" in warned


# --------------------------------------------------------------------------- markdown

MAIN_MARKDOWN = r"""
### promptops plan: `local` (local)

**Plan: 1 version to create, 1 label to move, 1 traffic split to change, 0 prompts to delete.**

Planned from commit 3f2c1ab000000000000000000000000000000000.

<details><summary><code>checkout-assistant</code> will be updated</summary>

```diff
+   version "concise" (sha256:098bd6b2930f)
!       messages:
          --- v3 (stable)
          +++ concise (new)
          @@ -1,5 +1,5 @@
           [system]
-          You are a helpful checkout assistant.
+          Be brief.
           Locale: {{locale}}.
           [user]
-          Cart: {{cart}}
          \ No newline at end of message
+          Cart: {{cart_value}}
          \ No newline at end of message
+       variable {{cart_value}}
-       variable {{cart}}
!       model.temperature: 0.3 -> 0.1
!   label "staging": v3 (stable) -> (new) concise
!   traffic "production": stable 100% -> stable 90%, concise 10%
```

</details>
"""[1:]


def test_markdown_main():
    assert render_markdown(main_plan()) == MAIN_MARKDOWN


def test_markdown_warnings_and_several_prompts():
    assert render_markdown(other_kinds_plan()) == r"""
### promptops plan: `local` (local)

**Plan: 0 versions to create, 1 label to move, 1 label to remove, 1 traffic split to change, 1 metadata update, 2 prompts to delete.**

Planned from commit 3f2c1ab000000000000000000000000000000000.

> [!WARNING]
> greeter: label 'canary' is no longer declared, but provider local cannot remove labels; move it to another version or remove it in the platform's UI

<details><summary><code>greeter</code> will be updated</summary>

```diff
!   label "production": v2 (made outside promptops) -> v4 (warm)
-   label "beta": v2 (made outside promptops)
!   traffic "production": warm 50%, v2 50% -> (no split)
!   tags: [a] -> [a, b]
!   description: "x" -> "y"
```

</details>

<details><summary><code>legacy</code> will be deleted</summary>

```diff
-   prompt and its 3 versions (v1, v2, v3) (made outside promptops)
```

</details>

<details><summary><code>old-faq</code> will be deleted</summary>

```diff
-   prompt and its 1 version (v1)
```

</details>
"""[1:]


def test_markdown_no_changes_with_warnings_and_dirty_tree():
    assert render_markdown(plan(warnings=["one", "two"], commit="abc1234", dirty=True)) == """\
### promptops plan: `local` (local)

**No changes. Remote matches the files.**

Planned from commit abc1234 with uncommitted changes.

> [!WARNING]
> - one
> - two
"""
    assert render_markdown(plan(commit=None)) == "### promptops plan: `local` (local)\n\n**" + NO_CHANGES + "**\n"


def test_markdown_fence_is_longer_than_backticks_in_content():
    p = plan(create("docs", "v", text("Use ```json fences\n````\n"), new_prompt=True), remote={"docs": None},
             commit=None)
    assert render_markdown(p) == """\
### promptops plan: `local` (local)

**Plan: 1 version to create, 0 labels to move, 0 traffic splits to change, 0 prompts to delete.**

<details><summary><code>docs</code> will be created</summary>

`````diff
+   version "v" (sha256:2419db240520)
+       template:
          +++ v (new)
          @@ -0,0 +1,2 @@
+          Use ```json fences
+          ````
`````

</details>
"""


def test_markdown_escapes_html_in_prompt_names():
    p = plan(DeletePrompt(prompt="a<b>&c", versions=("1",)), commit=None)
    assert "<summary><code>a&lt;b&gt;&amp;c</code> will be deleted</summary>" in render_markdown(p)


# --------------------------------------------------------------------------- JSON and round trip


def test_render_json_is_the_plan_json():
    p = main_plan()
    out = render_json(p)
    assert out.endswith("}\n")
    assert json.loads(out) == p.to_json()
    assert out == json.dumps(p.to_json(), indent=2, ensure_ascii=False) + "\n"


def test_render_json_keeps_unicode_as_is():
    p = plan(create("p", "v", text("Grüße\u200b"), new_prompt=True), remote={"p": None})
    assert "Grüße\u200b" in render_json(p)


@pytest.mark.parametrize("name", sorted(ALL_PLANS))
def test_saved_plan_renders_identically(name):
    p = ALL_PLANS[name]()
    loaded = Plan.from_json(json.loads(render_json(p)))
    assert render_text(loaded) == render_text(p)
    assert render_text(loaded, color=True) == render_text(p, color=True)
    assert render_markdown(loaded) == render_markdown(p)
    assert render_json(loaded) == render_json(p)


def test_a_label_move_of_a_composed_prompt_names_its_composers_in_text_markdown_and_json():
    move = MoveLabel(prompt="shared/tone", label="production", from_=VersionRef("1", "kind"),
                     to=VersionRef("2", "brief"), affects=("support/reply", "triage/classify"))
    p = plan(move, remote={"shared/tone": snap(["1", "2"], labels={"production": "1"})})
    out = render_text(p)
    assert ('  ~ label "production": v1 (kind) -> v2 (brief)\n'
            "      # affects: support/reply, triage/classify\n") in out
    assert "!   label \"production\": v1 (kind) -> v2 (brief)\n      # affects: support/reply, triage/classify\n" in (
        render_markdown(p))
    assert json.loads(render_json(p))["actions"][0]["affects"] == ["support/reply", "triage/classify"]
    # without composers nothing is added
    bare = plan(MoveLabel(prompt="shared/tone", label="production", from_=VersionRef("1", "kind"),
                          to=VersionRef("2", "brief")), remote={"shared/tone": snap(["1", "2"])})
    assert "affects" not in render_text(bare)
