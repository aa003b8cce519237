"""Workflows: named definitions of tasks and the agents that do them.

A workflow written in YAML and one built in Python are the same objects::

    wf = Workflow("greet", inputs={"name": InputSpec(type="string")})

    @wf.task()
    def hello(name: str) -> str:
        return f"Hello, {name}"

    @wf.task(needs=["hello"], retry=RetryPolicy(attempts=3))
    async def shout(hello: str) -> str:
        return hello.upper()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from podium.core.agent import Agent
from podium.core.faithful import Faithful
from podium.core.lineage import Lineage
from podium.core.memory import MemoryQuery
from podium.core.plan import PLAN_KEY, PlannerConfig, goal_problems
from podium.core.policy import Budget, CircuitPolicy, OnFailure, RetryPolicy, TaskPolicy
from podium.core.registry import Declared, RouterPolicy, skill_problem
from podium.core.templates import TemplateProblem, references, template_strings
from podium.errors import Problem, WorkflowError

InputType = Literal["string", "integer", "number", "boolean", "list", "object", "any"]
HUMAN = "human"
"""The built-in agent that waits for a person to approve or answer."""
SCOPE_ROOTS = frozenset({"inputs", "outputs", "item", "index", "run"})
_JINJA_GLOBALS = frozenset({"range", "dict", "lipsum", "cycler", "joiner", "namespace", "true",
                            "false", "none", "True", "False", "None", "loop"})

AgentRef = Agent | Callable[..., Any]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """One input a run takes."""

    type: InputType = "any"
    default: Any = None
    required: bool = True
    """Whether a run must supply it; False when a default is given."""
    description: str = ""
    trusted: bool | None = None
    """Whether the value may instruct the run's LLM agents. None (the default): trusted
    for `integer`, `number` and `boolean` inputs, which cannot carry instructions, and
    untrusted for text and structures (`string`, `list`, `object`, `any`), which may come
    from a customer, a web page or a webhook. See docs/tools-security.md."""
    subject: bool = False
    """Whether its value names whom the run is about (a patient, a customer): the run is
    tagged with it, so erasing that subject erases the run (`podium memory forget
    --subject`)."""

    @property
    def is_trusted(self) -> bool:
        """Whether the input counts as trusted, the default applied."""
        if self.trusted is not None:
            return self.trusted
        return self.type in ("integer", "number", "boolean")


@dataclass(frozen=True, kw_only=True)
class Task:
    """One unit of work in a workflow."""

    id: str
    agent: str = ""
    """The name of the agent that does it, or `human`; empty when the router chooses one by
    `skill` and `description` (or prompt)."""
    needs: tuple[str, ...] = ()
    """Tasks whose outputs this one needs; it starts when they are done."""
    args: Mapping[str, Any] = field(default_factory=dict)
    """The `with:` values; strings may be templates."""
    prompt: str | None = None
    """A template rendered into the agent's prompt (LLM and human agents)."""
    when: str | None = None
    """A condition; when false the task is skipped, and so are tasks that need only it."""
    for_each: str | None = None
    """An expression giving a list; the task runs once per item (`item`, `index`)."""
    concurrency: int | None = None
    """With `for_each`, how many items run at once; None for no limit."""
    output: Any = None
    """A pydantic model class or a JSON schema the output must satisfy."""
    checks: tuple[Faithful, ...] = ()
    """Checks the output must pass beyond its schema, whichever agent writes it (a
    faithfulness check: `podium.core.faithful`); a failure is an `OutputInvalid`."""
    policy: TaskPolicy = field(default_factory=TaskPolicy)
    description: str = ""
    """What the task is for, in words; without `agent`, the router ranks agents by it."""
    memory: MemoryQuery | None = None
    """Long-term memory the task reads (`query`) and binds its memory tools to."""
    skill: str | None = None
    """Without `agent`: the skill the agent the router chooses must have."""
    router: RouterPolicy | None = None
    """Without `agent`: how the router chooses (None: the workflow's `router`)."""

    @property
    def routed(self) -> bool:
        """Whether the router chooses the task's agent (it names none)."""
        return not self.agent


