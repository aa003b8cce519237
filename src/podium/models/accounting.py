"""What a model call consumed, as budgets and `runs show` count it.

Providers report usage, but not always, and not always truthfully: llama.cpp's server
sends none in a stream, and a hostile server can bill a 5 MB reply as 10 tokens. A
report is implausible when it is 0 for a non-empty text, or when it makes a token longer
than `PLAUSIBLE_BYTES_PER_TOKEN` bytes (no tokenizer's tokens are, on average). Then the
tokens are counted here, with the model's tokenizer where this machine has it, else
estimated at one per 3 bytes of UTF-8 (`podium.models.tokens.estimate_tokens`), and the
larger of the report and the count is what counts. The journal keeps the report beside
it (`reported`) and how it was counted (`counted`).

`Accounting` is the interceptor (`podium.models.interceptors`) that counts each call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from podium.errors import ModelError
from podium.models.base import Message, Model, ModelResponse, Usage
from podium.models.interceptors import ModelCallInput, ModelInterceptor
from podium.models.pricing import cost
from podium.models.replies import reply_text
from podium.models.tokens import TokenCounter

PLAUSIBLE_BYTES_PER_TOKEN = 32


def _plausible(reported: int, text: str) -> bool:
    if not text:
        return True
    size = len(text.encode("utf-8", "replace"))
    return reported > 0 and reported * PLAUSIBLE_BYTES_PER_TOKEN >= size


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


def call_cost(model: Model, response: ModelResponse) -> float | None:
    """What the call cost in USD, or None when the model's price is unknown."""
    # The provider's name can be more precise (a dated variant); the workflow's name says
    # the provider, and `local` costs nothing whatever file it loads.
    for name in (response.model, model.name):
        if name:
            usd = cost(name, response.usage.input_tokens, response.usage.output_tokens)
            if usd is not None:
                return usd
    return None


class Accounting(ModelInterceptor):
    """Notes the tokens and cost each call counts for (`accounted`, `call_cost`), a
    failed call's too: what it spent before failing counts against budgets all the same,
    and one that produced nothing (refused, unreachable) spent nothing. It sits inside
    masking, so it counts the conversation as the model received it."""

    async def call_model(self, input: ModelCallInput) -> ModelResponse:
        try:
            response = await self.next.call_model(input)
        except ModelError as e:
            if isinstance(e.partial, ModelResponse):
                _note(input, input.messages, e.partial)
            else:
                _note(input, (), ModelResponse(text="", model=input.model.name))
            raise
        _note(input, input.messages, response)
        return response


def _note(input: ModelCallInput, sent: Sequence[Message], response: ModelResponse) -> None:
    usage, notes = accounted(input.model, sent, response)
    input.notes.update({"input_tokens": usage.input_tokens,
                        "output_tokens": usage.output_tokens,
                        "cost_usd": call_cost(input.model, replace(response, usage=usage)),
                        **notes})
