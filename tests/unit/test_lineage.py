"""Which tasks are upstream of which (`podium.core.lineage`): the same answers as a plain
walk over `needs` on chains, diamonds, fan-ins, cycles and random graphs, in the checks
that use them, and at run time for plain, `for_each` and planned tasks."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium import Engine, FunctionAgent, InputSpec, SQLiteStore, Workflow, subtasks
from podium.core.check import problems
from podium.core.lineage import Lineage
from podium.engine.planner import PlannedTask, plan_problems


def walk(needs: Mapping[str, Sequence[str]], task: str) -> set[str]:
    """Every task `task` needs, directly or not: the plain walk the lineage must match."""
    seen: set[str] = set()
    stack = [n for n in needs[task] if n in needs]
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack += [n for n in needs[current] if n in needs]
    return seen


def assert_matches_walk(needs: Mapping[str, Sequence[str]]) -> None:
    lineage = Lineage(needs)
    for task in needs:
        expected = walk(needs, task)
        upstream = lineage[task]
        assert set(upstream) == expected, task
        assert len(upstream) == len(expected)
        for other in needs:
            assert (other in upstream) is (other in expected), (other, task)
            assert lineage.is_upstream(other, task) is (other in expected)


def test_a_chain_s_upstream_is_everything_before_it_upstream_most_first() -> None:
    needs = {f"t{i}": [f"t{i - 1}"] if i else [] for i in range(50)}
    lineage = Lineage(needs)

    assert list(lineage["t5"]) == ["t0", "t1", "t2", "t3", "t4"]
    assert "t0" in lineage["t49"] and "t49" not in lineage["t0"]
    assert "t7" not in lineage["t7"]
    assert len(lineage["t49"]) == 49 and len(lineage["t0"]) == 0
    assert lineage["t3"] == frozenset({"t0", "t1", "t2"})
    assert_matches_walk(needs)


def test_a_diamond_joins_both_sides_once() -> None:
    needs = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["d", "a"]}
    lineage = Lineage(needs)

    assert set(lineage["d"]) == {"a", "b", "c"} and len(lineage["d"]) == 3
    assert "c" not in lineage["b"] and "b" not in lineage["c"]
    assert next(iter(lineage["e"])) == "a"
    assert_matches_walk(needs)


def test_a_fan_in_and_a_fan_out() -> None:
    needs: dict[str, list[str]] = {f"r{i}": [] for i in range(30)}
    needs["join"] = [f"r{i}" for i in range(30)]
    needs |= {f"s{i}": ["join"] for i in range(30)}
    lineage = Lineage(needs)

    assert len(lineage["s3"]) == 31 and "r29" in lineage["s3"]
    assert "s4" not in lineage["s3"] and "r1" not in lineage["r2"]
    assert_matches_walk(needs)


def test_cycles_unknown_needs_and_unknown_ids_are_tolerated() -> None:
    needs = {"a": ["c", "ghost"], "b": ["a"], "c": ["b"], "d": ["c", "d"], "e": []}
    lineage = Lineage(needs)

    assert set(lineage["a"]) == {"a", "b", "c"}  # on a cycle: itself too, as a walk finds
    assert "d" in lineage["d"] and "ghost" not in lineage["a"]
    assert "nowhere" not in lineage["a"] and 3 not in lineage["a"]
    assert not lineage.is_upstream("a", "nowhere") and not lineage.is_upstream("x", "a")
    with pytest.raises(KeyError):
        lineage["nowhere"]
    assert list(lineage) == list(needs) and len(lineage) == 5 and "e" in lineage
    assert_matches_walk(needs)


def test_a_chain_of_ten_thousand_answers_without_storing_its_square() -> None:
    n = 10_000
    lineage = Lineage({f"t{i}": [f"t{i - 1}"] if i else [] for i in range(n)})

    assert all(f"t{i - 1}" in lineage[f"t{i}"] for i in range(1, n))
    assert all("t0" in lineage[f"t{i}"] for i in range(1, n))
    assert f"t{n - 1}" not in lineage["t0"]


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    """Random graphs over up to 25 tasks: mostly acyclic, each edge pointing back to an
    earlier task, some with an edge forward that may close a cycle."""
    count = draw(st.integers(1, 25))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    ids = [f"t{i}" for i in range(count)]
    rng.shuffle(ids)
    density = rng.random() * 0.5
    needs = {t: [ids[j] for j in range(i) if rng.random() < density]
             for i, t in enumerate(ids)}
    if draw(st.booleans()) and count > 1:
        a, b = rng.sample(ids, 2)
        needs[a].append(b)
    return needs


@settings(max_examples=300, deadline=None)
@given(dags())
def test_random_graphs_match_a_plain_walk(needs: dict[str, list[str]]) -> None:
    assert_matches_walk(needs)


# -- the checks that ask ----------------------------------------------------------------


def test_templates_and_parameters_may_read_indirect_upstream_tasks_only() -> None:
    wf = Workflow("diamond")
    wf.add_agent("noop", lambda: None)
    wf.add_task("a", agent="noop")
    wf.add_task("b", agent="noop", needs=["a"])
    wf.add_task("c", agent="noop", needs=["a"])
    wf.add_task("d", agent=lambda a, b: None, needs=["b", "c"], prompt="{{ outputs.a }}")
    wf.add_task("e", agent=lambda c: None, needs=["b"],
                args={"x": "{{ outputs.c }}"})

    found = [(p.field, p.message) for p in problems(wf)]

    assert found[0] == ("tasks.e.with",
                        "outputs.c is not upstream of task 'e'; add 'c' to its needs")
    assert found[1][0] == "tasks.e.with" and "needs 'c', which no with: value" in found[1][1]
    assert len(found) == 2


def adder(data: dict[str, Any]) -> int:
    return sum(data["rows"])


def test_a_plan_may_read_tasks_upstream_of_its_needs() -> None:
    wf = Workflow("planned")
    wf.add_agent("adder", FunctionAgent(adder, skills=["add_up"]))
    wf.add_task("data", agent=lambda: {"rows": [1]})
    wf.add_task("later", agent=lambda data: data, needs=["data"])
    tasks = [PlannedTask.model_validate(t) for t in (
        {"id": "sum", "skill": "add_up", "needs": ["later"]},
        {"id": "other", "skill": "add_up", "needs": [], "with": {"data": "{{ outputs.sum }}"}},
    )]

    assert plan_problems(wf, tasks, max_tasks=5) == [
        "task 'other' (with): outputs.sum is not upstream of task 'other'; add 'sum' to "
        "its needs"]


# -- at run time --------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    store = SQLiteStore(tmp_path / "podium.db")
    try:
        yield store
    finally:
        await store.close()


async def test_a_task_reads_outputs_of_indirect_upstream_tasks(store: SQLiteStore) -> None:
    seen: dict[str, list[str]] = {}

    def last(t0: int, ctx: Any) -> int:
        seen["keys"] = list(ctx.outputs)
        return t0 + len(ctx.outputs)

    wf = Workflow("chain")
    wf.add_task("t0", agent=lambda: 40)
    for i in range(1, 20):
        wf.add_task(f"t{i}", agent=lambda: None, needs=[f"t{i - 1}"])
    wf.add_task("end", agent=last, needs=["t19"], args={"first": "{{ outputs.t0 }}"})

    state = await Engine(store).start(wf)

    assert state.status == "completed", state.error
    assert state.outputs()["end"] == 60
    assert seen["keys"] == [f"t{i}" for i in range(20)]


async def test_for_each_items_read_indirect_upstream_tasks(store: SQLiteStore) -> None:
    wf = Workflow("mapped", inputs={"base": InputSpec(type="integer")})
    wf.add_task("base", agent=lambda base: base)
    wf.add_task("items", agent=lambda: [1, 2, 3], needs=["base"])
    wf.add_task("each", agent=lambda item, base: item + base, needs=["items"],
                for_each="{{ outputs.items }}")
    wf.add_task("total", agent=lambda each, base: sum(each) - base, needs=["each"])

    state = await Engine(store).start(wf, {"base": 10})

    assert state.status == "completed", state.error
    assert state.outputs()["each"] == [11, 12, 13]
    assert state.outputs()["total"] == 26


async def test_subtasks_added_during_a_run_read_tasks_upstream_of_them(
        store: SQLiteStore) -> None:
    def split(start: int) -> dict[str, Any]:
        return subtasks([
            {"id": "first", "skill": "add_up", "needs": ["split"],
             "with": {"data": {"rows": [1, 2]}}},
            {"id": "second", "skill": "read_start", "needs": ["first"]},
        ])

    def read_start(start: int, first: int) -> int:
        return start * 100 + first

    wf = Workflow("grow")
    wf.add_agent("adder", FunctionAgent(adder, skills=["add_up"]))
    wf.add_agent("reader", FunctionAgent(read_start, skills=["read_start"]))
    wf.add_task("start", agent=lambda: 7)
    wf.add_task("split", agent=split, needs=["start"])

    state = await Engine(store).start(wf)

    assert state.status == "completed", state.error
    assert state.outputs()["second"] == 703
