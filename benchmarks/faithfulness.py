"""The faithfulness check on the monthly report's overview, with the real local model; prints
one JSON object.

Each run is `examples/monthly_report.yaml` as a user runs it, up to its approval (the
`overview` task is the local model's, checked by `checks: {faithful: …}`), for a month of
the example data; runs cycle through the months, and with `--temperature` above 0 each run
samples with its own seed. Read from each run's journal:

- `first`: how the writer's first reply ended: `passed` (the check found every claim in
  the data), `unfaithful` (it did not: the claims went back to the model), or `unusable`
  (no answer to check: cut off at max_tokens, not JSON, a timeout);
- `after_feedback`: of the runs whose first reply was unfaithful, how many passed after the
  feedback (`repaired`), and how the others ended;
- `ended`: who wrote the overview: `writer` (the model, checked), `template_writer` (the
  fallback) or `default`;
- times: each check (`output_checked.ms`), each model reply, the overview task and the run
  to its approval;
- `unsupported`: the claims the check refused, with how often each kind was refused.

`check_only` times the check alone on the October headline and a reply of its length, to
show what it costs without a model.

    python benchmarks/faithfulness.py --runs 12                   # temperature of the example
    python benchmarks/faithfulness.py --runs 12 --temperature 0.7 # sampled, one seed per run
    python benchmarks/faithfulness.py --quick                      # the check alone
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _bench import environment, open_store, run_main, summary

from podium import Engine, LLMAgent, load_workflow
from podium.core.faithful import Faithful, Given

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "monthly_report.yaml"
DB = ROOT / "examples" / "finance" / "transactions.db"
MONTHS = ("2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11")


def check_only(repeat: int) -> dict[str, Any]:
    """The check alone, on the October headline and a reply that uses it."""
    sys.path.insert(0, str(ROOT))
    from examples.finance.agents import analyse, extract, validate

    extracted = extract("2026-10", str(DB))
    validated = validate(extracted)
    figures = analyse(validated)
    prompt = ("Summarise these figures in two or three sentences: "
              + json.dumps(figures["headline"]))
    reply = {"text": "In October 2026 income was $77,325.13 and expenses $73.2k, a net of "
                     "4,123.32, down 73.3% from 15,452.76. Payroll and Travel led; Travel "
                     "12,480.00 at Skyline Charter on October 14 stands out."}
    check, given = Faithful(sources=("prompt",)), Given(prompt=prompt)
    assert not check.unsupported(reply, given)
    # Every upstream output as the source: two months of transactions and the analysis.
    wide = Faithful(sources=("outputs",))
    everything = Given(outputs={"extract": extracted, "validate": validated,
                                "analyse": figures})
    assert not wide.unsupported(reply, everything)
    return {"prompt": _timed(lambda: check.check(reply, given), repeat),
            "all_outputs": _timed(lambda: wide.check(reply, everything), max(repeat // 20, 5)),
            "repeat": repeat, "prompt_chars": len(prompt),
            "all_outputs_chars": len(json.dumps(everything.outputs)),
            "reply_chars": len(reply["text"])}


def _timed(run: Callable[[], None], repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 3), "min_ms": round(samples[0], 3),
            "p95_ms": round(samples[int(len(samples) * 0.95)], 3)}


def _writer(agent: LLMAgent, temperature: float | None, seed: int) -> LLMAgent:
    """The example's writer, sampling at `temperature` with `seed`."""
    from podium.models import resolve_model

    return LLMAgent(resolve_model("local", options={"seed": seed}), name=agent.name,
                    instructions=agent.instructions, output=agent.output,
                    max_tokens=agent.max_tokens, temperature=temperature,
                    max_repairs=agent.max_repairs, checks=agent.checks)


