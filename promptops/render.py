"""Render a :class:`~promptops.model.Plan` as terminal text, PR-comment markdown or JSON.

Pure: no I/O. The renderers read only the ``Plan`` (which round-trips through its JSON), so
``promptops show PLANFILE`` prints exactly what ``promptops plan`` printed.

Text layout (terraform's, adapted to prompts)::

    promptops plan for target "local" (provider: local)

    Actions are indicated with the following symbols:
      + create
      ~ update in-place (current -> planned)

    promptops will perform the following actions:

      # checkout-assistant will be updated
      + version "concise" (sha256:0123456789ab)
          ~ messages:
              --- v3 (stable)
              +++ concise (new)
              ...
      ~ label "staging": v3 (stable) -> (new) concise

    Plan: 1 version to create, 1 label to move, 0 traffic splits to change, 0 prompts to delete.

Every line is first built as a :class:`_Line` (indent, marker, body); the text renderer prints
``indent + marker + body`` and the markdown renderer moves the marker to column 0 (``~`` as ``!``)
the way Atlantis does, so GitHub colours a ``diff`` fence.
"""
from __future__ import annotations

import difflib
import html
import json
import re
import textwrap
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import click

from .digest import short_digest
from .model import (
    Action,
    CreateVersion,
    DeletePrompt,
    MoveLabel,
    Plan,
    RemoveLabel,
    SetTraffic,
    UpdateMetadata,
    VersionRef,
)
from .templates import analyze

__all__ = ["NO_CHANGES", "render_json", "render_markdown", "render_text", "summary_line", "visible"]

NO_CHANGES = "No changes. Remote matches the files."
OUTSIDE = "made outside promptops"

_CONTEXT = 3          # unified-diff context lines, as git and difflib default
_ACTION_INDENT = 2    # the 4-wide symbol column: "  + "
_DETAIL_INDENT = 6    # lines under an action
_DIFF_INDENT = 10     # diff lines under a detail line ("~ messages:", "~ tools:")

# symbol -> legend line, in terraform's legend order (create, update, delete)
_LEGEND = (
    ("+", "  + create"),
    ("~", "  ~ update in-place (current -> planned)"),
    ("-", "  - destroy"),
)
_SYMBOL = {
    "create_version": "+",
    "move_label": "~",
    "remove_label": "-",
    "set_traffic": "~",
    "update_metadata": "~",
    "delete_prompt": "-",
}


# --------------------------------------------------------------------------- whitespace


# Invisible characters that are not in Unicode categories Cf/Zs but render as nothing
# (combining grapheme joiner, Hangul fillers): used to hide text, so escape them too.
_EXTRA_INVISIBLE = frozenset("\u034f\u115f\u1160\u3164\uffa0")
_TRAILING = re.compile(r"[ \t\r]*\Z")


def _char(ch: str) -> str:
    """One character as displayed: tab and CR as symbols, invisible characters as escapes."""
    if ch == "\t":
        return "→"
    if ch == "\r":
        return "␍"
    if ch == " " or ch == "\n":
        return ch
    if ch in _EXTRA_INVISIBLE or unicodedata.category(ch) in ("Cf", "Zs", "Zl", "Zp", "Cc"):
        return f"⟨U+{ord(ch):04X}⟩"
    return ch


def visible(text: str, *, trailing: bool = True) -> str:
    """Return ``text`` with whitespace made visible, for one line of a diff.

    - a tab anywhere becomes ``→`` and a carriage return (the CR of CRLF) ``␍``;
    - zero-width, non-breaking and other invisible characters (Unicode categories Cf, Zs other
      than the ASCII space, Zl, Zp, control characters) become escapes such as ``⟨U+200B⟩``;
    - with ``trailing`` (the default; used for added and removed lines), spaces at the end of a
      line become ``·``, so a change that only adds or removes trailing spaces stays visible.

    Line feeds are kept as they are; pass lines without their LF to render one diff line.
    """
    out = []
    for segment in text.split("\n"):
        tail = _TRAILING.search(segment)
        start = tail.start() if tail else len(segment)
        body = "".join(_char(c) for c in segment[:start])
        end = "".join("·" if (c == " " and trailing) else _char(c) for c in segment[start:])
        out.append(body + end)
    return "\n".join(out)


