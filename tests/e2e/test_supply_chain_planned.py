"""The planner-driven supply-chain run through the `podium` command: a scripted planner
(standing in for a capable model) writes the plan, a person approves it, the router gives
each planned task its agent, the anomalies are raised to a person, and the purchase orders
follow the forecast and the stock levels exactly as in the hand-written workflow."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from tests.e2e._cli import podium_json
from tests.e2e.test_supply_chain import DB, ROOT, _expected_qty, _stock

WORKFLOW = ROOT / "examples" / "supply_chain_planned.yaml"
DB_ARG = "{{ inputs.db }}"
PLAN = {"tasks": [
    {"id": "inventory", "skill": "read_inventory", "with": {"db": DB_ARG}},
    {"id": "history", "skill": "read_sales_history", "with": {"db": DB_ARG}},
    {"id": "forecast", "skill": "forecast_demand", "needs": ["history"],
     "with": {"history": "{{ outputs.history }}"}},
    {"id": "anomalies", "skill": "detect_anomalies", "needs": ["inventory", "history"],
     "with": {"inventory": "{{ outputs.inventory }}", "history": "{{ outputs.history }}"}},
    {"id": "review", "skill": "review_anomalies", "needs": ["anomalies"],
     "with": {"anomalies": "{{ outputs.anomalies }}"}},
    {"id": "decide", "skill": "decide_reorders", "needs": ["inventory", "forecast", "anomalies"],
     "with": {"inventory": "{{ outputs.inventory }}", "forecast": "{{ outputs.forecast }}",
              "anomalies": "{{ outputs.anomalies }}"}},
    {"id": "orders", "skill": "write_purchase_orders", "needs": ["decide", "review"],
     "with": {"db": DB_ARG, "plan": "{{ outputs.decide }}", "review": "{{ outputs.review }}"}},
]}
PLANNER = f'''\
from podium.testing import ScriptedModel

planner = ScriptedModel(lambda messages, schema: {json.dumps(PLAN)!r})
'''


def test_a_planned_run_routes_escalates_and_orders(tmp_path: Path) -> None:
    db, home = tmp_path / "inventory.db", tmp_path / "home"
    shutil.copy(DB, db)
    (tmp_path / "sc_planner.py").write_text(PLANNER, encoding="utf-8")
    workflow = tmp_path / "supply_chain_planned.yaml"
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "  model: local\n" in text
    workflow.write_text(text.replace("  model: local\n", '  model: "sc_planner:planner"\n'),
                        encoding="utf-8")

    code, waiting = podium_json("run", str(workflow), "-i", f"db={db}", "--json", home=home)
    assert code == 3, waiting
    run = waiting["run_id"]
    assert [t["id"] for t in waiting["tasks"] if t["status"] == "waiting"] == ["plan"]

    code, review = podium_json("approve", run, "plan", "--json", home=home)
    assert code == 3, review
    tasks = {t["id"]: t for t in review["tasks"]}
    assert tasks["review"]["status"] == "waiting"
    assert "SD-2210" in tasks["review"]["prompt"] + json.dumps(tasks["review"])
    routed = {tid: t["routing"]["agent"] for tid, t in tasks.items() if t.get("routing")}
    assert routed == {"inventory": "stock_reader", "history": "sales_reader",
                      "forecast": "forecaster", "anomalies": "auditor",
                      "review": "exceptions", "decide": "decider"}
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM purchase_orders").fetchone() == (0,)

    code, done = podium_json("approve", run, "review", "--data", '{"release": ["SD-2210"]}',
                             "--json", home=home)
    assert code == 0, done
    outputs = done["outputs"]
    stock, forecast = _stock(db), outputs["forecast"]["items"]
    decisions = {d["sku"]: d for d in outputs["decide"]["decisions"]}
    for sku, decision in decisions.items():
        assert decision["qty"] == _expected_qty(stock[sku], forecast[sku]), sku
    with closing(sqlite3.connect(db)) as conn:
        rows = dict(conn.execute("SELECT sku, qty FROM purchase_orders").fetchall())
    assert rows == {sku: d["qty"] for sku, d in decisions.items()
                    if d["qty"] > 0 and (not d["held"] or sku == "SD-2210")}
    assert next(t for t in done["tasks"] if t["id"] == "orders")["routing"]["agent"] == "buyer"
