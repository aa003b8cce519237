"""The one interface every chat-model provider implements.

A conversation is a list of `Message`s. A model may answer with text or, when it was
offered tools, with `ToolCall`s; the caller runs the tools and sends each result back as
a `tool` message naming the call it answers, then asks again::

    system     instructions
    user       the task
    assistant  tool_calls=(ToolCall(id="c1", name="add", arguments='{"a": 2, "b": 3}'),)
    tool       tool_call_id="c1", content="5"
    assistant  "2 + 3 = 5"
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    """A model's request to call one tool."""

    id: str
    """The call's id, unique within the conversation; the tool's result names it."""
    name: str
    """The tool's name, as the model wrote it (it may name no tool that exists)."""
    arguments: str
    """The arguments as JSON text, as the model wrote them (they may not be valid)."""

    def to_json(self) -> dict[str, str]:
        """The call as a JSON object: `{"id", "name", "arguments"}`."""
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_json(cls, data: Any) -> ToolCall:
        """A call from `to_json`'s form; `arguments` may also be a JSON object."""
        arguments = data.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        return cls(id=str(data["id"]), name=str(data["name"]), arguments=arguments)


@dataclass(frozen=True, kw_only=True)
class ToolSpec:
    """A tool as a model is told of it."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}})
    """JSON schema of the arguments: an object."""


@dataclass(frozen=True, kw_only=True)
class Message:
    """One chat message."""

    role: Role
    content: str = ""
    """The text; for a `tool` message, the tool's result (or error) as text."""
    tool_calls: tuple[ToolCall, ...] = ()
    """For an `assistant` message: the tools it asked to call, in order."""
    tool_call_id: str | None = None
    """For a `tool` message: the id of the call this is the result of."""
    is_error: bool = False
    """For a `tool` message: the content is an error the tool (or its arguments) caused."""


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Tokens a model call consumed."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, kw_only=True)
class ModelResponse:
    """What a model replied."""

    text: str
    """The reply's text; JSON text when an output schema was given (and the reply is an
    answer rather than tool calls)."""
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    """The provider's name for the model that answered."""
    tool_calls: tuple[ToolCall, ...] = ()
    """The tools the model asks to call; empty for a final answer."""

    def to_json(self) -> dict[str, Any]:
        """The reply as a JSON object, e.g. for a journal; `from_json` reads it back."""
        return {"text": self.text, "model": self.model,
                "tool_calls": [call.to_json() for call in self.tool_calls],
                "usage": {"input_tokens": self.usage.input_tokens,
                          "output_tokens": self.usage.output_tokens}}

    @classmethod
    def from_json(cls, data: Any) -> ModelResponse:
        """The reply `to_json` wrote."""
        usage = data.get("usage") or {}
        return cls(text=str(data.get("text") or ""), model=str(data.get("model") or ""),
                   tool_calls=tuple(ToolCall.from_json(c) for c in data.get("tool_calls", ())),
                   usage=Usage(input_tokens=int(usage.get("input_tokens") or 0),
                               output_tokens=int(usage.get("output_tokens") or 0)))


class Model(ABC):
    """A chat model. Implementations: `local`, `openai:NAME`, `anthropic:NAME`, and the
    scripted test model."""

    name: str
    """How workflows refer to this model, e.g. `local` or `openai:gpt-4o-mini`."""
    external: bool = True
    """Whether requests leave this machine (a provider's API); personal data is masked
    before it reaches an external model when the agent has a masking policy."""

    @property
    def context_window(self) -> int | None:
        """Tokens the model takes, prompt and reply together; None when unknown. The local
        model's is its `n_ctx`; providers' come from `podium.models.windows`."""
        from podium.models.windows import known_window

        return known_window(self.name)

    def count_tokens(self, text: str) -> int | None:
        """`text`'s length in the model's own tokens, where its tokenizer is available on
        this machine; None otherwise, and callers estimate instead."""
        return None

    @abstractmethod
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
        """Answer `messages`.

        Args:
            messages: the conversation, oldest first.
            output_schema: a JSON schema the final answer must satisfy; providers enforce
                it as strongly as they can (grammar, native JSON-schema mode), and the
                caller validates the reply in any case. A reply with tool calls is not
                an answer and need not satisfy it.
            max_tokens: an upper bound on the reply's length.
            temperature: sampling temperature; the provider's default when None.
            tools: tools the model may ask to call instead of answering; the reply's
                `tool_calls` then says which, with what arguments. None or empty: the
                model must answer.
            on_token: called with each piece of the reply's text as it arrives, on the
                caller's event loop, by providers that can stream (the full reply is
                still returned). Providers that cannot, and calls they do not stream
                (with tools, say), ignore it.

        Raises:
            ModelError: the provider failed or could not be reached.
        """
