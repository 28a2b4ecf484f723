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
* Ctrl-C (see :func:`apply_plan`): the first one says at once how many calls are in flight, ends
  every wait (retry backoff, rate limits, pacing) so those calls give up, and lets the calls on the
  wire finish; the second stops waiting for them, which are then "may have been applied". Both end
  in the usual report, never in silence.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Mapping

from .composition import dependencies, dependency_order
from .errors import ApplyFailed, Interrupted, ProviderError, StalePlanError
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
    """Make the plan's calls. Raises ApplyFailed (applied, may have been applied, not applied) on
    the first failure, and when interrupted: a KeyboardInterrupt in the calling thread (Ctrl-C;
    the main thread, which receives signals), which this function handles itself:

    * The first one prints at once ``Interrupt received: finishing N calls in flight, starting no
      new ones`` (N: the requests on the wire, from the provider's ``interrupt()`` where it has one,
      else the calls under way), and ends every wait of the provider (``interrupt()``: retry
      backoff, 429 waits, pacing), so the calls waiting give up: not applied, except a create an
      earlier attempt of which was ambiguous. No call starts after it; the N calls finish, then
      ApplyFailed is raised.
    * A second one stops waiting for them at once: they are "may have been applied" (their outcome
      is unknown), and ApplyFailed is raised.

    Prompts run on daemon threads, so that a call the second Ctrl-C gave up on cannot hold the
    process at exit (the interpreter waits for every other thread, a ThreadPoolExecutor's too)."""
    by_prompt: dict[str, list[Action]] = {}
    for action in plan.actions:
        by_prompt.setdefault(action.prompt, []).append(action)
    result = ApplyResult()
    lock = threading.Lock()  # guards the lists below, so that one snapshot of them is consistent
    stop = threading.Event()
    done: list[str] = []
    maybe: list[str] = []  # failed ambiguously: the request may have landed
    failures: list[Exception] = []
    crashed: list[BaseException] = []  # a bug outside the calls: raised here, as a future would
    running: dict[int, list[Action]] = {}  # thread id -> the action under way, and the actions it carries
    ctrl_c = threading.Event()  # the stop is an interruption, not a failure
    quiet = threading.Event()  # the run was abandoned: its report is made, threads print no more

    def say(message: str) -> None:
        if not quiet.is_set():
            progress(message)

    def run_prompt(actions: list[Action]) -> None:
        carried = _carried_labels(actions, provider)
        me = threading.get_ident()
        for action in actions:
            if id(action) in carried.moves or id(action) in carried.batched:
                continue  # done with the create of its version, or with the label move it rides on
            # the label moves (and metadata) a create carries, the moves batched with a move: done
            # (or may be, or not) with it, so never listed as not applied after it
            covered = [action, *carried.riders(action, actions)]
            with lock:  # one step with the check: no action starts after the stop's snapshot
                if stop.is_set():
                    return
                running[me] = covered
            try:
                created = _run(action, provider, result.created, plan, carried, stop)
            except Exception as exc:  # noqa: BLE001 - every failure stops the run and is reported
                with lock:
                    del running[me]
                    failures.append(exc)
                    ambiguous = isinstance(exc, ProviderError) and exc.ambiguous
                    if ambiguous:  # it may have landed, and what it carried with it
                        maybe.extend(describe_action(a) for a in covered)
                stop.set()
                outcome = "failed"
                if isinstance(exc, Interrupted) and not ambiguous:  # it gave up waiting, or was never sent
                    outcome = f"not applied ({'interrupted' if ctrl_c.is_set() else 'stopped'})"
                say(f"{describe_action(action)}: {outcome}")
                return
            with lock:  # one step: a snapshot sees the action under way or done, never neither
                del running[me]
                done.extend(describe_action(a) for a in covered)
                for a in covered:
                    result.counts[a.kind] = result.counts.get(a.kind, 0) + 1
                if created:
                    result.created[(action.prompt, action.version)] = created  # type: ignore[union-attr]
            say(f"{describe_action(action)}: done" + (f" [{version_label(created)}]" if created else ""))
            for rider in covered[1:]:
                say(f"{describe_action(rider)}: done")

    # A version composing another prompt of the plan is refused until that prompt's versions and
    # labels exist, so a prompt starts once the prompts it composes are done. Prompts are taken
    # in that order and wait only on earlier ones, so no thread waits on a prompt not yet taken.
    deps = dependencies(plan.actions, provider.capabilities.composition)
    order = dependency_order(list(by_prompt), deps)
    settled = {name: threading.Event() for name in order}
    pending = list(order)

    def run_in_order(prompt: str) -> None:
        try:
            for earlier in order[: order.index(prompt)]:
                if earlier in deps.get(prompt, ()):
                    settled[earlier].wait()
            if not stop.is_set():  # a prompt it composes failed: it would be refused
                run_prompt(by_prompt[prompt])
        except BaseException as exc:  # noqa: BLE001 - a bug: the calling thread raises it
            with lock:
                crashed.append(exc)
            stop.set()
        finally:
            settled[prompt].set()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                prompt = pending.pop(0)
            run_in_order(prompt)

    def never_started() -> None:
        # the prompts no thread took: settled now, so waiting on every prompt ends
        with lock:
            untaken, pending[:] = pending[:], []
        for prompt in untaken:
            settled[prompt].set()

    interrupted = abandoned = False
    try:
        for n in range(min(max(1, concurrency), len(order))):
            threading.Thread(target=worker, name=f"promptops-apply-{n}", daemon=True).start()
        for prompt in order:
            settled[prompt].wait()
    except KeyboardInterrupt:
        interrupted = True
        try:  # from the first statement on: a second Ctrl-C (a double tap) lands here too
            ctrl_c.set()
            stop.set()
            never_started()
            stopping: Callable[[], int] | None = getattr(provider, "interrupt", None)
            with lock:  # the line comes first: the calls it wakes report under this lock
                in_flight = stopping() if stopping is not None else len(running)
                progress(f"Interrupt received: finishing {plural(in_flight, 'call')} in flight, "
                         "starting no new ones")
            for prompt in order:
                settled[prompt].wait()
        except KeyboardInterrupt:
            abandoned = True
    with lock:
        stop.set()  # again: the second Ctrl-C may have come before the first set it
        if abandoned:
            quiet.set()
            # their outcome is unknown (a call waiting out a rate limit when the first Ctrl-C had
            # no time to end its wait is among them: "may have been applied" is never wrong)
            unknown = [describe_action(a) for covered in running.values() for a in covered]
            if unknown:
                progress(f"Interrupt received again: not waiting for {plural(len(running), 'call')} in flight "
                         "(may have been applied)")
            maybe.extend(unknown)
        done_now, maybe_now, failed = list(done), list(maybe), list(failures)
    if crashed and not interrupted:
        raise crashed[0]
    if failed or interrupted:
        settled_or_maybe = set(done_now) | set(maybe_now)
        not_done = [describe_action(a) for a in plan.actions if describe_action(a) not in settled_or_maybe]
        cause: BaseException = KeyboardInterrupt() if interrupted else failed[0]
        raise ApplyFailed(cause, done_now, not_done, interrupted=interrupted, abandoned=abandoned,
                          maybe=[text for text in dict.fromkeys(maybe_now) if text not in done_now])
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
         carried: _Carried, stop: threading.Event) -> str | None:
    """One provider call; returns the remote id for a created version. ``stop``: the run stops (a
    failure elsewhere, Ctrl-C), so a create sends no further request of its own."""
    if isinstance(action, CreateVersion):
        provenance = stamp(plan.commit, plan.commit_subject, plan.dirty, action.path, action.version)
        return _create(provider, NewVersion(action.prompt, action.content, action.digest, provenance,
                                            labels=carried.labels.get(action.version, ()), tags=carried.tags), stop)
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


