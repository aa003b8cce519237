"""The audit log: an unbroken HMAC chain with signed heads; every tampering is named."""

from __future__ import annotations

import base64
import hmac
import io
import itertools
import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from hashlib import sha256
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from podium.cli.audit import audit_export_command, audit_verify_command
from podium.security import AuditKeyMismatch, AuditLog, VerifyReport
from podium.security.audit import GENESIS, AuditRecord


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("PODIUM_HOME", str(home))
    monkeypatch.delenv("PODIUM_AUDIT_KEY", raising=False)
    return home


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


def fill(db: Path, n: int, *, sign_every: int | None = 100, sign_on_close: bool = True) -> None:
    with AuditLog(db, sign_every=sign_every, sign_on_close=sign_on_close) as log:
        for i in range(n):
            log.append(actor="alice", action="tool.call", subject=f"run-{i % 7}/task-{i}",
                       outcome="ok" if i % 3 else "denied", data_classes=["EMAIL"])


def sql(db: Path, *statements: str, params: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(db)
    try:
        with conn:
            for s in statements:
                conn.execute(s, params if "?" in s else ())
    finally:
        conn.close()


def verify(db: Path) -> VerifyReport:
    with AuditLog(db, sign_on_close=False) as log:
        return log.verify()


def kinds(report: VerifyReport) -> list[tuple[str, int]]:
    return [(f.kind, f.seq) for f in report.findings]


def test_appended_records_verify(db: Path) -> None:
    fill(db, 250)
    report = verify(db)
    assert report.ok, report
    assert report.records == report.chain_length == 250
    assert report.head is not None and report.head.seq == 250  # signed on close
    with AuditLog(db) as log:
        assert [h.seq for h in log.heads()] == [100, 200, 250]
        first, second = list(log.records())[:2]
    assert first.prev_mac == GENESIS and second.prev_mac == first.mac
    assert first.data_classes == ("EMAIL",) and first.action == "tool.call"


def test_an_edited_field_is_named(db: Path) -> None:
    fill(db, 30)
    sql(db, "UPDATE audit_log SET outcome='ok' WHERE seq=10")
    report = verify(db)
    assert kinds(report) == [("edited", 10)]
    assert not report.ok


def test_an_edited_newest_record_is_caught_by_its_head(db: Path) -> None:
    fill(db, 30)
    sql(db, "UPDATE audit_log SET actor='mallory' WHERE seq=30")
    assert kinds(verify(db)) == [("edited", 30)]


def forged(prev_mac: str, seq: int) -> tuple[object, ...]:
    """A row whose MAC is computed the right way, with a key that is not the log's."""
    record = AuditRecord(seq=seq, time_us=1, actor="mallory", action="approval",
                         subject="run-1", outcome="ok", prev_mac=prev_mac)
    mac = hmac.new(os.urandom(32), prev_mac.encode() + b"\n" + record.content(),
                   sha256).hexdigest()
    return (seq, 1, "mallory", "approval", "run-1", "ok", "[]", "", prev_mac, mac)


def last_mac(db: Path, seq: int) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("SELECT mac FROM audit_log WHERE seq=?", (seq,)).fetchone()[0])
    finally:
        conn.close()


def test_a_forged_record_appended_is_inserted(db: Path) -> None:
    fill(db, 20)
    sql(db, "INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?,?)",
        params=forged(last_mac(db, 20), 21))
    assert kinds(verify(db)) == [("inserted", 21)]


def test_a_forged_record_slipped_into_the_middle_is_inserted(db: Path) -> None:
    fill(db, 20)
    # Make room at seq 5 by shifting the later rows up (through negatives: seq is unique).
    sql(db, "UPDATE audit_log SET seq = -seq WHERE seq >= 5",
        "UPDATE audit_log SET seq = -seq + 1 WHERE seq < 0")
    sql(db, "INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?,?)",
        params=forged(last_mac(db, 4), 5))
    assert kinds(verify(db)) == [("inserted", 5)]


def test_a_record_forged_in_place_is_named(db: Path) -> None:
    fill(db, 20)
    row = forged(last_mac(db, 7), 8)
    sql(db, "UPDATE audit_log SET actor=?, mac=? WHERE seq=8", params=(row[2], row[9]))
    assert kinds(verify(db)) == [("edited", 8)]


