"""The nouns of promptops: desired state, remote state, actions and plans.

Everything here is an immutable value with no I/O. The planner turns (specs, remote state,
capabilities) into a :class:`Plan`; the renderer prints a plan; the apply engine walks the same
action list. A plan serialises to the JSON documented by ``schemas/plan.schema.json`` and back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from . import __version__
from .digest import sha256_of

ACTION_KINDS = ("create_version", "move_label", "remove_label", "set_traffic", "update_metadata", "delete_prompt")
PLAN_FORMAT_VERSION = 1


# --------------------------------------------------------------------------- desired state


@dataclass(frozen=True)
class VersionSpec:
    """One version a prompt file declares: local key, canonical content, digest."""

    key: str
    content: Mapping[str, Any]
    digest: str


@dataclass(frozen=True)
class PromptSpec:
    """One prompt file after validation.

    ``labels`` maps label -> version key; ``traffic`` maps label -> {version key: weight}.
    ``targets`` is None when every target manages the prompt.
    """

    name: str
    path: str
    type: str
    template_format: str
    versions: Mapping[str, VersionSpec]
    labels: Mapping[str, str] = field(default_factory=dict)
    traffic: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    description: str | None = None
    tags: tuple[str, ...] = ()
    variables: Mapping[str, Mapping[str, Any]] | None = None
    targets: tuple[str, ...] | None = None

    def managed_by(self, target: str) -> bool:
        """True when ``target`` manages this prompt (``targets:`` absent or naming it)."""
        return self.targets is None or target in self.targets


# --------------------------------------------------------------------------- remote state


@dataclass(frozen=True)
class RemoteVersion:
    """A version as a platform holds it, turned back into canonical content by its adapter.

    ``id`` is the platform's own version identifier as users see it ("3", "v3", "1.0.0").
    ``provenance`` is the stamp promptops wrote when it created the version (commit, path, version
    key); None means the version was made outside promptops. ``created_at`` is the platform's
    ISO-8601 creation time where it reports one (shown by ``history``; not part of any snapshot).
    """

    id: str
    digest: str
    content: Mapping[str, Any]
    provenance: Mapping[str, Any] | None = None
    created_at: str | None = None


@dataclass(frozen=True)
class RemotePrompt:
    """A prompt as a platform holds it. ``versions`` are in creation order (oldest first)."""

    name: str
    versions: tuple[RemoteVersion, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    traffic: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    description: str | None = None

    def version(self, version_id: str | None) -> RemoteVersion | None:
        """The version with this id, or None."""
        for v in self.versions:
            if v.id == version_id:
                return v
        return None

    def snapshot(self) -> dict[str, Any]:
        """The parts of the remote state a plan depends on, as JSON (for staleness checks)."""
        return {
            "versions": {v.id: v.digest for v in self.versions},
            # versions with no provenance stamp: shown as "made outside promptops"
            "outside_promptops": [v.id for v in self.versions if v.provenance is None],
            "labels": dict(sorted(self.labels.items())),
            "traffic": {k: dict(v) for k, v in sorted(self.traffic.items())},
            "tags": sorted(self.tags),
            "description": self.description,
        }


@dataclass(frozen=True)
class RemoteState:
    """Every prompt a target holds, by name."""

    prompts: Mapping[str, RemotePrompt] = field(default_factory=dict)


def snapshot_of(state: RemoteState, names: list[str]) -> dict[str, Any]:
    """Snapshots of the named prompts (None for a prompt that does not exist), sorted by name."""
    return {n: (state.prompts[n].snapshot() if n in state.prompts else None) for n in sorted(set(names))}


def fingerprint(snapshots: Mapping[str, Any]) -> str:
    """The remote fingerprint recorded in plans: the digest of the snapshots' canonical JSON."""
    return sha256_of(snapshots)


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class VersionRef:
    """Points at a version on both sides: the remote id (None if not created yet) and local key
    (None if no local version has that content)."""

    remote_version: str | None
    version: str | None

    def to_json(self) -> dict[str, Any]:
        return {"remote_version": self.remote_version, "version": self.version}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "VersionRef | None":
        if data is None:
            return None
        return cls(remote_version=data.get("remote_version"), version=data.get("version"))


@dataclass(frozen=True)
class CreateVersion:
    """Create a version with this content (and the prompt, if the remote lacks it).

    ``base`` is the remote version the diff is shown against (None: show all content);
    ``base_content`` its content, kept in the plan so a saved plan renders the same diff.
    ``affects`` names the prompts that compose this prompt's latest version (see
    :mod:`promptops.composition`): what they serve changes too, without a version of theirs.
    """

    prompt: str
    version: str
    digest: str
    content: Mapping[str, Any]
    path: str = ""
    new_prompt: bool = False
    base: VersionRef | None = None
    base_content: Mapping[str, Any] | None = None
    affects: tuple[str, ...] = ()
    kind: str = "create_version"


