"""Reading workflows from YAML: the same objects as the Python API, errors with file and line.

`load_workflow(path)` reports every problem it finds at once (a YAML syntax error aside),
each with the file, the line and the dotted field.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from podium._yaml import YAMLSyntaxError, compose, read_text
from podium.agents.context import ContextOptions
from podium.agents.llm import LLMAgent
from podium.core.agent import Agent, TaskContext, TaskInput
from podium.core.faithful import KINDS, SOURCE_ROOTS, Faithful, Kind
from podium.core.memory import MemoryQuery
from podium.core.plan import PlannerConfig
from podium.core.policy import Budget, CircuitPolicy, OnFailure, RetryPolicy
from podium.core.workflow import InputSpec, InputType, Workflow
from podium.engine._functions import check_module, functions_allowed
from podium.engine._mcp_docs import mcp_servers
from podium.engine.registry import (
    add_registry,
    apply_hints,
    registry_refs,
    router_model_problems,
    router_policy,
)
from podium.errors import Problem, UserError, WorkflowError
from podium.patterns._yaml import build_pattern_agents, split_patterns
from podium.security.masking import MaskingPolicy
from podium.security.rbac import Policy
from podium.tools import Tool, make_tool
from podium.tools.mediation import allowlist_problems
from podium.tools.toolset import MCPTools


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RetryDoc(_Doc):
    attempts: int = Field(1, ge=1)
    backoff: float = Field(0.0, ge=0)
    multiplier: float = Field(2.0, ge=1)
    max_delay: float = Field(60.0, ge=0)
    jitter: float = Field(0.1, ge=0, le=1)
    retry_on: list[str] = []
    no_retry_on: list[str] = []


class CircuitDoc(_Doc):
    threshold: int = Field(5, ge=0)
    cooldown: float = Field(30.0, ge=0)


class AgentBudgetDoc(_Doc):
    tokens: int | None = Field(None, ge=0)
    cost_usd: float | None = Field(None, ge=0)
    model_calls: int | None = Field(None, ge=0)
    tool_calls: int | None = Field(None, ge=0)


class BudgetDoc(AgentBudgetDoc):
    seconds: float | None = Field(None, gt=0)


class ContextDoc(_Doc):
    outputs: bool = False
    notes: bool = False
    session: bool | None = None
    note_tool: bool = False
    summarise: bool = True
    summariser: str | None = None
    """A model name (`local`, `openai:NAME`, ...) that writes summaries; default the agent's."""
    summary_tokens: int = Field(256, ge=16)


class FaithfulDoc(_Doc):
    kinds: list[Kind] = Field(default_factory=lambda: list(KINDS), min_length=1)
    sources: list[str] = Field(["prompt", "with"], min_length=1)
    """`prompt`, `with`, `inputs`, `inputs.NAME`, `outputs`, `outputs.TASK`."""
    tolerance: float = Field(0.0, ge=0, lt=1)
    allow: list[str | int | float] = []
    small_numbers: int = Field(10, ge=-1)
    max_listed: int = Field(10, ge=1)
    min_figures: int = Field(0, ge=0)

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        for source in value:
            root, dot, name = source.partition(".")
            if root not in SOURCE_ROOTS or (dot and (not name or root in ("prompt", "with"))):
                raise ValueError(f"{source!r} is not a source; use 'prompt', 'with', 'inputs', "
                                 "'inputs.NAME', 'outputs' or 'outputs.TASK'")
        return value

    def build(self) -> Faithful:
        return Faithful(**{**self.model_dump(), "kinds": tuple(self.kinds),
                           "sources": tuple(self.sources), "allow": tuple(self.allow)})


