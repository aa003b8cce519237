"""Run state as a fold over the journal: `RunState.of(events)`. Nothing else holds state."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from podium.core.events import (
    ERASED,
    AgentSkipped,
    AttemptFailed,
    ContextAssembled,
    Event,
    FanoutStarted,
    ModelCalled,
    NoteAdded,
    PlanCreated,
    PlanExtended,
    PlanInvalid,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunResumed,
    RunStarted,
    RunWaiting,
    StepCompleted,
    TaskApproved,
    TaskCompleted,
    TaskFailed,
    TaskRejected,
    TaskRouted,
    TaskSkipped,
    TaskStarted,
    TaskWaiting,
    ToolCalled,
    split_key,
)
from podium.core.principal import Principal

RunStatus = Literal["running", "waiting", "completed", "failed", "cancelled"]
ENDED_STATUSES: frozenset[RunStatus] = frozenset({"completed", "failed", "cancelled"})
"""The statuses of a run that ended: nothing more happens to it (`resume` returns it as
it is, `cancel` refuses)."""
_ENDED_BY: dict[str, RunStatus] = {
    "run_completed": "completed", "run_failed": "failed", "run_cancelled": "cancelled"}
TaskStatus = Literal["pending", "running", "waiting", "completed", "failed", "skipped"]
DONE: frozenset[str] = frozenset({"completed", "failed", "skipped"})


class _Erased(dict[str, Any]):
    def __missing__(self, key: str) -> None:
        return None


@lru_cache(maxsize=1024)
def iso(ts: float | None) -> str | None:
    """An epoch time as ISO 8601 in UTC."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


@dataclass(kw_only=True, slots=True)
class TaskState:
    """One task (or fan-out item) as the journal tells it."""

    key: str
    status: TaskStatus = "pending"
    agent: str | None = None
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    output: Any = None
    defaulted: bool = False
    untrusted: tuple[str, ...] = ()
    """The untrusted sources the attempt that produced the output read: when there are
    any, the output is untrusted content for the tasks that read it."""
    input_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0
    cost_usd: float = 0.0
    """What its model calls cost, where the price is known."""
    repairs: int = 0
    """Model calls that asked for a reply fitting the output schema again."""
    cached: int = 0
    """Model calls answered from the reply cache."""
    fanout: int | None = None
    """For a `for_each` task, how many items it fanned out to."""
    prompt: str | None = None
    """For a task waiting for a human, what they are asked."""
    wait_reason: str | None = None
    waiting_for: dict[str, Any] | None = None
    """For a task waiting on a tool call's approval, the call (name, arguments, id)."""
    approval: dict[str, Any] | None = None
    """A human's answer not yet acted on: {"approved": bool, "data"|"reason": …}."""
    attempts_by_agent: dict[str, int] = field(default_factory=dict)
    """Finished attempts per agent (an attempt a crash interrupted does not count)."""
    in_flight: bool = False
    """An attempt started and has not finished (yet, or ever: a crash)."""
    gave_up: list[str] = field(default_factory=list)
    """Agents already given up on (failed for good, or skipped by their circuit)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """Every attempt and policy decision, in order."""
    steps: list[dict[str, Any]] = field(default_factory=list)
    """Durable steps (model replies, tool calls) of the current attempt, for replay after a
    crash; a failed attempt's steps are dropped, so a retry starts afresh."""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """Every tool call: name, arguments, result or error, duration."""
    calls: list[dict[str, Any]] = field(default_factory=list)
    """Every sub-agent call a composite agent (a pattern) completed: agent, output."""
    routing: dict[str, Any] | None = None
    """For a task the router assigned: its decision (`task_routed`), replayed on resume."""
    context: list[dict[str, Any]] = field(default_factory=list)
    """How each prompt was assembled within its budget: sections, what was dropped."""

    @property
    def task_id(self) -> str:
        return split_key(self.key)[0]

    def record(self) -> dict[str, Any]:
        """The task as the run record shows it."""
        duration = None
        if self.started_at is not None and self.finished_at is not None:
            duration = round(self.finished_at - self.started_at, 6)
        return {
            "id": self.key, "agent": self.agent, "status": self.status,
            "attempts": self.attempts, "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at), "duration": duration, "error": self.error,
            "defaulted": self.defaulted,
            **({"untrusted": list(self.untrusted)} if self.untrusted else {}),
            "tokens": {"input": self.input_tokens, "output": self.output_tokens,
                       "calls": self.model_calls, "cost_usd": round(self.cost_usd, 6),
                       **({"repairs": self.repairs} if self.repairs else {}),
                       **({"cached": self.cached} if self.cached else {})},
            "history": self.history,
            **({"tool_calls": self.tool_calls} if self.tool_calls else {}),
            **({"calls": self.calls} if self.calls else {}),
            **({"routing": self.routing} if self.routing is not None else {}),
            **({"context": self.context} if self.context else {}),
            **({"prompt": self.prompt, "wait_reason": self.wait_reason}
               if self.status == "waiting" else {}),
        }


