"""Tool mediation: the engine, not the model, decides which tool calls run.

For every call an LLM agent's model asks for, in this order::

    not in the agent's allowlist ─────────────► refused (ToolRefused), journaled, model told
    tagged high_risk, untrusted content read ─► held for a person (ApprovalRequired):
                                                the task waits; approve runs exactly this
                                                call once, reject refuses it
    external ─────────────────────────────────► arguments masked, result unmasked
    otherwise ────────────────────────────────► run

Untrusted content is what no one vouched for: every tool's result (and a failed tool's
message) unless the tool is tagged `trusted`, retrieved memories, the run inputs not
marked trusted, and the outputs of tasks that read any of these, however they reach the
task (a template, a `for_each` item, a `when:`, the agent's own reads through `ctx`). It
reaches the model delimited (`podium.core.untrusted`). The attempt's context keeps the
sources it read (`TaskContext.untrusted`); the gate consults it before each call, so a
sub-agent or a delegate that shares the context is held too.

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
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_jsonable_python

from podium.agents._masking import run_vault
from podium.core.agent import JSON, TaskContext
from podium.core.events import ToolCalled
from podium.core.untrusted import NOTICE, delimit
from podium.errors import ApprovalRequired
from podium.models.base import Message, ToolCall
from podium.security.masking import Masker, MaskingPolicy
from podium.tools._protocol import ToolOutcome, _call, _shown
from podium.tools.tool import Tool

HIGH_RISK = "high_risk"
"""The tag of tools whose calls wait for a person once untrusted content was read."""
TRUSTED = "trusted"
"""The tag of tools whose results are not untrusted content (a calculator, a clock)."""
_UNTRUSTED_ERRORS = frozenset({"ToolFailed"})
Runner = Callable[[ToolCall, Mapping[str, Tool], TaskContext], Awaitable[ToolOutcome]]


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
    """One task attempt's mediation of an LLM agent's tool calls (a `ToolGate`).

    Args:
        agent: the agent's name, for messages.
        policy: its allowlist and approval rule.
        masking: its masking policy, applied to `external` tools (with the run's vault, so
            placeholders match the ones its models see); None: none.
        untrusted: sources of untrusted content already in the context (`input:NAME`).
    """

    def __init__(self, agent: str, policy: ToolPolicy, masking: MaskingPolicy | None,
                 untrusted: Iterable[str] = ()) -> None:
        self.agent = agent
        self.policy = policy
        self.masking = masking
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

    async def call(self, call: ToolCall, tools: Mapping[str, Tool], ctx: TaskContext,
                   run: Runner) -> ToolOutcome:
        """Authorise one call; see the module's docstring."""
        tool = tools.get(call.name)
        if tool is not None and not self.policy.allows(tool):
            outcome = ToolOutcome(call=call, error_type="ToolRefused", error=(
                f"tool {call.name!r} is not in the allowlist of agent {self.agent!r}; the "
                "call was refused and not run"))
            await _journal_refusal(ctx, call, outcome)
            return outcome
        self.absorb(ctx.untrusted)
        if tool is not None and self._needs_approval(tool):
            return ToolOutcome(call=call, error_type="ApprovalRequired", approval=uuid.uuid4().hex,
                               error="this call waits for a person's approval")
        return await run(call, self._runnable(tools, ctx), ctx)

    def _needs_approval(self, tool: Tool) -> bool:
        return (HIGH_RISK in tool.tags and bool(self.untrusted)
                and not self.policy.high_risk_without_approval)

    def _runnable(self, tools: Mapping[str, Tool], ctx: TaskContext) -> dict[str, Tool]:
        """The allowed tools, external ones masking what they send."""
        return {name: self._masked(t, ctx) for name, t in tools.items()
                if self.policy.allows(t)}

    def _masked(self, tool: Tool, ctx: TaskContext) -> Tool:
        policy = self.masking
        if not tool.external or policy is None:
            return tool
        inner = tool.call

        async def call(arguments: Mapping[str, Any]) -> Any:
            # The run's vault: the placeholders the model saw mean the same values here.
            vault = await run_vault(ctx)
            masker = Masker(policy, vault=vault.vault, run_id=ctx.run_id)
            sent = {k: masker.mask_json(to_jsonable_python(v, fallback=str))
                    for k, v in arguments.items()}
            await vault.keep()  # before anything leaves, so a crash cannot lose the mapping
            result = to_jsonable_python(await inner(sent), fallback=str)
            return masker.unmask_json(result)

        return dataclasses.replace(tool, call=call)

    async def settle(self, outcomes: Sequence[ToolOutcome], tools: Mapping[str, Tool],
                     ctx: TaskContext) -> list[ToolOutcome]:
        """Replace each held call's outcome by a person's answer, as a durable step.

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
                return (await self._answer(held, tools, ctx)).to_json()

            settled.append(ToolOutcome.from_json(call, await ctx.step("tool", call.name,
                                                                        answer)))
        return settled

    async def _answer(self, held: ToolOutcome, tools: Mapping[str, Tool], ctx: TaskContext
                      ) -> ToolOutcome:
        call = held.call
        answer = ctx.approval or {}
        waited = answer.get("tool_call") or {}
        if not held.approval or waited.get("approval") != held.approval:
            shown = {"approval": held.approval, "call_id": call.id, "name": call.name,
                     "arguments": _shown(call.arguments), "untrusted": list(self.untrusted)}
            raise ApprovalRequired(self._prompt(call), shown)
        if answer.get("approved"):
            # Straight to the call: the person's answer is the authorisation.
            return await _call(call, self._runnable(tools, ctx), ctx)
        by = answer.get("by") or "a person"
        why = f": {answer['reason']}" if answer.get("reason") else ""
        outcome = ToolOutcome(call=call, error_type="ToolRefused", error=(
            f"{by} rejected this call to {call.name!r}{why}. It was not run; do not try it "
            "again, and say in your answer that it was refused."))
        await _journal_refusal(ctx, call, outcome, rejected_by=by)
        return outcome

    def _prompt(self, call: ToolCall) -> str:
        arguments = json.dumps(_shown(call.arguments), ensure_ascii=False, default=str)
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


async def _journal_refusal(ctx: TaskContext, call: ToolCall, outcome: ToolOutcome,
                           **marks: JSON) -> None:
    await ctx.record(ToolCalled(
        call_id=call.id, name=call.name, arguments=_shown(call.arguments),
        **outcome.to_json(), refused=True, reason=outcome.error, **marks,
        duration_ms=0.0,
    ))
