"""promptops.yaml: the prompts folder and the targets (design.md 1.1).

Without a promptops.yaml a project has ``prompts/`` and one ``local`` target, so plan and apply
work on a fresh clone with no keys. Credentials are only ever ``${ENV_VAR}`` references; their
values are read from the environment when a provider is opened, never stored or printed.
"""
from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from .errors import ConfigError, Diagnostic, clip
from .providers.base import CAPABILITIES, Capabilities
from .provenance import key_room
from .schemas import schema_diagnostics
from .yamlload import Loaded, load_yaml_file

CONFIG_FILE = "promptops.yaml"
DEFAULT_REGISTRY = ".promptops/registry.db"
ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")

# Credential keys each provider needs (design.md section 4); optional ones in the second set.
CREDENTIAL_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "local": (frozenset(), frozenset()),
    "langfuse": (frozenset({"public_key", "secret_key"}), frozenset()),
    "promptlayer": (frozenset({"api_key"}), frozenset()),
    "promptrails": (frozenset({"api_key"}), frozenset({"workspace_id"})),
    "promptlab": (frozenset({"api_key"}), frozenset()),
}
# Endpoint classes a target's rate_limits may pace besides "read" and "write": the platforms'
# published per-endpoint limits (providers-api.md 2.2).
RATE_CLASSES: dict[str, tuple[str, ...]] = {"promptlab": ("list", "versions", "deploy", "resolve")}
# What an adapter keeps under a reserved model key (Capabilities.reserved_model_keys), and the fix.
_MODEL_KEY_ROLES = {
    "model": ("model name", "write the model name as model: {name: ...}"),
    "tools": ("tools", "declare tools with tools: beside model:"),
    "template_format": ("template format", "set template_format: on the prompt"),
}
DEFAULT_CONCURRENCY = {"local": 1, "langfuse": 8, "promptlayer": 4, "promptrails": 4, "promptlab": 4}


def unsendable(value: str) -> str | None:
    """The first character of ``value`` that cannot travel in an HTTP header as a credential
    (anything but printable ASCII without spaces: a line break pasted with a key, a typographic
    dash), or None. Callers say which variable holds it, never the value."""
    return next((ch for ch in value if not ("!" <= ch <= "~")), None)


