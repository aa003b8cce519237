"""Counting tokens as a model does: with its own tokenizer where this machine has it
(llama.cpp's, for the local model), else a conservative estimate of one token per 3 bytes
of UTF-8, rounded up, which overcounts English and code. Prompt assembly
(`podium.agents.context`) and the accounting of model calls (`podium.models.accounting`)
both count this way; `counted` says which way was used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from podium.models.base import Message, Model

Counted = Literal["tokenizer", "estimate"]

MESSAGE_OVERHEAD = 5
"""Tokens a chat template adds around each message (role markers, separators), and once
more to open the reply: ChatML's `<|im_start|>role\\n` and `<|im_end|>\\n`."""


class TokenCounter:
    """Counts tokens as a model does: with its tokenizer where it has one on this machine,
    else a conservative estimate (`counted` says which)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.counted: Counted = ("tokenizer" if model.count_tokens("") is not None
                                 else "estimate")

    def __call__(self, text: str) -> int:
        if self.counted == "tokenizer":
            return self.model.count_tokens(text) or 0
        return estimate_tokens(text)

    def messages(self, messages: Sequence[Message]) -> int:
        """The length of a conversation, chat-template overhead included."""
        return sum(self(m.content) + MESSAGE_OVERHEAD for m in messages) + MESSAGE_OVERHEAD


def estimate_tokens(text: str) -> int:
    """A conservative token count without a tokenizer: one per 3 bytes of UTF-8, rounded
    up (real tokenizers average about 4 bytes a token on English)."""
    return math.ceil(len(text.encode("utf-8")) / 3)
