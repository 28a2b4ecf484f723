"""The PromptRails provider (``api.promptrails.ai``, ``/api/v1`` with ``X-API-Key``).

What PromptRails holds (../shared/providers-api.md section 3, sdk-contracts.md section 3):

* prompts addressed by id (KSUIDs); promptops finds them by name in ``GET /api/v1/prompts``
  and creates them (``POST /api/v1/prompts``) on the first apply; ``DELETE`` deletes one;
* immutable versions, each a ``system_prompt`` and a ``user_prompt`` (Jinja2, rendered by the
  platform) with a ``config`` object and a ``message``; the ``version`` string is the client's
  choice: promptops writes the first 12 hex digits of the content digest, so the same content
  always gets the same string. The official local emulator (promptrails-local) does not make
  version strings (or prompt names) unique, a server may: promptops is exact either way (see
  "Duplicates" below);
* one current version per prompt (``is_current``, ``is_active`` in API v2), set by
  ``set_current`` on create or by ``promote``; no labels, no traffic.

Envelopes differ between the docs, the SDKs and the official local emulator: lists carry their
page counts in ``meta`` or ``pagination`` (``pages`` or ``total_pages``, else ``total`` and
``limit``), errors are flat (``{"error": "text", "message": ...}``) or nested (``{"error": {"code",
"message"}}``); every variant is read (errors by the shared HTTP layer).

Paging: lists are asked for 100 a page (the documented maximum) and followed by the page counts
the answer reports, which are computed with the page size the server really used (promptrails-local
silently uses 20 for a ``limit`` it does not take). A prompt list without counts is read until a
page adds nothing; a versions list without counts is the whole list (promptrails-local ignores
``page`` there). Items are taken once by id (a list read while versions are added shifts), and a
page that adds nothing while the counts promise more is an error, never a silently short list.

Duplicates: a version is shown (its promptops id) by its ``version`` string when no other version
of the prompt has that string, else by its server id, so ids stay unique and the current pointer
reads back exactly. Before creating, the version string is looked up in the versions this session
read (the prompt's versions are read first when it has not): a version with the same digest is the
one to use (a create whose answer was lost, a concurrent apply), one with other content is an
error. After an ambiguous create failure that knowledge is dropped, so a retry reads again before
it creates: no server needs to answer 409 for promptops to avoid a duplicate. A server that does
(a string taken since the read) gets the same lookup.

How that maps onto promptops (design.md section 4): the target's one label (default
``production``) is the current version. A text prompt is the user prompt with an empty system
prompt; a chat prompt is exactly a system message and a user message, both non-empty (anything
else is a validation error, as is every format but jinja2). The model config is the version's
``config`` (the platform's own example puts ``temperature`` there), tools under ``config.tools``.
The provenance stamp is the version's ``message``. The prompt's description is its
``description``.
"""
from __future__ import annotations

import math
import re
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Collection, Mapping

from ..config import Target
from ..digest import canonical_content, short_digest
from ..errors import ProviderError
from ..http import HttpSettings, NotFound, RemoteError, segment
from ..model import RemotePrompt, RemoteState, RemoteVersion
from ..provenance import message, parse_message
from .base import CAPABILITIES, Capabilities, NewVersion
from .remote import RemoteProvider

DEFAULT_URL = "https://api.promptrails.ai"
API = "/api/v1/prompts"
PAGE_LIMIT = 100  # the API's maximum
MESSAGE_LIMIT = 500  # the platform states no limit; the same bound as the other platforms' messages
DEFAULT_LABEL = "production"
FORMAT = "jinja2"  # the platform renders Jinja2
_TOOLS = "tools"  # config key holding the tools


