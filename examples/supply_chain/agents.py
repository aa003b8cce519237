"""The agents of the supply-chain example: read stock and sales, forecast, decide, order.

Each is a plain function Podium calls with keyword arguments chosen by parameter name (the
task's `with:` values, upstream outputs by task id, and `ctx`); inputs and outputs are
plain JSON, so each can be called by hand.

The forecast is Holt-Winters exponential smoothing (statsmodels: additive damped trend,
additive yearly season of 52 weeks) fitted per item on its weekly sales, after the weeks
flagged as demand spikes are replaced by the median of the eight weeks before them.

The reorder rule is a periodic-review (s, S) policy, per item:

    demand over the lead time     D_L = sum of the forecast for the next L weeks
    safety stock                  SS  = z(service level) * sigma * sqrt(L)
    reorder point                 s   = D_L + SS
    order-up-to level             S   = s + sum of the forecast for the REVIEW_WEEKS after
    inventory position            P   = on hand + on order
    reorder when P <= s, ordering S - P rounded up to the item's minimum order quantity.

sigma is the standard deviation of the model's one-step-ahead residuals. An item with an
anomaly (a negative stock count, stock lost beyond what sales explain, or a demand spike)
is held: it is not ordered unless the person reviewing the anomalies releases it.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import statistics
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from podium.core.agent import TaskContext
from podium.errors import Escalate

REVIEW_WEEKS = 4
"""How many weeks of demand an order covers beyond the lead time."""
HORIZON_WEEKS = 12
"""How far ahead the forecast goes (at least the longest lead time + REVIEW_WEEKS)."""
SEASON = 52
SPIKE_FACTOR = 4.0
"""A week's sales are a spike above this many times the median of the eight before."""
SHRINK_TOLERANCE = 0.05
"""Stock may fall by up to this fraction of the previous count more than sales explain."""

Json = dict[str, Any]


def _connect(db: str) -> contextlib.closing[sqlite3.Connection]:
    if not Path(db).is_file():
        raise FileNotFoundError(f"no inventory database at {db!r}")
    return contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True))


# -- read ------------------------------------------------------------------------------------

def read_inventory(db: str) -> Json:
    """Every item with its latest and previous stock count and what is on order."""
    with _connect(db) as conn:
        conn.row_factory = sqlite3.Row
        (week,) = conn.execute("SELECT max(week) FROM stock_readings").fetchone()
        items = []
        for row in conn.execute("SELECT * FROM items ORDER BY sku"):
            counts = conn.execute(
                "SELECT week, on_hand FROM stock_readings WHERE sku = ? ORDER BY week DESC "
                "LIMIT 2", (row["sku"],)).fetchall()
            (on_order,) = conn.execute(
                "SELECT coalesce(sum(qty), 0) FROM open_orders WHERE sku = ?",
                (row["sku"],)).fetchone()
            items.append({**dict(row), "on_hand": counts[0]["on_hand"],
                          "previous_on_hand": counts[1]["on_hand"] if len(counts) > 1 else None,
                          "on_order": on_order})
    return {"week": week, "items": items}


def sales_history(db: str) -> Json:
    """Weekly sales per item, oldest first."""
    with _connect(db) as conn:
        weeks = [w for (w,) in conn.execute("SELECT DISTINCT week FROM sales ORDER BY week")]
        series: dict[str, list[int]] = {}
        for sku, qty in conn.execute("SELECT sku, qty FROM sales ORDER BY sku, week"):
            series.setdefault(sku, []).append(qty)
    return {"weeks": weeks, "series": series}


# -- anomalies ---------------------------------------------------------------------------------

def detect_anomalies(inventory: Mapping[str, Any], history: Mapping[str, Any]) -> list[Json]:
    """Stock counts and sales that should not be trusted without a person looking."""
    found: list[Json] = []
    series = history["series"]
    for item in inventory["items"]:
        sku, sales = item["sku"], series.get(item["sku"], [])
        if item["on_hand"] < 0:
            found.append({"sku": sku, "kind": "negative_stock",
                          "detail": f"stock count is {item['on_hand']}"})
        if item["previous_on_hand"] is not None and sales:
            explained = item["previous_on_hand"] - sales[-1]
            missing = explained - item["on_hand"]
            if item["on_hand"] >= 0 and missing > SHRINK_TOLERANCE * item["previous_on_hand"]:
                found.append({"sku": sku, "kind": "unexplained_loss",
                              "detail": f"{missing} units gone that no sale explains"})
        if len(sales) > 8:
            usual = statistics.median(sales[-9:-1])
            if usual > 0 and sales[-1] > SPIKE_FACTOR * usual:
                found.append({"sku": sku, "kind": "demand_spike",
                              "detail": f"sold {sales[-1]} last week against a usual {usual:g}"})
    return found


# -- forecast ----------------------------------------------------------------------------------

def _cleaned(sales: Sequence[int]) -> list[float]:
    clean = [float(q) for q in sales]
    for week in range(8, len(clean)):
        usual = statistics.median(clean[week - 8:week])
        if usual > 0 and clean[week] > SPIKE_FACTOR * usual:
            clean[week] = usual
    return clean


