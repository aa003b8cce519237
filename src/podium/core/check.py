"""Checking a workflow before it runs: structure, templates, agents and their parameters."""

from __future__ import annotations

import inspect
from collections.abc import Set
from typing import Any

from podium.core.agent import Agent
from podium.core.function import FunctionAgent
from podium.core.output import schema_of
from podium.core.workflow import AgentRef, Workflow
from podium.errors import Problem, UserError, WorkflowError


def as_agent(name: str, ref: AgentRef) -> Agent:
    """An Agent for a registered agent: itself, or a function agent for a callable."""
    if isinstance(ref, Agent):
        return ref
    if callable(ref):
        return FunctionAgent(ref, name=name)
    raise UserError(f"agent {name!r} is {ref!r}, which is neither an Agent nor callable")


def problems(workflow: Workflow) -> list[Problem]:
    """Every problem in the workflow, not only the first."""
    upstream = workflow.ancestor_map()
    found = workflow.structure_problems(upstream)
    agents: dict[str, Agent] = {}
    for name, ref in workflow.agents.items():
        try:
            agents[name] = as_agent(name, ref)
        except (UserError, TypeError, ValueError) as e:
            found.append(workflow.problem(f"agents.{name}", str(e)))
    for task in workflow.tasks.values():
        found += _task_problems(workflow, task.id, agents, upstream[task.id])
    return found


def _task_problems(workflow: Workflow, task_id: str, agents: dict[str, Agent],
                   upstream: Set[str]) -> list[Problem]:
    task = workflow.tasks[task_id]
    found: list[Problem] = []
    try:
        schema_of(task.output)
    except TypeError as e:
        found.append(workflow.problem(f"tasks.{task_id}.output", str(e)))
    found += _source_problems(workflow, task_id, agents, upstream)
    given = set(task.args) | set(workflow.inputs)
    for name in (task.agent, *task.policy.fallback):
        agent = agents.get(name)
        if not isinstance(agent, FunctionAgent):
            continue
        for param in (p for p in agent.missing(given) if p not in upstream):
            where = _where(agent)
            found.append(workflow.problem(
                f"tasks.{task_id}.with",
                f"agent {name!r} ({where}) needs {param!r}, which no with: value, upstream "
                f"task or input supplies; add `{param}:` under with:"))
    return found


def _source_problems(workflow: Workflow, task_id: str, agents: dict[str, Agent],
                     upstream: Set[str]) -> list[Problem]:
    """Faithfulness sources that name an input the workflow lacks or a task this one does
    not depend on (whose output it would never receive)."""
    task = workflow.tasks[task_id]
    declared = [(f"tasks.{task_id}.checks.faithful.sources", c) for c in task.checks]
    for name in (task.agent, *task.policy.fallback):
        declared += [(f"agents.{name}.checks.faithful.sources", c)
                     for c in getattr(agents.get(name), "checks", ())]
    found: list[Problem] = []
    for field, check in declared:
        for source in check.sources:
            root, _, name = source.partition(".")
            if root == "outputs" and name and name not in upstream:
                found.append(workflow.problem(field, (
                    f"{source!r}: task {task_id!r} does not depend on a task {name!r}; "
                    "add it to `needs:` or name one it depends on")))
            elif root == "inputs" and name and name not in workflow.inputs:
                found.append(workflow.problem(field, f"{source!r}: the workflow has no input "
                                              f"{name!r}"))
    return found


def _where(agent: FunctionAgent) -> str:
    fn: Any = agent.fn
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}:{getattr(fn, '__qualname__', agent.name)}" + (
        "" if inspect.isroutine(fn) else " instance")


def check(workflow: Workflow) -> None:
    """Raise WorkflowError listing every problem, if the workflow has any."""
    found = problems(workflow)
    if found:
        raise WorkflowError(found)