def esc(text: str) -> str:
    """A name or single-line value: invisible characters escaped, spaces left alone."""
    return visible(text, trailing=False)


# --------------------------------------------------------------------------- line model


@dataclass(frozen=True)
class _Line:
    """One output line. ``marker`` is ``+ - ~`` (an action or detail symbol, followed by a space
    in ``body``), ``" "`` for a diff context line, or ``""``. ``whole`` colours the whole line
    (diff lines) instead of just the marker."""

    indent: int
    marker: str
    body: str
    style: str = ""
    whole: bool = False

    def text(self) -> str:
        return (" " * self.indent + self.marker + self.body).rstrip()

    def markdown(self) -> str:
        marker = "!" if self.marker == "~" else self.marker
        return (marker + " " * self.indent + self.body).rstrip()


_MARKER_STYLE = {"+": "add", "-": "remove", "~": "change"}
_STYLES: dict[str, dict[str, Any]] = {
    "add": {"fg": "green"},
    "remove": {"fg": "red"},
    "change": {"fg": "yellow"},
    "bold": {"bold": True},
    "meta": {"bold": True},
    "hunk": {"fg": "cyan"},
    "dim": {"dim": True},
    "warning": {"fg": "yellow"},
}


def _paint(text: str, style: str, color: bool) -> str:
    if not color or not style or not text:
        return text
    return click.style(text, **_STYLES[style])


def _paint_line(line: _Line, color: bool) -> str:
    text = line.text()
    if not color:
        return text
    if line.whole or line.style in ("bold", "meta", "hunk", "dim"):
        return _paint(text, line.style, color)
    if line.marker in _MARKER_STYLE:
        return " " * line.indent + _paint(line.marker, _MARKER_STYLE[line.marker], color) + text[line.indent + 1 :]
    return text


def _item(indent: int, marker: str, body: str) -> _Line:
    """An action or detail line: ``<marker> <body>``."""
    return _Line(indent, marker, " " + body)


# --------------------------------------------------------------------------- names and values


def version_label(remote_id: str) -> str:
    """How a remote version id is shown everywhere: ``3`` -> ``v3``; ids that are not all digits
    ("v3", "1.0.0") are shown as they are (with invisible characters escaped)."""
    return f"v{remote_id}" if re.fullmatch(r"[0-9]+", remote_id) else esc(remote_id)


def _ref(ref: VersionRef | None, outside: frozenset[str]) -> str:
    """``v3 (stable)``, ``v2 (made outside promptops)``, ``(new) concise`` or ``(none)``."""
    if ref is None or (ref.remote_version is None and ref.version is None):
        return "(none)"
    if ref.remote_version is None:
        return f"(new) {esc(str(ref.version))}"
    notes = [esc(ref.version)] if ref.version else []
    if ref.remote_version in outside:
        notes.append(OUTSIDE)
    shown = version_label(ref.remote_version)
    return f"{shown} ({', '.join(notes)})" if notes else shown


def _outside(plan: Plan, prompt: str) -> frozenset[str]:
    """Remote version ids of ``prompt`` that promptops did not create (from the plan's snapshot)."""
    snapshot = plan.remote.get(prompt) if isinstance(plan.remote, Mapping) else None
    if not isinstance(snapshot, Mapping):
        return frozenset()
    return frozenset(str(v) for v in snapshot.get("outside_promptops") or ())


def _split(weights: Mapping[str, int] | None) -> str:
    """``stable 90%, concise 10%``; ``(no split)`` for None or empty."""
    if not weights:
        return "(no split)"
    shown = []
    for name, weight in weights.items():
        label = version_label(name[len("remote:") :]) if name.startswith("remote:") else esc(name)
        shown.append(f"{label} {weight}%")
    return ", ".join(shown)


def remote_split(weights: Mapping[str, int] | None) -> str:
    """A split keyed by remote version ids: ``v1 90%, v2 10%``; ``(no split)`` for None."""
    return _split({f"remote:{v}": w for v, w in weights.items()} if weights else None)


