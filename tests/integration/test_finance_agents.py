"""The monthly-report example's function agents, called directly on a copy of its database.

Every figure is checked against a direct SQL query; outputs go through a JSON round trip
between steps, as they do in a run.
"""

from __future__ import annotations

import email.policy
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
from contextlib import closing
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from podium.core.agent import TaskContext

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `examples` is imported from the repository root, as Podium does
    sys.path.insert(0, str(ROOT))

from examples.finance import agents, make_data  # noqa: E402
from examples.finance.models import Overview  # noqa: E402

SHIPPED_DB = ROOT / "examples" / "finance" / "transactions.db"
MONTHS = ["2026-10", "2026-11"]


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _ctx(key: str = "run-1:send", run_id: str = "run-1") -> TaskContext:
    return TaskContext(
        run_id=run_id, task_id="send", attempt=1, idempotency_key=key, inputs={}, outputs={}
    )


def _query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def _bounds(month: str) -> tuple[str, str]:
    year, mon = (int(p) for p in month.split("-"))
    after = f"{year + 1}-01" if mon == 12 else f"{year}-{mon + 1:02d}"
    return f"{month}-01", f"{after}-01"


def _sql_totals(db: Path, month: str) -> dict[str, Any]:
    ((income, expenses, net, count),) = _query(
        db,
        "SELECT ROUND(COALESCE(SUM(CASE WHEN amount > 0 THEN amount END), 0), 2),"
        " ROUND(-COALESCE(SUM(CASE WHEN amount < 0 THEN amount END), 0), 2),"
        " ROUND(SUM(amount), 2), COUNT(*) FROM transactions WHERE date >= ? AND date < ?",
        *_bounds(month),
    )
    return {"income": income, "expenses": expenses, "net": net, "transaction_count": count}


def _sql_categories(db: Path, month: str) -> dict[str, tuple[float, int]]:
    rows = _query(
        db,
        "SELECT category, ROUND(SUM(amount), 2), COUNT(*) FROM transactions"
        " WHERE date >= ? AND date < ? GROUP BY category",
        *_bounds(month),
    )
    return {category: (total, count) for category, total, count in rows}


def _percent(now: float, before: float) -> float | None:
    return None if before == 0 else round((now - before) / abs(before) * 100, 1)


def _pipeline(db: Path, month: str) -> dict[str, Any]:
    extracted = _json(agents.extract(month=month, db=str(db)))
    validated = _json(agents.validate(extract=extracted))
    figures: dict[str, Any] = _json(agents.analyse(validate=validated))
    return figures


@pytest.fixture
def db(tmp_path: Path) -> Path:
    copy = tmp_path / "transactions.db"
    shutil.copyfile(SHIPPED_DB, copy)
    return copy


# -- figures ------------------------------------------------------------------------------


@pytest.mark.parametrize("month", MONTHS)
def test_totals_and_change_match_sql(db: Path, month: str) -> None:
    figures = _pipeline(db, month)
    now = _sql_totals(db, month)
    before = _sql_totals(db, agents.previous_month(month))

    assert {key: figures[key] for key in now} == now
    assert figures["previous"] == before
    for key in ("income", "expenses", "net"):
        assert figures["change"][key] == {
            "absolute": round(now[key] - before[key], 2),
            "percent": _percent(now[key], before[key]),
        }
    assert figures["income"] - figures["expenses"] == pytest.approx(figures["net"])


@pytest.mark.parametrize("month", MONTHS)
def test_categories_match_sql_group_by(db: Path, month: str) -> None:
    figures = _pipeline(db, month)
    now = _sql_categories(db, month)
    before = _sql_categories(db, agents.previous_month(month))

    by_name = {c["category"]: c for c in figures["categories"]}
    assert set(by_name) == set(now) | set(before)
    for name, c in by_name.items():
        total, count = now.get(name, (0.0, 0))
        previous_total = before.get(name, (0.0, 0))[0]
        assert (c["total"], c["count"], c["previous_total"]) == (total, count, previous_total)
        assert c["change"]["percent"] == _percent(abs(total), abs(previous_total))

    expenses = _sql_totals(db, month)["expenses"]
    spent = sorted((total, name) for name, (total, _) in now.items() if total < 0)[:5]
    assert [(c["category"], c["amount"]) for c in figures["top_expense_categories"]] == [
        (name, -total) for total, name in spent
    ]
    for c in figures["top_expense_categories"]:
        assert c["share_percent"] == round(c["amount"] / expenses * 100, 1)


