"""Run state as a fold over the journal: `RunState.of(events)`. Nothing else holds state."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from podium.core.events import ERASED, Event, split_key
from podium.core.principal import Principal

RunStatus = Literal["running", "waiting", "completed", "failed", "cancelled"]
TaskStatus = Literal["pending", "running", "waiting", "completed", "failed", "skipped"]
DONE: frozenset[str] = frozenset({"completed", "failed", "skipped"})


class _Erased(dict[str, Any]):
    def __missing__(self, key: str) -> None:
        return None


@lru_cache(maxsize=1024)
def iso(ts: float | None) -> str | None:
    """An epoch time as ISO 8601 in UTC."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


@dataclass(kw_only=True)
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
        """Fold one event into the state."""
        self.last_seq = e.seq
        self._last_ts = e.ts
        # An erased payload (its data key shredded) folds as one whose fields are all None.
        d = e.data if ERASED not in e.data else _Erased(e.data)
        t = self.task(e.task) if e.task is not None else None
        match e.type:
            case "run_started":
                self.workflow, self.version = d["workflow"], d.get("version", "")
                self.source, self.inputs = d.get("source"), d.get("inputs", {})
                self.cwd, self.session = d.get("cwd"), d.get("session")
                if d.get("principal"):
                    self.principal = Principal.from_json(d["principal"])
                self.started_at = self._session_start = e.ts
            case "run_resumed":
                self._close_session(None)
                for task in self.tasks.values():
                    if task.in_flight and task.agent is not None:
                        task.in_flight = False
                        task.attempts_by_agent[task.agent] -= 1
                        task.history.append({"interrupted": task.attempts, "at": iso(e.ts)})
                self.status, self._session_start = "running", e.ts
            case "task_routed" if t:
                t.routing = d
                if d.get("agent") is None:
                    t.error = d.get("error")
                t.history.append({"routed": d.get("agent"), "by": d.get("by"),
                                  "at": iso(e.ts)})
            case "task_started" if t:
                t.status, t.agent, t.attempts = "running", d["agent"], t.attempts + 1
                t.attempts_by_agent[d["agent"]] = t.attempts_by_agent.get(d["agent"], 0) + 1
                t.in_flight = True
                t.started_at = t.started_at or e.ts
                t.history.append({"attempt": t.attempts, "agent": d["agent"], "at": iso(e.ts)})
            case "attempt_failed" if t:
                t.error, t.in_flight, t.steps = d["error"], False, []
                if d["decision"] not in ("retry", "ask_again"):
                    t.gave_up.append(d["agent"])
                t.history.append({"attempt": d.get("attempt"), "agent": d["agent"],
                                  "error": d["error"], "decision": d["decision"],
                                  "delay": d.get("delay"), "at": iso(e.ts)})
            case "agent_skipped" if t:
                t.gave_up.append(d["agent"])
                t.history.append({"agent": d["agent"], "skipped": d["reason"], "at": iso(e.ts)})
            case "step_completed" if t:
                t.steps.append(d)
                if d.get("kind") == "agent":
                    t.calls.append({"agent": d.get("name"), "output": d.get("result"),
                                    "attempt": t.attempts})
            case "tool_call" if t:
                t.tool_calls.append(d)
            case "note_added":
                # A task run again after a crash writes its notes again: keep one.
                if not any(n["by"] == e.task and n["text"] == d["text"] for n in self.notes):
                    self.notes.append({"text": d["text"], "by": e.task, "at": iso(e.ts),
                                       **({"untrusted": d["untrusted"]}
                                          if d.get("untrusted") else {})})
            case "context_assembled" if t:
                t.context.append(d)
            case "model_call" if t:
                t.model_calls += 1
                t.input_tokens += int(d.get("input_tokens", 0))
                t.output_tokens += int(d.get("output_tokens", 0))
                t.cost_usd += float(d.get("cost_usd") or 0.0)
                t.repairs += 1 if d.get("repair") else 0
                t.cached += 1 if d.get("cached") else 0
            case "fanout_started" if t:
                t.fanout, t.status = d["count"], "running"
                t.started_at = t.started_at or e.ts
            case "task_waiting" if t:
                t.status, t.prompt, t.wait_reason = "waiting", d.get("prompt"), d.get("reason")
                t.in_flight, t.waiting_for = False, d.get("tool_call")
                t.agent, t.approval = t.agent or "human", None
                if d.get("reason") == "tool_approval" and t.agent in t.attempts_by_agent:
                    t.attempts_by_agent[t.agent] -= 1  # a wait is not a spent attempt
                t.started_at = t.started_at or e.ts
                if d.get("reason") == "approval":
                    t.attempts += 1
                t.history.append({"waiting": d.get("reason"), "at": iso(e.ts)})
            case "task_approved" if t:
                t.approval = {"approved": True, "data": d.get("data"), "by": d.get("by")}
                t.history.append({"approved_by": d.get("by"), "at": iso(e.ts)})
            case "task_rejected" if t:
                t.approval = {"approved": False, "reason": d.get("reason"), "by": d.get("by")}
                t.history.append({"rejected_by": d.get("by"), "reason": d.get("reason"),
                                  "at": iso(e.ts)})
            case "task_completed" if t:
                t.status, t.output, t.finished_at = "completed", d.get("output"), e.ts
                t.untrusted = tuple(d.get("untrusted") or ())
                t.in_flight, t.error = False, None
                t.defaulted, t.agent = bool(d.get("defaulted")), d.get("agent", t.agent)
                t.approval = None
                t.started_at = t.started_at or e.ts
                if t.defaulted:
                    t.history.append({"defaulted": True, "at": iso(e.ts)})
            case "task_skipped" if t:
                t.status, t.finished_at, t.error = "skipped", e.ts, None
                t.history.append({"skipped": d.get("reason"), "at": iso(e.ts)})
            case "task_failed" if t:
                t.status, t.finished_at, t.error = "failed", e.ts, d.get("error")
                t.approval = None
            case "plan_invalid" | "plan_created" | "plan_extended":
                self._apply_plan(e)
            case "run_waiting":
                self._close_session(e.ts)
                self.status = "waiting"
            case "run_completed" | "run_failed" | "run_cancelled":
                self._close_session(e.ts)
                self.status = {"run_completed": "completed", "run_failed": "failed",
                               "run_cancelled": "cancelled"}[e.type]  # type: ignore[assignment]
                self.finished_at, self.error, self.reason = e.ts, d.get("error"), d.get("reason")

    def _apply_plan(self, e: Event) -> None:
        d = e.data
        if e.type == "plan_invalid":
            self.plan_history.append({"invalid": d.get("attempt"), "reason": d.get("reason"),
                                      "problems": d.get("problems", []), "at": iso(e.ts)})
            return
        tasks = list(d.get("tasks", []))
        if e.type == "plan_extended" and self.plan is not None:
            self.plan = {**self.plan, "version": d["version"],
                         "tasks": [*self.plan["tasks"], *tasks]}
        else:
            self.plan = {"version": d["version"], "goal": d.get("goal"), "tasks": tasks}
        dropped = set(d.get("dropped", ()))
        for key in [k for k in self.tasks if split_key(k)[0] in dropped]:
            gone = self.tasks.pop(key)
            if gone.status != "pending":  # a task that never started leaves no trace
                self.superseded.append({**gone.record(), "dropped_by": d["version"]})
        self.plan_history.append({
            "version": d["version"], "reason": d.get("reason", "subtasks"),
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
