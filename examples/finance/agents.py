"""The function agents of `examples/monthly_report.yaml`.

extract → validate → analyse → (model overview, or `template_overview`) → format_report →
human approval → send. Podium calls each with keyword arguments chosen by parameter name:
the task's `with:` values, upstream outputs by task id, and `ctx`. Every input and output
is plain JSON (dicts, lists, strings, numbers), so each function can also be called by hand.

Money is added up in integer cents and reported in units rounded to 2 decimals. Income is
the sum of positive amounts; expenses are reported as a positive magnitude (the sum of
negative amounts, negated); `net = income - expenses`. A percentage change is taken
against the magnitude of the previous value, and is `None` when that value is zero; a
category's change compares magnitudes, so +20% means 20% more earned or spent.

Anomalies: a transaction of the month is anomalous when its magnitude is more than
`ANOMALY_FACTOR` times the median magnitude of its category, the median taken over the
month's and the previous month's transactions of that category, for categories with at
least `ANOMALY_MIN_SAMPLES` such transactions. A median hardly moves when one outlier
joins the sample, whereas a mean and standard deviation are dragged by the outlier itself.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import math
import os
import re
import smtplib
import sqlite3
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

from podium.core.agent import TaskContext

from .report import format_report, money

__all__ = [
    "DeliveryError",
    "analyse",
    "extract",
    "format_report",
    "previous_month",
    "send",
    "smtp_address",
    "template_overview",
    "validate",
]

Row = dict[str, Any]
"""One transaction: id, date, amount, category, merchant, description."""

ANOMALY_FACTOR = 3
"""A transaction is anomalous above this many times its category's median magnitude."""
ANOMALY_MIN_SAMPLES = 4
"""Categories with fewer transactions (over both months) are not judged."""
TOP_CATEGORIES = 5
"""How many expense categories the report ranks."""
MAX_PROBLEMS_LISTED = 20
"""How many bad rows a validation error spells out."""
SENDER = "podium@localhost"

COLUMNS = ("id", "date", "amount", "category", "merchant", "description")
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_QUERY = (
    "SELECT id, date, amount, category, merchant, description FROM transactions"
    " WHERE substr(date, 1, 7) = ? ORDER BY date, id"
)


# -- extract ------------------------------------------------------------------------------


def previous_month(month: str) -> str:
    """The month before `month`, both as YYYY-MM."""
    year, mon = _parse_month(month)
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


def extract(month: str, db: str) -> dict[str, Any]:
    """Read `month`'s and the previous month's transactions from the SQLite file `db`.

    Raises:
        ValueError: `month` is not YYYY-MM, or `db` is not a transactions database.
        FileNotFoundError: `db` does not exist.
    """
    before = previous_month(month)
    path = Path(db)
    if not path.is_file():
        raise FileNotFoundError(
            f"transactions database {str(path)!r} not found (resolved to {str(path.resolve())!r});"
            " create it with `python examples/finance/make_data.py` or pass another `db`"
        )
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            current = [
                dict(zip(COLUMNS, row, strict=True)) for row in conn.execute(_QUERY, (month,))
            ]
            previous = [
                dict(zip(COLUMNS, row, strict=True)) for row in conn.execute(_QUERY, (before,))
            ]
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"cannot read transactions from {str(path)!r}: {exc}") from exc
    return {
        "month": month,
        "previous_month": before,
        "db": str(path),
        "transactions": current,
        "previous": previous,
    }


def _parse_month(month: object) -> tuple[int, int]:
    if not isinstance(month, str) or not _MONTH.fullmatch(month):
        raise ValueError(f"month {month!r} is not a month in YYYY-MM form, e.g. '2026-10'")
    year, mon = month.split("-")
    return int(year), int(mon)


# -- validate -----------------------------------------------------------------------------