def test_the_planted_anomalies_are_found_and_nothing_else(db: Path) -> None:
    planted = dict(
        _query(
            db,
            "SELECT merchant, id FROM transactions WHERE ABS(amount) > 9000 AND category"
            " IN ('Travel', 'Software')",
        )
    )
    october = _pipeline(db, "2026-10")["anomalies"]
    assert [(a["id"], a["category"], a["amount"]) for a in october] == [
        (planted["Skyline Charter"], "Travel", -12480.00)
    ]
    november = _pipeline(db, "2026-11")["anomalies"]
    assert [(a["id"], a["category"], a["amount"]) for a in november] == [
        (planted["Amazon Web Services"], "Software", -9412.37)
    ]
    for month in ("2026-06", "2026-07", "2026-08", "2026-09"):
        assert _pipeline(db, month)["anomalies"] == []


def test_anomaly_rule_is_three_times_the_category_median(db: Path) -> None:
    (anomaly,) = _pipeline(db, "2026-10")["anomalies"]
    sample = [
        abs(amount)
        for (amount,) in _query(
            db,
            "SELECT amount FROM transactions WHERE category = 'Travel'"
            " AND date >= '2026-09-01' AND date < '2026-11-01'",
        )
    ]
    median = statistics.median(sample)
    assert anomaly["category_median"] == round(median, 2)
    assert abs(anomaly["amount"]) > agents.ANOMALY_FACTOR * median
    assert anomaly["times_median"] == round(abs(anomaly["amount"]) / median, 1)


def test_a_month_without_a_previous_month_has_no_percent_change(db: Path) -> None:
    figures = _pipeline(db, "2026-05")
    assert figures["previous"]["transaction_count"] == 0
    assert figures["change"]["income"] == {"absolute": figures["income"], "percent": None}


# -- extract and validate -----------------------------------------------------------------


def test_extract_reads_the_month_and_the_previous_one(db: Path) -> None:
    out = agents.extract(month="2026-10", db=str(db))
    assert (out["month"], out["previous_month"]) == ("2026-10", "2026-09")
    ids = [r["id"] for r in out["transactions"]]
    assert ids == [
        i
        for (i,) in _query(
            db, "SELECT id FROM transactions WHERE date LIKE '2026-10-%' ORDER BY date, id"
        )
    ]
    assert all(r["date"].startswith("2026-09-") for r in out["previous"])
    assert set(out["transactions"][0]) == set(agents.COLUMNS)
    assert agents.previous_month("2026-01") == "2025-12"


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "October", "2026-10-01", "", 202610])
def test_a_malformed_month_is_refused_by_name(db: Path, month: Any) -> None:
    with pytest.raises(ValueError, match=rf"month {month!r} is not a month in YYYY-MM form"):
        agents.extract(month=month, db=str(db))


def test_a_missing_database_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "books.db"
    with pytest.raises(FileNotFoundError, match=r"nowhere/books\.db") as info:
        agents.extract(month="2026-10", db=str(missing))
    assert "make_data.py" in str(info.value)
    assert not missing.exists()


def test_a_file_that_is_not_a_transactions_database_is_named(tmp_path: Path) -> None:
    other = tmp_path / "notes.db"
    other.write_text("not a database at all, just some words to fill a page " * 40)
    with pytest.raises(ValueError, match=r"cannot read transactions from '.*notes\.db'"):
        agents.extract(month="2026-10", db=str(other))


def test_invalid_rows_are_all_listed(db: Path) -> None:
    bad = [
        (9001, "2026-10-32", -12.5, "Meals", "Cafe", "impossible day"),
        (9002, "2026-10-03", 0.0, "Meals", "Cafe", "zero"),
        (9003, "2026-10-04", "twelve", "Meals", "Cafe", "text amount"),
        (9004, "2026-10-05", -20.0, " ", "Cafe", "blank category"),
        (9005, "2026-10-06", -20.125, "Meals", "Cafe", "fractions of a cent"),
    ]
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.executemany("INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?)", bad)
    extracted = _json(agents.extract(month="2026-10", db=str(db)))
    with pytest.raises(ValueError, match="5 invalid transaction rows") as info:
        agents.validate(extract=extracted)
    message = str(info.value)
    assert "id 9001: date '2026-10-32' is not a valid YYYY-MM-DD date" in message
    assert "id 9002: amount is zero" in message
    assert "id 9003: amount 'twelve' is not a number" in message
    assert "id 9004: category is missing" in message
    assert "id 9005: amount -20.125 has more than 2 decimals" in message


