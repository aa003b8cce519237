"""The tool half of an LLM agent's turn: run the calls a model asked for, concurrently
and durably, and phrase each outcome as a `tool` message the model reads next.

Every call is one durable step (`ctx.step("tool", name, ...)`): a call that completed
before a crash is not run again when the task resumes; its journaled outcome is used.
Outcomes, not exceptions, come back for what a model can act on::

    UnknownTool           the name is no offered tool          ┐ repairable: the model
    ToolArgumentsInvalid  not JSON, not an object, or not the  ┘ may correct the call
                          tool's schema
    ToolFailed            the tool raised or timed out, or its   the model decides
                          result passed its byte limit
    PermissionDenied      the run's principal may not call it    the model decides
    ToolRefused           the agent may not call this tool       the model decides
    ApprovalRequired      a high-risk call waits for a person    settled by the agent
                          (tools/mediation.py)                   before the model reads it

Each call passes through the agent's chain of tool-call interceptors
(`podium.tools.interceptors`): the journal, the agent's mediation (tools/mediation.py),
the principal's access check, masking, then the tool itself. Anything else
(cancellation, a crash) propagates.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from podium.core.agent import JSON, TaskContext
from podium.models.base import Message, ToolCall

ErrorType = Literal["UnknownTool", "ToolArgumentsInvalid", "ToolFailed", "PermissionDenied",
                    "ToolRefused", "ApprovalRequired"]
_REPAIRABLE = frozenset({"UnknownTool", "ToolArgumentsInvalid"})
_REFUSED = frozenset({"UnknownTool", "ToolRefused", "PermissionDenied"})
DEFAULT_MAX_RESULT_BYTES = 1024 * 1024
"""The bound on a tool's result (JSON text, UTF-8 bytes) when neither the tool nor the
agent sets one."""


@dataclass(frozen=True, kw_only=True)
class ToolOutcome:
    """How one tool call ended."""

    call: ToolCall
    result: JSON = None
    """The tool's result, when it succeeded."""
    error: str | None = None
    """What went wrong, in words a model can act on; None when the call succeeded."""
    error_type: ErrorType | None = None
    approval: str | None = None
    """For a call waiting for a person (`ApprovalRequired`), the id its answer must name."""

    @property
    def refused(self) -> bool:
        """The engine did not run the call: no such tool, one the agent may not call, or
        one the run's principal may not."""
        return self.error_type in _REFUSED

    @property
    def repairable(self) -> bool:
        """The model named no tool, or gave arguments that do not fit: it can correct it."""
        return self.error_type in _REPAIRABLE

    def message(self) -> Message:
        """The outcome as the `tool` message that answers the call."""
        if self.error is not None:
            return Message(role="tool", tool_call_id=self.call.id, content=self.error,
                           is_error=True)
        content = self.result if isinstance(self.result, str) else json.dumps(
            self.result, ensure_ascii=False)
        return Message(role="tool", tool_call_id=self.call.id, content=content)

    def to_json(self) -> dict[str, JSON]:
        if self.error is not None:
            return {"error": self.error, "error_type": self.error_type,
                    **({"approval": self.approval} if self.approval else {})}
        return {"result": self.result}

    @classmethod
    def from_json(cls, call: ToolCall, data: Any) -> ToolOutcome:
        if isinstance(data, dict) and data.get("error") is not None:
            return cls(call=call, error=str(data["error"]), error_type=data.get("error_type"),
                       approval=data.get("approval"))
        return cls(call=call, result=data.get("result") if isinstance(data, dict) else None)


async def run_tool_calls(calls: Sequence[ToolCall], ctx: TaskContext,
                         run: Callable[[ToolCall], Awaitable[ToolOutcome]]
                         ) -> list[ToolOutcome]:
    """Run `calls` concurrently, each as a durable step whose body is `run(call)` (the
    agent's chain of tool-call interceptors), and return their outcomes in order.

    Raises:
        BaseException: whatever a call raised that is not an outcome (cancellation, a
            crash); the other calls are cancelled.
    """
    # Steps are numbered when they start and replayed by position in the journal, so
    # each call's step is journaled only after the step before it: the calls still run
    # at the same time, and a resumed task finds them in the order it asks for them.
    journaled = [asyncio.Event() for _ in calls]

    async def one(position: int, call: ToolCall) -> ToolOutcome:
        async def body() -> JSON:
            outcome = await run(call)
            if position:
                await journaled[position - 1].wait()
            return outcome.to_json()

        try:
            return ToolOutcome.from_json(call, await ctx.step("tool", call.name, body))
        finally:
            journaled[position].set()

    try:
        async with asyncio.TaskGroup() as group:
            running = [group.create_task(one(n, call)) for n, call in enumerate(calls)]
    except BaseExceptionGroup as group_error:
        if len(group_error.exceptions) == 1:
            raise group_error.exceptions[0] from None
        raise
    return [task.result() for task in running]


def shown_arguments(arguments: str) -> JSON:
    """The arguments as the journal shows them: parsed when they are JSON."""
    try:
        return json.loads(arguments)
    except json.JSONDecodeError:
        return arguments
