"""Group discussion: agents take turns on a shared thread, chosen in turn or by a model,
until a termination condition or the turn limit."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from podium.core.agent import JSON, Agent, TaskContext, TaskInput
from podium.core.workflow import AgentRef
from podium.errors import UserError
from podium.patterns._members import (
    MemberRef,
    Members,
    Request,
    as_text,
    call,
    check_bound,
    member_name,
    with_sections,
)

ROUND_ROBIN = "round_robin"
FINISH = "finish"
"""What a speaker selector answers to end the discussion."""
Thread = Sequence[Mapping[str, JSON]]
Until = str | Callable[[Thread], bool]
"""When the discussion is over: a message containing this text, or a predicate of the
thread."""


def speaker_schema(names: Sequence[str]) -> dict[str, Any]:
    """What a speaker selector replies: who speaks next, or `finish`."""
    return {"type": "object",
            "properties": {"speaker": {"type": "string", "enum": [*names, FINISH]}},
            "required": ["speaker"]}


def transcript(thread: Thread) -> str:
    """The thread as a model reads it: one `speaker: message` paragraph per turn."""
    return "\n\n".join(f"{turn['speaker']}: {message_text(turn['message'])}"
                       for turn in thread)


def message_text(message: JSON) -> str:
    """A turn's text: the message, or its `message` field when it is an object."""
    text = message.get("message") if isinstance(message, dict) else None
    return text if isinstance(text, str) else as_text(message)


class Discussion(Agent):
    """Several agents take turns on one thread until it is over.

    Each turn one member speaks: in the order listed (`speaker="round_robin"`), or as a
    selector agent chooses with structured output `{"speaker": name}` (it may answer
    `finish` to end the discussion). The speaker is given the task's arguments with the
    `thread` so far (a list of `{"speaker", "message"}`) and `turn`; a model speaker
    reads the transcript in its prompt. The discussion ends when a message contains the
    `until` text (or `until(thread)` is true), when the selector says `finish`, or after
    `max_turns` turns.

    The output is `{"thread", "turns", "stopped", "last"}`, `stopped` being `until`,
    `finish` or `max_turns`. Every turn (and every selection) is a durable step.

    Args:
        members: the agents that speak (Agents, functions, or names in `registry`).
        name: this agent's name.
        speaker: `round_robin`, or the agent that chooses each speaker.
        max_turns: turns at most.
        until: the termination condition, besides the turn limit.
        registry: where names are looked up (the workflow's agents).
        description: what the agent does, for routing.
        skills: what the agent can do, for routing.

    Raises:
        UserError: fewer than two members, `max_turns` below 1, or two of one name.
    """

    def __init__(self, members: Sequence[MemberRef], *, name: str = "discussion",
                 speaker: MemberRef = ROUND_ROBIN, max_turns: int = 6,
                 until: Until | None = None, registry: Mapping[str, AgentRef] | None = None,
                 description: str = "", skills: Collection[str] = ()) -> None:
        if len(members) < 2:
            raise UserError(f"agent {name!r}: a discussion needs at least two members")
        self.name = name
        self.max_turns = check_bound(name, "max_turns", max_turns)
        self.speakers = [member_name(m) for m in members]
        self.selector = None if speaker == ROUND_ROBIN else member_name(speaker)
        if self.selector in self.speakers:
            raise UserError(f"agent {name!r}: the speaker selector {self.selector!r} cannot "
                            "also be a member")
        self.until = until
        self.members = Members(name, [*members, *([speaker] if self.selector else [])],
                               registry)
        self.description = description or f"a discussion among {', '.join(self.speakers)}"
        self.skills = tuple(skills)

    async def run(self, task: TaskInput, ctx: TaskContext) -> JSON:
        thread: list[JSON] = []
        for turn in range(self.max_turns):
            who = await self._next(task, ctx, thread, turn)
            if who is None:
                return self._result(thread, FINISH)
            message = await call(ctx, self.members, Request(
                name=who, args={**task.args, "thread": thread, "turn": turn},
                prompt=with_sections(task.prompt, ("The discussion so far",
                                                   transcript(thread) or None),
                                     ("Your turn", f"you are {who}"))))
            thread.append({"speaker": who, "message": message})
            if self._over(thread):
                return self._result(thread, "until")
        return self._result(thread, "max_turns")

    async def _next(self, task: TaskInput, ctx: TaskContext, thread: list[JSON], turn: int
                    ) -> str | None:
        if self.selector is None:
            return self.speakers[turn % len(self.speakers)]
        listed = "\n".join(f"- {n}: {self.members.description(n)}" for n in self.speakers)
        asked = task.prompt or as_text(dict(task.args))
        choice = await call(ctx, self.members, Request(
            name=self.selector, args={**task.args, "thread": thread, "turn": turn,
                                      "members": self.speakers},
            prompt=with_sections(asked, ("Participants", listed),
                                 ("The discussion so far", transcript(thread) or "(nothing)"),
                                 ("Reply", f"who speaks next as speaker, or {FINISH!r} "
                                           "when the discussion has reached its goal")),
            output=speaker_schema(self.speakers)))
        assert isinstance(choice, dict)
        speaker = str(choice["speaker"])
        return None if speaker == FINISH else speaker

    def _over(self, thread: list[JSON]) -> bool:
        if self.until is None:
            return False
        if isinstance(self.until, str):
            last = thread[-1]
            assert isinstance(last, dict)
            return self.until in message_text(last["message"])
        return bool(self.until(thread))

    @staticmethod
    def _result(thread: list[JSON], stopped: str) -> dict[str, JSON]:
        last = thread[-1] if thread else None
        return {"thread": thread, "turns": len(thread), "stopped": stopped, "last": last}

    def __repr__(self) -> str:
        return f"Discussion({self.name!r}, {self.speakers!r})"
