"""The planner: (desired specs, remote state, target) -> Plan. Pure: no I/O, deterministic.

Matching rules (design.md 1.3 and 3):

* Remote versions are matched to local versions by digest, never by number. A local version whose
  digest no remote version has is a ``create_version``.
* When several remote versions share a digest (made outside promptops, or by two applies racing
  on one target), a label (or split) already on one of them stays, so nothing moves needlessly and
  an import plans clean; otherwise the oldest is used, as apply does when it finds the content
  right before a create: every run picks the same one. The plan warns about such duplicates of a
  file's version, naming them and how to delete the others where the platform can.
* A label the files declare and the target manages is moved when it points elsewhere; a managed
  remote label the files no longer declare is removed, or reported as a warning where the provider
  cannot remove labels. Labels the target does not manage are left alone, both ways.
* A traffic split is compared as {remote version: weight}; a split that names a version to be
  created always differs. On a single-pointer platform with traffic (PromptLab) a label with a
  split is the split: its own version is compared only once the file drops the split.
* Prompts no file declares are deleted only with ``prune``.

Actions come out sorted by prompt name, and per prompt in apply order: create versions (file
order), move/remove labels (by label), set traffic (by label), update metadata.
"""
from __future__ import annotations

from typing import Collection, Iterable, Sequence
from urllib.parse import quote

from .composition import references_of, with_affects
from .config import Target
from .errors import PlanError, quote_path
from .model import (
    Action,
    CreateVersion,
    DeletePrompt,
    MoveLabel,
    Plan,
    PromptSpec,
    RemotePrompt,
    RemoteState,
    RemoveLabel,
    SetTraffic,
    UpdateMetadata,
    VersionRef,
    snapshot_of,
)


def build_plan(
    specs: Sequence[PromptSpec],
    remote: RemoteState,
    target: Target,
    *,
    prune: bool = False,
    commit: str | None = None,
    dirty: bool | None = None,
    commit_subject: str | None = None,
    remote_names: Collection[str] | None = None,
) -> Plan:
    """Plan what ``target`` needs so that ``remote`` matches ``specs``.

    ``remote_names`` lists every prompt the target holds when ``remote`` was read for the declared
    prompts only; undeclared ones are then named in a warning instead of silently ignored.

    Raises PlanError listing everything the target cannot represent (validate reports the same
    problems with file positions; this is the guard for plans made without validating).
    """
    managed = [s for s in specs if s.managed_by(target.name)]
    _check_capabilities(managed, target)
    _check_types(managed, remote, target)
    actions: list[Action] = []
    warnings: list[str] = []
    declared = {s.name for s in managed}
    for spec in managed:
        acts, warns = plan_prompt(spec, remote.prompts.get(spec.name), target)
        actions += acts
        warnings += warns
    undeclared = sorted(set(remote.prompts if remote_names is None else remote_names) - declared)
    if undeclared and not prune:
        warnings.append(_kept_note(undeclared, target))
    if prune and target.capabilities.delete_prompt:
        _check_prune(undeclared, managed, target)
    for name in undeclared if prune else ():
        if target.capabilities.delete_prompt:
            actions.append(_delete(remote.prompts[name]))
        else:
            warnings.append(f"{name}: no file declares it, but provider {target.provider} cannot delete "
                            "prompts; delete it in the platform's UI if it should go")
    actions.sort(key=lambda a: a.prompt)  # stable: per-prompt order is kept
    # a label move (or new latest version) of a composed prompt changes what its composers serve
    actions = with_affects(actions, managed, target.capabilities.composition)
    touched = sorted({a.prompt for a in actions})
    return Plan(target=target.name, provider=target.provider, actions=tuple(actions),
                remote=snapshot_of(remote, touched), warnings=tuple(warnings), commit=commit, dirty=dirty,
                commit_subject=commit_subject)


