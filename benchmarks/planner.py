"""Planning: Podium's own overhead, and how often the local model's first plan passes.

With the scripted model (which answers at once), the figures are Podium's overhead alone:

- `check_us`: `plan_problems` on a valid chain plan of K tasks against K skilled agents
  (the check a model's plan goes through: skills, ids, cycles, templates, parameters);
- `plan_phase_ms`: from `run_started` to the journaled end of the `plan` step of a run
  (rendering the goal, the prompt, the model call, the check, and the `model_call`,
  `plan_created` and `task_completed` events in a SQLite file); `with_repair` adds one
  plan that fails its check (a cycle) and goes back with the reasons.

With `--local`, the finance and supply-chain goals (`--goals`) are planned by each local
model of `--models` (`local`, `local:gemma3-270m`) `--tries` times, each try with its own
seed, the temperature cycling through `--temperatures`, and for the finance goal its own
month. It reports how many first plans pass the check, how many within `--repairs`
repairs, which skills binding added, the problems first plans had (by kind), the model's
latency, and whether each distinct plan, run through the engine with every approval
given, decided what the hand-written workflow decides on the same data. `--router`
measures the router's model choosing among its top 3 candidates, against chance and
against the best embedding score.

    python benchmarks/planner.py                 # overhead, a few seconds
    python benchmarks/planner.py --quick         # small sizes: a smoke test
    python benchmarks/planner.py --local         # and the local models, many minutes
    python benchmarks/planner.py --quick --router   # the router's model choice
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import statistics
import sys
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
SUPPLY = ROOT / "examples" / "supply_chain_planned.yaml"
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
    ("no_skill_chosen", re.compile(r"choose at least one skill")),
    ("unbound_step", re.compile(r"no chosen skill above it gives")),
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


GOALS = {
    "finance": (FINANCE, ROOT / "examples" / "monthly_report.yaml"),
    "supply_chain": (SUPPLY, ROOT / "examples" / "supply_chain.yaml"),
}


MONTHS = ("2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11")
"""Months with data and a month before them: each try of the finance goal asks for one."""


def goal_inputs(goal: str, folder: Path, i: int = 4) -> dict[str, Any]:
    """The inputs of a goal's try `i`: the finance goal's month varies (at temperature 0
    the prompt, not the seed, is what makes tries differ); the supply chain's database
    is a fresh copy (its path is in the goal), so that runs write nothing back."""
    if goal == "finance":
        return {"month": MONTHS[i % len(MONTHS)],
                "db": str(ROOT / "examples/finance/transactions.db"),
                "outbox": str(folder / "outbox"), "to": "finance-team@example.com"}
    db = folder / f"inventory-{time.perf_counter_ns()}.db"
    shutil.copy(ROOT / "examples/supply_chain/inventory.db", db)
    return {"db": str(db)}


async def local_tries(spec: str, goal_name: str, tries: int, repairs: int,
                      temperatures: tuple[float, ...], folder: Path) -> dict[str, Any]:
    """`tries` first plans of a goal by the local model `spec`, each with its own seed."""
    from podium import load_workflow, resolve_model
    from podium.core.plan import goal_scope
    from podium.core.templates import render
    from podium.models.base import Message

    base = load_workflow(GOALS[goal_name][0])
    assert base.planner is not None and base.goal is not None
    first_pass = within = 0
    first_kinds: Counter[str] = Counter()
    latencies: list[float] = []
    runs = []
    compared: dict[str, dict[str, Any]] = {}
    for i in range(tries):
        temperature = temperatures[i % len(temperatures)]
        inputs = goal_inputs(goal_name, folder, i)
        goal = str(render(base.goal, goal_scope(inputs)))
        model = resolve_model(spec, options={"seed": 1000 + i})
        # Loading the file is not planning: warm the model first.
        await model.complete([Message(role="user", content="hi")], max_tokens=1)
        config = dataclasses.replace(base.planner, model=model, temperature=temperature,
                                     max_repairs=repairs)
        invalid: list[list[str]] = []
        replies: list[str] = []

        async def on_invalid(attempt: int, problems: list[str], text: str,
                             invalid: list[list[str]] = invalid) -> None:
            invalid.append(problems)

        async def on_reply(attempt: int, model: Any, reply: Any, ms: float,
                           replies: list[str] = replies) -> None:
            latencies.append(ms)
            replies.append(reply.text)

        planner = Planner(base, config)
        outcome = await planner.plan(goal, inputs=inputs, on_reply=on_reply,
                                     on_invalid=on_invalid)
        passed_first = outcome.tasks is not None and outcome.attempts == 1
        first_pass += passed_first
        within += outcome.tasks is not None
        if invalid:
            first_kinds.update(kinds(invalid[0]))
        run: dict[str, Any] = {
            "seed": 1000 + i, "temperature": temperature, "form": planner.form,
            **({"month": inputs["month"]} if "month" in inputs else {}),
            "passed": outcome.tasks is not None, "attempts": outcome.attempts,
            "first_reply": replies[0][:400] if replies else None,
            "first_problems": invalid[0][:3] if invalid else []}
        if outcome.tasks:
            run["plan"] = [f"{t.id}:{t.skill}" for t in outcome.tasks]
            run["added"] = [f"{t.id}:{t.skill}" for t in outcome.tasks
                            if "(added: " in t.description]
            # Each distinct plan is run once (at its first try's inputs): runs cost minutes.
            if replies[-1] not in compared:
                compared[replies[-1]] = await compare(goal_name, replies[-1], planner.form,
                                                      folder, i)
            run["result"] = compared[replies[-1]]
        runs.append(run)
        print(json.dumps({"model": spec, "goal": goal_name, **run})[:300], file=sys.stderr,
              flush=True)
    same = sum(1 for r in runs if r.get("result", {}).get("same"))
    added = Counter(t.split(":")[1] for r in runs for t in r.get("added", []))
    return {
        "model": spec, "goal": goal_name, "tries": tries, "max_repairs": repairs,
        "temperatures": list(temperatures),
        "first_plan_passes": first_pass, "first_plan_pass_rate": round(first_pass / tries, 3),
        "passes_within_repairs": within, "same_result_as_hand_written": same,
        "skills_added_by_binding": dict(added.most_common()),
        "first_plan_problem_kinds": dict(first_kinds.most_common()),
        "plan_latency_ms": {"median": round(statistics.median(latencies), 1),
                            "min": round(min(latencies), 1),
                            "max": round(max(latencies), 1), "calls": len(latencies)},
        "runs": runs,
    }


async def drive(engine: Engine, workflow: Workflow, inputs: dict[str, Any]) -> RunState:
    """A run to its end, every waiting task approved (a review releases nothing)."""
    state = await engine.start(workflow, inputs)
    for _ in range(10):
        if state.status != "waiting":
            break
        for task in state.waiting():
            await engine.approve(state.run_id, task.key, None, by="benchmark")
        state = await engine.resume(workflow, state.run_id)
    return state


async def compare(goal_name: str, reply: str, form: str, folder: Path, i: int
                  ) -> dict[str, Any]:
    """Run the plan the model wrote (its reply replayed) and the hand-written workflow on
    the same data, and compare what they decided."""
    from podium import load_workflow

    planned_file, written_file = GOALS[goal_name]
    planned = load_workflow(planned_file)
    assert planned.planner is not None
    planned.planner = dataclasses.replace(
        planned.planner, model=ScriptedModel(lambda messages, schema: reply),
        form="constructed" if form == "constructed" else "free")
    written = load_workflow(written_file)
    store = open_store(str(folder), f"compare-{time.perf_counter_ns()}")
    try:
        engine = Engine(store)
        inputs = goal_inputs(goal_name, folder, i)
        mine = await drive(engine, planned, inputs)
        if goal_name == "finance":
            theirs = await drive(engine, written, {
                "month": inputs["month"], "db": inputs["db"], "outbox": inputs["outbox"],
                "recipient": inputs["to"]})
        else:
            theirs = await drive(engine, written, goal_inputs(goal_name, folder, i))
    finally:
        await store.close()
    if mine.status != "completed" or theirs.status != "completed":
        return {"same": False, "planned": mine.status, "hand_written": theirs.status,
                "error": (mine.error or theirs.error or "")[:300]}
    by_skill = {t["skill"]: t["id"] for t in (mine.plan or {}).get("tasks", [])}
    a, b = mine.outputs(), theirs.outputs()
    if goal_name == "finance":
        checks = {"figures": a.get(by_skill.get("analyse_finances", "")) == b["analyse"],
                  "sent": by_skill.get("send_report") in a and "send" in b}
    else:
        decided = a.get(by_skill.get("decide_reorders", ""), {})
        orders = a.get(by_skill.get("write_purchase_orders", ""), {})
        checks = {"decisions": decided.get("decisions") == b["plan"]["decisions"],
                  "orders": orders == b["orders"]}
    return {"same": all(checks.values()), **checks}


WRITERS = {
    "legal_writer": "Drafts contracts, terms of service and legal clauses.",
    "marketing_writer": "Writes product announcements, slogans and advertising copy.",
    "support_writer": "Answers customers' support tickets about orders and refunds.",
    "tech_writer": "Writes API reference documentation and code examples for developers.",
    "finance_writer": "Writes the commentary of monthly financial reports for the board.",
}
ROUTED = [
    ("Draft the non-disclosure agreement for our new supplier.", "legal_writer"),
    ("Update the refund clause of the terms of service.", "legal_writer"),
    ("Announce the spring sale on the homepage banner.", "marketing_writer"),
    ("Write a catchy slogan for the new running shoe.", "marketing_writer"),
    ("Reply to a customer whose parcel arrived damaged.", "support_writer"),
    ("Tell a customer when their refund will be paid.", "support_writer"),
    ("Document the /orders endpoint with a Python example.", "tech_writer"),
    ("Explain how to authenticate against the REST API.", "tech_writer"),
    ("Comment on October's income and expenses for the board.", "finance_writer"),
    ("Summarise the quarter's cash flow in the board pack.", "finance_writer"),
]


async def router_choice(spec: str, top: int) -> dict[str, Any]:
    """The router's model (`router: {model: spec}`) choosing among the `top` best-scored
    agents with the skill `write`: how often it picks the right one, against chance
    (1/top) and against the best embedding score alone."""
    from podium import resolve_model
    from podium.core.registry import RouterPolicy
    from podium.core.workflow import Task
    from podium.engine.router import Router

    agents = {name: FunctionAgent(noop, name=name, description=text, skills=["write"])
              for name, text in WRITERS.items()}
    model = resolve_model(spec)
    router = Router()
    policy = RouterPolicy(model=model, top=top)

    async def closed(name: str) -> bool:
        return False

    runs = []
    for i, (text, right) in enumerate(ROUTED):
        task = Task(id=f"t{i}", skill="write", description=text)
        started = time.perf_counter()
        decision = await router.decide(task, prompt=None, agents=agents, is_open=closed,
                                       policy=policy)
        ms = (time.perf_counter() - started) * 1e3
        names = [c.agent for c in decision.candidates[:top]]
        runs.append({"task": text, "right": right, "top": names,
                     "best_score": names[0] if names else None,
                     "model": (decision.model or {}).get("choice"),
                     "valid": (decision.model or {}).get("valid"),
                     "chosen": decision.agent, "ms": round(ms, 1)})
    reachable = [r for r in runs if r["right"] in r["top"]]
    return {
        "model": spec, "top": top, "tasks": len(runs),
        "right_in_top": len(reachable),
        "model_right": sum(r["model"] == r["right"] for r in reachable),
        "best_score_right": sum(r["best_score"] == r["right"] for r in reachable),
        "chance": round(len(reachable) / top, 2),
        "model_choice_valid": sum(bool(r["valid"]) for r in runs),
        "median_ms": round(statistics.median(r["ms"] for r in runs), 1),
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
        with tempfile.TemporaryDirectory(prefix="podium-bench-") as folder:
            result["local"] = [
                await local_tries(spec, goal, args.tries, args.repairs,
                                  tuple(args.temperatures), Path(folder))
                for spec in args.models for goal in args.goals]
    if args.router:
        result["router"] = [await router_choice(spec, 3) for spec in args.models]
    return {"benchmark": "planner", "environment": environment(),
            "load_average": [round(x, 2) for x in os.getloadavg()], **result}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--local", action="store_true",
                        help="also plan the finance goal with the local model")
    parser.add_argument("--tries", type=int, default=10, help="local plans to ask for")
    parser.add_argument("--repairs", type=int, default=2,
                        help="repairs allowed per local try (the first plan is counted too)")
    parser.add_argument("--models", nargs="+", default=["local", "local:gemma3-270m"],
                        help="local models to plan with")
    parser.add_argument("--router", action="store_true",
                        help="also measure the router's model choice among its top 3")
    parser.add_argument("--goals", nargs="+", default=list(GOALS), choices=list(GOALS))
    parser.add_argument("--temperatures", nargs="+", type=float,
                        default=list(TEMPERATURES),
                        help="temperatures the tries cycle through")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    run_main(lambda: main(arguments))