@dataclass(frozen=True)
class MoveLabel:
    """Point ``label`` at ``to`` (``from_`` is None when the label does not exist remotely yet).

    ``affects`` names the prompts that compose this label of the prompt (see
    :mod:`promptops.composition`): what they serve changes with the move, without a version of theirs.
    """

    prompt: str
    label: str
    from_: VersionRef | None
    to: VersionRef
    affects: tuple[str, ...] = ()
    kind: str = "move_label"


@dataclass(frozen=True)
class RemoveLabel:
    """Remove ``label``, which the files no longer declare."""

    prompt: str
    label: str
    from_: VersionRef
    kind: str = "remove_label"


@dataclass(frozen=True)
class SetTraffic:
    """Change the weighted split of ``label``. ``from_``/``to`` map version names to weights
    (local keys; ``remote:<id>`` for remote versions with no local key); None means no split.
    ``to_remote`` maps the local keys of ``to`` to remote ids where they already exist."""

    prompt: str
    label: str
    from_: Mapping[str, int] | None
    to: Mapping[str, int] | None
    to_remote: Mapping[str, str | None] = field(default_factory=dict)
    kind: str = "set_traffic"


@dataclass(frozen=True)
class UpdateMetadata:
    """Change tags and/or description (``from_``/``to`` hold ``tags`` and ``description``)."""

    prompt: str
    from_: Mapping[str, Any] | None
    to: Mapping[str, Any]
    kind: str = "update_metadata"


@dataclass(frozen=True)
class DeletePrompt:
    """Delete a prompt no file declares (only planned with --prune)."""

    prompt: str
    versions: tuple[str, ...] = ()
    outside_promptops: bool = False
    kind: str = "delete_prompt"


Action = Union[CreateVersion, MoveLabel, RemoveLabel, SetTraffic, UpdateMetadata, DeletePrompt]


def action_to_json(action: Action) -> dict[str, Any]:
    """Serialise an action to the plan JSON shape (``from_`` is written as ``from``)."""
    out: dict[str, Any] = {"kind": action.kind, "prompt": action.prompt}
    for name in action.__dataclass_fields__:
        if name in ("kind", "prompt"):
            continue
        value = getattr(action, name)
        key = "from" if name == "from_" else name
        if isinstance(value, VersionRef):
            value = value.to_json()
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        out[key] = value
    return out


_ACTION_CLASSES: dict[str, type] = {
    "create_version": CreateVersion,
    "move_label": MoveLabel,
    "remove_label": RemoveLabel,
    "set_traffic": SetTraffic,
    "update_metadata": UpdateMetadata,
    "delete_prompt": DeletePrompt,
}
_REF_FIELDS = {"base", "from_", "to"}


def action_from_json(data: Mapping[str, Any]) -> Action:
    """Inverse of :func:`action_to_json`. Raises KeyError/TypeError on a malformed action."""
    cls = _ACTION_CLASSES[data["kind"]]
    kwargs: dict[str, Any] = {}
    for name, f in cls.__dataclass_fields__.items():
        key = "from" if name == "from_" else name
        if key not in data or name == "kind":
            continue
        value = data[key]
        if name in _REF_FIELDS and cls in (CreateVersion, MoveLabel, RemoveLabel):
            value = VersionRef.from_json(value)
        elif name in ("versions", "affects"):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Plan:
    """What apply will do to one target, and what it was computed from.

    ``remote`` holds the snapshot of every prompt the plan touches (see RemotePrompt.snapshot);
    ``remote_fingerprint`` is its digest. ``warnings`` are things the target cannot do that the
    files ask for, reported rather than silently dropped.
    """

    target: str
    provider: str
    actions: tuple[Action, ...]
    remote: Mapping[str, Any]
    warnings: tuple[str, ...] = ()
    commit: str | None = None
    dirty: bool | None = None
    commit_subject: str | None = None
    promptops_version: str = __version__

    @property
    def remote_fingerprint(self) -> str:
        return fingerprint(self.remote)

    @property
    def summary(self) -> dict[str, int]:
        counts = {kind: 0 for kind in ACTION_KINDS}
        for a in self.actions:
            counts[a.kind] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    def to_json(self) -> dict[str, Any]:
        """The plan JSON (schemas/plan.schema.json); also the saved plan file's content."""
        return {
            "format_version": PLAN_FORMAT_VERSION,
            "promptops_version": self.promptops_version,
            "target": self.target,
            "provider": self.provider,
            "commit": self.commit,
            "dirty": self.dirty,
            "commit_subject": self.commit_subject,
            "remote_fingerprint": self.remote_fingerprint,
            "actions": [action_to_json(a) for a in self.actions],
            "summary": self.summary,
            "warnings": list(self.warnings),
            "remote": dict(self.remote),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Plan":
        """Rebuild a plan from its JSON. The caller validates against the schema first."""
        return cls(
            target=data["target"],
            provider=data["provider"],
            actions=tuple(action_from_json(a) for a in data["actions"]),
            remote=data.get("remote", {}),
            warnings=tuple(data.get("warnings", ())),
            commit=data.get("commit"),
            dirty=data.get("dirty"),
            commit_subject=data.get("commit_subject"),
            promptops_version=data.get("promptops_version", __version__),
        )
