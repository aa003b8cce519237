"""Generate the example's CRM database and ticket stream, deterministically.

Run from anywhere::

    python examples/customer_service/make_data.py          # writes crm.db and tickets.jsonl
    python examples/customer_service/make_data.py OUTDIR   # writes them into OUTDIR

The same seed always gives the same files, so running this restores the CRM after a
workflow run changed it. Only the standard library is used.

The shop is Larkspur Home, an online home-goods store with three membership plans
(basic, plus, pro). The CRM has 60 customers, `C-10001` to `C-10060`. The tickets are
the twelve of `_texts.FIRST` (one or more of every kind), then every other text of
`_texts` once, in a shuffled order: FAQ questions, account changes naming a customer
(some that must not go through unattended: no customer number, an unknown one, a
sender who is not the customer), angry complaints, complex requests and ambiguous
one-liners.
"""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the sibling module directly
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _texts as texts  # type: ignore[import-not-found, no-redef]
else:
    from . import _texts as texts

SEED = 20261102
FOLDER = Path(__file__).resolve().parent
CRM_PATH = FOLDER / "crm.db"
TICKETS_PATH = FOLDER / "tickets.jsonl"
CUSTOMERS = 60
PLANS = ("basic", "plus", "pro")

SCHEMA = """
CREATE TABLE customers (
    id TEXT PRIMARY KEY CHECK (id GLOB 'C-[0-9][0-9][0-9][0-9][0-9]'),
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL,
    plan TEXT NOT NULL CHECK (plan IN ('basic', 'plus', 'pro')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_ticket TEXT
)
"""

# The customers the first tickets name sign them, so their names are fixed.
NAMED = {2: ("Maria", "Lopez"), 5: ("Tom", "Becker"), 8: ("Aisha", "Khan"),
         11: ("Priya", "Raman")}
FIRST_NAMES = ("James", "Olivia", "Noah", "Emma", "Liam", "Sofia", "Lucas", "Mia", "Ethan",
               "Chloe", "Daniel", "Grace", "Mateo", "Hannah", "Samuel", "Zoe", "Omar",
               "Leah", "Kenji", "Nora", "Diego", "Ava", "Felix", "Ines", "Ruth", "Jonah")
LAST_NAMES = ("Smith", "Nguyen", "Garcia", "Miller", "Okafor", "Rossi", "Johnson", "Kim",
              "Brown", "Novak", "Silva", "Walker", "Ito", "Clarke", "Haddad", "Fischer",
              "Murphy", "Patel", "Larsen", "Moreau")
DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "fastmail.com")
STREETS = ("Maple Street", "Oak Avenue", "Cedar Lane", "Elm Street", "Willow Drive",
           "Lakeview Road", "Hillcrest Avenue", "Birch Court", "Park Place", "River Road")
CITIES = ("Portland, OR 97205", "Austin, TX 78704", "Denver, CO 80203", "Columbus, OH 43215",
          "Raleigh, NC 27601", "Boise, ID 83702", "Tucson, AZ 85701", "Albany, NY 12207",
          "Madison, WI 53703", "Savannah, GA 31401")


@dataclass(frozen=True, kw_only=True)
class Customer:
    id: str
    name: str
    email: str
    address: str
    plan: str
    created_at: str

    @property
    def first(self) -> str:
        return self.name.split()[0]


@dataclass(frozen=True, kw_only=True)
class Ticket:
    """One ticket as `tickets.jsonl` holds it, with the label the file leaves out."""

    id: str
    received_at: str
    channel: str
    sender: str
    name: str
    subject: str
    body: str
    kind: str
    """faq, account_change, complaint, complex, ambiguous, or unsafe_change."""

    def record(self) -> dict[str, str]:
        """The ticket as the file holds it (without its label)."""
        return {"id": self.id, "received_at": self.received_at, "channel": self.channel,
                "from": self.sender, "name": self.name, "subject": self.subject,
                "body": self.body}


def _address(rng: random.Random) -> str:
    return f"{rng.randint(12, 4980)} {rng.choice(STREETS)}, {rng.choice(CITIES)}"


def customers(rng: random.Random) -> list[Customer]:
    made = []
    used: set[str] = set()
    for n in range(1, CUSTOMERS + 1):
        first, last = NAMED.get(n) or (rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))
        email = f"{first}.{last}@{rng.choice(DOMAINS)}".lower()
        while email in used:
            email = f"{first}.{last}{rng.randint(2, 99)}@{rng.choice(DOMAINS)}".lower()
        used.add(email)
        joined = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 1200))
        made.append(Customer(id=f"C-{10000 + n}", name=f"{first} {last}", email=email,
                             address=_address(rng), plan=rng.choice(PLANS),
                             created_at=joined.date().isoformat()))
    return made