def _create(provider: Provider, new: NewVersion, stop: threading.Event | None = None) -> str:
    """Create ``new`` unless the prompt, read again right now, already has its digest (the oldest
    such version is used, its labels moved there). An ambiguous failure (the create may have
    landed) is followed by the same look-up and, when it finds nothing, by the create again, up to
    the provider's retry budget, except after a timeout (``pending``: the platform may still be
    making it, unseen by the look-up), which is not sent again in this run; once any attempt was ambiguous, every failure after it is
    ambiguous too (:func:`_after_ambiguous`), so it is reported as "may have been applied". Once
    ``stop`` is set no further request is sent: Interrupted (ambiguous after an ambiguous attempt)."""
    earlier: ProviderError | None = None  # the last ambiguous failure
    retries = 0
    while True:
        try:
            _unless_stopped(stop, new)
            found = _holding(provider, new)  # after the last ambiguous attempt too: it may have landed
        except ProviderError as exc:
            if earlier is None:
                raise
            raise _after_ambiguous(exc, new) from None
        if found is not None:
            return found
        try:
            if earlier is not None:
                # after a timeout the platform may still be making it, where the look-up cannot see it
                # yet: sending it again could make it twice, so it is left to the next apply to find
                if earlier.pending or not _may_retry(provider, retries, earlier):  # Interrupted on Ctrl-C
                    raise earlier
                retries += 1
            _unless_stopped(stop, new)
        except ProviderError as exc:
            if earlier is None or exc is earlier:
                raise
            raise _after_ambiguous(exc, new) from None
        try:
            return provider.create_version(new)
        except ProviderError as exc:
            if not exc.ambiguous:
                if earlier is None:
                    raise
                raise _after_ambiguous(exc, new) from None
            earlier = exc


def _unless_stopped(stop: threading.Event | None, new: NewVersion) -> None:
    """Interrupted when the run stopped: the next request of the create of ``new`` is not sent."""
    if stop is not None and stop.is_set():
        raise Interrupted(f"create version of {new.prompt!r} not sent: apply stopped")


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
