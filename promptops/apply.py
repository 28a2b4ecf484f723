"""The apply engine: walks a Plan's actions and makes the provider calls (design.md section 5).

* Saved plans are checked for staleness first: the remote state of every prompt the plan touches
  is read again and compared with the snapshot in the plan.
* Per prompt, actions run in plan order (create versions, labels, traffic, metadata); prompts run
  in parallel up to the target's concurrency, except that a prompt whose new version composes
  another prompt of the plan starts after that prompt is done (the platform refuses a version
  naming a label or version that does not exist yet).
* On the first failure no new action starts; calls already in flight finish; the error lists what
  was applied, what may have been (an ambiguous failure: the request may have landed) and what was
  not. Re-running plan/apply converges, because versions are matched by digest.
* Right before each create, the prompt alone is read again and the digest looked for: a version
  another apply made since the plan (two CI jobs racing) is used instead of a duplicate, the oldest
  of several, as the planner picks. After an ambiguous create failure (a 5xx, a lost or unreadable
  answer) the same look-up runs before the create is sent again, within the retry budget every
  other call has; once any attempt was ambiguous, the create's failure is "may have been applied".
  Between that read and the create there is still a window that only a platform's own unique or
  conditional create can close (PromptRails' version string with a server refusing duplicates);
  the CI concurrency group is what serialises applies to one target.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Mapping

from .composition import dependencies, dependency_order
from .errors import ApplyFailed, ProviderError, StalePlanError
from .model import (
    Action,
    CreateVersion,
    DeletePrompt,
    MoveLabel,
    Plan,
    RemoveLabel,
    SetTraffic,
    UpdateMetadata,
    snapshot_of,
)
from .provenance import stamp
from .providers.base import NewVersion, Provider
from .render import describe_action, plural, remote_split, version_label

Progress = Callable[[str], None]


@dataclass
class ApplyResult:
    """What was done: counts per action kind, and remote ids of the versions created."""

    counts: dict[str, int] = field(default_factory=dict)
    created: dict[tuple[str, str], str] = field(default_factory=dict)

    def summary(self) -> str:
        c = self.counts
        return ("Apply complete! "
                f"{plural(c.get('create_version', 0), 'version')} created, "
                f"{plural(c.get('move_label', 0), 'label')} moved, "
                + (f"{plural(c['remove_label'], 'label')} removed, " if c.get("remove_label") else "")
                + f"{plural(c.get('set_traffic', 0), 'traffic split')} changed, "
                + (f"{plural(c['update_metadata'], 'metadata update')} made, " if c.get("update_metadata") else "")
                + f"{plural(c.get('delete_prompt', 0), 'prompt')} deleted.")


def check_fresh(plan: Plan, provider: Provider) -> None:
    """Raise StalePlanError, saying what changed, when the remote differs from the plan's snapshot."""
    names = list(plan.remote)
    if not names:
        return
    now = snapshot_of(provider.read(names), names)
    if now == dict(plan.remote):
        return
    changes = []
    for name in names:
        before, after = plan.remote.get(name), now.get(name)
        if before == after:
            continue
        if before is None:
            changes.append(f"{name} was created")
        elif after is None:
            changes.append(f"{name} was deleted")
        else:
            changes.append(f"{name}: {_describe_diff(before, after)}")
    raise StalePlanError("plan is stale: the remote changed since the plan was made ("
                         + "; ".join(changes) + "); run promptops plan again")


def _describe_diff(before: Mapping, after: Mapping) -> str:
    """What changed between two snapshots of one prompt, in the words of the plan output."""
    parts: list[str] = []
    for word, ids in (("added", [v for v in after["versions"] if v not in before["versions"]]),
                      ("removed", [v for v in before["versions"] if v not in after["versions"]])):
        if ids:
            parts.append(f"version{'s' if len(ids) > 1 else ''} {', '.join(map(version_label, ids))} {word}")
    for label in sorted(set(before["labels"]) | set(after["labels"])):
        old, new = before["labels"].get(label), after["labels"].get(label)
        if old != new:
            parts.append(f"label {label} " + ("removed" if new is None else f"added on {version_label(new)}"
                         if old is None else f"{version_label(old)} -> {version_label(new)}"))
    for label in sorted(set(before["traffic"]) | set(after["traffic"])):
        old, new = before["traffic"].get(label), after["traffic"].get(label)
        if old != new:
            parts.append(f"traffic {label} {remote_split(old)} -> {remote_split(new)}")
    if before["tags"] != after["tags"]:
        parts.append(f"tags {before['tags']} -> {after['tags']}")
    if before["description"] != after["description"]:
        parts.append("description changed")
    return ", ".join(parts) or "changed"


