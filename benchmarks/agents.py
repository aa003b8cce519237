"""What Podium adds around an LLM agent's model and tool calls, with the durable journal on;
prints one JSON object.

Every run journals into a real SQLite file (WAL) in a temporary folder, as a user's would,
and the model is the scripted test model, which answers at once: what is measured is
Podium's own work (journaling each model turn, each tool call and each durable step,
folding state, the tool protocol), not a model's.

- `tool_calls`: a chain of LLM agent tasks offered one no-op tool. In the baseline each
  task's model answers at once; in `sequential` it first asks for the tool in `calls` turns
  of one call each, and in `concurrent` in one turn of `calls` calls. The overhead per tool
  call is (the run's wall time - the same repetition's baseline) / tool calls. A sequential
  call brings its own model turn; concurrent calls share one.
- `reply_cache`: a chain of LLM agent tasks that each make one model call, with the reply
  cache off, on and missing (every prompt new: a lookup, the call, a write), and on and
  hitting (every prompt asked before: a lookup, no call). Per model call: the run's wall
  time / tasks. `lookup_ms` is the `latency_ms` journaled for cache hits.

Each figure is the median and minimum of several runs after a warm-up run.

    python benchmarks/agents.py            # the full benchmark (about ten seconds)
    python benchmarks/agents.py --quick    # small sizes, a few seconds: a smoke test
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from _bench import environment, open_store, repeat_interleaved, run_main, summary

from podium import Engine, InputSpec, LLMAgent, SQLiteStore, Workflow
from podium.models.base import Message
from podium.testing import ScriptedModel
from podium.tools import make_tool

SALT = "salt"
"""The input that makes every prompt of a run new (or the same as before)."""


@dataclass(frozen=True, kw_only=True)
class Sizes:
    """How big each workload is, and how often it runs."""

    tool_tasks: int
    calls: int
    cache_tasks: int
    repeat: int


FULL = Sizes(tool_tasks=20, calls=10, cache_tasks=100, repeat=15)
QUICK = Sizes(tool_tasks=5, calls=4, cache_tasks=20, repeat=3)


async def noop() -> str:
    """Do nothing."""
    return "ok"


NOOP = make_tool(noop)


def _asking(calls: int, per_turn: int) -> Callable[..., dict[str, Any]]:
    """A scripted model that asks for `calls` no-op calls, `per_turn` at a time, then
    answers."""

    def reply(messages: Sequence[Message], schema: Any) -> dict[str, Any]:
        done = sum(1 for m in messages if m.role == "tool")
        if done >= calls:
            return {"text": "done", "tool_calls": []}
        return {"tool_calls": [{"name": "noop", "arguments": {}}
                               for _ in range(min(per_turn, calls - done))]}

    return reply


def _chain(name: str, n: int, agent: LLMAgent) -> Workflow:
    """`n` tasks of `agent`, each needing the one before, each with its own prompt."""
    wf = Workflow(name, inputs={SALT: InputSpec(type="string")})
    wf.add_agent("llm", agent)
    for i in range(n):
        wf.add_task(f"t{i}", agent="llm", needs=[f"t{i - 1}"] if i else [],
                    prompt=f"Task {i} of run {{{{ inputs.{SALT} }}}}")
    return wf


def _runner(engine: Engine, workflow: Workflow, salt: Callable[[], str],
            ran: list[str] | None = None) -> Callable[[], Awaitable[None]]:
    """A function that starts a new run and checks that it completed."""

    async def run() -> None:
        state = await engine.start(workflow, {SALT: salt()})
        if state.status != "completed":
            raise RuntimeError(f"benchmark run {state.run_id} ended {state.status}: "
                               f"{state.error}")
        if ran is not None:
            ran.append(state.run_id)

    return run


async def tool_calls(folder: str, sizes: Sizes) -> dict[str, Any]:
    """Overhead per tool call, against the same repetition's run without tool calls."""
    n, k = sizes.tool_tasks, sizes.calls
    agents = {
        "baseline": LLMAgent(ScriptedModel(_asking(0, 1)), name="llm", tools=[NOOP]),
        "sequential": LLMAgent(ScriptedModel(_asking(k, 1)), name="llm", tools=[NOOP],
                               max_turns=k + 1),
        "concurrent": LLMAgent(ScriptedModel(_asking(k, k)), name="llm", tools=[NOOP]),
    }
    stores = {name: open_store(folder, f"tools-{name}") for name in agents}
    try:
        runs = {name: _runner(Engine(stores[name]), _chain(f"tools-{name}", n, agent),
                              lambda: "same")
                for name, agent in agents.items()}
        walls = await repeat_interleaved(runs, sizes.repeat)
    finally:
        for store in stores.values():
            await store.close()
    base = walls["baseline"]
    report: dict[str, Any] = {
        "tasks": n, "calls_per_task": k,
        "baseline_per_task_us": summary([w / n * 1e6 for w in base]),
    }
    for name in ("sequential", "concurrent"):
        per_call = [(w - b) / (n * k) * 1e6 for w, b in zip(walls[name], base, strict=True)]
        report[name] = {"model_turns_per_task": k + 1 if name == "sequential" else 2,
                        "per_task_us": summary([w / n * 1e6 for w in walls[name]]),
                        "overhead_per_tool_call_us": summary(per_call)}
    return report