def validate(extract: Mapping[str, Any]) -> dict[str, Any]:
    """Check every extracted row; return the data with counts, or raise listing bad rows.

    A row is bad when its id is missing or repeated, its date is not a real YYYY-MM-DD day
    inside its month, its amount is not a finite non-zero number with at most 2 decimals,
    or its category is empty.

    Raises:
        ValueError: the month has no transactions, or some rows are bad (all are listed,
            up to `MAX_PROBLEMS_LISTED`).
    """
    month: str = extract["month"]
    before: str = extract.get("previous_month") or previous_month(month)
    current: list[Row] = list(extract["transactions"])
    previous: list[Row] = list(extract.get("previous", []))
    source = extract.get("db", "the extract")
    if not current:
        raise ValueError(f"no transactions for month {month!r} in {source!r}")
    seen: set[int] = set()
    problems = [
        *(p for row in current for p in _row_problems(row, month, seen)),
        *(p for row in previous for p in _row_problems(row, before, seen)),
    ]
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems[:MAX_PROBLEMS_LISTED])
        more = len(problems) - MAX_PROBLEMS_LISTED
        tail = f"\n  … and {more} more" if more > 0 else ""
        raise ValueError(
            f"{len(problems)} invalid transaction rows in {source!r} for {before} and {month};"
            f" fix them at the source and re-run:\n{listed}{tail}"
        )
    return {
        "month": month,
        "previous_month": before,
        "transactions": current,
        "previous": previous,
        "counts": {"transactions": len(current), "previous": len(previous)},
    }


def _row_problems(row: Mapping[str, Any], month: str, seen: set[int]) -> list[str]:
    rid = row.get("id")
    where = f"{month} row id {rid!r}"
    problems: list[str] = []
    if not isinstance(rid, int) or isinstance(rid, bool):
        problems.append(f"{where}: id is not an integer")
    elif rid in seen:
        problems.append(f"{where}: duplicate id")
    else:
        seen.add(rid)
    day = row.get("date")
    if not _is_day(day):
        problems.append(f"{where}: date {day!r} is not a valid YYYY-MM-DD date")
    elif not str(day).startswith(f"{month}-"):
        problems.append(f"{where}: date {day!r} is outside {month}")
    amount = row.get("amount")
    if not isinstance(amount, int | float) or isinstance(amount, bool) or not math.isfinite(amount):
        problems.append(f"{where}: amount {amount!r} is not a number")
    elif amount == 0:
        problems.append(f"{where}: amount is zero")
    elif abs(amount * 100 - round(amount * 100)) > 1e-6:
        problems.append(f"{where}: amount {amount!r} has more than 2 decimals")
    category = row.get("category")
    if not isinstance(category, str) or not category.strip():
        problems.append(f"{where}: category is missing")
    return problems


def _is_day(value: object) -> bool:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


# -- analyse ------------------------------------------------------------------------------


def analyse(validate: Mapping[str, Any]) -> dict[str, Any]:
    """Compute the month's figures from validated data (see the module docstring)."""
    month: str = validate["month"]
    before: str = validate["previous_month"]
    current: list[Row] = validate["transactions"]
    previous: list[Row] = validate["previous"]
    income, expenses = _income_expenses(current)
    prev_income, prev_expenses = _income_expenses(previous)
    categories = _categories(current, previous)
    top = _top_expenses(categories, expenses)
    anomalies = _anomalies(current, previous)
    figures: dict[str, Any] = {
        "month": month,
        "month_name": _month_name(month),
        "previous_month": before,
        "previous_month_name": _month_name(before),
        "transaction_count": len(current),
        "income": _units(income),
        "expenses": _units(expenses),
        "net": _units(income - expenses),
        "previous": {
            "transaction_count": len(previous),
            "income": _units(prev_income),
            "expenses": _units(prev_expenses),
            "net": _units(prev_income - prev_expenses),
        },
        "change": {
            "income": _change(income, prev_income),
            "expenses": _change(expenses, prev_expenses),
            "net": _change(income - expenses, prev_income - prev_expenses),
        },
        "categories": categories,
        "top_expense_categories": top,
        "anomalies": anomalies,
        "anomaly_rule": (
            f"amount above {ANOMALY_FACTOR}x the median amount of its category in {before}"
            f" and {month} (categories with at least {ANOMALY_MIN_SAMPLES} transactions)"
        ),
    }
    figures["headline"] = _headline(figures)
    return figures


def _cents(amount: float) -> int:
    return round(amount * 100)


def _units(cents: float) -> float:
    return round(cents / 100, 2)


def _income_expenses(rows: Iterable[Row]) -> tuple[int, int]:
    """Income and expenses (a positive magnitude) in cents."""
    cents = [_cents(row["amount"]) for row in rows]
    return sum(c for c in cents if c > 0), -sum(c for c in cents if c < 0)


def _change(now: int, before: int) -> dict[str, float | None]:
    percent = None if before == 0 else round((now - before) / abs(before) * 100, 1)
    return {"absolute": _units(now - before), "percent": percent}


def _sum_by_category(rows: Iterable[Row]) -> tuple[dict[str, int], dict[str, int]]:
    totals: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        totals[row["category"]] += _cents(row["amount"])
        counts[row["category"]] += 1
    return totals, counts


