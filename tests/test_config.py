"""promptops.config: promptops.yaml, targets, credentials from the environment, URL rules."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from promptops.config import CONFIG_FILE, DEFAULT_REGISTRY, Config, Target, load_config
from promptops.errors import ConfigError


def config_from(tmp_path: Path, text: str) -> tuple[Config, list]:
    (tmp_path / CONFIG_FILE).write_text(text, encoding="utf-8")
    (tmp_path / "prompts").mkdir(exist_ok=True)
    return load_config(tmp_path)


def messages(diags: list) -> list[str]:
    return [d.format() for d in diags]


FULL = """\
prompts: prompts
default_target: prod
targets:
  local:
    provider: local
    path: .promptops/other.db
  prod:
    provider: langfuse
    base_url: https://cloud.langfuse.com
    credentials:
      public_key: ${LANGFUSE_PUBLIC_KEY}
      secret_key: ${LANGFUSE_SECRET_KEY}
    labels: [production, staging]
    concurrency: 2
    rate_limits: {write: 20/min, read: 5/s}
  rails:
    provider: promptrails
    credentials:
      api_key: ${RAILS_KEY}
      workspace_id: ${RAILS_WORKSPACE}
    labels: [staging]
  lab:
    provider: promptlab
    base_url: http://127.0.0.1:8765
    credentials:
      api_key: ${LAB_KEY}
