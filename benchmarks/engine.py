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
- `sweep`: chains and fan-outs (independent tasks) of each size in `--sizes` (100, 1,000
  and 10,000 by default): per-task time of no-op runs, then one run whose agents return
  1 KB, traced: peak Python memory (tracemalloc) and journal bytes per task. CPU time per
  task (`cpu_per_task_us`) beside the wall time: on a loaded machine it varies less.
- `processes`: the command line as a user starts it, at the largest size: `import podium`,
  `podium --help`, `podium validate` of a chain (and the same load and check in this
  process, without the imports), `podium resume` of a chain killed half-way (by SIGKILL,
  from inside an agent), and `podium run --json` of a fan-out of 1,000 tasks (fewer when
  the largest size is smaller). Each with its CPU time (`cpu_ms`, user and system), and
  `import podium.cli` alone, the part of each process that is not the command's own
  (`beyond_import_ms`: the median process time less the median import time).
- `show_json`: `podium runs show --json` of a run of one `for_each` over each of
  `--show-sizes` items (10,000 and 100,000 by default), each item's output a small dict:
  the process's wall and CPU time, its peak memory (`peak_rss_mb`, its own high-water
  resident set, `VmHWM`: Linux) and the bytes it printed, beside the peak of
  `import podium.cli` alone.

Each figure is the median and minimum of several runs after a warm-up run.

    python benchmarks/engine.py            # the full benchmark (about half a minute)
    python benchmarks/engine.py --quick    # small sizes, a few seconds: a smoke test
    python benchmarks/engine.py --sweep-only --sizes 100,1000   # the sweep alone, smaller
    python benchmarks/engine.py --cli-only --sizes 1000 --show-sizes 10000,100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
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
from podium.store.sqlite import SQLiteStore

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
    sweep: tuple[int, ...]
    """Task counts of the size sweep's chains and fan-outs."""
    show: tuple[int, ...]
    """Item counts of the `for_each` runs `runs show --json` prints."""


FULL = Sizes(chain=100, fanout=1000, sleep_fanout=1000, resume_tasks=5500,
             resume_completed=4500, repeat=5, sweep=(100, 1000, 10000),
             show=(10000, 100000))
QUICK = Sizes(chain=20, fanout=100, sleep_fanout=100, resume_tasks=220,
              resume_completed=180, repeat=2, sweep=(20, 100), show=(100, 1000))


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


# -- the size sweep ---------------------------------------------------------------------

KILOBYTE = "x" * 1024
REPEATED_UP_TO = 1000
"""Sweep sizes up to this many tasks run `repeat` times after a warm-up; larger ones once."""


async def kilobyte() -> str:
    return KILOBYTE


def _journal_bytes(folder: str, name: str) -> int:
    return sum(f.stat().st_size for f in Path(folder).glob(f"{name}.sqlite*"))


async def traced(folder: str, name: str, workflow: Workflow) -> tuple[float, int]:
    """One run of `workflow` in a fresh journal, traced: (peak MB of Python memory above
    what was held before it, journal bytes once the store is closed)."""
    store = open_store(folder, name)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        await podium_run(Engine(store), workflow)()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        await store.close()
    return (peak - base) / 1e6, _journal_bytes(folder, name)


async def sweep(folder: str, sizes: Sizes) -> dict[str, Any]:
    """Per-task time, peak memory and journal bytes of chains and fan-outs by size."""
    shapes: dict[str, Callable[[int, Any], Workflow]] = {
        "chain": lambda n, agent: chain(n, agent), "fanout": independent}
    out: dict[str, Any] = {shape: {} for shape in shapes}
    for n in sizes.sweep:
        for shape, build in shapes.items():
            name = f"sweep_{shape}_{n}"
            store = open_store(folder, name)
            try:
                run = podium_run(Engine(store), build(n, async_noop))
                if n <= REPEATED_UP_TO:
                    await run()  # a warm-up
                walls, cpus = [], []
                for _ in range(sizes.repeat if n <= REPEATED_UP_TO else 1):
                    start = time.process_time()
                    walls.append(await timed(run))
                    cpus.append((time.process_time() - start) / n * 1e6)
            finally:
                await store.close()
            peak_mb, journal = await traced(folder, f"{name}_1kb", build(n, kilobyte))
            out[shape][str(n)] = {
                **Timing(tasks=n, walls=walls).report(), "runs": len(walls),
                "cpu_per_task_us": summary(cpus, 1),
                "peak_mb_1kb_outputs": round(peak_mb, 2),
                "journal_bytes_per_task_1kb_outputs": round(journal / n),
            }
    return out


# -- the command line as a process --------------------------------------------------------

AGENTS_MODULE = """\
import os
import signal

KILL_AT = int(os.environ.get("PODIUM_BENCH_KILL_AT", "-1"))


def step(n: int, prev: object = None) -> None:
    if n == KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)
"""