@dataclass(frozen=True)
class Target:
    """One configured target. ``credentials`` maps key -> environment variable name."""

    name: str
    provider: str
    path: str = DEFAULT_REGISTRY
    base_url: str | None = None
    credentials: Mapping[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] | None = None
    concurrency: int = 1
    rate_limits: Mapping[str, str] = field(default_factory=dict)
    flavour: str | None = None  # langfuse only: "langfuse" or "browserstack"
    timeout: float = 10.0  # seconds per HTTP request

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES[self.provider]

    @property
    def who(self) -> str:
        """How messages name the target: ``target 'lab' (promptlab)``."""
        return f"target {self.name!r} ({self.provider})"

    def manages_label(self, label: str) -> bool:
        """True when this target manages ``label`` (its ``labels:`` list, or all it can represent)."""
        if label in self.capabilities.reserved_labels:
            return False
        if self.capabilities.labels == "single":
            # a single-pointer platform maps exactly one label onto its pointer
            return label == (self.labels[0] if self.labels else "production")
        return self.labels is None or label in self.labels

    def gaps(self, ptype: str, fmt: str, labels: Iterable[str], traffic_labels: Iterable[str]
             ) -> list[tuple[str, str]]:
        """What of a prompt this target cannot represent, as (field, value) pairs: ("type", ptype),
        ("template_format", fmt), ("label", a reserved label), ("pointer", a label other than the
        one a single-pointer target maps, when its labels: does not say which it manages),
        ("traffic", a managed label whose split the provider cannot hold). Empty when the target
        can hold the prompt as declared. validate and the planner both ask this, and word the
        answer each for its place; what of a version's content cannot be stored is
        :meth:`content_gaps`."""
        caps = self.capabilities
        found = [("type", ptype)] if ptype not in caps.types else []
        if fmt not in caps.template_formats:
            found.append(("template_format", fmt))
        found += [("label", label) for label in labels if label in caps.reserved_labels]
        if caps.labels == "single" and self.labels is None:
            # One pointer, mapped to production by default: any other label the file names would
            # be silently left out. A target that lists its label (labels: [x]) says so itself.
            found += [("pointer", label) for label in sorted(set(labels) | set(traffic_labels))
                      if label not in caps.reserved_labels and not self.manages_label(label)]
        if not caps.traffic:
            found += [("traffic", label) for label in traffic_labels if self.manages_label(label)]
        return found

    def content_gaps(self, content: Mapping[str, Any]) -> list[tuple[tuple, str, str]]:
        """What of one version's canonical content this target cannot store, as (path in the
        content, problem, hint): e.g. (("model",), ...) or (("messages", 2, "placeholder"), ...).
        Empty when it can store it. validate locates the path in the file; the planner names it."""
        caps, who = self.capabilities, self.who
        found: list[tuple[tuple, str, str]] = []
        for part in ("model", "tools"):
            if content.get(part) and not caps.model_config:
                found.append(((part,), f"{who} stores only the template, so {part}: cannot be represented",
                              f"remove {part}:"))
        for key in sorted(set(content.get("model") or {}) & caps.reserved_model_keys):
            role, hint = _MODEL_KEY_ROLES[key]
            found.append((("model", key), f"model key {key!r} cannot be represented on {who}: its config holds the "
                          f"{role} under that name", hint))
        if content.get("tools") and content.get("type") not in caps.tools_types:
            found.append((("tools",), f"{who} keeps tools only in {' and '.join(sorted(caps.tools_types))} prompts, "
                          f"so tools: on a {content.get('type')} prompt cannot be represented",
                          "remove tools:, or write the prompt as a chat prompt (messages:)"))
        model = content.get("model") or {}
        missing = sorted(k for k in caps.model_requires if k not in model)
        if model and missing:
            found.append((("model",), f"{who} stores model config only with {' and '.join(sorted(caps.model_requires))}"
                          f" (missing: {', '.join(missing)})", f"add {', '.join(k + ':' for k in missing)} under model:"))
        for key in sorted(k for k in caps.model_requires if k in model and not (isinstance(model[k], str) and model[k])):
            found.append((("model", key), f"{who} needs model {key}: as text, not {clip(repr(model[key]))}",
                          f"write model: {{{key}: <text>}}"))
        if content.get("template") == "" and not caps.empty_template:
            found.append((("template",), f"{who} cannot store an empty template", "write the template's text"))
        messages = content.get("messages") or ()
        if caps.chat_roles is not None and content.get("type") == "chat":
            found += _chat_shape_gaps(messages, caps.chat_roles, who)
        if (caps.message_format and messages and content.get("template_format") != caps.message_format
                and all("placeholder" in m for m in messages)):
            found.append((("template_format",), f"{who} keeps the template format on each text message, so a chat "
                          f"prompt of placeholders only reads back as {caps.message_format}",
                          f"set template_format: {caps.message_format}"))
        if caps.placeholder_names:
            for i, message in enumerate(content.get("messages") or ()):
                name = message.get("placeholder")
                if name is not None and not re.match(caps.placeholder_names, name):
                    found.append((("messages", i, "placeholder"), f"{who} needs placeholder names matching "
                                  f"{caps.placeholder_names}, not {name!r}", "rename the placeholder"))
        return found

    def name_gap(self, name: str) -> tuple[str, str] | None:
        """(problem, hint) when the platform refuses the prompt name itself, else None."""
        if name not in self.capabilities.reserved_names:
            return None
        return (f"prompt name {name!r} is reserved on {self.who}: the platform refuses it",
                "choose another name (set name:, or rename the file)")

    def key_gap(self, key: str) -> tuple[str, str] | None:
        """(problem, hint) when a version key is too long for the provenance stamp this target
        keeps (a commit message of ``message_limit`` characters), else None."""
        limit = self.capabilities.message_limit
        if limit is None or len(key) <= key_room(limit):
            return None
        return (f"{self.who} keeps the provenance stamp in a {limit}-character commit message, which holds a version "
                f"key of at most {key_room(limit)} characters, not {len(key)}", "shorten the version key")

    def secret(self, key: str) -> str:
        """The credential value from the environment; ConfigError naming the variable if unset."""
        var = self.credentials[key]
        value = os.environ.get(var)
        if not value:
            raise ConfigError(f"target {self.name!r}: environment variable {var} is not set "
                              f"(credentials.{key}); export it before running promptops")
        # Credentials travel in HTTP headers: a line break or a non-ASCII character (pasted with
        # the key) would be refused there, in a message quoting the header. Said here, unquoted.
        odd = unsendable(value)
        if odd is not None:
            what = {"\n": "a line break", "\r": "a carriage return", " ": "a space", "\t": "a tab"}.get(
                odd, f"the character U+{ord(odd):04X}")
            raise ConfigError(f"target {self.name!r}: environment variable {var} (credentials.{key}) holds {what}; "
                              "credentials are printable ASCII without spaces: set it again without it")
        return value


