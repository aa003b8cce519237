"""The monthly-report example, run through the `podium` command as a user would.

The run stops at the human approval (exit code 3); approving it completes the run, whose
report must carry the same figures as a direct SQL query and whose `.eml` must exist. The
local model's overview is used only when every figure, date and name in it is in the
figures it was given; otherwise the journal names what was not, and the template wrote it.
"""

from __future__ import annotations

import asyncio
import email.policy
import json
import sqlite3
import sys
from contextlib import closing
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from podium import Faithful, SQLiteStore
from podium.core.events import Event
from podium.core.faithful import Given
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


async def _events(db: Path, run_id: str) -> list[Event]:
    store = SQLiteStore(db)
    try:
        return [e for e in await store.events(run_id) if e.task == "overview"]
    finally:
        await store.close()


def _check_overview(home: Path, run_id: str, task: dict[str, Any],
                    outputs: dict[str, Any]) -> None:
    """The overview is the model's only if it passed the faithfulness check, which an
    independent check of its text against the headline confirms; else the writer's failed
    attempt is journaled (with the unsupported claims, when that was the reason)."""
    events = asyncio.run(_events(home / "podium.db", run_id))
    checked = [e.data for e in events if e.type == "output_checked"]
    failed = [e.data for e in events if e.type == "attempt_failed" and e.data["agent"] == "writer"]
    prompt = ("Summarise these figures in two or three sentences: "
              + json.dumps(outputs["analyse"]["headline"]))
    if task["agent"] == "writer":
        assert checked and checked[-1]["passed"] and not failed
        Faithful(sources=("prompt",)).check(outputs["overview"], Given(prompt=prompt))
        return
    assert task["agent"] == "template_writer" and len(failed) == 1, events
    if failed[0]["error_type"] == "Unfaithful":
        assert checked and not checked[-1]["passed"]
        assert failed[0]["claims"] or "min_figures" in failed[0]["error"]
        assert checked[-1]["claims"] == failed[0]["claims"]
        for claim in failed[0]["claims"][:10]:
            assert claim["text"] in str(failed[0]["error"])


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
    _check_overview(home, record["run_id"], tasks["overview"], outputs)
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
