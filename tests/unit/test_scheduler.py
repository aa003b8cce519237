"""The scheduler: dependency order, concurrency, conditions, fan-out, failure and timeout."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from podium import Engine, Event, InputSpec, RunState, SQLiteStore, Workflow

# A generous bound on tests that would otherwise hang on a scheduling bug; never reached
# when the engine behaves.
HANG = 10.0


class Journal:
    """An `on_event` hook that keeps every event, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event, state: RunState) -> None:
        self.events.append(event)

    def of(self, type_: str) -> list[Event]:
        return [e for e in self.events if e.type == type_]

    def seq(self, type_: str, task: str) -> int:
        found = [e.seq for e in self.events if e.type == type_ and e.task == task]
        assert found, f"no {type_} event for {task!r}"
        return found[0]

    def tasks(self, type_: str) -> list[str]:
        return [e.task for e in self.of(type_) if e.task is not None]


async def run(store: SQLiteStore, wf: Workflow, inputs: dict[str, Any] | None = None,
              journal: Journal | None = None) -> RunState:
    async with asyncio.timeout(HANG):
        return await Engine(store).start(wf, inputs or {}, on_event=journal)


async def yields(n: int) -> None:
    """Let other tasks run `n` times, without waiting on the clock."""
    for _ in range(n):
        await asyncio.sleep(0)


# -- dependency order -----------------------------------------------------------------------


async def test_a_task_starts_only_after_every_task_it_needs_completed(
        store: SQLiteStore) -> None:
    wf = Workflow("diamond", inputs={"n": InputSpec(type="integer")})

    async def source(n: int) -> int:
        await yields(3)
        return n

    async def left(source: int) -> int:
        await yields(5)
        return source + 1

    async def right(source: int) -> int:
        return source * 10

    async def join(left: int, right: int) -> list[int]:
        return [left, right]

    wf.add_task("source", agent=source)
    wf.add_task("left", agent=left, needs=["source"])
    wf.add_task("right", agent=right, needs=["source"])
    wf.add_task("join", agent=join, needs=["left", "right"])
    journal = Journal()

    state = await run(store, wf, {"n": 2}, journal)

    assert state.status == "completed"
    assert state.outputs() == {"source": 2, "left": 3, "right": 20, "join": [3, 20]}
    for task in wf.tasks.values():
        started = journal.seq("task_started", task.id)
        for need in task.needs:
            assert journal.seq("task_completed", need) < started, (task.id, need)
    assert journal.tasks("task_started")[0] == "source"
    assert journal.tasks("task_completed")[-1] == "join"
    assert journal.of("run_completed")[0].seq == journal.events[-1].seq


async def test_the_journal_read_back_tells_the_same_story(store: SQLiteStore) -> None:
    wf = Workflow("chain")
    wf.add_task("a", agent=lambda: 1)
    wf.add_task("b", agent=lambda a: a + 1, needs=["a"])
    journal = Journal()

    state = await run(store, wf, journal=journal)
    stored = await store.events(state.run_id)

    assert [(e.seq, e.type, e.task) for e in stored] == [
        (e.seq, e.type, e.task) for e in journal.events]
    assert RunState.of(state.run_id, stored).record() == state.record()


# -- concurrency ------------------------------------------------------------------------------


async def test_independent_tasks_run_at_the_same_time(store: SQLiteStore) -> None:
    # Each agent sets its own event and waits for the other's: run one after the other,
    # they would deadlock (and the asyncio.timeout would fail the test).
    ping, pong = asyncio.Event(), asyncio.Event()

    async def first() -> str:
        ping.set()
        await pong.wait()
        return "first"

    async def second() -> str:
        pong.set()
        await ping.wait()
        return "second"

    wf = Workflow("pair")
    wf.add_task("first", agent=first)
    wf.add_task("second", agent=second)
    wf.add_task("both", agent=lambda first, second: f"{first}+{second}",
                needs=["first", "second"])

    state = await run(store, wf)

    assert state.status == "completed"
    assert state.outputs()["both"] == "first+second"


# -- when -------------------------------------------------------------------------------------


async def test_a_false_condition_skips_the_task_and_tasks_that_need_only_it(
        store: SQLiteStore) -> None:
    calls: list[str] = []

    def agent(name: str) -> Any:
        def fn() -> str:
            calls.append(name)
            return name
        return fn

    wf = Workflow("cond", inputs={"send": InputSpec(type="boolean")})
    wf.add_task("prepare", agent=agent("prepare"))
    wf.add_task("send", agent=agent("send"), needs=["prepare"], when="inputs.send")
    wf.add_task("confirm", agent=agent("confirm"), needs=["send"])
    wf.add_task("archive", agent=agent("archive"), needs=["confirm"])
    journal = Journal()

    state = await run(store, wf, {"send": "false"}, journal)

    assert state.status == "completed"
    assert calls == ["prepare"]
    statuses = {t["id"]: t["status"] for t in state.record()["tasks"]}
    assert statuses == {"prepare": "completed", "send": "skipped", "confirm": "skipped",
                        "archive": "skipped"}
    reasons = {e.task: e.data["reason"] for e in journal.of("task_skipped")}
    assert "inputs.send" in reasons["send"]
    assert "skipped" in reasons["confirm"]
    assert state.outputs() == {"prepare": "prepare"}