class ChecksDoc(_Doc):
    faithful: FaithfulDoc | None = None
    """Every number, date and name of the output must appear in the task's data
    (`podium.core.faithful`); `true` for the defaults."""

    @field_validator("faithful", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        return {} if value is True else None if value is False else value

    def build(self) -> tuple[Faithful, ...]:
        return (self.faithful.build(),) if self.faithful is not None else ()


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


class AgentDoc(_Doc):
    function: str | None = None
    model: str | None = None
    sql: dict[str, Any] | None = None
    """A built-in SQL agent: url, query, params, write, max_rows."""
    http: dict[str, Any] | None = None
    """A built-in HTTP agent: method, url, base_url, headers, params, json, timeout, retries."""
    email: dict[str, Any] | None = None
    """A built-in SMTP agent: host, port, sender, username, password, starttls, ssl."""
    instructions: str = ""
    output: str | dict[str, Any] | None = None
    """`module:Model` of a pydantic model, or a JSON schema."""
    input: dict[str, Any] | None = None
    """The JSON schema of the `with:` values the agent takes (for the registry)."""
    description: str = ""
    skills: list[str] = []
    cost: float | None = Field(None, ge=0)
    """A hint of what one task costs, for the router's tie-break."""
    latency: float | None = Field(None, ge=0)
    """A hint of the seconds one task takes, for the router's tie-break."""
    provides: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    """The name its output goes by, for the planner: later tasks' parameters of that name
    read it."""
    base_url: str | None = None
    api_key_env: str | None = None
    options: dict[str, Any] = {}
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0)
    circuit: CircuitDoc | None = None
    retry: RetryDoc | None = None
    """The retry policy of tasks given to this agent that set none of their own."""
    timeout: float | None = Field(None, gt=0)
    """The attempt timeout of tasks given to this agent that set none of their own."""
    budget: AgentBudgetDoc | None = None
    """What this agent may consume over a run."""
    tools: list[str] = []
    """Tools a model agent may call: `module:name` of a @tool or a typed function."""
    max_turns: int = Field(8, ge=1)
    max_argument_repairs: int = Field(2, ge=0)
    max_repairs: int = Field(2, ge=0)
    """How often a reply that does not fit the output schema is sent back for repair."""
    cache: bool = False
    """Reuse stored replies to the very same request (kept in the journal database)."""
    allow_tools: list[Any] | None = None
    """The tools a model agent may call (names, patterns, `tag:NAME`); all when absent."""
    high_risk_without_approval: bool = False
    """Let `high_risk` tools run without a person after untrusted content was read."""
    masking: dict[str, Any] | None = None
    """Personal data to mask before it reaches an external model (`{}` for every built-in
    detector; `detect`, `patterns`, `deny`, `allow`, `phone_regions` to choose)."""
    context: ContextDoc | None = None
    """What a model agent's prompt includes beyond instructions and task (podium.agents.context)."""
    context_budget: int | None = Field(None, ge=1)
    """Tokens a model agent's prompt may take; default: the model's window less the reply's."""
    max_reply_bytes: int | None = Field(None, ge=1)
    """The bound on a model agent's reply text (UTF-8 bytes); default from `max_tokens`."""
    max_tool_result_bytes: int | None = Field(None, ge=1)
    """The bound on a tool result (JSON, UTF-8 bytes) for tools that set none of their own."""
    checks: ChecksDoc | None = None
    """What every output of the agent must pass beyond its schema (`faithful:`)."""


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class RouterDoc(_Doc):
    model: str | None = None
    top: int = Field(3, ge=1)
    epsilon: float = Field(0.02, ge=0)
    min_score: float | None = Field(None, ge=-1, le=1)

    @model_validator(mode="before")
    @classmethod
    def _model_alone(cls, data: Any) -> Any:
        # `router: local` (a model's name alone) is short for `router: {model: local}`.
        return {"model": data} if isinstance(data, str) else data


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

    _split = field_validator("needs", "fallback", mode="before")(_listify)


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
    """Registry files or folders whose agents the workflow uses (`podium.engine.registry`)."""
    router: RouterDoc | None = None
    agents: dict[str, dict[str, Any]] | str | list[str] = {}
    tasks: dict[str, dict[str, Any]] = {}

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value


# -- YAML with line numbers ---------------------------------------------------------------


def _compose(text: str, source: str) -> tuple[Any, dict[str, int]]:
    """Parse YAML into plain data, and the line of every mapping key by dotted path."""
    try:
        return compose(text)
    except YAMLSyntaxError as e:
        raise WorkflowError([Problem(message=f"not valid YAML: {e.problem}", file=source,
                                     line=e.line)]) from None


# -- from documents to objects ------------------------------------------------------------


