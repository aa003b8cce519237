"""The planner: a goal becomes a plan, checked before anything runs.

A workflow with a `goal:` and a `planner:` asks the planner's model for a plan, a list of
`PlannedTask`s in structured output (each names a skill, the tasks it needs, its `with:`
values and an optional prompt). Before anything runs the plan is checked
(`plan_problems`): every skill is some agent's, ids are fresh, the tasks form no cycle,
every template reads only run inputs and the outputs of tasks upstream of it, every
parameter of a function agent is supplied, and the plan is within `max_tasks`. A planned
task names a skill, not an agent: the router (`podium.engine.router`) chooses among the
agents with that skill when it starts. A plan
that fails goes back to the model with the reasons, up to `max_repairs` times.

An agent may add tasks to its run by returning `subtasks(...)`: they are checked the same
way and join the run's plan. The engine's side of all this is `podium.engine._planning`.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from podium.core.function import FunctionAgent
from podium.core.plan import PLAN_KEY, SUBTASKS_KEY, PlannerConfig
from podium.core.workflow import HUMAN, Task, Workflow
from podium.engine._plan_prompt import planner_messages, repair_message
from podium.errors import ModelError, UserError
from podium.models.base import Message, Model, ModelResponse

__all__ = [
    "PlanOutcome",
    "PlannedTask",
    "Planner",
    "plan_problems",
    "plan_schema",
    "planned_task",
    "planned_workflow",
    "skills_of",
    "subtasks",
]

_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class PlannedTask(BaseModel):
    """One task of a plan, as the planner's model (or an agent's `subtasks`) writes it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    id: str
    """A fresh task id: letters, digits and `_`, starting with a letter."""
    skill: str
    """The skill it requires; an agent with that skill does it (`human` for a person)."""
    needs: list[str] = []
    """Ids of the tasks that must finish first; their outputs are then readable."""
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    """The agent's arguments: literal values, or templates such as `{{ inputs.month }}`
    and `{{ outputs.extract }}` (of a task in `needs`)."""
    prompt: str | None = None
    """A template rendered into a model agent's prompt (or a person's question)."""
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        """The task as the journal keeps it."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)


class _PlanReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: list[PlannedTask]


def subtasks(tasks: Iterable[PlannedTask | Mapping[str, Any]], /, **output: Any
             ) -> dict[str, Any]:
    """An output that adds tasks to the run: return it from an agent.

    The output is `output`'s keywords plus a `podium_subtasks` list (which stays in the
    journaled output). Once the task completes, the subtasks are checked like a plan (see
    `plan_problems`) and join the run; they may need the task itself to read its output.
    When they fail the check, the task fails, naming every problem.

    Example:
        ```python
        def split(ctx: TaskContext) -> dict[str, Any]:
            return subtasks([{"id": "part_1", "skill": "summarise", "needs": ["split"],
                              "with": {"text": "{{ outputs.split.parts[0] }}"}}],
                            parts=["…"])
        ```

    Raises:
        UserError: a task is not shaped like a `PlannedTask`.
    """
    listed = []
    for i, task in enumerate(tasks):
        try:
            planned = task if isinstance(task, PlannedTask) else PlannedTask.model_validate(task)
        except ValidationError as e:
            raise UserError(f"subtask {i}: {_validation_reasons(e)}") from None
        listed.append(planned.to_json())
    return {**output, SUBTASKS_KEY: listed}


# -- skills and agents ---------------------------------------------------------------------


def skills_of(workflow: Workflow) -> dict[str, list[str]]:
    """Each skill the workflow's agents declare, with the agents that have it."""
    found: dict[str, list[str]] = {}
    for name, ref in workflow.agents.items():
        for skill in getattr(ref, "skills", ()) or ():
            found.setdefault(str(skill), []).append(name)
    return found


def planned_task(task: PlannedTask) -> Task:
    """The workflow task a planned task becomes: the router chooses its agent among those
    with its skill when it first starts (`podium.engine.router`); `human` waits for a
    person."""
    if task.skill == HUMAN:
        return Task(id=task.id, agent=HUMAN, needs=tuple(task.needs), args=dict(task.with_),
                    prompt=task.prompt, description=task.description)
    return Task(id=task.id, skill=task.skill, needs=tuple(task.needs), args=dict(task.with_),
                prompt=task.prompt, description=task.description or f"{task.skill}: {task.id}")


# -- checking ------------------------------------------------------------------------------


def planned_workflow(workflow: Workflow, planned: Iterable[Mapping[str, Any]],
                     *, keep: Collection[str] | None = None) -> Workflow:
    """The workflow a run executes: `workflow` (never changed) with the planned tasks
    added. `keep` limits the workflow's own and earlier tasks to those ids."""
    effective = copy.copy(workflow)
    effective.tasks = {tid: t for tid, t in workflow.tasks.items()
                       if keep is None or tid in keep}
    for raw in planned:
        task = PlannedTask.model_validate(raw)
        effective.tasks[task.id] = planned_task(task)
    return effective