async def reply_cache(folder: str, sizes: Sizes) -> dict[str, Any]:
    """Per model call: the reply cache off, missing and hitting."""
    n = sizes.cache_tasks
    fresh = itertools.count()
    modes: dict[str, tuple[bool, Callable[[], str]]] = {
        "off": (False, lambda: "same"),
        "miss": (True, lambda: f"new-{next(fresh)}"),
        "hit": (True, lambda: "same"),
    }
    stores: dict[str, SQLiteStore] = {name: open_store(folder, f"cache-{name}")
                                      for name in modes}
    models = {name: ScriptedModel(lambda messages, schema: "the answer") for name in modes}
    hits: list[str] = []
    try:
        runs = {name: _runner(Engine(stores[name]),
                              _chain(f"cache-{name}", n,
                                     LLMAgent(models[name], name="llm", cache=cache)),
                              salt, hits if name == "hit" else None)
                for name, (cache, salt) in modes.items()}
        walls = await repeat_interleaved(runs, sizes.repeat)
        lookups = [e.data["latency_ms"] for run_id in hits[1:]
                   for e in await stores["hit"].events(run_id)
                   if e.type == "model_call" and e.data.get("cached")]
    finally:
        for store in stores.values():
            await store.close()
    calls = {name: len(model.calls) for name, model in models.items()}
    if calls["hit"] != n:  # only the warm-up run may have asked the model
        raise RuntimeError(f"the hitting runs called the model {calls['hit'] - n} times")
    per_call = {name: [w / n * 1e6 for w in walls[name]] for name in modes}
    off = statistics.median(per_call["off"])
    return {
        "tasks": n,
        "per_model_call_us": {name: summary(samples) for name, samples in per_call.items()},
        "vs_off_us": {name: round(statistics.median(per_call[name]) - off, 1)
                      for name in ("miss", "hit")},
        "hit_vs_miss_us": round(statistics.median(per_call["hit"])
                                - statistics.median(per_call["miss"]), 1),
        "lookup_ms": {"median": round(statistics.median(lookups), 4),
                      "max": round(max(lookups), 4), "hits": len(lookups)},
        "model_calls": calls,
    }


async def main(quick: bool) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as folder:
        results = {"tool_calls": await tool_calls(folder, sizes),
                   "reply_cache": await reply_cache(folder, sizes)}
    return {
        "benchmark": "podium-agents",
        "quick": quick,
        "journal": "SQLiteStore on a file in a temporary folder (WAL, synchronous=NORMAL)",
        "model": "ScriptedModel (answers at once): the figures are Podium's own work",
        "repeat": sizes.repeat,
        "environment": environment(),
        "results": results,
    }


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and three repetitions: a smoke run of a few seconds")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse()
    run_main(lambda: main(args.quick))
