"""What every HTTP provider shares: one :class:`~promptops.http.HttpClient`, no platform lock, and
the prompt listing a plan takes once.

Subclasses implement ``_list_all()`` (name -> what the list endpoint says of it, over all pages)
and the reading and writing methods of :class:`~promptops.providers.base.Provider`; they list
through :meth:`RemoteProvider._listing`, which remembers the names for ``list_names``.
"""
from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Collection, ContextManager, Iterable, Mapping, Sequence, TypeVar

from ..config import Target
from ..digest import content_digest
from ..errors import ProviderError
from ..http import HttpClient, HttpSettings

T = TypeVar("T")
R = TypeVar("R")


class RemoteProvider:
    """Base of the platform adapters. ``settings`` is the platform's :class:`HttpSettings`;
    ``sleep`` replaces the retry/pacing sleep (tests)."""

    def __init__(self, target: Target, settings: HttpSettings, sleep: Callable[[float], None] | None = None):
        if sleep is not None:
            settings.sleep = sleep
        self.target = target
        self.http = HttpClient(settings)
        self.concurrency = max(1, target.concurrency)
        self._listed: list[str] | None = None  # every name, from the last full listing (and writes since)
        self._names_lock = threading.Lock()

    def lock(self, timeout: float) -> ContextManager[None]:
        # The platforms have no lock; apply relies on re-reading the remote before it writes.
        return contextlib.nullcontext()

    def list_names(self) -> list[str]:
        # A plan asks for the names right after read(), which listed them: that listing is reused
        # (list endpoints are the platforms' most rate-limited reads).
        if self._listed is None:
            self._listing()
        with self._names_lock:
            return sorted(self._listed or ())

    def _listing(self) -> dict[str, Any]:
        """``_list_all()``, its names remembered for :meth:`list_names`."""
        found = self._list_all()
        with self._names_lock:
            self._listed = list(found)
        return found

    def _wanted(self, names: Collection[str] | None) -> tuple[dict[str, Any], list[str]]:
        """A fresh listing, and the listed names a ``read(names)`` asks for, sorted (names the
        platform does not hold are simply absent). One name is looked up alone where the platform
        can (:meth:`_list_one`): apply reads a prompt again right before each create, and a full
        listing each time would cost a page per 100 prompts of the most rate-limited read."""
        if names is not None and len(names) == 1:
            found = self._list_one(next(iter(names)))
            if found is not None:
                for name in found:
                    self._created(name)
                return found, sorted(found)
        listing = self._listing()
        return listing, sorted(listing if names is None else set(names) & set(listing))

    def _parallel(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``fn`` over ``items`` on up to ``concurrency`` threads, results in order. On Ctrl-C the
        connection is interrupted first, so the pool's threads stop waiting (a 429, a retry) and
        the interrupt is not held up by them."""
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            return list(pool.map(fn, items))
        except KeyboardInterrupt:
            self.interrupt()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _digest(self, name: str, version: Any, content: Mapping[str, Any]) -> str:
        """The digest of a stored version's content; a ProviderError naming the version when it
        holds what prompt content cannot (NaN, say: made outside promptops)."""
        try:
            return content_digest(content)
        except ValueError as exc:
            raise ProviderError(f"target {self.target.name!r}: version {version} of {name!r} cannot be read as a "
                                f"prompt ({exc})") from None

    def retry_create(self, attempt: int, error: ProviderError) -> bool:
        """Whether apply may send a create again after its attempt ``attempt`` (0: the first
        retry) failed ambiguously and a read showed it did not land: within the budget of every
        other request, after the same backoff (:meth:`HttpClient.retry`)."""
        return self.http.retry(attempt, error)

    def interrupt(self) -> int:
        """Apply was interrupted (Ctrl-C): every wait of the connection ends and no request is sent
        any more; those on the wire finish. How many they are (:meth:`HttpClient.interrupt`)."""
        return self.http.interrupt()

    def move_labels(self, prompt: str, labels: Sequence[str], version_id: str) -> None:
        """One ``move_label`` call per label: not all-or-none, which is why apply sends moves
        together only to a platform whose own override is one call (``labels_at_once``)."""
        for label in labels:
            self.move_label(prompt, label, version_id)  # type: ignore[attr-defined]

    def _list_one(self, name: str) -> dict[str, Any] | None:
        """What ``_list_all()`` says of ``name`` alone ({} when the platform has no such prompt),
        from a request filtered by name; None where the platform cannot filter (a full listing
        is used then)."""
        return None

    def _list_all(self) -> dict[str, Any]:
        """name -> what the platform's list says of the prompt, over every page."""
        raise NotImplementedError

    def _created(self, name: str) -> None:
        with self._names_lock:
            if self._listed is not None and name not in self._listed:
                self._listed.append(name)

    def _deleted(self, name: str) -> None:
        with self._names_lock:
            if self._listed is not None and name in self._listed:
                self._listed.remove(name)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