class Workflow:
    """A named, versioned definition of tasks and agents."""

    def __init__(
        self,
        name: str,
        *,
        version: str = "1",
        description: str = "",
        inputs: Mapping[str, InputSpec] | None = None,
        timeout: float | None = None,
        circuit: CircuitPolicy | None = None,
        budget: Budget | None = None,
        source: str | None = None,
        goal: str | None = None,
        planner: PlannerConfig | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.description = description
        self.inputs: dict[str, InputSpec] = dict(inputs or {})
        self.timeout = timeout
        """Seconds the run may execute (time waiting for a human does not count)."""
        self.circuit = circuit or CircuitPolicy()
        self.budget = budget or Budget()
        """Limits on the whole run."""
        self.agent_budgets: dict[str, Budget] = {}
        """Limits per agent, by agent name, summed over the run."""
        self.mcp_servers: dict[str, object] = {}
        """MCP servers (`podium.tools.mcp.MCPServer`) the agents take tools from, by name."""
        self.source = source
        """The file the workflow was read from, when it was."""
        self.agents: dict[str, AgentRef] = {}
        self.declared: dict[str, Declared] = {}
        """Where agents that were not declared in `source` itself were (a registry file)."""
        self.router = RouterPolicy()
        """How the router chooses agents for tasks that name none and set no `router`."""
        self.tasks: dict[str, Task] = {}
        self.lines: dict[str, int] = {}
        """Line numbers in `source` by dotted field path, for error messages."""
        self.code: dict[str, str] = {}
        """The Python code `source` names (`module:name`), by dotted field path; an engine
        with an access policy checks it against the policy's `functions.allow`."""
        self.goal = goal
        """What a planner model turns into tasks (a template over the inputs), beside or
        instead of `tasks`; see `podium.core.plan`."""
        self.planner = planner

    # -- building ---------------------------------------------------------------------

    def add_agent(self, name: str, agent: AgentRef) -> None:
        """Register an agent (an `Agent`, or a callable for a function agent) under `name`."""
        self.agents[name] = agent

    def add_task(
        self,
        id: str,
        *,
        agent: str | AgentRef = "",
        needs: Iterable[str] = (),
        args: Mapping[str, Any] | None = None,
        prompt: str | None = None,
        when: str | None = None,
        for_each: str | None = None,
        concurrency: int | None = None,
        output: Any = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        fallback: Iterable[str] = (),
        on_failure: OnFailure = "fail",
        default: Any = ...,
        description: str = "",
        skill: str | None = None,
        router: RouterPolicy | None = None,
        memory: MemoryQuery | None = None,
        checks: Iterable[Faithful] = (),
    ) -> Task:
        """Add a task. `agent` is an agent's name, or an agent (registered under `id`);
        without one, the router chooses an agent by `skill` and `description` when the task
        starts."""
        if not isinstance(agent, str):
            self.add_agent(id, agent)
            agent = id
        policy = TaskPolicy(
            retry=retry or RetryPolicy(),
            timeout=timeout,
            fallback=tuple(fallback),
            on_failure=on_failure,
            default=None if default is ... else default,
            has_default=default is not ...,
        )
        task = Task(
            id=id, agent=agent, needs=tuple(needs), args=dict(args or {}), prompt=prompt,
            when=when, for_each=for_each, concurrency=concurrency, output=output,
            policy=policy, description=description, skill=skill, router=router,
            memory=memory, checks=tuple(checks),
        )
        self.tasks[id] = task
        return task

    def task(self, id: str | None = None, **options: Any) -> Callable[[F], F]:
        """Decorator: the function becomes a function agent and a task of the same name."""

        def register(fn: F) -> F:
            self.add_task(id or fn.__name__, agent=fn, **options)
            return fn

        return register

    def subjects(self, inputs: Mapping[str, Any]) -> list[str]:
        """The values of the inputs marked `subject`: whom a run with `inputs` is about."""
        return [str(inputs[name]) for name, spec in self.inputs.items()
                if spec.subject and inputs.get(name) not in (None, "")]

    # -- checking ---------------------------------------------------------------------

    def problem(self, field: str, message: str) -> Problem:
        """A problem at `field`, with the nearest known line of the source."""
        path = field
        while path and path not in self.lines:
            path = path.rpartition(".")[0]
        return Problem(message=message, file=self.source, line=self.lines.get(path), field=field)

    def ancestor_map(self) -> Lineage:
        """The upstream tasks of every task: `ancestor_map()[t]` is a set-like view of the
        tasks `t` needs, directly or not, asked about without storing them (see
        `podium.core.lineage`); a snapshot of the tasks as they are now."""
        return Lineage({t: task.needs for t, task in self.tasks.items()})

    def ancestors(self, task_id: str) -> set[str]:
        """Every task `task_id` depends on, directly or not (cycles tolerated)."""
        seen: set[str] = set()
        stack = list(self.tasks[task_id].needs) if task_id in self.tasks else []
        while stack:
            current = stack.pop()
            if current in seen or current not in self.tasks:
                continue
            seen.add(current)
            stack.extend(self.tasks[current].needs)
        return seen

    def structure_problems(self, upstream: Lineage | None = None) -> list[Problem]:
        """Every problem of structure: names, references, cycles and templates.
        `upstream`: `ancestor_map()` when the caller has it already."""
        problems: list[Problem] = []
        if not self.tasks and not self.goal:
            problems.append(self.problem("tasks", "a workflow needs at least one task "
                                         "(or a goal: for a planner)"))
        problems += self._goal_problems()
        if upstream is None:
            upstream = self.ancestor_map()
        for task in self.tasks.values():
            problems += self._task_problems(task, upstream[task.id])
        cycle = self.find_cycle() if upstream.cyclic else None
        if cycle:
            path = " → ".join(repr(t) for t in cycle)
            problems.append(self.problem(f"tasks.{cycle[0]}.needs", f"cycle: {path}"))
        return problems

    def _goal_problems(self) -> list[Problem]:
        if self.goal is None:
            return ([self.problem("planner", "a planner needs a goal: to plan for")]
                    if self.planner is not None else [])
        problems = [self.problem("goal", m) for m in goal_problems(self.goal, self.inputs)]
        if self.planner is None:
            problems.append(self.problem("goal", "a goal needs a planner: with a model"))
        else:
            problems += [self.problem(f, m) for f, m in self.planner.problems()]
        if PLAN_KEY in self.tasks:
            problems.append(self.problem(f"tasks.{PLAN_KEY}", f"{PLAN_KEY!r} names the "
                                         "planning step in a workflow with a goal; rename "
                                         "the task"))
        return problems

    def _task_problems(self, task: Task, upstream: Set[str]) -> list[Problem]:
        at = f"tasks.{task.id}"
        problems = self._routing_problems(task)
        for i, name in enumerate((task.agent, *task.policy.fallback)):
            if i == 0 and task.routed:
                continue
            if name != HUMAN and name not in self.agents:
                known = ", ".join(repr(a) for a in sorted(self.agents)) or "none"
                field = f"{at}.agent" if i == 0 else f"{at}.fallback"
                problems.append(self.problem(
                    field, f"unknown agent {name!r}; known agents: {known} (and 'human')"))
        for need in task.needs:
            if need not in self.tasks:
                problems.append(self.problem(f"{at}.needs", f"unknown task {need!r} in needs"))
        if task.concurrency is not None and task.concurrency < 1:
            problems.append(self.problem(f"{at}.concurrency", "must be at least 1"))
        if task.concurrency is not None and task.for_each is None:
            problems.append(self.problem(f"{at}.concurrency", "only applies with for_each"))
        if task.policy.retry.attempts < 1:
            problems.append(self.problem(f"{at}.retry.attempts", "must be at least 1"))
        if task.policy.timeout is not None and task.policy.timeout <= 0:
            problems.append(self.problem(f"{at}.timeout", "must be a positive number of seconds"))
        problems += self._template_problems(task, upstream)
        return problems

    def _routing_problems(self, task: Task) -> list[Problem]:
        at = f"tasks.{task.id}"
        if not task.routed:
            if task.skill is not None or task.router is not None:
                field = "skill" if task.skill is not None else "router"
                return [self.problem(f"{at}.{field}", f"{field}: applies only to a task "
                                     "that names no agent; drop agent: or drop this")]
            return []
        if task.skill is None and not task.description.strip():
            return [self.problem(at, "give agent:, or skill: and/or description: so the "
                                     "router can choose an agent")]
        if task.skill is not None:
            message = skill_problem(task.skill, self.agents)
            if message:
                return [self.problem(f"{at}.skill", message)]
        elif not self.agents:
            return [self.problem(at, "the router has no agent to choose from: declare "
                                     "agents, or a registry:")]
        return []

    def _template_problems(self, task: Task, upstream: Set[str]) -> list[Problem]:
        at = f"tasks.{task.id}"
        sources: list[tuple[str, str, bool]] = [
            (f"{at}.with", s, False) for s in template_strings(task.args)
        ]
        if task.prompt:
            sources.append((f"{at}.prompt", task.prompt, False))
        if task.when:
            sources.append((f"{at}.when", task.when, True))
        if task.for_each:
            sources.append((f"{at}.for_each", task.for_each, True))
        if task.memory is not None:
            sources += [(f"{at}.memory.{name}", text, False) for name, text in (
                ("namespace", task.memory.namespace), ("query", task.memory.query),
                ("subject", task.memory.subject)) if text]
        problems = []
        for at_field, source, is_expression in sources:
            try:
                refs = list(references(source, expression=is_expression))
            except TemplateProblem as e:
                problems.append(self.problem(at_field, str(e)))
                continue
            for ref in refs:
                message = self._reference_problem(task, ref.root, ref.attr, upstream, at_field)
                if message:
                    problems.append(self.problem(at_field, message))
        return problems

    def _reference_problem(
        self, task: Task, root: str, attr: str | None, upstream: Set[str], field: str
    ) -> str | None:
        if root in _JINJA_GLOBALS:
            return None
        if root not in SCOPE_ROOTS:
            return f"unknown name {root!r}; templates can use inputs, outputs, item and index"
        if root in ("item", "index") and (task.for_each is None or field.endswith(".for_each")):
            return f"{root!r} is only defined in a task with for_each"
        if root == "inputs" and attr is not None and attr not in self.inputs:
            declared = ", ".join(repr(i) for i in sorted(self.inputs)) or "none"
            return f"unknown input {attr!r}; declared inputs: {declared}"
        if root == "outputs" and attr is not None:
            if attr not in self.tasks:
                return f"unknown task {attr!r} in outputs.{attr}"
            if attr not in upstream:
                return (f"outputs.{attr} is not upstream of task {task.id!r}; "
                        f"add {attr!r} to its needs")
        return None

    def find_cycle(self) -> list[str] | None:
        """A cycle among `needs`, as the task ids along it (first repeated last), or None."""
        done: set[str] = set()
        for root in self.tasks:
            if root in done:
                continue
            path: list[str] = [root]
            on_path = {root}
            stack = [iter(self.tasks[root].needs)]
            while stack:
                need = next(stack[-1], None)
                if need is None:
                    stack.pop()
                    done.add(path[-1])
                    on_path.discard(path.pop())
                elif need in on_path:
                    return [*path[path.index(need):], need]
                elif need in self.tasks and need not in done:
                    path.append(need)
                    on_path.add(need)
                    stack.append(iter(self.tasks[need].needs))
        return None

    def check(self) -> None:
        """Raise WorkflowError listing every structural problem, if there is any."""
        problems = self.structure_problems()
        if problems:
            raise WorkflowError(problems)

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, tasks={list(self.tasks)!r})"
