"""Podium's orchestration overhead with the durable journal on; prints one JSON object.

Every run journals into a real SQLite file (WAL) in a temporary folder, as a user's would:

- `chain_async`, `chain_sync`: a chain of no-op function agents (async, and sync ones, which
  Podium runs in a daemon thread); per-task overhead is the run's wall time over its tasks.
- `chain_sync_timeout`: the sync chain with a `timeout` on every task, which Podium runs in
  a worker process so that a timed-out attempt can be killed (a pipe round trip per task).
- `dispatch_*`: one sync no-op call alone, by `asyncio.to_thread`, a reused daemon thread
  and a worker process.
- `fanout_tasks`, `fanout_for_each`: 1,000 no-ops at once, as independent tasks and as one
  task mapped over 1,000 items.
- `sleep_fanout_*`: 1,000 agents that each sleep 50 ms, against the 50 ms ideal.
- `*_guarded`: `chain_async` and `fanout_tasks` again under an access policy (every agent
  use checked) with the audit log on (run start and end recorded), to set beside them.
- `resume_*`: a run of 5,500 tasks interrupted with 4,500 completed and 1,000 in flight
  (about 10,000 events); the time to fold its journal (`engine.state`) and to resume it
  (`engine.resume`, re-running the 1,000), from a fresh store and engine as after a restart.

Each figure is the median and minimum of several runs after a warm-up run.

    python benchmarks/engine.py            # the full benchmark (about half a minute)
    python benchmarks/engine.py --quick    # small sizes, a few seconds: a smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from _bench import (
    ITEMS,
    Timing,
    async_noop,
    chain,
    environment,
    for_each,
    independent,
    open_store,
    podium_run,
    repeat_interleaved,
    run_main,
    summary,
    sync_noop,
    timed,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from podium import Engine, Workflow, parse_policy
from podium.engine.executors.local import call_in_thread, call_in_worker, importable
from podium.security import AuditLog

SLEEP = 0.05
"""Seconds each agent of the sleeping fan-out waits."""


@dataclass(frozen=True, kw_only=True)
class Sizes:
    """How big each workload is, and how often it runs."""

    chain: int
    fanout: int
    sleep_fanout: int
    resume_tasks: int
    resume_completed: int
    repeat: int


FULL = Sizes(chain=100, fanout=1000, sleep_fanout=1000, resume_tasks=5500,
             resume_completed=4500, repeat=5)
QUICK = Sizes(chain=20, fanout=100, sleep_fanout=100, resume_tasks=220,
              resume_completed=180, repeat=2)


async def nap() -> None:
    await asyncio.sleep(SLEEP)


async def overhead(folder: str, sizes: Sizes) -> dict[str, Any]:
    """Per-task overhead of no-op agents: chains and fan-outs."""
    n = sizes.fanout
    workloads: dict[str, tuple[Workflow, dict[str, Any] | None, int]] = {
        "chain_async": (chain(sizes.chain, async_noop), None, sizes.chain),
        "chain_sync": (chain(sizes.chain, sync_noop), None, sizes.chain),
        "chain_sync_timeout": (chain(sizes.chain, sync_noop, timeout=30.0), None,
                               sizes.chain),
        "fanout_tasks": (independent(n, async_noop), None, n),
        "fanout_for_each": (for_each(async_noop), {ITEMS: list(range(n))}, n),
    }
    stores = {name: open_store(folder, name) for name in workloads}
    try:
        runs = {name: podium_run(Engine(stores[name]), wf, inputs)
                for name, (wf, inputs, _) in workloads.items()}
        walls = await repeat_interleaved(runs, sizes.repeat)
    finally:
        for store in stores.values():
            await store.close()
    return {name: Timing(tasks=workloads[name][2], walls=walls[name]).report()
            for name in workloads}


async def guarded(folder: str, sizes: Sizes) -> dict[str, Any]:
    """`chain_async` and `fanout_tasks` with an access policy and the audit log on."""
    policy = parse_policy("roles: {bench: {workflows: {'bench-*': [run]}, agents: [noop]}}\n"
                          "everyone: [bench]\n", "bench-policy")
    workloads: dict[str, tuple[Workflow, int]] = {
        "chain_async_guarded": (chain(sizes.chain, async_noop), sizes.chain),
        "fanout_tasks_guarded": (independent(sizes.fanout, async_noop), sizes.fanout),
    }
    stores = {name: open_store(folder, name) for name in workloads}
    audit = AuditLog(f"{folder}/audit.db", key=b"b" * 32, sign_every=None,
                     signing_key=Ed25519PrivateKey.generate())
    try:
        runs = {name: podium_run(Engine(stores[name], policy=policy, audit=audit), wf)
                for name, (wf, _) in workloads.items()}
        walls = await repeat_interleaved(runs, sizes.repeat)
    finally:
        audit.close()
        for store in stores.values():
            await store.close()
    return {name: Timing(tasks=workloads[name][1], walls=walls[name]).report()
            for name in workloads}


async def sleeping_fanout(folder: str, sizes: Sizes) -> dict[str, Any]:
    """Wall time of a fan-out of agents that each sleep, against the sleep itself."""
    n = sizes.sleep_fanout
    workloads: dict[str, tuple[Workflow, dict[str, Any] | None]] = {
        "sleep_fanout_for_each": (for_each(nap), {ITEMS: list(range(n))}),
        "sleep_fanout_tasks": (independent(n, nap), None),
    }
    stores = {name: open_store(folder, name) for name in workloads}
    try:
        runs = {name: podium_run(Engine(stores[name]), wf, inputs)
                for name, (wf, inputs) in workloads.items()}
        walls = await repeat_interleaved(runs, sizes.repeat)
    finally:
        for store in stores.values():
            await store.close()
    return {name: {"tasks": n, "sleep_ms": SLEEP * 1e3,
                   "wall_ms": summary([w * 1e3 for w in walls[name]], 2),
                   "ratio_to_ideal": summary([w / SLEEP for w in walls[name]], 2)}
            for name in workloads}


class Interruption:
    """An agent that hangs after `completed` calls, so that a run can be interrupted with
    those completed and the rest in flight, as a crash would leave it."""

    def __init__(self, total: int, completed: int) -> None:
        self.total, self.completed = total, completed
        self.armed = False
        self.calls = 0
        self.all_started = asyncio.Event()

    def arm(self) -> None:
        self.armed, self.calls = True, 0
        self.all_started.clear()

    async def agent(self) -> None:
        if not self.armed:
            return
        self.calls += 1
        if self.calls >= self.total:
            self.all_started.set()
        if self.calls > self.completed:
            await asyncio.Event().wait()


async def interrupt(engine: Engine, workflow: Workflow, inputs: dict[str, Any] | None,
                    gate: Interruption) -> str:
    """Start a run, cancel it once every task has started, and return its id."""
    run_id = f"bench-resume-{secrets.token_hex(4)}"
    gate.arm()
    runner = asyncio.create_task(engine.start(workflow, inputs, run_id=run_id))
    started = asyncio.create_task(gate.all_started.wait())
    await asyncio.wait({runner, started}, return_when=asyncio.FIRST_COMPLETED)
    if runner.done():
        started.cancel()
        state = runner.result()
        raise RuntimeError(f"run {run_id} ended {state.status} before it was interrupted")
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    gate.armed = False
    return run_id


async def resume_one(folder: str, name: str, workflow: Workflow,
                     inputs: dict[str, Any] | None, gate: Interruption,
                     sizes: Sizes) -> tuple[float, float, int]:
    """Interrupt a run, then fold and resume it from a fresh store: (fold s, resume s,
    events before resuming)."""
    first = open_store(folder, name)
    try:
        run_id = await interrupt(Engine(first), workflow, inputs, gate)
    finally:
        await first.close()
    store = open_store(folder, name)
    try:
        engine = Engine(store)
        state = await engine.state(run_id)
        done = sum(1 for t in state.tasks.values() if t.status == "completed")
        if done < sizes.resume_completed:
            raise RuntimeError(f"run {run_id} has {done} tasks completed, expected "
                               f"{sizes.resume_completed}")
        fold = await timed(_discard(engine.state(run_id)))
        resumed = await timed(_checked(engine.resume(workflow, run_id)))
        return fold, resumed, state.last_seq
    finally:
        await store.close()


def _discard(call: Awaitable[Any]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await call

    return run


def _checked(call: Awaitable[Any]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        state = await call
        if state.status != "completed":
            raise RuntimeError(f"resumed run {state.run_id} ended {state.status}: "
                               f"{state.error}")

    return run


async def resume(folder: str, sizes: Sizes) -> dict[str, Any]:
    """Folding and resuming an interrupted run of about 10,000 events."""
    n, gate = sizes.resume_tasks, Interruption(sizes.resume_tasks, sizes.resume_completed)
    workloads: dict[str, tuple[Workflow, dict[str, Any] | None]] = {
        "resume_tasks": (independent(n, gate.agent), None),
        "resume_for_each": (for_each(gate.agent), {ITEMS: list(range(n))}),
    }
    results: dict[str, Any] = {}
    for name, (workflow, inputs) in workloads.items():
        samples = [await resume_one(folder, name, workflow, inputs, gate, sizes)
                   for _ in range(sizes.repeat + 1)][1:]
        results[name] = {
            "tasks": n, "completed_before": sizes.resume_completed,
            "in_flight_before": n - sizes.resume_completed,
            "events": samples[0][2],
            "fold_ms": summary([s[0] * 1e3 for s in samples], 2),
            "resume_ms": summary([s[1] * 1e3 for s in samples], 2),
        }
    return results


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's target this script can judge alone: the sleeping fan-out within 2x."""
    out: dict[str, Any] = {}
    for name in ("sleep_fanout_for_each", "sleep_fanout_tasks"):
        ratio = results[name]["ratio_to_ideal"]["median"]
        out[f"{name}_within_2x_ideal"] = {"tasks": results[name]["tasks"],
                                          "median_ratio": ratio, "limit": 2.0,
                                          "met": ratio <= 2.0}
    return out


