"""Interceptors around a tool call a model asked for: each cross-cutting concern (the
journal, the agent's mediation, the principal's access check, masking; tracing later) is
one link of a chain, not a branch of the code that runs the tool.

The hook, `call_tool`, takes ONE input dataclass, `ToolCallInput`, and calls
`self.next.call_tool` to go on; it returns the call's `ToolOutcome` (an error the model
reads is an outcome, not an exception)::

    LLMAgent ─► ToolJournal ─► yours ─► Mediation ─► ToolAccess ─► ToolMasking ─► RunTool
                tool_call               allowlist,   the principal  external     the tool
                event                   approval     (audited)      tools

The order is fixed in one place, `podium.agents.interceptors.tool_chain`, outermost
first. The chain runs inside the call's durable step (`podium.tools.calls`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_jsonable_python

from podium.core.agent import JSON, TaskContext
from podium.core.events import ToolCalled
from podium.errors import PermissionDenied
from podium.models.base import ToolCall
from podium.models.limits import size
from podium.models.masking import run_vault
from podium.security.masking import Masker, MaskingPolicy
from podium.tools.calls import DEFAULT_MAX_RESULT_BYTES, ToolOutcome, shown_arguments
from podium.tools.tool import Tool, ToolArgumentsInvalid, ToolFailed, calling_context


@dataclass(frozen=True, kw_only=True)
class ToolCallInput:
    """One tool call, as every interceptor of the chain sees it."""

    call: ToolCall
    """The call the model asked for."""
    tools: Mapping[str, Tool]
    """The tools the call may name, by name."""
    ctx: TaskContext
    """The task attempt the call is made for."""
    max_result_bytes: int | None = None
    """The agent's bound on a result, for tools that set none of their own."""
    answer: Mapping[str, JSON] | None = None
    """A person's answer to this call, held for their approval before (`approved`, `by`,
    `reason`); None for a call not held."""
    notes: dict[str, JSON] = field(default_factory=dict)
    """What the journal records of the call beside its outcome (`rejected_by`);
    interceptors add to it."""


class ToolInterceptor:
    """One link of the chain around a tool call; this base passes the call on unchanged.

    Subclass it and override `call_tool`, calling `self.next.call_tool(input)` to go on.
    """

    def __init__(self, next: ToolInterceptor) -> None:
        self.next = next

    async def call_tool(self, input: ToolCallInput) -> ToolOutcome:
        """Run the call (or refuse it), returning how it ended."""
        return await self.next.call_tool(input)


class RunTool(ToolInterceptor):
    """The end of the chain: runs the tool the call names, within its result's byte limit,
    and turns what a model can act on into an outcome (no such tool, invalid arguments,
    the tool failed or was not permitted)."""

    def __init__(self) -> None:
        pass

    async def call_tool(self, input: ToolCallInput) -> ToolOutcome:
        call = input.call
        tool = input.tools.get(call.name)
        if tool is None:
            offered = ", ".join(repr(name) for name in input.tools) or "none"
            return ToolOutcome(call=call, error_type="UnknownTool",
                               error=f"there is no tool named {call.name!r}; the tools are: "
                                     f"{offered}")
        try:
            calling_context.set(input.ctx)  # this call's own asyncio task: no reset needed
            return _bounded(ToolOutcome(call=call, result=await tool(_arguments(call))),
                            tool, input.max_result_bytes)
        except PermissionDenied:
            return _denied(call)  # the tool's own check (a memory tool's, say)
        except ToolArgumentsInvalid as e:
            return ToolOutcome(call=call, error=str(e), error_type="ToolArgumentsInvalid")
        except ToolFailed as e:
            return ToolOutcome(call=call, error=str(e), error_type="ToolFailed")
        except Exception as e:
            return _failed(call, e)


class ToolAccess(ToolInterceptor):
    """Checks that the run's principal may call the tool (`tool:call`, with its tags);
    the engine audits the decision. A call refused is not run, and the model is told no
    more than that."""

    async def call_tool(self, input: ToolCallInput) -> ToolOutcome:
        tool = input.tools.get(input.call.name)
        if tool is not None:
            try:
                await input.ctx.authorize("tool:call", input.call.name, tags=tool.tags)
            except PermissionDenied:
                return _denied(input.call)
            except Exception as e:
                return _failed(input.call, e)
        return await self.next.call_tool(input)


def _failed(call: ToolCall, error: Exception) -> ToolOutcome:
    return ToolOutcome(call=call, error_type="ToolFailed",
                       error=f"tool {call.name!r} failed: {type(error).__name__}: {error}")


def _denied(call: ToolCall) -> ToolOutcome:
    # Who is asking, and which roles would be allowed, is for the audit log, not for a
    # provider's servers.
    return ToolOutcome(call=call, error_type="PermissionDenied",
                       error=f"tool {call.name!r} is not permitted in this run; do without it")


class ToolMasking(ToolInterceptor):
    """Masks the personal data `policy` lists in the arguments of a call to an `external`
    tool, and restores it in the result, with the run's vault: the placeholders the model
    saw mean the same values here."""

    def __init__(self, next: ToolInterceptor, policy: MaskingPolicy) -> None:
        super().__init__(next)
        self.policy = policy

    async def call_tool(self, input: ToolCallInput) -> ToolOutcome:
        tool = input.tools.get(input.call.name)
        if tool is None or not tool.external:
            return await self.next.call_tool(input)
        policy, ctx, inner = self.policy, input.ctx, tool.call

        async def call(arguments: Mapping[str, Any]) -> Any:
            vault = await run_vault(ctx)
            masker = Masker(policy, vault=vault.vault, run_id=ctx.run_id)
            sent = {k: masker.mask_json(to_jsonable_python(v, fallback=str))
                    for k, v in arguments.items()}
            await vault.keep()  # before anything leaves, so a crash cannot lose the mapping
            result = to_jsonable_python(await inner(sent), fallback=str)
            return masker.unmask_json(result)

        masked = dataclasses.replace(tool, call=call)
        return await self.next.call_tool(dataclasses.replace(
            input, tools={**input.tools, tool.name: masked}))


_NOTED = frozenset(f.name for f in dataclasses.fields(ToolCalled)) - {
    "call_id", "name", "arguments", "result", "error", "error_type", "refused", "reason",
    "duration_ms", "notes", "approval"}


class ToolJournal(ToolInterceptor):
    """Journals each call's outcome as a `tool_call` event (refusals marked `refused`,
    with the reason); a call held for a person's approval is journaled once answered."""

    async def call_tool(self, input: ToolCallInput) -> ToolOutcome:
        started = time.perf_counter()
        outcome = await self.next.call_tool(input)
        if outcome.error_type == "ApprovalRequired":
            return outcome
        call = input.call
        notes = dict(input.notes)
        known = {key: notes.pop(key) for key in list(notes) if key in _NOTED}
        await input.ctx.record(ToolCalled(
            call_id=call.id, name=call.name, arguments=shown_arguments(call.arguments),
            **outcome.to_json(),
            refused=True if outcome.refused else None,
            reason=outcome.error if outcome.refused else None,
            **known, notes=notes or None,
            # A call its agent refused (the allowlist, a person) did not run at all.
            duration_ms=0.0 if outcome.error_type == "ToolRefused" else round(
                (time.perf_counter() - started) * 1000, 3),
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
