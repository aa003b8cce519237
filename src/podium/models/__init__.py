"""Model providers behind one interface, and `resolve_model` to pick one by name.

Accepted names:

- `local`: `LocalModel`, SmolLM2-135M-Instruct run in-process by llama.cpp
  (extra `podium[local]`);
- `openai:NAME`: `OpenAICompatModel`, model `NAME` on any OpenAI-compatible server.

`ScriptedModel` is for tests only and has no name here: tests construct it directly
(it is also exported by `podium.testing`). Importing this package does not import
llama.cpp.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from podium.errors import UserError
from podium.models.base import Message, Model, ModelResponse, Role, Usage
from podium.models.local import LocalModel
from podium.models.openai_compat import OpenAICompatModel, SchemaMode
from podium.models.scripted import ModelCall, ScriptedModel

__all__ = [
    "LocalModel",
    "Message",
    "Model",
    "ModelCall",
    "ModelResponse",
    "OpenAICompatModel",
    "Role",
    "SchemaMode",
    "ScriptedModel",
    "Usage",
    "resolve_model",
]

_LOCAL_OPTIONS = frozenset({"model_path", "n_ctx", "seed", "default_max_tokens"})
_OPENAI_OPTIONS = frozenset({"timeout", "schema_mode"})
_ACCEPTED = "'local' or 'openai:NAME' (e.g. 'openai:gpt-4o-mini')"

_local_models: dict[tuple[tuple[str, str], ...], LocalModel] = {}
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
        spec: `local`, or `openai:NAME` for model `NAME` on an OpenAI-compatible server.
        base_url: for `openai:NAME`, the API root (default: `$OPENAI_BASE_URL`, else
            OpenAI's).
        api_key_env: for `openai:NAME`, the environment variable holding the API key
            (default `OPENAI_API_KEY`).
        options: provider settings. `local`: `model_path`, `n_ctx`, `seed`,
            `default_max_tokens` (see `LocalModel`). `openai:NAME`: `timeout`,
            `schema_mode` (see `OpenAICompatModel`).

    Returns:
        A `LocalModel` (one instance per process for the same options) or a new
        `OpenAICompatModel`.

    Raises:
        UserError: the spec or an option is not accepted, or the provider's extra is
            not installed.
    """
    opts = dict(options or {})
    if spec == "local":
        if base_url is not None or api_key_env is not None:
            raise UserError(
                "model 'local' runs in-process: base_url and api_key_env apply only to "
                "'openai:NAME' models"
            )
        _check_options(spec, opts, _LOCAL_OPTIONS)
        key = tuple(sorted((name, repr(value)) for name, value in opts.items()))
        with _local_lock:
            model = _local_models.get(key)
            if model is None:
                model = LocalModel(**opts)
                _local_models[key] = model
            return model
    if spec.startswith("openai:"):
        name = spec.removeprefix("openai:").strip()
        if not name:
            raise UserError(
                f"model {spec!r} names no model: use 'openai:NAME', e.g. 'openai:gpt-4o-mini'"
            )
        _check_options(spec, opts, _OPENAI_OPTIONS)
        if api_key_env is not None:
            opts["api_key_env"] = api_key_env
        return OpenAICompatModel(name, base_url=base_url, **opts)
    raise UserError(f"unknown model {spec!r}: use {_ACCEPTED}")


def _check_options(spec: str, options: Mapping[str, Any], accepted: frozenset[str]) -> None:
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise UserError(
            f"model {spec!r} does not take option(s) {', '.join(map(repr, unknown))}: "
            f"it accepts {', '.join(map(repr, sorted(accepted)))}"
        )
