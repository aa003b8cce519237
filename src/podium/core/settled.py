"""A run's state folded to print its record, of any size: `LeanFold` folds the journal a
page at a time and keeps each task that has finished as its record alone (`SettledTask`),
so a run of 100,000 `for_each` items is held as 100,000 short texts, not 100,000 full task
states with their outputs and attempt details.

Such a state is for reading the run record (`RunState.record_items`, `record`, `outputs`,
`waiting`), not for resuming: a settled fan-out item no longer holds its output (the record
shows only the `for_each` task's, which holds them all), nor its steps or attempt counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import MISSING, Field, fields
from typing import Any

from podium.core.events import Event, split_key
from podium.core.state import RunState, TaskState

_SETTLES = frozenset({"completed", "failed", "skipped"})
_FIELDS: dict[str, Field[Any]] = {f.name: f for f in fields(TaskState)}


class SettledTask(TaskState):
    """A finished task kept as its record (compact JSON text), its status, and what the
    run record sums (tokens, cost) or shows (the output of a task that is not a fan-out
    item). Every other field reads its default."""

    __slots__ = ("_text",)

    def __init__(self, task: TaskState, text: str) -> None:
        # Not the dataclass's __init__, which would make every list field: only what the
        # run record reads is set, the rest reads its default (`__getattr__`).
        self.key, self.status, self._text = task.key, task.status, text
        self.input_tokens, self.output_tokens = task.input_tokens, task.output_tokens
        self.model_calls, self.cost_usd = task.model_calls, task.cost_usd
        self.output = task.output if split_key(task.key)[1] is None else None

    def __getattr__(self, name: str) -> Any:
        """A field not set here reads its default (a fresh one for a list or a dict)."""
        found = _FIELDS.get(name)
        if found is None:
            raise AttributeError(name)
        if found.default is not MISSING:
            return found.default
        make = found.default_factory
        if not callable(make):
            raise AttributeError(name)
        return make()

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = json.loads(self._text)
        return record


def settle(task: TaskState) -> SettledTask | None:
    """`task` kept as its record, or None while more may happen to it (or its record is
    not plain JSON, which keeps it whole)."""
    if (task.status not in _SETTLES or task.in_flight or task.approval is not None
            or task.waiting_for is not None or isinstance(task, SettledTask)):
        return None
    try:
        text = json.dumps(task.record(), ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return SettledTask(task, text)


class LeanFold:
    """Folds a run's events page by page, settling the tasks each page finished.

    A task settles on the page that finishes it; an event for a task already settled (a
    finished task that more happened to) makes `add` return False: fold the journal again
    with `RunState.of`, which keeps everything.
    """

    def __init__(self, run_id: str) -> None:
        self.state = RunState(run_id=run_id)

    def add(self, page: Iterable[Event]) -> bool:
        """Fold `page`; False if it touched a task already settled (the state is then
        unfinished and must not be used)."""
        tasks, touched = self.state.tasks, dict[str, None]()
        for event in page:
            if event.task is not None:
                if type(tasks.get(event.task)) is SettledTask:
                    return False
                touched[event.task] = None
            self.state.apply(event)
        for key in touched:
            task = tasks.get(key)
            if task is not None and (settled := settle(task)) is not None:
                tasks[key] = settled
        return True
