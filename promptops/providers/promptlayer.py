"""The PromptLayer provider (``api.promptlayer.com``, REST API with ``X-API-KEY``).

What PromptLayer holds (../shared/providers-api.md section 1, sdk-contracts.md section 2):

* prompt templates (integer ``id``, unique ``prompt_name``) with versions numbered 1, 2, ... per
  template; every publish (``POST /rest/prompt-templates``) makes a new version, identical
  content included, so promptops matches by digest and never publishes the same content twice;
* release labels: unique per template, each on one version; a publish carries the labels that
  move to the new version (``release_labels``), and ``/prompt-templates/{id}/labels``,
  ``POST /prompts/{id}/label``, ``PATCH`` and ``DELETE /prompt-labels/{label_id}`` read, create,
  move and delete them. A/B releases (several versions behind one label) exist only in the UI:
  there is no API to read or write them, so traffic splits are a validation error;
* there is no API to list a template's versions (each is read with ``?version=N`` up to the
  latest the list reports) and none to delete a template.

How promptops content maps onto a version (and back, so a version has the digest it was created
from): a text prompt is a ``completion`` template with one text block and the prompt's
``template_format``; a chat prompt is a ``chat`` template, each message one text block with the
format, a placeholder message ``{"role": "placeholder", "name": ...}``, tools in ``tools``. The
model config is ``metadata.model``: ``provider`` and ``name`` as themselves, every other key in
``parameters``. ``input_variables`` are written for the platform's own rendering and ignored when
reading. The provenance stamp is the ``commit_message`` (72 characters at most). Mustache is not
a PromptLayer format (f-string and jinja2 are), so mustache files are a validation error.

What the platform fills in on its own is not content: stored model metadata carries ``api_type:
"chat-completions"``, ``display_params: {}``, ``base_model`` and ``model_config_display_name``
null, text blocks ``id`` and ``annotations`` null (the SDK's recorded real answers), and a version
promptops published reads back with the digest it was published with. Only values a file cannot
express (a real ``display_params``, a ``base_model``, block annotations...) make a version "made in
the web app", with a digest of its own.

A publish answer need not name the new version: the recorded real answer of 2025-04 and the SDK's
type carry no ``version_number``/``prompt_version_id``. Then the template is read back and the
version found by its digest; when it cannot be, the outcome is ambiguous (it may have landed).
"""
from __future__ import annotations

import threading
from typing import Any, Collection, Mapping

from ..config import Target
from ..digest import canonical_content, sha256_of, short_digest
from ..errors import PromptOpsError, ProviderError
from ..http import HttpSettings, NotFound, RemoteError
from ..model import RemotePrompt, RemoteState, RemoteVersion
from ..provenance import message, parse_message
from ..templates import analyze
from .base import CAPABILITIES, Capabilities, NewVersion
from .remote import RemoteProvider

DEFAULT_URL = "https://api.promptlayer.com"
PER_PAGE = 100
# From the capabilities validate checks files against, so the two never disagree:
COMMIT_MESSAGE_LIMIT = int(CAPABILITIES["promptlayer"].message_limit)  # type: ignore[arg-type]  # the API's 72
DEFAULT_FORMAT = str(CAPABILITIES["promptlayer"].message_format)  # a message naming no format is f-string
_MODEL_KEYS = ("provider", "name")  # metadata.model keys besides "parameters"