def test_two_swapped_records_are_reordered(db: Path) -> None:
    fill(db, 20)
    sql(db, "UPDATE audit_log SET seq=-1 WHERE seq=7", "UPDATE audit_log SET seq=7 WHERE seq=8",
        "UPDATE audit_log SET seq=8 WHERE seq=-1")
    assert kinds(verify(db)) == [("reordered", 7), ("reordered", 8)]


def test_a_deleted_middle_record_is_named(db: Path) -> None:
    fill(db, 20)
    sql(db, "DELETE FROM audit_log WHERE seq=12")
    assert kinds(verify(db)) == [("deleted", 12)]


def test_a_deletion_hidden_by_renumbering_is_named(db: Path) -> None:
    fill(db, 20)
    sql(db, "DELETE FROM audit_log WHERE seq IN (12, 13)",
        "UPDATE audit_log SET seq = -seq WHERE seq > 13",
        "UPDATE audit_log SET seq = -seq - 2 WHERE seq < 0")
    assert kinds(verify(db)) == [("deleted", 12), ("deleted", 13)]


def test_deleting_the_newest_records_is_truncation(db: Path) -> None:
    fill(db, 120)  # heads at 100 and, on close, 120
    sql(db, "DELETE FROM audit_log WHERE seq > 110")
    assert kinds(verify(db)) == [("truncated", 111)]
    sql(db, "DELETE FROM audit_log WHERE seq > 90")
    assert kinds(verify(db)) == [("truncated", 91)]


def test_records_after_the_last_head_are_reported_uncovered(db: Path) -> None:
    fill(db, 120, sign_on_close=False)
    report = verify(db)
    assert report.ok and report.head is not None and report.head.seq == 100
    assert any("not yet covered" in w for w in report.warnings)


def test_a_forged_head_signature_is_named(db: Path) -> None:
    fill(db, 120)
    sql(db, "UPDATE audit_heads SET signature=? WHERE seq=100",
        params=(Ed25519PrivateKey.generate().sign(b"anything").hex(),))
    assert kinds(verify(db)) == [("bad_signature", 100)]


def test_a_chain_rewritten_with_the_hmac_key_is_caught_by_its_head(db: Path) -> None:
    fill(db, 120)
    with AuditLog(db, sign_on_close=False) as log:
        key = log._key
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute("DELETE FROM audit_log WHERE seq >= 50")
            prev = str(conn.execute("SELECT mac FROM audit_log WHERE seq=49").fetchone()[0])
            for seq in range(50, 121):
                r = AuditRecord(seq=seq, time_us=1, actor="mallory", action="tool.call",
                                subject="x", outcome="ok", prev_mac=prev)
                mac = hmac.new(key, prev.encode() + b"\n" + r.content(), sha256).hexdigest()
                conn.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?,?)",
                             (seq, 1, "mallory", "tool.call", "x", "ok", "[]", "", prev, mac))
                prev = mac
    finally:
        conn.close()
    assert kinds(verify(db)) == [("rewritten", 100), ("rewritten", 120)]


def test_a_pinned_public_key_rejects_heads_signed_by_another(db: Path, tmp_path: Path) -> None:
    fill(db, 100)
    other = Ed25519PrivateKey.generate()
    with AuditLog(db, sign_on_close=False) as log:
        assert log.verify(public_key=log.public_key_pem()).ok
        report = log.verify(public_key=other.public_key())
    assert kinds(report) == [("bad_signature", 100)]


@pytest.mark.parametrize("fields", [
    {"subject": "mail to alice@example.com"},
    {"detail": "card 4111 1111 1111 1111"},
    {"detail": "card 4111-1111-1111-1111"},
    {"actor": "+33612345678"},
    {"outcome": "iban FR7630006000011234567890189"[:17] + " 123456789"},
    {"data_classes": ["alice@example.com"]},
    {"data_classes": ["4111111111111111"]},
    {"action": "Tool Call"},
])
def test_personal_values_are_refused(db: Path, fields: dict[str, object]) -> None:
    args: dict[str, object] = {"actor": "alice", "action": "tool.call", "subject": "run-1"}
    with AuditLog(db) as log, pytest.raises(ValueError) as info:
        log.append(**{**args, **fields})  # type: ignore[arg-type]
    assert "alice@example.com" not in str(info.value) and "4111" not in str(info.value)
    with AuditLog(db) as log:
        assert list(log.records()) == []


