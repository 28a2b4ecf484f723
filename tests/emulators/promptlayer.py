"""PromptLayer emulator (``api.promptlayer.com``): the prompt-management part of the REST API, written
from ../shared/providers-api.md section 1 and sdk-contracts.md section 2, and checked against the
real server responses recorded in the SDK's VCR cassettes (publish, get, list). The official
``promptlayer`` SDK (1.5.16) is run against it in tests/test_emulator_promptlayer.py.

Endpoints (``{identifier}`` is the URL-encoded name, ``%2F`` for ``/``, or the numeric template id):

* ``POST   /rest/prompt-templates``                publish a new version (201), creating the template
* ``PATCH  /rest/prompt-templates/{identifier}``   new version from a base version plus patches (201)
* ``POST   /prompt-templates/{identifier}``        get a version, rendered, with ``llm_kwargs`` (200)
* ``GET    /prompt-templates/{identifier}``        get a raw version (``?version=`` / ``?label=``,
  ``?resolve_snippets=false`` for the stored text)
* ``GET    /prompt-templates``                     list templates (latest or labelled version of each)
* ``GET    /prompt-templates/{identifier}/labels`` the release labels of a template
* ``POST   /prompts/{prompt_id}/label``            create a release label (200)
* ``PATCH  /prompt-labels/{prompt_label_id}``      move a release label (200)
* ``DELETE /prompt-labels/{prompt_label_id}``      delete a release label (204)

There is deliberately no template delete, no version listing and no A/B endpoint (the platform has
none). A/B releases ("dynamic release labels", UI only) are set through the admin-only
``PUT``/``DELETE /__emulator/ab-releases/{prompt_id}/{label}`` or :meth:`set_ab_release`; they change
what ``POST /prompt-templates/{identifier}`` with that label resolves to, and nothing public shows them.

Errors: ``{"success": false, "message", "error"}`` for 400/401/403/404/405, ``{"success": false,
"message"}`` for 409 and 429, FastAPI (pydantic v1) ``{"detail": [{"loc", "msg", "type"}]}`` for 422.

Snippets (MagnivOrg/prompt-layer-docs at 5f75327, features/prompt-registry/snippets.mdx and
snippet-dependency-ordering.mdx, reference/templates-get-raw.mdx, the OpenAPI's ``SnippetReference``):
``@@@name@@@`` (the latest version of template ``name``), ``@@@name@version_number:N@@@`` and
``@@@name@label:L@@@`` in a template's text are inlined, recursively, when a version is read (``GET``
unless ``resolve_snippets=false``, and the rendered ``POST``), and the answer's ``snippets`` lists
``{prompt_name, version, label}`` of each one inlined. A publish (or PATCH) naming a snippet that does
not exist (that version, that label) is a 422; only completion templates can be snippets, so naming a
chat version is a 422 too. See ``CHOICES["snippets"]`` for what the docs leave open.

Everything the spec leaves open is decided here and listed in :data:`CHOICES`; the main ones:

* A numeric identifier names the template with that id when an active one exists, else a template
  with that (all-digit) name.
* ``POST /prompt-templates/{identifier}`` renders ``prompt_template`` and ``llm_kwargs`` unless
  ``skip_input_variable_rendering`` is true, with ``input_variables`` or ``{}`` when absent (so
  ``{var}`` becomes ``""``): the SDK's cache path renders with ``{}`` for parity with the server.
  Read raw content with ``GET`` or with ``skip_input_variable_rendering: true``.
* Stored content gets the server's defaults (``template_format``, ``input_variables``, ``name``,
  ``raw_request_display_role``, ``dataset_examples``, ``functions``...: see ``content_defaults``);
  unknown keys are kept, so clients must tolerate extra keys.
* Ids come from three counters with different bases (templates 1.., versions 101.., labels 1001..)
  so that a client mixing them up fails.
* Model metadata and text blocks are stored with what the server fills in that the client never
  sent (``api_type``, ``display_params``, ``base_model``, ``model_config_display_name``; a text
  block's ``id`` and ``annotations``), in every mode: the newest recorded real answer
  (cassettes/test_run_logs_error_on_llm_auth_failure.yaml, 2026-02) carries them.
* ``answers="2025-04"`` answers a publish exactly as the only recorded real publish answer did
  (cassettes/test_publish_template_async.yaml, 2025-04-14): ``id, prompt_name, tags,
  prompt_template, commit_message, metadata, release_labels`` and no ``version_number``,
  ``prompt_version_id`` or ``version`` (the SDK's ``PublishPromptTemplateResponse`` has none of
  them either). The default, ``answers="current"``, answers as the OpenAPI of late 2025 does.

The cassettes are in ``MagnivOrg/prompt-layer-library`` (commit c19662d), ``tests/fixtures/cassettes/``.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from string import Formatter
from typing import Any
from urllib.parse import unquote

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .base import Emulator, Faults, HttpError, Request, Response, TokenBucket, paginate

ROLES = ("system", "user", "assistant", "function", "tool", "developer", "placeholder")
FORMATS = ("f-string", "jinja2")
TYPES = ("chat", "completion")
STATUSES = ("active", "deleted", "all")
SORT_BY = ("created_at", "updated_at", "name", "id")
SORT_ORDER = ("asc", "desc")
NAME_MAX = 512
COMMIT_MESSAGE_MAX = 72
FIRST_TEMPLATE_ID, FIRST_VERSION_ID, FIRST_LABEL_ID = 1, 101, 1001
ADMIN_PREFIX = "/__emulator/ab-releases/"
ANSWERS = ("current", "2025-04")
#: The keys, in order, of the real publish answer recorded on 2025-04-14
#: (prompt-layer-library tests/fixtures/cassettes/test_publish_template_async.yaml).
PUBLISH_KEYS_2025_04 = ("id", "prompt_name", "tags", "prompt_template", "commit_message", "metadata",
                        "release_labels")
#: ``metadata.model`` as the server stores it, in the order of the real answer recorded on
#: 2026-02-23 (cassettes/test_run_logs_error_on_llm_auth_failure.yaml); ``None`` marks the keys the
#: client sends, the rest are the values the server fills in when the client sends no such key.
STORED_MODEL: dict[str, Any] = {"provider": None, "model_config_display_name": None, "base_model": None,
                                "name": None, "parameters": None, "display_params": {},
                                "api_type": "chat-completions"}
#: What the server adds to every text block (same cassette), after ``type`` and ``text``.
TEXT_BLOCK_DEFAULTS: dict[str, Any] = {"id": None, "annotations": None}
#: A snippet reference, in the three forms of features/prompt-registry/snippets.mdx: the name
#: (group 1), then ``@version_number:N`` (group 2) or ``@label:L`` (group 3) or nothing (latest).
SNIPPET_REFERENCE = re.compile(r"@@@([^@]+?)(?:@version_number:([^@]*)|@label:([^@]*))?@@@")

#: Where the spec is silent, what this emulator does (for adapter authors; see the module docstring).
CHOICES = {
    "auth": "X-API-KEY header (name case-insensitive) on every path, admin paths included; missing or unknown key "
            "-> 401 {success:false,message,error}; api_key/workspace_id in bodies or query are ignored (never "
            "authenticate); every key sees the one workspace (workspace_id, default 1)",
    "order_of_checks": "injected faults, rate limit (valid keys only), auth 401, route 404/405, body/query "
                       "validation 422, lookups 404, semantic 400/409",
    "unknown_route": "404 {success:false,message:'Not found'}; a known path with another method -> 405",
    "identifier": "percent-decoded path rest (so %2F and raw slashes both work; '.../labels' on GET is the labels "
                  "route); all ASCII digits -> the active template with that id if one exists, else the template "
                  "so named; names are matched exactly (case-sensitive); deleted templates are never found",
    "ids": "integers from three counters: templates from 1, prompt_version_id from 101 (global), labels from 1001",
    "timestamps": "UTC 'YYYY-MM-DDTHH:MM:SSZ' (wall clock); ordering ties broken by id",
    "answers": "'current' (default): publish and patch answer with prompt_version_id, version_number and version "
               "(the OpenAPI of late 2025); '2025-04': publish answers with exactly the keys of the recorded "
               "real answer (PUBLISH_KEYS_2025_04, cassettes/test_publish_template_async.yaml), its "
               "prompt_template/metadata being the stored forms; patch, reads and labels answer alike in both "
               "modes (no recorded 2025-04 patch answer exists)",
    "server_filled": "in every mode, as the 2026-02 cassette (test_run_logs_error_on_llm_auth_failure.yaml) shows: "
                     "metadata.model absent keys filled in the recorded order: model_config_display_name null, "
                     "base_model null, display_params {}, api_type 'chat-completions' (for every provider: the "
                     "recording is openai's and the SDK reads an absent api_type as chat-completions); keys the "
                     "client sent are kept as sent, null included; every text block gets id null and annotations "
                     "null unless sent; llm_kwargs blocks leave out a null id/annotations (the recorded llm_kwargs "
                     "has bare {type, text}); metadata null stays null",
    "content_defaults": "stored as sent plus defaults: chat -> functions/tools/function_call/tool_choice null, "
                        "input_variables [], dataset_examples []; each non-placeholder message -> template_format "
                        "'f-string', input_variables [], name null, raw_request_display_role '', dataset_examples []; "
                        "assistant -> function_call/tool_calls null; completion -> template_format 'f-string', "
                        "input_variables [], dataset_examples []; unknown keys kept; input_variables are not "
                        "computed from the text (kept as sent)",
    "content_validation": "type chat|completion (discriminator); chat messages: role in ROLES; placeholder needs a "
                          "non-empty string name and nothing else is checked; other roles need content (assistant "
                          "may omit it -> []); content is a list of blocks {type:str,...}, text blocks need a string "
                          "text; template_format f-string|jinja2 (null -> f-string); a plain-string content is a 422",
    "metadata": "null or an object; metadata.model (when not null) needs string provider and name, parameters an "
                "object (default {}); other metadata keys kept",
    "publish": "reads prompt_template.{prompt_name,tags,folder_id}, prompt_version.{prompt_template,commit_message,"
               "metadata}, top-level release_labels and external_ids (release_labels inside the two objects, as the "
               "SDK duplicates them, are ignored); prompt_name 1..512 chars; tags absent/null keep the template's "
               "tags, a list replaces them; the type may change between versions; identical content makes a new "
               "version; response echoes release_labels as sent (null when absent)",
    "external_ids": "list of {source, external_id}; one mapped to another template -> 409 before anything changes",
    "get_rendered": "label wins over version when both are sent; version must be an int > 0; renders unless "
                    "skip_input_variable_rendering is true, using input_variables or {} (missing -> '', f-string "
                    "with dotted/indexed/positional fields or stray braces and jinja2 syntax errors leave the block "
                    "as is, jinja2 None -> 'None', as the SDK's renderer does); metadata_filters must map strings "
                    "to strings; snippets are always inlined first (the body schema, GetPromptTemplate, has no "
                    "resolve_snippets; snippets.mdx: the SDKs get 'a fully realized version'), then input variables "
                    "rendered over the whole text; response has provider_base_url null, snippets (see 'snippets'), "
                    "warning null",
    "llm_kwargs": "always an object: chat -> {messages:[{role, content}]} (system/developer content joined to a "
                  "string, other roles keep their blocks; placeholders expand from a list in input_variables, else "
                  "vanish), tools/tool_choice and functions/function_call when tools/functions are non-empty; "
                  "completion -> {prompt}; provider 'anthropic' moves system text to a top-level 'system'; then "
                  "'model' (request model, else metadata name; absent when neither) and the stored parameters and "
                  "model_parameter_overrides on top, as the recorded server does",
    "get_raw": "version and label together -> 400; include_llm_kwargs=true adds unrendered llm_kwargs (of the "
               "returned, so resolved unless resolve_snippets=false, template); resolve_snippets a boolean (default "
               "true, else 422): false -> the stored text and snippets []",
    "snippets": "references @@@name@@@ (latest), @@@name@version_number:N@@@, @@@name@label:L@@@ (SNIPPET_REFERENCE: a "
                "name is anything but '@', at least one character; names are case-sensitive) in the text of every "
                "text block: a completion's content and each chat message's content (the docs restrict what can "
                "BE a snippet, not where one stands); a label names its base version (A/B releases ignored); the "
                "snippet's text is its text blocks joined, inlined verbatim (its own template_format ignored: the "
                "parent's renders it); nested references resolved to any depth (no limit is documented). On "
                "publish/PATCH (after the schema, before the external-id 409), each reference of the new content "
                "is checked: no such template, version (N not a positive whole number included) or label -> 422 "
                "'Snippet ... not found'; a chat version -> 422 'only completion templates can be snippets'; a "
                "reference leading back to the template published (itself included: @@@own-name@@@) -> 422 "
                "'... creates a snippet cycle'; each {loc: [..., 'prompt_template', 'content'|'messages', i, "
                "('content', j,) 'text'], msg, type: 'value_error'} (FastAPI's shape, the OpenAPI's publish 422). "
                "On read, a reference that no longer resolves (label deleted, template deleted, a chat version "
                "now) or that names a version already being resolved (a loop made by label moves, which are not "
                "checked) is left as written and not listed. The answer's snippets: one {prompt_name, version, "
                "label (null unless @label:)} per distinct reference inlined, nested ones included, in order of "
                "first use. "
                "The publish/PATCH answer and the list carry the stored text (the list has no resolve_snippets)",
    "list": "page >= 1 (default 1), per_page >= 1 (default 30, no maximum), else 422; a page past the end is 200 "
            "with no items; pages = ceil(total/per_page) (0 when empty); sort_by created_at (default)|updated_at|"
            "name|id, sort_order desc (default)|asc; name = case-insensitive substring; tags repeated, all must "
            "match; label -> only templates with that label, each item at the label's base version; "
            "external_source and external_id together (else 422); created/updated_after/before are ISO datetimes "
            "(inclusive bounds); created_by_email matches the emulator's user_email; is_snippet=true -> nothing",
    "updated_at": "a template's updated_at is the creation time of its newest version (label moves do not touch it)",
    "labels": "names are non-empty strings, unique per template, case-sensitive; create with a name that exists -> "
              "400 'Release label already exists'; create/move need prompt_version_number or prompt_version_id "
              "(both: they must name the same version, else 400; neither: 422); a version number not in the "
              "template -> 404; a prompt_version_id of another template -> 400; unknown label id -> 404; listing "
              "in label-id order; created_at never changes on a move",
    "patch": "version and label together -> 400; base default latest; messages/content/tools/functions: a list "
             "replaces, an object keyed by index shallow-merges each object into that element (index must exist, "
             "else 400), null removes tools/functions and is a 400 for messages/content; messages/tools/functions/"
             "function_call/tool_choice on a completion template or content on a chat template -> 400; "
             "model_parameters shallow-merged into metadata.model.parameters (no model -> 400); response_format "
             "sets parameters.response_format (null removes it); the result is validated as a publish would be "
             "(422); tags and other fields are kept",
    "ab_releases": "admin PUT /__emulator/ab-releases/{prompt_id}/{label} {splits:[{version, percent}], "
                   "segments:[{match:{k:v}, splits}]} -> 200; the label must exist; versions must exist; percents "
                   "ints 0..100 summing to 100 (else 400); DELETE reverts (204); deleting the label drops it; moving "
                   "the label keeps it. Applies only to POST /prompt-templates/{identifier} with that label: first "
                   "segment whose match is a subset of metadata_filters, else the top splits; bucket = "
                   "int.from_bytes(sha256(f'{prompt_id}:{label}:{key}').digest()[:8], 'big') % 100 with key = "
                   "metadata_filters['user_id'] or the sorted compact JSON of metadata_filters; no metadata_filters "
                   "-> a random bucket (random_seed makes it repeatable); splits walked in the given order. GET "
                   "raw, /labels and the list show the label's base version",
    "deleted_templates": "no public delete; delete_template() (the UI's soft delete) hides a template from every "
                         "lookup but list ?status=deleted|all; its name can be published again (a new template)",
    "rate_limit": "off by default; rate_limit=N allows N requests per rate_window seconds per API key (valid keys "
                  "only, admin paths not counted); 429 {success:false,message} with Retry-After (whole seconds, "
                  "at least 1) unless retry_after_header is false; faults.rate_limit always sends Retry-After",
    "not_emulated": "GET /prompt-templates/{identifier}/snippet-usage, the list's is_snippet flag (always false; "
                    "is_snippet=true lists nothing), folders beyond folder_id, the external-id upsert and external-id "
                    "endpoints, protected labels/approvals, workflows, tracking/logging, evaluations",
}


# ---------------------------------------------------------------------------------------------
# errors


def fail(status: int, message: str, error: str | None = None) -> HttpError:
    """The platform's ``{"success": false, "message", "error"}`` error (409/429 carry no ``error``)."""
    body: dict[str, Any] = {"success": False, "message": message}
    if status not in (409, 429):
        body["error"] = error or message
    return HttpError(status, body)


