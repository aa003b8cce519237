"""The shipped examples end to end on the local model, through the `podium` command as an
operator runs them: wall time to the first wait, total time with every approval, the
approvals given, the final status and exit codes, the model calls and tokens the run
record shows, and whether the model's output or a fallback was used. Prints JSON.

    python benchmarks/examples.py [--quick] [--only NAME ...] [--all-tickets]
                                  [--planner-model MODEL]

Each example runs from the repository root with a fresh temporary PODIUM_HOME and
outbox (and copies of the databases a run writes to). `podium run --json` has no
terminal, so a run that waits for a person exits 3; the script then approves each
waiting task in turn (`podium approve RUN TASK`, with `--data` where the task needs an
answer) until the run completes or fails. The times are of the commands alone: no
person's reading time. `--quick` runs the monthly report only. `--planner-model` runs
the planned examples with another planner model (e.g. `local:gemma3-270m`) in place of
their `local`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _bench import environment

from podium import SQLiteStore

ROOT = Path(__file__).resolve().parents[1]
PODIUM = Path(sys.executable).with_name("podium")
EXAMPLES = ROOT / "examples"
CRM_URL = "sqlite:///examples/customer_service/crm.db"
MAX_APPROVALS = 200
"""A run still waiting after this many approvals is reported as stuck, not approved on."""

Record = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Step:
    """One `podium` command of an example."""

    args: list[str]
    exit: int
    seconds: float
    record: Record | None
    stderr: str


@dataclass(frozen=True, kw_only=True)
class Example:
    """An example: how to prepare its files, the runs to start (in one PODIUM_HOME, in
    order), the answer a waiting task gets, and what to report of its final record."""

    name: str
    workflow: str
    runs: list[list[str]]
    """The `-i` arguments of each run; `{tmp}` stands for the example's temporary folder."""
    prepare: Callable[[Path], Path] | None = None
    """Writes what the example needs into the folder; returns the workflow to run."""
    answer: Callable[[Record], Any] = field(default=lambda task: None)
    """The `--data` of a waiting task (None: a plain approval)."""
    outcome: Callable[[Record, Path], Record] = field(default=lambda record, tmp: {})


