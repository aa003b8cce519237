"""The agent protocol: what a task hands an agent, and what the agent may use."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from podium.core.events import NoteAdded, Observation, StepCompleted
from podium.core.faithful import Faithful
from podium.core.memory import MemoryAccess
from podium.core.principal import Principal
from podium.core.untrusted import Provenance

JSON = Any
"""A JSON value: dict, list, str, int, float, bool or None."""

RecordFn = Callable[[str, Observation], Awaitable[None]]
"""Journals an observation `(task key, observation)` about an attempt."""
AuthorizeFn = Callable[[str, str, str, frozenset[str]], Awaitable[None]]
"""Checks `(task key, action, resource, tags)` for the run's principal; raises
PermissionDenied."""


async def _discard(key: str, observation: Observation) -> None:
    return None


def _keep_all(value: dict[str, JSON]) -> bool:
    return True


def _no_notes() -> Sequence[Mapping[str, JSON]]:
    return ()


SessionThread = Callable[[], Awaitable[Sequence[Mapping[str, JSON]]]]
"""Loads the earlier runs of the run's session (see `TaskContext.session_thread`)."""


class ReplyCache(Protocol):
    """Where model replies are kept between runs, by a key that says what was asked; the
    journal's store is one."""

    async def cache_get(self, key: str) -> dict[str, JSON] | None:
        """The value stored under `key`, or None."""

    async def cache_put(self, key: str, value: dict[str, JSON]) -> None:
        """Store `value` under `key`, replacing any value there."""


T = TypeVar("T")


class VaultStore(Protocol):
    """Where a run's masking vault is kept between tasks, attempts and crashes (the
    journal's store, encrypted under the run's data key)."""

    async def vault_get(self, run_id: str) -> dict[str, str] | None:
        """The run's placeholders and their values, or None."""

    async def vault_put(self, run_id: str, entries: dict[str, str]) -> None:
        """Keep the run's placeholders and their values, replacing what was kept."""


class Resources(Protocol):
    """What the engine gives a run's agents: resources opened once per run."""

    async def get(self, key: str, opener: Callable[[], AbstractAsyncContextManager[T]]
                  ) -> T: ...


class Executor(Protocol):
    """Where the body of a sync function agent runs: the engine's runs it where it never
    blocks other tasks and where an attempt that times out or is cancelled can be stopped
    (`podium.engine.executors.local`)."""

    async def call(self, fn: Callable[..., Any], kwargs: dict[str, Any], ctx: TaskContext,
                   *, stoppable: bool) -> Any:
        """`fn(**kwargs)` for the attempt `ctx` (a `ctx` argument is that context);
        `stoppable` when the attempt has a time limit, so that running it where it can be
        killed is worth a cost."""
        ...


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """What the engine lends the agents of a run, built once per run; a new capability is
    one field here. Agents reach them through `TaskContext`'s methods. A context without
    them (an agent run outside an engine) journals nothing, caches nothing, streams to
    nobody, has no resources, no notes and no session, and allows everything."""

    record: RecordFn = _discard
    """Journals an attempt's observations and steps."""
    on_token: Callable[[str, str], None] | None = None
    """Shows `(task key, text)` of a reply as it is written; None when nobody watches."""
    authorize: AuthorizeFn | None = None
    """Checks actions against the access policy, on behalf of the run's principal."""
    cache: ReplyCache | None = None
    """Where model replies are kept between runs."""
    resources: Resources | None = None
    """Resources opened once per run (an MCP connection, say)."""
    vaults: VaultStore | None = None
    """Where the run's masking vault is kept."""
    notes: Callable[[], Sequence[Mapping[str, JSON]]] = _no_notes
    """The run's shared notes so far."""
    session_thread: SessionThread | None = None
    """Loads the earlier runs of the run's session."""
    executor: Executor | None = None
    """Where sync function agents run."""


NO_CAPABILITIES = Capabilities()
"""What a context made outside an engine has."""


