"""Journal events: every state change of a run, in the order it happened.

Each event type has one payload class, a frozen dataclass whose attribute docstrings say
what its fields mean: `TaskStarted` for `task_started`, and so on (`PAYLOADS` maps every
type to its class). A writer appends the typed payload, `NewEvent.of(TaskStarted(...),
task=key)`; the journal stores it as the same JSON object as ever (`Payload.to_data`),
and a reader gets it back typed from `Event.payload`, read leniently so that older
journals fold (see `Payload.from_data`).

An event's `task` is the key of the task it is about: its id, or `id[i]` for item `i` of
a `for_each` task; run events (`run_*`, `plan_invalid`, `plan_created`) have none.

A payload whose data key was shredded is `{"_erased": "run"}` or `{"_erased": "subject"}`
in the journal (see `Store.shred_run`, `Store.shred_subject`); its typed payload has every
required field None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from podium.core.events._observations import (
    ContextAssembled,
    MemoryRecalled,
    ModelCalled,
    NoteAdded,
    OutputChecked,
    StepCompleted,
    ToolCalled,
)
from podium.core.events._payload import JSON, EventType, Payload
from podium.core.events._run import (
    PlanCreated,
    PlanExtended,
    PlanInvalid,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunResumed,
    RunStarted,
    RunWaiting,
)
from podium.core.events._task import (
    AgentSkipped,
    AttemptFailed,
    FanoutStarted,
    TaskApproved,
    TaskCompleted,
    TaskFailed,
    TaskRejected,
    TaskRouted,
    TaskSkipped,
    TaskStarted,
    TaskWaiting,
)
from podium.errors import JournalError

__all__ = [
    "ERASED", "JSON", "PAYLOADS", "RUN_ENDS", "AgentSkipped", "AttemptFailed",
    "ContextAssembled", "Event", "EventType", "FanoutStarted", "MemoryRecalled",
    "ModelCalled", "NewEvent", "NoteAdded", "Observation", "OutputChecked", "Payload",
    "PlanCreated", "PlanExtended", "PlanInvalid", "RunCancelled", "RunCompleted",
    "RunFailed", "RunResumed", "RunStarted", "RunWaiting", "StepCompleted", "TaskApproved",
    "TaskCompleted", "TaskFailed", "TaskRejected", "TaskRouted", "TaskSkipped", "TaskStarted",
    "TaskWaiting", "ToolCalled", "item_key", "split_key",
]

ERASED = "_erased"
"""The one key of a payload whose data key was shredded: `{"_erased": "run"}` or
`{"_erased": "subject"}` (see `Store.shred_run`, `Store.shred_subject`)."""
RUN_ENDS = frozenset({"run_completed", "run_failed", "run_cancelled"})
"""The types of the events that end a run."""

PAYLOADS: dict[str, type[Payload]] = {cls.type: cls for cls in (
    RunStarted, RunResumed, TaskRouted, TaskStarted, AttemptFailed, AgentSkipped,
    ModelCalled, ToolCalled, StepCompleted, NoteAdded, ContextAssembled, MemoryRecalled,
    OutputChecked, FanoutStarted, TaskWaiting, TaskApproved, TaskRejected, TaskCompleted,
    TaskSkipped, TaskFailed, RunWaiting, RunCompleted, RunFailed, RunCancelled, PlanInvalid,
    PlanCreated, PlanExtended)}
"""The payload class of each event type."""

Observation = (ModelCalled | ToolCalled | StepCompleted | NoteAdded | ContextAssembled
               | MemoryRecalled | OutputChecked)
"""What an attempt may journal about itself along the way (`TaskContext.record`)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class NewEvent:
    """An event not yet appended: the journal gives it its sequence number and time.
    Made from a typed payload with `NewEvent.of`."""

    type: EventType
    task: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    subject: str | None = None
    """The data subject (a person, by a pseudonymous id) the payload is about: with
    encryption at rest, it is sealed under that subject's key, so that erasing the subject
    (`Store.shred_subject`) makes it unreadable while the rest of the run stays readable."""

    @classmethod
    def of(cls, payload: Payload, *, task: str | None = None,
           subject: str | None = None) -> NewEvent:
        """The event that journals `payload`, about task `task` (a task's key), if any."""
        return cls(type=payload.type, task=task, data=payload.to_data(), subject=subject)


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """An event as the journal holds it."""

    run_id: str
    seq: int
    """1-based position in the run's journal."""
    type: EventType
    task: str | None
    data: dict[str, Any]
    """The payload as journaled (JSON)."""
    ts: float
    """Seconds since the epoch when it was appended."""

    @property
    def payload(self) -> Payload:
        """The data as its event type's payload class (see `Payload.from_data`).

        Raises:
            JournalError: the type is not one this version of Podium knows.
        """
        cls = PAYLOADS.get(self.type)
        if cls is None:
            raise JournalError(
                f"run {self.run_id!r}: event {self.seq} has type {self.type!r}, which this "
                "version of Podium does not know (was the run written by a newer one?); "
                "upgrade Podium to read the run")
        return cls.from_data(self.data)


def item_key(task_id: str, index: int) -> str:
    """The key of item `index` of a `for_each` task."""
    return f"{task_id}[{index}]"


def split_key(key: str) -> tuple[str, int | None]:
    """`("id", i)` for an item key `id[i]`, `("id", None)` for a task key."""
    if key.endswith("]") and "[" in key:
        base, _, index = key[:-1].rpartition("[")
        if index.isdigit():
            return base, int(index)
    return key, None