def podium(args: list[str], home: Path) -> Step:
    env = {**os.environ, "PODIUM_HOME": str(home)}
    started = time.perf_counter()
    done = subprocess.run([str(PODIUM), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    seconds = time.perf_counter() - started
    try:
        record = json.loads(done.stdout)
    except json.JSONDecodeError:
        record = None
    return Step(args=args, exit=done.returncode, seconds=seconds, record=record,
                stderr=done.stderr)


def waiting(record: Record) -> list[Record]:
    return [t for t in record.get("tasks", []) if t["status"] == "waiting"]


def model_use(record: Record) -> Record:
    """Model calls and tokens, from the tasks' accounting in the record."""
    calls = sum((t.get("tokens") or {}).get("calls", 0) for t in record.get("tasks", []))
    tokens = record.get("tokens") or {}
    return {"calls": calls, "input_tokens": tokens.get("input", 0),
            "output_tokens": tokens.get("output", 0),
            "model_tasks": sorted(t["id"] for t in record.get("tasks", [])
                                  if (t.get("tokens") or {}).get("calls"))}


def run_one(example: Example, inputs: list[str], home: Path, tmp: Path,
            workflow: Path) -> Record:
    """One run to its final status: started, then approved as long as it waits."""
    args = [a.replace("{tmp}", str(tmp)) for a in inputs]
    steps = [podium(["run", str(workflow), *args, "--json"], home)]
    first_wait = steps[0].seconds if steps[0].exit == 3 else None
    approvals: list[Record] = []
    while steps[-1].exit == 3 and steps[-1].record and len(approvals) < MAX_APPROVALS:
        record = steps[-1].record
        pending = waiting(record)
        if not pending:
            break
        task = pending[0]
        data = example.answer(task)
        command = ["approve", record["run_id"], task["id"], "--json"]
        if data is not None:
            command += ["--data", json.dumps(data)]
        steps.append(podium(command, home))
        approvals.append({"task": task["id"], "wait_reason": task.get("wait_reason"),
                          "data": data, "exit": steps[-1].exit,
                          "seconds": round(steps[-1].seconds, 2)})
    last = steps[-1]
    result: Record = {
        "inputs": args,
        "first_wait_s": None if first_wait is None else round(first_wait, 2),
        "total_s": round(sum(s.seconds for s in steps), 2),
        "run_exit": steps[0].exit,
        "run_s": round(steps[0].seconds, 2),
        "approvals": len(approvals),
        "approval_steps": approvals,
        "exit_codes": [s.exit for s in steps],
        "final_exit": last.exit,
        "status": last.record.get("status") if last.record else None,
    }
    if last.record is None or last.exit not in (0, 3) or result["status"] != "completed":
        result["stderr_tail"] = last.stderr[-2000:]
        if last.record is not None:
            result["error"] = last.record.get("error")
    if last.record is not None:
        result["run_id"] = last.record.get("run_id")
        result["model"] = model_use(last.record)
        try:
            result["outcome"] = example.outcome(last.record, tmp)
        except (KeyError, TypeError, IndexError, StopIteration) as exc:
            result["outcome"] = {"unreadable": f"{type(exc).__name__}: {exc}"}
    return result


def run_example(example: Example) -> Record:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix=f"podium-{example.name}-") as folder:
        tmp = Path(folder)
        home = tmp / "home"
        workflow = example.prepare(tmp) if example.prepare else ROOT / example.workflow
        runs = [run_one(example, inputs, home, tmp, workflow) for inputs in example.runs]
    total = sum(r["total_s"] for r in runs)
    first = runs[0]
    return {
        "workflow": example.workflow,
        "total_s": round(total, 2),
        "under_a_minute": total < 60,
        "first_wait_s": next((r["first_wait_s"] for r in runs
                              if r["first_wait_s"] is not None), None),
        "approvals": sum(r["approvals"] for r in runs),
        "status": [r["status"] for r in runs] if len(runs) > 1 else first["status"],
        "runs": runs,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


# -- what each example needs and reports -------------------------------------------------

async def _events(db: Path, run_id: str, task: str) -> list[Record]:
    store = SQLiteStore(db)
    try:
        return [{"type": e.type, **e.data} for e in await store.events(run_id)
                if e.task == task]
    finally:
        await store.close()


def monthly_outcome(record: Record, tmp: Path) -> Record:
    """Whose overview the report carries: the model's (it passed the faithfulness check),
    the template writer's (the fallback) or the task's default."""
    task = next(t for t in record["tasks"] if t["id"] == "overview")
    events = asyncio.run(_events(tmp / "home" / "podium.db", record["run_id"], "overview"))
    checks = [{"passed": e.get("passed"), "repair": e.get("repair"),
               "unsupported": [c.get("text") for c in e.get("claims") or []],
               "error": e.get("error")}
              for e in events if e["type"] == "output_checked"]
    failures = [{"agent": e.get("agent"), "error_type": e.get("error_type"),
                 "error": str(e.get("error"))[:300]}
                for e in events if e["type"] == "attempt_failed"]
    used = ("default" if task.get("defaulted") else
            "model" if task["agent"] == "writer" else f"fallback ({task['agent']})")
    sent = record.get("outputs", {}).get("send") or {}
    return {"overview_by": used, "overview_agent": task["agent"],
            "overview_model_calls": (task.get("tokens") or {}).get("calls", 0),
            "faithfulness_checks": checks, "failed_attempts": failures,
            "overview": (record.get("outputs", {}).get("overview") or {}).get("text"),
            "sent": bool(sent.get("path") or sent)}


def customer_service_prepare(tmp: Path) -> Path:
    # The SQL agent names its database in the workflow: point a copy at a copy of the CRM.
    shutil.copyfile(EXAMPLES / "customer_service" / "crm.db", tmp / "crm.db")
    text = (EXAMPLES / "customer_service.yaml").read_text(encoding="utf-8")
    if CRM_URL not in text:
        raise SystemExit(f"examples/customer_service.yaml no longer names {CRM_URL!r}")
    workflow = tmp / "customer_service.yaml"
    workflow.write_text(text.replace(CRM_URL, f"sqlite:///{tmp / 'crm.db'}"), encoding="utf-8")
    return workflow


def customer_service_answer(task: Record) -> Any:
    return {"reply": f"Hello, this is Sam from customer care about {task['id']}."}


def customer_service_outcome(record: Record, tmp: Path) -> Record:
    plan = record["outputs"]["plan"]
    classified = [t for t in record["tasks"] if t["id"].startswith("classify[")]
    return {
        "tickets": len(plan),
        "decided_by": {who: sum(p["decided_by"] == who for p in plan)
                       for who in sorted({p["decided_by"] for p in plan})},
        "model_classifications": len(classified),
        "model_classifications_defaulted": sum(bool(t.get("defaulted")) for t in classified),
        "model_classifications_failed": sum(t["status"] != "completed" for t in classified),
        "replies_in_outbox": len(list((tmp / "outbox").glob("*"))) if (tmp / "outbox").exists()
        else 0,
        "summary": record["outputs"].get("summary"),
    }


def clinical_outcome(record: Record, tmp: Path) -> Record:
    outputs = record.get("outputs", {})
    return {"check_passed": (outputs.get("check") or {}).get("passed"),
            "findings": [f.get("rule") for f in (outputs.get("check") or {}).get("findings", [])],
            "codes": sorted(c["code"] for c in (outputs.get("codes") or {}).get("codes", [])),
            "remembered": (outputs.get("remember") or {}).get("trusted"),
            "model": "none: rules and local embeddings (no language model in this workflow)"}


def planned_outcome(record: Record, tmp: Path) -> Record:
    plan = record.get("plan") or {}
    tasks = {t["id"]: t for t in record["tasks"]}
    return {"plan_versions": plan.get("version"),
            "planned": [{"id": t["id"], "skill": t.get("skill")} for t in plan.get("tasks", [])],
            "plan_history": [h.get("reason") for h in plan.get("history", [])],
            "planner_calls": (tasks.get("plan", {}).get("tokens") or {}).get("calls", 0),
            "routed": {tid: t["routing"]["agent"] for tid, t in tasks.items()
                       if t.get("routing")},
            "outputs": sorted(record.get("outputs", {}))}


def monthly_planned_outcome(record: Record, tmp: Path) -> Record:
    out = planned_outcome(record, tmp)
    emls = list((tmp / "outbox").glob("*.eml")) if (tmp / "outbox").exists() else []
    out["report_sent"] = bool(emls)
    out["goal_met"] = bool(emls)
    return out


def planned_prepare(name: str, planner: str | None,
                    db: str | None = None) -> Callable[[Path], Path]:
    """A planned example's workflow (a copy whose planner is `planner`, if given), and a
    copy of the database it writes to."""

    def prepare(tmp: Path) -> Path:
        if db:
            shutil.copyfile(EXAMPLES / db, tmp / Path(db).name)
        workflow = EXAMPLES / name
        if planner is None:
            return workflow
        text = workflow.read_text(encoding="utf-8")
        shipped = "planner:\n  model: local\n"
        if shipped not in text:
            raise SystemExit(f"examples/{name} no longer has {shipped!r}")
        copy = tmp / name
        copy.write_text(text.replace(shipped, f"planner:\n  model: {json.dumps(planner)}\n"),
                        encoding="utf-8")
        return copy

    return prepare


def supply_answer(task: Record) -> Any:
    # The anomalies' review is an agent's question to a person: it needs an answer (which
    # held items to release; none here). A plan or a plain human step is a bare approval.
    agent = (task.get("routing") or {}).get("agent") or task.get("agent")
    return {"release": []} if agent == "exceptions" else None


def supply_outcome(record: Record, tmp: Path) -> Record:
    out = planned_outcome(record, tmp)
    with closing(sqlite3.connect(tmp / "inventory.db")) as conn:
        orders = conn.execute("SELECT count(*) FROM purchase_orders").fetchone()[0]
    decide = next((v for k, v in record.get("outputs", {}).items()
                   if isinstance(v, dict) and "decisions" in v), None)
    out["purchase_orders_written"] = orders
    out["reorder_decisions"] = len(decide["decisions"]) if decide else None
    out["goal_met"] = decide is not None
    return out


def examples(all_tickets: bool, planner: str | None) -> list[Example]:
    tickets = [] if all_tickets else ["-i", "limit=12"]
    return [
        Example(name="monthly_report", workflow="examples/monthly_report.yaml",
                runs=[["-i", "month=2026-10", "-i", "outbox={tmp}/outbox"]],
                outcome=monthly_outcome),
        Example(name="customer_service", workflow="examples/customer_service.yaml",
                runs=[[*tickets, "-i", "outbox={tmp}/outbox", "--no-input"]],
                prepare=customer_service_prepare, answer=customer_service_answer,
                outcome=customer_service_outcome),
        # The second visit recalls the first from the patient's memory, and its note's
        # allergy conflict waits for a clinician's sign-off.
        Example(name="clinical_notes", workflow="examples/clinical_notes.yaml",
                runs=[["-i", "patient=P001", "-i", "visit=V1"],
                      ["-i", "patient=P001", "-i", "visit=V2"]],
                outcome=clinical_outcome),
        Example(name="monthly_report_planned", workflow="examples/monthly_report_planned.yaml",
                runs=[["-i", "month=2026-10", "-i", "outbox={tmp}/outbox"]],
                prepare=planned_prepare("monthly_report_planned.yaml", planner),
                outcome=monthly_planned_outcome),
        Example(name="supply_chain_planned", workflow="examples/supply_chain_planned.yaml",
                runs=[["-i", "db={tmp}/inventory.db"]],
                prepare=planned_prepare("supply_chain_planned.yaml", planner,
                                        "supply_chain/inventory.db"),
                answer=supply_answer, outcome=supply_outcome),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the monthly report only")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this example (repeatable)")
    parser.add_argument("--all-tickets", action="store_true",
                        help="customer service on every shipped ticket, not the first 12")
    parser.add_argument("--planner-model", metavar="MODEL",
                        help="the planned examples' planner model (default: theirs, local)")
    opts = parser.parse_args()
    chosen = examples(opts.all_tickets, opts.planner_model)
    names = ["monthly_report"] if opts.quick else opts.only
    if names:
        unknown = set(names) - {e.name for e in chosen}
        if unknown:
            parser.error(f"no example named {sorted(unknown)!r}; "
                         f"choose from {[e.name for e in chosen]!r}")
        chosen = [e for e in chosen if e.name in names]
    results = {example.name: run_example(example) for example in chosen}
    report = {"environment": environment(), "podium": str(PODIUM), "results": results,
              "all_under_a_minute": all(r["under_a_minute"] for r in results.values())}
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
