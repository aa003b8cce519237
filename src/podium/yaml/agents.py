"""The agents of a workflow or registry file: the `agents:` entry's document, and the
factories that build it into a function agent, a model agent (with its tools, masking and
context), or a built-in SQL, HTTP or email agent."""

from __future__ import annotations

import inspect
from typing import Any

import jsonschema
from pydantic import BaseModel, Field

from podium.agents.context import ContextOptions
from podium.agents.llm import LLMAgent
from podium.core.agent import Agent, TaskContext, TaskInput
from podium.core.policy import CircuitPolicy
from podium.core.workflow import Workflow
from podium.errors import Problem, UserError
from podium.security.masking import MaskingPolicy
from podium.tools import Tool, make_tool
from podium.tools.mediation import allowlist_problems
from podium.tools.toolset import MCPTools
from podium.yaml.code import import_ref
from podium.yaml.document import DOC_CONFIG
from podium.yaml.policies import AgentBudgetDoc, ChecksDoc, CircuitDoc, RetryDoc


class _Doc(BaseModel):
    model_config = DOC_CONFIG


class ContextDoc(_Doc):
    outputs: bool = False
    notes: bool = False
    session: bool | None = None
    note_tool: bool = False
    summarise: bool = True
    summariser: str | None = None
    """A model name (`local`, `openai:NAME`, ...) that writes summaries; default the agent's."""
    summary_tokens: int = Field(256, ge=16)


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


class Unbuilt(Agent):
    """Stands for an agent (or a pattern agent) that could not be built, so that its tasks
    are still checked."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def run(self, task: TaskInput, ctx: TaskContext) -> Any:
        raise UserError(f"agent {self.name!r} could not be built")


def model_factory(doc: AgentDoc) -> Any:
    """A function that makes the model `doc.model` names, when a run first needs it."""
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
        summariser = model_factory(AgentDoc.model_validate({"model": doc.summariser}))
    return ContextOptions(**doc.model_dump(exclude={"summariser"}), summariser=summariser)


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


def build_agent(name: str, agent: AgentDoc, workflow: Workflow,
                problems: list[Problem]) -> None:
    """Build the agent `agent` declares into `workflow` as `name`; problems go to
    `problems`, each naming the field."""
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
        llm = LLMAgent(model_factory(agent), name=name, instructions=agent.instructions,
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


def _schema_problems(schema: Any, at: str, scratch: Workflow) -> list[Problem]:
    if schema is None:
        return []
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as e:
        where = ".".join([at, *(str(p) for p in e.path)])
        return [scratch.problem(where, f"not a valid JSON schema: {e.message}")]
    return []


def apply_hints(name: str, doc: AgentDoc, workflow: Workflow) -> list[Problem]:
    """Give the built agent `name` its input schema and cost and latency hints from its
    document, after checking its schemas."""
    at = f"agents.{name}"
    problems = _schema_problems(doc.input, f"{at}.input", workflow)
    if isinstance(doc.output, dict):
        problems += _schema_problems(doc.output, f"{at}.output", workflow)
    agent = workflow.agents.get(name)
    if problems or not isinstance(agent, Agent):
        return problems
    if doc.input is not None:
        agent.input_schema = doc.input
    if doc.cost is not None:
        agent.cost = doc.cost
    if doc.latency is not None:
        agent.latency = doc.latency
    if doc.provides is not None:
        agent.provides = doc.provides
    return problems
