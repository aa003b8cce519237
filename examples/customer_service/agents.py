"""The function agents of `examples/customer_service.yaml`.

intake → rules (every ticket) → classify (the local model, per ticket the rules are
unsure of) → plan (the rules' verdicts settled with the model's answers) → crm_update
(built-in SQL agent, per account change) → handle (per ticket: FAQ answer,
CRM confirmation, or `Escalate` to a person) → close (per ticket: the reply into the
outbox) → summary.

Podium calls each with keyword arguments chosen by parameter name: the task's `with:`
values, upstream outputs by task id, `item`/`index` for `for_each` items, and `ctx`.
Inputs and outputs are plain JSON, so each function can also be called by hand.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Any

from podium import Escalate, TaskContext

from . import kb as knowledge
from . import triage

__all__ = ["close", "handle", "intake", "plan", "rules", "summarise", "write_reply"]

SENDER = formataddr(("Larkspur Home customer care", "care@larkspur.example"))
SIGNATURE = "Best wishes,\nLarkspur Home customer care"
REQUIRED = ("id", "from", "body")
"""Fields every ticket has; `name` and `subject` may be missing or empty."""

Ticket = dict[str, Any]


# -- intake -------------------------------------------------------------------------------


def intake(tickets: str, limit: int | None = None) -> list[Ticket]:
    """The first `limit` tickets (all when None or 0) of a JSON-lines or CSV file.

    Every ticket has at least `id`, `from` and `body`; a missing `name` or `subject`
    becomes "".

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line is not a JSON object, a ticket lacks a field, an id repeats,
            or `limit` is negative.
    """
    path = Path(tickets)
    if not path.is_file():
        raise FileNotFoundError(f"tickets file {tickets!r} not found (resolved to "
                                f"{str(path.resolve())!r})")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be 0 (all) or more, not {limit}")
    with path.open(encoding="utf-8", newline="") as fh:
        if path.suffix.lower() == ".csv":
            rows: list[tuple[int, Any]] = list(enumerate(csv.DictReader(fh), start=2))
        else:
            rows = [(n, _json_line(line, path, n))
                    for n, line in enumerate(fh, start=1) if line.strip()]
    found: list[Ticket] = []
    seen: set[str] = set()
    for n, row in rows[: limit or None]:
        missing = [key for key in REQUIRED if not isinstance(row, dict) or not row.get(key)]
        if missing:
            raise ValueError(f"{path}:{n}: ticket lacks {', '.join(missing)}")
        if row["id"] in seen:
            raise ValueError(f"{path}:{n}: ticket id {row['id']!r} appears twice")
        seen.add(row["id"])
        found.append({"name": "", "subject": "", **row})
    return found


def _json_line(line: str, path: Path, n: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{n}: not a JSON object: {e.msg}") from None


# -- triage -------------------------------------------------------------------------------


def rules(intake: Sequence[Ticket], kb: str) -> list[dict[str, Any]]:
    """The rules' verdict on every ticket; those with `sure: false` go to the model."""
    entries = knowledge.load(kb)
    return [triage.judge(ticket, entries) for ticket in intake]


def plan(rules: Sequence[Mapping[str, Any]], classify: Sequence[Any]) -> list[dict[str, Any]]:
    """The final triage of every ticket: the rules' verdict, settled with the model's
    answer where the rules were unsure. `classify` holds one answer per unsure verdict,
    in order (None where the model failed)."""
    answers = iter(classify)
    settled = []
    for verdict in rules:
        model = None if verdict["sure"] else next(answers, None)
        settled.append(triage.settle(verdict, model if isinstance(model, Mapping) else None))
    return settled


# -- handle -------------------------------------------------------------------------------


def _first_name(step: Mapping[str, Any]) -> str:
    name = str(step.get("name") or "").split()
    return name[0] if name else "there"


def faq_reply(step: Mapping[str, Any], entry: knowledge.Entry) -> str:
    """The reply to an FAQ: the knowledge-base answer as it stands, framed."""
    return (f"Hi {_first_name(step)},\n\nThanks for getting in touch. {entry.answer}\n\n"
            f"You can find this in our help centre under \"{entry.title}\".\n\n{SIGNATURE}\n")


def crm_reply(step: Mapping[str, Any], row: Mapping[str, Any]) -> str:
    """The confirmation of an account change, from the row as the CRM returned it."""
    field = step["change"]["field"]
    said = {
        "email": f"the email address on your account {row['id']} is now {row['email']}. "
                 "We will write to you there from now on",
        "address": f"the address on your account {row['id']} is now {row['address']}",
        "plan": f"your account {row['id']} is now on the {str(row['plan']).capitalize()} plan",
    }[field]
    return (f"Hi {_first_name(step)},\n\nDone: {said}.\n\nIf you did not ask for this "
            f"change, reply to this message straight away and we will undo it.\n\n"
            f"{SIGNATURE}\n")


