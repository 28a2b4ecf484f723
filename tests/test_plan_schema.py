"""schemas/plan.schema.json documents exactly what Plan.to_json() writes."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest

from promptops.digest import canonical_content, content_digest
from promptops.model import (
    ACTION_KINDS,
    CreateVersion,
    DeletePrompt,
    MoveLabel,
    Plan,
    RemoteVersion,
    RemotePrompt,
    RemoveLabel,
    RemoteState,
    SetTraffic,
    UpdateMetadata,
    VersionRef,
    snapshot_of,
)
from promptops.model import _ACTION_CLASSES  # the kind -> dataclass map the schema must mirror

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "plan.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())

STABLE = canonical_content(type="chat", template_format="mustache",
                           messages=[{"role": "system", "content": "You help. {{locale}}\n"}, {"placeholder": "history"}],
                           model={"name": "gpt-4o", "temperature": 0.3}, tools=[{"name": "lookup"}])
CONCISE = canonical_content(type="chat", template_format="mustache",
                            messages=[{"role": "system", "content": "Be brief. {{locale}}"}], model={"name": "gpt-4o"})
SUMMARY = canonical_content(type="text", template_format="jinja2", template="Summarize {{ article }}")


def _remote() -> RemoteState:
    v = lambda i, c, stamped=True: RemoteVersion(i, content_digest(c), c, {"commit": "abc"} if stamped else None)
    return RemoteState(prompts={
        "checkout": RemotePrompt("checkout", versions=(v("1", SUMMARY, False), v("3", STABLE)),
                                 labels={"production": "3", "beta": "1"}, traffic={"production": {"3": 100}},
                                 tags=("a",), description="old"),
        "legacy": RemotePrompt("legacy", versions=(v("1", SUMMARY, False),)),
    })


def full_plan() -> Plan:
    """One action of every kind."""
    return Plan(
        target="prod", provider="langfuse", commit="3f2c1ab" + "0" * 33, dirty=False,
        actions=(
            CreateVersion(prompt="checkout", version="concise", digest=content_digest(CONCISE), content=CONCISE,
                          path="prompts/checkout.yaml", base=VersionRef("3", "stable"), base_content=STABLE),
            CreateVersion(prompt="summarizer", version="default", digest=content_digest(SUMMARY), content=SUMMARY,
                          path="prompts/summarizer.yaml", new_prompt=True),
            MoveLabel(prompt="checkout", label="staging", from_=None, to=VersionRef(None, "concise")),
            MoveLabel(prompt="checkout", label="production", from_=VersionRef("1", None), to=VersionRef("3", "stable")),
            RemoveLabel(prompt="checkout", label="beta", from_=VersionRef("1", None)),
            SetTraffic(prompt="checkout", label="production", from_={"stable": 100, "remote:1": 0},
                       to={"stable": 90, "concise": 10}, to_remote={"stable": "3", "concise": None}),
            SetTraffic(prompt="checkout", label="canary", from_={"stable": 100}, to=None),
            UpdateMetadata(prompt="checkout", from_={"tags": ["a"], "description": "old"},
                           to={"tags": ["a", "b"], "description": None}),
            UpdateMetadata(prompt="summarizer", from_=None, to={"tags": ["news"]}),
            DeletePrompt(prompt="legacy", versions=("1",), outside_promptops=True),
        ),
        remote=snapshot_of(_remote(), ["checkout", "legacy", "summarizer"]),
        warnings=("checkout: something the target cannot do",),
    )


def errors(document: Any) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(document)]


# --------------------------------------------------------------------------- the schema itself


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"] == "https://promptops.dev/schemas/plan.schema.json"


def _properties(node: Any, where: str = "#") -> Iterator[tuple[str, dict]]:
    """Every (path, schema) under a "properties" keyword, anywhere in the schema."""
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            yield f"{where}/properties/{name}", sub
        for key, sub in node.items():
            yield from _properties(sub, f"{where}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _properties(sub, f"{where}/{i}")


def test_every_property_has_a_title_and_description():
    missing = [path for path, sub in _properties(SCHEMA)
               if not (isinstance(sub, dict) and sub.get("title") and sub.get("description"))]
    # "properties" inside if/then conditions are matchers, not documentation
    missing = [p for p in missing if "/if/" not in p]
    assert missing == []


def test_schema_mirrors_the_model():
    defs = SCHEMA["$defs"]
    kinds = [ref["$ref"].rsplit("/", 1)[1] for ref in defs["action"]["oneOf"]]
    assert kinds == list(ACTION_KINDS)
    for kind in ACTION_KINDS:
        fields = {"from" if f == "from_" else f for f in _ACTION_CLASSES[kind].__dataclass_fields__}
        assert set(defs[kind]["properties"]) == fields, kind
        assert defs[kind]["properties"]["kind"]["const"] == kind
        assert defs[kind]["additionalProperties"] is False
    assert set(SCHEMA["properties"]["summary"]["required"]) == set(ACTION_KINDS)
    assert set(SCHEMA["required"]) == set(SCHEMA["properties"]) == set(full_plan().to_json())
    assert set(defs["snapshot"]["properties"]) == set(_remote().prompts["checkout"].snapshot())


# --------------------------------------------------------------------------- valid documents


def test_plan_with_every_action_kind_is_valid():
    document = full_plan().to_json()
    assert {a["kind"] for a in document["actions"]} == set(ACTION_KINDS)
    assert errors(document) == []
    assert Plan.from_json(document).to_json() == document


def test_empty_plan_is_valid():
    document = Plan(target="local", provider="local", actions=(), remote={}).to_json()
    assert errors(document) == []


def test_plan_json_after_a_json_round_trip_is_valid():
    assert errors(json.loads(json.dumps(full_plan().to_json()))) == []


# --------------------------------------------------------------------------- invalid documents


def _mutated(mutate) -> dict:
    document = copy.deepcopy(full_plan().to_json())
    mutate(document)
    return document


def _action(document: dict, kind: str) -> dict:
    return next(a for a in document["actions"] if a["kind"] == kind)


def _leaf_messages(document: Any) -> list[str]:
    """Messages of the most specific errors (inside oneOf/anyOf branches)."""
    out: list[str] = []
    pending = list(VALIDATOR.iter_errors(document))
    while pending:
        error = pending.pop()
        if error.context:
            pending.extend(error.context)
        else:
            out.append(error.message)
    return out


DIGEST_PATTERN = "does not match '^sha256:[0-9a-f]{64}$'"


@pytest.mark.parametrize("mutate, expected", [
    pytest.param(lambda d: d["actions"][0].update(kind="create_prompt"), "'create_version' was expected",
                 id="unknown kind"),
    pytest.param(lambda d: d["actions"][0].pop("kind"), "'kind' is a required property", id="no kind"),
    pytest.param(lambda d: _action(d, "move_label").update(kind="remove_label"), "('affects', 'to' were unexpected)",
                 id="fields of another kind"),
    pytest.param(lambda d: _action(d, "move_label").pop("to"), "'to' is a required property", id="missing key"),
    pytest.param(lambda d: _action(d, "remove_label").pop("from"), "'from' is a required property",
                 id="missing from"),
    pytest.param(lambda d: _action(d, "set_traffic").update(from_=None), "('from_' was unexpected)",
                 id="from_ instead of from"),
    pytest.param(lambda d: _action(d, "create_version").update(digest="sha256:1234"), DIGEST_PATTERN,
                 id="short digest"),
    pytest.param(lambda d: _action(d, "create_version").update(digest="sha256:" + "A" * 64), DIGEST_PATTERN,
                 id="uppercase digest"),
    pytest.param(lambda d: _action(d, "create_version").update(digest="md5:" + "0" * 64), DIGEST_PATTERN,
                 id="wrong algorithm"),
    pytest.param(lambda d: d.update(remote_fingerprint="0" * 64), DIGEST_PATTERN, id="bad fingerprint"),
    pytest.param(lambda d: _action(d, "create_version")["content"].update(template="x"), "should not be valid",
                 id="template and messages"),
    pytest.param(lambda d: _action(d, "create_version")["content"].pop("tools"), "'tools' is a required property",
                 id="content without tools"),
    pytest.param(lambda d: _action(d, "create_version")["content"].update(type="audio"), "is not one of",
                 id="unknown type"),
    pytest.param(lambda d: _action(d, "create_version")["content"]["messages"].append({"role": "user"}),
                 "'content' is a required property", id="message without content"),
    pytest.param(lambda d: _action(d, "set_traffic")["to"].update(stable=90.5), "is not of type 'integer'",
                 id="fractional weight"),
    pytest.param(lambda d: _action(d, "set_traffic")["to"].update(stable=101), "greater than the maximum of 100",
                 id="weight over 100"),
    pytest.param(lambda d: _action(d, "move_label")["to"].pop("version"), "'version' is a required property",
                 id="version ref without key"),
    pytest.param(lambda d: _action(d, "delete_prompt").update(outside_promptops="yes"), "is not of type 'boolean'",
                 id="non-boolean"),
    pytest.param(lambda d: d["summary"].pop("delete_prompt"), "'delete_prompt' is a required property",
                 id="summary count missing"),
    pytest.param(lambda d: d["summary"].update(move_label=-1), "less than the minimum of 0", id="negative count"),
    pytest.param(lambda d: d.update(format_version=2), "1 was expected", id="unknown format version"),
    pytest.param(lambda d: d.update(credentials={"api_key": "x"}), "('credentials' was unexpected)",
                 id="extra top-level key"),
    pytest.param(lambda d: d.pop("remote"), "'remote' is a required property", id="no remote"),
    pytest.param(lambda d: d["remote"]["checkout"]["versions"].update({"9": "sha256:x"}), DIGEST_PATTERN,
                 id="bad remote digest"),
])
def test_invalid_documents_are_rejected(mutate, expected):
    messages = _leaf_messages(_mutated(mutate))
    assert messages, "the schema accepted an invalid plan"
    assert any(expected in m for m in messages), messages