def apply_plan(plan: Plan, provider: Provider, *, concurrency: int = 1, progress: Progress = lambda _: None
               ) -> ApplyResult:
    """Make the plan's calls. Raises ApplyFailed (with done/not-done lists) on the first failure."""
    by_prompt: dict[str, list[Action]] = {}
    for action in plan.actions:
        by_prompt.setdefault(action.prompt, []).append(action)
    result = ApplyResult()
    lock = threading.Lock()
    stop = threading.Event()
    done: list[str] = []
    maybe: list[str] = []  # failed ambiguously: the request may have landed
    failures: list[Exception] = []

    def finished(action: Action, created: str | None = None) -> None:
        text = describe_action(action)
        with lock:
            done.append(text)
            result.counts[action.kind] = result.counts.get(action.kind, 0) + 1
            if created:
                result.created[(action.prompt, action.version)] = created  # type: ignore[union-attr]
        progress(f"{text}: done" + (f" [{version_label(created)}]" if created else ""))

    def run_prompt(actions: list[Action]) -> None:
        carried = _carried_labels(actions, provider)
        for action in actions:
            if stop.is_set():
                return
            if id(action) in carried.moves or id(action) in carried.batched:
                continue  # done with the create of its version, or with the label move it rides on
            try:
                created = _run(action, provider, result.created, plan, carried)
            except Exception as exc:  # noqa: BLE001 - every failure stops the run and is reported
                with lock:
                    failures.append(exc)
                    if isinstance(exc, ProviderError) and exc.ambiguous:
                        # it may have landed, and what it carried with it
                        maybe.extend(describe_action(a) for a in (action, *carried.riders(action, actions)))
                stop.set()
                progress(f"{describe_action(action)}: failed")
                return
            finished(action, created)
            # the label moves (and metadata) a create carried, the moves batched with a move, are
            # done now: a later failure must not list them as not applied
            for rider in carried.riders(action, actions):
                finished(rider)

    # A version composing another prompt of the plan is refused until that prompt's versions and
    # labels exist, so a prompt starts once the prompts it composes are done. Prompts are submitted
    # in that order and wait only on earlier ones, so a full pool never waits on a queued prompt.
    deps = dependencies(plan.actions, provider.capabilities.composition)
    order = dependency_order(list(by_prompt), deps)
    settled = {name: threading.Event() for name in order}

    def run_in_order(prompt: str) -> None:
        try:
            for earlier in order[: order.index(prompt)]:
                if earlier in deps.get(prompt, ()):
                    settled[earlier].wait()
            if not stop.is_set():  # a prompt it composes failed: it would be refused
                run_prompt(by_prompt[prompt])
        finally:
            settled[prompt].set()

    pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
    interrupted: BaseException | None = None
    try:
        for future in [pool.submit(run_in_order, name) for name in order]:
            future.result()
    except KeyboardInterrupt as exc:
        # Ctrl-C: prompts not yet started never start, running ones stop before their next call.
        interrupted = exc
        stop.set()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if failures or interrupted:
        settled_or_maybe = set(done) | set(maybe)
        not_done = [describe_action(a) for a in plan.actions if describe_action(a) not in settled_or_maybe]
        raise ApplyFailed(interrupted or failures[0], done, not_done, interrupted=interrupted is not None,
                          maybe=[text for text in dict.fromkeys(maybe) if text not in done])
    return result


@dataclass
class _Carried:
    """Label moves a create carries (``labels_on_create`` providers): labels by version key, and
    the MoveLabel actions that need no call of their own."""

    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    moves: set[int] = field(default_factory=set)  # id() of the actions: content mappings are unhashable
    tags: tuple[str, ...] | None = None  # the UpdateMetadata's tags, sent with every create (metadata_with_create)
    metadata_by: str | None = None  # the version key of the first create, which reports the metadata done
    # labels_at_once: the first move of a label to a version carries the other moves to it (one call)
    batches: dict[int, list[MoveLabel]] = field(default_factory=dict)
    batched: set[int] = field(default_factory=set)

    def riders(self, action: Action, actions: list[Action]) -> list[Action]:
        """The actions that need no call of their own because ``action``'s call does them: the
        label moves (and metadata) a create carries, the moves batched with a label move."""
        if isinstance(action, CreateVersion):
            return [a for a in actions if id(a) in self.moves and (
                a.to.version == action.version if isinstance(a, MoveLabel) else self.metadata_by == action.version)]
        return list(self.batches.get(id(action), ()))


