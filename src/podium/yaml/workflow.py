"""Reading workflows from YAML: the same objects as the Python API, errors with file and line.

`load_workflow(path)` reports every problem it finds at once (a YAML syntax error aside),
each with the file, the line and the dotted field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from podium.core.memory import MemoryQuery
from podium.core.plan import PlannerConfig
from podium.core.policy import Budget, CircuitPolicy, OnFailure, RetryPolicy
from podium.core.workflow import InputSpec, InputType, Workflow
from podium.errors import Problem, UserError, WorkflowError
from podium.security.rbac import AccessPolicy
from podium.yaml.agents import AgentDoc, Unbuilt, apply_hints, build_agent, model_factory
from podium.yaml.code import functions_allowed, import_ref, importable
from podium.yaml.document import DOC_CONFIG, compose_document, listify, validation_problems
from podium.yaml.mcp import mcp_servers
from podium.yaml.patterns import build_pattern_agents, split_patterns
from podium.yaml.policies import (
    BudgetDoc,
    ChecksDoc,
    CircuitDoc,
    RetryDoc,
    RouterDoc,
    router_model_problems,
    router_policy,
)
from podium.yaml.registry import add_registry
from podium.yaml.source import YAMLSyntaxError, read_text


class _Doc(BaseModel):
    model_config = DOC_CONFIG


class InputDoc(_Doc):
    type: InputType = "any"
    default: Any = None
    description: str = ""
    trusted: bool | None = None
    """Whether the value may instruct LLM agents; by default only numbers and booleans."""
    subject: bool = False
    """Its value names whom the run is about, for erasure."""


class MemoryDoc(_Doc):
    namespace: str = Field(min_length=1)
    query: str | None = None
    subject: str | None = None
    top_k: int = Field(5, ge=1, le=100)
    trusted_only: bool = False
    min_score: float | None = Field(None, ge=-1, le=1)


class TaskDoc(_Doc):
    agent: str = ""
    skill: str | None = None
    router: RouterDoc | None = None
    needs: list[str] = []
    with_: dict[str, Any] = Field({}, alias="with")
    prompt: str | None = None
    when: str | bool | None = None
    for_each: str | list[Any] | None = None
    concurrency: int | None = None
    output: str | dict[str, Any] | None = None
    retry: RetryDoc | None = None
    timeout: float | None = None  # checked with the workflow, which says "positive"
    fallback: list[str] = []
    on_failure: OnFailure = "fail"
    default: Any = None
    description: str = ""
    memory: MemoryDoc | None = None
    checks: ChecksDoc | None = None
    """What the task's output must pass beyond its schema, whichever agent writes it."""

    _split = field_validator("needs", "fallback", mode="before")(listify)


class PlannerDoc(_Doc):
    model: str = Field(min_length=1)
    """`local`, `openai:NAME`, `anthropic:NAME`, or `module:name` of a Model (or of a
    function returning one)."""
    base_url: str | None = None
    api_key_env: str | None = None
    options: dict[str, Any] = {}
    max_tasks: int = Field(8, ge=1)
    max_repairs: int = Field(2, ge=0)
    max_replans: int = Field(1, ge=0)
    approve_plan: bool = False
    temperature: float | None = Field(0.0, ge=0)
    max_tokens: int | None = Field(1024, ge=1)
    instructions: str = ""
    form: Literal["auto", "constructed", "free"] = "auto"
    """`constructed` (the model chooses skills, Podium builds the tasks), `free` (the model
    writes the tasks), or `auto`: constructed for a local model."""


class WorkflowDoc(_Doc):
    name: str = Field(min_length=1)
    version: str = "1"
    description: str = ""
    timeout: float | None = Field(None, gt=0)
    circuit: CircuitDoc = Field(default_factory=lambda: CircuitDoc.model_validate({}))
    budget: BudgetDoc | None = None
    inputs: dict[str, InputDoc | InputType] = {}
    goal: str | None = None
    """What the planner turns into tasks: a template over the inputs."""
    planner: PlannerDoc | None = None
    # Agents and tasks are checked one by one (`_sections`), so that one bad task does not
    # hide the problems of the others.
    mcp_servers: dict[str, dict[str, Any]] = {}
    registry: str | list[str] = []
    """Registry files or folders whose agents the workflow uses (`podium.yaml.registry`)."""
    router: RouterDoc | None = None
    agents: dict[str, dict[str, Any]] | str | list[str] = {}
    tasks: dict[str, dict[str, Any]] = {}

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value


