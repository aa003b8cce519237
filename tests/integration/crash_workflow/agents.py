"""Function agents for the crash, human-wait and concurrency tests.

Every agent first records its side effect: one line `[task_key, idempotency_key, time_ns,
pid]` (JSON) appended to the effects file named by the run input `effects` (or the
environment variable `PODIUM_TEST_EFFECTS`), written with one `write` on an `O_APPEND`
descriptor and fsynced, so a `kill -9` never leaves half a line. Then it sleeps a few
milliseconds, so that kills land while tasks are in flight, and returns a value computed
only from its upstream outputs, so the tests can recompute the whole graph in plain Python.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from podium import TaskContext

EFFECTS_ENV = "PODIUM_TEST_EFFECTS"
MODULUS = 1_000_003


def fold(value: Any) -> int:
    """An int for an output: ints as they are, lists mixed down."""
    if isinstance(value, list):
        return mix(len(value), value)
    return int(value)


def mix(salt: int, values: Iterable[Any]) -> int:
    """A deterministic, order-sensitive hash of `values`."""
    acc = salt % MODULUS
    for value in values:
        acc = (acc * 31 + fold(value)) % MODULUS
    return acc


def task_key(ctx: TaskContext) -> str:
    """The task's key as the journal names it: `id`, or `id[i]` for a fan-out item."""
    return ctx.task_id if ctx.index is None else f"{ctx.task_id}[{ctx.index}]"


def record(ctx: TaskContext) -> None:
    """Append this attempt's effect line, durably."""
    path = ctx.inputs.get("effects") or os.environ.get(EFFECTS_ENV)
    if not path:
        raise RuntimeError(f"no effects file: give the input 'effects' or set {EFFECTS_ENV}")
    line = json.dumps([task_key(ctx), ctx.idempotency_key, time.time_ns(), os.getpid()])
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _pause(ctx: TaskContext) -> float:
    return random.uniform(1.0, max(1.0, float(ctx.inputs.get("sleep_ms") or 5))) / 1000


def _work(ctx: TaskContext) -> None:
    record(ctx)
    time.sleep(_pause(ctx))


async def _awork(ctx: TaskContext) -> None:
    await asyncio.to_thread(record, ctx)
    await asyncio.sleep(_pause(ctx))


# -- the crash workflow -------------------------------------------------------------------


def seed(ctx: TaskContext, salt: int, base: int) -> int:
    """The root: mixes the run input `base`."""
    _work(ctx)
    return mix(salt, [base])


def step(ctx: TaskContext, salt: int, sources: list[str]) -> int:
    """Mixes the outputs of the upstream tasks named in `sources` (sync, in a thread)."""
    _work(ctx)
    return mix(salt, [ctx.outputs[s] for s in sources])


async def astep(ctx: TaskContext, salt: int, sources: list[str]) -> int:
    """`step`, as a coroutine."""
    await _awork(ctx)
    return mix(salt, [ctx.outputs[s] for s in sources])


def join(ctx: TaskContext, salt: int, d_left: int, d_right: int) -> int:
    """The diamond's bottom: its upstream outputs arrive by parameter name."""
    _work(ctx)
    return mix(salt, [d_left, d_right])


def spread(ctx: TaskContext, salt: int, sources: list[str], count: int) -> list[int]:
    """A list of `count` numbers for a fan-out."""
    _work(ctx)
    base = mix(salt, [ctx.outputs[s] for s in sources])
    return [(base + 97 * k) % MODULUS for k in range(count)]


async def each(ctx: TaskContext, salt: int, item: int, index: int) -> int:
    """One fan-out item."""
    await _awork(ctx)
    return mix(salt, [item, index])


def total(ctx: TaskContext, salt: int, fan: list[int]) -> int:
    """Mixes the fan-out's list of outputs, received by parameter name."""
    _work(ctx)
    return mix(salt, fan)


# -- the human-wait workflow --------------------------------------------------------------


def draft(ctx: TaskContext, topic: str) -> dict[str, Any]:
    """A draft for a person to review."""
    _work(ctx)
    return {"title": f"Report on {topic}", "words": len(topic.split()) * 100}


def publish(ctx: TaskContext, draft: dict[str, Any], review: Any) -> dict[str, Any]:
    """Publishes the draft with the review's answer (the approved data or the default)."""
    _work(ctx)
    return {"published": draft["title"], "review": review}


# -- the lease workflow -------------------------------------------------------------------


def hold(ctx: TaskContext, gate: str, patience: float = 60.0) -> str:
    """Blocks until the file `gate` exists (a test releases it), at most `patience` s."""
    record(ctx)
    deadline = time.monotonic() + patience
    while not Path(gate).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{gate} did not appear within {patience}s")
        time.sleep(0.01)
    return "released"
