"""The patterns that are shapes of the task graph: chain, route, sectioning and
orchestrator-workers. Each adds ordinary tasks to a workflow (so every step has its own
policy, journal entries and line in `podium runs show`), the last of them named after the
pattern, so that `outputs.<id>` is the pattern's result::

    chain(wf, "article", ["outline", "draft", "edit"], args={"topic": "{{ inputs.topic }}"})

adds `article_outline` → `article_draft` → `article` (the edit), each given the last's
output as `input`. YAML's `chain:`, `route:`, `parallel:` and `orchestrate:` task blocks
are planned by the same functions (`plan_*`), which speak in YAML's field names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from podium.core.agent import JSON, Agent, TaskContext, TaskInput
from podium.core.workflow import Task, Workflow

COLLECT = "_collect"
"""The built-in agent whose output is its `with:` values; it joins a pattern's branches."""

Spec = dict[str, Any]
"""A task in YAML's field names (`agent`, `needs`, `with`, `prompt`, `when`, …)."""
Planned = list[tuple[str, Spec, str | None]]
"""Tasks planned for a pattern: id, fields, and where in the pattern it comes from (the
step's path, like `chain.1`; None for a task the pattern adds itself)."""


class Collect(Agent):
    """Returns its task's `with:` values as they rendered: the join of a pattern."""

    name = COLLECT
    description = "gathers the outputs named in its with: values"

    async def run(self, task: TaskInput, ctx: TaskContext) -> JSON:
        return dict(task.args)


@dataclass(frozen=True, kw_only=True)
class Step:
    """One step of a pattern: an agent, and optionally its own task settings."""

    agent: str
    """The name of the agent that does it."""
    id: str | None = None
    """The task's id; by default `<pattern id>_<name>`."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """More task settings: `Workflow.add_task` keyword arguments (`args`, `retry`, …) in
    Python, task fields (`with`, `retry`, …) in YAML."""


StepRef = str | Step


def _step(ref: StepRef) -> Step:
    return ref if isinstance(ref, Step) else Step(agent=ref)


def _spec(step: Step, base: Mapping[str, Any] | None, prompt: str | None,
          extra: Mapping[str, Any], **fields: Any) -> Spec:
    spec: Spec = {**fields, "agent": step.agent, **dict(step.options)}
    spec["with"] = {**(base or {}), **extra, **dict(step.options.get("with") or {})}
    own = step.options.get("needs") or []
    spec["needs"] = [*fields.get("needs", []), *([own] if isinstance(own, str) else own)]
    if prompt is not None:
        spec.setdefault("prompt", prompt)
    return spec


def _ids(id: str, steps: Sequence[Step]) -> list[str]:
    """Task ids for a chain's steps: their own, else `<id>_<agent>` (numbered when an
    agent comes twice); the last step's is `id`."""
    counts: dict[str, int] = {}
    for s in steps:
        counts[s.agent] = counts.get(s.agent, 0) + 1
    seen: dict[str, int] = {}
    ids = []
    for n, s in enumerate(steps):
        seen[s.agent] = seen.get(s.agent, 0) + 1
        suffix = s.agent if counts[s.agent] == 1 else f"{s.agent}_{seen[s.agent]}"
        ids.append(s.id or (id if n == len(steps) - 1 else f"{id}_{suffix}"))
    return ids


def plan_chain(id: str, steps: Sequence[Step], *, args: Mapping[str, Any] | None = None,
               prompt: str | None = None, needs: Sequence[str] = ()) -> Planned:
    """A chain's tasks: each step given the last one's output as `input`; the first takes
    `args` and `prompt`, and the last is named `id`."""
    ids = _ids(id, steps)
    planned: Planned = []
    for n, (step, task_id) in enumerate(zip(steps, ids, strict=True)):
        if n == 0:
            spec = _spec(step, args, prompt, {}, needs=list(needs))
        else:
            spec = _spec(step, None, None, {"input": f"{{{{ outputs.{ids[n - 1]} }}}}"},
                         needs=[ids[n - 1]])
        planned.append((task_id, spec, f"chain.{n}"))
    return planned


