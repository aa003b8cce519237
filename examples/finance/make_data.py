"""Generate the example's transactions database, deterministically.

Run from anywhere::

    python examples/finance/make_data.py            # writes examples/finance/transactions.db
    python examples/finance/make_data.py other.db   # writes elsewhere

The same seed always gives the same rows, so the committed database can be checked
against a fresh one. Only the standard library is used.

The books are those of a small software consultancy from 2026-05 to 2026-11: client
invoices (Revenue) and a little bank Interest as income; Payroll, Rent, Software, Travel,
Marketing, Utilities, Office supplies and Meals as expenses. Two anomalies are planted:
a charter-flight Travel expense in 2026-10 and a runaway cloud bill under Software in
2026-11, each far above its category's usual amount.
"""

from __future__ import annotations

import calendar
import contextlib
import random
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

SEED = 20261031
MONTHS = ("2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11")
DEFAULT_PATH = Path(__file__).with_name("transactions.db")

SCHEMA = """
CREATE TABLE transactions (
    id INTEGER PRIMARY KEY,
    date TEXT NOT NULL,
    amount REAL NOT NULL,
    category TEXT NOT NULL,
    merchant TEXT NOT NULL,
    description TEXT NOT NULL
)
"""

CLIENTS = (
    "Northwind Traders",
    "Contoso Ltd",
    "Fabrikam Inc",
    "Globex Corporation",
    "Initech",
    "Umbrella Health",
    "Stark Logistics",
    "Wayne Analytics",
)
SUBSCRIPTIONS = (
    ("GitHub", "Team plan, 11 seats", 231.00),
    ("Slack", "Pro plan, 14 seats", 362.50),
    ("Google Workspace", "Business Standard, 14 users", 336.00),
    ("Figma", "Professional, 4 editors", 180.00),
    ("Notion", "Plus plan", 240.00),
    ("Zoom", "Pro, 3 licences", 159.90),
)
TRAVEL = (
    ("Delta Air Lines", "Flight to client site", 280, 640),
    ("United Airlines", "Flight to client workshop", 260, 620),
    ("Marriott", "Hotel, client visit", 180, 520),
    ("Hilton", "Hotel, conference", 190, 480),
    ("Uber", "Rides to client meetings", 90, 160),
    ("Amtrak", "Train to client site", 95, 210),
)
MARKETING = (
    ("Google Ads", "Search campaign"),
    ("LinkedIn Ads", "Sponsored content"),
    ("Meta Ads", "Retargeting campaign"),
    ("Eventbrite", "Meetup sponsorship"),
)
OFFICE = (
    ("Staples", "Printer paper and toner"),
    ("Amazon Business", "Cables and adapters"),
    ("Office Depot", "Notebooks and pens"),
    ("Amazon Business", "Whiteboard markers"),
)
MEALS = (
    ("Blue Bottle Coffee", "Team coffee"),
    ("Sweetgreen", "Working lunch"),
    ("DoorDash", "Late-night delivery, release"),
    ("Local Bistro", "Client lunch"),
)


@dataclass(frozen=True, kw_only=True)
class Row:
    """One transaction before it has an id."""

    date: str
    """YYYY-MM-DD."""
    amount: float
    """Positive for income, negative for expenses, two decimals."""
    category: str
    merchant: str
    description: str


def _money(rng: random.Random, low: float, high: float) -> float:
    return round(rng.uniform(low, high), 2)


def _day(rng: random.Random, month: str) -> str:
    year, mon = (int(part) for part in month.split("-"))
    last = calendar.monthrange(year, mon)[1]
    return f"{month}-{rng.randint(1, last):02d}"


