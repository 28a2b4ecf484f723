"""The planner as data: (specs, remote state, target) -> the exact list of actions."""
from __future__ import annotations

import pytest

from promptops.config import Target
from promptops.digest import canonical_content, content_digest
from promptops.errors import PlanError
from promptops.model import (
    CreateVersion,
    DeletePrompt,
    MoveLabel,
    Plan,
    PromptSpec,
    RemotePrompt,
    RemoteState,
    RemoteVersion,
    RemoveLabel,
    SetTraffic,
    UpdateMetadata,
    VersionRef,
)
from promptops.plan import build_plan

LOCAL = Target("local", "local")
LANGFUSE = Target("prod", "langfuse", credentials={"public_key": "PK", "secret_key": "SK"})
PROMPTLAB = Target("lab", "promptlab", credentials={"api_key": "K"})


def content(text: str) -> dict:
    return canonical_content(type="text", template_format="mustache", template=text)


def spec(name: str = "p", versions: dict[str, str] | None = None, labels: dict[str, str] | None = None,
         traffic: dict | None = None, tags: tuple[str, ...] = (), description: str | None = None,
         targets: tuple[str, ...] | None = None) -> PromptSpec:
    from promptops.model import VersionSpec

    versions = versions or {"a": "A"}
    vs = {k: VersionSpec(k, content(t), content_digest(content(t))) for k, t in versions.items()}
    return PromptSpec(name=name, path=f"prompts/{name}.yaml", type="text", template_format="mustache",
                      versions=vs, labels=labels or {}, traffic=traffic or {}, tags=tags,
                      description=description, targets=targets)


def rv(vid: str, text: str, *, outside: bool = False) -> RemoteVersion:
    """A remote version; ``outside`` means made outside promptops (no provenance stamp)."""
    return RemoteVersion(vid, content_digest(content(text)), content(text), None if outside else {"version": "?"})


def remote(*prompts: RemotePrompt) -> RemoteState:
    return RemoteState({p.name: p for p in prompts})


def D(text: str) -> str:
    return content_digest(content(text))


def test_new_prompt_creates_versions_labels_and_metadata():
    s = spec(versions={"a": "A", "b": "B"}, labels={"production": "a", "staging": "b"}, tags=("x",))
    plan = build_plan([s], remote(), LOCAL)
    assert plan.actions == (
        CreateVersion("p", "a", D("A"), content("A"), "prompts/p.yaml", new_prompt=True),
        CreateVersion("p", "b", D("B"), content("B"), "prompts/p.yaml", new_prompt=True),
        MoveLabel("p", "production", None, VersionRef(None, "a")),
        MoveLabel("p", "staging", None, VersionRef(None, "b")),
        UpdateMetadata("p", None, {"tags": ["x"], "description": None}),
    )
    assert plan.summary == {"create_version": 2, "move_label": 2, "remove_label": 0, "set_traffic": 0,
                            "update_metadata": 1, "delete_prompt": 0}
    assert plan.remote == {"p": None}


def test_in_sync_plans_nothing():
    s = spec(labels={"production": "a"})
    r = RemotePrompt("p", (rv("1", "A"),), labels={"production": "1"})
    plan = build_plan([s], remote(r), LOCAL)
    assert plan.actions == () and not plan.has_changes and plan.remote == {}


def test_edit_creates_one_version_and_moves_label_with_diff_base():
    s = spec(versions={"a": "A2"}, labels={"production": "a"})
    r = RemotePrompt("p", (rv("1", "A"),), labels={"production": "1"})
    plan = build_plan([s], remote(r), LOCAL)
    assert plan.actions == (
        CreateVersion("p", "a", D("A2"), content("A2"), "prompts/p.yaml", new_prompt=False,
                      base=VersionRef("1", None), base_content=content("A")),
        MoveLabel("p", "production", VersionRef("1", None), VersionRef(None, "a")),
    )