def test_duplicate_ids_and_dates_outside_the_month_are_refused(db: Path) -> None:
    extracted = _json(agents.extract(month="2026-10", db=str(db)))
    first = extracted["transactions"][0]
    extracted["transactions"].append(dict(first))
    extracted["previous"].append({**first, "id": 99_999, "date": "2026-10-02"})
    with pytest.raises(ValueError, match="2 invalid transaction rows") as info:
        agents.validate(extract=extracted)
    assert f"2026-10 row id {first['id']}: duplicate id" in str(info.value)
    assert "2026-09 row id 99999: date '2026-10-02' is outside 2026-09" in str(info.value)


def test_a_month_without_transactions_is_refused(db: Path) -> None:
    extracted = agents.extract(month="2027-03", db=str(db))
    with pytest.raises(ValueError, match="no transactions for month '2027-03'"):
        agents.validate(extract=extracted)


def test_validate_counts_rows(db: Path) -> None:
    out = agents.validate(extract=agents.extract(month="2026-10", db=str(db)))
    assert out["counts"] == {
        "transactions": _sql_totals(db, "2026-10")["transaction_count"],
        "previous": _sql_totals(db, "2026-09")["transaction_count"],
    }


# -- overview and report ------------------------------------------------------------------


def test_template_overview_states_the_figures(db: Path) -> None:
    figures = _pipeline(db, "2026-10")
    overview = Overview.model_validate(agents.template_overview(analyse=figures))
    for amount in (figures["income"], figures["expenses"], figures["net"]):
        assert f"{amount:,.2f}" in overview.text
    assert "down 73.3% from 15,452.76 in September 2026" in overview.text
    assert "Skyline Charter" in overview.text


def test_report_contains_every_figure(db: Path) -> None:
    figures = _pipeline(db, "2026-10")
    overview = {"text": "October was a costly month for travel."}
    report = _json(agents.format_report(analyse=figures, overview=overview, ctx=_ctx()))
    assert report["subject"] == "Monthly financial report, October 2026: net 4,123.32"
    keys = ("income", "expenses", "net")
    expected = [f"{figures[key]:,.2f}" for key in keys]
    expected += [f"{figures['change'][key]['percent']:+.1f}%" for key in keys]
    expected += ["Skyline Charter", "12,480.00", "October was a costly month for travel.", "run-1"]
    expected += [f"{c['amount']:,.2f}" for c in figures["top_expense_categories"]]
    expected += [c["category"] for c in figures["categories"]]
    for text in expected:
        assert text in report["markdown"], text
        assert text in report["html"], text
    assert report["html"].startswith("<!DOCTYPE html>")
    assert "http" not in report["html"] and "src=" not in report["html"]


def test_report_escapes_html_and_tolerates_a_missing_overview(db: Path) -> None:
    figures = _pipeline(db, "2026-10")
    hostile = {"text": '<script>alert("x")</script> R&D costs'}
    report = agents.format_report(analyse=figures, overview=hostile)
    assert "<script>" not in report["html"]
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; R&amp;D costs" in report["html"]
    assert '<script>alert("x")</script> R&D costs' in report["markdown"]
    assert "Overview unavailable." in agents.format_report(analyse=figures, overview={})["html"]


# -- send ---------------------------------------------------------------------------------


def _report(db: Path) -> dict[str, Any]:
    figures = _pipeline(db, "2026-10")
    overview = agents.template_overview(analyse=figures)
    report: dict[str, Any] = _json(
        agents.format_report(analyse=figures, overview=overview, ctx=_ctx())
    )
    return report


