"""Generate the supply-chain example's inventory database, deterministically.

Run from anywhere::

    python examples/supply_chain/make_data.py            # writes examples/supply_chain/inventory.db
    python examples/supply_chain/make_data.py other.db   # writes elsewhere

The same seed always gives the same rows. Only the standard library is used.

A small hardware distributor: 24 items, three years (156 weeks, 2023-11-27 to 2026-11-16) of
weekly sales per item with a level, a trend (growing, flat or declining) and a yearly
season (some items sell in winter, some in summer, some all year), plus Poisson-like noise.
`stock_readings` holds the latest count of each item on hand, `open_orders` what is already
on order from suppliers, and `purchase_orders` is empty: the workflow writes to it.

Three anomalies are planted in the latest week (2026-11-23), for the workflow to escalate:
- `HX-1042` (hex bolts) sold 9 times its usual week: a one-off bulk order, or a data error;
- `SD-2210` (sealant) has a stock reading of -14 units: a counting or booking error;
- `LB-0900` (LED bulbs) lost 380 units of stock that no sale explains: shrinkage or a
  miscount.
"""

from __future__ import annotations

import contextlib
import math
import random
import sqlite3
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

SEED = 20261125
WEEKS = 156
FIRST_WEEK = date(2023, 11, 27)  # a Monday
DEFAULT_PATH = Path(__file__).with_name("inventory.db")

