"""A planned run through the `podium` command, one process per step: `podium run` plans
and stops for the plan's approval (exit 3); `podium approve RUN plan` in a new process
runs the journaled plan without asking the model again; `podium reject RUN plan` fails
the run with the reason; `podium runs show` shows the plan."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.e2e._cli import PODIUM, ROOT, podium_json

AGENTS = '''\
import json
from pathlib import Path

from podium.testing import ScriptedModel

CALLS = Path(__file__).with_name("planner_calls.log")
PLAN = {"tasks": [
    {"id": "get_rows", "skill": "fetch_rows", "needs": [], "with": {}},
    {"id": "total", "skill": "add_up", "needs": ["get_rows"],
     "with": {"data": "{{ outputs.get_rows }}"}},
    {"id": "report", "skill": "write_report", "needs": ["total"], "with": {}},
]}


def fetch(month):
    return {"month": month, "rows": [3, 4, 5]}


def total(data):
    return sum(data["rows"])


def write(month, total):
    return f"{month}: {total}"


def reply(messages, schema):
    with CALLS.open("a") as log:
        log.write("planned\\n")
    return json.dumps(PLAN)


planner_model = ScriptedModel(reply)
'''

WORKFLOW = """\
name: planned
inputs:
  month: {type: string}
goal: "report on {{ month }}"
planner: {model: "plan_agents:planner_model", approve_plan: true}
agents:
  fetcher: {function: "plan_agents:fetch", skills: [fetch_rows]}
  adder: {function: "plan_agents:total", skills: [add_up]}
  writer: {function: "plan_agents:write", skills: [write_report]}
"""


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "plan_agents.py").write_text(AGENTS)
    workflow = tmp_path / "planned.yaml"
    workflow.write_text(WORKFLOW)
    return workflow, tmp_path / "home"


def test_a_plan_waits_for_approval_then_runs_in_another_process(tmp_path: Path) -> None:
    workflow, home = _setup(tmp_path)

    code, waiting = podium_json("run", str(workflow), "-i", "month=2026-10", "--json",
                                home=home)

    assert code == 3, waiting
    assert waiting["status"] == "waiting" and waiting["waiting"] == ["plan"]
    assert [t["id"] for t in waiting["plan"]["tasks"]] == ["get_rows", "total", "report"]
    run_id = waiting["run_id"]
    shown = subprocess.run([str(PODIUM), "runs", "show", run_id], cwd=ROOT, text=True,
                           capture_output=True, env={**os.environ, "PODIUM_HOME": str(home)},
                           timeout=120)
    assert "plan v1 for: report on 2026-10" in shown.stdout, shown.stdout
    assert "2. total [add_up] after get_rows" in shown.stdout

    code, done = podium_json("approve", run_id, "plan", "--json", home=home)

    assert code == 0, done
    assert done["status"] == "completed"
    assert done["outputs"]["report"] == "2026-10: 12"
    # Planned once: the approving process ran the journaled plan.
    assert (tmp_path / "planner_calls.log").read_text().splitlines() == ["planned"]

    twice = subprocess.run([str(PODIUM), "approve", run_id, "plan"], cwd=ROOT, text=True,
                           capture_output=True, timeout=120,
                           env={**os.environ, "PODIUM_HOME": str(home)})
    assert twice.returncode == 2
    assert "is not waiting for a human (it is completed)" in twice.stderr


def test_a_rejected_plan_fails_the_run_with_the_reason(tmp_path: Path) -> None:
    workflow, home = _setup(tmp_path)
    code, waiting = podium_json("run", str(workflow), "-i", "month=2026-10", "--json",
                                home=home)
    assert code == 3, waiting

    code, failed = podium_json("reject", waiting["run_id"], "plan", "--reason",
                               "add a forecast", "--json", home=home)

    assert code == 1, failed
    assert failed["status"] == "failed" and failed["reason"] == "plan_rejected"
    assert failed["error"].startswith("plan rejected by ")
    assert failed["error"].endswith(": add a forecast")
    assert [t["id"] for t in failed["tasks"]] == ["plan"]
