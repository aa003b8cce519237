"""What the planner tells its model: the goal, the skills, the rules of a plan."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from podium.core.function import FunctionAgent
from podium.core.plan import PLAN_KEY
from podium.core.workflow import Workflow
from podium.models.base import Message

_SUMMARY_CHARS = 240
"""How much of a completed task's output a replan shows the model."""

SYSTEM = """\
You plan work for a team of agents. Break the goal into a few tasks; each task is done by \
an agent with the skill it names. Reply with JSON only, of this shape:
{"tasks": [{"id": "step_one", "skill": "a_skill", "needs": [], "with": {}}, \
{"id": "step_two", "skill": "another_skill", "needs": ["step_one"], "with": {}}]}
Rules:
- id: a short unique name of letters, digits and _.
- skill: exactly one of the skills listed.
- needs: ids of the tasks that must finish first. No cycles.
- with: the agent's arguments. A value is literal, or "{{ inputs.NAME }}" for a run input, \
or "{{ outputs.ID }}" for the output of a task listed in needs.
- A parameter is also filled by the output of a task in needs whose id is the parameter's \
name, or by the run input of that name.
- prompt (optional): what to ask an agent that writes text.
"""


def _summary(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _SUMMARY_CHARS else text[:_SUMMARY_CHARS - 1] + "…"


def _skill_lines(workflow: Workflow) -> list[str]:
    lines = []
    for name, ref in workflow.agents.items():
        skills = [str(s) for s in getattr(ref, "skills", ()) or ()]
        if not skills:
            continue
        what = getattr(ref, "description", "") or ""
        if isinstance(ref, FunctionAgent):
            params = ref.missing(())
            what += f" Parameters: {', '.join(params)}." if params else " No parameters."
        else:
            what += " Give it a prompt."
        for skill in skills:
            lines.append(f"- {skill} (agent {name}): {what.strip()}")
    lines.append("- human: a person approves or answers; give it a prompt.")
    return lines


def planner_messages(goal: str, kept: Workflow, inputs: Mapping[str, Any], *,
                     max_tasks: int, completed: Mapping[str, Any],
                     failed: Mapping[str, str], instructions: str = "") -> list[Message]:
    """The conversation that asks for a plan (or, with `failed`, a replan)."""
    system = SYSTEM + f"- At most {max(1, max_tasks)} tasks.\n"
    if instructions:
        system += f"\n{instructions.strip()}\n"
    user = [f"Goal: {goal}", "",
            "Run inputs: " + (", ".join(f"{k} = {_summary(v)}" for k, v in inputs.items())
                              or "none"),
            "", "Skills:", *_skill_lines(kept)]
    existing = [t for t in kept.tasks if t != PLAN_KEY]
    if existing and not failed:
        user += ["", "Tasks the run already has (list them in needs to use their outputs; "
                 "do not reuse their ids): " + ", ".join(existing)]
    if failed:
        user += ["", "Part of an earlier plan is done; plan only the remaining work.",
                 "Done (do not plan again; list in needs to use their outputs):"]
        user += [f"- {tid}: output {_summary(out)}" for tid, out in completed.items()] or [
            "- nothing"]
        user += ["Failed (plan another way to do it; you may reuse the id):"]
        user += [f"- {tid}: {error}" for tid, error in failed.items()]
    return [Message(role="system", content=system),
            Message(role="user", content="\n".join(user))]


def repair_message(problems: list[str]) -> str:
    """What a plan that failed its check is sent back with."""
    listed = "\n".join(f"- {p}" for p in problems)
    return (f"That plan fails its check:\n{listed}\n"
            "Reply with the whole corrected plan, as JSON of the same shape.")