def test_send_writes_a_standard_eml_with_text_and_html(db: Path, tmp_path: Path) -> None:
    report = _report(db)
    outbox = tmp_path / "outbox" / "nested"
    sent = agents.send(
        report=report, approve={}, outbox=str(outbox), to="cfo@example.com", ctx=_ctx()
    )

    path = Path(sent["path"])
    assert path == (outbox / "run-1-send.eml").resolve()
    assert sent["to"] == "cfo@example.com" and sent["subject"] == report["subject"]
    with path.open("rb") as fh:
        msg = BytesParser(policy=email.policy.default).parse(fh)
    assert msg["From"] == "podium@localhost"
    assert msg["To"] == "cfo@example.com"
    assert msg["Subject"] == report["subject"]
    assert msg["Message-ID"] == sent["message_id"]
    assert msg["Date"].datetime is not None
    assert msg.get_content_type() == "multipart/alternative"
    plain, rich = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and rich is not None
    assert "4,123.32" in plain.get_content() and "4,123.32" in rich.get_content()
    assert rich.get_content().startswith("<!DOCTYPE html>")
    assert [p.name for p in outbox.iterdir()] == ["run-1-send.eml"]


def test_send_again_under_the_same_key_replaces_the_message(db: Path, tmp_path: Path) -> None:
    report = _report(db)
    first = agents.send(
        report=report, approve={}, outbox=str(tmp_path), to="a@example.com", ctx=_ctx()
    )
    again = agents.send(
        report=report, approve={}, outbox=str(tmp_path), to="a@example.com", ctx=_ctx()
    )
    assert again["path"] == first["path"] and again["message_id"] == first["message_id"]
    assert len(list(tmp_path.glob("*.eml"))) == 1
    assert not list(tmp_path.glob("*.partial"))
    other = agents.send(
        report=report, approve={}, outbox=str(tmp_path), to="a@example.com", ctx=_ctx("run-2:send")
    )
    assert other["path"] != first["path"]


def test_send_names_files_safely_from_any_key(db: Path, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    sent = agents.send(
        report=_report(db),
        approve=None,
        outbox=str(outbox),
        to="a@example.com",
        ctx=_ctx("../../etc/passwd:send/1"),
    )
    assert Path(sent["path"]).parent == outbox.resolve()
    assert Path(sent["path"]).name == "etc-passwd-send-1.eml"


def test_send_refuses_a_withheld_approval_and_a_bad_recipient(db: Path, tmp_path: Path) -> None:
    report, outbox = _report(db), tmp_path / "outbox"
    with pytest.raises(PermissionError, match="not approved"):
        agents.send(
            report=report,
            approve={"approved": False},
            outbox=str(outbox),
            to="a@example.com",
            ctx=_ctx(),
        )
    with pytest.raises(ValueError, match="recipient 'finance team' is not an email address"):
        agents.send(report=report, approve={}, outbox=str(outbox), to="finance team", ctx=_ctx())
    assert not outbox.exists()


# -- the data -----------------------------------------------------------------------------


def test_the_generator_is_deterministic_and_matches_the_shipped_database(tmp_path: Path) -> None:
    assert make_data.generate() == make_data.generate()
    fresh = tmp_path / "fresh.db"
    assert make_data.write(fresh) == len(make_data.generate())
    select = (
        "SELECT id, date, amount, category, merchant, description FROM transactions ORDER BY id"
    )
    assert _query(fresh, select) == _query(SHIPPED_DB, select)


def test_the_generator_runs_as_a_script(tmp_path: Path) -> None:
    target = tmp_path / "script.db"
    script = ROOT / "examples" / "finance" / "make_data.py"
    done = subprocess.run(
        [sys.executable, str(script), str(target)], capture_output=True, text=True, check=True
    )
    assert f"to {target}" in done.stdout
    select = "SELECT * FROM transactions ORDER BY id"
    assert _query(target, select) == _query(SHIPPED_DB, select)


def test_the_shipped_data_look_like_a_small_companys_books() -> None:
    ((count, first, last),) = _query(
        SHIPPED_DB, "SELECT COUNT(*), MIN(date), MAX(date) FROM transactions"
    )
    assert 200 <= count <= 500
    assert first <= "2026-07-01" and last >= "2026-11-01"
    categories = {c for (c,) in _query(SHIPPED_DB, "SELECT DISTINCT category FROM transactions")}
    assert {
        "Revenue",
        "Payroll",
        "Rent",
        "Software",
        "Travel",
        "Marketing",
        "Utilities",
    } <= categories
    (signs,) = _query(
        SHIPPED_DB,
        "SELECT COUNT(*) FROM transactions"
        " WHERE amount > 0 AND category NOT IN ('Revenue', 'Interest')",
    )
    assert signs == (0,)
    assert all(round(a, 2) == a for (a,) in _query(SHIPPED_DB, "SELECT amount FROM transactions"))