def _chat_shape_gaps(messages: Any, roles: tuple[str, ...], who: str) -> list[tuple[tuple, str, str]]:
    """Where a chat prompt is not exactly ``roles`` in order, each message with some text (an
    empty message would be read back as a prompt without it)."""
    found: list[tuple[tuple, str, str]] = []
    shape = " + ".join(roles)
    for i, message in enumerate(messages):
        if "placeholder" in message:
            found.append((("messages", i, "placeholder"), f"{who} has no message-list placeholders (a chat prompt "
                          f"there is {shape})", "remove the placeholder message"))
    actual = [m.get("role") for m in messages if "placeholder" not in m]
    if actual != list(roles):
        hint = f"write one {' then one '.join(roles)} message"
        if actual == [roles[-1]]:
            hint = f"write it as a text prompt (template:): that is stored as the {roles[-1]} prompt alone"
        found.append((("messages",), f"{who} stores a chat prompt as {shape}, one message each in that order, "
                      f"not {' + '.join(map(str, actual)) or 'no messages'}", hint))
        return found
    for i, message in enumerate(messages):
        if "placeholder" not in message and message.get("content") == "":
            found.append((("messages", i, "content"), f"{who} cannot store an empty {message.get('role')} message",
                          "write the message's text"))
    return found


@dataclass(frozen=True)
class Config:
    """The parsed promptops.yaml (or the defaults when there is none).

    ``targets_known`` is False when promptops.yaml exists but its targets could not be read (it
    has errors, reported separately): ``targets`` then holds the default and checks of prompt
    files against targets must be skipped, or they would report errors that are not there.
    ``prompts_at`` is the position of ``prompts:`` in promptops.yaml (None when defaulted), so a
    missing folder can be reported where it is set."""

    root: Path
    prompts: str = "prompts"
    default_target: str = "local"
    targets: Mapping[str, Target] = field(default_factory=lambda: {"local": Target("local", "local")})
    file: str | None = None
    targets_known: bool = True
    prompts_at: tuple[int, int] | None = None

    @property
    def prompts_dir(self) -> Path:
        """The prompts folder, symlinks resolved; a symlink that loops is left unresolved (it is
        then not a folder, which the loader reports)."""
        try:
            return (self.root / self.prompts).resolve()
        except (OSError, RuntimeError):  # a loop: RuntimeError up to Python 3.12, OSError after
            return Path(os.path.abspath(self.root / self.prompts))

    def target(self, name: str | None) -> Target:
        """The named target (default target when None); ConfigError listing the choices."""
        name = name or self.default_target
        if name not in self.targets:
            raise ConfigError(f"unknown target {name!r}; targets in {self.file or CONFIG_FILE}: "
                              f"{', '.join(sorted(self.targets))}")
        return self.targets[name]


def load_config(root: Path) -> tuple[Config, list[Diagnostic]]:
    """Read ``root/promptops.yaml`` if present. Diagnostics are located in that file; when there are
    any, the returned Config holds the defaults for whatever was invalid. An empty promptops.yaml
    (or one holding only comments) means the defaults, like no file at all; anything else by that
    name (a folder, a FIFO, a symlink that loops or points nowhere) is an error, not the defaults."""
    path = root / CONFIG_FILE
    if not os.path.lexists(path):
        return Config(root=root), []
    name = CONFIG_FILE
    loaded = load_yaml_file(path, name)
    if loaded.diagnostics:
        return Config(root=root, file=name, targets_known=False), loaded.diagnostics
    if loaded.data is None:
        return Config(root=root, file=name), []
    if not isinstance(loaded.data, dict):
        return Config(root=root, file=name, targets_known=False), [
            Diagnostic(name, 1, 1, "promptops.yaml must be a mapping",
                       "write keys such as prompts:, default_target: and targets:")]
    diags = schema_diagnostics("config", loaded, name)
    if diags:
        # Keep a valid prompts: so the prompt files are still found and checked in this run.
        prompts = loaded.data.get("prompts")
        if isinstance(prompts, str) and prompts:
            return Config(root=root, prompts=prompts, file=name, targets_known=False,
                          prompts_at=loaded.where(("prompts",))), diags
        return Config(root=root, file=name, targets_known=False), diags
    return _build(root, loaded, name)


