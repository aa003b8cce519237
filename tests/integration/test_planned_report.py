"""The finance agents planned from a goal: a correct plan (scripted) passes the check,
waits for its approval, and produces the same figures as the agents called by hand."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

from examples.finance.agents import analyse, extract, validate

from podium import Engine, SQLiteStore, load_workflow
from podium.testing import ScriptedModel

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "monthly_report_planned.yaml"
DB = ROOT / "examples" / "finance" / "transactions.db"
PLAN = {"tasks": [
    {"id": "extract", "skill": "extract_transactions", "needs": [], "with": {}},
    {"id": "validate", "skill": "validate_transactions", "needs": ["extract"], "with": {}},
    {"id": "analyse", "skill": "analyse_finances", "needs": ["validate"], "with": {}},
    {"id": "overview", "skill": "write_overview", "needs": ["analyse"], "with": {}},
    {"id": "report", "skill": "format_report", "needs": ["analyse", "overview"], "with": {}},
    {"id": "approve", "skill": "human", "needs": ["report"], "with": {},
     "prompt": "Send the {{ inputs.month }} report ({{ outputs.report.subject }})?"},
    {"id": "send", "skill": "send_report", "needs": ["report", "approve"], "with": {}},
]}


async def test_a_planned_monthly_report_matches_the_agents_called_by_hand(
        store: SQLiteStore, tmp_path: Path) -> None:
    wf = load_workflow(WORKFLOW)
    assert wf.planner is not None
    model = ScriptedModel([json.dumps(PLAN)])
    wf.planner = dataclasses.replace(wf.planner, model=model)
    engine = Engine(store)
    inputs = {"month": "2026-10", "db": str(DB), "outbox": str(tmp_path / "outbox")}

    async with asyncio.timeout(60):
        state = await engine.start(wf, inputs)
        assert state.status == "waiting" and [t.key for t in state.waiting()] == ["plan"]
        await engine.approve(state.run_id, "plan")
        state = await engine.resume(wf, state.run_id)
        assert state.status == "waiting" and [t.key for t in state.waiting()] == ["approve"]
        assert state.tasks["approve"].prompt is not None
        assert state.tasks["approve"].prompt.startswith("Send the 2026-10 report (")
        await engine.approve(state.run_id, "approve")
        state = await engine.resume(wf, state.run_id)

    assert state.status == "completed", state.error
    assert len(model.calls) == 1
    expected = analyse(validate(extract("2026-10", str(DB))))
    assert state.outputs()["analyse"] == json.loads(json.dumps(expected))
    assert list((tmp_path / "outbox").glob("*.eml"))


async def test_a_constructed_plan_of_the_report_binds_every_agent_and_matches(
        store: SQLiteStore, tmp_path: Path) -> None:
    wf = load_workflow(WORKFLOW)
    assert wf.planner is not None
    skills = ["extract_transactions", "validate_transactions", "analyse_finances",
              "write_overview", "format_report", "human", "send_report"]
    model = ScriptedModel([json.dumps(dict.fromkeys(skills, True))])
    wf.planner = dataclasses.replace(wf.planner, model=model, form="constructed")
    engine = Engine(store)
    inputs = {"month": "2026-09", "db": str(DB), "outbox": str(tmp_path / "outbox")}

    async with asyncio.timeout(60):
        state = await engine.start(wf, inputs)
        assert state.plan is not None
        assert [(t["id"], t.get("needs", [])) for t in state.plan["tasks"]] == [
            ("extract", []), ("validate", ["extract"]), ("analyse", ["validate"]),
            ("overview", ["analyse"]), ("report", ["analyse", "overview"]),
            ("approve", ["report"]), ("sent", ["report", "approve"])]
        await engine.approve(state.run_id, "plan")
        state = await engine.resume(wf, state.run_id)
        assert [t.key for t in state.waiting()] == ["approve"]
        await engine.approve(state.run_id, "approve")
        state = await engine.resume(wf, state.run_id)

    assert state.status == "completed", state.error
    assert list(model.calls[0].output_schema["properties"]) == skills
    expected = analyse(validate(extract("2026-09", str(DB))))
    assert state.outputs()["analyse"] == json.loads(json.dumps(expected))
    assert [p.name for p in (tmp_path / "outbox").glob("*.eml")]
