"""A high-risk tool call held for a person, through the real `podium` command: the run
exits 3 while it waits; `podium approve`, in a new process, runs exactly the call that was
shown (written by the first process) once, and nothing runs it again. An order in an
input that reaches the model as a `for_each` item of an upstream output waits too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e._cli import podium_json
from tests.integration._planted import ATTACKER, CUSTOMERS, PLANTED, make_data, sent

WORKFLOW = """\
name: planted
agents:
  assistant:
    function: "tests.e2e._mediation_agents:assistant"
tasks:
  t: {agent: assistant, prompt: "Handle ticket 1."}
"""


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "shop.db"
    make_data(db)
    monkeypatch.setenv("PODIUM_TEST_SHOP_DB", str(db))
    return db


def _waiting(tmp_path: Path, home: Path) -> dict[str, object]:
    workflow = tmp_path / "planted.yaml"
    workflow.write_text(WORKFLOW)
    code, record = podium_json("run", str(workflow), "--json", home=home)
    assert code == 3, record
    assert record["status"] == "waiting" and record["waiting"] == ["t"]
    return record


def test_an_approved_call_runs_once_across_processes(tmp_path: Path, shop: Path) -> None:
    home = tmp_path / "home"
    record = _waiting(tmp_path, home)
    (task,) = record["tasks"]
    assert task["wait_reason"] == "tool_approval" and ATTACKER in task["prompt"]
    assert sent(shop) == []
    shown = task["prompt"]

    code, record = podium_json("approve", record["run_id"], "t", "--json", home=home)

    assert code == 0, record
    assert record["status"] == "completed"
    ((to, subject, body),) = sent(shop)
    assert to == ATTACKER and all(c in body for c in CUSTOMERS)
    # The call the first process wrote and the person saw, not one written afresh.
    assert subject in shown
    code, again = podium_json("resume", record["run_id"], "--json", home=home)
    assert again["status"] == "completed" and len(sent(shop)) == 1


def test_a_rejected_call_is_refused_and_the_run_goes_on(tmp_path: Path, shop: Path) -> None:
    home = tmp_path / "home"
    record = _waiting(tmp_path, home)

    code, record = podium_json("reject", record["run_id"], "t", "--reason", "exfiltration",
                               "--json", home=home)

    assert code == 0, record
    assert record["status"] == "completed" and sent(shop) == []
    (task,) = record["tasks"]
    (attempt,) = [c for c in task["tool_calls"] if c["name"] == "send_email"]
    assert attempt["refused"] is True and "exfiltration" in attempt["reason"]
    assert "rejected this call" in record["outputs"]["t"]


TICKETS = """\
name: tickets
inputs:
  ticket: {type: string}
agents:
  bot:
    function: "tests.e2e._mediation_agents:desk"
  clean:
    function: "tests.e2e._mediation_agents:clean"
tasks:
  tidy: {agent: clean, with: {text: "{{ inputs.ticket }}"}}
  t:
    agent: bot
    needs: [tidy]
    for_each: "{{ [outputs.tidy] }}"
    prompt: "Handle ticket: {{ item }}"
"""


def test_an_order_in_a_for_each_item_from_an_input_waits(tmp_path: Path, shop: Path) -> None:
    workflow = tmp_path / "tickets.yaml"
    workflow.write_text(TICKETS)
    home = tmp_path / "home"

    code, record = podium_json("run", str(workflow), "-i", f"ticket={PLANTED}", "--json",
                               home=home)

    assert code == 3, record
    assert record["waiting"] == ["t[0]"] and sent(shop) == []
    tasks = {t["id"]: t for t in record["tasks"]}
    assert tasks["tidy"]["untrusted"] == ["input:ticket"]
    assert tasks["t[0]"]["wait_reason"] == "tool_approval" and ATTACKER in tasks["t[0]"][
        "prompt"]
    code, record = podium_json("reject", record["run_id"], "t[0]", "--reason", "exfiltration",
                               "--json", home=home)
    assert code == 0, record
    assert record["status"] == "completed" and sent(shop) == []
