"""The customer-service example, run through the `podium` command on the local model.

The first twelve shipped tickets cover every intent: FAQ questions, an email, a plan and
an address change, an angry complaint, a data-protection request and a vague one-liner.
The run waits for a person on the tickets it escalates (exit 3); each is approved with a
reply, and the run completes with one reply per ticket in the outbox, the CRM changed for
exactly the three account changes, and a summary whose counts add up.

The workflow's SQL agent names its database in the workflow (agent settings cannot read
run inputs), so the test runs a copy of the workflow pointed at a copy of the CRM.
"""

from __future__ import annotations

import email.policy
import json
import shutil
import sqlite3
import sys
from contextlib import closing
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from tests.e2e._cli import podium_json

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "customer_service.yaml"
FOLDER = ROOT / "examples" / "customer_service"
SHIPPED_URL = "sqlite:///examples/customer_service/crm.db"
PODIUM = Path(sys.executable).with_name("podium")

CHANGES = {  # ticket → (customer, column, new value), as the tickets ask
    "T-0002": ("C-10002", "email", "maria.lopez.home@fastmail.com"),
    "T-0005": ("C-10005", "plan", "pro"),
    "T-0008": ("C-10008", "address", "1187 Linden Avenue, Apt 3, Madison, WI 53703"),
}
FOR_A_PERSON = {"T-0003", "T-0007", "T-0010"}  # angry, vague, a data-protection request
COLUMNS = ("id", "name", "email", "address", "plan", "last_ticket")




def _customers(db: Path) -> dict[str, dict[str, Any]]:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM customers").fetchall()
    return {row[0]: dict(zip(COLUMNS, row, strict=True)) for row in rows}


def _waiting(record: dict[str, Any]) -> list[str]:
    return [t["id"] for t in record["tasks"] if t["status"] == "waiting"]


def test_twelve_tickets_are_triaged_answered_escalated_and_closed(tmp_path: Path) -> None:
    home, outbox, crm = tmp_path / "home", tmp_path / "outbox", tmp_path / "crm.db"
    shutil.copyfile(FOLDER / "crm.db", crm)
    before = _customers(crm)
    text = WORKFLOW.read_text(encoding="utf-8")
    assert SHIPPED_URL in text
    workflow = tmp_path / "customer_service.yaml"
    workflow.write_text(text.replace(SHIPPED_URL, f"sqlite:///{crm}"), encoding="utf-8")

    code, record = podium_json("run", str(workflow), "-i", "limit=12", "-i", f"outbox={outbox}",
                           "--json", "--no-input", home=home)
    assert code in (0, 3), record
    run_id = record["run_id"]
    plan = {p["ticket_id"]: p for p in record["outputs"]["plan"]}
    assert list(plan) == [f"T-{n:04d}" for n in range(1, 13)]
    assert {p["intent"] for p in plan.values()} == {"faq", "account_change", "complaint",
                                                    "other"}
    # The model was asked about the tickets the rules were unsure of, and only those.
    unsure = [t for t, p in plan.items() if p["decided_by"] == "model"]
    classified = [t for t in record["tasks"] if t["id"].startswith("classify[")]
    assert unsure and len(classified) == len(unsure)
    assert all(t["status"] == "completed" and t["tokens"]["calls"] >= 1 for t in classified)

    # Every ticket that waits is approved with a person's reply; the last approval ends it.
    waiting = _waiting(record)
    assert (code == 3) == bool(waiting)
    ticket_ids = list(plan)
    escalated = {ticket_ids[int(key.removeprefix("handle[").removesuffix("]"))]: key
                 for key in waiting}
    assert FOR_A_PERSON <= set(escalated) and not set(CHANGES) & set(escalated)
    for n, key in enumerate(waiting, start=1):
        reply = f"Hello, this is Sam from customer care about ticket {key}."
        code, record = podium_json("approve", run_id, key, "--data", json.dumps({"reply": reply}),
                               "--json", home=home)
        assert code == (0 if n == len(waiting) else 3), record
        assert sorted(_waiting(record)) == sorted(waiting[n:])
    assert record["status"] == "completed"

    # One reply per ticket, named from the idempotency key; a person's reply where escalated.
    files = sorted(outbox.iterdir())
    assert len(files) == 12 and all(f.name.startswith(run_id) for f in files)
    replies: dict[str, str] = {}
    for path in files:
        with path.open("rb") as fh:
            msg = BytesParser(policy=email.policy.default).parse(fh)
        body = msg.get_body(("plain",))
        assert body is not None
        replies[msg["X-Ticket"]] = body.get_content()
        assert msg["To"].endswith(f"<{plan[msg['X-Ticket']]['sender']}>")
    assert sorted(replies) == sorted(plan)
    for ticket, key in escalated.items():
        assert f"about ticket {key}" in replies[ticket]
    assert "3 to 5 business days" in replies["T-0001"]  # from the knowledge base
    assert "now on the Pro plan" in replies["T-0005"]

    # The CRM changed for the account changes, and nowhere else.
    after = _customers(crm)
    changed = {cid for cid in before if before[cid] != after[cid]}
    assert changed == {customer for customer, _, _ in CHANGES.values()}
    for ticket, (customer, column, value) in CHANGES.items():
        assert after[customer] == before[customer] | {column: value, "last_ticket": ticket}

    summary = record["outputs"]["summary"]
    assert summary["tickets"] == summary["replies"] == 12
    assert summary["escalated"] == len(waiting)
    assert summary["closed_without_human"] + summary["escalated"] == 12
    assert sorted(summary["escalated_tickets"]) == sorted(escalated)
    by_intent = summary["by_intent"]
    assert sum(c["tickets"] for c in by_intent.values()) == 12
    assert all(c["closed_without_human"] + c["escalated"] == c["tickets"]
               for c in by_intent.values())
    assert by_intent["account_change"] == {"tickets": 3, "closed_without_human": 3,
                                           "escalated": 0}
    assert by_intent["complaint"]["escalated"] >= 1
    assert summary["crm_rows_changed"] == 3
    assert sum(summary["decided_by"].values()) == 12