def test_revert_moves_label_back_to_existing_version_without_creating():
    s = spec(versions={"a": "A"}, labels={"production": "a"})
    r = RemotePrompt("p", (rv("1", "A"), rv("2", "A2")), labels={"production": "2"})
    plan = build_plan([s], remote(r), LOCAL)
    assert plan.actions == (MoveLabel("p", "production", VersionRef("2", None), VersionRef("1", "a")),)


def test_duplicate_remote_digests_keep_a_label_on_a_copy_else_take_the_oldest_and_the_plan_names_them():
    r = RemotePrompt("p", (rv("1", "A", outside=True), rv("2", "A"), rv("3", "B"), rv("4", "A")),
                     labels={"production": "4", "staging": "3", "dev": "2"})
    s = spec(versions={"a": "A"}, labels={"production": "a", "staging": "a", "dev": "a"})
    plan = build_plan([s], remote(r), LOCAL)
    # production and dev already serve the content: untouched; staging goes to the oldest copy
    # (v1), the one every run picks
    assert plan.actions == (MoveLabel("p", "staging", VersionRef("3", None), VersionRef("1", "a")),)
    assert plan.warnings == ("p: 3 remote versions have identical content: v1, v2, v4 (version 'a' of the file); "
                             "every plan uses the oldest, v1, and provider local cannot delete versions, so the "
                             "others stay, unused",)


def test_the_duplicates_note_says_how_to_delete_the_others_where_the_platform_can():
    r = RemotePrompt("support/greet", (rv("1", "A"), rv("2", "A")), labels={"production": "1"})
    s = spec("support/greet", versions={"a": "A"}, labels={"production": "a"})
    plan = build_plan([s], remote(r), LANGFUSE)
    assert plan.actions == ()  # nothing to do: still visible
    assert plan.warnings == ("support/greet: 2 remote versions have identical content: v1, v2 (version 'a' of the "
                             "file); every plan uses the oldest, v1; delete v2 in Langfuse's UI, or with DELETE "
                             "/api/public/v2/prompts/support%2Fgreet?version=2",)
    three = RemotePrompt("support/greet", (rv("1", "A"), rv("2", "A"), rv("3", "A")), labels={"production": "1"})
    assert build_plan([s], remote(three), LANGFUSE).warnings[0].endswith(
        "delete v2, v3 in Langfuse's UI, or with DELETE /api/public/v2/prompts/support%2Fgreet?version=N for each N "
        "of 2, 3")
    lab = RemotePrompt("support/greet", (rv("v1", "A"), rv("v2", "A")), labels={"production": "v2"})
    plan = build_plan([s], remote(lab), PROMPTLAB)
    assert plan.actions == ()
    assert plan.warnings == ("support/greet: 2 remote versions have identical content: v1, v2 (version 'a' of the "
                             "file); every plan uses the oldest, v1, and provider promptlab cannot delete versions, "
                             "so the others stay, unused",)


def test_undeclared_label_is_removed_where_supported_and_warned_otherwise():
    r = RemotePrompt("p", (rv("1", "A"),), labels={"production": "1", "beta": "1"})
    s = spec(labels={"production": "a"})
    plan = build_plan([s], remote(r), LOCAL)
    assert plan.actions == (RemoveLabel("p", "beta", VersionRef("1", "a")),)
    plan = build_plan([s], remote(r), LANGFUSE)
    assert plan.actions == ()
    assert plan.warnings == ("p: label 'beta' is no longer declared, but provider langfuse cannot remove labels; "
                             "move it to another version or remove it in the platform's UI",)


def test_reserved_and_unmanaged_labels_are_left_alone():
    r = RemotePrompt("p", (rv("1", "A"),), labels={"latest": "1", "production": "1", "dev": "1"})
    s = spec(labels={"production": "a"})
    only_production = Target("local", "local", labels=("production",))
    assert build_plan([s], remote(r), only_production).actions == ()
    # langfuse reserves `latest`: neither removed nor warned about
    assert build_plan([spec(labels={"production": "a", "dev": "a"})], remote(r), LANGFUSE).warnings == ()