def test_ids_and_dates_are_not_mistaken_for_personal_values(db: Path) -> None:
    with AuditLog(db) as log:
        for subject in ["20261124-232404-a1b2c3", "3f2b8c1e9d4a4b7c8e0f123456789abc",
                        "run 2026-11-24", "task extract.v2"]:
            log.append(actor="svc:billing", action="run.start", subject=subject,
                       data_classes=["EMAIL", "CARD"])
        assert log.verify().ok


def test_export_writes_one_json_record_per_line(db: Path, tmp_path: Path) -> None:
    fill(db, 5)
    with AuditLog(db) as log:
        stream = io.StringIO()
        assert log.export(stream) == 5
        assert log.export(tmp_path / "out.jsonl", after=3) == 2
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["seq"] for r in lines] == [1, 2, 3, 4, 5]
    assert lines[0]["prev_mac"] == GENESIS
    assert all(b["prev_mac"] == a["mac"] for a, b in itertools.pairwise(lines))
    assert set(lines[0]) >= {"seq", "time", "actor", "action", "subject", "outcome",
                             "data_classes", "mac", "prev_mac"}
    assert [json.loads(x)["seq"] for x in (tmp_path / "out.jsonl").read_text().splitlines()
            ] == [4, 5]


def test_keys_are_created_private_and_reused(db: Path, home: Path) -> None:
    fill(db, 100)
    for name in ("audit.key", "audit_signing.key"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600
    assert verify(db).ok  # the same keys are read back


def test_the_key_may_come_from_the_environment(db: Path, home: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    key = os.urandom(32)
    monkeypatch.setenv("PODIUM_AUDIT_KEY", key.hex())
    fill(db, 10)
    monkeypatch.setenv("PODIUM_AUDIT_KEY", base64.b64encode(key).decode())
    assert verify(db).ok
    assert not (home / "audit.key").exists()
    monkeypatch.setenv("PODIUM_AUDIT_KEY", os.urandom(32).hex())
    with pytest.raises(AuditKeyMismatch, match="PODIUM_AUDIT_KEY"):
        AuditLog(db)


def test_threads_appending_keep_one_chain(db: Path) -> None:
    shared = AuditLog(db, sign_every=25)
    try:
        def work(own: bool) -> None:
            log = AuditLog(db, sign_every=25) if own else shared
            try:
                for i in range(40):
                    log.append(actor="svc", action="memory.write", subject=f"ns-{i}")
            finally:
                if own:
                    log.close()

        threads = [threading.Thread(target=work, args=(i % 2 == 0,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        shared.close()
    report = verify(db)
    assert report.ok, report
    assert report.records == report.chain_length == 320


CHILD = """
import sys
from podium.security import AuditLog
with AuditLog(sys.argv[1], sign_every=30) as log:
    for i in range(60):
        log.append(actor="svc", action="tool.call", subject=f"task-{i}")
"""


def test_processes_appending_keep_one_chain(db: Path) -> None:
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(db)]) for _ in range(4)]
    assert [c.wait(timeout=120) for c in children] == [0, 0, 0, 0]
    report = verify(db)
    assert report.ok, report
    assert report.records == 240


def test_verify_command_exit_codes(db: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    fill(db, 10)
    assert audit_verify_command(db) == 0
    assert "OK" in capsys.readouterr().out
    sql(db, "UPDATE audit_log SET subject='run-9' WHERE seq=4")
    assert audit_verify_command(db) == 1
    out = capsys.readouterr().out
    assert "TAMPERED" in out and "#4 edited" in out
    assert audit_verify_command(tmp_path / "missing.db") == 2


def test_export_command(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(db, 3)
    assert audit_export_command(db, None) == 0
    assert [json.loads(x)["seq"] for x in capsys.readouterr().out.splitlines()] == [1, 2, 3]
    assert audit_export_command(db, tmp_path / "a.jsonl") == 0
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 3