@dataclass(kw_only=True)
class RunState:
    """A run as the journal tells it."""

    run_id: str
    workflow: str = ""
    version: str = ""
    source: str | None = None
    cwd: str | None = None
    """The folder the run was started in; relative paths in its inputs resolve there."""
    inputs: dict[str, Any] = field(default_factory=dict)
    principal: Principal | None = None
    """Who the run is on behalf of, as journaled with its start."""
    session: str | None = None
    """The session the run belongs to: runs of one session share a thread."""
    notes: list[dict[str, Any]] = field(default_factory=list)
    """The run's shared notes, oldest first: `{"text", "by" (task key), "at"}`, and
    `untrusted` (sources) for a note written by an attempt that had read untrusted content."""
    status: RunStatus = "running"
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    reason: str | None = None
    tasks: dict[str, TaskState] = field(default_factory=dict)
    last_seq: int = 0
    plan: dict[str, Any] | None = None
    """The plan in effect: {"version", "goal", "tasks": [planned task, …]}; None before
    one is made (or in a workflow without a goal)."""
    plan_history: list[dict[str, Any]] = field(default_factory=list)
    """Every plan version and every plan that failed its check, in order."""
    superseded: list[dict[str, Any]] = field(default_factory=list)
    """Records of tasks a replan dropped (the failed task among them)."""
    active_seconds: float = 0.0
    """Execution time so far, human waits excluded (for the run's timeout)."""
    _session_start: float | None = None
    _last_ts: float | None = None

    @classmethod
    def of(cls, run_id: str, events: Iterable[Event]) -> RunState:
        state = cls(run_id=run_id)
        for event in events:
            state.apply(event)
        return state

    def task(self, key: str) -> TaskState:
        found = self.tasks.get(key)
        if found is None:
            found = self.tasks[key] = TaskState(key=key)
        return found

    def apply(self, e: Event) -> None:  # noqa: C901 - one branch per event type reads best
        """Fold one event into the state.

        Raises:
            JournalError: the event's type is not one this version of Podium knows.
        """
        self.last_seq = e.seq
        self._last_ts = e.ts
        # An erased payload (its data key shredded) folds as one whose fields are all None;
        # records kept as journaled (routing, steps, tool calls, context) read None for all.
        d = e.data if ERASED not in e.data else _Erased(e.data)
        t = self.task(e.task) if e.task is not None else None
        match e.payload:
            # The most frequent first: each case costs an isinstance check.
            case TaskStarted() as p if t:
                t.status, t.agent, t.attempts = "running", p.agent, t.attempts + 1
                t.attempts_by_agent[p.agent] = t.attempts_by_agent.get(p.agent, 0) + 1
                t.in_flight = True
                t.started_at = t.started_at or e.ts
                t.history.append({"attempt": t.attempts, "agent": p.agent, "at": iso(e.ts)})
            case TaskCompleted() as p if t:
                t.status, t.output, t.finished_at = "completed", p.output, e.ts
                t.untrusted = tuple(p.untrusted or ())
                t.in_flight, t.error = False, None
                # An erased payload keeps the agent of the attempt.
                t.defaulted, t.agent = bool(p.defaulted), p.agent if "agent" in d else t.agent
                t.approval = None
                t.started_at = t.started_at or e.ts
                if t.defaulted:
                    t.history.append({"defaulted": True, "at": iso(e.ts)})
            case ModelCalled() as p if t:
                t.model_calls += 1
                t.input_tokens += int(p.input_tokens or 0)
                t.output_tokens += int(p.output_tokens or 0)
                t.cost_usd += float(p.cost_usd or 0.0)
                t.repairs += 1 if p.repair else 0
                t.cached += 1 if p.cached else 0
            case StepCompleted() as p if t:
                t.steps.append(d)
                if p.kind == "agent":
                    t.calls.append({"agent": p.name, "output": p.result, "attempt": t.attempts})
            case ToolCalled() if t:
                t.tool_calls.append(d)
            case RunStarted() as p:
                self.workflow, self.version = p.workflow, p.version or ""
                self.source, self.inputs = p.source, {} if p.inputs is None else p.inputs
                self.cwd, self.session = p.cwd, p.session
                if p.principal:
                    self.principal = Principal.from_json(p.principal)
                self.started_at = self._session_start = e.ts
            case RunResumed():
                self._close_session(None)
                for task in self.tasks.values():
                    if task.in_flight and task.agent is not None:
                        task.in_flight = False
                        task.attempts_by_agent[task.agent] -= 1
                        task.history.append({"interrupted": task.attempts, "at": iso(e.ts)})
                self.status, self._session_start = "running", e.ts
            case TaskRouted() as p if t:
                t.routing = d
                if p.agent is None:
                    t.error = p.error
                t.history.append({"routed": p.agent, "by": p.by, "at": iso(e.ts)})
            case AttemptFailed() as p if t:
                t.error, t.in_flight, t.steps = p.error, False, []
                if p.decision not in ("retry", "ask_again"):
                    t.gave_up.append(p.agent)
                t.history.append({"attempt": p.attempt, "agent": p.agent, "error": p.error,
                                  "decision": p.decision, "delay": p.delay, "at": iso(e.ts)})
            case AgentSkipped() as p if t:
                t.gave_up.append(p.agent)
                t.history.append({"agent": p.agent, "skipped": p.reason, "at": iso(e.ts)})
            case NoteAdded() as p:
                # A task run again after a crash writes its notes again: keep one.
                if not any(n["by"] == e.task and n["text"] == p.text for n in self.notes):
                    self.notes.append({"text": p.text, "by": e.task, "at": iso(e.ts),
                                       **({"untrusted": p.untrusted} if p.untrusted else {})})
            case ContextAssembled() if t:
                t.context.append(d)
            case FanoutStarted() as p if t:
                t.fanout, t.status = p.count, "running"
                t.started_at = t.started_at or e.ts
            case TaskWaiting() as p if t:
                t.status, t.prompt, t.wait_reason = "waiting", p.prompt, p.reason
                t.in_flight, t.waiting_for = False, p.tool_call
                t.agent, t.approval = t.agent or "human", None
                if p.reason == "tool_approval" and t.agent in t.attempts_by_agent:
                    t.attempts_by_agent[t.agent] -= 1  # a wait is not a spent attempt
                t.started_at = t.started_at or e.ts
                if p.reason == "approval":
                    t.attempts += 1
                t.history.append({"waiting": p.reason, "at": iso(e.ts)})
            case TaskApproved() as p if t:
                t.approval = {"approved": True, "data": p.data, "by": p.by}
                t.history.append({"approved_by": p.by, "at": iso(e.ts)})
            case TaskRejected() as p if t:
                t.approval = {"approved": False, "reason": p.reason, "by": p.by}
                t.history.append({"rejected_by": p.by, "reason": p.reason, "at": iso(e.ts)})
            case TaskSkipped() as p if t:
                t.status, t.finished_at, t.error = "skipped", e.ts, None
                t.history.append({"skipped": p.reason, "at": iso(e.ts)})
            case TaskFailed() as p if t:
                t.status, t.finished_at, t.error = "failed", e.ts, p.error
                t.approval = None
            case PlanInvalid() | PlanCreated() | PlanExtended() as p:
                self._apply_plan(e, p)
            case RunWaiting():
                self._close_session(e.ts)
                self.status = "waiting"
            case RunCompleted() | RunFailed() | RunCancelled() as p:
                self._close_session(e.ts)
                self.status, self.finished_at = _ENDED_BY[p.type], e.ts
                self.error, self.reason = (None, None) if isinstance(p, RunCompleted) else (
                    p.error, p.reason)

    def _apply_plan(self, e: Event, p: PlanInvalid | PlanCreated | PlanExtended) -> None:
        if isinstance(p, PlanInvalid):
            self.plan_history.append({"invalid": p.attempt, "reason": p.reason,
                                      "problems": p.problems or [], "at": iso(e.ts)})
            return
        tasks = list(p.tasks or [])
        created = p if isinstance(p, PlanCreated) else None
        if created is None and self.plan is not None:
            self.plan = {**self.plan, "version": p.version,
                         "tasks": [*self.plan["tasks"], *tasks]}
        else:
            self.plan = {"version": p.version, "goal": created and created.goal, "tasks": tasks}
        dropped = set((created and created.dropped) or ())
        for key in [k for k in self.tasks if split_key(k)[0] in dropped]:
            gone = self.tasks.pop(key)
            if gone.status != "pending":  # a task that never started leaves no trace
                self.superseded.append({**gone.record(), "dropped_by": p.version})
        self.plan_history.append({
            "version": p.version, "reason": (created and created.reason) or "subtasks",
            "tasks": [t.get("id") for t in tasks], "at": iso(e.ts),
            **({"by": e.task} if e.task else {}), **({"dropped": sorted(dropped)}
                                                     if dropped else {})})

    def _close_session(self, end: float | None) -> None:
        if self._session_start is not None:
            last = end if end is not None else self._last_ts or self._session_start
            self.active_seconds += max(0.0, last - self._session_start)
        self._session_start = None

    def outputs(self) -> dict[str, Any]:
        """Outputs of completed tasks (fan-out items excluded), by task id."""
        return {k: t.output for k, t in self.tasks.items()
                if t.status == "completed" and split_key(k)[1] is None}

    def waiting(self) -> list[TaskState]:
        """Tasks waiting for a human."""
        return [t for t in self.tasks.values() if t.status == "waiting"]

    def record(self) -> dict[str, Any]:
        """The run record: what `podium runs show --json` prints."""
        return {key: list(value) if key == "tasks" else value
                for key, value in self.record_items()}

    def record_items(self) -> Iterator[tuple[str, Any]]:
        """The run record's fields in order, `tasks` as an iterator of task records made
        one at a time: a writer can stream the record of a run of any size without
        holding it whole (`record()` gathers it)."""
        duration = None
        if self.started_at is not None:
            duration = round((self.finished_at or self._last_ts or self.started_at)
                             - self.started_at, 6)
        tasks = (t.record() for t in list(self.tasks.values()))
        yield from {
            "run_id": self.run_id, "workflow": self.workflow, "version": self.version,
            "status": self.status, "inputs": self.inputs, "outputs": self.outputs(),
            "principal": self.principal.to_json() if self.principal else None,
            "started_at": iso(self.started_at), "finished_at": iso(self.finished_at),
            "duration": duration, "error": self.error, "reason": self.reason,
            "tokens": {"input": sum(t.input_tokens for t in self.tasks.values()),
                       "output": sum(t.output_tokens for t in self.tasks.values()),
                       "cost_usd": round(sum(t.cost_usd for t in self.tasks.values()), 6)},
            "waiting": [t.key for t in self.waiting()],
            **({"session": self.session} if self.session else {}),
            **({"notes": self.notes} if self.notes else {}),
            "tasks": tasks,
            **({"plan": {**(self.plan or {}), "history": self.plan_history,
                         "superseded": self.superseded}}
               if self.plan is not None or self.plan_history else {}),
        }.items()