Draft = tuple[str, Customer | None, str, str]
"""kind, the customer writing (None for someone the CRM does not know), subject, body."""


def _drafts(rng: random.Random, crm: list[Customer]) -> list[Draft]:
    """Every ticket before it is stamped: `_texts.FIRST` in order, then the rest shuffled."""
    by_key = {f"c{n}": c for n, c in enumerate(crm, start=1)}
    ids = {key: c.id for key, c in by_key.items()}
    first: list[Draft] = [(kind, by_key[key], subject, body.format(**ids))
                          for kind, key, subject, body in texts.FIRST]
    # Account changes go to customers no other ticket changes, one each.
    pools = (texts.EMAIL_CHANGES, texts.ADDRESS_CHANGES, texts.PLAN_CHANGES)
    changing = iter(rng.sample(crm[35:], sum(map(len, pools)) + len(texts.UNSAFE_CHANGES)))
    others = crm[11:35]

    def fill(template: str, c: Customer) -> str:
        first_name, last = c.name.split()
        new = f"{first_name}.{last}.{rng.randint(10, 99)}@{rng.choice(DOMAINS)}".lower()
        plan = rng.choice([p for p in PLANS if p != c.plan]).capitalize()
        return template.format(id=c.id, new=new, address=_address(rng), plan=plan,
                               first=first_name, last=last)

    rest: list[Draft] = [("faq", rng.choice([*others, None]), subject, body)
                         for subject, body in texts.FAQ]
    for pool in pools:
        for subject, body in pool:
            c = next(changing)
            rest.append(("account_change", c, subject, fill(body, c)))
    for why, subject, body in texts.UNSAFE_CHANGES:
        c = next(changing)
        rest.append((f"unsafe_change:{why}", c, subject, fill(body, c)))
    rest += [("complaint", rng.choice(others), subject, body)
             for subject, body in texts.COMPLAINTS]
    for subject, body in texts.COMPLEX:
        c = rng.choice(others)
        rest.append(("complex", c, subject, body.format(id=c.id)))
    rest += [("ambiguous", rng.choice([*others, None]), subject, body)
             for subject, body in texts.AMBIGUOUS]
    rng.shuffle(rest)
    return first + rest


def tickets(seed: int = SEED) -> tuple[list[Customer], list[Ticket]]:
    """The CRM's customers and every ticket, in the order they arrive."""
    rng = random.Random(seed)
    crm = customers(rng)
    made = []
    when = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    for n, (kind, c, subject, body) in enumerate(_drafts(rng, crm), start=1):
        when += timedelta(minutes=rng.randint(2, 45))
        if c is None:
            first_name, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            name, sender = f"{first_name} {last}", f"{first_name}{rng.randint(1, 99)}@gmail.com"
        else:
            name, sender = c.name, c.email
        if kind == "unsafe_change:wrong_sender":
            sender = f"{name.replace(' ', '.')}@northwind-traders.example".lower()
        if n > len(texts.FIRST) and kind in ("faq", "complaint", "ambiguous"):
            body = (rng.choice(texts.GREETINGS) + body
                    + rng.choice(texts.SIGN_OFFS).format(first=name.split()[0]))
        made.append(Ticket(id=f"T-{n:04d}", received_at=when.isoformat().replace("+00:00", "Z"),
                           channel=rng.choice(("email", "email", "web")), sender=sender,
                           name=name, subject=subject, body=body, kind=kind))
    return crm, made


def write(folder: Path = FOLDER, seed: int = SEED) -> tuple[int, int]:
    """Write fresh `crm.db` and `tickets.jsonl` into `folder` (replacing them); return the
    customer and ticket counts."""
    crm, stream = tickets(seed)
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / CRM_PATH.name
    db.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(SCHEMA)
        conn.executemany(
            "INSERT INTO customers VALUES (:id, :name, :email, :address, :plan, :created_at,"
            " :created_at, NULL)", [asdict(c) for c in crm])
    lines = [json.dumps(t.record(), ensure_ascii=False) for t in stream]
    (folder / TICKETS_PATH.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(crm), len(stream)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else FOLDER
    customers_written, tickets_written = write(folder)
    print(f"wrote {customers_written} customers to {folder / CRM_PATH.name} and "
          f"{tickets_written} tickets to {folder / TICKETS_PATH.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
