"""Constructed plans: the model chooses skills, Podium builds the tasks.

A small model cannot be trusted to write ids, `needs` and `with:` values, so in this form
it writes none. Podium lists the skills in an order in which each comes after the skills
whose outputs it uses (an agent's `provides` names its output; a function parameter of
that name reads it), and the model answers, under a grammar, one boolean per listed
skill: `{"extract_transactions": true, "send_report": false, ...}`. It can name no skill
that does not exist, repeat none, and order none wrongly. Podium then builds each chosen
skill's task in the listed order:

- its id is the name its agent `provides` (else the skill's), made fresh;
- each required parameter of each function agent with the skill is bound to the nearest
  chosen task above it that provides that name (a need, and a `with:` template when the
  ids differ), else to the run input of that name;
- a parameter that no agent provides and no input supplies is a person's answer: the
  `human` skill is listed before its first user and provides it;
- a task whose agents take no parameters (a person, a model agent) needs the task above
  it, and is asked about the goal and that task's output;
- a skill not chosen that is the only one above a chosen skill giving a parameter it
  uses is added (its description says why): choosing `send_report` brings the report and
  the person's approval it needs.

A parameter that nothing above supplies, or that several skills give none of which was
chosen, is a problem naming the step, the agent, the parameter and the skills that would
supply it; the plan then goes back to the model with those reasons, and is checked by
`plan_problems` like any plan.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, RootModel, ValidationError

from podium.core.function import FunctionAgent
from podium.core.workflow import HUMAN, Workflow
from podium.models.base import Message

__all__ = ["Listed", "build", "choice_schema", "listing", "messages", "parse_choices"]

_CONTEXT = frozenset({"ctx", "item", "index", "prompt", "memories"})
_PERSON = "approve"
"""What a person's step provides when no parameter asks for a person by another name."""

SYSTEM = """\
You plan work for a team of agents. The skills are listed in the order they would run; \
each can use the results of the skills above it. Choose the skills the goal needs: true \
to use a skill, false to leave it out. Reply with JSON only, for example:
{"read_data": true, "check_data": true, "translate": false, "publish": true}"""


@dataclass(frozen=True, kw_only=True)
class Listed:
    """One skill as the model is offered it."""

    skill: str
    gives: str
    """The name its output goes by (the id its task gets, made fresh)."""
    uses: tuple[str, ...]
    """Required parameters of its function agents that no context value fills."""
    agents: tuple[str, ...]
    what: str


def _function_agents(workflow: Workflow, skill: str) -> list[tuple[str, FunctionAgent]]:
    return [(name, ref) for name, ref in workflow.agents.items()
            if isinstance(ref, FunctionAgent) and skill in ref.skills]


def _safe_id(text: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in text).strip("_")
    return cleaned if cleaned[:1].isalpha() else f"step_{cleaned}"


def listing(workflow: Workflow, inputs: Collection[str], done: Collection[str] = ()
            ) -> list[Listed]:
    """The skills the model may choose, each after the skills whose outputs it uses.

    `done` holds the ids of tasks the run keeps (their outputs are there already): a skill
    whose output is among them is not offered again.
    """
    offered: dict[str, Listed] = {}
    for name, ref in workflow.agents.items():
        for skill in getattr(ref, "skills", ()) or ():
            if skill in offered or skill == HUMAN:
                continue
            fns = _function_agents(workflow, skill)
            uses = tuple(dict.fromkeys(p for _, fn in fns for p in fn.missing(_CONTEXT)))
            provides = getattr(ref, "provides", None)
            offered[skill] = Listed(
                skill=skill, gives=_safe_id(provides or skill), uses=uses,
                agents=tuple(n for n, r in workflow.agents.items()
                             if skill in (getattr(r, "skills", ()) or ())),
                what=str(getattr(ref, "description", "") or name))
    offered = {s: e for s, e in offered.items() if e.gives not in done}
    given = {e.gives for e in offered.values()} | set(done) | set(inputs)
    asked = [p for e in offered.values() for p in e.uses if p not in given]
    offered[HUMAN] = Listed(skill=HUMAN, gives=asked[0] if asked else _PERSON, uses=(),
                            agents=(), what="A person approves or answers.")
    return _ordered(list(offered.values()), set(asked))


