"""The PromptLab provider (``api.promptlab.dev``): the traffic-split platform.

What PromptLab holds (../shared/providers-api.md section 2; 2.3 are the ``x-emulator-extension``
endpoints promptops needs to bootstrap and read a prompt):

* prompts addressed by id (``prm_...``); promptops finds them by name in the list and creates
  them (``POST /v1/prompts``) on the first apply;
* versions ``v1``, ``v2``, ... holding one content string each (with ``content_hash``); every
  POST makes a new version, identical content included, so promptops dedupes by digest;
* one pointer per prompt: the current deployment, a list of ``{version, weight}`` summing to
  100, changed only by ``POST /v1/prompts/:id/deploy``. ``active_version`` is the last version
  deployed to everyone (where ``rollback`` returns).

How that maps onto promptops (design.md section 4): the target's one managed label (default
``production``) is the deployment. A deployment of one version is that label on that version; a
deployment of several is the label's traffic split, and the label itself reads as
``active_version`` (where the pointer goes when the split ends). Moving the label deploys the
version at 100; a split is one deploy with its versions ordered by number (the platform's resolve
keeps users in place when the newest version, listed last, ramps up); ending a split deploys the
label's version at 100. Rollback is a deploy like any other (``git revert`` + apply), never
``/rollback``. A version's content is its text template (mustache: the platform interpolates
``{{key}}`` itself); model config and tools cannot be stored, which validate reports. The
provenance stamp is the version's ``message``.
"""
from __future__ import annotations

import threading
from typing import Any, Collection, Mapping

from ..config import Target
from ..digest import canonical_content
from ..errors import PromptOpsError, ProviderError
from ..http import HttpSettings, NotFound, RemoteError, segment
from ..model import RemotePrompt, RemoteState, RemoteVersion
from ..provenance import message, parse_message
from .base import CAPABILITIES, Capabilities, NewVersion
from .remote import RemoteProvider

DEFAULT_URL = "https://api.promptlab.dev"
API = "/v1/prompts"
PAGE_LIMIT = 100  # the list's largest page (x-emulator-extension query)
MESSAGE_LIMIT = 500  # the platform states no limit; the same bound as Langfuse's commit message
DEFAULT_LABEL = "production"


