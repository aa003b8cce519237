"""Payloads of the events about a run as a whole, and about its plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from podium.core.events._payload import JSON, Payload, omitted


@dataclass(frozen=True, kw_only=True)
class RunStarted(Payload):
    """`run_started`: the run's first event."""

    type: ClassVar[Literal["run_started"]] = "run_started"
    workflow: str
    version: str
    source: str | None
    """The workflow file's absolute path, when it came from one."""
    cwd: str | None
    """The folder the run was started in; relative paths in its inputs resolve there."""
    inputs: dict[str, JSON]
    pid: int
    principal: dict[str, JSON] | None = omitted()
    """Who the run is on behalf of (`Principal.to_json`: id, kind, roles)."""
    session: str | None = omitted()
    subjects: list[str] | None = omitted()
    """Whom the run is about: its inputs marked `subject`."""


@dataclass(frozen=True, kw_only=True)
class RunResumed(Payload):
    """`run_resumed`: a process took the run up again (after a crash or a human's answer)."""

    type: ClassVar[Literal["run_resumed"]] = "run_resumed"
    pid: int


@dataclass(frozen=True, kw_only=True)
class RunWaiting(Payload):
    """`run_waiting`: nothing can move until a person answers."""

    type: ClassVar[Literal["run_waiting"]] = "run_waiting"
    tasks: list[str]
    """The keys of the tasks waiting."""


@dataclass(frozen=True, kw_only=True)
class RunCompleted(Payload):
    """`run_completed`: every task settled and none failed."""

    type: ClassVar[Literal["run_completed"]] = "run_completed"


@dataclass(frozen=True, kw_only=True)
class RunFailed(Payload):
    """`run_failed`."""

    type: ClassVar[Literal["run_failed"]] = "run_failed"
    reason: str
    """`task_failed`, `timeout`, `budget_exceeded`, `plan_invalid`, `plan_rejected`."""
    error: str | None


@dataclass(frozen=True, kw_only=True)
class RunCancelled(Payload):
    """`run_cancelled`: `Engine.cancel`."""

    type: ClassVar[Literal["run_cancelled"]] = "run_cancelled"
    reason: str
    """Always `cancelled`."""
    error: str
    by: str
    """Who cancelled it ("" when nobody is named)."""
    was: str
    """The status the run had."""


@dataclass(frozen=True, kw_only=True)
class PlanInvalid(Payload):
    """`plan_invalid`: a plan the model wrote failed its check."""

    type: ClassVar[Literal["plan_invalid"]] = "plan_invalid"
    attempt: int
    reason: str
    """What the plan was for: `goal` or `replan`."""
    problems: list[str]
    reply: str
    """The model's reply (its first 4,000 characters)."""


@dataclass(frozen=True, kw_only=True)
class PlanCreated(Payload):
    """`plan_created`: a plan for the goal, first or after a failure (a replan)."""

    type: ClassVar[Literal["plan_created"]] = "plan_created"
    version: int
    reason: str
    """`goal` or `replan`."""
    goal: str
    tasks: list[dict[str, JSON]]
    """Every planned task in effect."""
    dropped: list[str] | None = omitted()
    """The ids of the planned tasks a replan dropped."""
    failed: dict[str, str] | None = omitted()
    """The errors of the tasks whose failure asked for the replan, by key."""
    attempts: int
    """How many replies the model took to write a plan that passed its check."""


@dataclass(frozen=True, kw_only=True)
class PlanExtended(Payload):
    """`plan_extended` (task: the task that returned the subtasks)."""

    type: ClassVar[Literal["plan_extended"]] = "plan_extended"
    version: int
    tasks: list[dict[str, JSON]]
    """The subtasks the task returned, added to the plan."""