@contextmanager
def _importable(*folders: Path) -> Iterator[None]:
    added = [str(f) for f in folders if str(f) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for folder in added:
            sys.path.remove(folder)


def import_ref(ref: str, *, checked: bool = True) -> Any:
    """The object named by `module:attr` (or `module.attr`). `checked`: a workflow file
    names it, so the access policy's `functions.allow` must allow its module
    (`engine/_functions.py`).

    Raises:
        UserError: it cannot be imported, or may not be, with the reason.
    """
    module_name, sep, attr = ref.partition(":")
    if not sep:
        module_name, _, attr = ref.rpartition(".")
    if not module_name or not attr:
        raise UserError(f"{ref!r} is not of the form 'module:name'")
    if checked:
        check_module(ref, module_name)
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # an import runs arbitrary code; report whatever it raised
        raise UserError(f"cannot import {ref!r}: {type(e).__name__}: {e}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UserError(f"cannot import {ref!r}: module {module_name!r} has no "
                            f"{attr!r}") from None
    return obj


def _model_factory(doc: AgentDoc) -> Any:
    spec, options = doc.model or "", dict(doc.options)
    if doc.max_reply_bytes is not None and spec.startswith("openai:"):
        # The agent's bound also cuts a reply off while it is read.
        options.setdefault("max_reply_bytes", doc.max_reply_bytes)

    def make() -> Any:
        from podium.models import resolve_model

        return resolve_model(spec, base_url=doc.base_url, api_key_env=doc.api_key_env,
                             options=options)

    return make


def _context(agent: AgentDoc) -> ContextOptions | None:
    doc = agent.context
    if doc is None:
        return None
    summariser = None
    if doc.summariser is not None:
        summariser = _model_factory(AgentDoc.model_validate({"model": doc.summariser}))
    return ContextOptions(**doc.model_dump(exclude={"summariser"}), summariser=summariser)


def _planner(doc: PlannerDoc, workflow: Workflow, problems: list[Problem]) -> PlannerConfig:
    model: Any = _model_factory(AgentDoc.model_validate({
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


class _Broken(Agent):
    """Stands for an agent that could not be built, so that its tasks are still checked."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def run(self, task: TaskInput, ctx: TaskContext) -> Any:
        raise UserError(f"agent {self.name!r} could not be built")


def _problems(e: ValidationError, prefix: str, lines: dict[str, int], source: str
              ) -> list[Problem]:
    problems = []
    for err in e.errors():
        loc = [str(p) for p in err["loc"] if not str(p).startswith(("function-", "literal"))]
        field = ".".join([prefix, *loc] if prefix else loc).replace(".with_", ".with")
        path = field
        while path and path not in lines:
            path = path.rpartition(".")[0]
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
        problems.append(Problem(message=message, file=source, line=lines.get(path),
                                field=field))
    return problems


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
            problems += _problems(e, f"agents.{name}", lines, source)
            agents[name] = None
    for task_id, raw in doc.tasks.items():
        try:
            tasks[task_id] = TaskDoc.model_validate(raw)
        except ValidationError as e:
            problems += _problems(e, f"tasks.{task_id}", lines, source)
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
    needs = _listify(raw.get("needs", []) if isinstance(raw, dict) else [])
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
            workflow.add_agent(name, _Broken(name))
            continue
        _build_agent(name, agent, workflow, problems)
        problems += apply_hints(name, agent, workflow)
        if agent.budget is not None:
            workflow.agent_budgets[name] = Budget(**agent.budget.model_dump())
        if len(problems) > count:
            workflow.add_agent(name, _Broken(name))
    for task_id, task in task_docs.items():
        agent_doc = agent_docs.get(task.agent)
        if agent_doc is not None:
            # Agent-level policies are defaults that a task's own settings override.
            updates = {k: getattr(agent_doc, k) for k in ("retry", "timeout")
                       if k not in task.model_fields_set and getattr(agent_doc, k) is not None}
            task = task.model_copy(update=updates)
        _build_task(task_id, task, workflow, problems)
    return problems


_KINDS = ("function", "model", "sql", "http", "email")
_BUILTIN = {"sql": "podium.agents.sql:SQLAgent", "http": "podium.agents.http:HTTPAgent",
            "email": "podium.agents.email:EmailAgent"}


def _build_builtin(name: str, kind: str, agent: AgentDoc, workflow: Workflow,
                   problems: list[Problem]) -> None:
    config: dict[str, Any] = getattr(agent, kind)
    at = f"agents.{name}.{kind}"
    cls = import_ref(_BUILTIN[kind], checked=False)
    params = inspect.signature(cls).parameters
    unknown = [k for k in config if k not in params or k in ("name", "description", "skills")]
    for key in unknown:
        problems.append(workflow.problem(f"{at}.{key}", f"unknown field {key!r} for a {kind} "
                                         "agent"))
    if unknown:
        return
    try:
        built = cls(name, **config, description=agent.description, skills=agent.skills)
    except (UserError, TypeError, ValueError) as e:
        problems.append(workflow.problem(at, str(e)))
        return
    built.circuit = CircuitPolicy(**agent.circuit.model_dump()) if agent.circuit else None
    built.checks = agent.checks.build() if agent.checks else ()
    workflow.add_agent(name, built)


def _tools(agent: AgentDoc, at: str, workflow: Workflow, problems: list[Problem]
           ) -> tuple[list[Tool], list[MCPTools]]:
    """The agent's tools: `module:name` of a Tool or a typed function, or `server`,
    `server.tool` or `server.pattern*` of a server under `mcp_servers:`."""
    tools: list[Tool] = []
    selected: dict[str, list[str]] = {}
    origins: dict[str, dict[str, Problem]] = {}
    for i, ref in enumerate(agent.tools):
        if ":" not in ref:
            server, _, pattern = ref.partition(".")
            if server not in workflow.mcp_servers:
                declared = ", ".join(map(repr, workflow.mcp_servers)) or "none"
                problems.append(workflow.problem(
                    f"{at}.tools.{i}", f"{ref!r} names no tool: write 'module:name' for a "
                    f"Python tool, or a server under mcp_servers (declared: {declared})"))
                continue
            selected.setdefault(server, []).append(pattern or "*")
            # Where the name was written, for the check against the server's tools.
            origins.setdefault(server, {})[pattern or "*"] = workflow.problem(
                f"{at}.tools.{i}", "")
            continue
        try:
            workflow.code[f"{at}.tools.{i}"] = ref
            found = import_ref(ref)
            tools.append(found if isinstance(found, Tool) else make_tool(found))
        except (UserError, TypeError, ValueError) as e:
            problems.append(workflow.problem(f"{at}.tools.{i}", str(e)))
    if agent.tools and agent.function is not None:
        problems.append(workflow.problem(f"{at}.tools", "only model agents call tools"))
    if agent.allow_tools is not None:
        if agent.function is not None:
            problems.append(workflow.problem(f"{at}.allow_tools", "only model agents call tools"))
        given = [t.name for t in tools]
        for i, problem in allowlist_problems(agent.allow_tools, given,
                                             [f"{s}__" for s in selected]):
            problems.append(workflow.problem(f"{at}.allow_tools.{i}", problem))

    return tools, [MCPTools(workflow.mcp_servers[s], p, origins[s])
                   for s, p in selected.items()]


def _build_agent(name: str, agent: AgentDoc, workflow: Workflow,
                 problems: list[Problem]) -> None:
    at = f"agents.{name}"
    kinds = [k for k in _KINDS if getattr(agent, k) is not None]
    if len(kinds) != 1:
        problems.append(workflow.problem(
            at, "give exactly one of `function:`, `model:`, `sql:`, `http:` or `email:`"))
        return
    for key in ("context", "context_budget", "max_reply_bytes", "max_tool_result_bytes"):
        if getattr(agent, key) is not None and kinds[0] != "model":
            problems.append(workflow.problem(f"{at}.{key}", f"only model agents take {key}"))
    if kinds[0] in _BUILTIN:
        _build_builtin(name, kinds[0], agent, workflow, problems)
        return
    output: Any = agent.output if isinstance(agent.output, dict) else None
    if isinstance(agent.output, str):
        try:
            workflow.code[f"{at}.output"] = agent.output
            output = import_ref(agent.output)
        except UserError as e:
            problems.append(workflow.problem(f"{at}.output", str(e)))
    circuit = (CircuitPolicy(**agent.circuit.model_dump()) if agent.circuit else None)
    if agent.function is not None:
        try:
            workflow.code[f"{at}.function"] = agent.function
            ref = import_ref(agent.function)
        except UserError as e:
            problems.append(workflow.problem(f"{at}.function", str(e)))
            return
        if isinstance(ref, Agent):
            # An agent built in Python (an LLMAgent with its tools, say) used as it is.
            workflow.add_agent(name, ref)
            return
        if not callable(ref):
            problems.append(workflow.problem(f"{at}.function",
                                             f"{agent.function!r} is neither callable nor "
                                             "an Agent"))
            return
        from podium.core.function import FunctionAgent

        try:
            fn_agent = FunctionAgent(ref, name=name, description=agent.description,
                                     skills=agent.skills)
        except (TypeError, ValueError) as e:
            problems.append(workflow.problem(
                f"{at}.function", f"cannot call {agent.function!r} as an agent: {e}"))
            return
        fn_agent.output = output  # type: ignore[attr-defined]
        fn_agent.circuit = circuit  # type: ignore[attr-defined]
        fn_agent.checks = agent.checks.build() if agent.checks else ()  # type: ignore[attr-defined]
        workflow.add_agent(name, fn_agent)
    else:
        _build_model_agent(name, agent, output, circuit, workflow, problems)


def _build_model_agent(name: str, agent: AgentDoc, output: Any, circuit: CircuitPolicy | None,
                       workflow: Workflow, problems: list[Problem]) -> None:
    at = f"agents.{name}"
    if (agent.model or "").startswith("local:"):
        from podium.models import model_spec_problem

        packaged = model_spec_problem(agent.model or "")
        if packaged is not None:
            problems.append(workflow.problem(f"{at}.model", packaged))
            return
    elif not (agent.model == "local"
              or (agent.model or "").startswith(("openai:", "anthropic:"))):
        problems.append(workflow.problem(
            f"{at}.model", f"unknown model {agent.model!r}; use 'local', "
                           "'local:NAME' (a packaged model), 'openai:NAME' (with base_url "
                           "for other servers) or 'anthropic:NAME'"))
        return
    tools, toolsets = _tools(agent, at, workflow, problems)
    summariser = agent.context.summariser if agent.context else None
    if summariser is not None and not (summariser == "local" or summariser.startswith(
            ("openai:", "anthropic:"))):
        problems.append(workflow.problem(
            f"{at}.context.summariser", f"unknown model {summariser!r}; use 'local', "
                                        "'openai:NAME' or 'anthropic:NAME'"))
    masking = None
    if agent.masking is not None:
        try:
            masking = MaskingPolicy.from_mapping(agent.masking)
        except UserError as e:
            problems.append(workflow.problem(f"{at}.masking", str(e)))
    try:
        llm = LLMAgent(_model_factory(agent), name=name, instructions=agent.instructions,
                       output=output, description=agent.description, skills=agent.skills,
                       max_tokens=agent.max_tokens, temperature=agent.temperature,
                       tools=tools, max_turns=agent.max_turns,
                       max_argument_repairs=agent.max_argument_repairs,
                       max_repairs=agent.max_repairs, cache=agent.cache,
                       toolsets=toolsets, masking=masking, context=_context(agent),
                       context_budget=agent.context_budget,
                       allowed_tools=_allowed(agent, tools, toolsets),
                       high_risk_without_approval=agent.high_risk_without_approval,
                       max_reply_bytes=agent.max_reply_bytes,
                       max_tool_result_bytes=agent.max_tool_result_bytes,
                       checks=agent.checks.build() if agent.checks else ())
    except UserError as e:
        problems.append(workflow.problem(f"{at}.tools", str(e)))
        return
    llm.circuit = circuit  # type: ignore[attr-defined]
    workflow.add_agent(name, llm)


def _allowed(agent: AgentDoc, tools: list[Tool], toolsets: list[MCPTools]
             ) -> list[str] | None:
    """The allowlist as the agent takes it, less the bad entries `_tools` reported."""
    if agent.allow_tools is None:
        return None
    bad = {i for i, _ in allowlist_problems(agent.allow_tools, [t.name for t in tools],
                                            [f"{s.server.name}__" for s in toolsets])}
    return [e for i, e in enumerate(agent.allow_tools) if i not in bad]


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


def parse_workflow(text: str, source: str = "<string>", *, base: Path | None = None
                   ) -> Workflow:
    """A workflow from YAML text. `base` is the folder its imports are resolved from.

    Raises:
        WorkflowError: every problem found, each naming the file, line and field.
    """
    data, lines = _compose(text, source)
    if not isinstance(data, dict):
        raise WorkflowError([Problem(message="a workflow file is a mapping with name, inputs, "
                                     "agents and tasks", file=source, line=1)])
    try:
        doc = WorkflowDoc.model_validate(data)
    except ValidationError as e:
        raise WorkflowError(_problems(e, "", lines, source)) from None
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
    with _importable(Path.cwd(), *([base] if base else [])):
        servers, server_problems = mcp_servers(doc.mcp_servers, lines, source, base)
        workflow.mcp_servers.update(servers)
        problems += server_problems
        problems += add_registry(workflow, registry_refs(doc), base, own=agent_docs)
        problems += _build(agent_docs, task_docs, workflow)
        problems += build_pattern_agents(patterns, workflow)
        if doc.planner is not None:
            workflow.planner = _planner(doc.planner, workflow, problems)
    from podium.engine.check import problems as check_problems

    problems += check_problems(workflow)
    if problems:
        raise WorkflowError(problems)
    return workflow


def load_workflow(path: str | Path, *, policy: Policy | None = None) -> Workflow:
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


