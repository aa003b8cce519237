"""Provider settings: the workflow over the environment over config.toml over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.errors import UserError
from podium.models import (
    AnthropicModel,
    ModelSettings,
    OpenAICompatModel,
    load_model_settings,
    resolve_model,
)

VENDOR_VARIABLES = ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $PODIUM_HOME, and no PODIUM_* or vendor setting in the environment."""
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    for name in (*(f"PODIUM_{f.upper()}" for f in ModelSettings.model_fields), *VENDOR_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _config(home: Path, text: str) -> Path:
    path = home / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_environment_or_config_file(home: Path) -> None:
    settings = load_model_settings()

    assert settings == ModelSettings(
        openai_base_url=None, openai_api_key_env="OPENAI_API_KEY", openai_timeout=60.0,
        anthropic_base_url=None, anthropic_api_key_env="ANTHROPIC_API_KEY",
        anthropic_timeout=60.0, anthropic_default_max_tokens=1024,
    )
    openai = resolve_model("openai:gpt-4o-mini")
    anthropic = resolve_model("anthropic:claude-3-5-haiku-latest")
    assert isinstance(openai, OpenAICompatModel)
    assert (openai.base_url, openai.api_key_env, openai.timeout) == (
        "https://api.openai.com/v1", "OPENAI_API_KEY", 60.0)
    assert isinstance(anthropic, AnthropicModel)
    assert (anthropic.base_url, anthropic.api_key_env, anthropic.timeout,
            anthropic.default_max_tokens) == (
        "https://api.anthropic.com", "ANTHROPIC_API_KEY", 60.0, 1024)


def test_the_config_file_beats_the_defaults(home: Path) -> None:
    _config(home, '[models]\nopenai_base_url = "http://127.0.0.1:8000/v1"\n'
                  'anthropic_api_key_env = "TEAM_KEY"\nanthropic_default_max_tokens = 300\n'
                  '[other]\nleft = "alone"\n')

    openai = resolve_model("openai:m")
    anthropic = resolve_model("anthropic:m")

    assert isinstance(openai, OpenAICompatModel)
    assert openai.base_url == "http://127.0.0.1:8000/v1"
    assert isinstance(anthropic, AnthropicModel)
    assert (anthropic.api_key_env, anthropic.default_max_tokens) == ("TEAM_KEY", 300)


def test_the_environment_beats_the_config_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(home, '[models]\nanthropic_base_url = "http://from-file"\nopenai_timeout = 5\n')
    monkeypatch.setenv("PODIUM_ANTHROPIC_BASE_URL", "http://from-env")
    monkeypatch.setenv("PODIUM_OPENAI_TIMEOUT", "7.5")
    monkeypatch.setenv("PODIUM_OPENAI_API_KEY_ENV", "")  # empty: ignored

    settings = load_model_settings()

    assert settings.anthropic_base_url == "http://from-env"
    assert settings.openai_timeout == 7.5
    assert settings.openai_api_key_env == "OPENAI_API_KEY"


def test_the_workflow_beats_the_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(home, '[models]\nanthropic_timeout = 9\n')
    monkeypatch.setenv("PODIUM_ANTHROPIC_BASE_URL", "http://from-env")
    monkeypatch.setenv("PODIUM_ANTHROPIC_API_KEY_ENV", "ENV_KEY")
    monkeypatch.setenv("PODIUM_OPENAI_BASE_URL", "http://from-env/v1")

    anthropic = resolve_model("anthropic:m", base_url="http://from-yaml",
                              api_key_env="YAML_KEY", options={"timeout": 3})
    openai = resolve_model("openai:m", base_url="http://from-yaml/v1")

    assert isinstance(anthropic, AnthropicModel)
    assert (anthropic.base_url, anthropic.api_key_env, anthropic.timeout) == (
        "http://from-yaml", "YAML_KEY", 3)
    assert isinstance(openai, OpenAICompatModel)
    assert openai.base_url == "http://from-yaml/v1"


def test_the_vendor_variables_come_after_podium_settings(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://vendor")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://vendor/v1")
    monkeypatch.setenv("PODIUM_OPENAI_BASE_URL", "http://podium/v1")

    anthropic = resolve_model("anthropic:m")
    openai = resolve_model("openai:m")

    assert isinstance(anthropic, AnthropicModel)
    assert anthropic.base_url == "http://vendor"
    assert isinstance(openai, OpenAICompatModel)
    assert openai.base_url == "http://podium/v1"


@pytest.mark.parametrize(
    ("config", "env", "message"),
    [
        ("[models]\nopenai_base_ur = 'x'\n", {},
         r"config\.toml: \[models\] has unknown setting\(s\) 'openai_base_ur'; it accepts "),
        ("[models\n", {}, r"config\.toml: invalid TOML: .*line 1"),
        ("models = 3\n", {}, r"config\.toml: 'models' must be a table"),
        ("[models]\nanthropic_timeout = -1\n", {},
         r"config\.toml: \[models\] anthropic_timeout: Input should be greater than 0"),
        ("", {"PODIUM_ANTHROPIC_DEFAULT_MAX_TOKENS": "many"},
         r"\$PODIUM_ANTHROPIC_DEFAULT_MAX_TOKENS: Input should be a valid integer.*'many'"),
    ],
)
def test_bad_settings_name_their_source(
    home: Path, monkeypatch: pytest.MonkeyPatch, config: str, env: dict[str, str],
    message: str,
) -> None:
    _config(home, config)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(UserError, match=message):
        load_model_settings()
    with pytest.raises(UserError, match=message):
        resolve_model("anthropic:m")


def test_resolve_model_knows_the_three_providers(home: Path) -> None:
    with pytest.raises(UserError, match=r"use 'local' or 'openai:NAME' or 'anthropic:NAME'.*"
                                        r"did you mean 'anthropic:claude-3-5-haiku'\?"):
        resolve_model("claude-3-5-haiku")
    with pytest.raises(UserError, match=r"'anthropic:' names no model: use 'anthropic:NAME'"):
        resolve_model("anthropic:")
    with pytest.raises(UserError, match=r"accepts 'default_max_tokens', 'timeout'"):
        resolve_model("anthropic:m", options={"schema_mode": "auto"})
    with pytest.raises(UserError, match=r"apply only to 'openai:NAME' and 'anthropic:NAME'"):
        resolve_model("local", api_key_env="X")
