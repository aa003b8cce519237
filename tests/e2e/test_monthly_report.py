"""The monthly-report example, run through the `podium` command as a user would.

The run stops at the human approval (exit code 3); approving it completes the run, whose
report must carry the same figures as a direct SQL query and whose `.eml` must exist.
"""

from __future__ import annotations

import email.policy
import sqlite3
import sys
from contextlib import closing
from email.parser import BytesParser
from pathlib import Path

from tests.e2e._cli import podium_json

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "monthly_report.yaml"
DB = ROOT / "examples" / "finance" / "transactions.db"
PODIUM = Path(sys.executable).with_name("podium")



def _sql(month: str) -> dict[str, float]:
    with closing(sqlite3.connect(DB)) as conn:
        ((income, expenses, net),) = conn.execute(
            "SELECT ROUND(SUM(CASE WHEN amount > 0 THEN amount ELSE 0 END), 2),"
            " ROUND(-SUM(CASE WHEN amount < 0 THEN amount ELSE 0 END), 2), ROUND(SUM(amount), 2)"
            " FROM transactions WHERE date LIKE ? || '-%'",
            (month,),
        ).fetchall()
    return {"income": income, "expenses": expenses, "net": net}


def test_monthly_report_waits_for_approval_then_sends(tmp_path: Path) -> None:
    home, outbox = tmp_path / "home", tmp_path / "outbox"
    code, waiting = podium_json(
        "run", str(WORKFLOW), "-i", "month=2026-10", "-i", f"outbox={outbox}", "--json", home=home
    )
    assert code == 3, waiting
    assert waiting["status"] != "completed"
    assert "send" not in waiting.get("outputs", {})
    assert not outbox.exists()

    code, record = podium_json("approve", waiting["run_id"], "approve", "--json", home=home)
    assert code == 0, record
    assert record["status"] == "completed"
    assert record["run_id"] == waiting["run_id"]
    assert record["workflow"] == "monthly-report"
    tasks = {t["id"]: t for t in record["tasks"]}
    assert set(tasks) == {"extract", "validate", "analyse", "overview", "report", "approve", "send"}
    assert tasks["send"]["status"] == "completed" and tasks["send"]["attempts"] == 1

    outputs = record["outputs"]
    expected = _sql("2026-10")
    assert {key: outputs["analyse"][key] for key in expected} == expected
    assert [a["merchant"] for a in outputs["analyse"]["anomalies"]] == ["Skyline Charter"]
    overview = outputs["overview"]["text"]
    assert overview and overview in outputs["report"]["markdown"]
    for amount in expected.values():
        assert f"{amount:,.2f}" in outputs["report"]["markdown"]
        assert f"{amount:,.2f}" in outputs["report"]["html"]

    eml = Path(outputs["send"]["path"])
    assert eml.parent == outbox.resolve() and eml.suffix == ".eml"
    with eml.open("rb") as fh:
        msg = BytesParser(policy=email.policy.default).parse(fh)
    assert msg["To"] == "finance-team@example.com"
    assert msg["Subject"] == outputs["report"]["subject"]
    plain, rich = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and rich is not None
    assert f"{expected['net']:,.2f}" in plain.get_content()
    assert f"{expected['net']:,.2f}" in rich.get_content()