def _compact(value: Any) -> str:
    """A value on one line, as JSON (``0.3``, ``"x"``, ``["\\n\\n", "END"]``)."""
    return esc(json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": ")))


def _metadata_value(key: str, value: Any) -> str:
    if key == "tags":
        return "[" + ", ".join(esc(str(t)) for t in (value or ())) + "]"
    if value is None:
        return "(none)"
    return _compact(value)


def plural(n: int, noun: str, many: str | None = None) -> str:
    """``1 version``, ``2 versions`` (``many`` for irregular plurals)."""
    return f"{n} {noun if n == 1 else (many or noun + 's')}"


# --------------------------------------------------------------------------- content diff


def _split_lines(text: str) -> list[str]:
    """Split on LF only, keeping it: a CR stays in its line, so CRLF and LF lines differ."""
    if not text:
        return []
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _content_lines(content: Mapping[str, Any]) -> tuple[list[str], str]:
    """The diffable line form of a version's content and what a line without LF is the end of.

    Text prompts: the template. Chat prompts: each message as a line ``[role]`` followed by its
    content; a placeholder as a line ``[placeholder: name]``.
    """
    if "messages" not in content:
        return _split_lines(str(content.get("template", ""))), "template"
    lines: list[str] = []
    for message in content.get("messages") or ():
        if "placeholder" in message:
            lines.append(f"[placeholder: {message['placeholder']}]\n")
        else:
            lines.append(f"[{message.get('role', '')}]\n")
            lines.extend(_split_lines(str(message.get("content", ""))))
    return lines, "message"