def _planner(doc: PlannerDoc, workflow: Workflow, problems: list[Problem]) -> PlannerConfig:
    model: Any = model_factory(AgentDoc.model_validate({
        "model": doc.model, "base_url": doc.base_url, "api_key_env": doc.api_key_env,
        "options": doc.options}))
    provider = doc.model.partition(":")[0]
    if provider in ("local", "openai", "anthropic"):
        from podium.models import model_spec_problem

        if (problem := model_spec_problem(doc.model)) is not None:
            problems.append(workflow.problem("planner.model", problem))
    else:
        try:
            workflow.code["planner.model"] = doc.model
            model = import_ref(doc.model)
        except UserError as e:
            problems.append(workflow.problem("planner.model", f"{e}; or use 'local', "
                                             "'local:NAME', 'openai:NAME' or "
                                             "'anthropic:NAME'"))
    settings = doc.model_dump(exclude={"model", "base_url", "api_key_env", "options"})
    return PlannerConfig(model=model, **settings)


def _input_spec(doc: InputDoc | str) -> InputSpec:
    if isinstance(doc, str):
        return InputSpec(type=doc)  # type: ignore[arg-type]
    has_default = "default" in doc.model_fields_set
    return InputSpec(type=doc.type, default=doc.default, required=not has_default,
                     description=doc.description, trusted=doc.trusted,
                     subject=doc.subject)


def _sections(doc: WorkflowDoc, lines: dict[str, int], source: str
              ) -> tuple[dict[str, AgentDoc | None], dict[str, TaskDoc], list[Problem]]:
    """Each agent and task document checked on its own; None for an agent that failed."""
    agents: dict[str, AgentDoc | None] = {}
    tasks: dict[str, TaskDoc] = {}
    problems: list[Problem] = []
    for name, raw in (doc.agents if isinstance(doc.agents, dict) else {}).items():
        try:
            agents[name] = AgentDoc.model_validate(raw)
        except ValidationError as e:
            problems += validation_problems(e, f"agents.{name}", lines, source)
            agents[name] = None
    for task_id, raw in doc.tasks.items():
        try:
            tasks[task_id] = TaskDoc.model_validate(raw)
        except ValidationError as e:
            problems += validation_problems(e, f"tasks.{task_id}", lines, source)
            tasks[task_id] = _salvage(raw, e)
    return agents, tasks, problems


def _salvage(raw: Any, error: ValidationError) -> TaskDoc:
    """What can still be checked of a task whose document has problems: its fields without
    the bad ones, or at least its needs, so that the tasks around it are checked too."""
    if isinstance(raw, dict):
        bad = {err["loc"][0] for err in error.errors() if err["loc"]}
        try:
            return TaskDoc.model_validate({k: v for k, v in raw.items() if k not in bad})
        except ValidationError:
            pass
    needs = listify(raw.get("needs", []) if isinstance(raw, dict) else [])
    # As a human task it adds no problems beyond those already reported.
    return TaskDoc.model_construct(
        agent="human",
        needs=[n for n in needs if isinstance(n, str)] if isinstance(needs, list) else [])


def _build(agent_docs: dict[str, AgentDoc | None], task_docs: dict[str, TaskDoc],
           workflow: Workflow) -> list[Problem]:
    problems: list[Problem] = []
    for name, agent in agent_docs.items():
        count = len(problems)
        if agent is None:
            workflow.add_agent(name, Unbuilt(name))
            continue
        build_agent(name, agent, workflow, problems)
        problems += apply_hints(name, agent, workflow)
        if agent.budget is not None:
            workflow.agent_budgets[name] = Budget(**agent.budget.model_dump())
        if len(problems) > count:
            workflow.add_agent(name, Unbuilt(name))
    for task_id, task in task_docs.items():
        agent_doc = agent_docs.get(task.agent)
        if agent_doc is not None:
            # Agent-level policies are defaults that a task's own settings override.
            updates = {k: getattr(agent_doc, k) for k in ("retry", "timeout")
                       if k not in task.model_fields_set and getattr(agent_doc, k) is not None}
            task = task.model_copy(update=updates)
        _build_task(task_id, task, workflow, problems)
    return problems


