"""Podium against LangGraph on the same no-op workloads, both durable on SQLite; prints JSON.

The workloads, in one process on one machine, each run after a warm-up run and timed in
turns (so that changes in the machine's load fall on every framework alike):

- `chain`: 100 no-op steps, each after the one before. LangGraph: a `StateGraph` of 100
  nodes joined by edges. Podium: 100 tasks, each needing the one before.
- `map`: one step mapped over 1,000 items. LangGraph: a conditional edge from `START` that
  returns 1,000 `Send`s to one node, whose results a reducer collects (its map-reduce).
  Podium: one task with `for_each` over the 1,000 items, whose outputs it collects.
- `branches`: 1,000 different no-op steps at once. LangGraph: 1,000 nodes, each with an edge
  from `START`. Podium: 1,000 tasks that need nothing.

Durability: Podium journals every event to a `SQLiteStore` before it counts. LangGraph runs
with its SQLite checkpointer on a file, `durability="sync"` (each step's checkpoint is
written before the next step starts; the closest to Podium's journal) and, for
reference, its default `durability="async"`; both with the synchronous `SqliteSaver`
(`invoke`, sync nodes) and the `AsyncSqliteSaver` (`ainvoke`, async nodes). Every SQLite
file is in WAL mode with `synchronous=NORMAL`, Podium's setting: a committed step survives
a crash of the process.

The ratio the issue sets a target on is Podium's per-task overhead over LangGraph's, against
LangGraph's fastest configuration (`vs_fastest`) and against the like-for-like one, async
nodes with `durability="sync"` (`vs_async_sync`). The target is at most 1/3.

    python benchmarks/peers.py            # the full comparison (about a minute)
    python benchmarks/peers.py --quick    # small sizes: a smoke run

Needs LangGraph: `pip install 'podium[bench]'`.
"""

from __future__ import annotations

import argparse
import json
import operator
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from _bench import (
    ITEMS,
    Timing,
    async_noop,
    chain,
    environment,
    for_each,
    independent,
    open_store,
    package_version,
    podium_run,
    repeat_interleaved,
    run_main,
)

from podium import Engine, Workflow

INSTALL = "peers.py needs LangGraph and its SQLite checkpointer: pip install 'podium[bench]'"

try:
    import aiosqlite
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send
except ImportError as missing:  # pragma: no cover - depends on the environment
    print(json.dumps({"error": f"{INSTALL} ({missing})"}))
    print(f"{INSTALL} ({missing})", file=sys.stderr)
    sys.exit(1)

Workload = Literal["chain", "map", "branches"]
Durability = Literal["sync", "async"]
Run = Callable[[], Awaitable[None]]
TARGET = 1 / 3
"""Podium's per-task overhead at most this fraction of LangGraph's."""


@dataclass(frozen=True, kw_only=True)
class Sizes:
    chain: int
    fanout: int
    repeat: int


FULL = Sizes(chain=100, fanout=1000, repeat=5)
QUICK = Sizes(chain=20, fanout=100, repeat=2)


# -- LangGraph --------------------------------------------------------------------------


class State(TypedDict, total=False):
    """The graph's state: how many items to map over, and the mapped results."""

    n: int
    results: Annotated[list[Any], operator.add]


class Item(TypedDict):
    index: int


def _sync_step(state: State) -> dict[str, Any]:
    return {}


async def _async_step(state: State) -> dict[str, Any]:
    return {}


def _sync_map(state: Item) -> dict[str, Any]:
    return {"results": [None]}


async def _async_map(state: Item) -> dict[str, Any]:
    return {"results": [None]}


def _sync_branch(state: State) -> dict[str, Any]:
    return {"results": [None]}


async def _async_branch(state: State) -> dict[str, Any]:
    return {"results": [None]}


def _sends(state: State) -> list[Send]:
    return [Send("work", {"index": i}) for i in range(state["n"])]


def graph(workload: Workload, n: int, *, is_async: bool) -> StateGraph[State]:
    """The LangGraph graph of a workload, with sync or async nodes."""
    g = StateGraph(State)
    if workload == "chain":
        for i in range(n):
            g.add_node(f"t{i}", _async_step if is_async else _sync_step)
            g.add_edge(f"t{i - 1}" if i else START, f"t{i}")
        g.add_edge(f"t{n - 1}", END)
    elif workload == "map":
        if is_async:
            g.add_node("work", _async_map)
        else:
            g.add_node("work", _sync_map)
        g.add_conditional_edges(START, _sends, ["work"])
        g.add_edge("work", END)
    else:
        for i in range(n):
            g.add_node(f"b{i}", _async_branch if is_async else _sync_branch)
            g.add_edge(START, f"b{i}")
            g.add_edge(f"b{i}", END)
    return g