async def dispatch(sizes: Sizes) -> dict[str, Any]:
    """What running one sync call costs, without the engine: `asyncio.to_thread` (how sync
    agents ran before), a reused daemon thread (how they run now without a timeout), and a
    worker process round trip (with a timeout, so that it can be killed)."""
    target = importable(sync_noop)
    assert target is not None
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "dispatch_to_thread": lambda: asyncio.to_thread(sync_noop),
        "dispatch_daemon_thread": lambda: call_in_thread(sync_noop, "bench"),
        "dispatch_worker_process": lambda: call_in_worker(target, {}),
    }
    n = sizes.fanout
    out: dict[str, Any] = {}
    for name, call in calls.items():
        await call()  # a worker starts once
        samples = []
        for _ in range(sizes.repeat):
            start = time.perf_counter()
            for _ in range(n):
                await call()
            samples.append((time.perf_counter() - start) / n * 1e6)
        out[name] = {"calls": n, "per_call_us": summary(samples)}
    return out


async def main(quick: bool) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as folder:
        results: dict[str, Any] = {}
        results |= await overhead(folder, sizes)
        results |= await guarded(folder, sizes)
        results |= await sleeping_fanout(folder, sizes)
        results |= await resume(folder, sizes)
    results |= await dispatch(sizes)
    return {
        "benchmark": "podium-engine",
        "quick": quick,
        "journal": "SQLiteStore on a file in a temporary folder (WAL, synchronous=NORMAL)",
        "repeat": sizes.repeat,
        "environment": environment(),
        "results": results,
        "targets": targets(results),
    }


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and two repetitions: a smoke run of a few seconds")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse()
    run_main(lambda: main(args.quick))