def _carried_labels(actions: list[Action], provider: Provider) -> _Carried:
    carried = _Carried()
    caps = provider.capabilities
    creating = [a.version for a in actions if isinstance(a, CreateVersion)]
    if caps.labels_at_once:
        leaders: dict[tuple[str | None, str | None], MoveLabel] = {}
        for action in actions:
            if not isinstance(action, MoveLabel) or (
                    caps.labels_on_create and action.to.remote_version is None and action.to.version in creating):
                continue  # carried by the create instead
            leader = leaders.setdefault((action.to.remote_version, action.to.version), action)
            if leader is not action:
                carried.batches.setdefault(id(leader), []).append(action)
                carried.batched.add(id(action))
    if caps.metadata_with_create and creating:
        for action in actions:
            if isinstance(action, UpdateMetadata):
                carried.tags = tuple(action.to.get("tags", ()))
                carried.metadata_by = creating[0]
                carried.moves.add(id(action))
    if not caps.labels_on_create:
        return carried
    for action in actions:
        if isinstance(action, MoveLabel) and action.to.remote_version is None and action.to.version in creating:
            key = str(action.to.version)
            carried.labels[key] = (*carried.labels.get(key, ()), action.label)
            carried.moves.add(id(action))
    return carried


def _run(action: Action, provider: Provider, created: Mapping[tuple[str, str], str], plan: Plan,
         carried: _Carried) -> str | None:
    """One provider call; returns the remote id for a created version."""
    if isinstance(action, CreateVersion):
        provenance = stamp(plan.commit, plan.commit_subject, plan.dirty, action.path, action.version)
        return _create(provider, NewVersion(action.prompt, action.content, action.digest, provenance,
                                            labels=carried.labels.get(action.version, ()), tags=carried.tags))
    if isinstance(action, MoveLabel):
        target = action.to.remote_version or created[(action.prompt, action.to.version)]
        followers = carried.batches.get(id(action))
        if followers:
            provider.move_labels(action.prompt, (action.label, *(f.label for f in followers)), target)
        else:
            provider.move_label(action.prompt, action.label, target)
    elif isinstance(action, RemoveLabel):
        provider.remove_label(action.prompt, action.label)
    elif isinstance(action, SetTraffic):
        weights = None
        if action.to is not None:
            weights = {(action.to_remote.get(k) or created[(action.prompt, k)]): w for k, w in action.to.items()}
        provider.set_traffic(action.prompt, action.label, weights)
    elif isinstance(action, UpdateMetadata):
        provider.update_metadata(action.prompt, action.to.get("tags", ()), action.to.get("description"))
    elif isinstance(action, DeletePrompt):
        provider.delete_prompt(action.prompt)
    return None


DEFAULT_CREATE_RETRIES = 4  # for providers without a retry budget of their own (HttpSettings.max_retries)


def _create(provider: Provider, new: NewVersion) -> str:
    """Create ``new`` unless the prompt, read again right now, already has its digest (the oldest
    such version is used, its labels moved there). An ambiguous failure (the create may have
    landed) is followed by the same look-up and, when it finds nothing, by the create again, up to
    the provider's retry budget; once any attempt was ambiguous, every failure after it is
    ambiguous too (:func:`_after_ambiguous`), so it is reported as "may have been applied"."""
    earlier: ProviderError | None = None  # the last ambiguous failure
    retries = 0
    while True:
        try:
            found = _holding(provider, new)  # after the last ambiguous attempt too: it may have landed
        except ProviderError as exc:
            if earlier is None:
                raise
            raise _after_ambiguous(exc, new) from None
        if found is not None:
            return found
        if earlier is not None:
            if not _may_retry(provider, retries, earlier):
                raise earlier
            retries += 1
        try:
            return provider.create_version(new)
        except ProviderError as exc:
            if not exc.ambiguous:
                if earlier is None:
                    raise
                raise _after_ambiguous(exc, new) from None
            earlier = exc


def _holding(provider: Provider, new: NewVersion) -> str | None:
    """The id of the oldest version of ``new.prompt`` with its digest, read now (that prompt only),
    with ``new``'s labels moved onto it (a create that landed without its answer may not have set
    them; one made by another apply set them there); None when no version has the digest."""
    existing = provider.read([new.prompt]).prompts.get(new.prompt)
    version = next((v for v in (existing.versions if existing else ()) if v.digest == new.digest), None)
    if version is None:
        return None
    if new.labels and provider.capabilities.labels_at_once:
        provider.move_labels(new.prompt, new.labels, version.id)
    else:
        for label in new.labels:
            provider.move_label(new.prompt, label, version.id)
    return version.id


def _may_retry(provider: Provider, attempt: int, error: ProviderError) -> bool:
    """Whether an ambiguous create may be sent again (the provider's budget and backoff when it has
    them: ``RemoteProvider.retry_create``)."""
    retry: Callable[[int, ProviderError], bool] | None = getattr(provider, "retry_create", None)
    return retry(attempt, error) if retry is not None else attempt < DEFAULT_CREATE_RETRIES


def _after_ambiguous(exc: ProviderError, new: NewVersion) -> ProviderError:
    """``exc`` (a failure after an earlier attempt of the create failed ambiguously) as an
    ambiguous error: that earlier attempt may have landed, whatever this one says."""
    return ProviderError(f"{exc} (an earlier attempt to create the version of {new.prompt!r} may have taken effect; "
                         "run plan again to see)", ambiguous=True, status=exc.status)