async def test_a_true_condition_runs_the_task(store: SQLiteStore) -> None:
    wf = Workflow("cond", inputs={"n": InputSpec(type="integer")})
    wf.add_task("probe", agent=lambda n: {"big": n > 3})
    wf.add_task("act", agent=lambda: "acted", needs=["probe"], when="{{ outputs.probe.big }}")

    big = await run(store, wf, {"n": 5})
    small = await run(store, wf, {"n": 1})

    assert big.tasks["act"].status == "completed"
    assert small.tasks["act"].status == "skipped"
    assert big.status == small.status == "completed"


async def test_a_task_needing_a_skipped_and_a_completed_task_still_runs(
        store: SQLiteStore) -> None:
    seen: list[Any] = []

    def report(done: str, optional: Any) -> str:
        seen.append(optional)
        return f"report of {done}"

    wf = Workflow("mixed")
    wf.add_task("done", agent=lambda: "done")
    wf.add_task("optional", agent=lambda: "never", when="false")
    wf.add_task("report", agent=report, needs=["done", "optional"])

    state = await run(store, wf)

    assert state.status == "completed"
    assert state.tasks["optional"].status == "skipped"
    assert state.outputs()["report"] == "report of done"
    assert seen == [None]


# -- for_each ---------------------------------------------------------------------------------


async def test_for_each_outputs_follow_item_order_whatever_order_items_finish(
        store: SQLiteStore) -> None:
    finished: list[int] = []

    async def square(item: int, index: int) -> dict[str, int]:
        # Later items finish first.
        await yields(5 * (5 - index))
        finished.append(index)
        return {"index": index, "square": item * item}

    wf = Workflow("fan", inputs={"xs": InputSpec(type="list")})
    wf.add_task("square", agent=square, for_each="inputs.xs")
    journal = Journal()

    state = await run(store, wf, {"xs": [3, 1, 4, 1, 5]}, journal)

    assert state.status == "completed"
    assert finished == [4, 3, 2, 1, 0]
    assert state.outputs()["square"] == [
        {"index": i, "square": x * x} for i, x in enumerate([3, 1, 4, 1, 5])]
    assert journal.of("fanout_started")[0].data == {"count": 5}
    assert {f"square[{i}]" for i in range(5)} <= set(state.tasks)
    assert "square[0]" not in state.outputs()


@pytest.mark.parametrize("concurrency", [1, 2, 3])
async def test_for_each_runs_at_most_concurrency_items_at_once(
        store: SQLiteStore, concurrency: int) -> None:
    in_flight = 0
    most = 0

    async def work(item: int) -> int:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await yields(20)
        in_flight -= 1
        return item * 2

    wf = Workflow("bounded")
    wf.add_task("work", agent=work, for_each="range(7) | list", concurrency=concurrency)

    state = await run(store, wf)

    assert state.status == "completed"
    assert state.outputs()["work"] == [0, 2, 4, 6, 8, 10, 12]
    assert most == concurrency


async def test_for_each_without_a_limit_runs_every_item_at_once(store: SQLiteStore) -> None:
    arrived = 0
    everyone = asyncio.Event()

    async def meet(item: str) -> str:
        nonlocal arrived
        arrived += 1
        if arrived == 4:
            everyone.set()
        await everyone.wait()
        return item.upper()

    wf = Workflow("unbounded")
    wf.add_task("meet", agent=meet, for_each="['a', 'b', 'c', 'd']")

    state = await run(store, wf)

    assert state.outputs()["meet"] == ["A", "B", "C", "D"]


async def test_for_each_over_an_empty_list_completes_with_an_empty_list(
        store: SQLiteStore) -> None:
    calls: list[Any] = []

    def never(item: Any) -> Any:
        calls.append(item)
        return item

    wf = Workflow("empty", inputs={"xs": InputSpec(type="list")})
    wf.add_task("each", agent=never, for_each="inputs.xs", concurrency=2)
    wf.add_task("after", agent=lambda each: len(each), needs=["each"])

    state = await run(store, wf, {"xs": []})

    assert state.status == "completed"
    assert calls == []
    assert state.outputs() == {"each": [], "after": 0}


