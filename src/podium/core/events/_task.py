"""Payloads of the events in a task's life: routed, started, failed, waiting, settled.
Their event's `task` is the task's key (for `fanout_started`, the task's id)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from podium.core.events._payload import JSON, Payload, omitted


@dataclass(frozen=True, kw_only=True)
class TaskRouted(Payload):
    """`task_routed`: the router's decision for a task that names a skill or a
    description, replayed on resume."""

    type: ClassVar[Literal["task_routed"]] = "task_routed"
    skill: str | None
    query: str
    """What the agents were compared by (its first 300 characters)."""
    embeddings: str | None = omitted()
    """Why agents were not ranked by meaning, when they could not be."""
    filtered: list[dict[str, JSON]]
    """Agents left out (agent, reason, score)."""
    candidates: list[dict[str, JSON]]
    """Agents weighed, best first (agent, score, cost, latency)."""
    model: dict[str, JSON] | None = omitted()
    """The choosing model's call, when the router asked one."""
    agent: str | None
    """The agent chosen; None: nothing fits."""
    by: str
    """How it was chosen: `score`, `tie-break`, `hints`, `model` or `none`."""
    why: str
    error: str | None = omitted()
    """Why nothing fits."""


@dataclass(frozen=True, kw_only=True)
class TaskStarted(Payload):
    """`task_started`: an attempt began."""

    type: ClassVar[Literal["task_started"]] = "task_started"
    agent: str
    attempt: int
    """1 for the first attempt, counting retries and fallbacks."""
    idempotency_key: str


@dataclass(frozen=True, kw_only=True)
class AttemptFailed(Payload):
    """`attempt_failed`: an attempt did not give an output the task accepts."""

    type: ClassVar[Literal["attempt_failed"]] = "attempt_failed"
    agent: str
    attempt: int
    error: str
    error_type: str
    decision: str
    """What the policy did next: `retry`, `fallback`, `escalate`, `default`, `fail`, or
    `ask_again` (a person's answer did not fit)."""
    delay: float | None = omitted()
    """Seconds before the retry."""
    circuit: str | None = omitted()
    """`open` when this failure opened the agent's circuit."""
    claims: list[JSON] | None = omitted()
    """The unsupported claims of a faithfulness failure (kind, text, where)."""


@dataclass(frozen=True, kw_only=True)
class AgentSkipped(Payload):
    """`agent_skipped`: an agent of the task's chain was not tried."""

    type: ClassVar[Literal["agent_skipped"]] = "agent_skipped"
    agent: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class FanoutStarted(Payload):
    """`fanout_started`: a `for_each` task fanned out to its items."""

    type: ClassVar[Literal["fanout_started"]] = "fanout_started"
    count: int


@dataclass(frozen=True, kw_only=True)
class TaskWaiting(Payload):
    """`task_waiting`: the task waits for a person."""

    type: ClassVar[Literal["task_waiting"]] = "task_waiting"
    prompt: str | None
    """What the person is asked."""
    reason: str
    """`approval`, `escalation`, `plan` or `tool_approval`."""
    error: str | None = omitted()
    tool_call: dict[str, JSON] | None = omitted()
    """For `tool_approval`, the held call (approval, call_id, name, arguments, untrusted)."""


@dataclass(frozen=True, kw_only=True)
class TaskApproved(Payload):
    """`task_approved`: a person's approval."""

    type: ClassVar[Literal["task_approved"]] = "task_approved"
    data: JSON
    """The output the person gave."""
    by: str


@dataclass(frozen=True, kw_only=True)
class TaskRejected(Payload):
    """`task_rejected`: a person's rejection."""

    type: ClassVar[Literal["task_rejected"]] = "task_rejected"
    reason: str
    by: str


@dataclass(frozen=True, kw_only=True)
class TaskCompleted(Payload):
    """`task_completed`."""

    type: ClassVar[Literal["task_completed"]] = "task_completed"
    output: JSON
    agent: str | None
    """The agent whose output it is; None for a default."""
    defaulted: bool | None = omitted()
    """True when the policy's default is the output."""
    untrusted: list[str] | None = omitted()
    """The untrusted sources the output derives from."""


@dataclass(frozen=True, kw_only=True)
class TaskSkipped(Payload):
    """`task_skipped`: its `when:` is false, or every task it needs was skipped."""

    type: ClassVar[Literal["task_skipped"]] = "task_skipped"
    reason: str


@dataclass(frozen=True, kw_only=True)
class TaskFailed(Payload):
    """`task_failed`: the task failed after its whole policy."""

    type: ClassVar[Literal["task_failed"]] = "task_failed"
    error: str
    error_type: str
