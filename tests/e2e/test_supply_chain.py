"""The supply-chain example through the `podium` command: the run holds the anomalous items
for a person, and its purchase orders follow the forecast and the stock levels."""

from __future__ import annotations

import math
import shutil
import sqlite3
import statistics
from contextlib import closing
from pathlib import Path
from typing import Any

from examples.supply_chain import agents

from tests.e2e._cli import podium_json

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "supply_chain.yaml"
DB = ROOT / "examples" / "supply_chain" / "inventory.db"


def _stock(db: Path) -> dict[str, dict[str, Any]]:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT i.sku, i.lead_time_weeks, i.min_order_qty, i.service_level,"
            " (SELECT on_hand FROM stock_readings s WHERE s.sku = i.sku"
            "  ORDER BY week DESC LIMIT 1),"
            " (SELECT coalesce(sum(qty), 0) FROM open_orders o WHERE o.sku = i.sku)"
            " FROM items i").fetchall()
    return {sku: {"lead": lead, "moq": moq, "level": level, "position": on_hand + on_order}
            for sku, lead, moq, level, on_hand, on_order in rows}


def _expected_qty(stock: dict[str, Any], fc: dict[str, Any]) -> int:
    """The (s, S) rule, computed here from the forecast's output and the database."""
    lead, weekly = stock["lead"], fc["weekly"]
    z = statistics.NormalDist().inv_cdf(stock["level"])
    low = sum(weekly[:lead]) + z * fc["sigma"] * math.sqrt(lead)
    high = low + sum(weekly[lead:lead + 4])
    if stock["position"] > low:
        return 0
    return math.ceil((high - stock["position"]) / stock["moq"]) * stock["moq"]


def test_reorders_follow_the_forecast_and_anomalies_wait_for_a_person(tmp_path: Path) -> None:
    db, home = tmp_path / "inventory.db", tmp_path / "home"
    shutil.copy(DB, db)
    code, waiting = podium_json("run", str(WORKFLOW), "-i", f"db={db}", "--json", home=home)
    assert code == 3, waiting
    outputs = waiting["outputs"]
    assert {(a["sku"], a["kind"]) for a in outputs["anomalies"]} == {
        ("HX-1042", "demand_spike"), ("LB-0900", "unexplained_loss"),
        ("SD-2210", "negative_stock")}
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM purchase_orders").fetchone() == (0,)

    stock, forecast = _stock(db), outputs["forecast"]["items"]
    decisions = {d["sku"]: d for d in outputs["plan"]["decisions"]}
    assert set(decisions) == set(stock)
    for sku, decision in decisions.items():
        assert decision["qty"] == _expected_qty(stock[sku], forecast[sku]), sku
    ordered = {sku for sku, d in decisions.items() if d["qty"] > 0}
    assert ordered - {"SD-2210"}, "the data should make some unflagged items run low"
    assert decisions["SD-2210"]["qty"] > 0 and decisions["SD-2210"]["held"]

    code, done = podium_json("approve", waiting["run_id"], "review",
                             "--data", '{"release": ["SD-2210"]}', "--json", home=home)
    assert code == 0, done
    with closing(sqlite3.connect(db)) as conn:
        rows = dict(conn.execute("SELECT sku, qty FROM purchase_orders").fetchall())
    expected = {sku: d["qty"] for sku, d in decisions.items()
                if d["qty"] > 0 and (not d["held"] or sku == "SD-2210")}
    assert rows == expected
    assert done["outputs"]["orders"]["total"] == round(
        sum(d["qty"] * d["unit_cost"] for sku, d in decisions.items() if sku in expected), 2)


def test_the_forecast_follows_trend_and_season() -> None:
    history = agents.sales_history(str(DB))
    result = agents.forecast(history)["items"]
    # LED bulbs grow by about 0.8 units a week each week: next weeks above last year's mean.
    bulbs = history["series"]["LB-0900"]
    assert statistics.mean(result["LB-0900"]["weekly"][:4]) > statistics.mean(bulbs[-52:])
    # Radiators peak in early January: the next weeks (December) sell more than summer did.
    radiators = history["series"]["HT-0400"]
    summer = statistics.mean(radiators[-26:-16])
    assert statistics.mean(result["HT-0400"]["weekly"][4:8]) > 1.5 * summer
    # Desk fans are a summer item: winter demand is forecast below the yearly mean.
    fans = history["series"]["FN-0200"]
    assert statistics.mean(result["FN-0200"]["weekly"][:8]) < statistics.mean(fans[-52:])
    # The planted spike does not inflate the bolts' forecast.
    bolts = history["series"]["HX-1042"]
    assert max(result["HX-1042"]["weekly"]) < 2 * statistics.median(bolts[-9:-1])


def test_releasing_an_item_that_was_not_held_is_refused(tmp_path: Path) -> None:
    db, home = tmp_path / "inventory.db", tmp_path / "home"
    shutil.copy(DB, db)
    code, waiting = podium_json("run", str(WORKFLOW), "-i", f"db={db}", "--json", home=home)
    assert code == 3
    code, done = podium_json("approve", waiting["run_id"], "review",
                             "--data", '{"release": ["GL-0310"]}', "--json", home=home)
    assert code == 1, done
    orders = next(t for t in done["tasks"] if t["id"] == "orders")
    assert orders["status"] == "failed"
    assert "GL-0310" in str(orders["error"])
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM purchase_orders").fetchone() == (0,)
