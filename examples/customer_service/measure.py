"""Measure the triage on the shipped tickets against the generator's labels; prints JSON.

    python -m examples.customer_service.measure          # rules, and the model on every ticket

The rules are measured where they are sure; the model (the workflow's own `classifier`
agent: same instructions, schema, temperature and token bound) on every ticket, although
the workflow asks it only about the tickets the rules are unsure of, to see how far it
could be trusted. Complex tickets have no single right intent and are left out of the
intent scores. Takes a few seconds a ticket on two cores.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from podium import TaskContext, TaskInput, load_workflow

from . import kb, make_data, triage

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {"faq": "faq", "account_change": "account_change", "unsafe_change": "account_change",
            "complaint": "complaint", "ambiguous": "other"}


async def measure() -> dict[str, Any]:
    workflow = load_workflow(ROOT / "examples" / "customer_service.yaml")
    classifier: Any = workflow.agents["classifier"]
    entries = kb.load(Path(__file__).with_name("kb.md"))
    _, stream = make_data.tickets()
    rules: Counter[str] = Counter()
    model: Counter[str] = Counter()
    answers: Counter[str] = Counter()
    started = time.perf_counter()
    for ticket in stream:
        kind = ticket.kind.split(":")[0]
        expected = EXPECTED.get(kind)
        verdict = triage.judge(ticket.record(), entries)
        rules["sure" if verdict["sure"] else "unsure"] += 1
        if verdict["sure"] and expected is not None:
            rules["sure_scored"] += 1
            rules["sure_right"] += verdict["intent"] == expected
        prompt = f"Subject: {ticket.subject}\n\n{ticket.body[:800]}"
        ctx = TaskContext(run_id="measure", task_id="classify", attempt=1,
                          idempotency_key=f"measure:{ticket.id}", inputs={}, outputs={})
        answer = await classifier.run(
            TaskInput(args={}, prompt=prompt, output_schema=classifier.output.model_json_schema()),
            ctx)
        answers[answer["intent"]] += 1
        written = set(triage.read(ticket.record(), entries).customer_ids)
        if answer.get("customer_id") and answer["customer_id"] not in written:
            model["customer_ids_not_in_the_ticket"] += 1
        if expected is not None:
            model["scored"] += 1
            model["right"] += answer["intent"] == expected
            model["always_faq_would_be_right"] += expected == "faq"
    seconds = time.perf_counter() - started
    return {
        "tickets": len(stream),
        "rules": {"sure": rules["sure"], "unsure": rules["unsure"],
                  "intent_right_when_sure": f"{rules['sure_right']} of {rules['sure_scored']}"},
        "model": {"intent_right": f"{model['right']} of {model['scored']}",
                  "always_faq_would_be_right": f"{model['always_faq_would_be_right']} of "
                                               f"{model['scored']}",
                  "answers": dict(answers),
                  "customer_ids_not_in_the_ticket": model["customer_ids_not_in_the_ticket"],
                  "seconds_per_ticket": round(seconds / len(stream), 2)},
    }


def main() -> None:
    print(json.dumps(asyncio.run(measure()), indent=2))


if __name__ == "__main__":
    main()