def _kept_note(names: Sequence[str], target: Target) -> str:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    many = len(names) != 1
    return (f"{len(names)} prompt{'s' if many else ''} on target {target.name!r} {'are' if many else 'is'} not "
            f"declared by any file and will be kept: {shown} (plan with --prune to delete "
            f"{'them' if many else 'it'})")


def plan_prompt(spec: PromptSpec, remote: RemotePrompt | None, target: Target) -> tuple[list[Action], list[str]]:
    """The actions (and warnings) for one prompt, in apply order."""
    remote = remote or RemotePrompt(name=spec.name)
    new_prompt = not remote.versions
    by_digest: dict[str, list[str]] = {}
    for v in remote.versions:
        by_digest.setdefault(v.digest, []).append(v.id)
    key_of_digest = {v.digest: k for k, v in spec.versions.items()}

    def ref(remote_id: str | None) -> VersionRef | None:
        if remote_id is None:
            return None
        rv = remote.version(remote_id)
        return VersionRef(remote_id, key_of_digest.get(rv.digest) if rv else None)

    def chosen(key: str, *current: str | None) -> str | None:
        """The remote id serving local version ``key``: the first of ``current`` that has the
        content (so nothing moves needlessly), else the oldest remote version with it, so that
        every run picks the same; None when it must be created."""
        ids = by_digest.get(spec.versions[key].digest, [])
        return next((c for c in current if c in ids), ids[0] if ids else None)

    actions: list[Action] = []
    for key, version in spec.versions.items():
        if version.digest not in by_digest:
            base_id = _diff_base(spec, key, remote)
            base = remote.version(base_id)
            actions.append(CreateVersion(
                prompt=spec.name, version=key, digest=version.digest, content=version.content, path=spec.path,
                new_prompt=new_prompt, base=ref(base_id), base_content=base.content if base else None))

    labels = {label: key for label, key in spec.labels.items() if target.manages_label(label)}
    caps = target.capabilities
    # On a single-pointer platform with traffic (PromptLab) the pointer is the deployment: a label
    # with a split is served by the split alone, so its own version is not compared (moving it would
    # deploy that version to everyone before the split). It counts again when the split ends.
    split_only = set(spec.traffic) if caps.labels == "single" and caps.traffic else set()
    for label in sorted(set(labels) - split_only):
        current = remote.labels.get(label)
        want = chosen(labels[label], current)
        if want is None or want != current:
            actions.append(MoveLabel(prompt=spec.name, label=label, from_=ref(current),
                                     to=VersionRef(want, labels[label])))
    warnings: list[str] = [_duplicates(spec.name, key, by_digest[v.digest], target)
                           for key, v in spec.versions.items() if len(by_digest.get(v.digest, ())) > 1]
    for label in sorted(set(labels) & split_only):
        current = remote.labels.get(label)
        if current is not None and chosen(labels[label], current) != current:
            warnings.append(f"{spec.name}: label {label!r} is served by its traffic split on provider "
                            f"{target.provider}; its version {labels[label]!r} is deployed when the file drops the "
                            "split (a label move alone changes nothing there)")
    for label in sorted(set(remote.labels) - set(labels) - split_only):
        if not target.manages_label(label):
            continue
        if caps.remove_label:
            actions.append(RemoveLabel(prompt=spec.name, label=label, from_=ref(remote.labels[label])))
        else:
            warnings.append(f"{spec.name}: label {label!r} is no longer declared, but provider {target.provider} "
                            "cannot remove labels; move it to another version or remove it in the platform's UI")

    for label in sorted(set(spec.traffic) | set(remote.traffic)):
        if not target.manages_label(label) or not caps.traffic:
            continue
        action = _traffic(spec, remote, label, chosen, ref, single=bool(split_only))
        if action:
            actions.append(action)

    meta = _metadata(spec, remote, target, new_prompt)
    if meta and caps.metadata_with_create and not any(isinstance(a, CreateVersion) for a in actions):
        # nothing to carry it: a metadata call does not exist on this platform
        warnings.append(f"{spec.name}: {_metadata_change(meta)} differ from the file, but provider {target.provider} "
                        "writes them only with a new version: they will be set when a version of this prompt is "
                        "next created (nothing is sent now)")
    elif meta:
        actions.append(meta)
    return actions, warnings