def test_traffic_split_set_changed_and_removed():
    r = RemotePrompt("p", (rv("1", "A"), rv("2", "B")), labels={"production": "1"})
    s = spec(versions={"a": "A", "b": "B"}, labels={"production": "a"}, traffic={"production": {"a": 90, "b": 10}})
    plan = build_plan([s], remote(r), LOCAL)
    assert plan.actions == (SetTraffic("p", "production", None, {"a": 90, "b": 10}, {"a": "1", "b": "2"}),)

    r2 = RemotePrompt("p", r.versions, labels={"production": "1"}, traffic={"production": {"1": 90, "2": 10}})
    assert build_plan([s], remote(r2), LOCAL).actions == ()
    ramp = spec(versions={"a": "A", "b": "B"}, labels={"production": "a"}, traffic={"production": {"a": 50, "b": 50}})
    assert build_plan([ramp], remote(r2), LOCAL).actions == (
        SetTraffic("p", "production", {"a": 90, "b": 10}, {"a": 50, "b": 50}, {"a": "1", "b": "2"}),)
    no_split = spec(versions={"a": "A", "b": "B"}, labels={"production": "a"})
    assert build_plan([no_split], remote(r2), LOCAL).actions == (
        SetTraffic("p", "production", {"a": 90, "b": 10}, None, {}),)


def test_traffic_naming_a_new_version_and_an_unknown_remote_version():
    r = RemotePrompt("p", (rv("1", "A"), rv("7", "Z", outside=True)), labels={"production": "1"},
                     traffic={"production": {"1": 80, "7": 20}})
    s = spec(versions={"a": "A", "c": "C"}, labels={"production": "a"}, traffic={"production": {"a": 90, "c": 10}})
    plan = build_plan([s], remote(r), LOCAL)
    assert plan.actions[-1] == SetTraffic("p", "production", {"a": 80, "remote:7": 20}, {"a": 90, "c": 10},
                                          {"a": "1", "c": None})
    assert plan.remote["p"]["outside_promptops"] == ["7"]


def test_metadata_update_sends_full_desired_fields():
    r = RemotePrompt("p", (rv("1", "A"),), labels={"production": "1"}, tags=("x", "y"), description="old")
    s = spec(labels={"production": "a"}, tags=("y", "x"), description="new")
    assert build_plan([s], remote(r), LOCAL).actions == (
        UpdateMetadata("p", {"tags": ["x", "y"], "description": "old"}, {"tags": ["x", "y"], "description": "new"}),)
    # langfuse stores tags only: a description change plans nothing there
    assert build_plan([spec(labels={"production": "a"}, tags=("x", "y"), description="new")],
                      remote(r), LANGFUSE).actions == ()


def test_prune_deletes_only_with_flag_and_only_undeclared():
    kept = RemotePrompt("p", (rv("1", "A"),), labels={"production": "1"})
    gone = RemotePrompt("old", (rv("1", "X", outside=True), rv("2", "Y", outside=True)))
    s = spec(labels={"production": "a"})
    assert build_plan([s], remote(kept, gone), LOCAL).actions == ()
    plan = build_plan([s], remote(kept, gone), LOCAL, prune=True)
    assert plan.actions == (DeletePrompt("old", ("1", "2"), outside_promptops=True),)
    assert set(plan.remote) == {"old"}


def test_prune_on_provider_without_delete_warns():
    gone = RemotePrompt("old", (rv("v1", "X"),))
    plan = build_plan([], remote(gone), PROMPTLAB, prune=True)
    assert plan.actions == ()
    assert plan.warnings == ("old: no file declares it, but provider promptlab cannot delete prompts; "
                             "delete it in the platform's UI if it should go",)


