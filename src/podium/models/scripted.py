"""A model whose replies are written by the test: for tests only, never a default.

`ScriptedModel` answers from a list of replies given in advance, or from a function
of the messages, and records every call it receives in `.calls`. It never touches
the network or a model file, so tests that use it are fast and deterministic.

A reply asks for tool calls when it is a dict with a `tool_calls` list (and at most a
`text` beside it), each call `{"name": ..., "arguments": {...} or JSON text, "id": ...}`
(`id` optional), or a `ModelResponse` with `tool_calls`::

    ScriptedModel([
        {"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]},
        "2 + 3 = 5",
    ])
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

from podium.errors import ModelError, UserError
from podium.models.base import Message, Model, ModelResponse, ToolCall, ToolSpec, Usage

Reply: TypeAlias = str | dict[str, Any] | ModelResponse
"""What a reply function returns: text, a dict (JSON text, or tool calls), a response."""

ScriptedReply: TypeAlias = Reply | BaseException
"""One scripted reply: text, a dict sent as JSON text (or, with `tool_calls`, tool calls),
a `ModelResponse` returned as is, or an exception raised for that call."""

ReplyFunction: TypeAlias = Callable[
    [Sequence[Message], dict[str, Any] | None],
    Reply | Awaitable[Reply],
]
"""Computes a reply from `(messages, output_schema)`; may be sync or async."""


@dataclass(frozen=True, kw_only=True)
class ModelCall:
    """One call a `ScriptedModel` received, as the caller made it."""

    messages: tuple[Message, ...]
    """The conversation passed to `complete`, oldest first."""
    output_schema: dict[str, Any] | None = None
    """The JSON schema the caller asked the reply to satisfy, if any."""
    max_tokens: int | None = None
    """The caller's bound on the reply's length, if any."""
    temperature: float | None = None
    """The caller's sampling temperature, if any."""
    tools: tuple[ToolSpec, ...] = ()
    """The tools the caller offered, in order."""


class ScriptedModel(Model):
    """A chat model for tests only: replies are scripted in advance or computed by a function.

    Example:
        ```python
        model = ScriptedModel(['{"city": "Oslo"}', TimeoutError("flaky"), "done"])
        reply = await model.complete([Message(role="user", content="Where?")])
        assert reply.text == '{"city": "Oslo"}'
        assert model.calls[0].messages[0].content == "Where?"
        ```

    Usage is an estimate: tokens are counted as whitespace-separated words, so tests can
    check that usage is reported without depending on a real tokenizer.
    """

    def __init__(
        self,
        replies: Sequence[ScriptedReply] | ReplyFunction,
        *,
        name: str = "scripted",
        external: bool = False,
        context_window: int | None = None,
    ) -> None:
        """Script the model.

        Args:
            replies: either a sequence of replies, used one per call in order (a `str` is
                returned as is, a `dict` as its JSON text or, with `tool_calls`, as tool
                calls, a `ModelResponse` as is, an exception instance is raised for that
                call), or a function `(messages, output_schema) -> str | dict |
                ModelResponse`, sync or async, called for every call.
            name: how workflows refer to this model.
            external: stand for a provider's API, so masking applies to it.
            context_window: the window to report, for tests of context budgets; None
                (unknown) by default.

        Raises:
            UserError: `replies` is a single reply rather than a sequence or a function.
        """
        self.external = external
        if isinstance(replies, str | dict | ModelResponse | BaseException):
            raise UserError(
                f"ScriptedModel expects a sequence of replies or a function, got a single "
                f"{type(replies).__name__}: wrap it in a list, e.g. ScriptedModel([reply])"
            )
        self.name = name
        self._window = context_window
        self.calls: list[ModelCall] = []
        """Every call received, oldest first, including calls that raised."""
        self._function: ReplyFunction | None = None
        self._replies: tuple[ScriptedReply, ...] = ()
        if callable(replies):
            self._function = replies
        else:
            self._replies = tuple(replies)

    @property
    def context_window(self) -> int | None:
        """The window given to the constructor."""
        return self._window

    def __repr__(self) -> str:
        source = "function" if self._function is not None else f"{len(self._replies)} replies"
        return f"ScriptedModel(name={self.name!r}, {source}, calls={len(self.calls)})"

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
        """Record the call, then answer with the next scripted reply.

        Tool calls without an `id` get `call_<call number>_<position>`, e.g. `call_1_1`.
        With `on_token`, the reply's text is first handed to it word by word (each piece
        keeps its trailing whitespace, so the pieces join to the text).

        Raises:
            ModelError: every scripted reply has been used already.
            BaseException: whatever exception was scripted for this call, or whatever
                the reply function raised.
        """
        call = ModelCall(
            messages=tuple(messages),
            output_schema=output_schema,
            max_tokens=max_tokens,
            temperature=temperature,
            tools=tuple(tools or ()),
        )
        # Taken before any await so concurrent calls each get their own reply.
        position = len(self.calls)
        self.calls.append(call)
        reply = await self._reply(position, call)
        if isinstance(reply, ModelResponse):
            _stream(reply.text, on_token)
            return reply if reply.model else replace(reply, model=self.name)
        calls: tuple[ToolCall, ...] = ()
        if isinstance(reply, str):
            text = reply
        elif _asks_for_tools(reply):
            text = str(reply.get("text", ""))
            calls = _tool_calls(reply["tool_calls"], position)
        else:
            text = json.dumps(reply)
        _stream(text, on_token)
        written = " ".join([text, *(f"{c.name} {c.arguments}" for c in calls)])
        return ModelResponse(
            text=text,
            usage=Usage(
                input_tokens=sum(_words(m.content) for m in call.messages),
                output_tokens=_words(written),
            ),
            model=self.name,
            tool_calls=calls,
        )

    async def _reply(self, position: int, call: ModelCall) -> Reply:
        if self._function is not None:
            result = self._function(call.messages, call.output_schema)
            if inspect.isawaitable(result):
                return await result
            return result
        if position >= len(self._replies):
            raise ModelError(
                f"ScriptedModel {self.name!r} ran out of replies: {len(self._replies)} "
                f"were scripted and call {position + 1} asked for another"
            )
        reply = self._replies[position]
        if isinstance(reply, BaseException):
            raise reply
        return reply


def _stream(text: str, on_token: Callable[[str], None] | None) -> None:
    if on_token is not None:
        for piece in re.findall(r"\S+\s*|\s+", text):
            on_token(piece)


def _words(text: str) -> int:
    return len(text.split())


def _asks_for_tools(reply: dict[str, Any]) -> bool:
    return "tool_calls" in reply and set(reply) <= {"tool_calls", "text"}


def _tool_calls(calls: Any, position: int) -> tuple[ToolCall, ...]:
    if not isinstance(calls, list | tuple):
        raise UserError(f"scripted reply {position + 1}: 'tool_calls' must be a list of "
                        f"calls like {{'name': 'add', 'arguments': {{'a': 1}}}}")
    made = []
    for number, item in enumerate(calls, start=1):
        if isinstance(item, ToolCall):
            made.append(item)
            continue
        if not isinstance(item, dict) or "name" not in item:
            raise UserError(f"scripted reply {position + 1}: tool call {number} needs a "
                            f"'name', got {item!r}")
        made.append(ToolCall.from_json(
            {"id": f"call_{position + 1}_{number}", "arguments": {}, **item}))
    return tuple(made)
