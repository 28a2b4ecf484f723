"""The provider boundary: what a platform can represent, and the calls apply makes.

The core never branches on provider names; it reads :class:`Capabilities` and calls the
:class:`Provider` methods. Every write method is transactional from the caller's point of view:
if it raises, the change did not happen, unless the error is a ``ProviderError(ambiguous=True)``
(a timeout or dropped connection after the request was sent), in which case the apply engine
re-reads the remote before trying again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, ContextManager, Mapping, Protocol, Sequence

from ..model import RemoteState


@dataclass(frozen=True)
class Capabilities:
    """What a provider can represent (design.md section 4).

    ``labels``: "many" (any number of labels) or "single" (one pointer, mapped to one label).
    ``reserved_labels``: labels the platform manages itself; never planned.
    ``metadata``: which of "tags"/"description" the platform stores (and can change on its own).
    ``labels_at_once``: one call moves several labels to one version (``Provider.move_labels``;
    Langfuse's ``newLabels``), so apply sends the moves to a version together.
    ``metadata_with_create``: the platform writes ``metadata`` only with a new version (Langfuse's
    tags, shared by all versions and rewritten by a create): apply sends them with the create of a
    version, and the planner warns, instead of planning a call, when only they differ.
    ``labels_on_create``: a create can carry the labels that move to the new version, so apply
    sends them with it instead of one call per label.
    ``model_config``: a version can carry model config and tools besides its template; when False
    a prompt with either is a capability gap (the platform stores only the template).
    ``reserved_model_keys``: model config keys the adapter's mapping uses for something else
    (Langfuse keeps the model name, tools and template format inside ``config``).
    ``empty_template``: an empty text template can be stored.
    ``placeholder_names``: a regular expression chat placeholder names must match, when the
    platform is stricter than the file format.
    ``server_resolve``: the platform picks a user's version itself (``Provider.resolve_user``),
    so ``promptops resolve`` asks it instead of hashing locally.
    ``tools_types``: the prompt types whose versions can carry tools (PromptLayer keeps tools in
    a chat template only).
    ``model_requires``: keys a non-empty model config must have (PromptLayer's model metadata
    requires ``provider`` and ``name``).
    ``chat_roles``: when set, a chat prompt must be exactly these roles, in this order, each with
    some text (PromptRails stores a system prompt and a user prompt, nothing else).
    ``message_limit``: the most characters the provenance stamp may take (PromptLayer's commit
    message); version keys longer than it can keep whole are a validation error.
    ``fixed_type``: a prompt's type (text or chat) is fixed by its first version; a version of the
    other type is refused (Langfuse: a 400), so the planner refuses to plan one.
    ``reserved_names``: prompt names the platform refuses (Langfuse: the static pages beside its
    prompts route), a validation error before any request.
    ``message_format``: the platform keeps the template format on each text message and reads a
    message without one as this format (PromptLayer: f-string), so a chat prompt of placeholders
    only can be stored in this format alone.
    ``delete_version``: how one version is deleted (Langfuse: ``DELETE ...?version=N``), for the
    plan's note on remote versions of identical content; None where the API cannot.
    ``composition``: the syntax of references to other prompts that the platform inlines when it
    serves a version (``"langfuse"``: ``@@@langfusePrompt:name=X|label=Y@@@``; ``"promptlayer"``:
    snippets, ``@@@name@label:Y@@@``); None where text is served as written. See
    :mod:`promptops.composition`.

    With ``labels == "single"`` and ``traffic``, the pointer *is* the deployment: a label with a
    traffic split is served by the split alone, and the label's own version is where the pointer
    goes when the split ends (see ``plan.plan_prompt``).
    """

    labels: str = "many"
    traffic: bool = False
    remove_label: bool = True
    delete_prompt: bool = True
    types: frozenset[str] = frozenset({"text", "chat"})
    template_formats: frozenset[str] = frozenset({"mustache", "jinja2", "f-string"})
    reserved_labels: frozenset[str] = frozenset()
    metadata: frozenset[str] = frozenset({"tags", "description"})
    labels_on_create: bool = False
    metadata_with_create: bool = False
    labels_at_once: bool = False
    model_config: bool = True
    reserved_model_keys: frozenset[str] = frozenset()
    empty_template: bool = True
    placeholder_names: str | None = None
    server_resolve: bool = False
    tools_types: frozenset[str] = frozenset({"text", "chat"})
    model_requires: frozenset[str] = frozenset()
    chat_roles: tuple[str, ...] | None = None
    message_format: str | None = None
    message_limit: int | None = None
    composition: str | None = None
    reserved_names: frozenset[str] = frozenset()
    fixed_type: bool = False
    delete_version: str | None = None


# What each provider kind can represent. Used by `validate` (offline) as well as by the planner,
# so a file that a target cannot represent fails before any network call.
CAPABILITIES: dict[str, Capabilities] = {
    "local": Capabilities(traffic=True, labels_at_once=True),
    # Langfuse writes tags only with a new version (a create rewrites the tags of every version).
    "langfuse": Capabilities(
        remove_label=False, reserved_labels=frozenset({"latest"}), metadata=frozenset({"tags"}),
        metadata_with_create=True, labels_on_create=True, labels_at_once=True,
        reserved_model_keys=frozenset({"model", "tools", "template_format"}),
        placeholder_names=r"^[A-Za-z][A-Za-z0-9_]*$",  # the API's own rule (a 400 otherwise)
        # RESERVED_PROMPT_NAMES in packages/shared/src/features/prompts/constants.ts: the server refuses them
        reserved_names=frozenset({"new", "metrics", "prompt-detail"}),
        fixed_type=True,  # createPrompt.ts: "Previous versions have different prompt type."
        composition="langfuse",
        # packages/shared/src/server/.../deletePrompt: ?version= deletes that version alone
        delete_version="in Langfuse's UI, or with DELETE /api/public/v2/prompts/{name}?version={number}",
    ),
    # PromptLayer: release labels ride on the publish; tags are written only with a new version,
    # so promptops does not manage them (as on Langfuse); no template deletion in the public API.
    "promptlayer": Capabilities(
        delete_prompt=False, template_formats=frozenset({"jinja2", "f-string"}), metadata=frozenset(),
        labels_on_create=True, tools_types=frozenset({"chat"}), model_requires=frozenset({"provider", "name"}),
        message_format="f-string", message_limit=72,
        server_resolve=True,  # A/B releases made in its web app are invisible to the API, but it says who gets what
        composition="promptlayer",
    ),
    # PromptRails: one current version (set_current on create, or promote), Jinja2 rendered by the
    # platform, a version is a system prompt and a user prompt (tools kept in its config).
    "promptrails": Capabilities(
        labels="single", remove_label=False, metadata=frozenset({"description"}), labels_on_create=True,
        template_formats=frozenset({"jinja2"}), reserved_model_keys=frozenset({"tools"}), empty_template=False,
        chat_roles=("system", "user"),
    ),
    "promptlab": Capabilities(
        labels="single", traffic=True, remove_label=False, delete_prompt=False, types=frozenset({"text"}),
        # the platform stores one content string and interpolates {{key}} itself
        template_formats=frozenset({"mustache"}), metadata=frozenset(), model_config=False, empty_template=False,
        server_resolve=True,
    ),
}
PROVIDER_KINDS = tuple(CAPABILITIES)


@dataclass(frozen=True)
class NewVersion:
    """What ``create_version`` needs: the prompt, the content and the provenance stamp.

    ``provenance`` is a :func:`promptops.provenance.stamp`: ``commit`` (short sha or None),
    ``dirty``, ``subject``, ``path`` and ``version`` (the local key). Adapters store it where the
    platform allows: as structured metadata, or as :func:`promptops.provenance.message` trimmed to
    the platform's commit-message limit, read back with ``parse_message``.
    """

    prompt: str
    content: Mapping[str, Any]
    digest: str
    provenance: Mapping[str, Any]
    labels: tuple[str, ...] = ()  # moved to the new version with the create (labels_on_create only)
    tags: tuple[str, ...] | None = None  # the prompt's tags, set with the create (metadata_with_create); None: kept


class Provider(Protocol):
    """A connection to one target. Methods raise ``ProviderError`` on remote failures."""

    kind: str
    capabilities: Capabilities

    def lock(self, timeout: float) -> ContextManager[None]:
        """Hold the target's apply lock for a ``with`` block, waiting up to ``timeout`` seconds;
        LockError when another promptops process holds it. Platforms without a lock of their own
        return a no-op context (apply then relies on the staleness re-check)."""
        ...

    def list_names(self) -> list[str]:
        """Names of every prompt the target holds, sorted; cheap (no version contents)."""
        ...

    def read(self, names: Collection[str] | None = None) -> RemoteState:
        """Return the remote state of the named prompts (all prompts when None).

        Names that do not exist remotely are simply absent from the result. Each version's content
        must be turned back into canonical content, so it has the digest it was created from.
        """
        ...

    def create_version(self, new: NewVersion) -> str:
        """Create a version (and the prompt, if missing); return the new remote version id."""
        ...

    def move_label(self, prompt: str, label: str, version_id: str) -> None:
        """Point ``label`` at version ``version_id`` (creating the label if needed)."""
        ...

    def move_labels(self, prompt: str, labels: Sequence[str], version_id: str) -> None:
        """Point every label of ``labels`` at version ``version_id`` in one call, all or none. Only
        called when capabilities.labels_at_once (elsewhere a failure part-way would leave some moved)."""
        ...

    def remove_label(self, prompt: str, label: str) -> None:
        """Remove ``label`` from the prompt. Only called when capabilities.remove_label."""
        ...

    def set_traffic(self, prompt: str, label: str, weights: Mapping[str, int] | None) -> None:
        """Set the weighted split of ``label`` ({remote version id: weight}, summing to 100);
        None removes the split so the label serves its single version."""
        ...

    def update_metadata(self, prompt: str, tags: Collection[str], description: str | None) -> None:
        """Replace the prompt's tags and description."""
        ...

    def delete_prompt(self, prompt: str) -> None:
        """Delete the prompt and all its versions. Only called when capabilities.delete_prompt."""
        ...

    def resolve_user(self, prompt: str, label: str, user: str) -> str:
        """The remote version id the platform serves ``user`` for ``label``. Only called when
        capabilities.server_resolve."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