def plan_route(id: str, classifier: Step, branches: Mapping[str, Step], *,
               args: Mapping[str, Any] | None = None, prompt: str | None = None,
               needs: Sequence[str] = ()) -> Planned:
    """A route's tasks: the classifier, a branch per label run only when chosen, and the
    join named `id`."""
    classify = classifier.id or f"{id}_classify"
    schema = {"type": "object", "required": ["route"],
              "properties": {"route": {"type": "string", "enum": list(branches)}}}
    first = _spec(classifier, args, prompt, {}, needs=list(needs))
    first.setdefault("output", schema)
    planned: Planned = [(classify, first, "route.classifier")]
    picked: dict[str, str] = {}
    for label, step in branches.items():
        branch = picked[label] = step.id or f"{id}_{label}"
        planned.append((branch, _spec(step, args, prompt, {}, needs=[classify],
                                      when=f"outputs.{classify}.route == {label!r}"),
                        f"route.branches.{label}"))
    chosen = ", ".join(f"{label!r}: outputs.{task}" for label, task in picked.items())
    planned.append((id, {"agent": COLLECT, "needs": list(picked.values()), "with": {
        "route": f"{{{{ outputs.{classify}.route }}}}",
        "output": f"{{{{ {{{chosen}}}[outputs.{classify}.route] }}}}"}}, None))
    return planned


def plan_parallel(id: str, parts: Mapping[str, Step], *, combine: Step | None = None,
                  args: Mapping[str, Any] | None = None, prompt: str | None = None,
                  needs: Sequence[str] = ()) -> Planned:
    """Sectioning's tasks: one per section, at once, then the join named `id`, given
    `sections` (each section's output by name)."""
    planned: Planned = []
    outputs: dict[str, str] = {}
    for section, step in parts.items():
        task_id = step.id or f"{id}_{section}"
        planned.append((task_id, _spec(step, args, prompt, {}, needs=list(needs)),
                        f"parallel.{section}"))
        outputs[section] = f"{{{{ outputs.{task_id} }}}}"
    join = [task_id for task_id, _, _ in planned]
    planned.append(_join(id, combine, join, {"sections": outputs}, "combine"))
    return planned


def _join(id: str, step: Step | None, needs: list[str], extra: Mapping[str, Any],
          at: str) -> tuple[str, Spec, str | None]:
    if step is None:
        return id, {"agent": COLLECT, "needs": needs, "with": dict(extra)}, None
    return id, _spec(step, None, None, extra, needs=needs), at


def plan_orchestrate(id: str, planner: Step, worker: Step, synthesizer: Step | None = None,
                     *, args: Mapping[str, Any] | None = None, prompt: str | None = None,
                     needs: Sequence[str] = (), concurrency: int | None = None,
                     max_items: int | None = None) -> Planned:
    """Orchestrator-workers' tasks: the planner, the workers (a `for_each` over its list,
    at most `max_items`), and the synthesiser named `id`."""
    plan = planner.id or f"{id}_plan"
    work = worker.id or f"{id}_work"
    listed = f"(outputs.{plan}['items'] if outputs.{plan} is mapping else outputs.{plan})"
    bounded = f"{listed}[:{max_items}]" if max_items is not None else listed
    workers = _spec(worker, args, None, {"item": "{{ item }}"}, needs=[plan], for_each=bounded)
    if concurrency is not None:
        workers["concurrency"] = concurrency
    return [
        (plan, _spec(planner, args, prompt, {}, needs=list(needs)), "orchestrate.planner"),
        (work, workers, "orchestrate.worker"),
        _join(id, synthesizer, [work], {
            "results": f"{{{{ outputs.{work} }}}}", "plan": f"{{{{ {bounded} }}}}",
            "planned": f"{{{{ {listed} | length }}}}"}, "orchestrate.synthesizer"),
    ]


# -- the Python API: the same plans, added to a workflow ----------------------------------


