"""The PromptRails provider (``api.promptrails.ai``, ``/api/v1`` with ``X-API-Key``).

What PromptRails holds (../shared/providers-api.md section 3, sdk-contracts.md section 3):

* prompts addressed by id (KSUIDs); promptops finds them by name in ``GET /api/v1/prompts``
  and creates them (``POST /api/v1/prompts``) on the first apply; ``DELETE`` deletes one;
* immutable versions, each a ``system_prompt`` and a ``user_prompt`` (Jinja2, rendered by the
  platform) with a ``config`` object and a ``message``; the ``version`` string is the client's
  choice: promptops writes the first 12 hex digits of the content digest, so the same content
  always gets the same string;
* one current version per prompt (``is_current``, ``is_active`` in API v2), set by
  ``set_current`` on create or by ``promote``; no labels, no traffic.

Envelopes differ between the docs, the SDKs and the official local emulator: lists carry their
page counts in ``meta`` or ``pagination`` (``pages`` or ``total_pages``), errors are flat
(``{"error": "text", "message": ...}``) or nested (``{"error": {"code", "message"}}``); every
variant is read (errors by the shared HTTP layer).

How that maps onto promptops (design.md section 4): the target's one label (default
``production``) is the current version. A text prompt is the user prompt with an empty system
prompt; a chat prompt is exactly a system message and a user message, both non-empty (anything
else is a validation error, as is every format but jinja2). The model config is the version's
``config`` (the platform's own example puts ``temperature`` there), tools under ``config.tools``.
The provenance stamp is the version's ``message``. The prompt's description is its
``description``.
"""
from __future__ import annotations

import threading
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
        seen: set[str] = set()
        page = 1
        while True:
            body = self.http.get(API, params={"page": page, "limit": PAGE_LIMIT}, what="list prompts")
            items = self.http.expect(body, "data", list)
            before = len(seen)
            with self.http.parsing("list prompts", body):
                for item in items:
                    pid = str(item["id"])
                    if pid not in seen:
                        seen.add(pid)
                        found.setdefault(str(item["name"]), []).append(pid)
                more = _more_pages(body, page, len(items))
            if not more or len(seen) == before:  # a page adding nothing ends it
                return found
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
        rows: list[Mapping[str, Any]] = []
        page = 1
        while True:
            body = self.http.get(f"{API}/{pid}/versions", params={"page": page, "limit": PAGE_LIMIT},
                                 what=f"read the versions of {name!r}")
            items = self.http.expect(body, "data", list)
            rows += items
            with self.http.parsing(f"the versions of {name!r}", body):
                paged = isinstance(body.get("meta"), dict) or isinstance(body.get("pagination"), dict)
                if not paged or not items or not _more_pages(body, page, len(items)):
                    return rows
            page += 1

    def _versions_of(self, name: str, rows: list[Mapping[str, Any]]
                     ) -> tuple[tuple[RemoteVersion, ...], dict[str, str]]:
        """The versions oldest first, and shown id -> server id (remembered for promote). A version
        is shown by its version string, or by its server id when the string is not unique in the
        prompt (made by hand)."""
        # oldest first by creation time; the server lists newest first, so equal times (a coarse
        # clock) keep the server's order reversed
        stamps = [str(r.get("created_at") or "") for r in rows]
        rows = list(reversed(rows)) if stamps and stamps[0] >= stamps[-1] else list(rows)
        rows.sort(key=lambda r: str(r.get("created_at") or ""))
        strings = [str(r.get("version") or "") for r in rows]
        versions, ids = [], {}
        for row, string in zip(rows, strings):
            shown = string if string and strings.count(string) == 1 else str(row["id"])
            ids[shown] = str(row["id"])
            content = self.to_content(row)
            versions.append(RemoteVersion(id=shown, digest=self._digest(name, shown, content), content=content,
                                          provenance=parse_message(row.get("message")),
                                          created_at=row.get("created_at")))
        with self._lock:
            self._versions.update({(name, local): server for local, server in ids.items()})
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
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
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
        fields = self.to_body(new.content)
        pid = self._prompt_id(new.prompt, create=True)
        string = short_digest(new.digest)  # the version string: the digest's first 12 hex digits
        body = {"version": string, **fields, "set_current": self.pointer in new.labels,
                "message": message(new.provenance, MESSAGE_LIMIT)}
        try:
            row = self.http.request("POST", f"{API}/{segment(pid)}/versions", json_body=body,
                                    what=f"create a version of {new.prompt!r}")
        except RemoteError as exc:
            if exc.status != 409:
                raise
            # The version string is taken: by this content, created before an answer was lost
            # (the string comes from the digest), or by someone else's version of that name.
            return self._existing(new, pid, string)
        row = self.http.expect(row, "data", dict)
        server = str(self.http.expect(row, "id", str))
        with self._lock:
            self._versions[(new.prompt, string)] = server
        return string

    def _existing(self, new: NewVersion, pid: str, string: str) -> str:
        rows = self._version_rows(new.prompt, segment(pid))
        with self.http.parsing(f"the versions of {new.prompt!r}", rows):
            versions, _ = self._versions_of(new.prompt, rows)
        match = next((v for v in versions if v.id == string and v.digest == new.digest), None)
        if match is None:
            raise ProviderError(f"target {self.target.name!r}: {new.prompt!r} already has a version {string!r} with "
                                "other content (made outside promptops); rename that version in PromptRails")
        if self.pointer in new.labels:
            self.move_label(new.prompt, self.pointer, string)
        return string

    def _prompt_id(self, name: str, *, create: bool) -> str | None:
        """The prompt's id; when it has none and ``create``, the prompt is created. ProviderError
        when several prompts have the name (promptops could not tell which one it manages)."""
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
        self._deleted(prompt)


def _more_pages(body: Mapping[str, Any], page: int, count: int) -> bool:
    """Whether a list answer has pages after ``page``: from ``meta`` or ``pagination`` (``pages``
    or ``total_pages``), else a full page means maybe."""
    for key in ("meta", "pagination"):
        info = body.get(key)
        if isinstance(info, Mapping):
            pages = info.get("pages", info.get("total_pages"))
            if isinstance(pages, int) and not isinstance(pages, bool):
                return page < pages
    return count >= PAGE_LIMIT