"""


# --------------------------------------------------------------------------- defaults


def test_defaults_without_promptops_yaml(tmp_path: Path) -> None:
    config, diags = load_config(tmp_path)
    assert diags == []
    assert config.file is None
    assert config.prompts == "prompts"
    assert config.prompts_dir == (tmp_path / "prompts").resolve()
    assert config.default_target == "local"
    assert list(config.targets) == ["local"]
    local = config.target(None)
    assert (local.name, local.provider, local.path, local.credentials) == ("local", "local", DEFAULT_REGISTRY, {})
    assert config.targets_known


@pytest.mark.parametrize("text", ["", "# comments only\n", "---\n"])
def test_empty_promptops_yaml_means_the_defaults(tmp_path: Path, text: str) -> None:
    config, diags = config_from(tmp_path, text)
    assert diags == []
    assert list(config.targets) == ["local"] and config.default_target == "local"


# --------------------------------------------------------------------------- targets


def test_target_parsing(tmp_path: Path) -> None:
    config, diags = config_from(tmp_path, FULL)
    assert diags == [], messages(diags)
    assert config.default_target == "prod"
    assert set(config.targets) == {"local", "prod", "rails", "lab"}
    assert config.target("local").path == ".promptops/other.db"
    prod = config.target(None)
    assert prod.provider == "langfuse"
    assert prod.base_url == "https://cloud.langfuse.com"
    # credentials hold the variable names, never values
    assert dict(prod.credentials) == {"public_key": "LANGFUSE_PUBLIC_KEY", "secret_key": "LANGFUSE_SECRET_KEY"}
    assert prod.labels == ("production", "staging")
    assert prod.concurrency == 2
    assert dict(prod.rate_limits) == {"write": "20/min", "read": "5/s"}
    assert dict(config.target("rails").credentials) == {"api_key": "RAILS_KEY", "workspace_id": "RAILS_WORKSPACE"}
    # per-provider default concurrency
    assert config.target("lab").concurrency == 4
    assert config.target("local").concurrency == 1


def test_unknown_target_lists_the_choices(tmp_path: Path) -> None:
    config, _ = config_from(tmp_path, FULL)
    with pytest.raises(ConfigError, match="unknown target 'staging'; targets in promptops.yaml: lab, local, prod, rails"):
        config.target("staging")


def test_several_targets_need_a_default(tmp_path: Path) -> None:
    _config, diags = config_from(tmp_path, "targets:\n  a:\n    provider: local\n  b:\n    provider: local\n")
    assert messages(diags) == [("promptops.yaml:1:1: error: several targets and no default_target "
                               "(add default_target: one of a, b)")]


def test_single_target_is_the_default(tmp_path: Path) -> None:
    config, diags = config_from(tmp_path, "targets:\n  only:\n    provider: local\n")
    assert diags == [] and config.default_target == "only"


@pytest.mark.parametrize("text, expected", [
    ("targets:\n  pl:\n    provider: promptlayer\n    credentials:\n      api_key: ${K}\n      token: ${T}\n",
     "promptops.yaml:6:7: error: target 'pl': unknown credential 'token' for provider promptlayer"),
    ("targets:\n  pl:\n    provider: promptlayer\n    path: x.db\n    credentials:\n      api_key: ${K}\n",
     "promptops.yaml:4:5: error: target 'pl': 'path' is only for the local provider"),
    ("targets:\n  l:\n    provider: local\n    base_url: https://x.example.com\n",
     "promptops.yaml:4:5: error: target 'l': the local provider has no base_url"),
    ("targets:\n  pl:\n    provider: promptlayer\n    base_url: https://\n    credentials:\n      api_key: ${K}\n",
     "promptops.yaml:4:15: error: target 'pl': base_url 'https://' has no host"),
    ("targets:\n  pl:\n    provider: promptlayer\n    credentials:\n      api_key: 12345\n",
     "promptops.yaml:5:16: error: targets.pl.credentials.api_key: expected a string, got a number (12345)"),
    ("targets:\n  pl:\n    provider: promptlayer\n    concurrency: 0\n    credentials:\n      api_key: ${K}\n",
     "promptops.yaml:4:18: error: targets.pl.concurrency: 0 is out of range"),
    ("targets:\n  pl:\n    provider: promptlayer\n    rate_limits: {write: fast}\n    credentials:\n      api_key: ${K}\n",
     "promptops.yaml:4:26: error: targets.pl.rate_limits.write: \"fast\" has the wrong form (write it as COUNT/UNIT"),
    ("targets:\n  pl:\n    provider: promptlayer\n    rate_limits: {deploy: 5/min}\n    credentials:\n"
     "      api_key: ${K}\n",
     "promptops.yaml:4:19: error: target 'pl': rate_limits.deploy is not an endpoint class of provider promptlayer"),
    ("prompt: prompts\n", "promptops.yaml:1:1: error: unknown key 'prompt' (did you mean 'prompts'?)"),
    ("- local\n", "promptops.yaml:1:1: error: promptops.yaml must be a mapping"),
])
def test_target_problems_are_located(tmp_path: Path, text: str, expected: str) -> None:
    _, diags = config_from(tmp_path, text)
    assert len(diags) == 1, messages(diags)
    assert diags[0].format().startswith(expected), diags[0].format()


def test_unreadable_targets_are_flagged(tmp_path: Path) -> None:
    config, diags = config_from(tmp_path, "prompts: src\ntargets:\n  x:\n    provider: nope\n")
    assert len(diags) == 1
    assert not config.targets_known
    assert config.prompts == "src"  # a valid prompts: survives other errors


# --------------------------------------------------------------------------- credentials


def test_secret_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    target = Target("prod", "langfuse", credentials={"secret_key": "LF_SECRET"})
    monkeypatch.setenv("LF_SECRET", "sk-lf-value")
    assert target.secret("secret_key") == "sk-lf-value"


@pytest.mark.parametrize("value", [None, ""])
def test_missing_env_var_names_the_variable_not_a_value(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    target = Target("prod", "langfuse", credentials={"public_key": "LF_PUBLIC", "secret_key": "LF_SECRET"})
    monkeypatch.setenv("LF_PUBLIC", "pk-lf-should-not-leak")
    if value is None:
        monkeypatch.delenv("LF_SECRET", raising=False)
    else:
        monkeypatch.setenv("LF_SECRET", value)
    with pytest.raises(ConfigError) as info:
        target.secret("secret_key")
    message = str(info.value)
    assert "LF_SECRET" in message
    assert "'prod'" in message
    assert "pk-lf-should-not-leak" not in message


def test_literal_secret_is_an_error_that_never_echoes_the_value(tmp_path: Path) -> None:
    config, diags = config_from(tmp_path, (
        "targets:\n  prod:\n    provider: langfuse\n    credentials:\n"
        "      public_key: ${LF_PUBLIC}\n      secret_key: sk-lf-1234-abcd\n"))
    assert len(diags) == 1
    text = diags[0].format()
    assert text.startswith("promptops.yaml:6:19: error: target 'prod': credentials.secret_key must be an "
                           "environment variable reference")
    assert "${LANGFUSE_SECRET_KEY}" in text
    assert "sk-lf-1234-abcd" not in text
    assert "sk-lf-1234-abcd" not in repr(config)  # not kept anywhere either


def test_missing_credentials_are_reported_per_key(tmp_path: Path) -> None:
    _, diags = config_from(tmp_path, "targets:\n  prod:\n    provider: langfuse\n    credentials:\n"
                                     "      public_key: ${LF_PUBLIC}\n")
    assert messages(diags) == [("promptops.yaml:4:5: error: target 'prod': missing credentials.secret_key for "
                               "provider langfuse (add credentials: {secret_key: ${LANGFUSE_SECRET_KEY}})")]


# --------------------------------------------------------------------------- base_url


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080",
    "http://127.0.0.2/api",
    "http://localhost",
    "http://localhost:3000/v1",
    "http://[::1]:9000",
    "https://langfuse.example.com",
])
def test_loopback_http_and_https_are_allowed(tmp_path: Path, url: str) -> None:
    config, diags = config_from(tmp_path, "targets:\n  pl:\n    provider: promptlayer\n"
                                          f"    base_url: {url}\n    credentials:\n      api_key: ${{K}}\n")
    assert diags == [], messages(diags)
    assert config.target("pl").base_url == url


@pytest.mark.parametrize("url", [
    "http://example.com",
    "http://10.0.0.1:8080",
    "http://localhost.example.com",
    "http://127.0.0.1.nip.io",
    "http://[::2]",
])
def test_plain_http_to_other_hosts_is_refused(tmp_path: Path, url: str) -> None:
    _, diags = config_from(tmp_path, "targets:\n  pl:\n    provider: promptlayer\n"
                                     f"    base_url: {url}\n    credentials:\n      api_key: ${{K}}\n")
    assert messages(diags) == [("promptops.yaml:4:15: error: target 'pl': base_url uses plain http:// for a host "
                               "that is not loopback (use https://; http:// is allowed only for "
                               "localhost/127.0.0.1/[::1])")]


# --------------------------------------------------------------------------- manages_label


def test_manages_label_many_labels_provider() -> None:
    everything = Target("local", "local")
    assert everything.manages_label("production") and everything.manages_label("anything")
    listed = Target("local", "local", labels=("production", "staging"))
    assert listed.manages_label("staging") and not listed.manages_label("canary")


def test_manages_label_skips_reserved_labels() -> None:
    langfuse = Target("lf", "langfuse")
    assert langfuse.manages_label("production")
    assert not langfuse.manages_label("latest")
    assert not Target("lf", "langfuse", labels=("latest",)).manages_label("latest")


@pytest.mark.parametrize("provider", ["promptrails", "promptlab"])
def test_manages_label_single_pointer_providers(provider: str) -> None:
    default = Target("t", provider)
    assert default.manages_label("production")
    assert not default.manages_label("staging")
    chosen = Target("t", provider, labels=("staging",))
    assert chosen.manages_label("staging")
    assert not chosen.manages_label("production")


def test_prompts_position_is_kept_for_a_located_error(tmp_path: Path) -> None:
    config, diags = config_from(tmp_path, "# project\nprompts:   src/prompts\n")
    assert diags == []
    assert config.prompts == "src/prompts"
    assert config.prompts_at == (2, 12)
    assert load_config(tmp_path / "nowhere")[0].prompts_at is None


def test_gaps_name_what_a_target_cannot_represent() -> None:
    lab = Target("lab", "promptlab")
    # one pointer, mapped to production: a split of staging would be left out unless the target
    # says (labels: [...]) which one label it manages
    assert lab.gaps("chat", "mustache", ["production"], ["production", "staging"]) == [
        ("type", "chat"), ("pointer", "staging")]
    assert Target("lab", "promptlab", labels=("production",)).gaps(
        "chat", "mustache", ["production"], ["production", "staging"]) == [("type", "chat")]
    rails = Target("pr", "promptrails", labels=("live",))
    assert rails.gaps("text", "jinja2", ["live", "staging"], []) == []
    assert Target("pr", "promptrails").gaps("text", "jinja2", ["live", "production"], []) == [("pointer", "live")]
    fuse = Target("prod", "langfuse", labels=("production",))
    assert fuse.gaps("text", "mustache", ["latest", "production"], ["production", "staging"]) == [
        ("label", "latest"), ("traffic", "production")]  # staging is not managed by this target
    layer = Target("pl", "promptlayer")
    assert layer.gaps("text", "mustache", [], []) == [("template_format", "mustache")]
    assert Target("local", "local").gaps("chat", "jinja2", ["latest"], ["production"]) == []
    assert lab.gaps("text", "jinja2", [], []) == [("template_format", "jinja2")]


def test_content_gaps_name_what_a_version_cannot_store() -> None:
    from promptops.digest import canonical_content

    lab, fuse = Target("lab", "promptlab"), Target("prod", "langfuse")
    rich = canonical_content(type="text", template_format="mustache", template="",
                             model={"name": "gpt-4o", "tools": [1], "temperature": 0.2}, tools=[{"type": "x"}])
    # PromptLab stores one non-empty content string
    assert [(path, hint) for path, _, hint in lab.content_gaps(rich)] == [
        (("model",), "remove model:"), (("tools",), "remove tools:"), (("template",), "write the template's text")]
    # Langfuse keeps the model name and the tools inside config: a model key of those names would clash
    (gap,) = fuse.content_gaps(rich)
    assert gap[0] == ("model", "tools") and "its config holds the tools under that name" in gap[1]
    chat = canonical_content(type="chat", template_format="mustache",
                             messages=[{"placeholder": "_history"}, {"placeholder": "history"}])
    assert [path for path, _, _ in fuse.content_gaps(chat)] == [("messages", 0, "placeholder")]
    assert Target("local", "local").content_gaps(rich) == [] and Target("l", "local").content_gaps(chat) == []


def test_promptlab_paces_its_own_endpoints(tmp_path: Path) -> None:
    config, diags = config_from(tmp_path, "targets:\n  lab:\n    provider: promptlab\n"
                                "    rate_limits: {deploy: 5/min, versions: 20/min, write: 1/s}\n"
                                "    credentials: {api_key: \"${PL_KEY}\"}\n")
    assert diags == []
    assert dict(config.targets["lab"].rate_limits) == {"deploy": "5/min", "versions": "20/min", "write": "1/s"}


@pytest.mark.parametrize("provider", [None, 7, True, ["openai"], {"id": "openai"}, ""], ids=repr)
def test_promptlayer_needs_the_model_provider_as_text(provider) -> None:
    # PromptLayer answers 422 for a provider that is not a string, and a None would read back
    # without the key (another digest): refused before any request instead
    from promptops.digest import canonical_content

    content = canonical_content(type="text", template_format="jinja2", template="Hi {{ name }}",
                                model={"provider": provider, "name": "gpt-4o"})
    (gap,) = Target("layer", "promptlayer").content_gaps(content)
    assert gap[0] == ("model", "provider") and "needs model provider: as text" in gap[1]


# --------------------------------------------------------------------------- hostile promptops.yaml


def cli_run(root: Path, capsys: pytest.CaptureFixture[str], command: str) -> tuple[int, str, str]:
    from promptops.cli import main
    capsys.readouterr()
    code = main(["-C", str(root), command])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in out + err
    return code, out, err


def with_prompt(root: Path) -> None:
    (root / "prompts").mkdir()
    (root / "prompts" / "a.yaml").write_text("template: Hi\n", encoding="utf-8")


@pytest.mark.parametrize("kind, make, message", [
    ("folder", lambda p: p.mkdir(), "promptops.yaml:1:1: error: not a regular file: it is a folder"),
    ("self-symlink", lambda p: p.symlink_to(p.name), "promptops.yaml:1:1: error: file is a symlink that loops"),
    ("dangling symlink", lambda p: p.symlink_to("gone.yaml"),
     "promptops.yaml:1:1: error: cannot read file: No such file or directory"),
])
def test_a_promptops_yaml_that_is_not_a_file_is_an_error_not_the_defaults(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, make, message: str) -> None:
    with_prompt(tmp_path)
    make(tmp_path / CONFIG_FILE)
    for command in ("validate", "plan"):
        code, out, err = cli_run(tmp_path, capsys, command)
        assert code == 1, (kind, out, err)
        assert err.startswith(message), err
        assert "Success" not in out


def test_a_promptops_yaml_that_is_a_fifo_is_an_error_not_a_hang(tmp_path: Path) -> None:
    import subprocess
    import sys
    with_prompt(tmp_path)
    os.mkfifo(tmp_path / CONFIG_FILE)
    for command in ("validate", "plan"):
        # a child process killed after 30 s: a hang fails the test instead of the suite
        result = subprocess.run([sys.executable, "-m", "promptops", "-C", str(tmp_path), command],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("promptops.yaml:1:1: error: not a regular file: it is a FIFO"), result.stderr


@pytest.mark.parametrize("text, where", [
    ('targets:\n  local: {provider: local, path: "db\\ud800"}\n', "promptops.yaml:2:37"),
    ('prompts: "\\udfff"\n', "promptops.yaml:1:11"),
    ('targets:\n  "\\ud800": {provider: local}\n', "promptops.yaml:2:4"),
])
def test_a_surrogate_in_promptops_yaml_is_located(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                                  where: str) -> None:
    with_prompt(tmp_path)
    (tmp_path / CONFIG_FILE).write_text(text, encoding="utf-8")
    for command in ("validate", "plan"):
        code, out, err = cli_run(tmp_path, capsys, command)
        assert code == 1, (out, err)
        assert err.startswith(f"{where}: error: \\u"), err
        assert "is a UTF-16 surrogate" in err


def test_a_prompts_folder_that_is_a_symlink_loop_is_located_at_prompts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / CONFIG_FILE).write_text("prompts: p\n", encoding="utf-8")
    (tmp_path / "p").symlink_to("p")
    code, out, err = cli_run(tmp_path, capsys, "validate")
    assert code == 1
    assert err.startswith("promptops.yaml:1:10: error: prompts folder 'p' is a symlink that loops"), err


def test_a_long_unknown_default_target_is_echoed_shortened(tmp_path: Path) -> None:
    _, diags = config_from(tmp_path, f"default_target: {'t' * 500_000}\n")
    assert messages(diags) == [f"promptops.yaml:1:17: error: default_target '{'t' * 60}…' is not a configured "
                               "target (targets: local)"]