def _duplicates(name: str, key: str, ids: Sequence[str], target: Target) -> str:
    """The warning naming remote versions of identical content (file version ``key``): which one
    every plan uses, and how to delete the others where the platform's API can."""
    shown = [f"v{i}" if i.isdigit() else i for i in ids]
    text = (f"{name}: {len(ids)} remote versions have identical content: {', '.join(shown)} (version {key!r} of the "
            f"file); every plan uses the oldest, {shown[0]}")
    how = target.capabilities.delete_version
    if how is None:
        return text + f", and provider {target.provider} cannot delete versions, so the others stay, unused"
    extra = ids[1:]
    hint = how.format(name=quote(name, safe=""), number=extra[0] if len(extra) == 1 else "N")
    each = f" for each N of {', '.join(extra)}" if len(extra) > 1 else ""
    return text + f"; delete {', '.join(shown[1:])} {hint}{each}"


def _metadata_change(meta: UpdateMetadata) -> str:
    """``tags ['a'] -> ['a', 'b']`` (and the other fields that differ), for a warning."""
    before = meta.from_ or {}
    return ", ".join(f"{key} {before.get(key)!r} -> {value!r}" for key, value in meta.to.items()
                     if before.get(key) != value)


def _diff_base(spec: PromptSpec, key: str, remote: RemotePrompt) -> str | None:
    """Which remote version a new version is shown against: what its labels point at now, else the
    last version promptops created for the same local key, else the newest version."""
    for label in sorted(spec.labels):
        if spec.labels[label] == key and label in remote.labels:
            return remote.labels[label]
    for v in reversed(remote.versions):
        if v.provenance and v.provenance.get("version") == key:
            return v.id
    return remote.versions[-1].id if remote.versions else None


def _traffic(spec: PromptSpec, remote: RemotePrompt, label: str, chosen, ref, *, single: bool = False
             ) -> SetTraffic | None:
    """The SetTraffic for ``label``, or None when the remote split already matches. ``single``:
    the platform's pointer is its deployment, where a split of one version is just the pointer on
    that version (it reads back as the label, with no split)."""
    desired = spec.traffic.get(label)
    current = remote.traffic.get(label)
    to_remote: dict[str, str | None] = {}
    if desired is not None:
        # prefer the ids already in the split, so a re-plan after apply is a no-op
        to_remote = {key: chosen(key, *(current or {}), remote.labels.get(label)) for key in desired}
        resolved = None if None in to_remote.values() else {to_remote[k]: w for k, w in desired.items()}
        if resolved is not None and current is not None and dict(current) == resolved:
            return None
        if single and resolved is not None and current is None and list(resolved.items()) == [
                (remote.labels.get(label), 100)]:
            return None
    elif current is None:
        return None
    from_ = None
    if current is not None:
        from_ = {}
        for rid, w in current.items():
            r = ref(rid)
            from_[r.version if r and r.version else f"remote:{rid}"] = w
    return SetTraffic(prompt=spec.name, label=label, from_=from_,
                      to=dict(desired) if desired is not None else None, to_remote=to_remote)


def _metadata(spec: PromptSpec, remote: RemotePrompt, target: Target, new_prompt: bool) -> UpdateMetadata | None:
    """Full desired and current metadata (of the fields the provider stores) when any differs, so
    apply can set both fields without reading them again."""
    stored = target.capabilities.metadata
    want: dict[str, object] = {}
    have: dict[str, object] = {}
    if "tags" in stored:
        want["tags"], have["tags"] = sorted(spec.tags), sorted(remote.tags)
    if "description" in stored:
        want["description"], have["description"] = spec.description or None, remote.description or None
    if want == have or (new_prompt and not any(want.values())):
        return None
    return UpdateMetadata(prompt=spec.name, from_=None if new_prompt else have, to=want)