SCHEMA = """
CREATE TABLE items (
    sku TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    supplier TEXT NOT NULL,
    unit_cost REAL NOT NULL,
    lead_time_weeks INTEGER NOT NULL,
    min_order_qty INTEGER NOT NULL,
    service_level REAL NOT NULL
);
CREATE TABLE sales (
    sku TEXT NOT NULL REFERENCES items(sku),
    week TEXT NOT NULL,
    qty INTEGER NOT NULL,
    PRIMARY KEY (sku, week)
);
CREATE TABLE stock_readings (
    sku TEXT NOT NULL REFERENCES items(sku),
    week TEXT NOT NULL,
    on_hand INTEGER NOT NULL,
    PRIMARY KEY (sku, week)
);
CREATE TABLE open_orders (
    po TEXT PRIMARY KEY,
    sku TEXT NOT NULL REFERENCES items(sku),
    qty INTEGER NOT NULL,
    due_week TEXT NOT NULL
);
CREATE TABLE purchase_orders (
    po TEXT PRIMARY KEY,
    run_key TEXT NOT NULL UNIQUE,
    sku TEXT NOT NULL REFERENCES items(sku),
    supplier TEXT NOT NULL,
    qty INTEGER NOT NULL,
    unit_cost REAL NOT NULL,
    week TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    supplier: str
    unit_cost: float
    lead_time_weeks: int
    min_order_qty: int
    level: float
    trend: float  # units per week, per week
    season: float  # amplitude as a fraction of the level
    peak_week: int  # week of the year the season peaks
    cover_weeks: float  # how many weeks of demand are on hand now


ITEMS = (
    Item("HX-1042", "Hex bolts M8, box of 100", "Boltworks", 6.40, 2, 50, 220, 0.6, 0.05, 0, 3.0),
    Item("HX-1050", "Hex nuts M8, box of 100", "Boltworks", 4.10, 2, 50, 180, 0.4, 0.05, 0, 6.5),
    Item("WS-3300", "Wood screws 4x40, 200", "Boltworks", 7.90, 2, 40, 150, 0.3, 0.15, 20, 2.0),
    Item("SD-2210", "Silicone sealant, clear", "ChemCo", 5.25, 3, 24, 90, 0.1, 0.35, 22, 3.5),
    Item("SD-2220", "Acrylic sealant, white", "ChemCo", 4.80, 3, 24, 70, -0.1, 0.35, 22, 8.0),
    Item("PA-7001", "Exterior paint 5 L, white", "ChemCo", 38.00, 4, 12, 45, 0.05, 0.6, 24, 4.0),
    Item("PA-7002", "Interior paint 5 L, white", "ChemCo", 31.00, 4, 12, 60, 0.1, 0.2, 10, 12.0),
    Item("LB-0900", "LED bulbs E27 9 W, 4", "Brightline", 8.90, 3, 48, 300, 0.8, 0.3, 50, 5.0),
    Item("LB-0905", "LED bulbs GU10 5 W, 4", "Brightline", 9.60, 3, 48, 160, 0.2, 0.3, 50, 2.5),
    Item("EX-1100", "Extension cord 10 m", "Brightline", 12.50, 3, 20, 40, 0.0, 0.4, 50, 9.0),
    Item("HT-0400", "Oil radiator 2 kW", "Therma", 64.00, 5, 6, 25, 0.05, 0.9, 2, 3.0),
    Item("HT-0410", "Fan heater 2 kW", "Therma", 29.00, 5, 10, 35, 0.0, 0.9, 2, 14.0),
    Item("FN-0200", "Desk fan 30 cm", "Therma", 22.00, 5, 10, 30, 0.0, 0.9, 28, 20.0),
    Item("GL-0300", "Work gloves L", "SafeHand", 3.20, 2, 60, 260, 0.3, 0.1, 10, 2.2),
    Item("GL-0310", "Work gloves M", "SafeHand", 3.20, 2, 60, 210, 0.2, 0.1, 10, 7.0),
    Item("MK-0010", "Dust masks FFP2, 10", "SafeHand", 11.00, 2, 30, 120, -0.3, 0.2, 40, 2.0),
    Item("TP-0500", "Duct tape 50 m", "Packwell", 4.50, 1, 36, 140, 0.2, 0.05, 0, 1.5),
    Item("TP-0510", "Masking tape 50 m", "Packwell", 2.90, 1, 36, 110, 0.1, 0.1, 20, 6.0),
    Item("BX-0100", "Moving boxes, pack of 10", "Packwell", 14.00, 1, 20, 80, 0.0, 0.5, 30, 1.8),
    Item("DR-5000", "Cordless drill 18 V", "Voltix", 89.00, 6, 4, 18, 0.04, 0.3, 48, 5.0),
    Item("DR-5010", "Drill bit set, 15 pcs", "Voltix", 19.00, 6, 10, 40, 0.1, 0.3, 48, 11.0),
    Item("SW-6000", "Jigsaw 650 W", "Voltix", 74.00, 6, 4, 12, -0.02, 0.3, 48, 7.5),
    Item("LD-0800", "Ladder 3 m", "Voltix", 119.00, 6, 2, 9, 0.0, 0.5, 22, 4.0),
    Item("HS-0150", "Garden hose 25 m", "GreenYard", 27.00, 4, 10, 30, 0.05, 0.95, 26, 30.0),
)

SPIKE_SKU, NEGATIVE_SKU, SHRINK_SKU = "HX-1042", "SD-2210", "LB-0900"


def week_label(index: int) -> str:
    """The Monday of week `index` (0 = the first week of data), as YYYY-MM-DD."""
    return (FIRST_WEEK + timedelta(weeks=index)).isoformat()


def _demand(item: Item, week: int, rng: random.Random) -> int:
    week_of_year = (FIRST_WEEK + timedelta(weeks=week)).isocalendar().week
    season = 1 + item.season * math.cos(2 * math.pi * (week_of_year - item.peak_week) / 52)
    mean = max(0.5, (item.level + item.trend * week) * season)
    # Gamma noise with the variance of a Poisson draw, a little over-dispersed.
    return max(0, round(rng.gammavariate(mean / 1.3, 1.3)))


def build(path: Path) -> None:
    """Write the database at `path`, replacing any file there."""
    rng = random.Random(SEED)
    path.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(SCHEMA)
        last = week_label(WEEKS - 1)
        for item in ITEMS:
            conn.execute("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (item.sku, item.name, item.supplier, item.unit_cost,
                          item.lead_time_weeks, item.min_order_qty, 0.95))
            sales = [_demand(item, week, rng) for week in range(WEEKS)]
            if item.sku == SPIKE_SKU:
                sales[-1] = 9 * round(sum(sales[-9:-1]) / 8)
            conn.executemany("INSERT INTO sales VALUES (?, ?, ?)",
                             [(item.sku, week_label(w), q) for w, q in enumerate(sales)])
            recent = sum(sales[-9:-1]) / 8
            on_hand = round(item.cover_weeks * recent)
            previous = on_hand + sales[-1]
            if item.sku == NEGATIVE_SKU:
                on_hand = -14
            if item.sku == SHRINK_SKU:
                on_hand = previous - sales[-1] - 380
            conn.executemany("INSERT INTO stock_readings VALUES (?, ?, ?)", [
                (item.sku, week_label(WEEKS - 2), previous),
                (item.sku, last, on_hand),
            ])
        # Orders already placed: some items are partly covered by what is on its way.
        for number, (sku, qty, weeks_out) in enumerate(
                [("WS-3300", 200, 1), ("GL-0300", 300, 1), ("DR-5000", 20, 3),
                 ("HT-0400", 30, 2), ("BX-0100", 60, 1)], start=1):
            conn.execute("INSERT INTO open_orders VALUES (?, ?, ?, ?)",
                         (f"PO-2026-{number:04d}", sku, qty, week_label(WEEKS - 1 + weeks_out)))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH
    build(target)
    print(f"wrote {target}")
