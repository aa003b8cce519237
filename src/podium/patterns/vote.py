"""Voting: the same task done by several agents at once, the answers combined by a rule or a
judge."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

from podium.core.agent import JSON, Agent, TaskContext, TaskInput
from podium.core.workflow import AgentRef
from podium.errors import UserError
from podium.patterns._members import (
    MemberRef,
    Members,
    Request,
    as_text,
    call,
    call_all,
    member_name,
    with_sections,
)

Rule = Literal["majority", "plurality", "unanimous"]
RULES: tuple[Rule, ...] = ("majority", "plurality", "unanimous")


def judge_schema(count: int) -> dict[str, Any]:
    """What a judge replies: the number of the candidate it chooses, and why."""
    return {"type": "object",
            "properties": {"choice": {"type": "integer", "enum": list(range(count))},
                           "reason": {"type": "string"}},
            "required": ["choice", "reason"]}


class Vote(Agent):
    """Asks every voter the same task at once, then combines their answers.

    Without a judge, `rule` decides: `majority` (an answer given by more than half of the
    voters), `plurality` (the most frequent answer; a tie goes to the voter listed first)
    or `unanimous` (every voter gave it). Answers are compared as JSON, or by one field of
    theirs when `key` names it. With a `judge`, the judge agent is asked which candidate is
    best, as structured output `{"choice": n, "reason": ...}`.

    The output is `{"answer", "status", "decided_by", "agreement", "votes"}`: `status` is
    `decided`, or `no_majority` / `disagreed` when the rule found no winner (`answer` is
    then None). Each voter's and the judge's call is a durable step: when the task runs
    again after a crash or a retry of the same attempt, answers already given are reused.

    Args:
        voters: the agents that answer (Agents, functions, or names in `registry`).
        name: this agent's name.
        rule: how answers are combined when there is no judge.
        judge: an agent that picks the best answer instead of the rule.
        key: compare answers by this field of theirs (they must be objects).
        registry: where voter and judge names are looked up (the workflow's agents).
        description: what the agent does, for routing.
        skills: what the agent can do, for routing.

    Raises:
        UserError: fewer than two voters, two voters of one name, or an unknown rule.
    """

    def __init__(self, voters: Sequence[MemberRef], *, name: str = "vote",
                 rule: Rule = "majority", judge: MemberRef | None = None,
                 key: str | None = None, registry: Mapping[str, AgentRef] | None = None,
                 description: str = "", skills: Collection[str] = ()) -> None:
        if len(voters) < 2:
            raise UserError(f"agent {name!r}: a vote needs at least two voters")
        if rule not in RULES:
            raise UserError(f"agent {name!r}: unknown rule {rule!r}; use one of "
                            f"{', '.join(map(repr, RULES))}")
        self.name, self.rule, self.key = name, rule, key
        self.description = description or f"a vote of {len(voters)} agents"
        self.skills = tuple(skills)
        self.voters = [member_name(v) for v in voters]
        self.judge = member_name(judge) if judge is not None else None
        self.members = Members(name, [*voters, *([judge] if judge is not None else [])],
                               registry)

    async def run(self, task: TaskInput, ctx: TaskContext) -> JSON:
        answers = await call_all(ctx, self.members, [
            Request(name=v, args=task.args, prompt=task.prompt) for v in self.voters])
        votes = [{"agent": v, "answer": a} for v, a in zip(self.voters, answers, strict=True)]
        if self.judge is not None:
            return await self._judged(task, ctx, votes)
        return self._counted(votes)

    def _ballot(self, answer: JSON) -> str:
        if self.key is not None:
            if not isinstance(answer, dict) or self.key not in answer:
                raise UserError(f"agent {self.name!r}: votes are compared by {self.key!r}, "
                                f"but an answer has no such field: {answer!r}")
            answer = answer[self.key]
        return json.dumps(answer, sort_keys=True, ensure_ascii=False)

    def _counted(self, votes: list[dict[str, JSON]]) -> dict[str, JSON]:
        ballots = [self._ballot(v["answer"]) for v in votes]
        counts = Counter(ballots)
        best = max(counts.values())
        # The first voter's answer among those tied for most votes wins a plurality.
        winner = next(b for b in ballots if counts[b] == best)
        needed = {"majority": len(votes) // 2 + 1, "unanimous": len(votes), "plurality": 1}
        decided = best >= needed[self.rule]
        failed = "no_majority" if self.rule == "majority" else "disagreed"
        answer = votes[ballots.index(winner)]["answer"] if decided else None
        return {"answer": answer, "status": "decided" if decided else failed,
                "decided_by": self.rule, "agreement": best, "votes": votes}

    async def _judged(self, task: TaskInput, ctx: TaskContext, votes: list[dict[str, JSON]]
                      ) -> dict[str, JSON]:
        assert self.judge is not None
        candidates = [v["answer"] for v in votes]
        listed = "\n".join(f"{i}. {c if isinstance(c, str) else json.dumps(c)}"
                           for i, c in enumerate(candidates))
        asked = task.prompt or f"The task, as given to each candidate:\n{as_text(task.args)}"
        prompt = with_sections(f"{asked}\n\nChoose the best answer to it.",
                               ("Candidates", listed),
                               ("Reply", "the number of the best candidate as choice, "
                                         "and why as reason"))
        verdict = await call(ctx, self.members, Request(
            name=self.judge, args={**task.args, "candidates": candidates}, prompt=prompt,
            output=judge_schema(len(candidates))))
        assert isinstance(verdict, dict)
        choice = int(verdict["choice"])
        return {"answer": candidates[choice], "status": "decided", "decided_by": "judge",
                "reason": verdict.get("reason"),
                "agreement": sum(1 for c in candidates if c == candidates[choice]),
                "votes": votes}

    def __repr__(self) -> str:
        return f"Vote({self.name!r}, voters={self.voters!r})"
