"""Event payloads as code: each type's payload round-trips through the journal's JSON, old
journals fold, and an event type this version does not know is a clear error."""

from __future__ import annotations

import json
import types
import typing
from dataclasses import fields, replace
from typing import Any

import pytest

from podium.core.events import (
    PAYLOADS,
    AttemptFailed,
    Event,
    EventType,
    NewEvent,
    Payload,
    RunStarted,
    TaskCompleted,
    TaskStarted,
    ToolCalled,
)
from podium.core.state import RunState
from podium.errors import JournalError


def _sample(tp: Any) -> Any:
    """A value of type `tp`, as JSON would carry it."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _sample(next(a for a in typing.get_args(tp) if a is not type(None)))
    if origin is list:
        return [_sample(typing.get_args(tp)[0])]
    if origin is dict:
        return {"k": _sample(typing.get_args(tp)[1])}
    samples: dict[Any, Any] = {str: "text é", int: 3, float: 0.5, bool: True}
    return samples.get(tp, {"any": [1, "é", None]})


def _full(cls: type[Payload]) -> Payload:
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _sample(hints[f.name]) for f in fields(cls)})  # type: ignore[arg-type]


def _minimal(cls: type[Payload]) -> Payload:
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _sample(hints[f.name]) for f in fields(cls)  # type: ignore[arg-type]
                  if f.default is not None})


def _event(type_: str, data: dict[str, Any], seq: int = 1, task: str | None = "t") -> Event:
    return Event(run_id="r", seq=seq, type=type_, task=task, data=data,  # type: ignore[arg-type]
                 ts=1.0 + seq)


def test_every_event_type_has_one_payload_class_that_knows_its_type() -> None:
    assert set(PAYLOADS) == set(typing.get_args(EventType))
    assert all(cls.type == name for name, cls in PAYLOADS.items())


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_each_payload_round_trips_through_the_journal_json(name: str) -> None:
    cls = PAYLOADS[name]
    full = _full(cls)
    if isinstance(full, ToolCalled):  # a call holds a result or an error, never both
        full = replace(full, error=None)
    for payload in (full, _minimal(cls)):
        event = NewEvent.of(payload, task="t")
        assert event.type == name and event.task == "t"
        stored = json.loads(json.dumps(event.data))  # what a store gives back
        assert stored == event.data
        assert cls.from_data(stored) == payload
        assert _event(name, stored).payload == payload
        assert cls.from_data(stored).to_data() == event.data


def test_optional_fields_are_journaled_only_when_given() -> None:
    assert NewEvent.of(AttemptFailed(agent="a", attempt=2, error="boom", error_type="E",
                                     decision="retry", delay=0.5)).data == {
        "agent": "a", "attempt": 2, "error": "boom", "error_type": "E", "decision": "retry",
        "delay": 0.5}
    # A required field is journaled even when None: a default's agent, say.
    assert TaskCompleted(output=None, agent=None, defaulted=True).to_data() == {
        "output": None, "agent": None, "defaulted": True}
    # A tool call holds its result, or (failed or refused) its error instead.
    ran = ToolCalled(call_id="c", name="n", arguments={}, result=None, duration_ms=1.0)
    assert ran.to_data() == {"call_id": "c", "name": "n", "arguments": {}, "result": None,
                             "duration_ms": 1.0}
    failed = ToolCalled(call_id="c", name="n", arguments={}, error="no", error_type="ToolFailed",
                        duration_ms=1.0)
    assert "result" not in failed.to_data()


def test_an_old_journal_without_optional_or_later_keys_folds() -> None:
    state = RunState.of("r", [
        _event("run_started", {"workflow": "w", "inputs": {"n": 1}}, 1, task=None),
        _event("task_started", {"agent": "x", "attempt": 1}, 2),
        _event("model_call", {"model": "m", "input_tokens": 3}, 3),
        _event("task_completed", {"output": {"n": 2}, "agent": "x", "extra": "kept"}, 4),
        _event("run_completed", {}, 5, task=None),
    ])
    assert (state.workflow, state.version, state.cwd, state.session) == ("w", "", None, None)
    assert state.status == "completed" and state.outputs() == {"t": {"n": 2}}
    t = state.tasks["t"]
    assert (t.input_tokens, t.output_tokens, t.cost_usd, t.defaulted, t.untrusted) == (
        3, 0, 0.0, False, ())
    assert TaskStarted.from_data({"agent": "x", "attempt": 1}).idempotency_key is None
    assert RunStarted.from_data({"workflow": "w", "unknown": 1}).workflow == "w"


def test_an_erased_payload_folds_with_its_fields_none() -> None:
    state = RunState.of("r", [
        _event("run_started", {"_erased": "run"}, 1, task=None),
        _event("task_started", {"agent": "x", "attempt": 1, "idempotency_key": "k"}, 2),
        _event("task_completed", {"_erased": "subject"}, 3),
        _event("run_failed", {"_erased": "run"}, 4, task=None),
    ])
    assert state.status == "failed" and state.error is None and state.inputs == {}
    assert state.tasks["t"].status == "completed" and state.tasks["t"].agent == "x"


def test_an_unknown_event_type_is_a_clear_error_naming_run_seq_and_type() -> None:
    events = [_event("run_started", {"workflow": "w", "inputs": {}}, 1, task=None),
              _event("task_paused", {"why": "newer podium"}, 2)]
    with pytest.raises(JournalError, match=r"run 'r': event 2 has type 'task_paused'.*newer"):
        RunState.of("r", events)
