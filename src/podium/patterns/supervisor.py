"""Supervisor with handoffs: an agent answers, or hands the conversation to another with the
context it chooses to pass."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from podium.agents.llm import LLMAgent
from podium.core.agent import JSON, Agent, TaskContext, TaskInput
from podium.core.workflow import AgentRef
from podium.errors import TaskFailed, UserError
from podium.patterns._members import (
    MemberRef,
    Members,
    Request,
    as_text,
    call,
    check_bound,
    member_name,
)

NOBODY = "none"
"""The `handoff_to` of a reply that answers instead of handing off."""


def handoff_schema(targets: Sequence[str]) -> dict[str, Any]:
    """What a model member replies: whom to hand off to (or `none`), what to pass, and its
    answer when it hands off to nobody."""
    return {"type": "object",
            "properties": {"handoff_to": {"type": "string", "enum": [*targets, NOBODY]},
                           "context": {"type": "string"},
                           "answer": {"type": "string"}},
            "required": ["handoff_to", "context", "answer"]}


def _target(result: JSON) -> str | None:
    if isinstance(result, dict):
        to = result.get("handoff_to")
        if isinstance(to, str) and to not in ("", NOBODY):
            return to
    return None


def _answer(result: JSON) -> JSON:
    if isinstance(result, dict) and "handoff_to" in result:
        return result.get("answer")
    return result


class Supervisor(Agent):
    """The `lead` agent (the supervisor) takes the task first; each agent either answers, which ends
    the conversation, or hands it off to another member (`Handoff(to=..., context=...)`
    from a function; a model member without an output schema of its own replies with
    structured output `{"handoff_to", "context", "answer"}`, its choices listed in its
    prompt). Members may hand back to the lead.

    The agent taking over is given `{"context": ..., "from": ...}` and nothing more (a model
    member reads the context as its prompt). After `max_handoffs` handoffs, one more is
    not followed: the output then says `stopped: "max_handoffs"`.

    The output is `{"output", "agent", "stopped", "handoffs"}`: the answer, who gave it,
    `answered` or `max_handoffs`, and each handoff's from, to and context. Every member's
    turn is a durable step.

    Args:
        lead: the agent that takes the task first (the supervisor).
        agents: the agents it (and they) may hand off to.
        name: this agent's name.
        max_handoffs: handoffs followed at most.
        registry: where names are looked up (the workflow's agents).
        description: what the agent does, for routing.
        skills: what the agent can do, for routing.

    Raises:
        UserError: no agents, `max_handoffs` below 1, or two members of one name.
    """

    def __init__(self, lead: MemberRef, agents: Sequence[MemberRef], *,
                 name: str = "supervisor", max_handoffs: int = 5,
                 registry: Mapping[str, AgentRef] | None = None, description: str = "",
                 skills: Collection[str] = ()) -> None:
        if not agents:
            raise UserError(f"agent {name!r}: a supervisor needs agents to hand off to")
        self.name = name
        self.max_handoffs = check_bound(name, "max_handoffs", max_handoffs)
        self.lead = member_name(lead)
        self.members = Members(name, [lead, *agents], registry)
        self.description = description or f"{self.lead!r} and the agents it hands to"
        self.skills = tuple(skills)

    async def run(self, task: TaskInput, ctx: TaskContext) -> JSON:
        current = self.lead
        args: Mapping[str, JSON] = task.args
        prompt = task.prompt
        handoffs: list[JSON] = []
        while True:
            result = await call(ctx, self.members, self._request(current, args, prompt))
            target = _target(result)
            if target is None:
                return {"output": _answer(result), "agent": current, "stopped": "answered",
                        "handoffs": handoffs}
            if target not in self.members.refs or target == current:
                raise TaskFailed(
                    f"agent {self.name!r}: {current!r} handed off to {target!r}, which is "
                    f"not another of its agents ({', '.join(map(repr, self.members.names))})")
            context = result.get("context") if isinstance(result, dict) else None
            if len(handoffs) >= self.max_handoffs:
                return {"output": None, "agent": current, "stopped": "max_handoffs",
                        "handoffs": handoffs,
                        "unfollowed": {"from": current, "to": target, "context": context}}
            handoffs.append({"from": current, "to": target, "context": context})
            args, prompt, current = {"context": context, "from": current}, None, target
            if task.prompt is not None or isinstance(context, str):
                prompt = as_text(context)

    def _request(self, name: str, args: Mapping[str, JSON], prompt: str | None) -> Request:
        agent = self.members.agent(name)
        if not isinstance(agent, LLMAgent) or agent.output is not None:
            return Request(name=name, args=args, prompt=prompt)
        others = [n for n in self.members.names if n != name]
        listed = "\n".join(f"- {n}: {self.members.description(n)}" for n in others)
        asked = prompt if prompt is not None else as_text(dict(args))
        return Request(
            name=name, args=args, output=handoff_schema(others),
            prompt=f"{asked}\n\nYou may hand this conversation to one of these agents:\n"
                   f"{listed}\nTo hand it off, set handoff_to to its name and put in context "
                   f"everything it needs to know. To answer yourself, set handoff_to to "
                   f"{NOBODY!r} and write your answer in answer.")

    def __repr__(self) -> str:
        return f"Supervisor({self.name!r}, {self.members.names!r})"
