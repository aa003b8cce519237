"""Plans: a goal that a planner model turns into tasks, checked before anything runs.

A workflow may give a `goal` (a template over its inputs) with a `PlannerConfig`. The
engine's planner (`podium.engine.planner`) asks the model for a plan, checks it, journals
it as `plan_created` and adds its tasks to the run. Here are the parts that need no I/O:
the configuration, the journal's form of a planned task, and checking the goal template.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from podium.core.templates import TemplateProblem, references

PLAN_KEY = "plan"
"""The key of the planning step in a run's tasks: its model calls, its approval."""
SUBTASKS_KEY = "podium_subtasks"
"""The key of an output that adds tasks to its run (see `podium.engine.planner.subtasks`)."""


@dataclass(frozen=True, kw_only=True)
class PlannerConfig:
    """How a workflow's goal becomes a plan."""

    model: Any
    """A `podium.models.Model`, or a callable without arguments returning one (called on
    first use, so that a workflow can be loaded without loading its model)."""
    max_tasks: int = 8
    """The most tasks a plan may hold, subtasks added during the run included."""
    max_repairs: int = 2
    """How often a plan that fails its check goes back to the model with the reasons."""
    max_replans: int = 1
    """How often a new plan is asked for when a planned task fails beyond its policy."""
    approve_plan: bool = False
    """Whether a person approves the first plan (`podium approve RUN plan`) before it runs."""
    temperature: float | None = 0.0
    """The model's sampling temperature; None for the provider's default."""
    max_tokens: int | None = 1024
    """The bound on the length of the model's reply."""
    instructions: str = ""
    """Extra guidance added to the planner's system message."""
    form: Literal["auto", "constructed", "free"] = "auto"
    """How the model writes a plan. `constructed`: it only chooses skills, under a grammar,
    and Podium builds the tasks, binding needs and arguments (what small local models can
    do); `free`: it writes every task, ids, needs and `with:` values (what larger models
    can do, and the only way to give literal arguments or prompts). `auto`: constructed
    for a local model, free for any other."""

    def problems(self) -> list[tuple[str, str]]:
        """`(field, message)` for each bound that makes no sense."""
        found = []
        if self.max_tasks < 1:
            found.append(("planner.max_tasks", "must be at least 1"))
        for name in ("max_repairs", "max_replans"):
            if getattr(self, name) < 0:
                found.append((f"planner.{name}", "must be 0 or more"))
        return found


def goal_problems(goal: str, inputs: Mapping[str, Any]) -> list[str]:
    """What is wrong with a goal template: it may read the run's inputs, as `inputs.NAME`
    or plainly `NAME`, and nothing else."""
    try:
        refs = list(references(goal))
    except TemplateProblem as e:
        return [str(e)]
    found = []
    declared = ", ".join(repr(i) for i in sorted(inputs)) or "none"
    for ref in refs:
        if ref.root == "inputs":
            if ref.attr is not None and ref.attr not in inputs:
                found.append(f"unknown input {ref.attr!r}; declared inputs: {declared}")
        elif ref.root not in inputs:
            found.append(f"unknown name {ref.root!r}; a goal can use the inputs "
                         f"({declared}), plainly or as inputs.NAME")
    return found


def goal_scope(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What a goal template is rendered with: each input by name, and `inputs`."""
    return {**inputs, "inputs": inputs}
