"""What a model call consumed, as budgets and `runs show` count it.

Providers report usage, but not always, and not always truthfully: llama.cpp's server
sends none in a stream, and a hostile server can bill a 5 MB reply as 10 tokens. A
report is implausible when it is 0 for a non-empty text, or when it makes a token longer
than `PLAUSIBLE_BYTES_PER_TOKEN` bytes (no tokenizer's tokens are, on average). Then the
tokens are counted here, with the model's tokenizer where this machine has it, else
estimated at one per 3 bytes of UTF-8 (`podium.agents.context.estimate_tokens`), and the
larger of the report and the count is what counts. The journal keeps the report beside
it (`reported`) and how it was counted (`counted`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from podium.agents.context import TokenCounter
from podium.models.base import Message, Model, ModelResponse, Usage

PLAUSIBLE_BYTES_PER_TOKEN = 32


def _plausible(reported: int, text: str) -> bool:
    if not text:
        return True
    size = len(text.encode("utf-8", "replace"))
    return reported > 0 and reported * PLAUSIBLE_BYTES_PER_TOKEN >= size


def reply_text(response: ModelResponse) -> str:
    """Everything the model wrote: its text and its tool calls."""
    return response.text + "".join(c.name + c.arguments for c in response.tool_calls)


def accounted(model: Model, sent: Sequence[Message], response: ModelResponse
              ) -> tuple[Usage, dict[str, Any]]:
    """The usage budgets count for `response` to `sent`, and what the journal notes about
    it (empty when the provider's report was taken as it is)."""
    reported = response.usage
    prompt = "".join(m.content for m in sent)
    written = reply_text(response)
    input_ok = _plausible(reported.input_tokens, prompt)
    output_ok = _plausible(reported.output_tokens, written)
    if input_ok and output_ok:
        return reported, {}
    counter = TokenCounter(model)
    input_tokens, output_tokens = reported.input_tokens, reported.output_tokens
    if not input_ok:
        input_tokens = max(input_tokens, counter.messages(sent))
    if not output_ok:
        output_tokens = max(output_tokens, counter(written))
    return (Usage(input_tokens=input_tokens, output_tokens=output_tokens),
            {"counted": counter.counted,
             "reported": {"input_tokens": reported.input_tokens,
                          "output_tokens": reported.output_tokens}})