def _issue(loc: Iterable[Any], msg: str, type_: str, ctx: Mapping[str, Any] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"loc": list(loc), "msg": msg, "type": type_}
    if ctx:
        item["ctx"] = dict(ctx)
    return item


def _missing(loc: list) -> dict:
    return _issue(loc, "field required", "value_error.missing")


def _not_dict(loc: list) -> dict:
    return _issue(loc, "value is not a valid dict", "type_error.dict")


def _not_list(loc: list) -> dict:
    return _issue(loc, "value is not a valid list", "type_error.list")


def _not_str(loc: list) -> dict:
    return _issue(loc, "str type expected", "type_error.str")


def _not_int(loc: list) -> dict:
    return _issue(loc, "value is not a valid integer", "type_error.integer")


def _not_bool(loc: list) -> dict:
    return _issue(loc, "value could not be parsed to a boolean", "type_error.bool")


def _not_enum(loc: list, allowed: Iterable[str]) -> dict:
    values = list(allowed)
    permitted = ", ".join(repr(v) for v in values)
    return _issue(loc, f"value is not a valid enumeration member; permitted: {permitted}", "type_error.enum",
                  {"enum_values": values})


def _too_long(loc: list, limit: int) -> dict:
    return _issue(loc, f"ensure this value has at most {limit} characters", "value_error.any_str.max_length",
                  {"limit_value": limit})


def _too_short(loc: list, limit: int) -> dict:
    return _issue(loc, f"ensure this value has at least {limit} characters", "value_error.any_str.min_length",
                  {"limit_value": limit})


def unprocessable(issues: list[dict]) -> HttpError:
    return HttpError(422, {"detail": issues})


_MISSING = object()


