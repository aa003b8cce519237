"""The router: how well it finds the right agent, and what a decision costs; prints one JSON
object.

- `accuracy`: each task description of `data/router_tasks.yaml` (written as people ask,
  labelled with the agent a careful person would pick) is routed among the agents of
  `data/router_agents.yaml` by meaning alone (no skill given), with the real local
  embedding model. `top1` is how often the labelled agent ranks first, `top3` how often it
  is among the first three; `top1_given_skill` how often it ranks first when the task also
  names the labelled agent's (first) skill, as a `skill:` task would; `misses` lists some
  tasks routed elsewhere.
- `latency`: one routing decision (filter, rank, tie-break, decision record) over those
  agents. `cached_us`: the task's text and the agents' descriptions already embedded, so
  it is Podium's own overhead; `new_text_ms`: a text never seen, so one embedding is
  computed; `model_us`: cached embeddings and a scripted model choosing among the top
  three (`router: model`), its reply validated.
- `engine`: a run of routed tasks (skill and description) against the same run with every
  agent named, journaled in SQLite: the routing overhead per task, journaling the
  decision included.

    python benchmarks/router.py            # the full benchmark (about half a minute)
    python benchmarks/router.py --quick    # fewer repetitions: a smoke test
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from _bench import environment, open_store, repeat_interleaved, run_main, summary

from podium import Engine, Registry, RouterPolicy, Task, Workflow, load_registry
from podium.engine.router import Router
from podium.memory.embeddings import default_embedder
from podium.models.base import Message
from podium.testing import ScriptedModel

DATA = Path(__file__).resolve().parent / "data"


def labelled() -> list[tuple[str, str]]:
    """The labelled tasks: (description, agent)."""
    data = yaml.safe_load((DATA / "router_tasks.yaml").read_text(encoding="utf-8"))
    return [(t["text"], t["agent"]) for t in data["tasks"]]


async def _closed(name: str) -> bool:
    return False


async def accuracy(router: Router, registry: Registry) -> dict[str, Any]:
    """Top-1 and top-3 accuracy of routing by meaning over the labelled set."""
    tasks = labelled()
    unknown = {agent for _, agent in tasks} - set(registry)
    if unknown:
        raise SystemExit(f"labels name agents the registry lacks: {sorted(unknown)}")
    top1 = top3 = skilled = 0
    misses: list[dict[str, Any]] = []
    per_agent: Counter[str] = Counter()
    for text, expected in tasks:
        scores = await router.scores(text, registry)
        ranked = sorted(scores, key=lambda name: -scores[name])
        top1 += ranked[0] == expected
        top3 += expected in ranked[:3]
        per_agent[expected] += ranked[0] == expected
        skill = registry[expected].skills[0]
        skilled += next(n for n in ranked if skill in registry[n].skills) == expected
        if ranked[0] != expected:
            misses.append({"task": text, "expected": expected, "routed": ranked[0],
                           "expected_rank": ranked.index(expected) + 1})
    total = Counter(agent for _, agent in tasks)
    return {"tasks": len(tasks), "agents": len(registry),
            "top1": round(top1 / len(tasks), 3), "top3": round(top3 / len(tasks), 3),
            "top1_given_skill": round(skilled / len(tasks), 3),
            "top1_by_agent": {a: f"{per_agent[a]}/{total[a]}" for a in sorted(total)},
            "misses": misses[:12], "missed": len(misses)}


async def _per_decision_us(router: Router, registry: Registry, texts: Sequence[str],
                           policy: RouterPolicy, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for i, text in enumerate(texts):
            task = Task(id=f"t{i}", description=text)
            decision = await router.decide(task, prompt=None, agents=registry,
                                           is_open=_closed, policy=policy)
            assert decision.agent is not None, decision
        samples.append((time.perf_counter() - start) / len(texts) * 1e6)
    return samples


def _chooser(messages: Sequence[Message], schema: dict[str, Any] | None) -> dict[str, Any]:
    assert schema is not None
    names = schema["properties"]["agent"]["enum"]
    return {"agent": names[-1], "reason": "the last is the least busy"}


async def latency(router: Router, registry: Registry, repeat: int) -> dict[str, Any]:
    """Microseconds per decision: cached, with a new text, and with a choosing model."""
    texts = [text for text, _ in labelled()]
    await _per_decision_us(router, registry, texts, RouterPolicy(), 1)  # warm: all embedded
    cached = await _per_decision_us(router, registry, texts, RouterPolicy(), repeat)
    model = ScriptedModel(_chooser, name="scripted-chooser")
    with_model = await _per_decision_us(router, registry, texts, RouterPolicy(model=model),
                                        repeat)
    fresh: list[float] = []
    for r in range(repeat):
        new = [f"{text} (request {r}-{i})" for i, text in enumerate(texts[:20])]
        fresh += await _per_decision_us(router, registry, new, RouterPolicy(), 1)
    return {"decisions_per_sample": len(texts), "cached_us": summary(cached),
            "model_us": summary(with_model),
            "new_text_ms": summary([us / 1e3 for us in fresh], 3)}


def _workflows(registry: Registry, n: int) -> tuple[Workflow, Workflow]:
    tasks = labelled()[:n]
    routed, named = Workflow("bench-routed"), Workflow("bench-named")
    for wf in (routed, named):
        for name in registry:
            wf.add_agent(name, registry[name])
    for i, (text, agent) in enumerate(tasks):
        skill = registry[agent].skills[0]
        routed.add_task(f"t{i}", skill=skill, description=text, args={"s": "x"})
        named.add_task(f"t{i}", agent=agent, description=text, args={"s": "x"})
    return routed, named


async def engine_overhead(registry: Registry, n: int, repeat: int) -> dict[str, Any]:
    """Per-task cost of routing inside real runs journaled in SQLite."""
    routed, named = _workflows(registry, n)
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(folder, "router")
        engine = Engine(store)

        def runner(wf: Workflow) -> Any:
            async def run() -> None:
                state = await engine.start(wf)
                if state.status != "completed":
                    raise RuntimeError(f"{wf.name}: {state.error}")
            return run

        walls = await repeat_interleaved({"routed": runner(routed), "named": runner(named)},
                                         repeat)
        await store.close()
    extra = [(r - m) / n * 1e6 for r, m in zip(walls["routed"], walls["named"], strict=True)]
    return {"tasks": n,
            "routed_run_ms": summary([w * 1e3 for w in walls["routed"]], 2),
            "named_run_ms": summary([w * 1e3 for w in walls["named"]], 2),
            "routing_per_task_us": {"median": round(statistics.median(extra), 1),
                                    "min": round(min(extra), 1)}}


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    quick = parser.parse_args().quick
    registry = load_registry(DATA / "router_agents.yaml")
    router = Router(default_embedder())
    repeat = 2 if quick else 7
    return {
        "environment": environment(),
        "embedder": default_embedder().name,
        "accuracy": await accuracy(router, registry),
        "latency": await latency(router, registry, repeat),
        "engine": await engine_overhead(registry, 20 if quick else 100, repeat),
    }


if __name__ == "__main__":
    run_main(main)