def _range(start: int, stop: int) -> str:
    """A unified-diff hunk range, as difflib and git write it."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start if length == 0 else start + 1},{length}"


def _changed(indent: int, marker: str, line: str, noun: str) -> list[_Line]:
    style = "add" if marker == "+" else "remove"
    out = [_Line(indent, marker, visible(line[:-1] if line.endswith("\n") else line), style, whole=True)]
    if not line.endswith("\n"):
        out.append(_Line(indent, "", f"\\ No newline at end of {noun}", "dim"))
    return out


def _diff(
    old: Sequence[str],
    new: Sequence[str],
    *,
    indent: int,
    nouns: tuple[str, str] = ("template", "template"),
    headers: tuple[str | None, str] | None = None,
) -> list[_Line]:
    """A unified diff (3 lines of context) of two line lists, whitespace made visible."""
    out: list[_Line] = []
    if headers is not None:
        if headers[0] is not None:
            out.append(_Line(indent, "", f"--- {headers[0]}", "meta"))
        out.append(_Line(indent, "", f"+++ {headers[1]}", "meta"))
    matcher = difflib.SequenceMatcher(None, list(old), list(new), autojunk=False)
    for group in matcher.get_grouped_opcodes(_CONTEXT):
        first, last = group[0], group[-1]
        hunk = f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@"
        out.append(_Line(indent, "", hunk, "hunk"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for line in old[i1:i2]:
                    out.append(_Line(indent, " ", visible(line.rstrip("\n"), trailing=False)))
                continue
            for line in old[i1:i2]:
                out.extend(_changed(indent, "-", line, nouns[0]))
            for line in new[j1:j2]:
                out.extend(_changed(indent, "+", line, nouns[1]))
    return out


def _variables(content: Mapping[str, Any]) -> set[str]:
    """Variables a version uses: from every template or message, plus placeholder names."""
    fmt = str(content.get("template_format", "mustache"))
    texts: list[str] = []
    names: set[str] = set()
    if "messages" in content:
        for message in content.get("messages") or ():
            if "placeholder" in message:
                names.add(str(message["placeholder"]))
            else:
                texts.append(str(message.get("content", "")))
    else:
        texts.append(str(content.get("template", "")))
    for text in texts:
        names.update(analyze(text, fmt).variables)
    return names


def _flatten(value: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"model.a.b": 1}``; lists and empty objects stay whole."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}.{key}"
        if isinstance(item, Mapping) and item:
            out.update(_flatten(item, name))
        else:
            out[name] = item
    return out


def _tools_lines(tools: Any) -> list[str]:
    return _split_lines(json.dumps(tools, ensure_ascii=False, sort_keys=True, indent=2) + "\n")


def _content_diff(action: CreateVersion, outside: frozenset[str]) -> list[_Line]:
    """``~ messages:`` / ``+ template:`` and the unified diff against the base (all lines added
    when there is no base); nothing when the template or messages are unchanged."""
    new_lines, new_noun = _content_lines(action.content)
    field = "messages" if "messages" in action.content else "template"
    new_header = f"{esc(action.version)} (new)"
    if action.base_content is None:
        if not new_lines:
            return []
        diff = _diff([], new_lines, indent=_DIFF_INDENT, nouns=(new_noun, new_noun), headers=(None, new_header))
        return [_item(_DETAIL_INDENT, "+", f"{field}:"), *diff]
    old_lines, old_noun = _content_lines(action.base_content)
    if old_lines == new_lines:
        return []
    headers = (_ref(action.base, outside), new_header)
    diff = _diff(old_lines, new_lines, indent=_DIFF_INDENT, nouns=(old_noun, new_noun), headers=headers)
    return [_item(_DETAIL_INDENT, "~", f"{field}:"), *diff]


def _variable_changes(base: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[_Line]:
    old_vars = _variables(base) if base is not None else set()
    new_vars = _variables(new)
    added = [_item(_DETAIL_INDENT, "+", f"variable {{{{{esc(v)}}}}}") for v in sorted(new_vars - old_vars)]
    removed = [_item(_DETAIL_INDENT, "-", f"variable {{{{{esc(v)}}}}}") for v in sorted(old_vars - new_vars)]
    return added + removed


def _model_changes(base: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[_Line]:
    old = _flatten(base.get("model") or {}, "model") if base is not None else {}
    now = _flatten(new.get("model") or {}, "model")
    out = []
    for key in sorted(set(old) | set(now)):
        if key not in old:
            out.append(_item(_DETAIL_INDENT, "+", f"{key}: {_compact(now[key])}"))
        elif key not in now:
            out.append(_item(_DETAIL_INDENT, "-", f"{key}: {_compact(old[key])}"))
        elif old[key] != now[key]:
            out.append(_item(_DETAIL_INDENT, "~", f"{key}: {_compact(old[key])} -> {_compact(now[key])}"))
    return out


def _tools_changes(base: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[_Line]:
    old_tools = list(base.get("tools") or []) if base is not None else []
    new_tools = list(new.get("tools") or [])
    if old_tools == new_tools:
        return []
    old_json = _tools_lines(old_tools) if base is not None else []
    return [_item(_DETAIL_INDENT, "+" if base is None else "~", "tools:"),
            *_diff(old_json, _tools_lines(new_tools), indent=_DIFF_INDENT)]


def _create_version(action: CreateVersion, outside: frozenset[str]) -> list[_Line]:
    """``+ version "key" (sha256:…)`` then what differs from the base version: type and format,
    template or messages, variables, model config, tools."""
    base, new = action.base_content, action.content
    out = [_item(_ACTION_INDENT, "+", f'version "{esc(action.version)}" (sha256:{short_digest(action.digest)})')]
    out += _affects(action.affects)
    if base is not None:
        out += [_item(_DETAIL_INDENT, "~", f"{key}: {base.get(key)} -> {new.get(key)}")
                for key in ("type", "template_format") if base.get(key) != new.get(key)]
    out += _content_diff(action, outside)
    out += _variable_changes(base, new)
    out += _model_changes(base, new)
    out += _tools_changes(base, new)
    return out


def _affects(names: Iterable[str]) -> list[_Line]:
    """``# affects: a, b`` under an action that changes what the prompts composing it serve."""
    names = list(names)
    return [_Line(_DETAIL_INDENT, "", "# affects: " + ", ".join(esc(n) for n in names), "dim")] if names else []


def _update_metadata(action: UpdateMetadata) -> list[_Line]:
    before = action.from_ or {}
    keys = [k for k in ("tags", "description") if k in action.to]
    keys += sorted(k for k in action.to if k not in ("tags", "description"))
    out = []
    for key in keys:
        old, new = before.get(key), action.to[key]
        if old == new or (key == "tags" and list(old or ()) == list(new or ())):
            continue
        out.append(_item(_ACTION_INDENT, "~", f"{key}: {_metadata_value(key, old)} -> {_metadata_value(key, new)}"))
    return out