def test_targets_filter_and_capability_errors():
    s = spec(labels={"production": "a"}, targets=("other",))
    assert build_plan([s], remote(), LOCAL).actions == ()
    split = spec(versions={"a": "A", "b": "B"}, labels={"production": "a"}, traffic={"production": {"a": 50, "b": 50}})
    with pytest.raises(PlanError, match=r"target 'prod' \(langfuse\) has no traffic splits"):
        build_plan([split], remote(), LANGFUSE)


def test_single_pointer_manages_one_label():
    s = spec(versions={"a": "A", "b": "B"}, labels={"production": "a", "staging": "b"})
    r = RemotePrompt("p", (rv("v1", "A"), rv("v2", "B")), labels={"production": "v2"})
    # the target says which one label it manages: the others are another target's business
    lab = Target("lab", "promptlab", credentials={"api_key": "K"}, labels=("production",))
    assert build_plan([s], remote(r), lab).actions == (
        MoveLabel("p", "production", VersionRef("v2", "b"), VersionRef("v1", "a")),)
    # it does not: staging would be silently left out, so the plan refuses
    with pytest.raises(PlanError, match="names label 'staging', but target 'lab' \\(promptlab\\) has one pointer"):
        build_plan([s], remote(r), PROMPTLAB)


def test_output_is_deterministic_and_sorted_by_prompt():
    specs = [spec("zeta"), spec("alpha"), spec("mid")]
    first = build_plan(specs, remote(), LOCAL)
    second = build_plan(list(reversed(specs)), remote(), LOCAL)
    assert first.to_json() == second.to_json()
    assert [a.prompt for a in first.actions] == ["alpha", "mid", "zeta"]


def test_plan_round_trips_through_json():
    r = RemotePrompt("p", (rv("1", "A"),), labels={"production": "1", "old": "1"}, tags=("t",))
    s = spec(versions={"a": "A", "b": "B"}, labels={"production": "b"}, traffic={"production": {"a": 10, "b": 90}})
    plan = build_plan([s], remote(r), LOCAL, commit="f" * 40, dirty=False)
    again = Plan.from_json(plan.to_json())
    assert again == plan and again.remote_fingerprint == plan.remote_fingerprint


def test_undeclared_remote_prompts_are_named_not_silently_ignored():
    kept = RemotePrompt("p", (rv("1", "A"),), labels={"production": "1"})
    s = spec(labels={"production": "a"})
    plan = build_plan([s], remote(kept), LOCAL, remote_names=["p", "old", "older"])
    assert plan.actions == ()
    assert plan.warnings == ("2 prompts on target 'local' are not declared by any file and will be kept: "
                             "old, older (plan with --prune to delete them)",)
    many = [f"x{i}" for i in range(7)]
    assert build_plan([], remote(), LOCAL, remote_names=many).warnings == (
        "7 prompts on target 'local' are not declared by any file and will be kept: x0, x1, x2, x3, x4 and "
        "2 more (plan with --prune to delete them)",)


def test_split_on_an_older_duplicate_of_the_content_is_kept():
    r = RemotePrompt("p", (rv("1", "A"), rv("2", "B"), rv("3", "A", outside=True)), labels={"production": "1"},
                     traffic={"production": {"1": 90, "2": 10}})
    s = spec(versions={"a": "A", "b": "B"}, labels={"production": "a"}, traffic={"production": {"a": 90, "b": 10}})
    assert build_plan([s], remote(r), LOCAL).actions == ()
    ramp = spec(versions={"a": "A", "b": "B"}, labels={"production": "a"}, traffic={"production": {"a": 80, "b": 20}})
    assert build_plan([ramp], remote(r), LOCAL).actions == (
        SetTraffic("p", "production", {"a": 90, "b": 10}, {"a": 80, "b": 20}, {"a": "1", "b": "2"}),)


# --------------------------------------------------------------------------- composition


