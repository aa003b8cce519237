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

A `ToolGate` (the agent's mediation, tools/mediation.py) sees every call before it runs.
Anything else (cancellation, a crash) propagates.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from podium.core.agent import JSON, TaskContext
from podium.core.events import ToolCalled
from podium.errors import PermissionDenied
from podium.models.base import Message, ToolCall
from podium.models.limits import size
from podium.tools.tool import Tool, ToolArgumentsInvalid, ToolFailed, calling_context

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


class ToolGate(Protocol):
    """What stands between a model's tool calls and the tools: an agent's mediation."""

    async def call(self, call: ToolCall, tools: Mapping[str, Tool], ctx: TaskContext,
                   run: Callable[[ToolCall, Mapping[str, Tool], TaskContext],
                                 Awaitable[ToolOutcome]]) -> ToolOutcome:
        """Authorise `call`: refuse it (journaling why), hold it for a person's approval,
        or `run` it (with tools that mask what leaves for external ones)."""
        ...


async def run_tool_calls(calls: Sequence[ToolCall], tools: Mapping[str, Tool],
                         ctx: TaskContext, gate: ToolGate | None = None, *,
                         max_result_bytes: int | None = None) -> list[ToolOutcome]:
    """Run `calls` concurrently, each as a durable step, and return their outcomes in order.
    A result larger than its tool's `max_result_bytes` (else `max_result_bytes`, else
    `DEFAULT_MAX_RESULT_BYTES`) becomes a `ToolFailed` outcome naming the sizes.

    Raises:
        BaseException: whatever a call raised that is not an outcome (cancellation, a
            crash); the other calls are cancelled.
    """
    # Steps are numbered when they start and replayed by position in the journal, so
    # each call's step is journaled only after the step before it: the calls still run
    # at the same time, and a resumed task finds them in the order it asks for them.
    journaled = [asyncio.Event() for _ in calls]
    live = functools.partial(_call, limit=max_result_bytes)

    async def one(position: int, call: ToolCall) -> ToolOutcome:
        async def body() -> JSON:
            outcome = await (gate.call(call, tools, ctx, live) if gate is not None
                             else live(call, tools, ctx))
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


async def _call(call: ToolCall, tools: Mapping[str, Tool], ctx: TaskContext, *,
                limit: int | None = None) -> ToolOutcome:
    """Run one call live, and journal it as a `tool_call` observation."""
    started = time.perf_counter()
    outcome: ToolOutcome
    tool = tools.get(call.name)
    if tool is None:
        offered = ", ".join(repr(name) for name in tools) or "none"
        outcome = ToolOutcome(call=call, error_type="UnknownTool",
                              error=f"there is no tool named {call.name!r}; the tools are: "
                                    f"{offered}")
    else:
        try:
            await ctx.authorize("tool:call", call.name, tags=tool.tags)
            calling_context.set(ctx)  # this call's own asyncio task: no reset needed
            outcome = _bounded(ToolOutcome(call=call, result=await tool(_arguments(call))),
                               tool, limit)
        except PermissionDenied:
            # The model learns no more than that: who is asking, and which roles would be
            # allowed, is for the audit log, not for a provider's servers.
            outcome = ToolOutcome(call=call, error_type="PermissionDenied",
                                  error=f"tool {call.name!r} is not permitted in this run; "
                                        "do without it")
        except ToolArgumentsInvalid as e:
            outcome = ToolOutcome(call=call, error=str(e), error_type="ToolArgumentsInvalid")
        except ToolFailed as e:
            outcome = ToolOutcome(call=call, error=str(e), error_type="ToolFailed")
        except Exception as e:
            outcome = ToolOutcome(call=call, error_type="ToolFailed",
                                  error=f"tool {call.name!r} failed: {type(e).__name__}: {e}")
    await ctx.record(ToolCalled(
        call_id=call.id, name=call.name, arguments=_shown(call.arguments),
        **outcome.to_json(),
        refused=True if outcome.refused else None,
        reason=outcome.error if outcome.refused else None,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    ))
    return outcome


def _bounded(outcome: ToolOutcome, tool: Tool, agent_limit: int | None) -> ToolOutcome:
    """The outcome, or a `ToolFailed` one when its result is past the byte limit."""
    limit = tool.max_result_bytes or agent_limit or DEFAULT_MAX_RESULT_BYTES
    result = outcome.result
    text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
    # Counted in characters first: cheap, and a lower bound on the UTF-8 size.
    if len(text) <= limit // 4 or len(text.encode("utf-8", "replace")) <= limit:
        return outcome
    setting = ("the tool's max_result_bytes" if tool.max_result_bytes else
               "the agent's max_tool_result_bytes" if agent_limit else "the default")
    return ToolOutcome(
        call=outcome.call, error_type="ToolFailed",
        error=f"tool {tool.name!r} returned {size(len(text.encode('utf-8', 'replace')))}, "
              f"more than its limit of {size(limit)} ({setting}); the result was dropped. "
              f"Ask for less (a narrower query, fewer rows), or raise max_result_bytes on "
              f"the tool (an MCP server's `max_result_bytes:`) or the agent's "
              f"max_tool_result_bytes")


def _shown(arguments: str) -> JSON:
    """The arguments as the journal shows them: parsed when they are JSON."""
    try:
        return json.loads(arguments)
    except json.JSONDecodeError:
        return arguments


def _arguments(call: ToolCall) -> dict[str, Any]:
    text = call.arguments.strip() or "{}"
    try:
        arguments = json.loads(text)
    except json.JSONDecodeError as e:
        raise ToolArgumentsInvalid(
            f"arguments for tool {call.name!r} are not valid JSON ({e.msg} at char {e.pos}): "
            f"send a JSON object"
        ) from None
    if not isinstance(arguments, dict):
        raise ToolArgumentsInvalid(
            f"arguments for tool {call.name!r} must be a JSON object, got "
            f"{type(arguments).__name__}"
        )
    return arguments