def _crm_result(step: Mapping[str, Any], plan: Sequence[Mapping[str, Any]],
                crm_update: Sequence[Any]) -> Mapping[str, Any] | None:
    """The SQL agent's output for this ticket: `crm_update` has one per CRM step, in the
    order of `plan`."""
    changes = [p["ticket_id"] for p in plan if p.get("route") == "crm"]
    for ticket_id, result in zip(changes, crm_update, strict=False):
        if ticket_id == step["ticket_id"] and isinstance(result, Mapping):
            return result
    return None


def handle(item: Mapping[str, Any], plan: Sequence[Mapping[str, Any]],
           crm_update: Sequence[Any], kb: str) -> dict[str, str]:
    """Answer an FAQ, confirm an account change, or hand the ticket to a person.

    Raises:
        Escalate: the triage routed the ticket to a person, the knowledge-base entry is
            gone, or the CRM did not change the row (unknown customer, a sender who is
            not the customer, or a change the database refused).
    """
    route = item["route"]
    if route == "faq":
        entries = {e.id: e for e in knowledge.load(kb)}
        entry = entries.get(item["kb"]["id"])
        if entry is None:
            raise Escalate(f"knowledge-base entry {item['kb']['id']!r} no longer exists")
        return {"reply": faq_reply(item, entry), "handled_by": "workflow",
                "resolution": f"faq:{entry.id}"}
    if route == "crm":
        result = _crm_result(item, plan, crm_update)
        rows = list(result.get("rows") or []) if result else []
        if len(rows) != 1:
            raise Escalate(
                f"the CRM did not change {item['customer_id']}: no such customer, the sender "
                f"{item['sender']!r} is not the customer's email on file, or the database "
                f"refused the new {item['change']['field']}")
        return {"reply": crm_reply(item, rows[0]), "handled_by": "workflow",
                "resolution": f"crm:{item['change']['field']}"}
    raise Escalate(f"{item['intent']}, {item['complexity']}: {item['reason']}")


# -- close --------------------------------------------------------------------------------


def _file_stem(key: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", key).strip(".-")
    if not stem or len(stem) > 120:
        stem = f"{stem[:80]}-{hashlib.sha256(key.encode()).hexdigest()[:16]}".strip(".-")
    return stem


def write_reply(step: Mapping[str, Any], reply: str, outbox: str | Path, key: str,
                *, run_id: str = "") -> Path:
    """Write the reply to one ticket as an `.eml` file in `outbox`, named from `key`.

    The same key always gives the same file and Message-ID, so writing again (a task
    re-run after a crash, or a resumed run) replaces the message instead of adding one.
    """
    _, address = parseaddr(str(step.get("sender") or ""))
    if "@" not in address or any(ch in str(step.get("sender")) for ch in "\r\n"):
        raise ValueError(f"ticket {step.get('ticket_id')!r}: sender {step.get('sender')!r} "
                         "is not an email address")
    folder = Path(outbox)
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / f"{_file_stem(key)}.eml").resolve()
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = formataddr((str(step.get("name") or ""), address))
    subject = " ".join(str(step.get("subject") or "your message").split())
    msg["Subject"] = f"Re: {subject} [{step['ticket_id']}]"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@larkspur.example>"
    msg["X-Ticket"] = str(step["ticket_id"])
    if run_id:
        msg["X-Podium-Run"] = run_id
    msg.set_content(reply)
    # Written aside then renamed, so a crash mid-write never leaves half a message.
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(msg.as_bytes(policy=SMTP))
    os.replace(partial, path)
    return path


def close(item: Mapping[str, Any], index: int, handle: Sequence[Mapping[str, Any]],
          outbox: str, ctx: TaskContext) -> dict[str, Any]:
    """Close one ticket: write its reply (`handle[index]`) into the outbox."""
    handled = handle[index]
    path = write_reply(item, handled["reply"], outbox, ctx.idempotency_key,
                       run_id=ctx.run_id)
    return {"ticket_id": item["ticket_id"], "intent": item["intent"],
            "handled_by": handled.get("handled_by", "human"), "path": str(path)}


# -- summary ------------------------------------------------------------------------------


def summarise(plan: Sequence[Mapping[str, Any]], close: Sequence[Mapping[str, Any]],
              crm_update: Sequence[Any], outbox: str) -> dict[str, Any]:
    """How many tickets were closed without a person, how many escalated, by intent."""
    by_intent: dict[str, dict[str, int]] = {}
    for step, closed in zip(plan, close, strict=True):
        counts = by_intent.setdefault(step["intent"], {"tickets": 0, "closed_without_human": 0,
                                                       "escalated": 0})
        counts["tickets"] += 1
        counts["escalated" if closed["handled_by"] == "human" else "closed_without_human"] += 1
    escalated = [c["ticket_id"] for c in close if c["handled_by"] == "human"]
    return {
        "tickets": len(plan),
        "closed_without_human": len(plan) - len(escalated),
        "escalated": len(escalated),
        "by_intent": dict(sorted(by_intent.items())),
        "crm_rows_changed": sum(len(r.get("rows") or []) for r in crm_update
                                if isinstance(r, Mapping)),
        "decided_by": dict(sorted(Counter(s["decided_by"] for s in plan).items())),
        "escalated_tickets": escalated,
        "replies": len(close),
        "outbox": str(Path(outbox).resolve()),
    }