def plan_problems(workflow: Workflow, tasks: Sequence[PlannedTask], *, max_tasks: int,
                  planned_before: int = 0) -> list[str]:
    """Every reason the planned `tasks` cannot join `workflow` (the tasks the run keeps),
    each naming the task; empty when they can.

    `planned_before` counts planned tasks the run already has, toward `max_tasks`.
    """
    from podium.core.check import problems as workflow_problems

    found: list[str] = []
    if not tasks:
        found.append("the plan has no tasks")
    total = planned_before + len(tasks)
    if total > max_tasks:
        found.append(f"the plan has {total} tasks, more than max_tasks={max_tasks}; "
                     "merge or drop some")
    trial = copy.copy(workflow)
    trial.tasks = dict(workflow.tasks)
    trial.source, trial.lines = None, {}
    fresh: list[str] = []
    for task in tasks:
        found += _id_problems(task.id, fresh, workflow)
        fresh.append(task.id)
        trial.tasks[task.id] = planned_task(task)
    for problem in workflow_problems(trial):
        task_id, _, where = (problem.field or "").removeprefix("tasks.").partition(".")
        if task_id in fresh and (problem.field or "").startswith("tasks."):
            where = f" ({where})" if where else ""
            found.append(f"task {task_id!r}{where}: {problem.message}")
    upstream = trial.ancestor_map()
    for task in tasks:
        found += _parameter_problems(trial, task, upstream.get(task.id, frozenset()))
    return found


def _parameter_problems(workflow: Workflow, task: PlannedTask, upstream: Set[str]
                        ) -> list[str]:
    """Parameters of the function agents the router may choose that nothing supplies (the
    router ranks by meaning, not by parameters, so each candidate must be callable)."""
    from podium.core.check import _where

    given = set(task.with_) | set(workflow.inputs)
    found = []
    for name, ref in workflow.agents.items():
        if not isinstance(ref, FunctionAgent) or task.skill not in ref.skills:
            continue
        for param in (p for p in ref.missing(given) if p not in upstream):
            found.append(f"task {task.id!r} (with): agent {name!r} ({_where(ref)}) "
                         f"needs {param!r}, which no with: value, upstream task or input "
                         f"supplies; add `{param}:` under with:")
    return found


def _id_problems(task_id: str, fresh: Collection[str], workflow: Workflow) -> list[str]:
    if not _ID.fullmatch(task_id):
        return [f"task {task_id!r}: an id is letters, digits and _, starting with a letter"]
    if task_id in fresh:
        return [f"task {task_id!r}: two tasks have this id"]
    if task_id == PLAN_KEY:
        return [f"task {task_id!r}: {PLAN_KEY!r} names the planning step; choose another id"]
    if task_id in workflow.tasks:
        return [f"task {task_id!r}: the run already has a task {task_id!r}; choose another "
                "id, or list it in needs to use its output"]
    return []


def _validation_reasons(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, err['loc'])) or '(root)'}: {err['msg']}"
                     for err in e.errors()[:8])


def parse_plan(text: str) -> tuple[list[PlannedTask], list[str]]:
    """The tasks of a model's reply, or the reasons it is not a plan."""
    try:
        reply = _PlanReply.model_validate_json(text)
    except ValidationError as e:
        if any(err["type"] == "json_invalid" for err in e.errors()):
            return [], [f"the reply is not JSON: {text[:120]!r}"]
        return [], [f"the reply does not fit the plan's schema: {_validation_reasons(e)}"]
    return reply.tasks, []


def plan_schema(skills: Collection[str], max_tasks: int) -> dict[str, Any]:
    """The JSON schema a plan reply must fit; skills are an enum, so a model under a
    grammar can only name skills that exist."""
    value: dict[str, Any] = {"type": ["string", "number", "boolean"]}
    task: dict[str, Any] = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "skill": {"enum": sorted({*skills, HUMAN})},
            "needs": {"type": "array", "items": {"type": "string"}},
            "with": {"type": "object", "additionalProperties": value},
            "prompt": {"type": "string"},
        },
        "required": ["id", "skill", "needs", "with"],
        "additionalProperties": False,
    }
    return {"type": "object",
            "properties": {"tasks": {"type": "array", "items": task, "minItems": 1,
                                     "maxItems": max_tasks}},
            "required": ["tasks"], "additionalProperties": False}


# -- asking the model ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PlanOutcome:
    """What the planner came back with."""

    tasks: list[PlannedTask] | None
    """The checked plan; None when every attempt failed its check."""
    problems: list[str] = field(default_factory=list)
    """Why the last attempt failed; empty for a plan that passed."""
    attempts: int = 0
    """Model replies asked for: 1 plus the repairs."""


