"""Inputs the journal cannot hold are refused before a run starts, naming the input; YAML
nested too deep is refused at its line; and a journal that fills up mid-run (a real SQLite
database at its `max_page_count`) stops the run as it stands, never journaled as waiting
for no task, and `resume` completes it once there is room."""

from __future__ import annotations

import secrets

import pytest

from podium import (
    Engine,
    InputSpec,
    JournalUnavailable,
    SQLiteStore,
    Workflow,
    WorkflowError,
    parse_workflow,
)


def echo(x: object = None) -> object:
    return x


def nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(("value", "why"), [
    ("caf\udce9", "the value is not valid UTF-8 text (byte 0xe9 at position 3)"),
    (["ok", {"k": "\ud800"}], "the value is not valid UTF-8 text (lone surrogate U+D800"),
    (nested(150), "the value is nested more than 100 levels deep"),
])
async def test_inputs_the_journal_cannot_hold_are_refused_naming_the_input(
        store: SQLiteStore, value: object, why: str) -> None:
    wf = Workflow("inputs", inputs={"x": InputSpec(type="any")})
    wf.add_task("t", agent=echo)
    with pytest.raises(WorkflowError) as caught:
        await Engine(store).start(wf, {"x": value})
    (problem,) = caught.value.problems
    assert problem.field == "inputs.x"
    assert problem.message.startswith(why)
    assert await store.runs(10, None) == []


def test_yaml_nested_too_deep_is_refused_at_its_line() -> None:
    text = "name: deep\ntasks:\n  t:\n    agent: echo\n    with: {x: " + "[" * 5000 \
        + "]" * 5000 + "}\n"
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(text, "deep.yaml")
    (problem,) = caught.value.problems
    assert str(problem) == "deep.yaml:5: not valid YAML: nested more than 100 levels deep"


def big(index: int = 0) -> str:
    return secrets.token_hex(20_000)  # 40 kB that do not compress


async def test_a_full_journal_stops_the_run_resumably(store: SQLiteStore) -> None:
    wf = Workflow("chain")
    for i in range(20):
        wf.add_task(f"t{i}", agent=big, needs=[f"t{i - 1}"] if i else [])
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages + 60}")  # about 240 kB more

    with pytest.raises(JournalUnavailable) as caught:
        await Engine(store).start(wf)
    run_id = caught.value.run_id
    assert "database or disk is full" in str(caught.value)
    assert f"then `podium resume {run_id}`" in str(caught.value)
    state = await Engine(store).state(run_id)
    types = [e.type for e in await store.events(run_id)]
    assert "run_waiting" not in types and "attempt_failed" not in types
    assert state.status == "running"
    done = [t for t in state.tasks.values() if t.status == "completed"]
    assert 0 < len(done) < 20

    store._db.execute("PRAGMA max_page_count = 1073741823")
    resumed = await Engine(store).resume(wf, run_id)
    assert resumed.status == "completed"
    assert all(resumed.task(t.key).output == t.output for t in done)
