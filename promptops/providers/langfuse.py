"""The Langfuse provider (public prompts API v2), and its BrowserStack AI Evals flavour.

What Langfuse holds (../shared/providers-api.md section 4, sdk-contracts.md section 1):

* one row per (name, version); versions are integers from 1; every POST makes a new version;
* a version may compose others with ``@@@langfusePrompt:name=X|label=Y@@@`` (or ``|version=N``) tags,
  which the server inlines when serving unless ``resolve=false``: promptops reads with
  ``resolve=false`` and keeps a tag as content, verbatim;
* labels are unique across a prompt's versions; ``latest`` is the platform's own and always on the
  newest version; ``PATCH .../versions/N {"newLabels": [...]}`` adds labels and takes them off
  every other version, and cannot remove a label (a removal is a plan warning, never a no-op);
* tags are shared by all versions and written only by a create (which rewrites them on every
  version): promptops sends a file's tags with the create of a version, and the plan warns when only
  tags differ; no description; no traffic.

How promptops content maps onto a row (and back, so a version has the digest it was created
from): ``template`` or ``messages`` -> ``prompt`` (a placeholder message is
``{"type": "placeholder", "name": ...}``); the model config -> ``config`` with ``name`` written
as ``model`` (Langfuse's own convention), the tools as ``config.tools``, and a template format
other than mustache as ``config.template_format``. The BrowserStack flavour sends model config and
tools as ``modelParams`` and ``toolList`` instead. The provenance stamp is the ``commitMessage``.
"""
from __future__ import annotations

from typing import Any, Collection, Mapping, Sequence

from ..config import Target
from ..digest import canonical_content
from ..errors import ProviderError
from ..http import HttpSettings, NotFound, segment
from ..model import RemotePrompt, RemoteState, RemoteVersion
from ..provenance import message, parse_message
from .base import CAPABILITIES, Capabilities, NewVersion
from .remote import RemoteProvider

API = "/api/public/v2/prompts"
PAGE_LIMIT = 100  # the API's maximum
COMMIT_MESSAGE_LIMIT = 500
DEFAULT_URLS = {"langfuse": "https://cloud.langfuse.com", "browserstack": "https://evals-api.browserstack.com"}
# config keys promptops writes besides the model parameters
_MODEL_NAME, _TOOLS, _FORMAT = "model", "tools", "template_format"
_FORMATS = ("jinja2", "f-string")  # what promptops writes as config.template_format (mustache is the default)