def _delete(remote: RemotePrompt) -> DeletePrompt:
    return DeletePrompt(prompt=remote.name, versions=tuple(v.id for v in remote.versions),
                        outside_promptops=all(v.provenance is None for v in remote.versions))


def _check_prune(doomed: Collection[str], specs: Iterable[PromptSpec], target: Target) -> None:
    """A prompt --prune would delete while a file still composes it: the platform refuses the
    delete (Langfuse: a 400 naming the dependents), so the plan refuses it first."""
    syntax = target.capabilities.composition
    if syntax is None or not doomed:
        return
    users: dict[str, set[str]] = {}
    for spec in specs:
        for _, ref in references_of(spec, syntax):
            if ref.name in doomed:
                users.setdefault(ref.name, set()).add(quote_path(spec.path))
    if users:
        lines = [f"{name}: no file declares it, so --prune would delete it, but {', '.join(sorted(paths))} "
                 f"compose{'s' if len(paths) == 1 else ''} it and the platform refuses to delete a prompt others "
                 f"compose; remove the reference{'s' if len(paths) > 1 else ''} first, or keep a file for {name}"
                 for name, paths in sorted(users.items())]
        raise PlanError("the plan cannot delete what the files compose:\n  " + "\n  ".join(lines))


def _check_types(specs: Iterable[PromptSpec], remote: RemoteState, target: Target) -> None:
    """On a platform that fixes a prompt's type with its first version, a file of the other type is
    refused before any call (the platform would refuse the create in the middle of apply)."""
    if not target.capabilities.fixed_type:
        return
    problems = []
    for spec in specs:
        held = remote.prompts.get(spec.name)
        if not held or not held.versions:
            continue
        kind = held.versions[-1].content.get("type")
        if kind != spec.type:
            problems.append(
                f"{quote_path(spec.path)}: prompt {spec.name!r} is a {spec.type} prompt, but {target.who} holds it "
                f"as a {kind} prompt, and provider {target.provider} fixes a prompt's type with its first version; give the "
                f"{spec.type} prompt a new name (name:), or delete the remote prompt first: remove the file and "
                "apply with --prune, then restore the file in a separate apply")
    if problems:
        raise PlanError("the files ask for what the target cannot do:\n  " + "\n  ".join(problems))


def _check_capabilities(specs: Iterable[PromptSpec], target: Target) -> None:
    """The planner's guard: the gaps validate reports with positions (``Target.gaps``), for plans
    made from specs that were not validated. Reserved labels are not an error here: the target
    does not manage them, so the planner leaves them alone."""
    problems = []
    who = target.who
    for spec in specs:
        where = f"{quote_path(spec.path)}: prompt {spec.name!r}"
        reserved = target.name_gap(spec.name)
        if reserved:
            problems.append(f"{where}: {reserved[0]}")
        gaps = target.gaps(spec.type, spec.template_format, spec.labels, spec.traffic)
        if ("type", spec.type) in gaps:
            problems.append(f"{where} is a {spec.type} prompt, which {who} cannot hold")
        if ("template_format", spec.template_format) in gaps:
            problems.append(f"{where} uses {spec.template_format} templates, which {who} does not support")
        content = {problem for v in spec.versions.values() for _, problem, _ in target.content_gaps(v.content)}
        content |= {gap[0] for key in spec.versions if (gap := target.key_gap(key))}
        problems += [f"{where}: {problem}" for problem in sorted(content)]
        other = [value for gap, value in gaps if gap == "pointer"]
        if other:
            problems.append(f"{where} names label {', '.join(map(repr, other))}, but {who} has one pointer per "
                            "prompt, mapped to 'production'; set the target's labels: to the one it manages")
        split = [value for gap, value in gaps if gap == "traffic"]
        if split:
            problems.append(f"{where} declares traffic for {', '.join(split)}, but {who} has no traffic splits; "
                            "add targets: to leave it out")
    if problems:
        raise PlanError("the files ask for what the target cannot represent:\n  " + "\n  ".join(problems))