def _fit(sales: Sequence[int], horizon: int) -> Json:
    import numpy as np
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    clean = np.asarray(_cleaned(sales))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if len(clean) >= 2 * SEASON:
            model = ExponentialSmoothing(clean, trend="add", damped_trend=True, seasonal="add",
                                         seasonal_periods=SEASON,
                                         initialization_method="estimated")
            method = "holt-winters additive, damped trend, 52-week season"
        else:
            model = ExponentialSmoothing(clean, trend="add", damped_trend=True,
                                         initialization_method="estimated")
            method = "holt, damped trend (less than two years of data)"
        fitted = model.fit()
    mean = np.maximum(fitted.forecast(horizon), 0.0)
    return {"method": method,
            "weekly": [round(float(v), 2) for v in mean],
            "sigma": round(float(np.std(fitted.resid, ddof=1)), 2),
            "warnings": sorted({str(w.message).split(".")[0] for w in caught})}


def forecast(history: Mapping[str, Any], horizon: int = HORIZON_WEEKS) -> Json:
    """Each item's expected weekly demand for the next `horizon` weeks, and its spread."""
    return {"horizon": horizon,
            "items": {sku: _fit(sales, horizon) for sku, sales in history["series"].items()}}


# -- decide ------------------------------------------------------------------------------------

def _z(service_level: float) -> float:
    return statistics.NormalDist().inv_cdf(service_level)


def reorder_point(item: Mapping[str, Any], fc: Mapping[str, Any]) -> tuple[float, float]:
    """(s, S) for an item, by the rule in this module's docstring."""
    lead = int(item["lead_time_weeks"])
    weekly = fc["weekly"]
    if len(weekly) < lead + REVIEW_WEEKS:
        raise ValueError(f"{item['sku']}: the forecast covers {len(weekly)} weeks, "
                         f"{lead + REVIEW_WEEKS} are needed")
    safety = _z(float(item["service_level"])) * float(fc["sigma"]) * math.sqrt(lead)
    low = sum(weekly[:lead]) + safety
    return low, low + sum(weekly[lead:lead + REVIEW_WEEKS])


def plan_reorders(inventory: Mapping[str, Any], forecast: Mapping[str, Any],
                  anomalies: Sequence[Mapping[str, Any]]) -> Json:
    """For every item: its reorder point, its position, whether to order and how much."""
    flagged = {a["sku"] for a in anomalies}
    decisions = []
    for item in inventory["items"]:
        low, high = reorder_point(item, forecast["items"][item["sku"]])
        position = item["on_hand"] + item["on_order"]
        qty = 0
        if position <= low:
            moq = int(item["min_order_qty"])
            qty = math.ceil((high - position) / moq) * moq
        decisions.append({
            "sku": item["sku"], "supplier": item["supplier"], "unit_cost": item["unit_cost"],
            "position": position, "reorder_point": round(low, 1),
            "order_up_to": round(high, 1), "qty": qty, "held": item["sku"] in flagged,
        })
    return {"week": inventory["week"], "decisions": decisions,
            "to_order": [d["sku"] for d in decisions if d["qty"] > 0 and not d["held"]],
            "held": sorted(flagged)}


def review_anomalies(anomalies: Sequence[Mapping[str, Any]]) -> Json:
    """Hand the anomalies to a person (the task waits for their answer, which becomes its
    output: `{"release": [SKU, ...]}` orders held items anyway); with none, release none."""
    if anomalies:
        listed = "; ".join(f"{a['sku']} ({a['kind']}: {a['detail']})" for a in anomalies)
        raise Escalate(f"{len(anomalies)} items are held: {listed}. Approve to order the "
                       "rest; approve with --data '{\"release\": [SKU, ...]}' to order held "
                       "items too.")
    return {"release": []}


# -- order -------------------------------------------------------------------------------------

def write_purchase_orders(db: str, plan: Mapping[str, Any], review: Any,
                          ctx: TaskContext) -> Json:
    """Insert a purchase order per item to order (and per held item the reviewer released).

    Each order's `run_key` is the task's idempotency key plus the SKU, so a retried or
    resumed task writes each order once.
    """
    released = set(review.get("release", [])) if isinstance(review, Mapping) else set()
    unknown = released - set(plan["held"])
    if unknown:
        raise ValueError(f"the review released {sorted(unknown)}, which were not held")
    written = []
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        for d in plan["decisions"]:
            if d["qty"] <= 0 or (d["held"] and d["sku"] not in released):
                continue
            key = f"{ctx.idempotency_key}:{d['sku']}"
            po = f"PO-{plan['week']}-{d['sku']}"
            reason = (f"position {d['position']} <= reorder point {d['reorder_point']}; "
                      f"order up to {d['order_up_to']}")
            conn.execute(
                "INSERT INTO purchase_orders VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(run_key) DO NOTHING",
                (po, key, d["sku"], d["supplier"], d["qty"], d["unit_cost"], plan["week"],
                 reason))
            written.append({"po": po, "sku": d["sku"], "supplier": d["supplier"],
                            "qty": d["qty"], "total": round(d["qty"] * d["unit_cost"], 2)})
    return {"orders": written, "total": round(sum(o["total"] for o in written), 2)}
