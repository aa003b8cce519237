"""Patterns on the real local model (SmolLM2-135M through llama.cpp): the examples
`route_local.yaml` and `refine_local.yaml`. What is checked is what Podium promises, not
the small model's judgement: a grammar-bound classifier reply always picks a branch, and
the refine loop ends accepted or at its bound, with every model turn journaled."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium import Engine, SQLiteStore, load_workflow

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "patterns"
BRANCHES = {"billing", "technical", "general"}


async def test_the_local_model_routes_every_message_to_one_branch(tmp_path: Path) -> None:
    wf = load_workflow(EXAMPLES / "route_local.yaml")
    store = SQLiteStore(tmp_path / "journal.db")
    try:
        for message in ("Please refund the second charge on my invoice.",
                        "The installer crashes with error 0x80070005.",
                        "Do you have a shop in Berlin?"):
            state = await Engine(store).start(wf, {"message": message})
            assert state.status == "completed", state.error
            desk = state.outputs()["desk"]
            assert desk["route"] in BRANCHES
            ran = {k for k, t in state.tasks.items() if t.status == "completed"}
            assert ran == {"desk_classify", f"desk_{desk['route']}", "desk"}
            assert desk["output"] == state.outputs()[f"desk_{desk['route']}"]
            assert state.task("desk_classify").model_calls >= 1
    finally:
        await store.close()


@pytest.mark.parametrize("limit", [8, 1])
async def test_the_local_model_refines_until_accepted_or_the_bound(
        tmp_path: Path, limit: int) -> None:
    wf = load_workflow(EXAMPLES / "refine_local.yaml")
    store = SQLiteStore(tmp_path / "journal.db")
    try:
        state = await Engine(store).start(wf, {"limit": limit, "product": "a bicycle lamp"})
    finally:
        await store.close()
    assert state.status == "completed", state.error
    out = state.outputs()["tagline"]
    words = len(out["output"].split())
    if out["stopped"] == "accepted":
        assert words <= limit and out["accepted"]
    else:
        assert (out["stopped"], out["rounds"]) == ("max_rounds", 4)
    # One model turn per draft (no repair turns for free text), each journaled.
    task = state.task("tagline")
    assert task.model_calls == out["rounds"]
    assert [c["agent"] for c in task.calls] == ["copywriter", "editor"] * out["rounds"]
