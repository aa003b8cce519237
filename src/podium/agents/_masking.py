"""Personal data masked on its way to an external model, and restored in its reply."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from podium.models.base import Message, ModelResponse, ToolCall
from podium.security.masking import Masker, MaskingPolicy


class ModelMasking:
    """One task attempt's masking: the same value gets the same placeholder in every turn."""

    def __init__(self, policy: MaskingPolicy, run_id: str) -> None:
        self.masker = Masker(policy, run_id=run_id)
        self.unknown: list[str] = []
        self.mangled: list[str] = []

    def messages(self, messages: Sequence[Message]) -> tuple[Message, ...]:
        """The conversation as the model may see it."""
        return tuple(dataclasses.replace(
            m, content=self.masker.mask(m.content).text,
            tool_calls=tuple(dataclasses.replace(c, arguments=self.masker.mask(c.arguments).text)
                             for c in m.tool_calls)) for m in messages)

    def _restore(self, text: str) -> str:
        result = self.masker.unmask(text, repair=True)
        self.unknown.extend(result.unknown)
        self.mangled.extend(result.mangled)
        return result.text

    def response(self, response: ModelResponse) -> ModelResponse:
        """The reply with this attempt's placeholders put back (repairing mangled ones that
        clearly name one; unknown ones are left and reported)."""
        calls: tuple[ToolCall, ...] = tuple(
            dataclasses.replace(c, arguments=self._restore(c.arguments))
            for c in response.tool_calls)
        return dataclasses.replace(response, text=self._restore(response.text),
                                   tool_calls=calls)

    def report(self) -> dict[str, Any]:
        """What the journal records of this turn's masking (placeholders, never values)."""
        found: dict[str, Any] = {"masked": True}
        if self.unknown:
            found["unknown_placeholders"] = sorted(set(self.unknown))
        if self.mangled:
            found["mangled_placeholders"] = sorted(set(self.mangled))
        self.unknown.clear()
        self.mangled.clear()
        return found