def _ordered(entries: list[Listed], asked: set[str]) -> list[Listed]:
    """`entries` in an order where each comes after those giving what it uses (Kahn's,
    in declaration order); a person as late as what uses them allows."""
    givers: dict[str, list[str]] = {}
    for e in entries:
        givers.setdefault(e.gives, []).append(e.skill)
        if e.skill == HUMAN:
            for name in asked:
                givers.setdefault(name, []).append(HUMAN)
    after = {e.skill: {g for p in e.uses for g in givers.get(p, ()) if g != e.skill}
             for e in entries}
    placed: list[Listed] = []
    left = list(entries)
    while left:
        ready = [e for e in left if not after[e.skill] - {p.skill for p in placed}]
        if not ready:  # a cycle: list the rest as declared; binding names what is missing
            placed += left
            break
        pick = next((e for e in ready if e.skill != HUMAN), ready[0])
        placed.append(pick)
        left.remove(pick)
    return placed


def choice_schema(listed: list[Listed]) -> dict[str, Any]:
    """One required boolean per listed skill, in the listed order."""
    return {"type": "object",
            "properties": {e.skill: {"type": "boolean"} for e in listed},
            "required": [e.skill for e in listed], "additionalProperties": False}


def messages(goal: str, listed: list[Listed], inputs: Mapping[str, Any], *,
             instructions: str = "", done: Collection[str] = (),
             failed: Mapping[str, str] | None = None) -> list[Message]:
    """The conversation that asks which skills to use."""
    system = SYSTEM + (f"\n\n{instructions.strip()}" if instructions else "")
    lines = []
    for e in listed:
        line = f"- {e.skill}: {e.what.strip()}"
        if e.uses:
            line += f" Uses: {', '.join(e.uses)}."
        lines.append(line + f" Gives: {e.gives}.")
    user = [f"Goal: {goal}", "", "Run inputs: " + (", ".join(inputs) or "none"), "",
            "Skills:", *lines]
    if done:
        user += ["", "The run has already (their results can be used): " + ", ".join(done)]
    if failed:
        user += ["Failed (choose skills that do it another way):",
                 *(f"- {tid}: {error}" for tid, error in failed.items())]
    return [Message(role="system", content=system),
            Message(role="user", content="\n".join(user))]


class _Choices(RootModel[dict[str, bool]]):
    model_config = ConfigDict(strict=True)


def parse_choices(text: str, listed: list[Listed]) -> tuple[list[Listed], list[str]]:
    """The chosen skills, in the listed order, or the reasons the reply is no choice."""
    try:
        choices = _Choices.model_validate_json(text).root
    except ValidationError as e:
        if any(err["type"] == "json_invalid" for err in e.errors()):
            return [], [f"the reply is not JSON: {text[:120]!r}"]
        return [], ["the reply does not fit the plan's schema: an object of true or "
                    "false per skill"]
    skills = [e.skill for e in listed]
    unknown = sorted(set(choices) - set(skills))
    missing = [s for s in skills if s not in choices]
    problems = []
    if unknown:
        problems.append(f"the reply names skills that are not listed: {unknown}")
    if missing:
        problems.append(f"the reply says nothing of skills {missing}; answer each")
    return [e for e in listed if choices.get(e.skill)], problems