@dataclass
class _StepCursor:
    next: int = 0
    diverged: bool = False
    replay: list[Mapping[str, Any]] | None = None
    """The journaled steps of this cursor's scope, picked out at the first step."""


@dataclass(frozen=True, kw_only=True)
class TaskContext:
    """What an agent knows about the run it works for.

    A function agent receives it as its `ctx` parameter.
    """

    run_id: str
    """The run this attempt belongs to."""
    task_id: str
    """The task's id in the workflow (for a fan-out item, the task's id)."""
    attempt: int
    """1 for the first attempt, counting retries and fallbacks."""
    idempotency_key: str
    """Stable for this task (and fan-out item) within this run, whatever crashes or retries:
    an agent with side effects should make them idempotent under this key."""
    inputs: Mapping[str, JSON]
    """The run's inputs."""
    outputs: Mapping[str, JSON]
    """The outputs of every task this one depends on, directly or not, by task id."""
    workflow: str = ""
    """The workflow's name."""
    item: JSON = None
    """For a `for_each` task, the current item."""
    index: int | None = None
    """For a `for_each` task, the current item's position."""
    principal: Principal | None = None
    """Who the run is on behalf of; None for a run started without one and no policy."""
    session: str | None = None
    """The session the run belongs to, if it was started with one."""
    approval: Mapping[str, JSON] | None = None
    """A person's answer to the tool call this task waited on (`approved`, `by`,
    `reason`, and `tool_call`, the call they were shown); None when there is none."""
    memory: MemoryAccess | None = None
    """Long-term memory bound to the namespace the task declares (`memory:`), for memory
    tools; None when the task declares none."""
    _lent: Capabilities = field(default=NO_CAPABILITIES, repr=False)
    """What the engine lends the run's agents."""
    _key: str = field(default="", repr=False)
    """The task's key in the journal: its id, or `id[index]` for a fan-out item."""
    _replay: Sequence[Mapping[str, JSON]] = field(default=(), repr=False)
    _steps: _StepCursor = field(default_factory=lambda: _StepCursor(), repr=False)
    _scope: str = field(default="", repr=False)
    """Where this context's steps sit: "" for the task's own, `/3` for those taken inside
    its step 3 (`nested_step`), `/3/0` deeper still."""
    _provenance: Provenance = field(default_factory=Provenance, repr=False)

    @property
    def untrusted(self) -> tuple[str, ...]:
        """The sources of untrusted content this attempt has read so far (`input:NAME`,
        `output:TASK`, `tool:NAME`, `memory`): its output is untrusted when there are any,
        and `high_risk` tool calls wait for a person."""
        return self._provenance.sources

    def mark_untrusted(self, *sources: str) -> None:
        """Note untrusted content this attempt read from elsewhere than `inputs`, `outputs`
        and its templates (which are noted already), e.g. `tool:fetch_page`."""
        self._provenance.add(*sources)

    @property
    def vaults(self) -> VaultStore | None:
        """Where the run keeps its masking vault; None outside an engine."""
        return self._lent.vaults

    @property
    def executor(self) -> Executor | None:
        """Where sync function agents run; None outside an engine."""
        return self._lent.executor

    @property
    def notes(self) -> list[Mapping[str, JSON]]:
        """The run's shared notes so far, oldest first: `{"text", "by", "at"}`, `by` being
        the key of the task that wrote it, and `untrusted` when the attempt that wrote it
        had read untrusted content (reading such notes is reading untrusted content)."""
        found = list(self._lent.notes())
        self._provenance.add(*(f"note:{n.get('by')}" for n in found if n.get("untrusted")))
        return found

    async def note(self, text: str) -> None:
        """Add a note to the run's shared blackboard, journaled. Later tasks see it in
        `notes`, and LLM agents that opt in (`context: {notes: true}`) in their prompt.

        Raises:
            ValueError: `text` is not a non-empty string.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"task {self.task_id!r}: a note is a non-empty string, "
                             f"got {text!r}")
        untrusted = list(self.untrusted) or None
        await self._lent.record(self._key, NoteAdded(text=text.strip(), untrusted=untrusted))

    async def session_thread(self) -> list[Mapping[str, JSON]]:
        """The earlier runs of this run's session, oldest first, each
        `{"run_id", "workflow", "status", "started_at", "inputs", "outputs", "notes"}`;
        empty when the run has no session (or is the session's first)."""
        thread = self._lent.session_thread
        if thread is None:
            return []
        return list(await thread())

    @property
    def streaming(self) -> bool:
        """Whether someone watches this attempt's text as it is written: an agent should
        then hand its model an `on_token` that calls `token`."""
        return self._lent.on_token is not None

    def token(self, text: str) -> None:
        """Show a piece of the reply being written to whoever watches the run (the CLI's
        progress display). Not journaled: the full reply is, once complete."""
        on_token = self._lent.on_token
        if on_token is not None:
            on_token(self._key, text)

    async def resource(self, key: str, opener: Callable[[], AbstractAsyncContextManager[T]]
                       ) -> T:
        """A resource shared by the run's tasks (an MCP connection, say), opened by
        `opener()` the first time `key` is asked for and closed when the run's drive ends.
        Outside a run, each call opens one that the caller must not expect to be closed."""
        resources = self._lent.resources
        if resources is None:
            raise RuntimeError("resources are only available to agents inside a run")
        return await resources.get(key, opener)

    async def authorize(self, action: str, resource: str, *,
                        tags: Collection[str] = ()) -> None:
        """Check that the run's principal may do `action` (`tool:call`, `memory:read`, …) on
        `resource`; the engine audits the decision. Without an access policy in force
        everything is allowed.

        Raises:
            PermissionDenied: the policy does not allow it.
        """
        authorize = self._lent.authorize
        if authorize is not None:
            await authorize(self._key, action, resource, frozenset(tags))

    async def delegate(self, agent: Agent, task: TaskInput) -> JSON:
        """Hand `task` to another agent within this attempt, on behalf of the run's
        principal: the principal must be allowed to use `agent` (`agent:use`), and
        everything `agent` does is checked against the principal, not against the agent
        that handed the work over.

        Raises:
            PermissionDenied: the principal may not use `agent`.
        """
        await self.authorize("agent:use", agent.name)
        return await agent.run(task, self)

    async def record(self, observation: Observation) -> None:
        """Journal an observation about this attempt: `ModelCalled` (tokens, latency) or
        `ToolCalled` (name, arguments, result or error, duration), from `podium.core.events`."""
        await self._lent.record(self._key, observation)

    async def step(self, kind: str, name: str, run: Callable[[], Awaitable[JSON]]) -> JSON:
        """Run one durable step of this task (a model reply, a tool call) exactly once.

        Steps are numbered in the order an agent takes them. The first time, `run()` is
        called and its JSON result journaled; when the task runs again after a crash
        interrupted it, the journaled results are returned in the same order instead, so
        a tool call that completed is not repeated. Once the agent asks for a different
        step than the journal holds (its path changed), every later step runs live.
        """
        cursor = self._steps
        if cursor.replay is None:
            cursor.replay = [s for s in self._replay if s.get("scope", "") == self._scope]
        index = cursor.next
        cursor.next += 1
        if not cursor.diverged and index < len(cursor.replay):
            recorded = cursor.replay[index]
            if recorded.get("kind") == kind and recorded.get("name") == name:
                return recorded.get("result")
            cursor.diverged = True
        result = await run()
        scope = self._scope or None
        await self._lent.record(self._key, StepCompleted(index=index, kind=kind, name=name,
                                                         result=result, scope=scope))
        return result

    async def nested_step(self, kind: str, name: str,
                          run: Callable[[TaskContext], Awaitable[JSON]]) -> JSON:
        """A durable step whose body takes durable steps of its own: a sub-agent called by
        a composite agent, whose model turns and tool calls are steps too.

        `run` receives a context for the body, whose steps are journaled under this one.
        Once the body completed, its result is replayed like any step's and the body does
        not run again; when a crash interrupted the body, it runs again and replays the
        inner steps that had completed.
        """
        index = self._steps.next
        parent = self._steps

        def inner() -> Awaitable[JSON]:
            # A body that runs on a changed path must not replay what the old path did.
            cursor = _StepCursor(diverged=parent.diverged)
            return run(replace(self, _scope=f"{self._scope}/{index}", _steps=cursor))

        return await self.step(kind, name, inner)

    async def cached(
        self, key: str, run: Callable[[], Awaitable[dict[str, JSON]]], *,
        keep: Callable[[dict[str, JSON]], bool] = _keep_all,
    ) -> tuple[dict[str, JSON], bool]:
        """The value the reply cache holds under `key`, else `run()`'s, stored for the next
        time when `keep` accepts it (a reply that proved unusable should not be served
        again to a retry).

        Returns the value and whether it came from the cache. Without a cache (an agent
        run outside an engine) `run()` is called every time. Use it inside `step()`: the
        cache spares a call across runs, the step a repeat within one.
        """
        cache = self._lent.cache
        if cache is None:
            return await run(), False
        hit = await cache.cache_get(key)
        if hit is not None:
            return hit, True
        value = await run()
        if keep(value):
            await cache.cache_put(key, value)
        return value, False


@dataclass(frozen=True, kw_only=True)
class TaskInput:
    """What the task asks of the agent, rendered for this attempt."""

    args: Mapping[str, JSON]
    """The task's `with:` values, templates rendered."""
    prompt: str | None = None
    """The task's `prompt:`, rendered; None when the task has none."""
    output_schema: dict[str, JSON] | None = None
    """The JSON schema the output must satisfy, when the task or agent declares one."""
    output: Any = None
    """The output spec itself (a pydantic model class or a JSON schema), which the engine
    checks the output against; an agent can check with it first (and ask for repairs)."""
    memories: Sequence[JSON] = ()
    """Memories retrieved for this task, most relevant first: text, or objects with a
    `text` field; an LLM agent places them in its prompt within its context budget."""
    untrusted: tuple[str, ...] = ()
    """Sources of untrusted content in `prompt` and `args`: the run inputs not marked
    trusted (`input:NAME`) and the untrusted upstream outputs (`output:TASK`) the task's
    templates, its `when:` and its `for_each:` item read."""
    timeout: float | None = None
    """Seconds this attempt may take (the task's `timeout`), None without a limit. The
    engine cancels the attempt then; an agent whose work cannot be cancelled where it runs
    (a blocking call) should run it where it can be stopped (a process)."""
    checks: tuple[Faithful, ...] = ()
    """Checks the output must pass beyond its schema (the task's and the agent's own); the
    engine applies them to the output, and an agent can apply them first (and ask for
    repairs), as an LLM agent does."""


class Agent(ABC):
    """A worker that can take a task: an LLM, a Python function, a human, a service."""

    name: str
    description: str = ""
    """What the agent does, in words: the router ranks agents by its meaning."""
    skills: tuple[str, ...] = ()
    """Skills a task can ask for by name (`skill:`) instead of naming an agent."""
    input_schema: dict[str, JSON] | None = None
    """The JSON schema of the `with:` values the agent takes, when it declares one."""
    cost: float | None = None
    """A hint of what one task costs (in USD, or any unit shared by the agents compared):
    between agents that fit a task equally well, the router prefers the cheaper."""
    latency: float | None = None
    """A hint of how many seconds one task takes: after cost, the router prefers the
    faster."""
    provides: str | None = None
    """The name its output goes by: the planner gives a task of this agent that id, so
    that a function parameter of that name in a later task reads the output."""

    @abstractmethod
    async def run(self, task: TaskInput, ctx: TaskContext) -> JSON:
        """Do the task and return its output (a JSON value or a pydantic model)."""