def _int_value(value: Any, loc: list, issues: list[dict], *, gt: int | None = None, ge: int | None = None) -> int | None:
    """A pydantic-v1 style int (numeric strings coerce; bools and floats with a fraction do not)."""
    if isinstance(value, bool) or value is None:
        issues.append(_not_int(loc))
        return None
    if isinstance(value, int):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or \
            (isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value)):
        number = int(value)
    else:
        issues.append(_not_int(loc))
        return None
    if gt is not None and number <= gt:
        issues.append(_issue(loc, f"ensure this value is greater than {gt}", "value_error.number.not_gt",
                             {"limit_value": gt}))
        return None
    if ge is not None and number < ge:
        issues.append(_issue(loc, f"ensure this value is greater than or equal to {ge}", "value_error.number.not_ge",
                             {"limit_value": ge}))
        return None
    return number


def _bool_value(raw: str, loc: list, issues: list[dict]) -> bool | None:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on", "t", "y"):
        return True
    if lowered in ("0", "false", "no", "off", "f", "n"):
        return False
    issues.append(_not_bool(loc))
    return None


def _parse_datetime(raw: str) -> float | None:
    text = raw.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


# ---------------------------------------------------------------------------------------------
# content validation (returns normalized copies; issues are appended)


def _check_blocks(value: Any, loc: list, issues: list[dict]) -> list | None:
    if not isinstance(value, list):
        issues.append(_not_list(loc))
        return None
    out = []
    for i, block in enumerate(value):
        where = loc + [i]
        if not isinstance(block, dict):
            issues.append(_not_dict(where))
            continue
        kind = block.get("type", _MISSING)
        if kind is _MISSING:
            issues.append(_missing(where + ["type"]))
            continue
        if not isinstance(kind, str):
            issues.append(_not_str(where + ["type"]))
            continue
        if kind == "text":
            text = block.get("text", _MISSING)
            if text is _MISSING:
                issues.append(_missing(where + ["text"]))
                continue
            if not isinstance(text, str):
                issues.append(_not_str(where + ["text"]))
                continue
            # the server's keys after type and text, in the recorded order; the client's win
            block = {"type": kind, "text": text, **TEXT_BLOCK_DEFAULTS, **block}
        out.append(copy.deepcopy(block))
    return out


def _check_format(value: Any, loc: list, issues: list[dict]) -> str:
    if value is None or value is _MISSING:
        return "f-string"
    if value not in FORMATS:
        issues.append(_not_enum(loc, FORMATS))
    return value if isinstance(value, str) else "f-string"


def _check_str_list(value: Any, loc: list, issues: list[dict], default: list | None) -> list | None:
    if value is None or value is _MISSING:
        return default
    if not isinstance(value, list):
        issues.append(_not_list(loc))
        return default
    for i, item in enumerate(value):
        if not isinstance(item, str):
            issues.append(_not_str(loc + [i]))
    return list(value)


def _check_message(message: Any, loc: list, issues: list[dict]) -> dict | None:
    if not isinstance(message, dict):
        issues.append(_not_dict(loc))
        return None
    role = message.get("role", _MISSING)
    if role is _MISSING:
        issues.append(_missing(loc + ["role"]))
        return None
    if role not in ROLES:
        issues.append(_not_enum(loc + ["role"], ROLES))
        return None
    out = copy.deepcopy(message)
    if role == "placeholder":
        name = message.get("name", _MISSING)
        if name is _MISSING or name is None:
            issues.append(_missing(loc + ["name"]))
        elif not isinstance(name, str):
            issues.append(_not_str(loc + ["name"]))
        elif not name:
            issues.append(_too_short(loc + ["name"], 1))
        return out
    if "content" not in message or message["content"] is None:
        if role == "assistant":
            out["content"] = []
        else:
            issues.append(_missing(loc + ["content"]))
    else:
        blocks = _check_blocks(message["content"], loc + ["content"], issues)
        if blocks is not None:
            out["content"] = blocks
    out["template_format"] = _check_format(message.get("template_format", _MISSING), loc + ["template_format"], issues)
    out["input_variables"] = _check_str_list(message.get("input_variables", _MISSING), loc + ["input_variables"],
                                             issues, [])
    name = message.get("name")
    if name is not None and not isinstance(name, str):
        issues.append(_not_str(loc + ["name"]))
    out.setdefault("name", None)
    out.setdefault("raw_request_display_role", "")
    out.setdefault("dataset_examples", [])
    if role == "assistant":
        out.setdefault("function_call", None)
        out.setdefault("tool_calls", None)
    return out


def check_prompt_template(value: Any, loc: list, issues: list[dict]) -> dict | None:
    """Validate a ``prompt_template`` (chat or completion); the stored form with server defaults."""
    if value is _MISSING or value is None:
        issues.append(_missing(loc))
        return None
    if not isinstance(value, dict):
        issues.append(_not_dict(loc))
        return None
    kind = value.get("type", _MISSING)
    if kind is _MISSING:
        issues.append(_issue(loc, "Discriminator 'type' is missing in value",
                             "value_error.discriminated_union.missing_discriminator", {"discriminator_key": "type"}))
        return None
    if kind not in TYPES:
        issues.append(_issue(loc + ["type"], f"No match for discriminator 'type' and value {kind!r} (allowed values: "
                                             "'chat', 'completion')",
                             "value_error.discriminated_union.invalid_discriminator",
                             {"discriminator_key": "type", "discriminator_value": kind,
                              "allowed_values": "'chat', 'completion'"}))
        return None
    before = len(issues)
    out = copy.deepcopy(value)
    if kind == "chat":
        messages = value.get("messages", _MISSING)
        if messages is _MISSING or messages is None:
            issues.append(_missing(loc + ["messages"]))
        elif not isinstance(messages, list):
            issues.append(_not_list(loc + ["messages"]))
        else:
            out["messages"] = [_check_message(m, loc + ["messages", i], issues) for i, m in enumerate(messages)]
        for key in ("functions", "tools"):
            if value.get(key) is not None and not isinstance(value[key], list):
                issues.append(_not_list(loc + [key]))
            out.setdefault(key, None)
        out.setdefault("function_call", None)
        out.setdefault("tool_choice", None)
    else:
        content = value.get("content", _MISSING)
        if content is _MISSING or content is None:
            issues.append(_missing(loc + ["content"]))
        else:
            blocks = _check_blocks(content, loc + ["content"], issues)
            if blocks is not None:
                out["content"] = blocks
        out["template_format"] = _check_format(value.get("template_format", _MISSING), loc + ["template_format"],
                                               issues)
    out["input_variables"] = _check_str_list(value.get("input_variables", _MISSING), loc + ["input_variables"],
                                             issues, [])
    out.setdefault("dataset_examples", [])
    return out if len(issues) == before else None


def check_metadata(value: Any, loc: list, issues: list[dict]) -> dict | None:
    """``null`` or ``{"model": {"provider", "name", "parameters"}, ...}``; the stored form."""
    if value is None or value is _MISSING:
        return None
    if not isinstance(value, dict):
        issues.append(_not_dict(loc))
        return None
    out = copy.deepcopy(value)
    model = value.get("model")
    if model is None:
        return out
    if not isinstance(model, dict):
        issues.append(_not_dict(loc + ["model"]))
        return None
    for key in ("provider", "name"):
        if key not in model or model[key] is None:
            issues.append(_missing(loc + ["model", key]))
        elif not isinstance(model[key], str):
            issues.append(_not_str(loc + ["model", key]))
    parameters = model.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        issues.append(_not_dict(loc + ["model", "parameters"]))
    # stored with the keys the server fills in (CHOICES["server_filled"]), in the recorded order
    out["model"] = {**STORED_MODEL, **copy.deepcopy(model)}
    if parameters is None:
        out["model"]["parameters"] = {}
    return out


def _check_commit_message(value: Any, loc: list, issues: list[dict]) -> str | None:
    if value is None or value is _MISSING:
        return None
    if not isinstance(value, str):
        issues.append(_not_str(loc))
        return None
    if len(value) > COMMIT_MESSAGE_MAX:
        issues.append(_too_long(loc, COMMIT_MESSAGE_MAX))
        return None
    return value


def _check_labels(value: Any, loc: list, issues: list[dict]) -> list[str] | None:
    if value is None or value is _MISSING:
        return None
    if not isinstance(value, list):
        issues.append(_not_list(loc))
        return None
    out: list[str] = []
    for i, name in enumerate(value):
        if not isinstance(name, str):
            issues.append(_not_str(loc + [i]))
        elif not name:
            issues.append(_too_short(loc + [i], 1))
        elif name not in out:
            out.append(name)
    return out


def _check_external_ids(value: Any, loc: list, issues: list[dict]) -> list[dict]:
    if value is None or value is _MISSING:
        return []
    if not isinstance(value, list):
        issues.append(_not_list(loc))
        return []
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            issues.append(_not_dict(loc + [i]))
            continue
        ok = True
        for key in ("source", "external_id"):
            if key not in item or item[key] is None:
                issues.append(_missing(loc + [i, key]))
                ok = False
            elif not isinstance(item[key], str):
                issues.append(_not_str(loc + [i, key]))
                ok = False
        if ok:
            entry = {"source": item["source"], "external_id": item["external_id"]}
            if entry not in out:
                out.append(entry)
    return out


# ---------------------------------------------------------------------------------------------
# rendering, as the SDK's template_cache does it ("match server-side behaviour")

_JINJA = SandboxedEnvironment(undefined=jinja2.ChainableUndefined)


