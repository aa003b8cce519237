"""The sub-agents of a composite agent: how they are named, found, and called durably.

Every call of a sub-agent is one durable step of the composite's task
(`TaskContext.nested_step`, kind `agent`, named after the sub-agent): `podium runs show`
lists it, and after a crash a call that completed is replayed from the journal instead of
being made again, while the sub-agent's own steps (model turns, tool calls) inside an
interrupted call are replayed too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podium.core.agent import JSON, Agent, TaskContext, TaskInput
from podium.core.output import schema_of, validate
from podium.core.workflow import AgentRef
from podium.errors import UserError
from podium.patterns._handoff import Handoff

MemberRef = Agent | Callable[..., Any] | str
"""A sub-agent: an Agent, a function (a function agent), or the name of an agent of the
workflow (looked up in the composite's `registry` when the run needs it)."""


def member_name(ref: MemberRef) -> str:
    """The name a sub-agent is journaled under."""
    if isinstance(ref, str):
        return ref
    if isinstance(ref, Agent):
        return ref.name
    return str(getattr(ref, "__name__", "function"))


class Members:
    """The sub-agents of one composite, by name, resolved when first used."""

    def __init__(self, owner: str, refs: Sequence[MemberRef],
                 registry: Mapping[str, AgentRef] | None) -> None:
        self.owner = owner
        self.refs = {member_name(r): r for r in refs}
        if len(self.refs) != len(refs):
            names = [member_name(r) for r in refs]
            twice = sorted({n for n in names if names.count(n) > 1})
            raise UserError(f"agent {owner!r}: sub-agent names must be unique; "
                            f"{', '.join(map(repr, twice))} appear more than once")
        self.registry = registry
        self._agents: dict[str, Agent] = {}

    @property
    def names(self) -> list[str]:
        return list(self.refs)

    def agent(self, name: str) -> Agent:
        """The sub-agent called `name`.

        Raises:
            UserError: a name that the registry does not hold.
        """
        found = self._agents.get(name)
        if found is not None:
            return found
        from podium.core.check import as_agent

        ref = self.refs[name]
        if isinstance(ref, str):
            if self.registry is None or ref not in self.registry:
                known = ", ".join(map(repr, sorted(self.registry or {}))) or "none"
                raise UserError(f"agent {self.owner!r}: no agent named {ref!r} for it to "
                                f"call; known agents: {known}")
            ref = self.registry[ref]
        found = self._agents[name] = as_agent(name, ref)
        return found

    def description(self, name: str) -> str:
        """What the sub-agent says it does, or its name."""
        return self.agent(name).description or name


@dataclass(frozen=True, kw_only=True)
class Request:
    """One call of a sub-agent: what it is asked."""

    name: str
    args: Mapping[str, JSON]
    prompt: str | None = None
    output: Any = None
    """The output spec the call's result must fit; None: the sub-agent's own."""


async def call(ctx: TaskContext, members: Members, request: Request,
               *, after: asyncio.Event | None = None) -> JSON:
    """Call a sub-agent as a durable step of `ctx`'s task, and return its checked output.

    `after`, when given, is awaited before the result is journaled, so that calls made at
    the same time are journaled in the order they were asked for (their steps are
    replayed by position).

    Raises:
        OutputInvalid: the result does not fit the output spec.
    """
    agent = members.agent(request.name)
    spec = request.output if request.output is not None else getattr(agent, "output", None)
    task = TaskInput(args=dict(request.args), prompt=request.prompt,
                     output_schema=schema_of(spec), output=spec, untrusted=ctx.untrusted)

    async def body(inner: TaskContext) -> JSON:
        result = await agent.run(task, inner)
        if isinstance(result, Handoff):
            result = result.to_json()
        checked = validate(spec, result)
        if after is not None:
            await after.wait()
        return checked

    return await ctx.nested_step("agent", request.name, body)


async def call_all(ctx: TaskContext, members: Members, requests: Sequence[Request]
                   ) -> list[JSON]:
    """Call several sub-agents at once; their results in the order asked.

    Raises:
        BaseException: what the first failing call raised; the others are cancelled.
    """
    journaled = [asyncio.Event() for _ in requests]

    async def one(position: int, request: Request) -> JSON:
        try:
            return await call(ctx, members, request,
                              after=journaled[position - 1] if position else None)
        finally:
            journaled[position].set()

    try:
        async with asyncio.TaskGroup() as group:
            running = [group.create_task(one(n, r)) for n, r in enumerate(requests)]
    except BaseExceptionGroup as group_error:
        if len(group_error.exceptions) == 1:
            raise group_error.exceptions[0] from None
        raise
    return [task.result() for task in running]


def as_text(value: JSON) -> str:
    """A value as a model reads it: text as is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str)


def with_sections(prompt: str | None, *sections: tuple[str, JSON]) -> str | None:
    """The task's prompt followed by titled sections, for sub-agents that read prompts;
    None when the task has no prompt (a model then reads the arguments as JSON)."""
    if prompt is None:
        return None
    parts = [prompt.rstrip()]
    parts += [f"{title}:\n{as_text(value)}" for title, value in sections if value is not None]
    return "\n\n".join(parts)


def check_bound(owner: str, name: str, value: int, least: int = 1) -> int:
    """`value`, or a UserError when it is below `least`."""
    if value < least:
        raise UserError(f"agent {owner!r}: {name} must be at least {least}, got {value!r}")
    return value
