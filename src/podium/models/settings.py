"""Provider defaults from the environment and `$PODIUM_HOME/config.toml`.

`resolve_model` takes what a workflow leaves unsaid from here. For each setting the
first of these that gives it wins:

1. the workflow itself: an agent's `base_url`, `api_key_env` and `options`;
2. the environment: `PODIUM_` and the setting's name in capitals, e.g.
   `PODIUM_OPENAI_BASE_URL`, `PODIUM_ANTHROPIC_API_KEY_ENV` (empty values are ignored);
3. the `[models]` table of `$PODIUM_HOME/config.toml`::

       [models]
       openai_base_url = "http://127.0.0.1:8000/v1"
       anthropic_timeout = 120

4. the defaults below. When no base URL is set anywhere, the providers fall back to
   their vendors' own variables (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`), then to the
   vendors' public endpoints.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

import pydantic
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from podium.config import home
from podium.errors import UserError

ENV_PREFIX = "PODIUM_"
CONFIG_TABLE = "models"


def config_path() -> Path:
    """The config file: `$PODIUM_HOME/config.toml`."""
    return home() / "config.toml"


class ModelSettings(BaseSettings):
    """Defaults for model providers; see the module doc for where each comes from."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    openai_base_url: str | None = None
    """API root of `openai:NAME` models, e.g. `http://127.0.0.1:8000/v1`."""
    openai_api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the key for `openai:NAME` models."""
    openai_timeout: Annotated[float, pydantic.Field(gt=0)] = 60.0
    """Seconds `openai:NAME` models wait to connect and for each read."""
    anthropic_base_url: str | None = None
    """API root of `anthropic:NAME` models, before `/v1/messages`."""
    anthropic_api_key_env: str = "ANTHROPIC_API_KEY"
    """Environment variable holding the key for `anthropic:NAME` models."""
    anthropic_timeout: Annotated[float, pydantic.Field(gt=0)] = 60.0
    """Seconds `anthropic:NAME` models wait to connect and for each read."""
    anthropic_default_max_tokens: Annotated[int, pydantic.Field(ge=1)] = 1024
    """Bound on an `anthropic:NAME` reply's length when the agent sets no `max_tokens`."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _ConfigFile(settings_cls)


def load_model_settings() -> ModelSettings:
    """Read the settings now, from the environment and the config file.

    Raises:
        UserError: the config file is not valid TOML, its `[models]` table names an
            unknown setting, or a value does not fit its setting; the message names
            the variable or the file and key.
    """
    try:
        return ModelSettings()
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            env = f"{ENV_PREFIX}{name.upper()}"
            where = (f"${env}" if os.environ.get(env)
                     else f"{config_path()}: [{CONFIG_TABLE}] {name}")
            problems.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
        raise UserError("invalid model settings: " + "; ".join(problems)) from None


class _ConfigFile(PydanticBaseSettingsSource):
    """The `[models]` table of `$PODIUM_HOME/config.toml`, if the file exists."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        # Unused: __call__ reads the whole table at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = config_path()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read the config file {str(path)!r}: {exc}") from None
        try:
            table = tomllib.loads(text).get(CONFIG_TABLE, {})
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{path}: invalid TOML: {exc}") from None
        if not isinstance(table, dict):
            raise UserError(f"{path}: '{CONFIG_TABLE}' must be a table, written [{CONFIG_TABLE}]")
        accepted = set(self.settings_cls.model_fields)
        unknown = sorted(set(table) - accepted)
        if unknown:
            raise UserError(
                f"{path}: [{CONFIG_TABLE}] has unknown setting(s) "
                f"{', '.join(map(repr, unknown))}; it accepts "
                f"{', '.join(map(repr, sorted(accepted)))}"
            )
        return table