class PromptLayerProvider(RemoteProvider):
    """A connection to a PromptLayer workspace (one API key)."""

    kind = "promptlayer"
    capabilities: Capabilities = CAPABILITIES["promptlayer"]

    def __init__(self, target: Target, *, transport: Any = None, sleep: Any = None):
        key = target.secret("api_key")
        settings = HttpSettings(
            base_url=target.base_url or DEFAULT_URL, target=target.name, headers={"X-API-KEY": key}, secrets=(key,),
            auth_hint=f"the key in {target.credentials['api_key']}", timeout=target.timeout, transport=transport,
            rate_limits=target.rate_limits, platform="PromptLayer")
        super().__init__(target, settings, sleep)
        self._ids: dict[str, int] = {}  # name -> template id (listing, publishes)
        # name -> {label: (label id, version number)}, from the last read of the prompt's labels
        self._labels: dict[str, dict[str, tuple[int, int]]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading

    def _listing(self) -> dict[str, tuple[int, int]]:
        found = super()._listing()
        with self._lock:
            self._ids.update({name: tid for name, (tid, _) in found.items()})
        return found

    def _list_all(self) -> dict[str, tuple[int, int]]:
        """name -> (template id, latest version number), over every page of ``GET /prompt-templates``."""
        found: dict[str, tuple[int, int]] = {}
        page = 1
        while True:
            body = self.http.get("/prompt-templates", params={"page": page, "per_page": PER_PAGE},
                                 what="list prompt templates")
            items = self.http.expect(body, "items", list)
            before = len(found)
            with self.http.parsing("list prompt templates", body):
                for item in items:
                    found[str(item["prompt_name"])] = (int(item["id"]), int(item["version"]))
                more = body.get("has_next")
                if more is None:  # older answers: the page count, else a short page ends it
                    pages = body.get("pages")
                    more = page < int(pages) if pages is not None else len(items) >= PER_PAGE
            # a page adding nothing ends it too (a server ignoring page would be asked forever)
            if not more or len(found) == before:
                return found
            page += 1

    def read(self, names: Collection[str] | None = None) -> RemoteState:
        listing, wanted = self._wanted(names)
        jobs: list[tuple[str, int | None]] = []
        for name in wanted:
            jobs.append((name, None))  # the labels
            jobs += [(name, n) for n in range(1, listing[name][1] + 1)]
        answers = self._parallel(lambda job: self._fetch(listing[job[0]][0], *job), jobs)
        rows: dict[str, list[Mapping[str, Any]]] = {name: [] for name in wanted}
        labels: dict[str, Any] = {}
        for (name, number), answer in zip(jobs, answers):
            if number is None:
                labels[name] = answer
            elif answer is not None:
                rows[name].append(answer)
        return RemoteState(prompts={name: self._prompt(name, rows[name], labels[name]) for name in wanted})

    def _fetch(self, tid: int, name: str, number: int | None) -> Any:
        """The label list (``number`` None) or one version of template ``tid``; None for a version
        that is not there."""
        if number is None:
            return self._get_labels(tid, name)
        try:
            # the raw version: snippets unresolved (promptops compares what is stored), no llm_kwargs
            return self.http.get(f"/prompt-templates/{tid}", what=f"read {name!r} version {number}",
                                 params={"version": number, "resolve_snippets": "false",
                                         "include_llm_kwargs": "false"})
        except NotFound:
            return None

    def _get_labels(self, tid: int, name: str) -> Any:
        """The answer of ``GET /prompt-templates/{tid}/labels`` (parsed by :meth:`_store_labels`)."""
        return self.http.get(f"/prompt-templates/{tid}/labels", what=f"read the labels of {name!r}")

    def _store_labels(self, name: str, body: Any) -> dict[str, tuple[int, int]]:
        """The labels of a ``/labels`` answer, {label: (label id, version number)}, remembered."""
        entries = self.http.expect(body, "release_labels", list)
        with self.http.parsing(f"the labels of {name!r}", body):
            labels = {str(e["release_label"]): (int(e["release_label_id"]), int(e["prompt_version_number"]))
                      for e in entries}
        with self._lock:
            self._labels[name] = labels
        return labels

    def _prompt(self, name: str, rows: list[Mapping[str, Any]], labels_body: Any) -> RemotePrompt:
        labels = self._store_labels(name, labels_body)
        with self.http.parsing(f"the versions of {name!r}", rows):
            rows = sorted(rows, key=lambda r: int(r["version"]))
            versions = tuple(self._version(name, row) for row in rows)
        return RemotePrompt(name=name, versions=versions,
                            labels={label: str(number) for label, (_, number) in sorted(labels.items())})

    def _version(self, name: str, row: Mapping[str, Any]) -> RemoteVersion:
        template, metadata = row.get("prompt_template") or {}, row.get("metadata")
        content = self.to_content(template, metadata)
        if unmapped(template, metadata):
            # It holds what promptops never writes (a version made in the web app): its content
            # is shown as near as promptops can, but its digest is its own, so no file reads as
            # equal to it and the plan makes the file's version instead.
            with self.http.parsing(f"version {row.get('version')} of {name!r}", row):
                digest = sha256_of({"promptlayer": {"prompt_template": template, "metadata": metadata}})
        else:
            digest = self._digest(name, row.get("version"), content)
        return RemoteVersion(id=str(row["version"]), digest=digest, content=content,
                             provenance=parse_message(row.get("commit_message")), created_at=row.get("created_at"))

    # ------------------------------------------------------------------ content mapping

    @staticmethod
    def to_template(content: Mapping[str, Any]) -> dict[str, Any]:
        """The ``prompt_template`` for canonical ``content``."""
        fmt = content["template_format"]
        if content["type"] == "text":
            text = content["template"]
            return {"type": "completion", "content": [_block(text)], "input_variables": _variables([text], fmt),
                    "template_format": fmt}
        messages: list[dict[str, Any]] = []
        for m in content["messages"]:
            if "placeholder" in m:
                messages.append({"role": "placeholder", "name": m["placeholder"]})
            else:
                messages.append({"role": m["role"], "content": [_block(m["content"])], "template_format": fmt,
                                 "input_variables": _variables([m["content"]], fmt)})
        texts = [m["content"] for m in content["messages"] if "placeholder" not in m]
        template: dict[str, Any] = {"type": "chat", "messages": messages, "input_variables": _variables(texts, fmt)}
        if content.get("tools"):
            template["tools"] = list(content["tools"])
        return template

    @staticmethod
    def to_metadata(content: Mapping[str, Any]) -> dict[str, Any] | None:
        """``metadata`` for the content's model config (None when there is none)."""
        model = dict(content.get("model") or {})
        if not model:
            return None
        head = {k: model.pop(k) for k in _MODEL_KEYS if k in model}
        return {"model": {**head, "parameters": model}}

    @staticmethod
    def to_content(template: Mapping[str, Any], metadata: Any) -> dict[str, Any]:
        """Canonical content of a stored version (the inverse of :meth:`to_template` and
        :meth:`to_metadata`). Versions made outside promptops may hold more than promptops writes
        (several blocks, images): text blocks are joined, other blocks kept as a ``[type]`` marker,
        so such a version never reads as equal to a file that lacks them."""
        model: dict[str, Any] = {}
        stored = metadata.get("model") if isinstance(metadata, Mapping) else None
        if isinstance(stored, Mapping):
            params = stored.get("parameters")
            model.update(params if isinstance(params, Mapping) else {})
            model.update({k: stored[k] for k in _MODEL_KEYS if stored.get(k) is not None})
        if template.get("type") == "chat" or "messages" in template:
            messages: list[Mapping[str, Any]] = []
            formats: list[str] = []
            for m in template.get("messages") or ():
                if m.get("role") == "placeholder":
                    messages.append({"placeholder": m.get("name")})
                    continue
                messages.append({"role": m.get("role"), "content": _text(m.get("content"))})
                formats.append(m.get("template_format") or DEFAULT_FORMAT)
            tools = template.get("tools") if isinstance(template.get("tools"), list) else []
            # one format per prompt in promptops; a mix made by hand reads as the first message's
            # (the SDK renders llm_kwargs with it too)
            return canonical_content(type="chat", template_format=formats[0] if formats else DEFAULT_FORMAT,
                                     messages=messages, model=model, tools=tools)
        return canonical_content(type="text", template_format=template.get("template_format") or DEFAULT_FORMAT,
                                 template=_text(template.get("content")), model=model)

    # ------------------------------------------------------------------ writing

    def create_version(self, new: NewVersion) -> str:
        version: dict[str, Any] = {"prompt_template": self.to_template(new.content),
                                   "commit_message": message(new.provenance, COMMIT_MESSAGE_LIMIT)}
        metadata = self.to_metadata(new.content)
        if metadata is not None:
            version["metadata"] = metadata
        body = {"prompt_template": {"prompt_name": new.prompt}, "prompt_version": version,
                "release_labels": sorted(new.labels)}
        answer = self.http.request("POST", "/rest/prompt-templates", json_body=body,
                                   what=f"create a version of {new.prompt!r}")
        # From here on the version exists (a 2xx answer): any failure to learn its number is an
        # ambiguous outcome, never "not applied".
        tid, number = (_int(answer.get(key)) if isinstance(answer, Mapping) else None
                       for key in ("id", "version_number"))
        with self._lock:
            if tid is not None:
                self._ids[new.prompt] = tid
            else:
                self._ids.pop(new.prompt, None)  # look it up again
            self._labels.pop(new.prompt, None)  # labels moved (and maybe created): read them again
        self._created(new.prompt)
        if number is not None:
            return str(number)
        return self._published(new)

    def _published(self, new: NewVersion) -> str:
        """The number of the version a publish just made when its answer names none: the real
        answer recorded in 2025-04 (prompt-layer-library tests/fixtures/cassettes/
        test_publish_template_async.yaml) and the SDK's ``PublishPromptTemplateResponse`` carry no
        ``version_number`` or ``prompt_version_id``. The template is read back, newest version
        first, and the newest with the new content's digest is the one; the labels the publish
        carried are then checked on it (moved there when they are not), so apply reports them
        truly. ProviderError(ambiguous) when no version has the digest or a read fails: the
        version was created, but which it is cannot be told."""
        def unknown(why: str) -> ProviderError:
            return ProviderError(f"target {self.target.name!r}: PromptLayer accepted the new version of "
                                 f"{new.prompt!r} but its answer names no version number, and {why}; the version "
                                 "(and the labels it carried) may have been applied: run plan again to see",
                                 ambiguous=True)

        try:
            found = self._find_published(new)
        except ProviderError as exc:
            raise unknown(f"reading the template back failed ({exc})") from None
        if found is None:
            raise unknown(f"no version of it has the content's digest ({short_digest(new.digest)})")
        try:
            for label in new.labels:
                self.move_label(new.prompt, label, found)
        except ProviderError as exc:
            raise unknown(f"checking the labels it carried on version {found} failed ({exc})") from None
        return found

    def _find_published(self, new: NewVersion) -> str | None:
        """The number of the newest version of ``new.prompt`` with ``new.digest``, or None: the
        latest version first (``GET`` without ``version``), then the older ones."""
        tid = self._template_id(new.prompt)
        latest = self.http.get(f"/prompt-templates/{tid}", what=f"read back {new.prompt!r}",
                               params={"resolve_snippets": "false", "include_llm_kwargs": "false"})
        newest = int(self.http.expect(latest, "version", int))
        found = self._with_digest(new, [latest])
        if found is None and newest > 1:
            older = self._parallel(lambda n: self._fetch(tid, new.prompt, n), range(newest - 1, 0, -1))
            found = self._with_digest(new, older)
        return found

    def _with_digest(self, new: NewVersion, rows: list[Any]) -> str | None:
        """The number of the first of ``rows`` (version answers, None for a missing one) whose
        digest is the new version's."""
        with self.http.parsing(f"the versions of {new.prompt!r}", rows):
            for row in rows:
                if row is not None and self._version(new.prompt, row).digest == new.digest:
                    return str(int(row["version"]))
        return None

    def move_label(self, prompt: str, label: str, version_id: str) -> None:
        number = int(version_id)
        known = self._label(prompt, label)
        if known is None:
            try:
                made = self.http.request("POST", f"/prompts/{self._template_id(prompt)}/label",
                                         json_body={"prompt_version_number": number, "name": label},
                                         what=f"create label {label!r} of {prompt!r} on version {number}")
                with self.http.accepted(f"label {label!r} of {prompt!r}"):
                    label_id = int(self.http.expect(made, "id", int))
                self._remember(prompt, label, label_id, number)
                return
            except ProviderError as exc:
                # 400 "already exists" (made since the read), or an answer lost on the way: the
                # label may be there now; look again and move it
                if not (isinstance(exc, RemoteError) and exc.status == 400 or exc.ambiguous):
                    raise
                known = self._label(prompt, label, fresh=True)
                if known is None:
                    raise
        if known[1] == number:
            return
        # a move to version N ends the same however often it is sent
        self.http.request("PATCH", f"/prompt-labels/{known[0]}", json_body={"prompt_version_number": number},
                          idempotent=True, what=f"move label {label!r} of {prompt!r} to version {number}")
        self._remember(prompt, label, known[0], number)

    def _remember(self, prompt: str, label: str, label_id: int, number: int) -> None:
        with self._lock:
            if prompt in self._labels:
                self._labels[prompt][label] = (label_id, number)

    def remove_label(self, prompt: str, label: str) -> None:
        known = self._label(prompt, label)
        if known is None:
            return  # not there: the goal is reached
        try:
            self.http.request("DELETE", f"/prompt-labels/{known[0]}", what=f"remove label {label!r} of {prompt!r}")
        except NotFound:
            pass
        with self._lock:
            self._labels.get(prompt, {}).pop(label, None)

    def _label(self, prompt: str, label: str, fresh: bool = False) -> tuple[int, int] | None:
        """(label id, version number) of ``label``, or None; reads the labels when they are not
        known (a publish may have created or moved some) or ``fresh`` is asked."""
        with self._lock:
            labels = None if fresh else self._labels.get(prompt)
        if labels is None:
            labels = self._store_labels(prompt, self._get_labels(self._template_id(prompt), prompt))
        return labels.get(label)

    def _template_id(self, prompt: str) -> int:
        with self._lock:
            tid = self._ids.get(prompt)
        if tid is None:
            self._listing()
            with self._lock:
                tid = self._ids.get(prompt)
        if tid is None:
            raise ProviderError(f"target {self.target.name!r}: PromptLayer has no prompt template {prompt!r}")
        return tid

    def resolve_user(self, prompt: str, label: str, user: str) -> str:
        """The version PromptLayer serves ``user`` for ``label``: an A/B release set in its web app
        (invisible to the API) splits a label by request metadata, so the platform is asked, with
        the user as ``metadata_filters.user_id`` (``POST /prompt-templates/{id}``)."""
        try:
            body = self.http.request("POST", f"/prompt-templates/{self._template_id(prompt)}", idempotent=True,
                                     json_body={"label": label, "metadata_filters": {"user_id": user},
                                                "skip_input_variable_rendering": True},
                                     what=f"resolve {prompt!r} {label}")
        except NotFound:
            raise PromptOpsError(f"prompt {prompt!r} has no label {label!r} on target {self.target.name!r} "
                                 "(promptlayer)") from None
        return str(self.http.expect(body, "version", int))

    def set_traffic(self, prompt: str, label: str, weights: Mapping[str, int] | None) -> None:
        raise ProviderError(f"target {self.target.name!r}: PromptLayer's A/B releases are set in its web app only; "
                            "the API cannot split traffic")

    def update_metadata(self, prompt: str, tags: Collection[str], description: str | None) -> None:
        raise ProviderError(f"target {self.target.name!r}: PromptLayer sets tags only when a version is published")

    def delete_prompt(self, prompt: str) -> None:
        raise ProviderError(f"target {self.target.name!r}: PromptLayer's API cannot delete a prompt template")


_UNSET: tuple[Any, ...] = (None, "", [], {})
# Keys the platform fills into stored model metadata without being sent, and the values it fills
# in (the real answer recorded 2026-02: prompt-layer-library tests/fixtures/cassettes/
# test_run_logs_error_on_llm_auth_failure.yaml): those values are defaults, not content. An
# absent or null api_type is read by the SDK as "chat-completions" (promptlayer_mixins.py,
# utils.py); display_params {}, base_model and model_config_display_name null are in _UNSET.
_MODEL_DEFAULTS: dict[str, tuple[Any, ...]] = {"api_type": ("chat-completions",)}


def unmapped(template: Mapping[str, Any], metadata: Any) -> list[str]:
    """What a stored version holds that promptops never writes, and so cannot compare: empty when
    :meth:`PromptLayerProvider.to_content` reads it exactly. Values the platform fills in by
    default (null names, ``function_call: "none"``, empty ``functions``) count as unset."""
    found: list[str] = []
    kind = template.get("type")
    if kind == "completion":
        if not _one_text_block(template.get("content")):
            found.append("content blocks")
    elif kind == "chat":
        formats = set()
        for m in template.get("messages") or ():
            if m.get("role") == "placeholder":
                continue
            formats.add(m.get("template_format") or DEFAULT_FORMAT)
            if not _one_text_block(m.get("content")):
                found.append("content blocks")
            found += [key for key in ("name", "tool_calls", "tool_call_id") if m.get(key) not in _UNSET]
            if m.get("function_call") not in (*_UNSET, "none", "auto"):
                found.append("function_call")
        if len(formats) > 1:
            found.append("template formats")
        if template.get("functions") not in _UNSET:
            found.append("functions")
        if template.get("function_call") not in (*_UNSET, "none", "auto"):
            found.append("function_call")
        if template.get("tool_choice") not in (*_UNSET, "auto"):
            found.append("tool_choice")
    else:
        found.append("type")
    model = metadata.get("model") if isinstance(metadata, Mapping) else None
    if isinstance(model, Mapping):
        params = model.get("parameters")
        if isinstance(params, Mapping) and set(params) & set(_MODEL_KEYS):
            found.append("model parameters")
        found += [f"model {k}" for k, v in model.items() if k not in (*_MODEL_KEYS, "parameters")
                  and v not in _UNSET and v not in _MODEL_DEFAULTS.get(k, ())]
    return found


def _int(value: Any) -> int | None:
    """``value`` when it is an integer (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _one_text_block(blocks: Any) -> bool:
    """One text block holding nothing but its text: the server's null ``id`` and ``annotations``
    are defaults, a real id, annotations or ``cache_control`` are not (a file cannot hold them)."""
    return (isinstance(blocks, list) and len(blocks) == 1 and isinstance(blocks[0], Mapping)
            and blocks[0].get("type") == "text"
            and all(v in _UNSET for k, v in blocks[0].items() if k not in ("type", "text")))


def _block(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def _text(blocks: Any) -> str:
    """The text of a content block list: text blocks joined, other blocks as ``[type]``."""
    if isinstance(blocks, str):
        return blocks
    parts = []
    for block in blocks or ():
        if isinstance(block, Mapping) and block.get("type") == "text":
            parts.append(str(block.get("text") or ""))
        else:
            parts.append(f"[{block.get('type') if isinstance(block, Mapping) else 'block'}]")
    return "".join(parts)


def _variables(texts: list[str], fmt: str) -> list[str]:
    """``input_variables``: the names the texts use, for PromptLayer's own rendering."""
    found: set[str] = set()
    for text in texts:
        found.update(analyze(text, fmt).variables)
    return sorted(found)
