"""The task runner: one task's life under its policy. Routing (for a task that names no
agent), attempts, retries, timeouts, fallbacks, the circuit breaker, escalation to a human,
the safe default. Every step is journaled before it counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from podium.core.agent import Agent, Capabilities, TaskContext, TaskInput
from podium.core.events import (
    AgentSkipped,
    AttemptFailed,
    ModelCalled,
    NewEvent,
    Observation,
    TaskCompleted,
    TaskFailed,
    TaskRouted,
    TaskStarted,
    TaskWaiting,
    ToolCalled,
)
from podium.core.faithful import Faithful, Given
from podium.core.output import schema_of, to_json, validate
from podium.core.plan import PLAN_KEY
from podium.core.policy import CircuitPolicy
from podium.core.principal import Principal
from podium.core.registry import RouterPolicy
from podium.core.state import RunState, TaskState
from podium.core.templates import render
from podium.core.untrusted import (
    NO_SOURCES,
    Provenance,
    ScopeTaint,
    Sources,
    Tracked,
    render_prompt,
    sources,
)
from podium.core.workflow import HUMAN, Task
from podium.engine._memory import bind, recalled
from podium.engine.circuit import Breakers
from podium.engine.guard import Guard
from podium.engine.router import Router, default_router
from podium.errors import (
    ApprovalRequired,
    Escalate,
    JournalUnavailable,
    OutputInvalid,
    PermissionDenied,
    TaskTimeout,
    Unfaithful,
)
from podium.memory.store import MemoryStore
from podium.store.base import LeaseLost

Journal = Callable[..., Awaitable[None]]
Outcome = Literal["done", "waiting", "gave_up"]
FailureDecision = Literal["retry", "fallback", "escalate", "default", "fail", "ask_again"]
"""What follows a failed attempt (an `attempt_failed` event's `decision`); not rbac's
`AccessDecision`."""


_OBSERVATIONS = frozenset({"model_call", "tool_call", "step_completed", "note_added",
                           "context_assembled", "memory_recalled", "output_checked"})


def describe_error(error: BaseException) -> str:
    """An error as the journal records it: its class and message."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@dataclass(kw_only=True)
class TaskRunner:
    """Runs one task (or one fan-out item) of a run through its policy."""

    run_id: str
    workflow: str
    state: Callable[[], RunState]
    journal: Journal
    agents: Mapping[str, Agent]
    breakers: Breakers
    circuits: Mapping[str, CircuitPolicy]
    lent: Capabilities = field(default_factory=Capabilities)
    """What the run's agents are lent (the reply cache, resources, vaults, streaming, the
    session thread, the executor); the runner adds its own: journaling, the run's notes,
    and the guard's access checks."""
    guard: Guard | None = None
    """Checks the agents and tools the run uses against the access policy, and audits."""
    principal: Principal | None = None
    """Who the run is on behalf of: what is checked, whichever agent acts."""
    router_policy: RouterPolicy = field(default_factory=RouterPolicy)
    """How tasks that name no agent and set no `router` of their own are routed."""
    router: Router = field(default_factory=default_router)
    session: str | None = None
    """The run's session, if any."""
    untrusted_inputs: frozenset[str] = frozenset()
    """The run inputs not marked trusted: prompts delimit them, agents that read them hold
    high-risk tool calls for a person, and the outputs of tasks that read them are
    untrusted in turn."""
    memory: MemoryStore | None = None
    """Long-term memory for tasks that declare `memory:`."""
    subjects: tuple[str, ...] = ()
    """Whom the run is about (its inputs marked `subject`)."""

    def __post_init__(self) -> None:
        self.lent = replace(
            self.lent, record=self._record, notes=lambda: self.state().notes,
            authorize=None if self.guard is None else self.guard.authorizer(
                self.principal, self.run_id))

    def _chain(self, task: Task, ts: TaskState) -> list[str]:
        first = (ts.routing or {}).get("agent") or "" if task.routed else task.agent
        return [first, *task.policy.fallback]

    async def run(self, task: Task, key: str, scope: Mapping[str, Any]) -> None:
        """Bring the task to completed, waiting or failed, resuming where the journal stands."""
        ts = self.state().task(key)
        if task.routed and ts.routing is None:
            await self._route(task, key, scope)
            ts = self.state().task(key)
        if ts.status == "waiting":
            if ts.approval is None:
                return
            if await self._answered(task, ts, scope):
                return
        for name in self._chain(task, ts):
            if not name or name in ts.gave_up:
                continue
            if name == HUMAN:
                await self._wait_for_human(task, key, scope, "approval")
                return
            if not await self.breakers.allow(self._circuit_key(name), self.circuits[name]):
                await self.journal(NewEvent.of(AgentSkipped(agent=name, reason="circuit open"),
                                               task=key))
                continue
            if await self._try(task, key, name, scope) != "gave_up":
                return
        await self._exhausted(task, key, scope)

    async def _route(self, task: Task, key: str, scope: Mapping[str, Any]) -> None:
        """Journal the router's choice of an agent for task `key` (`task_routed`), among the
        run's agents, with the circuits as the breakers see them."""
        prompt = render(task.prompt, scope) if task.prompt else None

        async def is_open(name: str) -> bool:
            return await self.breakers.is_open(self._circuit_key(name), self.circuits[name])

        async def record(call: ModelCalled) -> None:
            await self.journal(NewEvent.of(call, task=key))

        decision = await self.router.decide(
            task, prompt=prompt, agents=self.agents, is_open=is_open,
            policy=task.router or self.router_policy, record=record)
        await self.journal(NewEvent.of(TaskRouted.from_data(decision.to_json()), task=key))

    def taint(self, task: Task, scope: Mapping[str, Any]) -> dict[str, Any]:
        """The untrusted sources of each name `task`'s templates can read in `scope`."""
        taint: dict[str, Any] = {
            "inputs": {n: frozenset({f"input:{n}"}) if n in self.untrusted_inputs
                       else NO_SOURCES for n in scope["inputs"]},
            "outputs": _OutputTaint(self.state, scope["outputs"])}
        if "item" in scope:
            # An item is what its task's `for_each:` expression gave: it carries all that
            # the expression read.
            taint["item"] = sources(task.for_each or "", taint, expression=True)
        return taint

    @staticmethod
    def _read(task: Task, taint: ScopeTaint) -> Sources:
        """The untrusted sources a task reads before its agent reads anything: its
        templates', its `when:` condition's (which decided that it runs) and its item's."""
        found = sources(task.prompt or "", taint) | sources(dict(task.args), taint)
        if task.when:
            found |= sources(task.when, taint, expression=True)
        item = taint.get("item")
        return found | item if isinstance(item, frozenset) else found

    def _planned(self, task: Task) -> Sources:
        """`plan` when a model wrote the task (a goal's planner, a replan, an agent's
        subtasks) while the run held untrusted content, and no person approved the plan:
        its literal words may be the attacker's."""
        state = self.state()
        if state.plan is None:
            return NO_SOURCES
        planned = {t.get("id") for t in state.plan.get("tasks", ())}
        approval = state.tasks.get(PLAN_KEY)
        if task.id not in planned or (approval is not None and approval.agent == HUMAN
                                      and approval.status == "completed"):
            return NO_SOURCES  # a person who approved the plan vouched for its words
        if any(n in self.untrusted_inputs and v not in (None, "", [], {})
               for n, v in state.inputs.items()) or any(
                t.untrusted for t in state.tasks.values()):
            return frozenset({"plan"})
        return NO_SOURCES

    def _circuit_key(self, agent: str) -> str:
        return f"{self.workflow}/{agent}"

    async def _wait_for_human(
        self, task: Task, key: str, scope: Mapping[str, Any], reason: str, error: str = ""
    ) -> None:
        prompt = render(task.prompt, scope) if task.prompt else None
        if reason == "escalation":
            # An agent that raised Escalate asked for a person; it did not fail.
            why = error if error.startswith("escalated") else f"it failed: {error}"
            prompt = (f"{prompt}\n\n" if prompt else "") + (
                f"Task {key!r} needs a person ({why}). Approve with the output to use, "
                "or reject.")
        elif error:
            prompt = (f"{prompt}\n\n" if prompt else "") + (
                f"The last answer was not accepted: {error}")
        await self.journal(NewEvent.of(TaskWaiting(prompt=prompt, reason=reason, error=error),
                                       task=key))

    async def _answered(self, task: Task, ts: TaskState, scope: Mapping[str, Any]) -> bool:
        """Act on a human's answer. Returns whether the task is settled by it."""
        answer = ts.approval or {}
        if ts.wait_reason == "tool_approval":
            return False  # the agent runs again and settles the held call with the answer
        if answer.get("approved"):
            data = answer.get("data")
            try:
                output = validate(task.output, {} if data is None else data)
            except OutputInvalid as e:
                # A person's typo should not fail the run: say what is wrong, ask again.
                await self.journal(NewEvent.of(AttemptFailed(
                    agent=HUMAN, attempt=ts.attempts, error=str(e),
                    error_type="OutputInvalid", decision="ask_again"), task=ts.key))
                await self._wait_for_human(task, ts.key, scope, ts.wait_reason or "approval",
                                           str(e))
                return True
            await self.journal(NewEvent.of(TaskCompleted(
                output=output, agent=HUMAN), task=ts.key))
            return True
        error = f"rejected by {answer.get('by') or 'a human'}"
        if answer.get("reason"):
            error += f": {answer['reason']}"
        escalated = ts.wait_reason == "escalation"
        decision = self._decide(task, ts, HUMAN, escalated=escalated)
        await self.journal(NewEvent.of(AttemptFailed(
            agent=HUMAN, attempt=ts.attempts, error=error, error_type="Rejected",
            decision=decision), task=ts.key))
        if escalated:
            await self._finish_failed(task, ts.key)
            return True
        return False

    async def _try(self, task: Task, key: str, name: str, scope: Mapping[str, Any]) -> Outcome:
        """Attempts by one agent, with retries. Returns how it ended."""
        agent = self.agents[name]
        spec = task.output if task.output is not None else getattr(agent, "output", None)
        taint = self.taint(task, scope)
        read = self._read(task, taint) | self._planned(task)
        checks = _checks(task, agent)
        request = TaskInput(args=render(task.args, scope),
                            prompt=render_prompt(task.prompt, scope, taint)
                            if task.prompt else None,
                            output_schema=schema_of(spec), output=spec,
                            untrusted=tuple(sorted(read)),
                            timeout=task.policy.timeout, checks=checks)
        given = Given(prompt=request.prompt, args=request.args, inputs=scope["inputs"],
                      outputs=scope["outputs"])
        retry = task.policy.retry
        if not await self._permitted(task, key, name):
            return "gave_up"
        memory = bind(task, self.memory, scope, self.subjects, self.workflow)
        while True:
            ts = self.state().task(key)
            attempt = ts.attempts + 1
            idempotency_key = f"{self.run_id}:{key}"
            await self.journal(NewEvent.of(TaskStarted(
                agent=name, attempt=attempt, idempotency_key=idempotency_key), task=key))
            provenance = Provenance(request.untrusted)
            ctx = TaskContext(
                run_id=self.run_id, task_id=task.id, attempt=attempt,
                idempotency_key=idempotency_key,
                inputs=Tracked(scope["inputs"], taint["inputs"], provenance),
                outputs=Tracked(scope["outputs"], taint["outputs"], provenance),
                workflow=self.workflow, item=scope.get("item"),
                index=scope.get("index"), principal=self.principal,
                approval=_tool_answer(ts), session=self.session, memory=memory,
                _lent=self.lent, _key=key,
                _replay=list(ts.steps) if ts.agent == name else [], _provenance=provenance)
            if memory is not None:
                memory.ctx = ctx
            error: BaseException
            try:
                attempt_args = (agent, task, request, memory, scope, ctx, spec, given)
                if task.policy.timeout is None:
                    output = await self._attempt(*attempt_args)
                else:
                    async with asyncio.timeout(task.policy.timeout):
                        output = await self._attempt(*attempt_args)
            except ApprovalRequired as e:
                # Not a failure: the attempt's steps stay, so the held call is replayed.
                self.breakers.abandon(self._circuit_key(name))
                await self.journal(NewEvent.of(TaskWaiting(
                    prompt=e.reason, reason="tool_approval", tool_call=e.tool_call), task=key))
                self._audit(key, str(e.tool_call.get("name")), "held",
                            "mediation: high-risk call after untrusted content")
                return "waiting"
            except Escalate as e:
                self.breakers.abandon(self._circuit_key(name))
                why = f"escalated by agent {name!r}" + (f": {e.reason}" if e.reason else "")
                await self.journal(NewEvent.of(AttemptFailed(
                    agent=name, attempt=attempt, error=why,
                    error_type="Escalate", decision="escalate"), task=key))
                await self._wait_for_human(task, key, scope, "escalation", why)
                return "waiting"
            except (asyncio.CancelledError, LeaseLost, JournalUnavailable):
                # Stopped from outside (cancelled, taken over, the journal cannot be
                # written): not the agent's failure.
                self.breakers.abandon(self._circuit_key(name))
                raise
            except TimeoutError:
                error = TaskTimeout(
                    f"attempt {attempt} by agent {name!r} took longer than "
                    f"{task.policy.timeout}s")
            except Exception as e:
                error = e
            else:
                await self.breakers.success(self._circuit_key(name))
                # What the attempt read decides whether its output is untrusted: the
                # tasks that read it inherit that, across resumes (it is journaled).
                untrusted = list(ctx.untrusted) or None
                await self.journal(NewEvent.of(TaskCompleted(
                    output=output, agent=name, untrusted=untrusted), task=key))
                return "done"
            opened = await self.breakers.failure(self._circuit_key(name), self.circuits[name])
            used = self.state().task(key).attempts_by_agent.get(name, 0)
            if retry.retries(error) and (
                    used < retry.attempts and not opened):
                delay = retry.delay(used)
                await self.journal(NewEvent.of(AttemptFailed(
                    agent=name, attempt=attempt, error=describe_error(error),
                    error_type=type(error).__name__, decision="retry",
                    delay=round(delay, 3), claims=_claims(error)), task=key))
                await asyncio.sleep(delay)
                continue
            decision = self._decide(task, self.state().task(key), name)
            await self.journal(NewEvent.of(AttemptFailed(
                agent=name, attempt=attempt, error=describe_error(error),
                error_type=type(error).__name__, decision=decision,
                circuit="open" if opened else None, claims=_claims(error)), task=key))
            return "gave_up"

    async def _attempt(self, agent: Agent, task: Task, request: TaskInput,
                       memory: Any, scope: Mapping[str, Any], ctx: TaskContext, spec: Any,
                       given: Given) -> Any:
        """One attempt's output: the agent's, validated against the schema and checked."""
        asked = await recalled(task, request, memory, scope, ctx)
        output = validate(spec, await agent.run(asked, ctx))
        for check in request.checks:  # the agent may have checked already; the engine decides
            check.check(output, given)
        return output

    async def _permitted(self, task: Task, key: str, name: str) -> bool:
        """Whether the run's principal may use agent `name`; a denial gives the agent up
        (journaled like a failed attempt, so that fallbacks and the policy apply)."""
        if self.guard is None:
            return True
        try:
            self.guard.check(self.principal, "agent:use", name, subject=f"{self.run_id}/{key}")
        except PermissionDenied as e:
            ts = self.state().task(key)
            await self.journal(NewEvent.of(AttemptFailed(
                agent=name, attempt=ts.attempts, error=describe_error(e),
                error_type="PermissionDenied", decision=self._decide(task, ts, name)), task=key))
            return False
        return True

    async def _record(self, key: str, observation: Observation) -> None:
        """Journal an agent's observation about task `key` (`TaskContext.record`)."""
        if observation.type not in _OBSERVATIONS:
            raise ValueError(f"unknown observation {observation!r}; expected one of "
                             f"{sorted(_OBSERVATIONS)}")
        data = to_json(observation.to_data())
        await self.journal(NewEvent(type=observation.type, task=key, data=data))
        if isinstance(observation, ToolCalled) and observation.error_type == "ToolRefused":
            self._audit(key, observation.name, "denied", "mediation: " + (
                "rejected by a person" if observation.rejected_by else "not allowlisted"))

    def _audit(self, key: str, tool: str, outcome: str, detail: str) -> None:
        """Audit a tool-mediation decision (the access policy audits its own)."""
        if self.guard is not None:
            self.guard.record(self.principal, "tool.call", f"{self.run_id}/{key}/{tool}",
                              outcome, detail)

    def _decide(self, task: Task, ts: TaskState, failed: str, *, escalated: bool = False
                ) -> FailureDecision:
        """What follows when `failed` gives up on the task."""
        chain = self._chain(task, ts)
        later = chain[chain.index(failed) + 1:] if failed in chain else []
        if any(a not in ts.gave_up and a != failed for a in later):
            return "fallback"
        if task.policy.on_failure == "escalate" and not escalated and task.agent != HUMAN:
            return "escalate"
        return "default" if task.policy.has_default else "fail"

    async def _exhausted(self, task: Task, key: str, scope: Mapping[str, Any]) -> None:
        """Every agent gave up: escalate, use the default, or fail."""
        ts = self.state().task(key)
        if task.policy.on_failure == "escalate" and task.agent != HUMAN:
            error = ts.error or "no agent could be tried"
            await self._wait_for_human(task, key, scope, "escalation", error)
            return
        await self._finish_failed(task, key)

    async def _finish_failed(self, task: Task, key: str) -> None:
        ts = self.state().task(key)
        if task.policy.has_default:
            await self.journal(NewEvent.of(TaskCompleted(
                output=task.policy.default, agent=None, defaulted=True), task=key))
            return
        error = ts.error or "every agent was skipped (circuit open)"
        await self.journal(NewEvent.of(TaskFailed(
            error=error, error_type="TaskFailed"), task=key))


def _checks(task: Task, agent: Agent) -> tuple[Faithful, ...]:
    """The output checks of an attempt: the task's, then the agent's own."""
    own = getattr(agent, "checks", ())
    return tuple(dict.fromkeys((*task.checks, *own)))


def _claims(error: BaseException) -> list[Any] | None:
    """The unsupported claims of a faithfulness failure, for the journal."""
    return error.claims if isinstance(error, Unfaithful) else None


class _OutputTaint(Mapping[str, Sources]):
    """The sources of each upstream output, looked up in the run's state when asked: a
    long chain does not pay for every ancestor at every task."""

    __slots__ = ("_keys", "_state")

    def __init__(self, state: Callable[[], RunState], keys: Mapping[str, Any]) -> None:
        self._state, self._keys = state, keys

    def __getitem__(self, key: str) -> Sources:
        if key not in self._keys:
            raise KeyError(key)
        return frozenset({f"output:{key}"}) if self._state().task(key).untrusted else (
            NO_SOURCES)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _tool_answer(ts: TaskState) -> dict[str, Any] | None:
    """A person's answer to the tool call the task waited on, with the call they saw."""
    if ts.wait_reason != "tool_approval" or ts.approval is None:
        return None
    return {**ts.approval, "tool_call": ts.waiting_for}