class PromptLabProvider(RemoteProvider):
    """A connection to a PromptLab workspace (one API key)."""

    kind = "promptlab"
    capabilities: Capabilities = CAPABILITIES["promptlab"]

    def __init__(self, target: Target, *, transport: Any = None, sleep: Any = None):
        key = target.secret("api_key")
        settings = HttpSettings(
            base_url=target.base_url or DEFAULT_URL, target=target.name, headers={"Authorization": f"Bearer {key}"},
            secrets=(key,), auth_hint=f"the key in {target.credentials['api_key']}", timeout=target.timeout,
            transport=transport, rate_limits=target.rate_limits, platform="PromptLab")
        super().__init__(target, settings, sleep)
        self.pointer = target.labels[0] if target.labels else DEFAULT_LABEL
        self._ids: dict[str, str] = {}  # name -> prompt id, from the last listing and creates
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading

    def _listing(self) -> dict[str, str]:
        found = super()._listing()
        with self._lock:
            self._ids = dict(found)
        return found

    def _list_all(self) -> dict[str, str]:
        """name -> prompt id, over every page of ``GET /v1/prompts``."""
        found: dict[str, str] = {}
        page = 1
        while True:
            body = self.http.get(API, params={"page": page, "limit": PAGE_LIMIT}, what="list prompts", pace="list")
            items = self.http.expect(body, "prompts", list)
            before = len(found)
            with self.http.parsing("list prompts", body):
                for item in items:
                    found[str(item["name"])] = str(item["id"])
            total = body.get("total")
            if isinstance(total, int) and not isinstance(total, bool):
                # follow total, whatever page size the server keeps; a page adding nothing ends it
                # (a server ignoring page would otherwise be asked forever)
                done = len(found) >= total or len(found) == before
            else:  # no total: a short page is the last
                done = len(items) < PAGE_LIMIT or len(found) == before
            if done:
                return found
            page += 1

    def _list_one(self, name: str) -> dict[str, str]:
        """``{name: prompt id}`` from the list filtered by ``name`` (one request), remembered."""
        pid = self._find(name)
        if pid is None:
            return {}
        with self._lock:
            self._ids[name] = pid
        return {name: pid}

    def read(self, names: Collection[str] | None = None) -> RemoteState:
        listing, wanted = self._wanted(names)
        prompts = self._parallel(lambda name: self._read_prompt(name, listing[name]), wanted)
        return RemoteState(prompts={p.name: p for p in prompts})

    def _read_prompt(self, name: str, prompt_id: str) -> RemotePrompt:
        pid = segment(prompt_id)
        try:
            # The deployment first, then the versions: versions are only ever added, so every
            # version a deployment names is in a list read after it (in parallel it might not be).
            detail = self.http.get(f"{API}/{pid}", what=f"read {name!r}")
            listed = self.http.get(f"{API}/{pid}/versions", what=f"read the versions of {name!r}")
        except NotFound as exc:
            # PromptLab cannot delete a prompt, so a listed one that is not found is not "absent":
            # reading it as absent would plan its versions again and duplicate them.
            raise ProviderError(f"{exc}; the prompt is listed, so this server may lack the read endpoints "
                                "promptops needs (GET /v1/prompts/:id and /versions)") from None
        rows = self.http.expect(listed, "versions", list)
        with self.http.parsing(f"the versions of {name!r}", listed):
            versions = tuple(self._version(name, row) for row in rows)
        with self.http.parsing(f"the deployment of {name!r}", detail):
            labels, traffic = self._pointer(detail)
        return RemotePrompt(name=name, versions=versions, labels=labels, traffic=traffic)

    def _pointer(self, detail: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
        """The managed label (and split) from the prompt's current deployment."""
        deployment = detail.get("current_deployment")
        if not deployment:
            return {}, {}
        entries = [(str(e["version"]), int(e["weight"])) for e in deployment.get("traffic") or ()]
        if len(entries) == 1:
            return {self.pointer: entries[0][0]}, {}
        active = detail.get("active_version")
        return ({self.pointer: str(active)} if active else {}), {self.pointer: dict(entries)}

    def _version(self, name: str, row: Mapping[str, Any]) -> RemoteVersion:
        content = self.to_content(row)
        return RemoteVersion(id=str(row["version"]), digest=self._digest(name, row.get("version"), content),
                             content=content,
                             provenance=parse_message(row.get("message")), created_at=row.get("created_at"))

    # ------------------------------------------------------------------ content mapping

    @staticmethod
    def to_content(row: Mapping[str, Any]) -> dict[str, Any]:
        """Canonical content of a stored version: a mustache text template."""
        return canonical_content(type="text", template_format="mustache", template=str(row.get("content") or ""))

    def to_body(self, content: Mapping[str, Any]) -> str:
        """The content string for canonical ``content``; ProviderError for what cannot be stored
        (validate and the planner refuse such files first; this guards direct callers)."""
        unstorable = [k for k in ("model", "tools") if content.get(k)]
        if content.get("type") != "text" or content.get("template_format") != "mustache" or unstorable:
            what = ", ".join(unstorable) or f"a {content.get('type')} {content.get('template_format')} prompt"
            raise ProviderError(f"target {self.target.name!r}: PromptLab stores one mustache text template, "
                                f"not {what}")
        if not content["template"]:  # checked before the prompt is created, so nothing is left behind
            raise ProviderError(f"target {self.target.name!r}: PromptLab cannot store an empty template")
        return str(content["template"])

    # ------------------------------------------------------------------ writing

    def create_version(self, new: NewVersion) -> str:
        text = self.to_body(new.content)
        pid = self._prompt_id(new.prompt)
        row = self.http.request("POST", f"{API}/{segment(pid)}/versions", pace="versions",
                                json_body={"content": text, "message": message(new.provenance, MESSAGE_LIMIT)},
                                what=f"create a version of {new.prompt!r}")
        with self.http.accepted(f"the new version of {new.prompt!r}"):
            return str(self.http.expect(row, "version", str))

    def _prompt_id(self, name: str) -> str:
        """The prompt's id, creating the prompt when the platform has none of that name."""
        with self._lock:
            known = self._ids.get(name)
        if known:
            return known
        try:
            body = self.http.request("POST", API, json_body={"name": name, "description": ""},
                                     what=f"create prompt {name!r}")
            with self.http.accepted(f"prompt {name!r}"):
                pid = str(self.http.expect(body, "id", str))
        except ProviderError as exc:
            # An error answer (400 "already exists": made since the listing) or one lost on the
            # way back: either way the prompt may be there now; look before giving up.
            if not (isinstance(exc, RemoteError) or exc.ambiguous):
                raise
            pid = self._find(name)
            if pid is None:
                raise
        with self._lock:
            self._ids[name] = pid
        self._created(name)
        return pid

    def _find(self, name: str) -> str | None:
        body = self.http.get(API, params={"name": name}, what=f"look up prompt {name!r}", pace="list")
        prompts = self.http.expect(body, "prompts", list)
        with self.http.parsing(f"look up prompt {name!r}", body):
            return next((str(p["id"]) for p in prompts if p.get("name") == name), None)

    def move_label(self, prompt: str, label: str, version_id: str) -> None:
        self._check_label(prompt, label)
        self._deploy(prompt, label, [(version_id, 100)])

    def set_traffic(self, prompt: str, label: str, weights: Mapping[str, int] | None) -> None:
        self._check_label(prompt, label)
        if weights is not None:
            self._deploy(prompt, label, sorted(weights.items(), key=lambda item: _number(item[0])))
            return
        # The split ends: the label's own version takes all traffic. A label move planned with it
        # has already deployed one version; otherwise that is the active version.
        detail = self.http.get(f"{API}/{segment(self._prompt_id(prompt))}", what=f"read {prompt!r}")
        with self.http.parsing(f"the deployment of {prompt!r}", detail):
            deployment = detail.get("current_deployment") or {}
            if len(deployment.get("traffic") or ()) <= 1:
                return
            active = detail.get("active_version")
        if not active:
            raise ProviderError(f"target {self.target.name!r}: {prompt!r} has no version to serve once its split "
                                "ends; declare the label's version in the file")
        self._deploy(prompt, label, [(str(active), 100)])

    def _deploy(self, prompt: str, label: str, traffic: list[tuple[str, int]]) -> None:
        # Deploying the same traffic twice leaves the same pointer, so a lost answer may be retried.
        self.http.request("POST", f"{API}/{segment(self._prompt_id(prompt))}/deploy", pace="deploy", idempotent=True,
                          json_body={"traffic": [{"version": v, "weight": w} for v, w in traffic], "label": label},
                          what=f"deploy {_split(traffic)} of {prompt!r}")

    def _check_label(self, prompt: str, label: str) -> None:
        if label != self.pointer:  # the planner manages only the pointer's label; this guards callers
            raise ProviderError(f"target {self.target.name!r}: PromptLab has one pointer per prompt, mapped to "
                                f"label {self.pointer!r}, so label {label!r} of {prompt!r} cannot be set")

    def remove_label(self, prompt: str, label: str) -> None:
        raise ProviderError(f"target {self.target.name!r}: PromptLab cannot undeploy {prompt!r}; deploy another "
                            "version instead")

    def update_metadata(self, prompt: str, tags: Collection[str], description: str | None) -> None:
        raise ProviderError(f"target {self.target.name!r}: PromptLab stores no tags or description")

    def delete_prompt(self, prompt: str) -> None:
        raise ProviderError(f"target {self.target.name!r}: PromptLab has no API to delete a prompt")

    def resolve_user(self, prompt: str, label: str, user: str) -> str:
        """The version PromptLab serves ``user`` (``POST /v1/resolve``): the platform's own sticky
        assignment, which promptops does not reimplement."""
        if label != self.pointer:
            raise PromptOpsError(f"target {self.target.name!r} (promptlab) serves one deployment per prompt, "
                                 f"mapped to label {self.pointer!r}; resolve --label {self.pointer}")
        try:
            body = self.http.request("POST", "/v1/resolve", json_body={"prompt": prompt, "user_id": user},
                                     idempotent=True, pace="resolve", what=f"resolve {prompt!r}")
        except NotFound:
            raise PromptOpsError(f"prompt {prompt!r} is not deployed on target {self.target.name!r} (promptlab): "
                                 f"its file must declare label {self.pointer!r} (or a traffic split of it), "
                                 "then promptops apply deploys it") from None
        return str(self.http.expect(body, "version", str))


def _number(version: str) -> int:
    """``"v12"`` -> 12 (versions are ordered by number, not as strings)."""
    digits = version.lstrip("vV")
    return int(digits) if digits.isdigit() else 0


def _split(traffic: list[tuple[str, int]]) -> str:
    return ", ".join(f"{v} {w}%" for v, w in traffic)
