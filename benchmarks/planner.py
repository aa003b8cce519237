"""Planning: Podium's own overhead, and how often the local model's first plan passes.

With the scripted model (which answers at once), the figures are Podium's overhead alone:

- `check_us`: `plan_problems` on a valid chain plan of K tasks against K skilled agents
  (the check a model's plan goes through: skills, ids, cycles, templates, parameters);
- `plan_phase_ms`: from `run_started` to the journaled end of the `plan` step of a run
  (rendering the goal, the prompt, the model call, the check, and the `model_call`,
  `plan_created` and `task_completed` events in a SQLite file); `with_repair` adds one
  plan that fails its check (a cycle) and goes back with the reasons.

With `--local`, the finance goal of `examples/monthly_report_planned.yaml` is planned by
the local model (SmolLM2-135M, grammar-constrained) `--tries` times, each try with its own
seed and the temperature cycling through 0, 0.3, 0.6, 0.9. It reports how many first plans
pass the check, how many pass within `--repairs` repairs, the problems that first plans
had (by kind), and the model's latency. A 135M model is expected to fail often: that is
the figure, not a fault of the benchmark.

    python benchmarks/planner.py                 # overhead, a few seconds
    python benchmarks/planner.py --quick         # small sizes: a smoke test
    python benchmarks/planner.py --local         # and the local model, minutes
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _bench import environment, open_store, run_main, summary

from podium import Engine, Event, FunctionAgent, PlannerConfig, RunState, Workflow
from podium.engine.planner import PlannedTask, Planner, plan_problems
from podium.testing import ScriptedModel

ROOT = Path(__file__).resolve().parents[1]
FINANCE = ROOT / "examples" / "monthly_report_planned.yaml"
TEMPERATURES = (0.0, 0.3, 0.6, 0.9)
KINDS = (
    ("not_json", re.compile(r"is not JSON")),
    ("schema", re.compile(r"does not fit the plan's schema")),
    ("unknown_skill", re.compile(r"unknown skill")),
    ("unknown_need", re.compile(r"unknown task .* in needs")),
    ("cycle", re.compile(r"cycle:")),
    ("unbound_parameter", re.compile(r"which no with: value")),
    ("bad_template", re.compile(r"unknown (input|task|name)|not upstream|invalid template")),
    ("bad_id", re.compile(r"an id is|two tasks have|already has a task|planning step")),
    ("too_big", re.compile(r"more than max_tasks")),
    ("model_failed", re.compile(r"the model failed")),
)


def noop() -> None:
    return None


def skilled(k: int, *, approve: bool = False, model: Any = None) -> Workflow:
    """A goal workflow with `k` no-op agents, agent `a{i}` having skill `s{i}`."""
    wf = Workflow("bench-plan", goal=f"do the work in {k} steps",
                  planner=PlannerConfig(model=model, max_tasks=k, approve_plan=approve))
    for i in range(k):
        wf.add_agent(f"a{i}", FunctionAgent(noop, name=f"a{i}", skills=[f"s{i}"]))
    return wf


def chain_plan(k: int) -> list[dict[str, Any]]:
    return [{"id": f"t{i}", "skill": f"s{i}", "needs": [f"t{i - 1}"] if i else [],
             "with": {"step": i}} for i in range(k)]


def check_us(k: int, repeat: int) -> dict[str, Any]:
    wf = skilled(k)
    tasks = [PlannedTask.model_validate(t) for t in chain_plan(k)]
    assert plan_problems(wf, tasks, max_tasks=k) == []
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        plan_problems(wf, tasks, max_tasks=k)
        samples.append((time.perf_counter() - started) * 1e6)
    stats = summary(samples, 1)
    return {"tasks": k, "median": stats["median"], "min": stats["min"], "runs": repeat}


async def plan_phase_ms(folder: str, k: int, repeat: int, *, repair: bool) -> dict[str, Any]:
    good = json.dumps({"tasks": chain_plan(k)})
    cyclic = chain_plan(k)
    cyclic[0] = {**cyclic[0], "needs": [f"t{k - 1}"]}
    replies = [json.dumps({"tasks": cyclic}), good] if repair else [good]
    samples = []
    store = open_store(folder, f"plan-{k}-{repair}")
    try:
        engine = Engine(store)
        for _ in range(repeat + 1):  # the first is a warm-up
            marks: dict[str, float] = {}

            def mark(event: Event, state: RunState, marks: dict[str, float] = marks) -> None:
                if event.type == "run_started" or (
                        event.type == "task_completed" and event.task == "plan"):
                    marks[event.type] = time.perf_counter()

            wf = skilled(k, model=ScriptedModel(list(replies)))
            state = await engine.start(wf, {}, on_event=mark)
            if state.status != "completed":
                raise RuntimeError(f"benchmark run ended {state.status}: {state.error}")
            samples.append((marks["task_completed"] - marks["run_started"]) * 1e3)
    finally:
        await store.close()
    return {"tasks": k, **summary(samples[1:], 3)}


def kinds(problems: list[str]) -> list[str]:
    found = {name for p in problems for name, pattern in KINDS if pattern.search(p)}
    return sorted(found) or ["other"]


async def local_tries(tries: int, repairs: int) -> dict[str, Any]:
    from podium import load_workflow, resolve_model

    base = load_workflow(FINANCE)
    assert base.planner is not None and base.goal is not None
    inputs = {"month": "2026-10", "db": "examples/finance/transactions.db",
              "outbox": "examples/outbox", "to": "finance-team@example.com"}
    goal = base.goal.replace("{{ month }}", inputs["month"])
    first_pass = within = 0
    first_kinds: Counter[str] = Counter()
    latencies: list[float] = []
    runs = []
    for i in range(tries):
        temperature = TEMPERATURES[i % len(TEMPERATURES)]
        model = resolve_model("local", options={"seed": 1000 + i})
        config = dataclasses.replace(base.planner, model=model, temperature=temperature,
                                     max_repairs=repairs)
        invalid: list[list[str]] = []

        async def on_invalid(attempt: int, problems: list[str], text: str,
                             invalid: list[list[str]] = invalid) -> None:
            invalid.append(problems)

        async def on_reply(attempt: int, model: Any, reply: Any, ms: float) -> None:
            latencies.append(ms)

        outcome = await Planner(base, config).plan(goal, inputs=inputs, on_reply=on_reply,
                                                   on_invalid=on_invalid)
        passed_first = outcome.tasks is not None and outcome.attempts == 1
        first_pass += passed_first
        within += outcome.tasks is not None
        if invalid:
            first_kinds.update(kinds(invalid[0]))
        runs.append({"seed": 1000 + i, "temperature": temperature,
                     "passed": outcome.tasks is not None, "attempts": outcome.attempts,
                     "first_problems": invalid[0][:3] if invalid else [],
                     **({"plan": [t.to_json() for t in outcome.tasks]}
                        if outcome.tasks else {})})
    return {
        "model": "local (SmolLM2-135M-Instruct, grammar-constrained)",
        "goal": goal, "tries": tries, "max_repairs": repairs,
        "first_plan_passes": first_pass, "first_plan_pass_rate": round(first_pass / tries, 3),
        "passes_within_repairs": within,
        "first_plan_problem_kinds": dict(first_kinds.most_common()),
        "model_latency_ms": {"median": round(statistics.median(latencies), 1),
                             "min": round(min(latencies), 1), "calls": len(latencies)},
        "runs": runs,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    sizes, repeat = ((5, 20), 3) if args.quick else ((7, 20, 50), 15)
    result: dict[str, Any] = {
        "check_us": [check_us(k, repeat * 10) for k in sizes]}
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as folder:
        result["plan_phase_ms"] = {
            "valid": [await plan_phase_ms(folder, k, repeat, repair=False) for k in sizes],
            "with_repair": [await plan_phase_ms(folder, k, repeat, repair=True)
                            for k in sizes]}
    if args.local:
        result["local"] = await local_tries(args.tries, args.repairs)
    return {"benchmark": "planner", "environment": environment(), **result}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--local", action="store_true",
                        help="also plan the finance goal with the local model")
    parser.add_argument("--tries", type=int, default=10, help="local plans to ask for")
    parser.add_argument("--repairs", type=int, default=2,
                        help="repairs allowed per local try (the first plan is counted too)")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    run_main(lambda: main(arguments))
