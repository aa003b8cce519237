"""The base of every event payload: how a payload becomes the journal's JSON and back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Literal, Self

JSON = Any
"""A JSON value: dict, list, str, int, float, bool or None."""
EventType = Literal[
    "run_started", "run_resumed", "task_routed", "task_started", "attempt_failed", "agent_skipped",
    "model_call", "tool_call", "step_completed", "note_added", "context_assembled",
    "memory_recalled", "output_checked",
    "fanout_started", "task_waiting",
    "task_approved", "task_rejected",
    "task_completed", "task_skipped", "task_failed", "run_waiting", "run_completed",
    "run_failed", "run_cancelled", "plan_invalid", "plan_created", "plan_extended",
]

_OMITTED = "podium.omitted"


def omitted() -> Any:
    """An optional field that the journal holds only when it is not None: older journals
    and the writers that have nothing to say leave the key out."""
    return field(default=None, metadata={_OMITTED: True})


@dataclass(frozen=True, slots=True)
class _Spec:
    order: tuple[str, ...]
    names: frozenset[str]
    omitted: frozenset[str]
    blank: dict[str, Any]
    """Each field's value when its key is missing: its default, or None."""


_specs: dict[type[Payload], _Spec] = {}


def _spec(cls: type[Payload]) -> _Spec:
    found = _specs.get(cls)
    if found is None:
        fs = fields(cls)
        found = _specs[cls] = _Spec(
            order=tuple(f.name for f in fs), names=frozenset(f.name for f in fs),
            omitted=frozenset(f.name for f in fs if f.metadata.get(_OMITTED)),
            blank={f.name: None if f.default is MISSING else f.default for f in fs})
    return found


@dataclass(frozen=True, kw_only=True)
class Payload:
    """What an event says, typed: one subclass per event type, named by `type`.

    Required fields are always journaled; optional ones declared with `omitted()` only when
    they are not None, other optional ones always. Payloads are not slotted: reading one
    fills its `__dict__` in one step, where slots would take one call per field (folding
    a journal reads every payload).
    """

    type: ClassVar[EventType]
    """The event type this payload is the data of."""

    def to_data(self) -> dict[str, JSON]:
        """The payload as the journal stores it (the event's `data`)."""
        spec = _spec(type(self))
        data: dict[str, JSON] = {}
        for name in spec.order:
            value = getattr(self, name)
            if value is not None or name not in spec.omitted:
                data[name] = value
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, JSON]) -> Self:
        """The payload of a journaled event's `data`, read leniently: keys it does not know
        are left out (they stay in the event's `data`), a missing optional key takes its
        default, and a missing required key reads as None (a payload whose data key was
        shredded holds no key at all; a journal older than a field lacks it)."""
        spec = _spec(cls)
        if not spec.names.issuperset(data):
            data = {k: v for k, v in data.items() if k in spec.names}
        # Filled in place, not through __init__: folding a long journal reads many.
        payload = object.__new__(cls)
        fill = payload.__dict__
        fill.update(spec.blank)
        fill.update(data)
        return payload
