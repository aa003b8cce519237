"""Interceptors around a model call: each cross-cutting concern (the journal, the reply
cache, masking, accounting; tracing later) is one link of a chain, not a branch of the
agent that makes the call.

In the manner of Temporal's worker interceptors: the hook, `call_model`, takes ONE input
dataclass, `ModelCallInput` (a field added later breaks no interceptor), and calls
`self.next.call_model` to go on. An interceptor may pass on a changed input
(`dataclasses.replace`), change the reply on its way back, answer without going on (the
cache), and add to what the journal records of the call (`ModelCallInput.notes`)::

    LLMAgent ─► ModelJournal ─► yours ─► ReplyCache ─► Masking ─► Accounting ─► Complete
                model_call               cache=True    external    tokens, cost   the model
                event                    only          models

The order is fixed in one place, `podium.agents.interceptors.model_chain`, outermost
first. The whole chain runs inside the turn's durable step: a turn replayed after a crash
passes through no interceptor.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from podium.core.agent import JSON, TaskContext
from podium.core.events import ModelCalled
from podium.errors import ModelError
from podium.models.base import Message, Model, ModelResponse, ToolSpec
from podium.models.limits import ReplyTooLarge, limit_source, reply_limit, size
from podium.models.replies import cleaned, reply_text


def _any_reply(response: ModelResponse) -> bool:
    return True


@dataclass(frozen=True, kw_only=True)
class ModelCallInput:
    """One model call, as every interceptor of the chain sees it."""

    model: Model
    """The model asked."""
    messages: tuple[Message, ...]
    """The conversation, oldest first."""
    ctx: TaskContext
    """The task attempt the call is made for: its journal, cache and run vault."""
    output_schema: dict[str, Any] | None = None
    """The JSON schema a final answer must satisfy; None: free text."""
    tools: tuple[ToolSpec, ...] = ()
    """The tools the model may call instead of answering."""
    max_tokens: int | None = None
    """The bound on the reply's length in tokens."""
    temperature: float | None = None
    """The sampling temperature; None: the model's default."""
    on_token: Callable[[str], None] | None = None
    """Called with each piece of the reply as it arrives, by models that stream."""
    agent: str = ""
    """The agent's name, for errors."""
    max_reply_bytes: int | None = None
    """The bound on the reply's text in UTF-8 bytes (`podium.models.limits`)."""
    usable: Callable[[ModelResponse], bool] = _any_reply
    """Whether the caller can use a reply; one it cannot is not kept for another time."""
    notes: dict[str, JSON] = field(default_factory=dict)
    """What the journal records of the call beside its tokens and latency; interceptors
    add to it (`repair`, `cached`, `masked`, …). Shared by every changed copy of the
    input, so what an inner interceptor notes reaches the journal."""


class ModelInterceptor:
    """One link of the chain around a model call; this base passes the call on unchanged.

    Subclass it and override `call_model`, calling `self.next.call_model(input)` to go on.
    """

    def __init__(self, next: ModelInterceptor) -> None:
        self.next = next

    async def call_model(self, input: ModelCallInput) -> ModelResponse:
        """Make the call (or answer it), returning the model's reply.

        Raises:
            ModelError: the model failed; its `partial` reply, if any, counts all the same.
        """
        return await self.next.call_model(input)


class Complete(ModelInterceptor):
    """The end of the chain: asks the model, cleans the reply of text a journal cannot
    hold, and refuses a reply past the byte limit, whichever provider sent it (the
    OpenAI-compatible one also cuts it off while reading)."""

    def __init__(self) -> None:
        pass

    async def call_model(self, input: ModelCallInput) -> ModelResponse:
        response = cleaned(await input.model.complete(
            input.messages, output_schema=input.output_schema, max_tokens=input.max_tokens,
            temperature=input.temperature, tools=input.tools or None,
            on_token=input.on_token))
        limit = reply_limit(input.max_tokens, input.max_reply_bytes)
        written = len(reply_text(response).encode("utf-8", "replace"))
        if written > limit:
            source = limit_source(input.max_tokens, input.max_reply_bytes)
            raise ReplyTooLarge(
                f"agent {input.agent!r}: model {input.model.name!r} replied {size(written)}, "
                f"more than its limit of {size(limit)} (from {source}); the reply was "
                f"refused. If replies this long are expected, raise the agent's "
                f"max_reply_bytes", partial=response)
        return response


class ModelJournal(ModelInterceptor):
    """Journals each call as a `model_call` event: the model, the tokens and cost it
    counts for (0 unless noted: a cached reply spent nothing), its latency, the notes of
    the interceptors, and for a failed call the error (its tokens count all the same)."""

    async def call_model(self, input: ModelCallInput) -> ModelResponse:
        started = time.perf_counter()
        try:
            response = await self.next.call_model(input)
        except ModelError as e:
            partial = e.partial if isinstance(e.partial, ModelResponse) else None
            await input.ctx.record(_event(
                input, partial, started, error=str(e), error_type=type(e).__name__))
            raise
        await input.ctx.record(_event(input, response, started))
        return response


_NOTED = frozenset(f.name for f in dataclasses.fields(ModelCalled)) - {
    "model", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "notes"}


def _event(input: ModelCallInput, response: ModelResponse | None, started: float,
           error: str | None = None, error_type: str | None = None) -> ModelCalled:
    notes = dict(input.notes)
    known = {key: notes.pop(key) for key in list(notes) if key in _NOTED}
    return ModelCalled(
        model=(response.model if response else "") or input.model.name,
        input_tokens=notes.pop("input_tokens", 0), output_tokens=notes.pop("output_tokens", 0),
        cost_usd=notes.pop("cost_usd", 0),
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        error=error, error_type=error_type, notes=notes or None, **known)


class ReplyCache(ModelInterceptor):
    """Answers a request asked before, in any run on the same journal, from the reply
    cache (`TaskContext.cached`), keyed by `reply_key`; notes `cached`. Only usable
    replies are kept (`ModelCallInput.usable`). It sits outside masking: the key is the
    request as the agent wrote it, the same whatever placeholders a run's vault hands out,
    and the reply kept is the one the agent read."""

    async def call_model(self, input: ModelCallInput) -> ModelResponse:
        key = reply_key(input.model.name, input.messages, output_schema=input.output_schema,
                        tools=input.tools, temperature=input.temperature,
                        max_tokens=input.max_tokens)

        async def call() -> dict[str, JSON]:
            response = await self.next.call_model(input)
            input.notes["cached"] = False
            return response.to_json()

        def keep(reply: dict[str, JSON]) -> bool:
            return input.usable(ModelResponse.from_json(reply))

        reply, hit = await input.ctx.cached(key, call, keep=keep)
        if hit:
            input.notes["cached"] = True
        return ModelResponse.from_json(reply)


def reply_key(model: str, messages: Sequence[Message], *, output_schema: dict[str, Any] | None,
              tools: Sequence[ToolSpec], temperature: float | None,
              max_tokens: int | None) -> str:
    """The reply cache's key for a request: a sha256 of everything that shapes the reply."""
    request = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content, "tool_call_id": m.tool_call_id,
                      "is_error": m.is_error, "tool_calls": [c.to_json() for c in m.tool_calls]}
                     for m in messages],
        "output_schema": output_schema,
        "tools": [{"name": t.name, "description": t.description, "parameters": t.parameters}
                  for t in tools],
        "temperature": temperature,
        "max_tokens": max_tokens,
    }
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"podium-reply/1:{text}".encode()).hexdigest()