def chain_yaml(n: int) -> str:
    """A chain of `n` function-agent tasks, each reading the output before it."""
    lines = ["name: bench-chain", "agents:", "  step: {function: bench_agents:step}", "tasks:",
             "  t0: {agent: step, with: {n: 0}}"]
    lines += [f"  t{i}: {{agent: step, needs: [t{i - 1}], "
              f"with: {{n: {i}, prev: \"{{{{ outputs.t{i - 1} }}}}\"}}}}" for i in range(1, n)]
    return "\n".join(lines) + "\n"


def fanout_yaml(n: int) -> str:
    """`n` independent function-agent tasks."""
    lines = ["name: bench-fanout", "agents:", "  step: {function: bench_agents:step}",
             "tasks:"]
    lines += [f"  t{i}: {{agent: step, with: {{n: {i}}}}}" for i in range(n)]
    return "\n".join(lines) + "\n"


_PEAK = """\
import atexit, os, sys
def _peak():
    with open("/proc/self/status") as status:
        found = next(line for line in status if line.startswith("VmHWM:"))
    with open(os.environ["PODIUM_BENCH_HWM"], "w") as out:
        out.write(found.split(":", 1)[1].strip())
atexit.register(_peak)
sys.argv = {argv!r} or sys.argv
{code}
"""
"""`python -c` of this runs `code` (`python -m podium` with `argv`) and writes its peak
resident memory (`VmHWM`, in KiB) as it exits to the file `$PODIUM_BENCH_HWM` names."""


class Podium:
    """`python -m podium` in a folder of its own, with this interpreter and environment."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {**os.environ, "PODIUM_HOME": str(folder)}
        self.env.pop("PODIUM_BENCH_KILL_AT", None)
        (folder / "bench_agents.py").write_text(AGENTS_MODULE)

    def timed(self, *args: str, code: int = 0, env: dict[str, str] | None = None
              ) -> tuple[float, float]:
        """Seconds `python -m podium ARGS` took (or `python ARGS` when the first is -c):
        wall time, and CPU time (user and system), which a loaded machine inflates less."""
        command = [sys.executable, *(args if args[0] == "-c" else ("-m", "podium", *args))]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, cwd=self.folder, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != code:
            raise RuntimeError(f"{' '.join(args)} exited {done.returncode}, not {code}: "
                               f"{done.stderr[-2000:]}")
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    def peak(self, *args: str) -> dict[str, Any]:
        """One run of `python -m podium ARGS` (or `python ARGS` when the first is -c): wall
        and CPU milliseconds, peak resident memory, and the bytes it printed.

        The peak is the process's own (`VmHWM`, read as it exits): `ru_maxrss` would count
        this benchmark's memory too, which a child inherits when it starts."""
        code = args[1] if args[0] == "-c" else "import runpy; runpy.run_module('podium', " \
            "run_name='__main__', alter_sys=True)"
        argv = [] if args[0] == "-c" else ["podium", *args]
        command = [sys.executable, "-c", _PEAK.format(argv=argv, code=code)]
        with tempfile.TemporaryFile() as printed, tempfile.NamedTemporaryFile() as hwm:
            start = time.perf_counter()
            child = subprocess.Popen(command, cwd=self.folder, stdout=printed,
                                     stderr=subprocess.DEVNULL,
                                     env={**self.env, "PODIUM_BENCH_HWM": hwm.name})
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - start
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode:
                raise RuntimeError(f"{' '.join(args)} exited {child.returncode}")
            size = printed.seek(0, os.SEEK_END)
            peak_kib = int(Path(hwm.name).read_text().split()[0])
        return {"process_ms": round(wall * 1e3, 1),
                "cpu_ms": round((usage.ru_utime + usage.ru_stime) * 1e3, 1),
                "peak_rss_mb": round(peak_kib / 1024, 1), "printed_bytes": size}

    def samples(self, count: int, *args: str) -> dict[str, Any]:
        """Wall and CPU milliseconds of `count` runs."""
        runs = [self.timed(*args) for _ in range(count)]
        return {**summary([wall * 1e3 for wall, _ in runs], 1),
                "cpu_ms": summary([cpu * 1e3 for _, cpu in runs], 1)}