class PromptRailsProvider(RemoteProvider):
    """A connection to a PromptRails workspace (one API key, optionally one workspace id)."""

    kind = "promptrails"
    capabilities: Capabilities = CAPABILITIES["promptrails"]

    def __init__(self, target: Target, *, transport: Any = None, sleep: Any = None):
        key = target.secret("api_key")
        headers = {"X-API-Key": key}
        hint = f"the key in {target.credentials['api_key']}"
        if "workspace_id" in target.credentials:
            headers["X-Workspace-ID"] = target.secret("workspace_id")
            hint += f" and the workspace in {target.credentials['workspace_id']}"
        settings = HttpSettings(
            base_url=target.base_url or DEFAULT_URL, target=target.name, headers=headers, secrets=(key,),
            auth_hint=hint, timeout=target.timeout, transport=transport,
            rate_limits=target.rate_limits, platform="PromptRails")
        super().__init__(target, settings, sleep)
        self.pointer = target.labels[0] if target.labels else DEFAULT_LABEL
        self._ids: dict[str, list[str]] = {}  # name -> prompt ids (more than one is an error when used)
        self._versions: dict[tuple[str, str], str] = {}  # (name, version id as shown) -> server version id
        # name -> version string -> [(digest, id as shown)], for the prompts whose versions this
        # session read (or created empty); absent: unknown, read before a create
        self._taken: dict[str, dict[str, list[tuple[str, str]]]] = {}
        self._promote_verb = "POST"  # API v2; PUT for servers of the older API (the Python SDK's verb)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading

    def _listing(self) -> dict[str, list[str]]:
        found = super()._listing()
        with self._lock:
            self._ids = {name: list(ids) for name, ids in found.items()}
        return found

    def _list_all(self) -> dict[str, list[str]]:
        """name -> prompt ids, over every page of ``GET /api/v1/prompts``."""
        found: dict[str, list[str]] = {}
        items = self._pages(API, "list prompts", whole_without_counts=False)
        with self.http.parsing("list prompts", items):
            for item in items:
                found.setdefault(str(item["name"]), []).append(str(item["id"]))
        return found

    def _pages(self, path: str, what: str, *, whole_without_counts: bool) -> list[Mapping[str, Any]]:
        """Every item of a list endpoint, in the server's order, each id once. Pages are followed
        as the answer's counts say (:func:`_page_count`); without counts, one answer is the whole
        list when ``whole_without_counts``, else pages are read until one adds nothing. A page that
        adds nothing while the counts promise more (a server ignoring ``page``) is a ProviderError:
        a short list would plan creates of what exists."""
        items: list[Mapping[str, Any]] = []
        seen: set[str] = set()
        page = 1
        while True:
            body = self.http.get(path, params={"page": page, "limit": PAGE_LIMIT}, what=what)
            chunk = self.http.expect(body, "data", list)
            with self.http.parsing(what, body):
                new = [item for item in chunk if str(item["id"]) not in seen]
                pages = _page_count(body)
            seen.update(str(item["id"]) for item in new)
            items += new
            if pages is None:
                if whole_without_counts or not new:
                    return items
            elif not new and 1 < page <= pages:  # a page the counts promised, with nothing new on it
                raise ProviderError(f"target {self.target.name!r}: PromptRails answered page {page} of {pages} "
                                    f"for {what} with nothing new (is `page` ignored?); promptops stops rather "
                                    "than plan on a partial list")
            elif page >= pages:
                return items
            page += 1

    def read(self, names: Collection[str] | None = None) -> RemoteState:
        _, wanted = self._wanted(names)
        prompts = self._parallel(self._read_prompt, wanted)
        return RemoteState(prompts={p.name: p for p in prompts})

    def _read_prompt(self, name: str) -> RemotePrompt:
        pid = segment(self._prompt_id(name, create=False) or "")
        try:
            # the prompt first, then its versions: versions are only ever added, so the current
            # version the prompt names is in a list read after it
            detail = self.http.expect(self.http.get(f"{API}/{pid}", what=f"read {name!r}"), "data", dict)
            rows = self._version_rows(name, pid)
        except NotFound:
            # deleted since the listing
            return RemotePrompt(name=name)
        with self.http.parsing(f"the versions of {name!r}", rows):
            versions, ids = self._versions_of(name, rows)
        with self.http.parsing(f"{name!r}", detail):
            current = detail.get("current_version_id") or (detail.get("current_version") or {}).get("id")
            current = current or next((r["id"] for r in rows if r.get("is_current") or r.get("is_active")), None)
            description = detail.get("description") or None
        shown = {server: local for local, server in ids.items()}
        labels = {self.pointer: shown[str(current)]} if current and str(current) in shown else {}
        return RemotePrompt(name=name, versions=versions, labels=labels, description=description)

    def _version_rows(self, name: str, pid: str) -> list[Mapping[str, Any]]:
        """Every version of the prompt: a plain list, or pages when the server paginates it."""
        return self._pages(f"{API}/{pid}/versions", f"read the versions of {name!r}", whole_without_counts=True)

    def _versions_of(self, name: str, rows: list[Mapping[str, Any]]
                     ) -> tuple[tuple[RemoteVersion, ...], dict[str, str]]:
        """The versions oldest first, and shown id -> server id (remembered for promote, with the
        version strings for :meth:`create_version`). A version is shown by its version string, or
        by its server id when another version of the prompt has the same string (a duplicate,
        which a server need not refuse), the string is empty, or it is another version's id."""
        rows = _oldest_first(rows)
        strings = [str(r.get("version") or "") for r in rows]
        server_ids = {str(r["id"]) for r in rows}
        versions, ids = [], {}
        taken: dict[str, list[tuple[str, str]]] = {}
        for row, string in zip(rows, strings):
            server = str(row["id"])
            unique = bool(string) and strings.count(string) == 1 and string not in server_ids
            shown = string if unique else server
            ids[shown] = server
            content = self.to_content(row)
            digest = self._digest(name, shown, content)
            taken.setdefault(string, []).append((digest, shown))
            versions.append(RemoteVersion(id=shown, digest=digest, content=content,
                                          provenance=parse_message(row.get("message")),
                                          created_at=row.get("created_at")))
        with self._lock:
            # replaced, not merged: an id shown by its string yesterday may be shown by its server id now
            self._versions = {k: v for k, v in self._versions.items() if k[0] != name}
            self._versions.update({(name, local): server for local, server in ids.items()})
            self._taken[name] = taken
        return tuple(versions), ids

    # ------------------------------------------------------------------ content mapping

    @staticmethod
    def to_content(row: Mapping[str, Any]) -> dict[str, Any]:
        """Canonical content of a stored version (the inverse of :meth:`to_body`)."""
        config = dict(row["config"]) if isinstance(row.get("config"), Mapping) else {}
        tools = config.pop(_TOOLS) if isinstance(config.get(_TOOLS), list) else []
        system, user = str(row.get("system_prompt") or ""), str(row.get("user_prompt") or "")
        if not system:
            return canonical_content(type="text", template_format=FORMAT, template=user, model=config, tools=tools)
        messages: list[Mapping[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return canonical_content(type="chat", template_format=FORMAT, messages=messages, model=config, tools=tools)

    def to_body(self, content: Mapping[str, Any]) -> dict[str, Any]:
        """The version fields for canonical ``content``; ProviderError for what the platform cannot
        store (validate and the planner refuse such files first; this guards direct callers)."""
        problems = self.target.content_gaps(content)
        if content.get("template_format") != FORMAT:
            problems.append(((), f"PromptRails renders Jinja2, not {content.get('template_format')}", ""))
        if problems:
            raise ProviderError(f"target {self.target.name!r}: " + "; ".join(p for _, p, _ in problems))
        if content["type"] == "text":
            system, user = "", content["template"]
        else:
            system, user = (m["content"] for m in content["messages"])
        config = dict(content.get("model") or {})
        if content.get("tools"):
            config[_TOOLS] = list(content["tools"])
        return {"system_prompt": system, "user_prompt": user, "config": config}

    # ------------------------------------------------------------------ writing

    def create_version(self, new: NewVersion) -> str:
        """Create the version named by its digest's first 12 hex digits and return its id as a
        read shows it. A version of the prompt already holding that string and digest is used
        instead (made by a create whose answer was lost, or a concurrent apply), one holding the
        string with other content is a ProviderError: whether or not the server refuses a taken
        string (409), promptops never makes a second version of one string itself."""
        fields = self.to_body(new.content)
        pid = self._prompt_id(new.prompt, create=True)
        assert pid is not None  # create=True: an id or an error
        string = short_digest(new.digest)  # the version string: the digest's first 12 hex digits
        existing = self._holding(new, pid, string)
        if existing is not None:
            return existing
        body = {"version": string, **fields, "set_current": self.pointer in new.labels,
                "message": message(new.provenance, MESSAGE_LIMIT)}
        try:
            row = self.http.request("POST", f"{API}/{segment(pid)}/versions", json_body=body,
                                    what=f"create a version of {new.prompt!r}")
            with self.http.accepted(f"the new version of {new.prompt!r}"):
                server = str(self.http.expect(self.http.expect(row, "data", dict), "id", str))
        except ProviderError as exc:
            self._forget(new.prompt)  # it may have landed (or, 409, been made since the read): read again
            if not isinstance(exc, RemoteError) or exc.status != 409:
                raise
            # a server refusing a taken string: taken since this session read the prompt, by this
            # content (another apply) or by other content
            existing = self._holding(new, pid, string)
            if existing is None:
                raise
            return existing
        with self._lock:
            self._versions[(new.prompt, string)] = server
            known = self._taken.get(new.prompt)
            if known is not None:
                known.setdefault(string, []).append((new.digest, string))
        return string

    def _holding(self, new: NewVersion, pid: str, string: str) -> str | None:
        """The id (as shown) of the oldest version of ``new.prompt`` with version string
        ``string`` and ``new``'s digest, made current when ``new`` carries the pointer; None when
        no version has the string; ProviderError when only versions with other content have it.
        The prompt's versions are read first unless this session knows them. Of several with
        the digest the oldest is used, as the planner does: racing applies pick the same one."""
        with self._lock:
            known = self._taken.get(new.prompt)
        if known is None:
            rows = self._version_rows(new.prompt, segment(pid))
            with self.http.parsing(f"the versions of {new.prompt!r}", rows):
                self._versions_of(new.prompt, rows)
            with self._lock:
                known = self._taken.get(new.prompt, {})
        holders = list(known.get(string, ()))
        same = [shown for digest, shown in holders if digest == new.digest]
        if same:
            if self.pointer in new.labels:
                self.move_label(new.prompt, self.pointer, same[0])
            return same[0]
        if holders:
            raise ProviderError(f"target {self.target.name!r}: {new.prompt!r} already has a version {string!r} with "
                                "other content (made outside promptops); rename that version in PromptRails")
        return None

    def _forget(self, prompt: str) -> None:
        """Drop what this session knows of ``prompt``'s version strings: the next create reads them."""
        with self._lock:
            self._taken.pop(prompt, None)

    def _prompt_id(self, name: str, *, create: bool) -> str | None:
        """The prompt's id, from this session's listing (made first when there is none: a server
        need not refuse a second prompt of one name); when it has none and ``create``, the prompt
        is created. ProviderError when several prompts have the name (promptops could not tell
        which one it manages)."""
        with self._lock:
            ids = self._ids.get(name)
        if not ids and self._listed is None:
            self._listing()
            with self._lock:
                ids = self._ids.get(name)
        if ids and len(ids) > 1:
            raise ProviderError(f"target {self.target.name!r}: {len(ids)} PromptRails prompts are named {name!r} "
                                f"(ids {', '.join(ids)}); delete or rename all but one")
        if ids:
            return ids[0]
        if not create:
            return None
        try:
            body = self.http.request("POST", API, json_body={"name": name, "description": ""},
                                     what=f"create prompt {name!r}")
            with self.http.accepted(f"prompt {name!r}"):
                pid = str(self.http.expect(self.http.expect(body, "data", dict), "id", str))
        except ProviderError as exc:
            # an error answer (made since the listing) or one lost on the way back: either way
            # the prompt may be there now; look before giving up
            if not (isinstance(exc, RemoteError) or exc.ambiguous):
                raise
            self._listing()
            with self._lock:
                found = self._ids.get(name)
            if not found:
                raise
            return self._prompt_id(name, create=False)
        with self._lock:
            self._ids[name] = [pid]
            self._taken[name] = {}  # a new prompt has no versions
        self._created(name)
        return pid

    def _server_id(self, prompt: str, version_id: str) -> str:
        with self._lock:
            server = self._versions.get((prompt, version_id))
        if server is None:
            self.read([prompt])
            with self._lock:
                server = self._versions.get((prompt, version_id))
        if server is None:
            raise ProviderError(f"target {self.target.name!r}: {prompt!r} has no version {version_id!r}")
        return server

    def move_label(self, prompt: str, label: str, version_id: str) -> None:
        if label != self.pointer:  # the planner manages only the pointer's label; this guards callers
            raise ProviderError(f"target {self.target.name!r}: PromptRails has one current version per prompt, "
                                f"mapped to label {self.pointer!r}, so label {label!r} of {prompt!r} cannot be set")
        pid = segment(self._prompt_id(prompt, create=False) or "")
        path = f"{API}/{pid}/versions/{segment(self._server_id(prompt, version_id))}/promote"
        what = f"make version {version_id} of {prompt!r} current"
        verb = self._promote_verb  # read once: another thread may switch it meanwhile
        try:
            # promoting a version twice leaves it current: a lost answer may be retried
            self.http.request(verb, path, json_body={}, idempotent=True, what=what)
        except RemoteError as exc:
            # the Python SDK and the official local emulator promote with PUT, API v2 with POST
            if exc.status not in (404, 405) or verb != "POST":
                raise
            self.http.request("PUT", path, json_body={}, idempotent=True, what=what)
            self._promote_verb = "PUT"

    def remove_label(self, prompt: str, label: str) -> None:
        raise ProviderError(f"target {self.target.name!r}: PromptRails always has a current version once one is "
                            f"promoted; promote another version of {prompt!r} instead")

    def set_traffic(self, prompt: str, label: str, weights: Mapping[str, int] | None) -> None:
        raise ProviderError(f"target {self.target.name!r}: PromptRails has no traffic splits")

    def update_metadata(self, prompt: str, tags: Collection[str], description: str | None) -> None:
        pid = segment(self._prompt_id(prompt, create=True) or "")
        # setting the same description twice is the same result
        self.http.request("PATCH", f"{API}/{pid}", json_body={"description": description or ""}, idempotent=True,
                          what=f"set the description of {prompt!r}")

    def delete_prompt(self, prompt: str) -> None:
        pid = self._prompt_id(prompt, create=False)
        if pid is not None:
            try:
                self.http.request("DELETE", f"{API}/{segment(pid)}", what=f"delete {prompt!r}")
            except NotFound:
                pass  # already gone: the goal is reached
        with self._lock:
            self._ids.pop(prompt, None)
            self._taken.pop(prompt, None)
            self._versions = {k: v for k, v in self._versions.items() if k[0] != prompt}
        self._deleted(prompt)


def _page_count(body: Mapping[str, Any]) -> int | None:
    """The number of pages a list answer reports in ``meta`` or ``pagination``: ``pages`` or
    ``total_pages``, else ``ceil(total / limit)`` (the limit the server used, which need not be
    the one asked for); None when it reports none."""
    for key in ("meta", "pagination"):
        info = body.get(key)
        if not isinstance(info, Mapping):
            continue
        pages = _int(info.get("pages", info.get("total_pages")))
        total, limit = _int(info.get("total")), _int(info.get("limit"))
        if pages is not None:
            return pages
        if total is not None and limit is not None and limit > 0:
            return math.ceil(total / limit)
    return None


def _int(value: Any) -> int | None:
    """``value`` when it is a JSON integer (not a boolean), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


_STAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:?\d\d)?")


def _moment(value: Any) -> tuple[datetime, int] | None:
    """A ``created_at`` as (UTC second, nanoseconds), or None when it is not RFC 3339. Go servers
    (promptrails-local) trim the fraction's trailing zeros, so the text does not sort: ``…:00Z``
    is earlier than ``…:00.5Z``, ``….1Z`` than ``….12Z``. No zone is read as UTC."""
    m = _STAMP.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    nanos = int((m.group(7) or "0")[:9].ljust(9, "0"))
    zone = (m.group(8) or "Z").upper()
    offset = timedelta(0) if zone == "Z" else \
        (1 if zone[0] == "+" else -1) * timedelta(hours=int(zone[1:3]), minutes=int(zone[-2:]))
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
    except ValueError:
        return None
    return moment.astimezone(timezone.utc), nanos


def _oldest_first(rows: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Version rows oldest first: by creation time when every row has a readable one (equal times,
    a coarse clock, keep the server's order, read as newest first unless its times say otherwise),
    else the server's order reversed (every PromptRails server lists newest first)."""
    pairs: list[tuple[tuple[datetime, int], Mapping[str, Any]]] = []
    for row in rows:
        moment = _moment(row.get("created_at"))
        if moment is None:
            return list(reversed(rows))
        pairs.append((moment, row))
    if pairs and pairs[0][0] >= pairs[-1][0]:  # newest first (or all equal)
        pairs.reverse()
    pairs.sort(key=lambda pair: pair[0])  # stable: equal times keep the order above
    return [row for _, row in pairs]
