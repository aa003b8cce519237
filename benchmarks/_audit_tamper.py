"""Ways to tamper with an audit log, as someone who can write its database would: shared
by `benchmarks/security.py` (how many are detected) and `tests/unit/test_audit_tamper.py`.

Each tamper takes a log made by `make_log` (130 records, heads signed at 50, 100 and on
close at 130, all witnessed) and changes its database file directly. `EXPECTED` names the
finding `podium audit verify` must report for each; `UNDETECTABLE` is the documented limit.
"""

from __future__ import annotations

import hmac
import sqlite3
from collections.abc import Callable
from contextlib import closing
from hashlib import sha256
from pathlib import Path

from podium.security import AuditLog
from podium.security import _audit_keys as keys
from podium.security.audit import GENESIS, AuditRecord, SignedHead

RECORDS = 130


def make_log(db: Path, *, sign_on_close: bool = True) -> None:
    """A log of `RECORDS` records, heads signed every 50 (and on close)."""
    with AuditLog(db, sign_every=50, sign_on_close=sign_on_close) as log:
        for i in range(RECORDS):
            log.append(actor="alice", action="tool.call", subject=f"run-{i % 7}/task-{i}",
                       outcome="ok" if i % 3 else "denied", data_classes=["EMAIL"])


def _sql(db: Path, *statements: str) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:
        for statement in statements:
            conn.execute(statement)


def _forge_chain(db: Path, count: int, *, resign: bool) -> None:
    """Replace the whole chain with `count` records MACed with the HMAC key (which sits
    beside the log by default); with `resign`, also replace the database's heads, signed
    with the signing key (as someone who stole it too would)."""
    key = keys.load_audit_key()
    signer = keys.load_signing_key(keys.signing_key_path(), create=False)
    assert signer is not None
    prev = GENESIS
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("DELETE FROM audit_log")
        conn.execute("DELETE FROM audit_heads")
        for seq in range(1, count + 1):
            record = AuditRecord(seq=seq, time_us=1_000_000 + seq, actor="mallory",
                                 action="tool.call", subject=f"x{seq}", outcome="ok",
                                 prev_mac=prev)
            mac = hmac.new(key, prev.encode() + b"\n" + record.content(), sha256).hexdigest()
            conn.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?,?)",
                         (seq, record.time_us, "mallory", "tool.call", f"x{seq}", "ok", "[]",
                          "", prev, mac))
            prev = mac
        if resign:
            head = SignedHead(seq=count, mac=prev, time_us=2_000_000,
                              key_id=keys.key_id(signer.public_key()), signature="")
            conn.execute("INSERT INTO audit_heads VALUES (?,?,?,?,?)",
                         (head.seq, head.mac, head.time_us, head.key_id,
                          signer.sign(head.message()).hex()))


def _replace_file(db: Path) -> None:
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)
    with AuditLog(db) as log:
        log.append(actor="mallory", action="run.start", subject="fresh")


def _insert(db: Path) -> None:
    _sql(db, "UPDATE audit_log SET seq = -(seq + 1) WHERE seq > 30",
         "UPDATE audit_log SET seq = -seq WHERE seq < 0",
         "INSERT INTO audit_log SELECT 31, time_us, 'mallory', action, subject, outcome,"
         " data_classes, detail, prev_mac, mac FROM audit_log WHERE seq = 30")


TAMPERS: dict[str, Callable[[Path], None]] = {
    "edit": lambda db: _sql(db, "UPDATE audit_log SET actor = 'eve' WHERE seq = 40"),
    "delete_middle": lambda db: _sql(db, "DELETE FROM audit_log WHERE seq = 60"),
    "reorder": lambda db: _sql(db, "UPDATE audit_log SET seq = -1 WHERE seq = 70",
                               "UPDATE audit_log SET seq = 70 WHERE seq = 71",
                               "UPDATE audit_log SET seq = 71 WHERE seq = -1"),
    "insert": _insert,
    "cut_newest_with_heads": lambda db: _sql(db, "DELETE FROM audit_log WHERE seq > 100",
                                             "DELETE FROM audit_heads WHERE seq > 100"),
    "cut_to_40_all_heads": lambda db: _sql(db, "DELETE FROM audit_log WHERE seq > 40",
                                           "DELETE FROM audit_heads"),
    "empty_both_tables": lambda db: _sql(db, "DELETE FROM audit_log",
                                         "DELETE FROM audit_heads"),
    "rewrite_with_hmac_key": lambda db: _forge_chain(db, RECORDS, resign=False),
    "rewrite_with_both_keys": lambda db: _forge_chain(db, RECORDS, resign=True),
    "rewrite_shorter_with_both_keys": lambda db: _forge_chain(db, 20, resign=True),
    "replace_the_file": _replace_file,
}
"""Every tamper tried; each must be detected."""
EXPECTED: dict[str, str] = {
    "edit": "edited", "delete_middle": "deleted", "reorder": "reordered",
    "insert": "inserted", "cut_newest_with_heads": "truncated",
    "cut_to_40_all_heads": "truncated", "empty_both_tables": "emptied",
    "rewrite_with_hmac_key": "rewritten", "rewrite_with_both_keys": "rewritten",
    "rewrite_shorter_with_both_keys": "truncated", "replace_the_file": "replaced",
}
"""The finding kind each tamper must produce."""
UNDETECTABLE = "cut_after_the_last_head"
"""Records appended after the last signed head, cut with nothing else (heads are signed
every `sign_every` records and whenever a process that appended closes its log): verify
cannot see it, and warns that those records are not yet covered."""


def cut_after_the_last_head(db: Path) -> None:
    """The documented limit: on a log made with `sign_on_close=False` (last head at 100),
    cut records 101-130."""
    _sql(db, "DELETE FROM audit_log WHERE seq > 100")
