"""A lean fold (finished tasks kept as their records) gives the run record a full fold
gives, page by page; an event for a task already settled sends it back to a full fold."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from podium import Engine, SQLiteStore, Workflow
from podium.core.events import Event
from podium.core.policy import RetryPolicy
from podium.core.settled import LeanFold, SettledTask
from podium.core.state import RunState
from podium.core.workflow import InputSpec


async def _journal(db: Path) -> tuple[str, list[Event], dict[str, Any]]:
    wf = Workflow("lean", inputs={"items": InputSpec()})

    async def echo(item: int) -> dict[str, Any]:
        if item % 3 == 0:
            raise ValueError(f"no {item}")
        return {"item": item}

    async def after() -> str:
        return "done"

    wf.add_agent("echo", echo)
    wf.add_agent("after", after)
    wf.add_task("each", agent="echo", for_each="{{ inputs.items }}",
                args={"item": "{{ item }}"}, retry=RetryPolicy(attempts=2, jitter=0.0),
                default={"item": None})
    wf.add_task("last", agent="after", needs=["each"])
    store = SQLiteStore(db)
    try:
        state = await Engine(store).start(wf, {"items": list(range(10))})
        events = await store.events(state.run_id)
        viewed = (await Engine(store).view(state.run_id, lean=True)).record()
    finally:
        await store.close()
    return state.run_id, events, viewed


def test_a_lean_fold_gives_the_record_a_full_fold_gives(tmp_path: Path) -> None:
    run_id, events, viewed = asyncio.run(_journal(tmp_path / "j.db"))
    full = RunState.of(run_id, events)
    assert sum(t["defaulted"] for t in full.record()["tasks"]) == 4  # retried, then defaulted
    for size in (1, 2, 5, len(events)):
        lean = LeanFold(run_id)
        for start in range(0, len(events), size):
            assert lean.add(events[start:start + size])
        assert lean.state.record() == full.record()
        assert lean.state.outputs() == full.outputs()
    assert viewed == full.record()
    settled = [t for t in lean.state.tasks.values() if isinstance(t, SettledTask)]
    assert len(settled) == len(full.tasks)
    assert settled[0].history == [] and settled[0].in_flight is False


def test_an_event_for_a_settled_task_asks_for_a_full_fold(tmp_path: Path) -> None:
    run_id, events, _ = asyncio.run(_journal(tmp_path / "j.db"))
    done = next(e for e in events if e.type == "task_completed" and e.task)
    late = replace(done, seq=events[-1].seq + 1)
    lean = LeanFold(run_id)
    assert lean.add(events)
    assert not lean.add([late])