def _delete_prompt(action: DeletePrompt) -> list[_Line]:
    versions = [version_label(str(v)) for v in action.versions]
    body = "prompt"
    if versions:
        body += f" and its {plural(len(versions), 'version')} ({', '.join(versions)})"
    if action.outside_promptops:
        body += f" ({OUTSIDE})"
    return [_item(_ACTION_INDENT, "-", body)]


def _action_lines(action: Action, outside: frozenset[str]) -> list[_Line]:
    a = _ACTION_INDENT
    if isinstance(action, CreateVersion):
        return _create_version(action, outside)
    if isinstance(action, MoveLabel):
        body = f'label "{esc(action.label)}": {_ref(action.from_, outside)} -> {_ref(action.to, outside)}'
        return [_item(a, "~", body), *_affects(action.affects)]
    if isinstance(action, RemoveLabel):
        return [_item(a, "-", f'label "{esc(action.label)}": {_ref(action.from_, outside)}')]
    if isinstance(action, SetTraffic):
        return [_item(a, "~", f'traffic "{esc(action.label)}": {_split(action.from_)} -> {_split(action.to)}')]
    if isinstance(action, UpdateMetadata):
        return _update_metadata(action)
    if isinstance(action, DeletePrompt):
        return _delete_prompt(action)
    raise TypeError(f"unknown action {action!r}")


# --------------------------------------------------------------------------- per prompt


def _by_prompt(plan: Plan) -> list[tuple[str, list[Action]]]:
    """Actions grouped by prompt, prompts in the order they first appear (the plan's order)."""
    groups: dict[str, list[Action]] = {}
    for action in plan.actions:
        groups.setdefault(action.prompt, []).append(action)
    return list(groups.items())


def _state(actions: Iterable[Action]) -> str:
    actions = list(actions)
    if any(isinstance(a, DeletePrompt) for a in actions):
        return "will be deleted"
    if any(isinstance(a, CreateVersion) and a.new_prompt for a in actions):
        return "will be created"
    return "will be updated"


def _prompt_lines(plan: Plan, prompt: str, actions: list[Action]) -> list[_Line]:
    outside = _outside(plan, prompt)
    out: list[_Line] = []
    for action in actions:
        out.extend(_action_lines(action, outside))
    return out


# --------------------------------------------------------------------------- public API


def summary_line(plan: Plan) -> str:
    """``Plan: 1 version to create, 2 labels to move, 1 traffic split to change, 0 prompts to
    delete.`` (label removals and metadata updates inserted only when non-zero), or the
    no-changes line."""
    if not plan.has_changes:
        return NO_CHANGES
    n = plan.summary
    parts = [
        plural(n["create_version"], "version") + " to create",
        plural(n["move_label"], "label") + " to move",
    ]
    if n["remove_label"]:
        parts.append(plural(n["remove_label"], "label") + " to remove")
    parts.append(plural(n["set_traffic"], "traffic split") + " to change")
    if n["update_metadata"]:
        parts.append(plural(n["update_metadata"], "metadata update"))
    parts.append(plural(n["delete_prompt"], "prompt") + " to delete")
    return "Plan: " + ", ".join(parts) + "."


def _warning_lines(warning: str, width: int) -> list[str]:
    lines: list[str] = []
    for i, paragraph in enumerate(warning.splitlines() or [""]):
        first = "Warning: " if i == 0 else "  "
        if width >= 20:
            wrapped = textwrap.wrap(
                paragraph, width=width, initial_indent=first, subsequent_indent="  ",
                break_long_words=False, break_on_hyphens=False,
            )
        else:
            wrapped = []
        lines.extend(wrapped or [first + paragraph])
    return lines