def _config(steps: int) -> RunnableConfig:
    # A new thread per run, as a new Podium run; the chain takes one superstep per node.
    return {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": steps + 10}


async def langgraph_runs(stack: AsyncExitStack, folder: str, workload: Workload, n: int,
                         expected: int) -> dict[str, Run]:
    """One run function per LangGraph configuration, each on its own SQLite file."""
    runs: dict[str, Run] = {}
    path = f"{folder}/langgraph-{workload}-sync.sqlite"
    conn = sqlite3.connect(path, check_same_thread=False)
    stack.callback(conn.close)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    sync_app = graph(workload, n, is_async=False).compile(checkpointer=SqliteSaver(conn))
    apath = f"{folder}/langgraph-{workload}-async.sqlite"
    aconn = await stack.enter_async_context(aiosqlite.connect(apath))
    await aconn.execute("PRAGMA journal_mode=WAL")
    await aconn.execute("PRAGMA synchronous=NORMAL")
    async_app = graph(workload, n, is_async=True).compile(
        checkpointer=AsyncSqliteSaver(aconn))
    inputs: State = {"n": n if workload == "map" else 0}

    def check(out: Any) -> None:
        got = len(out.get("results", [])) if isinstance(out, dict) else 0
        if got != expected:
            raise RuntimeError(f"LangGraph {workload} collected {got} results, not {expected}")

    for durability in ("sync", "async"):
        def sync_run(durability: Durability = durability) -> Run:
            async def run() -> None:
                check(sync_app.invoke(inputs, _config(n), durability=durability))
            return run

        def async_run(durability: Durability = durability) -> Run:
            async def run() -> None:
                check(await async_app.ainvoke(inputs, _config(n), durability=durability))
            return run

        runs[f"langgraph_sync_nodes_durability_{durability}"] = sync_run()
        runs[f"langgraph_async_nodes_durability_{durability}"] = async_run()
    return runs


# -- Podium -----------------------------------------------------------------------------


def podium_workflow(workload: Workload, n: int) -> tuple[Workflow, dict[str, Any] | None]:
    if workload == "chain":
        return chain(n, async_noop), None
    if workload == "map":
        return for_each(async_noop), {ITEMS: list(range(n))}
    return independent(n, async_noop), None


# -- the comparison ---------------------------------------------------------------------


async def compare(folder: str, workload: Workload, n: int, repeat: int) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        store = open_store(folder, f"podium-{workload}")
        stack.push_async_callback(store.close)
        workflow, inputs = podium_workflow(workload, n)
        runs = {"podium": podium_run(Engine(store), workflow, inputs)}
        expected = 0 if workload == "chain" else n
        runs |= await langgraph_runs(stack, folder, workload, n, expected)
        walls = await repeat_interleaved(runs, repeat)
    reports = {name: Timing(tasks=n, walls=w).report() for name, w in walls.items()}
    podium = reports["podium"]["per_task_us"]["median"]
    langgraph = {name: r["per_task_us"]["median"] for name, r in reports.items()
                 if name != "podium"}
    fastest = min(langgraph, key=lambda name: langgraph[name])
    like = "langgraph_async_nodes_durability_sync"
    ratios = {
        "vs_fastest": round(podium / langgraph[fastest], 3),
        "fastest_langgraph": fastest,
        "vs_async_sync": round(podium / langgraph[like], 3),
        "by_configuration": {name: round(podium / us, 3) for name, us in langgraph.items()},
    }
    return {"tasks": n, "per_task_us": {name: r["per_task_us"] for name, r in reports.items()},
            "wall_ms": {name: r["wall_ms"] for name, r in reports.items()},
            "ratio_podium_over_langgraph": ratios}


async def main(quick: bool) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    workloads: dict[Workload, int] = {"chain": sizes.chain, "map": sizes.fanout,
                                      "branches": sizes.fanout}
    with tempfile.TemporaryDirectory(prefix="podium-peers-") as folder:
        results = {w: await compare(folder, w, n, sizes.repeat) for w, n in workloads.items()}
    targets = {
        f"{w}_at_most_one_third": {
            "vs_fastest": r["ratio_podium_over_langgraph"]["vs_fastest"],
            "vs_async_sync": r["ratio_podium_over_langgraph"]["vs_async_sync"],
            "limit": round(TARGET, 3),
            "met": r["ratio_podium_over_langgraph"]["vs_fastest"] <= TARGET,
        }
        for w, r in results.items()}
    env = environment() | {"langgraph": package_version("langgraph"),
                           "langgraph_checkpoint_sqlite":
                               package_version("langgraph-checkpoint-sqlite")}
    return {
        "benchmark": "podium-vs-langgraph",
        "quick": quick,
        "repeat": sizes.repeat,
        "statistic": "median of the timed runs (min alongside); per task = wall / tasks",
        "journal": "SQLite files in WAL mode, synchronous=NORMAL, in a temporary folder",
        "environment": env,
        "results": results,
        "targets": targets,
    }


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and two repetitions: a smoke run")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse()
    run_main(lambda: main(args.quick))