def _month_rows(rng: random.Random, month: str, invoice_no: int) -> list[Row]:
    """One month's books; `invoice_no` numbers the month's first invoice."""
    year, mon = (int(part) for part in month.split("-"))
    last = calendar.monthrange(year, mon)[1]
    label = f"{calendar.month_abbr[mon]} {year}"
    rows: list[Row] = []

    def add(date: str, amount: float, category: str, merchant: str, description: str) -> None:
        rows.append(
            Row(
                date=date,
                amount=amount,
                category=category,
                merchant=merchant,
                description=description,
            )
        )

    for n in range(rng.randint(9, 12)):
        client = rng.choice(CLIENTS)
        add(
            _day(rng, month),
            _money(rng, 3500, 9500),
            "Revenue",
            client,
            f"Invoice INV-{invoice_no + n:05d}",
        )
    add(
        f"{month}-{last:02d}",
        _money(rng, 18, 45),
        "Interest",
        "Harbor Bank",
        "Interest on operating account",
    )

    # A seventh engineer joins in September; the two payroll runs grow with them.
    base = 19_125.00 if month < "2026-09" else 22_310.00
    for day, period in ((15, f"1-15 {label}"), (last, f"16-{last} {label}")):
        add(
            f"{month}-{day:02d}",
            -round(base + rng.uniform(0, 900), 2),
            "Payroll",
            "Gusto Payroll",
            f"Payroll {period}",
        )
    add(f"{month}-01", -6500.00, "Rent", "Harbor Point Properties", f"Office rent {label}")

    for merchant, description, amount in SUBSCRIPTIONS:
        add(f"{month}-{rng.randint(1, 5):02d}", -amount, "Software", merchant, description)
    add(
        f"{month}-{rng.randint(2, 4):02d}",
        -_money(rng, 410, 530),
        "Software",
        "Amazon Web Services",
        f"Cloud hosting {label}",
    )

    for merchant, description, low, high in rng.sample(TRAVEL, rng.randint(3, 6)):
        add(_day(rng, month), -_money(rng, low, high), "Travel", merchant, description)
    for merchant, description in rng.sample(MARKETING, rng.randint(2, 4)):
        add(_day(rng, month), -_money(rng, 800, 2000), "Marketing", merchant, description)

    add(
        f"{month}-{rng.randint(18, 24):02d}",
        -_money(rng, 260, 380),
        "Utilities",
        "Pacific Gas & Electric",
        f"Electricity {label}",
    )
    add(f"{month}-07", -149.00, "Utilities", "Comcast Business", "Office internet")
    add(f"{month}-11", -189.00, "Utilities", "Verizon Wireless", "Company phones")

    for _ in range(rng.randint(4, 8)):
        merchant, description = rng.choice(OFFICE)
        add(_day(rng, month), -_money(rng, 40, 180), "Office supplies", merchant, description)
    for _ in range(rng.randint(6, 10)):
        merchant, description = rng.choice(MEALS)
        add(_day(rng, month), -_money(rng, 25, 140), "Meals", merchant, description)
    return rows


ANOMALIES = (
    Row(
        date="2026-10-14",
        amount=-12_480.00,
        category="Travel",
        merchant="Skyline Charter",
        description="Charter flights, Lisbon team offsite",
    ),
    Row(
        date="2026-11-21",
        amount=-9_412.37,
        category="Software",
        merchant="Amazon Web Services",
        description="Cloud hosting, unplanned GPU instances left running",
    ),
)


def generate(seed: int = SEED) -> list[tuple[int, str, float, str, str, str]]:
    """Every transaction as `(id, date, amount, category, merchant, description)`, by date."""
    rng = random.Random(seed)
    rows: list[Row] = []
    invoice_no = 1041
    for month in MONTHS:
        month_rows = _month_rows(rng, month, invoice_no)
        invoice_no += sum(row.category == "Revenue" for row in month_rows)
        rows.extend(month_rows)
    rows.extend(ANOMALIES)
    # Sorting is stable, so rows of the same day keep the order they were made in.
    rows.sort(key=lambda row: row.date)
    return [
        (n, row.date, row.amount, row.category, row.merchant, row.description)
        for n, row in enumerate(rows, start=1)
    ]


def write(path: Path, seed: int = SEED) -> int:
    """Write a fresh database at `path` (replacing any file there); return the row count."""
    rows = generate(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(SCHEMA)
        conn.executemany("INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_PATH
    count = write(path)
    print(f"wrote {count} transactions to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
