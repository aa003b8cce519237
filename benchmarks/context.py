"""How long an LLM agent's prompt takes to assemble within its context budget; prints one
JSON object.

`assemble` is timed on its own (no engine, no journal): it counts every entry of every
section, fits them to the budget in priority order, truncates, and summarises the oldest
of the session thread. Summaries come from the scripted test model, which answers at
once, so the figures are Podium's own work, not a model's. Each shape is timed with the
estimate (3 bytes a token) and with llama.cpp's tokenizer for the local model
(SmolLM2-135M; its load is excluded).

Shapes:

- `typical`: 300 bytes of instructions, a 500-byte task, 3 upstream outputs of 1 kB,
  5 memories, 10 notes and a session of 3 earlier runs; everything fits a budget of
  8,192 tokens.
- `long_session`: only a session of 50 earlier runs (150 entries of 2 kB) into a 2,048
  window: the newest entries are kept and the oldest summarised.
- `large_trimmed`: a session of 50 earlier runs (150 entries of 2 kB), 200 notes and 50
  memories into the same window: most is dropped, truncated or summarised.
- `large_fits`: the same into a budget of 200,000 tokens: nothing is dropped, so this is
  the cost of counting about 450 kB.

Each figure is the median and minimum of several runs after a warm-up run.

    python benchmarks/context.py            # the full benchmark (about half a minute)
    python benchmarks/context.py --quick    # fewer repetitions: a smoke test
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from _bench import environment, run_main, summary

from podium import ContextOptions, LLMAgent
from podium.agents.context import assemble
from podium.core.agent import Capabilities, TaskContext, TaskInput
from podium.core.events import Observation
from podium.models.base import Message, Model
from podium.models.tokens import estimate_tokens
from podium.testing import ScriptedModel


@dataclass(frozen=True, kw_only=True)
class Shape:
    name: str
    runs: int
    entry_bytes: int
    notes: int
    memories: int
    outputs: int
    budget: int | None


SHAPES = (
    Shape(name="typical", runs=3, entry_bytes=400, notes=10, memories=5, outputs=3,
          budget=8192),
    Shape(name="long_session", runs=50, entry_bytes=2000, notes=0, memories=0, outputs=0,
          budget=None),
    Shape(name="large_trimmed", runs=50, entry_bytes=2000, notes=200, memories=50, outputs=3,
          budget=None),
    Shape(name="large_fits", runs=50, entry_bytes=2000, notes=200, memories=50, outputs=3,
          budget=200_000),
)


def _text(n: int, size: int) -> str:
    words = f"entry {n}: the order was shipped late and the customer asked for a refund. "
    return (words * (size // len(words) + 1))[:size]


def _summary(messages: Sequence[Message], schema: Any) -> str:
    return "The earlier runs discussed late orders and refunds."


def _context(shape: Shape) -> tuple[TaskInput, TaskContext]:
    thread = [{"run_id": f"run-{r}", "workflow": "support", "status": "completed",
               "started_at": "2026-11-25T00:00:00+00:00",
               "inputs": {"message": _text(r, shape.entry_bytes)},
               "outputs": {"triage": _text(r + 1, shape.entry_bytes),
                           "reply": _text(r + 2, shape.entry_bytes)}, "notes": []}
              for r in range(shape.runs)]
    notes = [{"text": _text(n, 200), "by": "scout", "at": None} for n in range(shape.notes)]

    async def session() -> Sequence[dict[str, Any]]:
        return thread

    ctx = TaskContext(run_id="r", task_id="reply", attempt=1, idempotency_key="k",
                      inputs={}, outputs={f"step{n}": _text(n, 1000)
                                          for n in range(shape.outputs)},
                      session="s",
                      _lent=Capabilities(notes=lambda: notes, session_thread=session))
    task = TaskInput(args={}, prompt=_text(0, 500),
                     memories=tuple(_text(m, 300) for m in range(shape.memories)))
    return task, ctx


async def _time(shape: Shape, model: Model, repeat: int) -> dict[str, Any]:
    agent = LLMAgent(model, name="bench", instructions=_text(0, 300),
                     context_budget=shape.budget,
                     context=ContextOptions(outputs=True, notes=True,
                                            summariser=ScriptedModel(_summary)))
    task, ctx = _context(shape)
    recorded: list[dict[str, Any]] = []

    async def record(key: str, observation: Observation) -> None:
        recorded.append({"kind": observation.type, **observation.to_data()})

    ctx = replace(ctx, _lent=replace(ctx._lent, record=record))
    samples = []
    for n in range(repeat + 1):
        recorded.clear()
        started = time.perf_counter()
        await assemble(agent, model, task, ctx)
        if n:  # the first is a warm-up
            samples.append((time.perf_counter() - started) * 1000)
    report = next(r for r in recorded if r["kind"] == "context_assembled")
    entries = sum(s["entries"] for s in report["sections"].values())
    return {"ms": summary(samples, 2), "counted": report["counted"],
            "budget": report["budget"], "used": report["used"], "entries": entries,
            "kept": sum(s["kept"] for s in report["sections"].values()),
            "summarised": sum(s["summarised"] for s in report["sections"].values()),
            "left_out_or_cut": len(report["dropped"]) + report.get("more_dropped", 0)}


async def _tokenizer_rate(model: Model) -> dict[str, Any]:
    text = _text(0, 100_000)
    started = time.perf_counter()
    tokens = model.count_tokens(text) or 0
    seconds = time.perf_counter() - started
    return {"bytes": len(text), "tokens": tokens, "estimate": estimate_tokens(text),
            "ms": round(seconds * 1000, 2), "mb_per_s": round(len(text) / seconds / 1e6, 2)}


async def main(quick: bool) -> dict[str, Any]:
    from podium.models import LocalModel

    repeat = 3 if quick else 10
    local = LocalModel(n_ctx=2048)
    local.count_tokens("load")  # the model file's load is not part of assembling
    estimated = ScriptedModel(_summary, context_window=2048)
    results: dict[str, Any] = {}
    for shape in SHAPES:
        results[shape.name] = {"estimate": await _time(shape, estimated, repeat),
                               "llama_tokenizer": await _time(shape, local, repeat)}
    return {
        "benchmark": "podium-context",
        "quick": quick,
        "repeat": repeat,
        "window": 2048,
        "summariser": "ScriptedModel (answers at once): the figures are Podium's own work",
        "environment": environment(),
        "results": results,
        "llama_tokenizer_100kB": await _tokenizer_rate(local),
    }


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="three repetitions: a smoke run of a few seconds")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse()
    run_main(lambda: main(args.quick))
