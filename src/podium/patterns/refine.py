"""Evaluator-optimizer: a generator drafts, an evaluator judges, until it accepts or the
rounds run out."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from podium.core.agent import JSON, Agent, TaskContext, TaskInput
from podium.core.workflow import AgentRef
from podium.patterns._members import (
    MemberRef,
    Members,
    Request,
    call,
    check_bound,
    member_name,
    with_sections,
)

VERDICT: dict[str, Any] = {
    "type": "object",
    "properties": {"accept": {"type": "boolean"}, "feedback": {"type": "string"}},
    "required": ["accept", "feedback"],
}
"""What an evaluator replies: whether it accepts the draft, and what to change if not."""


class Refine(Agent):
    """A generator and an evaluator take turns until the evaluator accepts a draft, at most
    `max_rounds` times.

    Round n asks the generator for a draft, given the task's arguments and, from round 2,
    the last `draft` and the evaluator's `feedback` on it (a function generator takes
    them as parameters; a model reads them in its prompt). The evaluator is given the
    `draft` and replies with structured output `{"accept": bool, "feedback": str}`.

    The output is `{"output", "accepted", "rounds", "stopped", "feedback", "history"}`:
    `stopped` is `accepted`, or `max_rounds` when the last round's draft was still
    rejected (that draft is the `output`). Every draft and verdict is a durable step, so a
    task resumed after a crash does not ask for them again.

    Args:
        generator: the agent that drafts (an Agent, a function, or a name in `registry`).
        evaluator: the agent that judges each draft.
        name: this agent's name.
        max_rounds: drafts at most.
        registry: where names are looked up (the workflow's agents).
        description: what the agent does, for routing.
        skills: what the agent can do, for routing.

    Raises:
        UserError: `max_rounds` below 1, or generator and evaluator of one name.
    """

    def __init__(self, generator: MemberRef, evaluator: MemberRef, *, name: str = "refine",
                 max_rounds: int = 3, registry: Mapping[str, AgentRef] | None = None,
                 description: str = "", skills: Collection[str] = ()) -> None:
        self.name = name
        self.max_rounds = check_bound(name, "max_rounds", max_rounds)
        self.generator, self.evaluator = member_name(generator), member_name(evaluator)
        self.members = Members(name, [generator, evaluator], registry)
        self.description = description or (
            f"{self.generator!r} drafts until {self.evaluator!r} accepts")
        self.skills = tuple(skills)

    async def run(self, task: TaskInput, ctx: TaskContext) -> JSON:
        draft: JSON = None
        feedback: str | None = None
        history: list[JSON] = []
        for round_ in range(1, self.max_rounds + 1):
            draft = await call(ctx, self.members, Request(
                name=self.generator,
                args={**task.args, "draft": draft, "feedback": feedback, "round": round_},
                prompt=with_sections(task.prompt, ("Your previous draft", draft),
                                     ("Feedback on it, to address", feedback))))
            verdict = await call(ctx, self.members, Request(
                name=self.evaluator, args={**task.args, "draft": draft, "round": round_},
                prompt=with_sections(
                    task.prompt or "Evaluate this draft.", ("Draft to evaluate", draft),
                    ("Reply", "accept: true when the draft is good enough; otherwise "
                              "false, and in feedback what to change")),
                output=VERDICT))
            assert isinstance(verdict, dict)
            feedback = str(verdict.get("feedback") or "")
            history.append({"round": round_, "draft": draft, "verdict": verdict})
            if verdict["accept"]:
                return self._result(draft, True, round_, feedback, history)
        return self._result(draft, False, self.max_rounds, feedback, history)

    @staticmethod
    def _result(draft: JSON, accepted: bool, rounds: int, feedback: str | None,
                history: list[JSON]) -> dict[str, JSON]:
        return {"output": draft, "accepted": accepted, "rounds": rounds,
                "stopped": "accepted" if accepted else "max_rounds", "feedback": feedback,
                "history": history}

    def __repr__(self) -> str:
        return f"Refine({self.name!r}, {self.generator!r}, {self.evaluator!r})"