def _categories(current: list[Row], previous: list[Row]) -> list[dict[str, Any]]:
    """Every category of either month, largest magnitude this month first."""
    totals, counts = _sum_by_category(current)
    prev_totals, _ = _sum_by_category(previous)
    names = sorted(set(totals) | set(prev_totals), key=lambda n: (-abs(totals.get(n, 0)), n))
    return [
        {
            "category": name,
            "total": _units(totals.get(name, 0)),
            "count": counts.get(name, 0),
            "previous_total": _units(prev_totals.get(name, 0)),
            # Magnitudes, so that +20% means 20% more earned or spent, whatever the sign.
            "change": _change(abs(totals.get(name, 0)), abs(prev_totals.get(name, 0))),
        }
        for name in names
    ]


def _top_expenses(categories: list[dict[str, Any]], expenses: int) -> list[dict[str, Any]]:
    spent = sorted((c for c in categories if c["total"] < 0), key=lambda c: c["total"])
    return [
        {
            "category": c["category"],
            "amount": -c["total"],
            "count": c["count"],
            "share_percent": round(-_cents(c["total"]) / expenses * 100, 1),
            "change_percent": c["change"]["percent"],
        }
        for c in spent[:TOP_CATEGORIES]
    ]


def _anomalies(current: list[Row], previous: list[Row]) -> list[dict[str, Any]]:
    sizes: dict[str, list[int]] = defaultdict(list)
    for row in [*current, *previous]:
        sizes[row["category"]].append(abs(_cents(row["amount"])))
    medians = {
        name: statistics.median(sample)
        for name, sample in sizes.items()
        if len(sample) >= ANOMALY_MIN_SAMPLES
    }
    found = []
    for row in current:
        median = medians.get(row["category"])
        size = abs(_cents(row["amount"]))
        if median and size > ANOMALY_FACTOR * median:
            found.append(
                {
                    **{key: row[key] for key in COLUMNS},
                    "amount": _units(_cents(row["amount"])),
                    "category_median": _units(median),
                    "times_median": round(size / median, 1),
                }
            )
    return sorted(found, key=lambda a: (-abs(a["amount"]), a["id"]))


def _month_name(month: str) -> str:
    year, mon = _parse_month(month)
    return f"{calendar.month_name[mon]} {year}"


def _headline(figures: Mapping[str, Any]) -> dict[str, Any]:
    """The few figures a small model can summarise without losing its way."""
    return {
        "month": figures["month_name"],
        "income": figures["income"],
        "expenses": figures["expenses"],
        "net": figures["net"],
        "previous_net": figures["previous"]["net"],
        "net_change_percent": figures["change"]["net"]["percent"],
        "largest_expenses": {
            c["category"]: c["amount"] for c in figures["top_expense_categories"][:3]
        },
        "anomalies": [
            f"{a['category']} {abs(a['amount']):.2f} at {a['merchant']} on {a['date']}"
            for a in figures["anomalies"]
        ],
    }


# -- overview -----------------------------------------------------------------------------


def template_overview(analyse: Mapping[str, Any]) -> dict[str, str]:
    """A deterministic, factual overview: the fallback when the writer model fails."""
    name = analyse["month_name"]
    previous = analyse["previous_month_name"]
    net_change = analyse["change"]["net"]["percent"]
    if net_change is None:
        trend = f"with no net result for {previous} to compare"
    elif net_change == 0:
        trend = f"unchanged from {previous}"
    else:
        direction = "up" if net_change > 0 else "down"
        before = money(analyse["previous"]["net"])
        trend = f"{direction} {abs(net_change):.1f}% from {before} in {previous}"
    sentences = [
        f"In {name} income was {money(analyse['income'])} and expenses"
        f" {money(analyse['expenses'])}, a net result of {money(analyse['net'])}, {trend}."
    ]
    top = analyse["top_expense_categories"][:3]
    if top:
        named = [f"{c['category']} ({money(c['amount'])})" for c in top]
        listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
        sentences.append(f"The largest expenses were {listed}.")
    anomalies = analyse["anomalies"]
    if anomalies:
        first = anomalies[0]
        noun = "transaction stands" if len(anomalies) == 1 else "transactions stand"
        sentences.append(
            f"{len(anomalies)} {noun} out, the largest {money(abs(first['amount']))} of"
            f" {first['category']} at {first['merchant']} on {first['date']},"
            f" {first['times_median']:.1f} times the category's median."
        )
    return {"text": " ".join(sentences)[:600]}