def test_a_label_move_of_a_composed_prompt_names_the_prompts_composing_it():
    base = spec("shared/tone", versions={"a": "Be kind.", "b": "Be brief."}, labels={"production": "b"})
    reply = spec("support/reply", versions={"a": "Reply. @@@langfusePrompt:name=shared/tone|label=production@@@"},
                 labels={"production": "a"})
    triage = spec("triage/classify", versions={"a": "@@@langfusePrompt:name=shared/tone|label=production@@@ Go."},
                  labels={"production": "a"})
    pinned = spec("pinned", versions={"a": "@@@langfusePrompt:name=shared/tone|version=1@@@"}, labels={"production": "a"})
    latest = spec("latest", versions={"a": "@@@langfusePrompt:name=shared/tone|label=latest@@@"})
    here = remote(
        RemotePrompt("shared/tone", versions=(rv("1", "Be kind."), rv("2", "Be brief.")), labels={"production": "1"}),
        *(RemotePrompt(s.name, versions=(RemoteVersion("1", s.versions["a"].digest, s.versions["a"].content, {}),),
                       labels={"production": "1"} if s.labels else {}) for s in (reply, triage, pinned, latest)))
    plan = build_plan([base, reply, triage, pinned, latest], here, LANGFUSE)
    assert plan.actions == (MoveLabel("shared/tone", "production", VersionRef("1", "a"), VersionRef("2", "b"),
                                      affects=("support/reply", "triage/classify")),)
    assert plan.to_json()["actions"][0]["affects"] == ["support/reply", "triage/classify"]
    assert Plan.from_json(plan.to_json()) == plan

    # a new version of it becomes Langfuse's `latest`: the prompts following `latest` are named
    plan = build_plan([spec("shared/tone", versions={"c": "Be warm."}, labels={"production": "c"}),
                       reply, triage, pinned, latest], here, LANGFUSE)
    create, move = plan.actions
    assert isinstance(create, CreateVersion) and create.affects == ("latest",)
    assert move.affects == ("support/reply", "triage/classify")


def test_composition_tags_affect_nothing_where_the_platform_serves_them_as_text():
    base = spec("base", versions={"a": "A", "b": "B"}, labels={"production": "b"})
    reply = spec("reply", versions={"a": "@@@langfusePrompt:name=base|label=production@@@"})
    here = remote(RemotePrompt("base", versions=(rv("1", "A"), rv("2", "B")), labels={"production": "1"}))
    plan = build_plan([base, reply], here, LOCAL)
    assert [a.affects for a in plan.actions if isinstance(a, MoveLabel)] == [()]


def test_prune_refuses_to_delete_a_prompt_a_file_still_composes():
    reply = spec("support/reply", versions={"a": "Reply. @@@langfusePrompt:name=shared/tone|label=production@@@"},
                 labels={"production": "a"})
    here = remote(RemotePrompt("shared/tone", versions=(rv("1", "Be kind."),), labels={"production": "1"}),
                  RemotePrompt("old", versions=(rv("1", "Old."),)))
    with pytest.raises(PlanError, match=r"shared/tone: no file declares it, so --prune would delete it, but "
                                        r"prompts/support/reply.yaml composes it"):
        build_plan([reply], here, LANGFUSE, prune=True)
    # without --prune it is kept (a warning); a prompt nothing composes is deleted as before
    assert build_plan([reply], here, LANGFUSE).actions[0].kind == "create_version"
    alone = spec("support/reply", versions={"a": "Reply."})
    assert [a.prompt for a in build_plan([alone], here, LANGFUSE, prune=True).actions
            if isinstance(a, DeletePrompt)] == ["old", "shared/tone"]


def test_plan_errors_print_file_names_quoted_as_git_does():
    from dataclasses import replace

    odd = replace(spec("p", labels={"staging": "a"}), path="prompts/a\nb\x1b[31m.yaml")
    with pytest.raises(PlanError) as err:
        build_plan([odd], remote(), PROMPTLAB)
    assert '"prompts/a\\nb\\033[31m.yaml": prompt \'p\' names label' in str(err.value)
    assert "\n" not in str(err.value).split("\n  ", 1)[1] and "\x1b" not in str(err.value)