def processes(folder: str, sizes: Sizes) -> dict[str, Any]:
    """Process times of the command line at the sweep's largest size."""
    n = max(sizes.sweep)
    fan = min(1000, n)
    home = Path(folder) / "cli"
    home.mkdir()
    podium = Podium(home)
    (home / "chain.yaml").write_text(chain_yaml(n))
    (home / "fanout.yaml").write_text(fanout_yaml(fan))
    count = 3 if sizes.repeat >= 3 else 1
    out: dict[str, Any] = {
        "import_podium_ms": podium.samples(count, "-c", "import podium"),
        "import_cli_ms": podium.samples(count, "-c", "import podium.cli"),
        "help_ms": podium.samples(count, "--help"),
        "validate_chain": {"tasks": n, "process_ms": podium.samples(count, "validate",
                                                                    "chain.yaml"),
                           "in_process_ms": in_process_load(home / "chain.yaml", count)},
    }
    db = str(home / "resume.db")
    podium.timed("run", str(home / "chain.yaml"), "--db", db, "--run-id", "bench-resume",
                 "--no-input", code=-9, env={"PODIUM_BENCH_KILL_AT": str(n // 2)})
    wall, cpu = podium.timed("resume", "bench-resume", "--db", db)
    out["resume_chain"] = {"tasks": n, "killed_at_task": n // 2,
                           "process_ms": round(wall * 1e3, 1), "cpu_ms": round(cpu * 1e3, 1)}
    run_json = podium.samples(count, "run", "--json", str(home / "fanout.yaml"), "--db",
                              str(home / "fan.db"), "--no-input")
    out["run_json_fanout"] = {
        "tasks": fan, "process_ms": run_json,
        "beyond_import_ms": round(run_json["median"] - out["import_cli_ms"]["median"], 1)}
    return out


async def small() -> dict[str, Any]:
    return {"ok": True, "text": "an output of a hundred bytes or so, " * 2}


async def show_json(folder: str, sizes: Sizes) -> dict[str, Any]:
    """`podium runs show --json` of `for_each` runs of each size: time and peak memory."""
    home = Path(folder) / "show"
    home.mkdir()
    podium = Podium(home)
    out: dict[str, Any] = {"import_cli": podium.peak("-c", "import podium.cli")}
    for n in sizes.show:
        db = str(home / f"show_{n}.db")
        store = SQLiteStore(db)
        try:
            state = await Engine(store).start(for_each(small), {ITEMS: list(range(n))})
        finally:
            await store.close()
        if state.status != "completed":
            raise RuntimeError(f"the {n}-item run ended {state.status}: {state.error}")
        out[str(n)] = podium.peak("runs", "show", state.run_id, "--json", "--db", db)
    return out


def in_process_load(path: Path, count: int) -> dict[str, Any]:
    """Loading and checking a workflow file here, its imports already done."""
    from podium import load_workflow

    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        samples, cpu = [], []
        for _ in range(count):
            start, start_cpu = time.perf_counter(), time.process_time()
            load_workflow(path)
            samples.append((time.perf_counter() - start) * 1e3)
            cpu.append((time.process_time() - start_cpu) * 1e3)
    finally:
        os.chdir(cwd)
    return {**summary(samples, 1), "cpu_ms": summary(cpu, 1)}


async def main(quick: bool, sizes: Sizes, sweep_only: bool, cli_only: bool
               ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as folder:
        results: dict[str, Any] = {}
        if cli_only:
            results["processes"] = processes(folder, sizes)
            results["show_json"] = await show_json(folder, sizes)
            return {"benchmark": "podium-engine", "quick": quick,
                    "environment": environment(), "load_average": list(os.getloadavg()),
                    "results": results}
        if not sweep_only:
            results |= await overhead(folder, sizes)
            results |= await guarded(folder, sizes)
            results |= await sleeping_fanout(folder, sizes)
            results |= await resume(folder, sizes)
        results["sweep"] = await sweep(folder, sizes)
        results["processes"] = processes(folder, sizes)
        results["show_json"] = await show_json(folder, sizes)
    if not sweep_only:
        results |= await dispatch(sizes)
    return {
        "benchmark": "podium-engine",
        "quick": quick,
        "journal": "SQLiteStore on a file in a temporary folder (WAL, synchronous=NORMAL)",
        "repeat": sizes.repeat,
        "environment": environment(),
        "load_average": list(os.getloadavg()),
        "results": results,
        "targets": {} if sweep_only else targets(results),
    }


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and two repetitions: a smoke run of a few seconds")
    parser.add_argument("--sizes", type=lambda text: tuple(int(n) for n in text.split(",")),
                        help="task counts of the sweep, comma-separated (default 100,1000,"
                             "10000; with --quick 20,100); the processes use the largest")
    parser.add_argument("--sweep-only", action="store_true",
                        help="only the size sweep and the command-line processes")
    parser.add_argument("--show-sizes",
                        type=lambda text: tuple(int(n) for n in text.split(",")),
                        help="item counts of the `for_each` runs `runs show --json` prints "
                             "(default 10000,100000; with --quick 100,1000)")
    parser.add_argument("--cli-only", action="store_true",
                        help="only the command-line processes and `runs show --json`")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse()
    chosen = QUICK if args.quick else FULL
    if args.sizes:
        chosen = replace(chosen, sweep=args.sizes)
    if args.show_sizes:
        chosen = replace(chosen, show=args.show_sizes)
    run_main(lambda: main(args.quick, chosen, args.sweep_only, args.cli_only))