def build(chosen: list[Listed], listed: list[Listed], workflow: Workflow, goal: str,
          inputs: Collection[str], done: Collection[str] = ()
          ) -> tuple[list[dict[str, Any]], list[str]]:
    """The planned tasks (as `PlannedTask` data) of the chosen skills, their needs and
    arguments bound, or the reasons some cannot be bound."""
    where: dict[str, str] = {tid: tid for tid in done}
    taken = set(workflow.tasks) | {"plan"}
    tasks: list[dict[str, Any]] = []
    problems: list[str] = []
    person = next(e for e in listed if e.skill == HUMAN)
    asked = _asked(listed, inputs)
    added = _providers(chosen, listed, set(inputs) | set(done), asked)
    chosen = [e for e in listed if e in chosen or e.skill in added]
    for number, entry in enumerate(chosen, start=1):
        tid = _fresh(entry.gives, taken)
        taken.add(tid)
        task: dict[str, Any] = {"id": tid, "skill": entry.skill, "needs": [], "with": {}}
        if entry.skill in added:
            task["description"] = f"{entry.skill}: {tid} (added: {added[entry.skill]})"
        previous = tasks[-1]["id"] if tasks else None
        fns = _function_agents(workflow, entry.skill)
        if not fns:
            task["needs"] = [previous] if previous else []
            task["prompt"] = _prompt(goal, entry, previous)
        for agent, fn in fns:
            for param in fn.missing(_CONTEXT):
                source = where.get(param)
                if source is None:
                    if param not in inputs:
                        problems.append(_unbound(number, entry, agent, param, listed,
                                                 person, asked))
                    continue
                if source not in task["needs"]:
                    task["needs"].append(source)
                if source != param:
                    task["with"][param] = f"{{{{ outputs.{source} }}}}"
        tasks.append(task)
        where[entry.gives] = tid
        if entry.skill == HUMAN:
            for param in asked:
                where.setdefault(param, tid)
    return tasks, problems


def _providers(chosen: list[Listed], listed: list[Listed], present: set[str],
               asked: Collection[str]) -> dict[str, str]:
    """Skills not chosen that a chosen one needs, each the only skill above it that gives
    a parameter it uses, with why; to a fixpoint. A parameter with several givers, or
    none, stays unbound (and is refused with reasons)."""
    included = {e.skill for e in chosen}
    added: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for i, entry in enumerate(listed):
            if entry.skill not in included:
                continue
            for param in entry.uses:
                if param in present:
                    continue
                above = listed[:i]
                givers = [e for e in above if e.gives == param and e.skill != HUMAN] or [
                    e for e in above if e.skill == HUMAN and param in asked]
                if any(g.skill in included for g in givers) or len(givers) != 1:
                    continue
                included.add(givers[0].skill)
                added[givers[0].skill] = f"{entry.skill!r} uses its {param!r}"
                changed = True
    return added


def _asked(listed: list[Listed], inputs: Collection[str]) -> list[str]:
    given = {e.gives for e in listed if e.skill != HUMAN} | set(inputs)
    return [p for e in listed for p in e.uses if p not in given]


def _fresh(name: str, taken: Collection[str]) -> str:
    if name not in taken:
        return name
    n = 2
    while f"{name}_{n}" in taken:
        n += 1
    return f"{name}_{n}"


def _prompt(goal: str, entry: Listed, previous: str | None) -> str:
    # The goal is text already rendered: it must not be read as a template again.
    text = f"{{% raw %}}{goal}{{% endraw %}}"
    if entry.skill == HUMAN:
        what = f" the output of {previous!r}" if previous else " the plan"
        return f"For this goal: {text}\nApprove{what}?"
    if previous is None:
        return text
    return f"{text}\n\nInput: {{{{ outputs.{previous} | tojson }}}}"


def _unbound(number: int, entry: Listed, agent: str, param: str, listed: list[Listed],
             person: Listed, asked: Collection[str]) -> str:
    givers = [e.skill for e in listed if e.gives == param and e.skill != HUMAN]
    if not givers and param in asked:
        givers = [person.skill]
    head = (f"step {number} ({entry.skill!r}): agent {agent!r} needs {param!r}, which no "
            "chosen skill above it gives and no run input supplies")
    if givers:
        return head + f"; choose {', '.join(map(repr, givers))} (it gives {param!r})"
    return head + (f"; no skill gives it: declare `provides: {param}` on the agent that "
                   f"makes it, or add a run input {param!r}")