class LangfuseProvider(RemoteProvider):
    """A connection to a Langfuse project (or the BrowserStack clone)."""

    kind = "langfuse"
    capabilities: Capabilities = CAPABILITIES["langfuse"]

    def __init__(self, target: Target, *, transport: Any = None, sleep: Any = None):
        self.flavour = target.flavour or "langfuse"
        public, secret = target.secret("public_key"), target.secret("secret_key")
        creds = " and ".join(target.credentials[k] for k in ("public_key", "secret_key"))
        settings = HttpSettings(
            base_url=target.base_url or DEFAULT_URLS[self.flavour], target=target.name, auth=(public, secret),
            secrets=(secret,), auth_hint=f"the keys in {creds}", timeout=target.timeout,
            transport=transport, headers={"X-Langfuse-Public-Key": public}, rate_limits=target.rate_limits,
            platform="Langfuse")
        super().__init__(target, settings, sleep)

    # ------------------------------------------------------------------ reading

    def _list_all(self) -> dict[str, list[int]]:
        """name -> version numbers, over every page of the list endpoint."""
        found: dict[str, list[int]] = {}
        page = 1
        while True:
            body = self.http.get(API, params={"page": page, "limit": PAGE_LIMIT}, what="list prompts")
            items = self.http.expect(body, "data", list)
            with self.http.parsing("list prompts", body):
                for item in items:
                    found[str(item["name"])] = sorted(int(v) for v in item.get("versions", []))
                meta = body.get("meta") or body.get("pagination") or {}
                pages = int(meta.get("totalPages") or 0)
            if page >= pages:
                return found
            page += 1

    def _list_one(self, name: str) -> dict[str, list[int]]:
        """``{name: version numbers}`` from the list endpoint filtered by ``name`` (one request)."""
        body = self.http.get(API, params={"name": name, "page": 1, "limit": PAGE_LIMIT}, what=f"look up {name!r}")
        items = self.http.expect(body, "data", list)
        with self.http.parsing(f"look up {name!r}", body):
            return {name: sorted(int(v) for v in item.get("versions", [])) for item in items if item["name"] == name}

    def read(self, names: Collection[str] | None = None) -> RemoteState:
        listing, wanted = self._wanted(names)
        jobs = [(name, v) for name in wanted for v in listing[name]]
        rows = self._parallel(lambda job: self._get_version(*job), jobs)
        by_name: dict[str, list[Mapping[str, Any]]] = {}
        for (name, _), row in zip(jobs, rows):
            if row is not None:  # deleted between the list and the get
                by_name.setdefault(name, []).append(row)
        return RemoteState(prompts={name: self._prompt(name, rows) for name, rows in sorted(by_name.items())})

    def _get_version(self, name: str, version: int) -> Mapping[str, Any] | None:
        try:
            # resolve=false: the stored text, composition tags (@@@langfusePrompt:...@@@) verbatim;
            # the default inlines them, and the inlined text would never match the file's digest
            return self.http.get(f"{API}/{segment(name)}", params={"version": version, "resolve": "false"},
                                 what=f"read {name!r} version {version}")
        except NotFound:
            return None

    def _prompt(self, name: str, rows: list[Mapping[str, Any]]) -> RemotePrompt:
        with self.http.parsing(f"the versions of {name!r}", rows):
            return self._rows_to_prompt(name, rows)

    def _rows_to_prompt(self, name: str, rows: list[Mapping[str, Any]]) -> RemotePrompt:
        rows = sorted(rows, key=lambda r: int(r["version"]))
        labels = {label: str(row["version"]) for row in rows for label in row.get("labels") or ()}
        return RemotePrompt(
            name=name,
            versions=tuple(self._version(name, row) for row in rows),
            labels=dict(sorted(labels.items())),
            tags=tuple(sorted(rows[-1].get("tags") or ())),
        )

    def _version(self, name: str, row: Mapping[str, Any]) -> RemoteVersion:
        content = self.to_content(row)
        return RemoteVersion(id=str(row["version"]), digest=self._digest(name, row.get("version"), content),
                             content=content,
                             provenance=parse_message(row.get("commitMessage")), created_at=row.get("createdAt"))

    # ------------------------------------------------------------------ content mapping

    def to_body(self, content: Mapping[str, Any]) -> dict[str, Any]:
        """The create-request fields for canonical ``content``."""
        model = dict(content.get("model") or {})
        params = {(_MODEL_NAME if k == "name" else k): v for k, v in model.items()}
        tools = list(content.get("tools") or [])
        body: dict[str, Any] = {"type": content["type"]}
        if content["type"] == "text":
            body["prompt"] = content["template"]
        else:
            body["prompt"] = [{"type": "placeholder", "name": m["placeholder"]} if "placeholder" in m
                              else {"role": m["role"], "content": m["content"]} for m in content["messages"]]
        config: dict[str, Any] = {}
        if content["template_format"] != "mustache":
            config[_FORMAT] = content["template_format"]
        if self.flavour == "browserstack":
            body["modelParams"] = params
            body["toolList"] = tools
        else:
            config.update(params)
            if tools:
                config[_TOOLS] = tools
        body["config"] = config
        return body

    def to_content(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Canonical content of a row (the inverse of :meth:`to_body`)."""
        config = row.get("config")
        config = dict(config) if isinstance(config, dict) else {}
        # Rows made outside promptops may hold anything in config: only values promptops could
        # have written are read as its fields; the rest stay model parameters.
        fmt = config.pop(_FORMAT) if config.get(_FORMAT) in _FORMATS else "mustache"
        if self.flavour == "browserstack":
            params = dict(row["modelParams"]) if isinstance(row.get("modelParams"), dict) else {}
            tools = list(row["toolList"]) if isinstance(row.get("toolList"), list) else []
            for key, value in config.items():  # anything set in config by hand still counts
                params.setdefault(key, value)
        else:
            tools = config.pop(_TOOLS) if isinstance(config.get(_TOOLS), list) else []
            params = config
        model = {("name" if k == _MODEL_NAME else k): v for k, v in params.items()}
        if row.get("type") == "chat" or isinstance(row.get("prompt"), list):
            messages = [{"placeholder": m.get("name")} if m.get("type") == "placeholder"
                        else {"role": m.get("role"), "content": m.get("content")} for m in row.get("prompt") or []]
            return canonical_content(type="chat", template_format=fmt, messages=messages, model=model, tools=tools)
        return canonical_content(type="text", template_format=fmt, template=row.get("prompt") or "", model=model,
                                 tools=tools)

    # ------------------------------------------------------------------ writing

    def create_version(self, new: NewVersion) -> str:
        body = {"name": new.prompt, **self.to_body(new.content),
                "labels": sorted(new.labels), "commitMessage": message(new.provenance, COMMIT_MESSAGE_LIMIT)}
        if new.tags is not None:  # a create rewrites the tags of every version; omitted, they are kept
            body["tags"] = list(new.tags)
        row = self.http.request("POST", API, json_body=body, what=f"create a version of {new.prompt!r}")
        self._created(new.prompt)
        with self.http.accepted(f"the new version of {new.prompt!r}"):
            return str(self.http.expect(row, "version", int))

    def move_label(self, prompt: str, label: str, version_id: str) -> None:
        self.move_labels(prompt, (label,), version_id)

    def move_labels(self, prompt: str, labels: Sequence[str], version_id: str) -> None:
        # One PATCH for all: the label route is the rate-limited one (30 a minute on the hobby
        # plan). Idempotent: the labels end on this version however often it is sent.
        names = ", ".join(map(repr, labels))
        self.http.request("PATCH", f"{API}/{segment(prompt)}/versions/{int(version_id)}",
                          json_body={"newLabels": list(labels)}, idempotent=True,
                          what=f"move label{'s' if len(labels) > 1 else ''} {names} of {prompt!r} to version "
                               f"{version_id}")

    def remove_label(self, prompt: str, label: str) -> None:
        raise ProviderError(f"target {self.target.name!r}: Langfuse cannot remove a label ({label!r} of {prompt!r}); "
                            "move it to another version instead")

    def set_traffic(self, prompt: str, label: str, weights: Mapping[str, int] | None) -> None:
        raise ProviderError(f"target {self.target.name!r}: Langfuse has no traffic splits")

    def update_metadata(self, prompt: str, tags: Collection[str], description: str | None) -> None:
        raise ProviderError(f"target {self.target.name!r}: Langfuse sets tags only when a version is created")

    def delete_prompt(self, prompt: str) -> None:
        try:
            self.http.request("DELETE", f"{API}/{segment(prompt)}", what=f"delete {prompt!r}")
        except NotFound:
            pass  # already gone: the goal is reached
        self._deleted(prompt)