def render_text(text: str, template_format: str, variables: Mapping[str, Any]) -> str:
    """One text block rendered; on any error the text comes back as is."""
    try:
        if template_format == "jinja2":
            return _JINJA.from_string(text).render(**variables)
        resolved: dict[str, Any] = {}
        for _, name, _, _ in Formatter().parse(text):
            if name:
                value = variables.get(name)
                resolved[name] = "" if value is None else value
        return text.format(**resolved)
    except Exception:  # noqa: BLE001 - the platform returns the text unrendered
        return text


def render_prompt_template(template: dict, variables: Mapping[str, Any]) -> dict:
    """A rendered copy of a stored ``prompt_template``."""
    out = copy.deepcopy(template)
    if out.get("type") == "chat":
        for message in out.get("messages") or []:
            fmt = message.get("template_format") or "f-string"
            for block in message.get("content") or []:
                if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                    block["text"] = render_text(block["text"], fmt, variables)
    else:
        fmt = out.get("template_format") or "f-string"
        for block in out.get("content") or []:
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                block["text"] = render_text(block["text"], fmt, variables)
    return out


def _joined_text(blocks: Any) -> str:
    return "".join(b["text"] for b in blocks or [] if isinstance(b, dict) and b.get("type") == "text"
                   and isinstance(b.get("text"), str))


def _request_blocks(blocks: Any) -> list:
    """Content blocks as the provider request carries them: a text block's null ``id`` and
    ``annotations`` (filled in by the server) left out, as in the recorded ``llm_kwargs``."""
    out = []
    for block in blocks or []:
        block = copy.deepcopy(block)
        if isinstance(block, dict) and block.get("type") == "text":
            for key in TEXT_BLOCK_DEFAULTS:
                if key in block and block[key] is None:
                    del block[key]
        out.append(block)
    return out


def llm_kwargs(template: dict, metadata: dict | None, *, provider: str | None = None, model: str | None = None,
               overrides: Mapping[str, Any] | None = None, variables: Mapping[str, Any] | None = None) -> dict:
    """The provider-shaped request the platform returns with a template (see CHOICES["llm_kwargs"])."""
    stored = (metadata or {}).get("model") or {}
    provider = provider or stored.get("provider") or "openai"
    name = model or stored.get("name")
    kwargs: dict[str, Any]
    if template.get("type") == "chat":
        messages: list[dict] = []
        for message in template.get("messages") or []:
            role = message.get("role")
            if role == "placeholder":
                value = (variables or {}).get(message.get("name"))
                if isinstance(value, list):
                    messages.extend(copy.deepcopy(m) for m in value if isinstance(m, dict))
                continue
            content: Any = _joined_text(message.get("content")) if role in ("system", "developer") \
                else _request_blocks(message.get("content"))
            entry: dict[str, Any] = {"role": role, "content": content}
            if message.get("name"):
                entry["name"] = message["name"]
            if role == "assistant" and message.get("tool_calls"):
                entry["tool_calls"] = copy.deepcopy(message["tool_calls"])
            if role == "tool" and message.get("tool_call_id"):
                entry["tool_call_id"] = message["tool_call_id"]
            messages.append(entry)
        if provider == "anthropic":
            system = "\n\n".join(m["content"] for m in messages if m["role"] in ("system", "developer")
                                 and isinstance(m["content"], str))
            kwargs = {"messages": [m for m in messages if m["role"] not in ("system", "developer")]}
            if system:
                kwargs["system"] = system
        else:
            kwargs = {"messages": messages}
        if template.get("tools"):
            kwargs["tools"] = copy.deepcopy(template["tools"])
            if template.get("tool_choice") is not None:
                kwargs["tool_choice"] = copy.deepcopy(template["tool_choice"])
        if template.get("functions"):
            kwargs["functions"] = copy.deepcopy(template["functions"])
            if template.get("function_call") is not None:
                kwargs["function_call"] = copy.deepcopy(template["function_call"])
    else:
        kwargs = {"prompt": _joined_text(template.get("content"))}
    if name:
        kwargs["model"] = name
    kwargs.update(copy.deepcopy(stored.get("parameters") or {}))
    kwargs.update(copy.deepcopy(dict(overrides or {})))
    return kwargs


# ---------------------------------------------------------------------------------------------
# snippets


def text_blocks(template: Mapping[str, Any]) -> Iterable[tuple[list[Any], dict[str, Any]]]:
    """(location under ``prompt_template``, block) of every text block snippets are inlined in: a
    completion's content, each chat message's content (CHOICES["snippets"])."""
    if template.get("type") == "chat":
        places = [(["messages", i, "content"], m.get("content")) for i, m in enumerate(template.get("messages") or [])
                  if isinstance(m, dict)]
    else:
        places = [(["content"], template.get("content"))]
    for where, blocks in places:
        for j, block in enumerate(blocks if isinstance(blocks, list) else []):
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                yield [*where, j, "text"], block


class SnippetError(Exception):
    """Why a reference names no snippet that can be inlined (the 422 message of a publish)."""


# ---------------------------------------------------------------------------------------------
# A/B releases


