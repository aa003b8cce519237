"""The one interface every chat-model provider implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, kw_only=True)
class Message:
    """One chat message."""

    role: Role
    content: str


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Tokens a model call consumed."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, kw_only=True)
class ModelResponse:
    """What a model replied."""

    text: str
    """The reply's text; JSON text when an output schema was given."""
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    """The provider's name for the model that answered."""


class Model(ABC):
    """A chat model. Implementations: `local`, `openai:NAME`, and the scripted test model."""

    name: str
    """How workflows refer to this model, e.g. `local` or `openai:gpt-4o-mini`."""

    @abstractmethod
    async def complete(
        self,
        messages: Sequence[Message],
        *,
        output_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> ModelResponse:
        """Answer `messages`.

        Args:
            messages: the conversation, oldest first.
            output_schema: a JSON schema the reply must satisfy; providers enforce it as
                strongly as they can (grammar, native JSON-schema mode), and the caller
                validates the reply in any case.
            max_tokens: an upper bound on the reply's length.
            temperature: sampling temperature; the provider's default when None.

        Raises:
            ModelError: the provider failed or could not be reached.
        """