def _build_task(task_id: str, task: TaskDoc, workflow: Workflow,
                problems: list[Problem]) -> None:
    output: Any = task.output
    if isinstance(task.output, str):
        try:
            workflow.code[f"tasks.{task_id}.output"] = task.output
            output = import_ref(task.output)
        except UserError as e:
            problems.append(workflow.problem(f"tasks.{task_id}.output", str(e)))
            output = None
    for_each = task.for_each
    if isinstance(for_each, list):
        for_each = repr(for_each)
    when = task.when if not isinstance(task.when, bool) else str(task.when).lower()
    workflow.add_task(
        task_id, agent=task.agent, needs=task.needs, args=task.with_, prompt=task.prompt,
        when=when, for_each=for_each, concurrency=task.concurrency, output=output,
        retry=RetryPolicy(**{**task.retry.model_dump(),
                             "retry_on": tuple(task.retry.retry_on),
                             "no_retry_on": tuple(task.retry.no_retry_on)})
        if task.retry else None,
        timeout=task.timeout, fallback=task.fallback, on_failure=task.on_failure,
        default=task.default if "default" in task.model_fields_set else ...,
        description=task.description, skill=task.skill,
        router=router_policy(task.router),
        memory=MemoryQuery(**task.memory.model_dump()) if task.memory else None,
        checks=task.checks.build() if task.checks else ())
    problems.extend(router_model_problems(workflow, task.router, f"tasks.{task_id}.router"))


def _registry_refs(doc: WorkflowDoc) -> list[tuple[str, str]]:
    """The registry paths a workflow document names (its `registry:`, and `agents:` when
    that is a path rather than a mapping), each with the field it was given at."""
    refs: list[tuple[str, str]] = []
    for key in ("registry", "agents"):
        value = getattr(doc, key)
        if isinstance(value, str):
            refs.append((value, key))
        elif isinstance(value, list):
            refs += [(v, f"{key}.{i}") for i, v in enumerate(value)]
    return refs


def parse_workflow(text: str, source: str = "<string>", *, base: Path | None = None
                   ) -> Workflow:
    """A workflow from YAML text. `base` is the folder its imports are resolved from.

    Raises:
        WorkflowError: every problem found, each naming the file, line and field.
    """
    data, lines = compose_document(text, source)
    if not isinstance(data, dict):
        raise WorkflowError([Problem(message="a workflow file is a mapping with name, inputs, "
                                     "agents and tasks", file=source, line=1)])
    try:
        doc = WorkflowDoc.model_validate(data)
    except ValidationError as e:
        raise WorkflowError(validation_problems(e, "", lines, source)) from None
    own = doc.agents if isinstance(doc.agents, dict) else {}  # else a registry path
    patterns = split_patterns(own, doc.tasks, lines, source)
    doc = doc.model_copy(update={"agents": patterns.agents if own else doc.agents,
                                 "tasks": patterns.tasks})
    agent_docs, task_docs, problems = _sections(doc, lines, source)
    problems[:0] = patterns.problems
    workflow = Workflow(doc.name, version=doc.version, description=doc.description,
                        inputs={k: _input_spec(v) for k, v in doc.inputs.items()},
                        timeout=doc.timeout, circuit=CircuitPolicy(**doc.circuit.model_dump()),
                        budget=Budget(**doc.budget.model_dump()) if doc.budget else None,
                        source=source, goal=doc.goal)
    workflow.lines = lines
    workflow.router = router_policy(doc.router) or workflow.router
    problems += router_model_problems(workflow, doc.router, "router")
    with importable(Path.cwd(), *([base] if base else [])):
        servers, server_problems = mcp_servers(doc.mcp_servers, lines, source, base)
        workflow.mcp_servers.update(servers)
        problems += server_problems
        problems += add_registry(workflow, _registry_refs(doc), base, own=agent_docs)
        problems += _build(agent_docs, task_docs, workflow)
        problems += build_pattern_agents(patterns, workflow)
        if doc.planner is not None:
            workflow.planner = _planner(doc.planner, workflow, problems)
    from podium.core.check import problems as check_problems

    problems += check_problems(workflow)
    if problems:
        raise WorkflowError(problems)
    return workflow


def load_workflow(path: str | Path, *, policy: AccessPolicy | None = None) -> Workflow:
    """A workflow from a YAML file; its imports resolve from the current folder and the
    file's own folder. With a `policy`, the Python code the file names must come from
    modules its `functions.allow` allows.

    Raises:
        WorkflowError: every problem found, each naming the file, line and field.
        UserError: the file cannot be read.
    """
    if policy is not None:
        with functions_allowed(policy):
            return load_workflow(path)
    file = Path(path)
    try:
        text = read_text(file)
    except OSError as e:
        raise UserError(f"cannot read workflow {str(file)!r}: {e.strerror}") from None
    except YAMLSyntaxError as e:
        raise WorkflowError([Problem(message=e.problem, file=str(file), line=e.line)]
                            ) from None
    return parse_workflow(text, str(file), base=file.resolve().parent)