async def test_for_each_over_an_upstream_output(store: SQLiteStore) -> None:
    def pages() -> dict[str, Any]:
        return {"urls": ["a.html", "b.html", "c.html"]}

    def fetch(item: str, index: int, prefix: str) -> str:
        return f"{index}:{prefix}{item}"

    wf = Workflow("crawl")
    wf.add_task("pages", agent=pages)
    wf.add_task("fetch", agent=fetch, needs=["pages"], for_each="outputs.pages.urls",
                args={"prefix": "https://x/"}, concurrency=2)
    wf.add_task("count", agent=lambda fetch: len(fetch), needs=["fetch"])

    state = await run(store, wf)

    assert state.status == "completed"
    assert state.outputs()["fetch"] == ["0:https://x/a.html", "1:https://x/b.html",
                                        "2:https://x/c.html"]
    assert state.outputs()["count"] == 3


async def test_for_each_over_something_not_a_list_fails_the_task(store: SQLiteStore) -> None:
    wf = Workflow("bad")
    wf.add_task("each", agent=lambda item: item, for_each="42")

    state = await run(store, wf)

    assert state.status == "failed"
    assert state.reason == "task_failed"
    assert "not a list" in (state.tasks["each"].error or "")


async def test_one_failed_item_fails_the_for_each_task_and_the_run(store: SQLiteStore) -> None:
    def check(item: int) -> int:
        if item == 2:
            raise ValueError(f"bad item {item}")
        return item

    wf = Workflow("items")
    wf.add_task("check", agent=check, for_each="[1, 2, 3]")

    state = await run(store, wf)

    assert state.status == "failed"
    assert state.tasks["check[1]"].status == "failed"
    assert state.tasks["check[0]"].output == 1
    assert state.tasks["check[2]"].output == 3
    assert "1 of 3 items failed" in (state.tasks["check"].error or "")
    assert "bad item 2" in (state.error or "")


# -- failure and timeout ------------------------------------------------------------------


async def test_a_failed_task_fails_the_run_and_in_flight_siblings_finish(
        store: SQLiteStore) -> None:
    failed = asyncio.Event()
    started: list[str] = []

    def hook(event: Event, state: RunState) -> None:
        journal(event, state)
        if event.type == "task_failed" and event.task == "broken":
            failed.set()

    async def broken() -> None:
        started.append("broken")
        raise RuntimeError("disk on fire")

    async def slow() -> str:
        started.append("slow")
        await failed.wait()
        return "slow result"

    def after(broken: Any = None, slow: Any = None) -> str:
        started.append("after")
        return "never"

    wf = Workflow("fails")
    wf.add_task("broken", agent=broken)
    wf.add_task("slow", agent=slow)
    wf.add_task("after_slow", agent=after, needs=["slow"])
    wf.add_task("after_broken", agent=after, needs=["broken"])
    journal = Journal()

    async with asyncio.timeout(HANG):
        state = await Engine(store).start(wf, on_event=hook)

    assert state.status == "failed"
    assert state.reason == "task_failed"
    assert "broken" in (state.error or "") and "disk on fire" in (state.error or "")
    assert sorted(started) == ["broken", "slow"]
    assert state.outputs() == {"slow": "slow result"}
    assert journal.seq("task_failed", "broken") < journal.seq("task_completed", "slow")
    record = state.record()
    assert record["status"] == "failed"
    tasks = {t["id"]: t for t in record["tasks"]}
    assert tasks["slow"]["status"] == "completed"
    assert tasks["broken"]["status"] == "failed"
    assert "RuntimeError: disk on fire" in tasks["broken"]["error"]
    assert "after_slow" not in tasks or tasks["after_slow"]["status"] == "pending"
    stored = RunState.of(state.run_id, await store.events(state.run_id))
    assert stored.outputs() == {"slow": "slow result"}
    assert stored.status == "failed"


async def test_the_run_times_out_as_a_whole(store: SQLiteStore) -> None:
    never = asyncio.Event()

    async def quick() -> str:
        return "quick"

    async def stuck(quick: str) -> str:
        await never.wait()
        return "unreachable"

    wf = Workflow("slow", timeout=0.05)
    wf.add_task("quick", agent=quick)
    wf.add_task("stuck", agent=stuck, needs=["quick"])
    journal = Journal()

    state = await run(store, wf, journal=journal)

    assert state.status == "failed"
    assert state.reason == "timeout"
    assert "0.05" in (state.error or "")
    assert state.outputs() == {"quick": "quick"}
    assert journal.events[-1].type == "run_failed"
    assert (await Engine(store).state(state.run_id)).reason == "timeout"


async def test_a_condition_on_a_missing_field_fails_the_task_not_the_engine(
        store: SQLiteStore) -> None:
    wf = Workflow("cond")
    wf.add_task("probe", agent=lambda: {"other": 1})
    wf.add_task("act", agent=lambda: "acted", needs=["probe"], when="outputs.probe.flag")

    state = await run(store, wf)

    assert state.status == "failed"
    assert state.tasks["act"].status == "failed"
    assert "flag" in (state.tasks["act"].error or "")