OnReply = Callable[[int, Model, ModelResponse, float], Awaitable[None]]
"""Called after each model reply: `(attempt, model, reply, latency in ms)`."""
OnInvalid = Callable[[int, list[str], str], Awaitable[None]]
"""Called when a reply fails the check: `(attempt, problems, reply text)`."""


async def _ignore(*args: Any) -> None:
    return None


class Planner:
    """Asks a workflow's planner model for a plan and checks it, with repairs.

    Args:
        workflow: the workflow whose agents do the plan (and whose own tasks it keeps).
        config: the planner's settings; default: the workflow's.
    """

    def __init__(self, workflow: Workflow, config: PlannerConfig | None = None) -> None:
        chosen = config or workflow.planner
        if chosen is None:
            raise UserError(f"workflow {workflow.name!r} has no planner: configuration")
        self.workflow, self.config = workflow, chosen
        self._model: Model | None = None

    @property
    def model(self) -> Model:
        """The planner's model, built on first use."""
        if self._model is None:
            made = self.config.model if isinstance(self.config.model, Model) else (
                self.config.model())
            if not isinstance(made, Model):
                raise UserError(f"the planner's model is {made!r}, not a podium Model")
            self._model = made
        return self._model

    @property
    def form(self) -> str:
        """`constructed` or `free`: the configured form, `auto` decided by the model."""
        if self.config.form != "auto":
            return self.config.form
        from podium.models.local import LocalModel

        return "constructed" if isinstance(self.model, LocalModel) else "free"

    def _constructed(self, goal: str, inputs: Mapping[str, Any], kept: Workflow,
                     failed: Mapping[str, str]) -> tuple[
            list[Message], dict[str, Any],
            Callable[[str], tuple[list[PlannedTask], list[str]]]]:
        """The conversation, schema and reader of a constructed plan (`_constructed`)."""
        from podium.engine import _constructed as constructed

        done = [tid for tid in kept.tasks if tid != PLAN_KEY]
        listed = constructed.listing(kept, inputs, done)
        messages = constructed.messages(goal, listed, inputs,
                                        instructions=self.config.instructions, done=done,
                                        failed=failed)

        def read(text: str) -> tuple[list[PlannedTask], list[str]]:
            chosen, problems = constructed.parse_choices(text, listed)
            if problems:
                return [], problems
            if not chosen:
                return [], ["the plan has no tasks: choose at least one skill (true)"]
            built, problems = constructed.build(chosen, listed, kept, goal, inputs, done)
            if problems:
                return [], problems
            return [PlannedTask.model_validate(task) for task in built], []

        return messages, constructed.choice_schema(listed), read

    async def plan(
        self, goal: str, *, inputs: Mapping[str, Any], kept: Workflow | None = None,
        planned_before: int = 0, completed: Mapping[str, Any] | None = None,
        failed: Mapping[str, str] | None = None, on_reply: OnReply = _ignore,
        on_invalid: OnInvalid = _ignore,
    ) -> PlanOutcome:
        """A checked plan for `goal`, asking again with the reasons when one fails.

        Args:
            goal: the rendered goal.
            inputs: the run's inputs.
            kept: the tasks the plan joins (default: the workflow's own).
            planned_before: planned tasks already in `kept`, toward `max_tasks`.
            completed: for a replan, outputs of the tasks done so far, by task id.
            failed: for a replan, the errors of the tasks that failed, by task id.
            on_reply: called after each reply (to journal the model call).
            on_invalid: called for each reply that fails the check.
        """
        kept = kept or self.workflow
        config = self.config
        messages: list[Message]
        read: Callable[[str], tuple[list[PlannedTask], list[str]]]
        if self.form == "constructed":
            messages, schema, read = self._constructed(goal, inputs, kept, failed or {})
        else:
            messages = planner_messages(
                goal, kept, inputs, max_tasks=config.max_tasks - planned_before,
                completed=completed or {}, failed=failed or {},
                instructions=config.instructions)
            schema = plan_schema(skills_of(self.workflow),
                                 max(1, config.max_tasks - planned_before))
            read = parse_plan
        problems: list[str] = []
        for attempt in range(1, config.max_repairs + 2):
            started = time.perf_counter()
            try:
                reply = await self.model.complete(messages, output_schema=schema,
                                                  temperature=config.temperature,
                                                  max_tokens=config.max_tokens)
            except ModelError as e:
                text, problems = "", [f"the model failed: {e}"]
            else:
                await on_reply(attempt, self.model, reply,
                               round((time.perf_counter() - started) * 1000, 3))
                text = reply.text
                tasks, problems = read(text)
                if not problems:
                    problems = plan_problems(kept, tasks, max_tasks=config.max_tasks,
                                             planned_before=planned_before)
                if not problems:
                    return PlanOutcome(tasks=tasks, attempts=attempt)
            await on_invalid(attempt, problems, text)
            messages += [Message(role="assistant", content=text),
                         Message(role="user", content=repair_message(problems))]
        return PlanOutcome(tasks=None, problems=problems, attempts=config.max_repairs + 1)