def _build(root: Path, loaded: Loaded, name: str) -> tuple[Config, list[Diagnostic]]:
    data: dict[str, Any] = loaded.data
    diags: list[Diagnostic] = []
    targets: dict[str, Target] = {}
    for tname, raw in (data.get("targets") or {"local": {"provider": "local"}}).items():
        diags += _check_target(tname, raw, loaded, name)
        provider = raw["provider"]
        targets[tname] = Target(
            name=tname,
            provider=provider,
            path=raw.get("path", DEFAULT_REGISTRY),
            base_url=raw.get("base_url"),
            credentials={k: m.group(1) for k, v in (raw.get("credentials") or {}).items() if (m := ENV_REF.match(v))},
            labels=tuple(raw["labels"]) if "labels" in raw else None,
            concurrency=raw.get("concurrency", DEFAULT_CONCURRENCY[provider]),
            rate_limits=raw.get("rate_limits", {}),
            flavour=raw.get("flavour"),
            timeout=float(raw.get("timeout", 10.0)),
        )
    default = data.get("default_target")
    if default is None:
        default = "local" if "local" in targets else sorted(targets)[0]
        if len(targets) > 1 and "local" not in targets:
            line, col = loaded.where(("targets",), key=True)
            diags.append(Diagnostic(name, line, col, "several targets and no default_target",
                                    f"add default_target: one of {', '.join(sorted(targets))}"))
    elif default not in targets:
        line, col = loaded.where(("default_target",))
        diags.append(Diagnostic(name, line, col, f"default_target {clip(default)!r} is not a configured target",
                                f"targets: {', '.join(sorted(targets))}"))
    config = Config(root=root, prompts=data.get("prompts", "prompts"), default_target=default,
                    targets=targets, file=name,
                    prompts_at=loaded.where(("prompts",)) if "prompts" in data else None)
    return config, diags


def _check_target(tname: str, raw: Mapping[str, Any], loaded: Loaded, name: str) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    provider = raw["provider"]
    here = ("targets", tname)

    def add(path: tuple, message: str, hint: str = "", key: bool = False) -> None:
        line, col = loaded.where(here + path, key=key)
        diags.append(Diagnostic(name, line, col, f"target {tname!r}: {message}", hint))

    required, optional = CREDENTIAL_KEYS[provider]
    creds = raw.get("credentials") or {}
    for key, value in creds.items():
        if key not in required | optional:
            add(("credentials", key), f"unknown credential {clip(key)!r} for provider {provider}",
                f"{provider} takes: {', '.join(sorted(required | optional)) or 'no credentials'}", key=True)
        elif not ENV_REF.match(value):
            # Never echo the value: it may be a real secret pasted by mistake.
            add(("credentials", key), f"credentials.{key} must be an environment variable reference, "
                f"not a literal value", f"write it as ${{{provider.upper()}_{key.upper()}}} and export that variable")
    for key in sorted(required - set(creds)):
        add(("credentials",) if creds else ("provider",), f"missing credentials.{key} for provider {provider}",
            f"add credentials: {{{key}: ${{{provider.upper()}_{key.upper()}}}}}")
    classes = ("read", "write", *RATE_CLASSES.get(provider, ()))
    for key in raw.get("rate_limits") or {}:
        if key not in classes:
            add(("rate_limits", key), f"rate_limits.{key} is not an endpoint class of provider {provider}",
                f"{provider} paces: {', '.join(classes)}", key=True)
    if "flavour" in raw and provider != "langfuse":
        add(("flavour",), f"'flavour' is only for the langfuse provider, not {provider}", "remove it", key=True)
    if "timeout" in raw and provider == "local":
        add(("timeout",), "the local provider has no timeout", "remove it", key=True)
    if "path" in raw and provider != "local":
        add(("path",), f"'path' is only for the local provider, not {provider}", "use base_url", key=True)
    if "base_url" in raw:
        if provider == "local":
            add(("base_url",), "the local provider has no base_url", "use path for the registry file", key=True)
        else:
            problem = _url_problem(raw["base_url"])
            if problem:
                add(("base_url",), problem[0], problem[1])
    return diags


def _url_problem(url: str) -> tuple[str, str] | None:
    """Refuse plain http:// except for loopback hosts (credentials would travel in clear text)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return (f"base_url {url!r} has no host", "write it as https://host[:port][/path]")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        return ("base_url uses plain http:// for a host that is not loopback",
                "use https://; http:// is allowed only for localhost/127.0.0.1/[::1]")
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