def _python_step(ref: StepRef) -> Step:
    step = _step(ref)
    options = dict(step.options)
    if "args" in options:
        options["with"] = options.pop("args")
    return Step(agent=step.agent, id=step.id, options=options)


def add_planned(workflow: Workflow, planned: Planned) -> list[Task]:
    """Add planned tasks (in YAML's field names) to `workflow`."""
    if any(spec["agent"] == COLLECT for _, spec, _ in planned) and (
            COLLECT not in workflow.agents):
        workflow.add_agent(COLLECT, Collect())
    tasks = []
    for task_id, spec, _ in planned:
        options = {("args" if k == "with" else k): v for k, v in spec.items()}
        tasks.append(workflow.add_task(task_id, **options))
    return tasks


def chain(workflow: Workflow, id: str, steps: Sequence[StepRef], *,
          args: Mapping[str, Any] | None = None, prompt: str | None = None,
          needs: Iterable[str] = ()) -> list[Task]:
    """Add tasks in sequence, each given the last one's output as its `input` argument.

    The first step takes `args` and `prompt` (templates); the last step's task is `id`.
    Steps are agent names, or `Step`s with their own id and task settings.
    """
    return add_planned(workflow, plan_chain(id, [_python_step(s) for s in steps], args=args,
                                            prompt=prompt, needs=list(needs)))


def route(workflow: Workflow, id: str, *, classifier: StepRef, branches: Mapping[str, StepRef],
          args: Mapping[str, Any] | None = None, prompt: str | None = None,
          needs: Iterable[str] = ()) -> list[Task]:
    """Add a classifier task that picks the one branch that runs.

    The classifier (`<id>_classify`) replies with structured output `{"route": label}`,
    the label one of `branches`' keys; branch `label` (task `<id>_<label>`) runs when
    chosen and the others are skipped. Every branch takes `args` and `prompt`. Task `id`
    gives `{"route": label, "output": the branch's output}`.
    """
    return add_planned(workflow, plan_route(
        id, _python_step(classifier), {k: _python_step(v) for k, v in branches.items()},
        args=args, prompt=prompt, needs=list(needs)))


def parallel(workflow: Workflow, id: str, parts: Mapping[str, StepRef], *,
             combine: StepRef | None = None, args: Mapping[str, Any] | None = None,
             prompt: str | None = None, needs: Iterable[str] = ()) -> list[Task]:
    """Add different subtasks that run at once (sectioning): task `<id>_<section>` per
    section, each taking `args` and `prompt`.

    Task `id` is `combine`'s, given `sections` (each section's output by name); without
    `combine`, its output is `{"sections": ...}`.
    """
    return add_planned(workflow, plan_parallel(
        id, {k: _python_step(v) for k, v in parts.items()},
        combine=_python_step(combine) if combine is not None else None, args=args,
        prompt=prompt, needs=list(needs)))


def orchestrate(workflow: Workflow, id: str, *, planner: StepRef, worker: StepRef,
                synthesizer: StepRef | None = None, args: Mapping[str, Any] | None = None,
                prompt: str | None = None, needs: Iterable[str] = (),
                concurrency: int | None = None, max_items: int | None = None) -> list[Task]:
    """Add a planner that fans work out to workers, and a synthesiser that combines it.

    The planner (`<id>_plan`, taking `args` and `prompt`) returns a list of work items, or
    an object with the list under `items`. The worker task (`<id>_work`) runs once per
    item (the first `max_items`; `concurrency` at once), given it as `item`. Task `id` is
    the synthesiser's, given `results` (the workers' outputs, in order), `plan` (the items
    worked on) and `planned` (how many the planner listed, so a cut is visible); without
    a synthesiser, its output is those three.
    """
    return add_planned(workflow, plan_orchestrate(
        id, _python_step(planner), _python_step(worker),
        _python_step(synthesizer) if synthesizer is not None else None, args=args,
        prompt=prompt, needs=list(needs), concurrency=concurrency, max_items=max_items))
