"""Budgets: a run that reaches one stops cleanly, names it, and loses nothing journaled."""

from __future__ import annotations

import asyncio
from pathlib import Path

from podium import Engine, LLMAgent, SQLiteStore, Workflow
from podium.core.policy import Budget
from podium.testing import ScriptedModel


def _workflow(budget: Budget, agent_budget: Budget | None = None, calls: int = 5) -> Workflow:
    wf = Workflow("spend", budget=budget)
    model = ScriptedModel(lambda messages, schema: "one two three four five")
    wf.add_agent("writer", LLMAgent(model, name="writer"))
    if agent_budget:
        wf.agent_budgets["writer"] = agent_budget
    previous: list[str] = []
    for i in range(calls):
        wf.add_task(f"t{i}", agent="writer", needs=previous, prompt="write")
        previous = [f"t{i}"]
    return wf


async def _run(wf: Workflow, tmp_path: Path) -> tuple[str, dict[str, object]]:
    store = SQLiteStore(tmp_path / "j.db")
    try:
        state = await Engine(store).start(wf)
        again = await Engine(store).state(state.run_id)  # what the journal holds
    finally:
        await store.close()
    return state.status, again.record()


async def test_a_model_call_budget_stops_the_run_and_names_it(tmp_path: Path) -> None:
    status, record = await _run(_workflow(Budget(model_calls=2)), tmp_path)
    assert status == "failed"
    assert record["status"] == "failed" and record["reason"] == "budget_exceeded"
    assert "model_calls budget of 2" in str(record["error"])
    outputs = record["outputs"]
    # The call that went over is counted and its task's result kept; nothing after runs.
    assert isinstance(outputs, dict) and {"t0", "t1"} <= set(outputs) <= {"t0", "t1", "t2"}


async def test_a_token_budget(tmp_path: Path) -> None:
    status, record = await _run(_workflow(Budget(tokens=12)), tmp_path)
    assert status == "failed" and "tokens budget of 12" in str(record["error"])


async def test_an_agent_budget_names_the_agent(tmp_path: Path) -> None:
    status, record = await _run(_workflow(Budget(), Budget(model_calls=3)), tmp_path)
    assert status == "failed" and record["reason"] == "budget_exceeded"
    assert "agent 'writer': model_calls budget of 3" in str(record["error"])


async def test_within_budget_the_run_completes(tmp_path: Path) -> None:
    status, _ = await _run(_workflow(Budget(model_calls=5, tokens=1000)), tmp_path)
    assert status == "completed"


async def test_a_seconds_budget_fails_with_budget_exceeded(tmp_path: Path) -> None:
    wf = Workflow("slow", budget=Budget(seconds=0.05))

    async def nap() -> None:
        await asyncio.sleep(5)

    wf.add_task("nap", agent=nap)
    status, record = await _run(wf, tmp_path)
    assert status == "failed" and record["reason"] == "budget_exceeded"
    assert "seconds budget" in str(record["error"])


async def test_parallel_tasks_stop_together(tmp_path: Path) -> None:
    wf = Workflow("fan", budget=Budget(model_calls=3))
    model = ScriptedModel(lambda messages, schema: "ok")
    wf.add_agent("writer", LLMAgent(model, name="writer"))
    wf.add_task("many", agent="writer", for_each="{{ range(20) | list }}", concurrency=4,
                prompt="go")
    status, record = await _run(wf, tmp_path)
    assert status == "failed" and record["reason"] == "budget_exceeded"
    tokens = record["tokens"]
    assert isinstance(tokens, dict)
    assert len(model.calls) < 20


def test_budgets_in_yaml() -> None:
    from podium import parse_workflow

    wf = parse_workflow("""
name: b
budget: {tokens: 1000, cost_usd: 0.5, seconds: 60}
agents:
  f: {function: "os.path:basename", budget: {model_calls: 3}}
tasks:
  a: {agent: f, with: {p: /x/y}}
""", "b.yaml")
    assert wf.budget == Budget(tokens=1000, cost_usd=0.5, seconds=60)
    assert wf.agent_budgets == {"f": Budget(model_calls=3)}