def ab_bucket(prompt_id: int, label: str, metadata_filters: Mapping[str, str]) -> int:
    """The bucket (0..99) of a request with non-empty ``metadata_filters`` (spec 1.7)."""
    key = metadata_filters.get("user_id") or json.dumps(dict(metadata_filters), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(f"{prompt_id}:{label}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def _pick_split(splits: list[dict], bucket: int) -> int:
    end = 0
    for entry in splits:
        end += entry["percent"]
        if bucket < end:
            return entry["version"]
    raise ValueError("A/B splits do not sum to 100")


# ---------------------------------------------------------------------------------------------
# state


@dataclass
class Version:
    prompt_version_id: int
    version_number: int
    prompt_template: dict
    metadata: dict | None
    commit_message: str | None
    created: float


@dataclass
class Label:
    id: int
    name: str
    prompt_version_id: int
    created: float


@dataclass
class Template:
    id: int
    name: str
    tags: list[str]
    folder_id: int | None
    created: float
    updated: float
    external_ids: list[dict] = field(default_factory=list)
    versions: list[Version] = field(default_factory=list)
    labels: dict[str, Label] = field(default_factory=dict)
    deleted: bool = False

    @property
    def latest(self) -> Version:
        return self.versions[-1]

    def version(self, number: int) -> Version | None:
        return next((v for v in self.versions if v.version_number == number), None)

    def by_id(self, prompt_version_id: int) -> Version | None:
        return next((v for v in self.versions if v.prompt_version_id == prompt_version_id), None)

    def labels_of(self, version: Version) -> list[str]:
        return [label.name for label in sorted(self.labels.values(), key=lambda lb: lb.id)
                if label.prompt_version_id == version.prompt_version_id]


def _stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PromptLayerFaults(Faults):
    """Faults whose default error body is in PromptLayer's shape."""

    def fail_next(self, n: int = 1, status: int = 500, body: Any = None, *, headers: Mapping[str, str] | None = None,
                  match: str | None = None) -> None:
        if body is None:
            body = {"success": False, "message": "injected fault", "error": "injected fault"}
        super().fail_next(n, status, body, headers=headers, match=match)


class PromptLayerEmulator(Emulator):
    """A stateful, thread-safe fake of PromptLayer's prompt-management API (see the module docstring).

    Options (JSON scalars, so ``python -m tests.emulators promptlayer --option KEY=VALUE`` can set them):
    ``api_key`` (default ``pl_test_key``), ``api_keys`` (more keys: a list or a comma-separated string),
    ``workspace_id`` (1), ``rate_limit`` (None: off; else requests per ``rate_window`` seconds per key),
    ``rate_window`` (60), ``retry_after_header`` (True: 429s carry ``Retry-After``), ``random_seed``
    (A/B picks without metadata), ``user_email``, ``answers`` (``"current"``, or ``"2025-04"``: a
    publish answers as the 2025-04 cassette, without ``version_number``/``prompt_version_id``).
    ``clock`` (monotonic, for the rate limit) and ``wall_clock`` (timestamps) are injectable from
    Python.

    Test hooks: :meth:`seed`, :meth:`labels`, :meth:`versions`, :meth:`template`, :meth:`names`,
    :meth:`delete_template`, :meth:`set_ab_release`, :meth:`clear_ab_release`, :meth:`ab_release`,
    :meth:`ab_version`, :meth:`add_key`, :meth:`reset`, :attr:`internal_errors`, plus the base's
    faults, log and :meth:`calls`.
    """

    name = "promptlayer"

    def __init__(self, api_key: str = "pl_test_key", api_keys: Iterable[str] | str | None = None,
                 workspace_id: int = 1, rate_limit: int | None = None, rate_window: float = 60.0,
                 retry_after_header: bool = True, random_seed: int | None = None,
                 user_email: str = "emulator@promptlayer.test", answers: str = "current",
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time):
        super().__init__()
        if answers not in ANSWERS:
            raise ValueError(f"answers must be one of {', '.join(ANSWERS)}, not {answers!r}")
        self.answers = answers
        self.faults = PromptLayerFaults()
        extra = [k.strip() for k in api_keys.split(",")] if isinstance(api_keys, str) else list(api_keys or [])
        self.keys: set[str] = {api_key, *[k for k in extra if k]}
        self.workspace_id = workspace_id
        self.user_email = user_email
        self.clock, self.wall_clock = clock, wall_clock
        if rate_limit is not None and (isinstance(rate_limit, bool) or not isinstance(rate_limit, int)
                                       or rate_limit < 1):
            raise ValueError(f"rate_limit must be a positive integer or None, not {rate_limit!r}")
        self.rate_limit, self.rate_window = rate_limit, float(rate_window)
        self.retry_after_header = bool(retry_after_header)
        self.random_seed = random_seed
        self.internal_errors: list[BaseException] = []
        self._limits_lock = threading.Lock()
        self._clear_state()

    def _clear_state(self) -> None:
        self._templates: dict[int, Template] = {}
        self._ab: dict[tuple[int, str], dict[str, Any]] = {}
        self._next_template, self._next_version, self._next_label = FIRST_TEMPLATE_ID, FIRST_VERSION_ID, FIRST_LABEL_ID
        self._random = random.Random(self.random_seed)
        self._last_time = 0.0
        with self._limits_lock:
            self._bucket = TokenBucket(self.rate_limit, self.rate_window, self.clock) if self.rate_limit else None

    # ------------------------------------------------------------------ test hooks

    def reset(self) -> None:
        """Forget every template, label, A/B release, fault, log entry and rate-limit count (keys stay)."""
        with self.lock:
            self._clear_state()
            self.faults.clear()
            self.log.clear()
            self.internal_errors.clear()

    def add_key(self, key: str) -> None:
        with self.lock:
            self.keys.add(key)

    def seed(self, name: str, prompt_template: dict | str, *, metadata: dict | None = None,
             tags: list[str] | None = None, release_labels: Iterable[str] = (), commit_message: str | None = None,
             folder_id: int | None = None) -> dict:
        """Create a version "outside promptops" (as the UI would: no commit message unless given) without
        HTTP, faults or rate limits; validated as a publish (:class:`HttpError` 422/409 otherwise). A string
        ``prompt_template`` is a completion template with that text. Returns the publish response body."""
        if isinstance(prompt_template, str):
            prompt_template = {"type": "completion", "content": [{"type": "text", "text": prompt_template}]}
        labels = list(release_labels)
        body = {"prompt_template": {"prompt_name": name, "tags": tags, "folder_id": folder_id},
                "prompt_version": {"prompt_template": prompt_template, "commit_message": commit_message,
                                   "metadata": metadata},
                "release_labels": labels or None}
        with self.lock:
            return self._publish_body(body)

    def names(self, *, include_deleted: bool = False) -> list[str]:
        with self.lock:
            return [t.name for t in self._templates.values() if include_deleted or not t.deleted]

    def _stored(self, name: str | int) -> Template:
        t = self._templates.get(name) if isinstance(name, int) else self._by_name(name)
        if t is None or t.deleted:
            raise KeyError(name)
        return t

    def template(self, name: str | int) -> dict | None:
        """The template (by name or id) without its versions, or None."""
        with self.lock:
            try:
                t = self._stored(name)
            except KeyError:
                return None
            return {"id": t.id, "prompt_name": t.name, "tags": list(t.tags), "folder_id": t.folder_id,
                    "external_ids": copy.deepcopy(t.external_ids), "created_at": _stamp(t.created),
                    "updated_at": _stamp(t.updated), "latest_version": t.latest.version_number}

    def versions(self, name: str | int) -> list[dict]:
        """Copies of every stored version, oldest first, each with the labels now on it (KeyError if none)."""
        with self.lock:
            t = self._stored(name)
            return [{"prompt_version_id": v.prompt_version_id, "version_number": v.version_number,
                     "prompt_template": copy.deepcopy(v.prompt_template), "metadata": copy.deepcopy(v.metadata),
                     "commit_message": v.commit_message, "created_at": _stamp(v.created),
                     "release_labels": t.labels_of(v)} for v in t.versions]

    def labels(self, name: str | int) -> dict[str, int]:
        """label -> version_number (the base mapping; A/B releases are not shown)."""
        with self.lock:
            t = self._stored(name)
            return {lb.name: t.by_id(lb.prompt_version_id).version_number  # type: ignore[union-attr]
                    for lb in sorted(t.labels.values(), key=lambda lb: lb.id)}

    def delete_template(self, name: str | int) -> None:
        """Soft-delete a template as the UI does (the public API cannot)."""
        with self.lock:
            t = self._stored(name)
            t.deleted = True
            for key in [k for k in self._ab if k[0] == t.id]:
                del self._ab[key]

    def set_ab_release(self, name: str | int, label: str, splits: Mapping[int, int] | list[dict],
                       segments: list[dict] | None = None) -> dict:
        """Overload ``label`` with an A/B release: ``splits`` is {version_number: percent} (in order) or
        ``[{"version", "percent"}]``; ``segments`` ``[{"match": {...}, "splits": ...}]``. HttpError if invalid."""
        def as_list(value: Any) -> Any:
            if isinstance(value, Mapping):
                return [{"version": v, "percent": p} for v, p in value.items()]
            return value

        body = {"splits": as_list(splits),
                "segments": [{**s, "splits": as_list(s.get("splits"))} if isinstance(s, Mapping) else s
                             for s in (segments or [])]}
        with self.lock:
            return self._put_ab(self._stored(name), label, body)

    def clear_ab_release(self, name: str | int, label: str) -> bool:
        with self.lock:
            return self._ab.pop((self._stored(name).id, label), None) is not None

    def ab_release(self, name: str | int, label: str) -> dict | None:
        with self.lock:
            return copy.deepcopy(self._ab.get((self._stored(name).id, label)))

    def ab_version(self, name: str | int, label: str, metadata_filters: Mapping[str, str] | None = None) -> int:
        """The version number ``POST /prompt-templates/{name}`` with ``label`` resolves to for these filters
        (random when there are none, as the server does)."""
        with self.lock:
            t = self._stored(name)
            return self._resolve_label(t, label, dict(metadata_filters or {})).version_number

    # ------------------------------------------------------------------ plumbing

    def _now(self) -> float:
        """Wall time, strictly increasing so creation order is preserved."""
        now = float(self.wall_clock())
        if now <= self._last_time:
            now = self._last_time + 1e-6
        self._last_time = now
        return now

    def _by_name(self, name: str) -> Template | None:
        return next((t for t in self._templates.values() if t.name == name and not t.deleted), None)

    def _find(self, identifier: str) -> Template:
        if re.fullmatch(r"[0-9]+", identifier):
            t = self._templates.get(int(identifier))
            if t is not None and not t.deleted:
                return t
        t = self._by_name(identifier)
        if t is None:
            raise fail(404, f"Prompt template '{identifier}' not found", "Not found")
        return t

    def _owner(self, prompt_version_id: int) -> tuple[Template, Version] | None:
        for t in self._templates.values():
            v = t.by_id(prompt_version_id)
            if v is not None:
                return t, v
        return None

    def too_many(self, retry_after: float) -> Response:
        """A 429 from ``faults.rate_limit``: always with ``Retry-After``."""
        return self._too_many(retry_after, True)

    @staticmethod
    def _too_many(retry_after: float, header: bool) -> Response:
        seconds = max(1, math.ceil(retry_after - 1e-9))
        return Response(429, {"success": False, "message": "Rate limit exceeded"},
                        {"Retry-After": str(seconds)} if header else {})

    def _key(self, request: Request) -> str | None:
        key = request.header("X-API-KEY")
        return key if key is not None and key in self.keys else None

    def rate_limited(self, request: Request) -> Response | None:
        with self._limits_lock:
            bucket = self._bucket
        if bucket is None or request.path.startswith(ADMIN_PREFIX):
            return None
        key = self._key(request)
        if key is None:
            return None  # answered 401 by the route; not attributable to a key
        wait = bucket.take(key)
        return None if wait is None else self._too_many(wait, self.retry_after_header)

    @staticmethod
    def _json(request: Request, *, required: bool) -> dict[str, Any]:
        if not request.body.strip():
            if required:
                raise unprocessable([_missing(["body"])])
            return {}
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise unprocessable([_issue(["body", getattr(exc, "pos", 0)], "Expecting value",
                                        "value_error.jsondecode")]) from None
        if not isinstance(body, dict):
            raise unprocessable([_not_dict(["body"])])
        return body

    # ------------------------------------------------------------------ routing

    def route(self, request: Request) -> Response:
        if request.header("X-API-KEY") is None:
            raise fail(401, "Missing API key: send it in the X-API-KEY header", "Unauthorized")
        if self._key(request) is None:
            raise fail(401, "Invalid API key", "Unauthorized")
        handler, args = self._match(request)
        try:
            return handler(request, *args)
        except HttpError:
            raise
        except Exception as exc:  # noqa: BLE001 - a real server answers 500; tests can assert internal_errors is empty
            self.internal_errors.append(exc)
            return Response(500, {"success": False, "message": "Internal server error", "error": repr(exc)})

    def _match(self, request: Request) -> tuple[Callable[..., Response], tuple]:
        path, method = request.raw_path.split("?", 1)[0], request.method
        allowed: tuple[str, ...]
        if path.startswith(ADMIN_PREFIX):
            rest = path[len(ADMIN_PREFIX):]
            pid, sep, label = rest.partition("/")
            if not sep or not pid or not label:
                raise fail(404, "Not found")
            allowed = ("PUT", "DELETE")
            if method in allowed:
                return self._admin_ab, (unquote(pid), unquote(label))
        elif path == "/rest/prompt-templates":
            allowed = ("POST",)
            if method == "POST":
                return self._publish, ()
        elif path.startswith("/rest/prompt-templates/") and len(path) > len("/rest/prompt-templates/"):
            allowed = ("PATCH",)
            if method == "PATCH":
                return self._patch, (unquote(path[len("/rest/prompt-templates/"):]),)
        elif path == "/prompt-templates":
            allowed = ("GET",)
            if method == "GET":
                return self._list, ()
        elif path.startswith("/prompt-templates/") and len(path) > len("/prompt-templates/"):
            rest = path[len("/prompt-templates/"):]
            allowed = ("GET", "POST")
            if method == "GET" and rest.endswith("/labels") and len(rest) > len("/labels"):
                return self._list_labels, (unquote(rest[:-len("/labels")]),)
            if method == "GET":
                return self._get_raw, (unquote(rest),)
            if method == "POST":
                return self._get_rendered, (unquote(rest),)
        elif re.fullmatch(r"/prompts/[^/]+/label", path):
            allowed = ("POST",)
            if method == "POST":
                return self._create_label, (unquote(path.split("/")[2]),)
        elif re.fullmatch(r"/prompt-labels/[^/]+", path):
            allowed = ("PATCH", "DELETE")
            if method == "PATCH":
                return self._move_label, (unquote(path.split("/")[2]),)
            if method == "DELETE":
                return self._delete_label, (unquote(path.split("/")[2]),)
        else:
            raise fail(404, "Not found")
        raise fail(405, f"Method {method} not allowed on {path}; allowed: {', '.join(allowed)}", "Method not allowed")

    # ------------------------------------------------------------------ writes

    def _new_version(self, t: Template, content: dict, metadata: dict | None, commit_message: str | None) -> Version:
        now = self._now()
        v = Version(self._next_version, (t.latest.version_number + 1) if t.versions else 1, content, metadata,
                    commit_message, now)
        self._next_version += 1
        t.versions.append(v)
        t.updated = now
        return v

    def _apply_labels(self, t: Template, v: Version, names: Iterable[str]) -> None:
        """Create each label on ``v``, or move it there."""
        for name in names:
            existing = t.labels.get(name)
            if existing is not None:
                existing.prompt_version_id = v.prompt_version_id
            else:
                t.labels[name] = Label(self._next_label, name, v.prompt_version_id, self._now())
                self._next_label += 1

    def _check_external_conflicts(self, t: Template | None, external_ids: list[dict]) -> None:
        for entry in external_ids:
            for other in self._templates.values():
                if other is not t and not other.deleted and entry in other.external_ids:
                    raise fail(409, f"External id {entry['source']}/{entry['external_id']} is already mapped to "
                                    f"prompt template {other.id}")

    def _version_body(self, t: Template, v: Version, release_labels: list[str] | None) -> dict:
        return {"id": t.id, "prompt_name": t.name, "prompt_version_id": v.prompt_version_id,
                "version_number": v.version_number, "version": v.version_number, "tags": list(t.tags),
                "folder_id": t.folder_id, "release_labels": release_labels,
                "prompt_template": copy.deepcopy(v.prompt_template), "metadata": copy.deepcopy(v.metadata),
                "commit_message": v.commit_message, "external_ids": copy.deepcopy(t.external_ids),
                "created_at": _stamp(v.created)}

    def _publish_body(self, body: dict) -> dict:
        issues: list[dict] = []
        head, spec = body.get("prompt_template", _MISSING), body.get("prompt_version", _MISSING)
        name: str | None = None
        tags: list[str] | None = None
        folder_id: int | None = None
        if head is _MISSING or head is None:
            issues.append(_missing(["body", "prompt_template"]))
        elif not isinstance(head, dict):
            issues.append(_not_dict(["body", "prompt_template"]))
        else:
            raw_name = head.get("prompt_name", _MISSING)
            where = ["body", "prompt_template", "prompt_name"]
            if raw_name is _MISSING or raw_name is None:
                issues.append(_missing(where))
            elif not isinstance(raw_name, str):
                issues.append(_not_str(where))
            elif not raw_name:
                issues.append(_too_short(where, 1))
            elif len(raw_name) > NAME_MAX:
                issues.append(_too_long(where, NAME_MAX))
            else:
                name = raw_name
            tags = _check_str_list(head.get("tags", _MISSING), ["body", "prompt_template", "tags"], issues, None)
            raw_folder = head.get("folder_id")
            if raw_folder is not None:
                folder_id = _int_value(raw_folder, ["body", "prompt_template", "folder_id"], issues)
        content = metadata = commit_message = None
        if spec is _MISSING or spec is None:
            issues.append(_missing(["body", "prompt_version"]))
        elif not isinstance(spec, dict):
            issues.append(_not_dict(["body", "prompt_version"]))
        else:
            content = check_prompt_template(spec.get("prompt_template", _MISSING),
                                            ["body", "prompt_version", "prompt_template"], issues)
            commit_message = _check_commit_message(spec.get("commit_message"),
                                                   ["body", "prompt_version", "commit_message"], issues)
            metadata = check_metadata(spec.get("metadata"), ["body", "prompt_version", "metadata"], issues)
        labels = _check_labels(body.get("release_labels"), ["body", "release_labels"], issues)
        external_ids = _check_external_ids(body.get("external_ids"), ["body", "external_ids"], issues)
        if issues or name is None or content is None:
            raise unprocessable(issues)
        self._check_snippets(name, content, ["body", "prompt_version", "prompt_template"])
        t = self._by_name(name)
        self._check_external_conflicts(t, external_ids)
        if t is None:
            now = self._now()
            t = Template(self._next_template, name, list(tags or []), folder_id, now, now)
            self._next_template += 1
            self._templates[t.id] = t
        else:
            if tags is not None:
                t.tags = list(tags)
            if head.get("folder_id") is not None:
                t.folder_id = folder_id
        for entry in external_ids:
            if entry not in t.external_ids:
                t.external_ids.append(entry)
        v = self._new_version(t, content, metadata, commit_message)
        self._apply_labels(t, v, labels or [])
        body = self._version_body(t, v, labels)
        if self.answers == "2025-04":  # the recorded answer: no version number, no version id
            body = {key: body[key] for key in PUBLISH_KEYS_2025_04}
        return body

    def _publish(self, request: Request) -> Response:
        return Response(201, self._publish_body(self._json(request, required=True)))

    def _patch(self, request: Request, identifier: str) -> Response:
        body = self._json(request, required=True)
        issues: list[dict] = []
        version = None
        if body.get("version") is not None:
            version = _int_value(body["version"], ["body", "version"], issues, gt=0)
        label = body.get("label")
        if label is not None and not isinstance(label, str):
            issues.append(_not_str(["body", "label"]))
        commit_message = _check_commit_message(body.get("commit_message"), ["body", "commit_message"], issues)
        labels = _check_labels(body.get("release_labels"), ["body", "release_labels"], issues)
        for key in ("model_parameters",):
            if body.get(key) is not None and not isinstance(body[key], dict):
                issues.append(_not_dict(["body", key]))
        if issues:
            raise unprocessable(issues)
        if body.get("version") is not None and label is not None:
            raise fail(400, "Cannot specify both version and label")
        t = self._find(identifier)
        base = self._select(t, version, label)
        content = copy.deepcopy(base.prompt_template)
        metadata = copy.deepcopy(base.metadata)
        kind = content.get("type")
        chat_only = ("messages", "tools", "functions", "function_call", "tool_choice")
        for key in chat_only:
            if key in body and kind != "chat":
                raise fail(400, f"{key} can only be patched on a chat template; this one is {kind}")
        if "content" in body and kind != "completion":
            raise fail(400, f"content can only be patched on a completion template; this one is {kind}")
        for key in ("messages", "content", "tools", "functions"):
            if key not in body:
                continue
            patch = body[key]
            if patch is None:
                if key in ("messages", "content"):
                    raise fail(400, f"{key} cannot be removed")
                content[key] = None
            elif isinstance(patch, list):
                content[key] = copy.deepcopy(patch)
            elif isinstance(patch, dict):
                current = content.get(key)
                items = list(current) if isinstance(current, list) else []
                for index, change in patch.items():
                    if not re.fullmatch(r"[0-9]+", str(index)) or int(index) >= len(items):
                        raise fail(400, f"{key} index {index} is out of bounds ({len(items)} items)")
                    if not isinstance(change, dict) or not isinstance(items[int(index)], dict):
                        raise unprocessable([_not_dict(["body", key, str(index)])])
                    items[int(index)] = {**items[int(index)], **copy.deepcopy(change)}
                content[key] = items
            else:
                raise unprocessable([_issue(["body", key], "value is not a valid list or dict", "type_error")])
        for key in ("function_call", "tool_choice"):
            if key in body:
                content[key] = copy.deepcopy(body[key])
        if "model_parameters" in body or "response_format" in body:
            model = (metadata or {}).get("model")
            if not isinstance(model, dict):
                raise fail(400, "This prompt version has no model to patch parameters of")
            parameters = dict(model.get("parameters") or {})
            parameters.update(copy.deepcopy(body.get("model_parameters") or {}))
            if "response_format" in body:
                if body["response_format"] is None:
                    parameters.pop("response_format", None)
                else:
                    parameters["response_format"] = copy.deepcopy(body["response_format"])
            model["parameters"] = parameters
        checked = check_prompt_template(content, ["body", "prompt_template"], issues)
        if issues or checked is None:
            raise unprocessable(issues)
        self._check_snippets(t.name, checked, ["body", "prompt_template"])
        v = self._new_version(t, checked, metadata, commit_message)
        self._apply_labels(t, v, labels or [])
        return Response(201, self._version_body(t, v, labels))

    # ------------------------------------------------------------------ reads

    def _select(self, t: Template, version: int | None, label: str | None) -> Version:
        """The label's base version, else the version, else the latest (404 when named and absent)."""
        if label is not None:
            found = t.labels.get(label)
            if found is None:
                raise fail(404, f"Release label '{label}' not found for prompt template '{t.name}'", "Not found")
            return t.by_id(found.prompt_version_id)  # type: ignore[return-value]
        if version is not None:
            v = t.version(version)
            if v is None:
                raise fail(404, f"Version {version} of prompt template '{t.name}' not found", "Not found")
            return v
        return t.latest

    def _resolve_label(self, t: Template, label: str, filters: Mapping[str, str]) -> Version:
        base = self._select(t, None, label)
        ab = self._ab.get((t.id, label))
        if ab is None:
            return base
        splits = ab["splits"]
        for segment in ab.get("segments") or []:
            if all(filters.get(k) == v for k, v in segment["match"].items()):
                splits = segment["splits"]
                break
        bucket = ab_bucket(t.id, label, filters) if filters else self._random.randrange(100)
        return t.version(_pick_split(splits, bucket)) or base

    # ------------------------------------------------------------------ snippets

    def _snippet(self, match: re.Match[str]) -> tuple[Template, Version]:
        """The template and version a reference names (a label: its base version); SnippetError
        when there is none or it is not a completion."""
        name, number, label = match.group(1), match.group(2), match.group(3)
        t = self._by_name(name)
        if t is None:
            raise SnippetError(f"Snippet '{name}' not found: no prompt template is named so")
        if label is not None:
            found = t.labels.get(label)
            if found is None:
                raise SnippetError(f"Snippet '{name}' with label '{label}' not found")
            v = t.by_id(found.prompt_version_id)
        elif number is not None:
            v = t.version(int(number)) if re.fullmatch(r"[0-9]+", number) else None
            if v is None:
                raise SnippetError(f"Snippet '{name}' version_number {number} not found")
        else:
            v = t.latest
        if v is None or v.prompt_template.get("type") != "completion":
            raise SnippetError(f"Snippet '{match.group(0)}' names a chat template: only completion templates can "
                               "be snippets")
        return t, v

    def _inline(self, text: str, stack: tuple[int, ...], used: list[dict[str, Any]]) -> str:
        """``text`` with every reference that resolves replaced by its snippet's text, itself
        resolved; ``stack`` holds the ``prompt_version_id`` of the versions being resolved (a
        reference to one of them would loop: it is left as written). Each reference inlined is
        added once to ``used`` (the answer's ``snippets``)."""
        def inlined(match: re.Match[str]) -> str:
            try:
                t, v = self._snippet(match)
            except SnippetError:
                return match.group(0)
            if v.prompt_version_id in stack:
                return match.group(0)
            entry = {"prompt_name": t.name, "version": v.version_number, "label": match.group(3)}
            if entry not in used:
                used.append(entry)
            return self._inline(_joined_text(v.prompt_template.get("content")), (*stack, v.prompt_version_id), used)

        return SNIPPET_REFERENCE.sub(inlined, text)

    def _resolved(self, v: Version) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A copy of ``v``'s template with its snippets inlined, and the references inlined."""
        template = copy.deepcopy(v.prompt_template)
        used: list[dict[str, Any]] = []
        for _, block in text_blocks(template):
            block["text"] = self._inline(block["text"], (v.prompt_version_id,), used)
        return template, used

    def _check_snippets(self, name: str, template: dict[str, Any], loc: list[Any]) -> None:
        """422 unless every reference in the ``template`` about to be stored as a version of
        ``name`` names an existing completion version that does not lead back to ``name``."""
        issues: list[dict[str, Any]] = []
        for where, block in text_blocks(template):
            for match in SNIPPET_REFERENCE.finditer(block["text"]):
                try:
                    t, v = self._snippet(match)
                    if t.name == name or self._reaches(v, name, (t.name,)):
                        raise SnippetError(f"Snippet '{match.group(0)}' creates a snippet cycle: it leads back "
                                           f"to '{name}'")
                except SnippetError as exc:
                    issues.append(_issue(loc + where, str(exc), "value_error"))
        if issues:
            raise unprocessable(issues)

    def _reaches(self, v: Version, name: str, stack: tuple[str, ...]) -> bool:
        """True when resolving version ``v`` would meet a reference to template ``name``."""
        for match in SNIPPET_REFERENCE.finditer(_joined_text(v.prompt_template.get("content"))):
            if match.group(1) == name:
                return True
            try:
                t, nested = self._snippet(match)
            except SnippetError:
                continue
            if t.name not in stack and self._reaches(nested, name, (*stack, t.name)):
                return True
        return False

    def _get_rendered(self, request: Request, identifier: str) -> Response:
        body = self._json(request, required=False)
        issues: list[dict] = []
        version = None
        if body.get("version") is not None:
            version = _int_value(body["version"], ["body", "version"], issues, gt=0)
        label = body.get("label")
        if label is not None and not isinstance(label, str):
            issues.append(_not_str(["body", "label"]))
        for key in ("provider", "model"):
            if body.get(key) is not None and not isinstance(body[key], str):
                issues.append(_not_str(["body", key]))
        variables = body.get("input_variables")
        if variables is not None and not isinstance(variables, dict):
            issues.append(_not_dict(["body", "input_variables"]))
        filters = body.get("metadata_filters")
        if filters is not None:
            if not isinstance(filters, dict):
                issues.append(_not_dict(["body", "metadata_filters"]))
            else:
                for k, v in filters.items():
                    if not isinstance(v, str):
                        issues.append(_not_str(["body", "metadata_filters", k]))
        overrides = body.get("model_parameter_overrides")
        if overrides is not None and not isinstance(overrides, dict):
            issues.append(_not_dict(["body", "model_parameter_overrides"]))
        skip = body.get("skip_input_variable_rendering", False)
        if skip is None:
            skip = False
        if not isinstance(skip, bool):
            issues.append(_not_bool(["body", "skip_input_variable_rendering"]))
        if issues:
            raise unprocessable(issues)
        t = self._find(identifier)
        if label is not None:  # the label wins over a version sent with it
            v = self._resolve_label(t, label, filters or {})
        else:
            v = self._select(t, version, None)
        template, used = self._resolved(v)
        if not skip:
            template = render_prompt_template(template, variables or {})
        kwargs = llm_kwargs(template, v.metadata, provider=body.get("provider"), model=body.get("model"),
                            overrides=overrides, variables=None if skip else (variables or {}))
        return Response(200, {"id": t.id, "prompt_name": t.name, "tags": list(t.tags), "workspace_id": self.workspace_id,
                              "commit_message": v.commit_message, "metadata": copy.deepcopy(v.metadata),
                              "prompt_template": copy.deepcopy(template), "llm_kwargs": kwargs,
                              "provider_base_url": None, "version": v.version_number, "snippets": used,
                              "warning": None})

    def _get_raw(self, request: Request, identifier: str) -> Response:
        issues: list[dict] = []
        version = None
        if request.arg("version") not in (None, ""):
            version = _int_value(request.arg("version"), ["query", "version"], issues, gt=0)
        label = request.arg("label") or None
        include = False
        if request.arg("include_llm_kwargs") not in (None, ""):
            include = bool(_bool_value(request.arg("include_llm_kwargs") or "", ["query", "include_llm_kwargs"],
                                       issues))
        resolve = True  # the OpenAPI's default: snippets expanded
        if request.arg("resolve_snippets") not in (None, ""):
            resolve = _bool_value(request.arg("resolve_snippets") or "", ["query", "resolve_snippets"], issues) \
                is not False
        if issues:
            raise unprocessable(issues)
        if version is not None and label is not None:
            raise fail(400, "Cannot specify both version and label")
        t = self._find(identifier)
        v = self._select(t, version, label)
        template, used = self._resolved(v) if resolve else (copy.deepcopy(v.prompt_template), [])
        body = {"success": True, "id": t.id, "prompt_name": t.name, "version": v.version_number,
                "workspace_id": self.workspace_id, "prompt_template": template,
                "metadata": copy.deepcopy(v.metadata), "commit_message": v.commit_message, "tags": list(t.tags),
                "created_at": _stamp(v.created), "snippets": used}
        if include:
            body["llm_kwargs"] = llm_kwargs(template, v.metadata)
        return Response(200, body)

    def _list(self, request: Request) -> Response:
        issues: list[dict] = []

        def int_query(name: str, default: int) -> int:
            raw = request.arg(name)
            if raw is None or raw == "":
                return default
            value = _int_value(raw, ["query", name], issues, ge=1)
            return default if value is None else value

        def enum_query(name: str, allowed: tuple[str, ...], default: str) -> str:
            raw = request.arg(name)
            if raw is None or raw == "":
                return default
            if raw not in allowed:
                issues.append(_not_enum(["query", name], allowed))
                return default
            return raw

        page, per_page = int_query("page", 1), int_query("per_page", 30)
        status = enum_query("status", STATUSES, "active")
        sort_by = enum_query("sort_by", SORT_BY, "created_at")
        sort_order = enum_query("sort_order", SORT_ORDER, "desc")
        bounds: dict[str, float | None] = {}
        for key in ("created_after", "created_before", "updated_after", "updated_before"):
            raw = request.arg(key)
            bounds[key] = None
            if raw not in (None, ""):
                bounds[key] = _parse_datetime(raw)  # type: ignore[arg-type]
                if bounds[key] is None:
                    issues.append(_issue(["query", key], "invalid datetime format", "value_error.datetime"))
        source, external_id = request.arg("external_source") or None, request.arg("external_id") or None
        if (source is None) != (external_id is None):
            issues.append(_issue(["query"], "external_source and external_id must be provided together",
                                 "value_error"))
        is_snippet = None
        if request.arg("is_snippet") not in (None, ""):
            is_snippet = _bool_value(request.arg("is_snippet") or "", ["query", "is_snippet"], issues)
        if issues:
            raise unprocessable(issues)
        label = request.arg("label") or None
        name = (request.arg("name") or "").lower()
        tags = [tag for tag in request.query.get("tags", []) if tag]
        email = request.arg("created_by_email") or None

        chosen: list[tuple[Template, Version]] = []
        for t in self._templates.values():
            if (status == "active" and t.deleted) or (status == "deleted" and not t.deleted):
                continue
            if name and name not in t.name.lower():
                continue
            if any(tag not in t.tags for tag in tags):
                continue
            if source is not None and {"source": source, "external_id": external_id} not in t.external_ids:
                continue
            if is_snippet or (email is not None and email != self.user_email):
                continue
            if (bounds["created_after"] is not None and t.created < bounds["created_after"]) \
                    or (bounds["created_before"] is not None and t.created > bounds["created_before"]) \
                    or (bounds["updated_after"] is not None and t.updated < bounds["updated_after"]) \
                    or (bounds["updated_before"] is not None and t.updated > bounds["updated_before"]):
                continue
            if label is not None:
                found = t.labels.get(label)
                if found is None:
                    continue
                chosen.append((t, t.by_id(found.prompt_version_id)))  # type: ignore[arg-type]
            else:
                chosen.append((t, t.latest))
        keys: dict[str, Callable[[tuple[Template, Version]], Any]] = {
            "created_at": lambda tv: (tv[0].created, tv[0].id), "updated_at": lambda tv: (tv[0].updated, tv[0].id),
            "name": lambda tv: (tv[0].name, tv[0].id), "id": lambda tv: tv[0].id}
        chosen.sort(key=keys[sort_by], reverse=sort_order == "desc")
        chunk, pages = paginate(chosen, page, per_page)
        items = [{"id": t.id, "prompt_name": t.name, "tags": list(t.tags), "folder_id": t.folder_id,
                  "prompt_template": copy.deepcopy(v.prompt_template), "version": v.version_number,
                  "commit_message": v.commit_message, "metadata": copy.deepcopy(v.metadata),
                  "parent_folder_name": None, "full_folder_path": None, "external_ids": copy.deepcopy(t.external_ids),
                  "is_snippet": False} for t, v in chunk]
        has_next, has_prev = page < pages, page > 1
        return Response(200, {"items": items, "page": page, "per_page": per_page, "pages": pages,
                              "total": len(chosen), "has_next": has_next, "has_prev": has_prev,
                              "next_num": page + 1 if has_next else None, "prev_num": page - 1 if has_prev else None})

    # ------------------------------------------------------------------ labels

    def _list_labels(self, request: Request, identifier: str) -> Response:
        t = self._find(identifier)
        out = []
        for lb in sorted(t.labels.values(), key=lambda lb: lb.id):
            v = t.by_id(lb.prompt_version_id)
            out.append({"release_label": lb.name, "release_label_id": lb.id, "prompt_version_id": lb.prompt_version_id,
                        "prompt_version_number": v.version_number if v else None})
        return Response(200, {"release_labels": out})

    @staticmethod
    def _path_int(raw: str, name: str) -> int:
        if not re.fullmatch(r"[0-9]+", raw):
            raise unprocessable([_not_int(["path", name])])
        return int(raw)

    def _target_version(self, t: Template, body: dict) -> Version:
        """The version named by prompt_version_number and/or prompt_version_id in a label body."""
        issues: list[dict] = []
        number = vid = None
        if body.get("prompt_version_number") is not None:
            number = _int_value(body["prompt_version_number"], ["body", "prompt_version_number"], issues, ge=1)
        if body.get("prompt_version_id") is not None:
            vid = _int_value(body["prompt_version_id"], ["body", "prompt_version_id"], issues, ge=1)
        if not issues and number is None and vid is None:
            issues.append(_issue(["body"], "prompt_version_number or prompt_version_id is required", "value_error"))
        if issues:
            raise unprocessable(issues)
        by_number = by_id = None
        if number is not None:
            by_number = t.version(number)
            if by_number is None:
                raise fail(404, f"Version {number} of prompt template '{t.name}' not found", "Not found")
        if vid is not None:
            by_id = t.by_id(vid)
            if by_id is None:
                if self._owner(vid) is not None:
                    raise fail(400, f"Prompt version {vid} does not belong to prompt template {t.id}")
                raise fail(404, f"Prompt version {vid} not found", "Not found")
        if by_number is not None and by_id is not None and by_number is not by_id:
            raise fail(400, "prompt_version_number and prompt_version_id name different versions")
        return by_number or by_id  # type: ignore[return-value]

    def _label_body(self, t: Template, lb: Label) -> dict:
        return {"id": lb.id, "name": lb.name, "prompt_id": t.id, "prompt_version_id": lb.prompt_version_id,
                "created_at": _stamp(lb.created)}

    def _create_label(self, request: Request, raw_id: str) -> Response:
        prompt_id = self._path_int(raw_id, "prompt_id")
        body = self._json(request, required=True)
        name = body.get("name", _MISSING)
        if name is _MISSING or name is None:
            raise unprocessable([_missing(["body", "name"])])
        if not isinstance(name, str):
            raise unprocessable([_not_str(["body", "name"])])
        if not name:
            raise unprocessable([_too_short(["body", "name"], 1)])
        t = self._templates.get(prompt_id)
        if t is None or t.deleted:
            raise fail(404, f"Prompt template {prompt_id} not found", "Not found")
        v = self._target_version(t, body)
        if name in t.labels:
            raise fail(400, "Release label already exists")
        lb = Label(self._next_label, name, v.prompt_version_id, self._now())
        self._next_label += 1
        t.labels[name] = lb
        return Response(200, self._label_body(t, lb))

    def _label(self, raw_id: str) -> tuple[Template, Label]:
        label_id = self._path_int(raw_id, "prompt_label_id")
        for t in self._templates.values():
            if t.deleted:
                continue
            for lb in t.labels.values():
                if lb.id == label_id:
                    return t, lb
        raise fail(404, f"Release label {label_id} not found", "Not found")

    def _move_label(self, request: Request, raw_id: str) -> Response:
        body = self._json(request, required=True)
        t, lb = self._label(raw_id)
        v = self._target_version(t, body)
        lb.prompt_version_id = v.prompt_version_id
        return Response(200, self._label_body(t, lb))

    def _delete_label(self, request: Request, raw_id: str) -> Response:
        t, lb = self._label(raw_id)
        del t.labels[lb.name]
        self._ab.pop((t.id, lb.name), None)
        return Response(204)

    # ------------------------------------------------------------------ A/B releases (admin)

    def _admin_ab(self, request: Request, identifier: str, label: str) -> Response:
        t = self._find(identifier)
        if request.method == "DELETE":
            if self._ab.pop((t.id, label), None) is None:
                raise fail(404, f"No A/B release on label '{label}' of prompt template {t.id}", "Not found")
            return Response(204)
        return Response(200, self._put_ab(t, label, self._json(request, required=True)))

    def _check_splits(self, t: Template, splits: Any, where: str) -> list[dict]:
        if not isinstance(splits, list) or not splits:
            raise fail(400, f"{where} must be a non-empty list of {{version, percent}}")
        out: list[dict] = []
        for i, entry in enumerate(splits):
            if not isinstance(entry, dict):
                raise fail(400, f"{where}[{i}] must be an object with version and percent")
            version, percent = entry.get("version"), entry.get("percent")
            if isinstance(version, bool) or not isinstance(version, int):
                raise fail(400, f"{where}[{i}].version must be a version number")
            if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
                raise fail(400, f"{where}[{i}].percent must be an integer between 0 and 100")
            if t.version(version) is None:
                raise fail(404, f"Version {version} of prompt template '{t.name}' not found", "Not found")
            if any(e["version"] == version for e in out):
                raise fail(400, f"{where} lists version {version} more than once")
            out.append({"version": version, "percent": percent})
        total = sum(e["percent"] for e in out)
        if total != 100:
            raise fail(400, f"{where} percents must sum to 100, not {total}")
        return out

    def _put_ab(self, t: Template, label: str, body: Any) -> dict:
        if not isinstance(body, dict):
            raise fail(400, "Body must be an object with splits")
        if label not in t.labels:
            raise fail(404, f"Release label '{label}' not found for prompt template '{t.name}'", "Not found")
        splits = self._check_splits(t, body.get("splits"), "splits")
        segments = []
        raw_segments = body.get("segments") or []
        if not isinstance(raw_segments, list):
            raise fail(400, "segments must be a list")
        for i, segment in enumerate(raw_segments):
            if not isinstance(segment, dict) or not isinstance(segment.get("match"), dict) or not segment["match"] \
                    or not all(isinstance(v, str) for v in segment["match"].values()):
                raise fail(400, f"segments[{i}].match must be a non-empty object of strings")
            segments.append({"match": dict(segment["match"]),
                             "splits": self._check_splits(t, segment.get("splits"), f"segments[{i}].splits")})
        ab = {"prompt_id": t.id, "label": label, "splits": splits, "segments": segments}
        self._ab[(t.id, label)] = ab
        return copy.deepcopy(ab)
