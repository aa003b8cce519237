"""The interceptor chains of an LLM agent's model calls and tool calls, in their one fixed
order, and the hook for adding your own.

Outermost first (each link sees what the ones before it pass on)::

    model call   ModelJournal ─► yours ─► ReplyCache ─► Masking ─► Accounting ─► Complete
    tool call    ToolJournal ─► yours ─► Mediation ─► ToolAccess ─► ToolMasking ─► RunTool

Why this order:

- The journals are outermost: they see every call, a cached reply and a refusal too,
  with what the links inside noted, and record the call as the agent made it.
- The reply cache is outside masking, as it always was: its key is the request as the
  agent wrote it (placeholders differ from run to run), and a hit is answered without
  reaching masking or the model.
- Accounting is inside masking: it counts the conversation the model received.
- Mediation comes before the principal's access check: a call the agent may not make,
  or one that waits for a person, is not put to the access policy (nor audited) until
  it would run.

Your own interceptors (`LLMAgent(interceptors=[...])`) come next, the first given
outermost: they see each call as the agent asks it and the reply as it reads it, cached
ones and refused ones included, and what they note is journaled. All of it runs inside
the call's durable step: a replayed call passes through no interceptor. Subclass
`Interceptor` and override `intercept_model` or `intercept_tool` to return a
`ModelInterceptor` or `ToolInterceptor` wrapping `next`::

    class Timing(Interceptor):
        def intercept_model(self, next: ModelInterceptor) -> ModelInterceptor:
            return _TimedModel(next)

    class _TimedModel(ModelInterceptor):
        async def call_model(self, input: ModelCallInput) -> ModelResponse:
            started = time.perf_counter()
            try:
                return await self.next.call_model(input)
            finally:
                input.notes["timed_ms"] = (time.perf_counter() - started) * 1000

A hook takes one input dataclass (`ModelCallInput`, `ToolCallInput`); pass on a changed
copy with `dataclasses.replace`, and add to what the journal records through its `notes`.
"""

from __future__ import annotations

from collections.abc import Sequence

from podium.models.accounting import Accounting
from podium.models.interceptors import Complete, ModelInterceptor, ModelJournal, ReplyCache
from podium.models.masking import Masking
from podium.security.masking import MaskingPolicy
from podium.tools.interceptors import (
    RunTool,
    ToolAccess,
    ToolInterceptor,
    ToolJournal,
    ToolMasking,
)
from podium.tools.mediation import Mediation


class Interceptor:
    """Adds links to an LLM agent's chains of model calls and tool calls (in the manner of
    Temporal's `worker.Interceptor`); this base adds none."""

    def intercept_model(self, next: ModelInterceptor) -> ModelInterceptor:
        """The link to put before `next` in the model-call chain; `next` for none."""
        return next

    def intercept_tool(self, next: ToolInterceptor) -> ToolInterceptor:
        """The link to put before `next` in the tool-call chain; `next` for none."""
        return next


def model_chain(*, cache: bool, masking: MaskingPolicy | None,
                interceptors: Sequence[Interceptor] = ()) -> ModelInterceptor:
    """The chain an agent's model calls pass through, outermost returned."""
    chain: ModelInterceptor = Accounting(Complete())
    if masking is not None:
        chain = Masking(chain, masking)
    if cache:
        chain = ReplyCache(chain)
    for interceptor in reversed(interceptors):
        chain = interceptor.intercept_model(chain)
    return ModelJournal(chain)


def tool_chain(*, mediation: Mediation, masking: MaskingPolicy | None,
               interceptors: Sequence[Interceptor] = ()) -> ToolInterceptor:
    """The chain an agent's tool calls pass through in one task attempt, outermost
    returned."""
    chain: ToolInterceptor = RunTool()
    if masking is not None:
        chain = ToolMasking(chain, masking)
    chain = mediation.intercept_tool(ToolAccess(chain))
    for interceptor in reversed(interceptors):
        chain = interceptor.intercept_tool(chain)
    return ToolJournal(chain)