async def one_run(folder: str, index: int, temperature: float | None) -> dict[str, Any]:
    month = MONTHS[index % len(MONTHS)]
    workflow = load_workflow(WORKFLOW)
    writer = workflow.agents["writer"]
    assert isinstance(writer, LLMAgent)
    if temperature is not None:
        workflow.agents["writer"] = _writer(writer, temperature, 1000 + index)
    store = open_store(folder, f"run{index}.db")
    try:
        started = time.perf_counter()
        state = await Engine(store).start(workflow, {
            "month": month, "db": str(DB), "outbox": os.path.join(folder, "outbox")})
        seconds = time.perf_counter() - started
        events = [e for e in await store.events(state.run_id) if e.task == "overview"]
    finally:
        await store.close()
    checks = [e.data for e in events if e.type == "output_checked"]
    calls = [e.data for e in events if e.type == "model_call"]
    failed = [e.data for e in events if e.type == "attempt_failed" and e.data["agent"] == "writer"]
    overview = state.task("overview")
    ended = "default" if overview.defaulted else overview.agent
    first = ("passed" if checks and checks[0]["passed"] and not checks[0].get("repair") else
             "unfaithful" if checks and not checks[0].get("repair") else "unusable")
    return {
        "month": month, "seed": 1000 + index if temperature is not None else None,
        "first": first, "ended": ended,
        "checks": [{"passed": c["passed"], "repair": c.get("repair", 0), "ms": c["ms"],
                    "claims": [f"{x['kind']}: {x['text']}" for x in c["claims"]]}
                   for c in checks],
        "model_replies": len(calls),
        "reply_ms": [round(c["latency_ms"]) for c in calls if "latency_ms" in c],
        "writer_errors": [f["error"][:200] for f in failed],
        "overview_s": round((overview.finished_at or 0.0) - (overview.started_at or 0.0), 2),
        "run_s": round(seconds, 2),
        "text": (overview.output or {}).get("text"),
    }


def totals(runs: list[dict[str, Any]]) -> dict[str, Any]:
    unfaithful = [r for r in runs if r["first"] == "unfaithful"]
    repaired = [r for r in unfaithful if r["ended"] == "writer"]
    kinds = Counter(claim.partition(":")[0] for r in runs for c in r["checks"]
                    for claim in c["claims"])
    check_ms = [c["ms"] for r in runs for c in r["checks"]]
    reply_ms = [ms for r in runs for ms in r["reply_ms"]]
    return {
        "runs": len(runs),
        "first": dict(Counter(r["first"] for r in runs)),
        "after_feedback": {"unfaithful_first": len(unfaithful), "repaired": len(repaired),
                           "not_repaired": dict(Counter(r["ended"] for r in unfaithful
                                                        if r["ended"] != "writer"))},
        "ended": dict(Counter(r["ended"] for r in runs)),
        "refused_by_kind": dict(kinds),
        "check_ms": summary(check_ms, 3) if check_ms else None,
        "checks_per_run": round(len(check_ms) / len(runs), 2),
        "reply_ms": summary(reply_ms, 0) if reply_ms else None,
        "overview_s": summary([r["overview_s"] for r in runs], 2),
        "run_s": summary([r["run_s"] for r in runs], 2),
        "run_s_mean": round(statistics.fmean(r["run_s"] for r in runs), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=12, help="runs of the monthly report")
    parser.add_argument("--temperature", type=float, default=None,
                        help="the writer's temperature (default: the example's), one seed "
                             "per run")
    parser.add_argument("--quick", action="store_true", help="time the check alone")
    args = parser.parse_args()

    async def bench() -> dict[str, Any]:
        result: dict[str, Any] = {"environment": environment(),
                                  "load_average": os.getloadavg(),
                                  "check_only": check_only(200 if args.quick else 2000)}
        if args.quick:
            return result
        runs = []
        with tempfile.TemporaryDirectory() as folder:
            for i in range(args.runs):
                runs.append(await one_run(folder, i, args.temperature))
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
        result.update(temperature=args.temperature, totals=totals(runs), runs=runs,
                      load_average_after=os.getloadavg())
        return result

    run_main(bench)


if __name__ == "__main__":
    main()