# -- send ---------------------------------------------------------------------------------


class DeliveryError(RuntimeError):
    """The SMTP server refused the report, or could not be reached.

    Attributes:
        retryable: whether a later attempt may succeed (a 4xx reply, a network error);
            the task's retry policy honours it.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def smtp_address(smtp: str) -> tuple[str, int]:
    """`host:port` (or `host`, port 25; `[::1]:2525` for IPv6) as `(host, port)`.

    Raises:
        ValueError: not of that form, or the port is out of range.
    """
    match = re.fullmatch(r"\[(?P<v6>[0-9A-Fa-f:.]+)\](?::(?P<p6>\d+))?|(?P<host>[^\s:\[\]]+)"
                         r"(?::(?P<port>\d+))?", smtp.strip())
    if match is None:
        raise ValueError(f"smtp {smtp!r} is not host:port, e.g. 'smtp.example.com:25' or "
                         "'127.0.0.1:2525'")
    host = match["v6"] or match["host"]
    port = int(match["p6"] or match["port"] or 25)
    if not 0 < port < 65536:
        raise ValueError(f"smtp {smtp!r}: port {port} is out of range")
    return host, port


def _deliver(msg: EmailMessage, smtp: str, timeout: float = 30.0) -> str:
    """Send `msg` through the SMTP server at `smtp` (`host:port`, no login: a local relay).

    Returns the server as `host:port`.
    """
    host, port = smtp_address(smtp)
    where = f"{host}:{port}"
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as server:
            server.send_message(msg)
    except smtplib.SMTPRecipientsRefused as e:
        codes = [code for code, _ in e.recipients.values()]
        raise DeliveryError(f"{where} refused every recipient: {e.recipients!r}",
                            retryable=all(400 <= c < 500 for c in codes)) from None
    except smtplib.SMTPResponseException as e:
        raise DeliveryError(f"{where} answered {e.smtp_code}: {e.smtp_error!r}",
                            retryable=400 <= e.smtp_code < 500) from None
    except (smtplib.SMTPException, OSError) as e:
        raise DeliveryError(f"cannot send through {where}: {type(e).__name__}: {e}",
                            retryable=True) from None
    return where


def send(
    report: Mapping[str, Any],
    approve: Mapping[str, Any] | None,
    outbox: str,
    to: str,
    ctx: TaskContext,
    smtp: str = "",
) -> dict[str, str]:
    """Send the report (text and HTML alternatives) to `to`: through the SMTP server
    `smtp` (`host:port`) when it is given, else as an `.eml` file written into `outbox`.

    The Message-ID (and the file's name) derive from `ctx.idempotency_key`, so a re-run
    after a crash replaces the same file, or sends a message the receiving side can
    recognise as the one it already has.

    Raises:
        PermissionError: the approver answered `approved: false`.
        ValueError: `to` is not an email address, or `smtp` is not `host:port`.
        DeliveryError: the SMTP server refused the message or could not be reached;
            `retryable` says whether trying again may help.
    """
    if isinstance(approve, Mapping) and approve.get("approved") is False:
        raise PermissionError(f"the report was not approved: {dict(approve)!r}")
    _, address = parseaddr(to)
    if "@" not in address or any(ch in to for ch in "\r\n"):
        raise ValueError(f"recipient {to!r} is not an email address")
    if smtp:
        smtp_address(smtp)  # a typo fails now, before anything is built
    key = ctx.idempotency_key or f"{ctx.run_id}-{ctx.task_id}"
    message_id = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@podium.localhost>"

    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = to
    msg["Subject"] = report["subject"]
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id
    msg["X-Podium-Run"] = ctx.run_id
    msg.set_content(report["markdown"])
    msg.add_alternative(report["html"], subtype="html")
    sent = {"to": to, "subject": report["subject"], "message_id": message_id}

    if smtp:
        return {**sent, "smtp": _deliver(msg, smtp)}
    folder = Path(outbox)
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / f"{_file_stem(key)}.eml").resolve()
    # Written aside then renamed, so a crash mid-write never leaves half a message.
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(msg.as_bytes(policy=SMTP))
    os.replace(partial, path)
    return {"path": str(path), **sent}


def _file_stem(key: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", key).strip(".-")
    if not stem or len(stem) > 120:
        # Too long or nothing left: keep a readable prefix and make it unique with a hash.
        stem = f"{stem[:80]}-{hashlib.sha256(key.encode()).hexdigest()[:16]}".strip(".-")
    return stem
