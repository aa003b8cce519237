"""Durable steps: a step that completed is not repeated when a crashed task runs again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from podium import Engine, SQLiteStore, TaskContext, Workflow
from podium.core.events import NewEvent


class Died(BaseException):
    """Ends the engine's drive the way a killed process would: mid-task, nothing caught."""


async def test_completed_steps_replay_after_an_interruption(tmp_path: Path) -> None:
    calls: list[str] = []
    crash = {"armed": True}

    async def agent(ctx: TaskContext) -> list[Any]:
        results = []
        for name in ("search", "fetch", "summarise"):
            async def work(name: str = name) -> str:
                calls.append(name)
                if name == "fetch" and crash["armed"]:
                    crash["armed"] = False
                    raise Died  # stands for the process dying mid-task
                return f"{name}-result"
            results.append(await ctx.step("tool", name, work))
        return results

    wf = Workflow("steps")
    wf.add_task("t", agent=agent)
    store = SQLiteStore(tmp_path / "j.db")
    engine = Engine(store)
    try:
        try:
            await engine.start(wf, run_id="r1")
        except BaseException as e:
            assert isinstance(e, Died | BaseExceptionGroup)
        assert calls == ["search", "fetch"]
        # A new process would find the lease free once the old one is gone.
        await store.release("r1", engine.owner)
        state = await Engine(store).resume(wf, "r1")
        assert state.status == "completed"
        assert state.outputs()["t"] == ["search-result", "fetch-result", "summarise-result"]
        assert calls == ["search", "fetch", "fetch", "summarise"]  # search not repeated
    finally:
        await store.close()


async def test_a_failed_attempt_starts_its_retry_afresh(tmp_path: Path) -> None:
    from podium import RetryPolicy

    calls: list[str] = []

    async def agent(ctx: TaskContext) -> str:
        result = await ctx.step("tool", "once", lambda: _note(calls, ctx.attempt))
        if ctx.attempt == 1:
            raise RuntimeError("bad reply")
        return str(result)

    wf = Workflow("retry-steps")
    wf.add_task("t", agent=agent, retry=RetryPolicy(attempts=2))
    store = SQLiteStore(tmp_path / "j.db")
    try:
        state = await Engine(store).start(wf)
        assert state.status == "completed"
        assert calls == ["attempt 1", "attempt 2"]
        assert state.outputs()["t"] == "attempt 2"
    finally:
        await store.close()


async def _note(calls: list[str], attempt: int) -> str:
    calls.append(f"attempt {attempt}")
    return f"attempt {attempt}"


def test_unknown_observations_are_refused() -> None:
    assert NewEvent(type="tool_call").type == "tool_call"
