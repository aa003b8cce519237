"""Tool mediation: the engine, not the model, decides which tool calls run.

For every call an LLM agent's model asks for, in this order::

    not in the agent's allowlist ─────────────► refused (ToolRefused), journaled, model told
    tagged high_risk, untrusted content read ─► held for a person (ApprovalRequired):
                                                the task waits; approve runs exactly this
                                                call once, reject refuses it
    otherwise ────────────────────────────────► on down the chain: the principal's
                                                access check, masking, the tool

Untrusted content is what no one vouched for: every tool's result (and a failed tool's
message) unless the tool is tagged `trusted`, retrieved memories, the run inputs not
marked trusted, and the outputs of tasks that read any of these, however they reach the
task (a template, a `for_each` item, a `when:`, the agent's own reads through `ctx`). It
reaches the model delimited (`podium.core.untrusted`). The attempt's context keeps the
sources it read (`TaskContext.untrusted`); the gate consults it before each call, so a
sub-agent or a delegate that shares the context is held too.

`Mediation` is one attempt's gate: it states which tools the model is offered, and, as
`intercept_tool` (a link of the agent's tool-call chain, `podium.tools.interceptors`),
refuses or holds each call.

How approval stays durable: the held call's step is journaled with an approval id, then
the agent asks for the person's answer as the next step. Without an answer that step
raises `ApprovalRequired`; the engine suspends the task keeping its steps. When the task
runs again, the model turns and calls before are replayed from the journal, so the held
call is the very one the person saw, and the answer (bound to its approval id) settles it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podium.core.agent import JSON, TaskContext
from podium.core.untrusted import NOTICE, delimit
from podium.errors import ApprovalRequired
from podium.models.base import Message, ToolCall
from podium.tools.calls import ToolOutcome, shown_arguments
from podium.tools.interceptors import ToolCallInput, ToolInterceptor
from podium.tools.tool import Tool

HIGH_RISK = "high_risk"
"""The tag of tools whose calls wait for a person once untrusted content was read."""
TRUSTED = "trusted"
"""The tag of tools whose results are not untrusted content (a calculator, a clock)."""
_UNTRUSTED_ERRORS = frozenset({"ToolFailed"})


@dataclass(frozen=True, kw_only=True)
class ToolPolicy:
    """Which tools an agent may call, and when a person must approve a call."""

    allow: tuple[str, ...] | None = None
    """Tool names (shell-style patterns allowed) and `tag:NAME` entries; None lets the
    agent call every tool it is given."""
    high_risk_without_approval: bool = False
    """Let calls to `high_risk` tools run without a person even after untrusted content
    was read (an agent that only ever reads trusted data, say)."""

    def allows(self, tool: Tool) -> bool:
        """Whether the agent may call `tool`."""
        if self.allow is None:
            return True
        for entry in self.allow:
            if entry.startswith("tag:"):
                if entry[4:] in tool.tags:
                    return True
            elif fnmatch.fnmatchcase(tool.name, entry):
                return True
        return False


def allowlist_problems(entries: Sequence[Any], tools: Collection[str],
                       prefixes: Collection[str] = ()) -> list[tuple[int, str]]:
    """What is wrong with an allowlist, as (entry index, message): an entry that is not a
    name or `tag:NAME`, or a name that matches no tool the agent is given (tools learnt
    at run time match when they start with one of `prefixes`, e.g. `server__`)."""
    problems: list[tuple[int, str]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, str) or not entry.strip():
            problems.append((i, f"{entry!r} is not a tool name or 'tag:NAME'"))
        elif entry.startswith("tag:"):
            if not entry[4:].strip():
                problems.append((i, "'tag:' needs a tag name, e.g. 'tag:read_only'"))
        elif not (any(fnmatch.fnmatchcase(t, entry) for t in tools)
                  or any(entry.startswith(p) for p in prefixes)):
            given = ", ".join(map(repr, sorted(tools))) or "none"
            problems.append((i, f"{entry!r} names no tool the agent is given (its tools: "
                                f"{given}); list tools under 'tools:' first"))
    return problems


def noticed(messages: Sequence[Message], untrusted: Sequence[str]) -> list[Message]:
    """`messages` with `NOTICE` in the system message once there is untrusted content
    (added then, not before: a conversation without any reads as its author wrote it)."""
    found = list(messages)
    if not untrusted or any(m.role == "system" and NOTICE in m.content for m in found):
        return found
    if found and found[0].role == "system":
        system = dataclasses.replace(found[0], content=f"{found[0].content}\n\n{NOTICE}")
        return [system, *found[1:]]
    return [Message(role="system", content=NOTICE), *found]


class Mediation:
    """One task attempt's mediation of an LLM agent's tool calls.

    Args:
        agent: the agent's name, for messages.
        policy: its allowlist and approval rule.
        untrusted: sources of untrusted content already in the context (`input:NAME`).
    """

    def __init__(self, agent: str, policy: ToolPolicy, untrusted: Iterable[str] = ()
                 ) -> None:
        self.agent = agent
        self.policy = policy
        self.untrusted: list[str] = list(dict.fromkeys(untrusted))
        """Where the untrusted content in the context came from, in the order first seen."""

    def absorb(self, sources: Iterable[str]) -> None:
        """Note untrusted content that reached the context by another way (the task's
        context sections, an earlier agent of the same attempt)."""
        for source in sources:
            if source not in self.untrusted:
                self.untrusted.append(source)

    def offered(self, tools: Iterable[Tool]) -> list[Tool]:
        """The tools the model is told of: those the allowlist lets it call."""
        return [t for t in tools if self.policy.allows(t)]

    def intercept_tool(self, next: ToolInterceptor) -> ToolInterceptor:
        """This mediation as a link of the tool-call chain, before `next`."""
        return _Gate(next, self)

    async def _gate(self, input: ToolCallInput, next: ToolInterceptor) -> ToolOutcome:
        """Authorise one call; see the module's docstring."""
        call, ctx = input.call, input.ctx
        allowed = {name: t for name, t in input.tools.items() if self.policy.allows(t)}
        if input.answer is not None:
            return await self._answered(input, allowed, next)
        tool = input.tools.get(call.name)
        if tool is not None and not self.policy.allows(tool):
            return ToolOutcome(call=call, error_type="ToolRefused", error=(
                f"tool {call.name!r} is not in the allowlist of agent {self.agent!r}; the "
                "call was refused and not run"))
        self.absorb(ctx.untrusted)
        if tool is not None and self._needs_approval(tool):
            return ToolOutcome(call=call, error_type="ApprovalRequired", approval=uuid.uuid4().hex,
                               error="this call waits for a person's approval")
        return await next.call_tool(dataclasses.replace(input, tools=allowed))

    def _needs_approval(self, tool: Tool) -> bool:
        return (HIGH_RISK in tool.tags and bool(self.untrusted)
                and not self.policy.high_risk_without_approval)

    async def settle(self, outcomes: Sequence[ToolOutcome], tools: Mapping[str, Tool],
                     ctx: TaskContext, chain: ToolInterceptor) -> list[ToolOutcome]:
        """Replace each held call's outcome by a person's answer, as a durable step; an
        approved call runs through `chain` (the agent's, this mediation in it).

        Raises:
            ApprovalRequired: a held call has no answer yet; the task waits for one.
        """
        settled: list[ToolOutcome] = []
        for outcome in outcomes:
            if outcome.error_type != "ApprovalRequired":
                settled.append(outcome)
                continue
            call = outcome.call

            async def answer(held: ToolOutcome = outcome) -> JSON:
                return (await self._answer(held, tools, ctx, chain)).to_json()

            settled.append(ToolOutcome.from_json(call, await ctx.step("tool", call.name,
                                                                        answer)))
        return settled

    async def _answer(self, held: ToolOutcome, tools: Mapping[str, Tool], ctx: TaskContext,
                      chain: ToolInterceptor) -> ToolOutcome:
        call = held.call
        answer = ctx.approval or {}
        waited = answer.get("tool_call") or {}
        if not held.approval or waited.get("approval") != held.approval:
            shown = {"approval": held.approval, "call_id": call.id, "name": call.name,
                     "arguments": shown_arguments(call.arguments),
                     "untrusted": list(self.untrusted)}
            raise ApprovalRequired(self._prompt(call), shown)
        return await chain.call_tool(ToolCallInput(call=call, tools=tools, ctx=ctx,
                                                   answer=answer))

    async def _answered(self, input: ToolCallInput, allowed: Mapping[str, Tool],
                        next: ToolInterceptor) -> ToolOutcome:
        """A held call, settled by a person's answer: run, or refused."""
        answer = input.answer or {}
        if answer.get("approved"):
            # Straight on: the person's answer is the authorisation.
            return await next.call_tool(dataclasses.replace(input, tools=allowed))
        by = answer.get("by") or "a person"
        why = f": {answer['reason']}" if answer.get("reason") else ""
        input.notes["rejected_by"] = by
        return ToolOutcome(call=input.call, error_type="ToolRefused", error=(
            f"{by} rejected this call to {input.call.name!r}{why}. It was not run; do not "
            "try it again, and say in your answer that it was refused."))

    def _prompt(self, call: ToolCall) -> str:
        arguments = json.dumps(shown_arguments(call.arguments), ensure_ascii=False,
                               default=str)
        return (f"Agent {self.agent!r} wants to call the high-risk tool {call.name!r} with "
                f"{arguments}, after reading untrusted content ({', '.join(self.untrusted)}). "
                "Approve to run exactly this call once, or reject to refuse it (the agent is "
                "told and goes on).")

    def observe(self, outcomes: Sequence[ToolOutcome], tools: Mapping[str, Tool]) -> None:
        """Note the untrusted content these outcomes bring into the context."""
        for outcome in outcomes:
            source = self._source(outcome, tools)
            if source is not None and source not in self.untrusted:
                self.untrusted.append(source)

    def _source(self, outcome: ToolOutcome, tools: Mapping[str, Tool]) -> str | None:
        if outcome.error is not None and outcome.error_type not in _UNTRUSTED_ERRORS:
            return None  # the engine's own words: refusals, schema errors
        tool = tools.get(outcome.call.name)
        if tool is not None and TRUSTED in tool.tags:
            return None
        return f"tool:{outcome.call.name}"

    def message(self, outcome: ToolOutcome, tools: Mapping[str, Tool]) -> Message:
        """The outcome as the `tool` message the model reads, untrusted content delimited."""
        message = outcome.message()
        source = self._source(outcome, tools)
        if source is None:
            return message
        return dataclasses.replace(message, content=delimit(message.content, source))


class _Gate(ToolInterceptor):
    """A `Mediation` as a link of the tool-call chain."""

    def __init__(self, next: ToolInterceptor, mediation: Mediation) -> None:
        super().__init__(next)
        self.mediation = mediation

    async def call_tool(self, input: ToolCallInput) -> ToolOutcome:
        return await self.mediation._gate(input, self.next)