def render_text(plan: Plan, *, color: bool = False, width: int = 80) -> str:
    """The terminal plan (terraform layout). ANSI colours only when ``color``; ``width`` wraps
    warnings (content and diff lines are never wrapped)."""
    header = f'promptops plan for target "{esc(plan.target)}" (provider: {esc(plan.provider)})'
    out = [_paint(header, "bold", color), ""]
    if plan.has_changes:
        present = {_SYMBOL[a.kind] for a in plan.actions}
        out.append("Actions are indicated with the following symbols:")
        for symbol, text in _LEGEND:
            if symbol in present:
                out.append("  " + _paint(symbol, _MARKER_STYLE[symbol], color) + text[3:])
        out.append("")
        out.append("promptops will perform the following actions:")
        for prompt, actions in _by_prompt(plan):
            out.append("")
            out.append(_paint(f"  # {esc(prompt)} {_state(actions)}", "bold", color))
            if any(isinstance(a, DeletePrompt) for a in actions):  # terraform gives the reason too
                out.append(f'  # (because no file declares it for target "{esc(plan.target)}")')
            out.extend(_paint_line(line, color) for line in _prompt_lines(plan, prompt, actions))
        out.append("")
    if plan.warnings:
        for warning in plan.warnings:
            for i, line in enumerate(_warning_lines(_esc_block(warning), width)):
                if i == 0 and color:  # "Warning:" bold, the rest of the block yellow
                    rest = line[len("Warning:") :]
                    line = click.style("Warning:", fg="yellow", bold=True) + _paint(rest, "warning", color)
                else:
                    line = _paint(line, "warning", color)
                out.append(line)
        out.append("")
    summary = summary_line(plan)
    if color and summary.startswith("Plan:"):
        summary = click.style("Plan:", bold=True) + summary[len("Plan:") :]
    out.append(summary)
    return "\n".join(out) + "\n"


def _esc_block(text: str) -> str:
    """Escape invisible characters in free text, keeping its line breaks."""
    return "\n".join(esc(line) for line in text.split("\n"))


def _fence(lines: Iterable[str]) -> str:
    """A backtick fence longer than any backtick run in ``lines`` (at least three)."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def render_markdown(plan: Plan) -> str:
    """The plan as a PR comment / job summary: heading, bold summary, warnings, then one
    collapsed ``<details>`` per prompt holding a ``diff`` fence (markers in column 0, ``~`` as
    ``!``, so GitHub colours them)."""
    out = [f"### promptops plan: `{plan.target}` ({plan.provider})", "", f"**{summary_line(plan)}**"]
    if plan.commit:
        # a bare sha: GitHub links it to the commit
        out += ["", f"Planned from commit {plan.commit}" + (" with uncommitted changes." if plan.dirty else ".")]
    if plan.warnings:
        out += ["", "> [!WARNING]"]
        if len(plan.warnings) == 1:
            out += [("> " + line).rstrip() for line in _esc_block(plan.warnings[0]).split("\n")]
        else:
            for warning in plan.warnings:
                first, *rest = _esc_block(warning).split("\n")
                out.append(f"> - {first}")
                out += [("> " + ("  " + line if line else "")).rstrip() for line in rest]
    for prompt, actions in _by_prompt(plan):
        body = [line.markdown() for line in _prompt_lines(plan, prompt, actions)]
        fence = _fence(body)
        out += [
            "",
            f"<details><summary><code>{html.escape(esc(prompt))}</code> {_state(actions)}</summary>",
            "",
            fence + "diff",
            *body,
            fence,
            "",
            "</details>",
        ]
    return "\n".join(out) + "\n"


def render_json(plan: Plan) -> str:
    """The plan JSON (``schemas/plan.schema.json``), indented, ending with a newline."""
    return json.dumps(plan.to_json(), indent=2, ensure_ascii=False) + "\n"


def describe_action(action: Action) -> str:
    """One line naming an action, for progress and failure reports."""
    if isinstance(action, CreateVersion):
        return f"{action.prompt}: create version {action.version}"
    if isinstance(action, MoveLabel):
        return f"{action.prompt}: move label {action.label} to {action.to.version}"
    if isinstance(action, RemoveLabel):
        return f"{action.prompt}: remove label {action.label}"
    if isinstance(action, SetTraffic):
        return f"{action.prompt}: set traffic for {action.label}"
    if isinstance(action, UpdateMetadata):
        return f"{action.prompt}: update metadata"
    return f"{action.prompt}: delete prompt"
