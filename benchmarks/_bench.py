"""Shared parts of the benchmark scripts: the machine, timing statistics, Podium workloads.

The scripts run as `python benchmarks/<name>.py`, so this folder is on `sys.path` and they
import this module as `_bench`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from podium import Engine, InputSpec, SQLiteStore, Workflow

Agent = Callable[..., Any]


def package_version(name: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Where the figures were measured."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "podium": package_version("podium"),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "argv": sys.argv[1:],
    }


def summary(samples: list[float], digits: int = 1) -> dict[str, Any]:
    """Median and minimum of some samples, and the samples themselves, rounded."""
    return {"median": round(statistics.median(samples), digits),
            "min": round(min(samples), digits),
            "samples": [round(s, digits) for s in samples]}


@dataclass(frozen=True, kw_only=True)
class Timing:
    """Wall times of repeated runs of one workload of `tasks` tasks, in seconds."""

    tasks: int
    walls: list[float]

    def per_task_us(self) -> list[float]:
        return [w / self.tasks * 1e6 for w in self.walls]

    def report(self) -> dict[str, Any]:
        """Wall time, per-task overhead and throughput: medians and best cases."""
        median_wall = statistics.median(self.walls)
        return {
            "tasks": self.tasks,
            "wall_ms": summary([w * 1e3 for w in self.walls], 2),
            "per_task_us": summary(self.per_task_us(), 1),
            "tasks_per_s": {"median": round(self.tasks / median_wall),
                            "max": round(self.tasks / min(self.walls))},
        }


async def timed(run: Callable[[], Awaitable[None]]) -> float:
    """The wall time of one run, in seconds, with garbage from earlier runs collected."""
    gc.collect()
    start = time.perf_counter()
    await run()
    return time.perf_counter() - start


async def repeat_interleaved(runs: dict[str, Callable[[], Awaitable[None]]],
                             repeat: int) -> dict[str, list[float]]:
    """Time each run `repeat` times after one warm-up, taking turns so that drift in the
    machine's load falls on every run alike."""
    for run in runs.values():
        await run()
    walls: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            walls[name].append(await timed(run))
    return walls


# -- Podium workloads -------------------------------------------------------------------

ITEMS = "items"
"""The input a `for_each` fans out over."""


async def async_noop() -> None:
    return None


def sync_noop() -> None:
    return None


def chain(n: int, agent: Agent, *, timeout: float | None = None) -> Workflow:
    """`n` tasks, each needing the one before (each with `timeout`, if given)."""
    wf = Workflow("bench-chain")
    wf.add_agent("noop", agent)
    for i in range(n):
        wf.add_task(f"t{i}", agent="noop", needs=[f"t{i - 1}"] if i else [],
                    timeout=timeout)
    return wf


def independent(n: int, agent: Agent) -> Workflow:
    """`n` tasks that need nothing, all ready at once."""
    wf = Workflow("bench-independent")
    wf.add_agent("noop", agent)
    for i in range(n):
        wf.add_task(f"t{i}", agent="noop")
    return wf


def for_each(agent: Agent) -> Workflow:
    """One task mapped over the input `work`, with no concurrency limit."""
    wf = Workflow("bench-for-each", inputs={ITEMS: InputSpec(type="list")})
    wf.add_task("fan", agent=agent, for_each=f"{{{{ inputs.{ITEMS} }}}}")
    return wf


def podium_run(engine: Engine, workflow: Workflow,
               inputs: dict[str, Any] | None = None) -> Callable[[], Awaitable[None]]:
    """A function that starts a new run of `workflow` and checks that it completed."""

    async def run() -> None:
        state = await engine.start(workflow, inputs)
        if state.status != "completed":
            raise RuntimeError(f"benchmark run {state.run_id} ended {state.status}: "
                               f"{state.error}")

    return run


def open_store(folder: str, name: str) -> SQLiteStore:
    """A journal in a fresh SQLite file (WAL) in `folder`."""
    return SQLiteStore(os.path.join(folder, f"{name}.sqlite"))


def run_main(main: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> None:
    """Run a benchmark's main coroutine and print its result as one JSON object."""
    result = asyncio.run(main())
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
