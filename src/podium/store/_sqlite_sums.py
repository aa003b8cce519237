"""The SQLite journal's side of per-event checksums (`store/_sums.py`): giving rows written
before checksums existed theirs, and naming the event SQLite cannot read in a damaged file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from podium.errors import JournalDamaged
from podium.store._keys import DataKeys


def migrate_sums(db: sqlite3.Connection, keys: DataKeys) -> bool:
    """Give rows written before checksums existed theirs, once; whether every row has one.

    Until every row has one (sealed rows need their master key), rows without are read
    unchecked; from then on (the meta row `event_sums`) a row without one is damage.
    """
    if db.execute("SELECT value FROM meta WHERE key = 'event_sums'").fetchone() is not None:
        return True
    if "sum" not in {r[1] for r in db.execute("PRAGMA table_info(events)")}:
        db.execute("ALTER TABLE events ADD COLUMN sum BLOB")
    rows = db.execute("SELECT run_id, seq, type, task, data, ts FROM events"
                      " WHERE sum IS NULL").fetchall()
    sums = [(keys.sum_of(db, *row), row[0], row[1]) for row in rows]
    db.executemany("UPDATE events SET sum = ? WHERE run_id = ? AND seq = ?",
                   [s for s in sums if s[0] is not None])
    if any(s[0] is None for s in sums):
        return False
    db.execute("INSERT INTO meta VALUES ('event_sums', 'all')")
    return True


def locate(db: sqlite3.Connection, path: Path, run_id: str, after: int, last_seq: int | None,
           error: JournalDamaged) -> JournalDamaged:
    """SQLite found the file damaged while reading a run's events: the error naming the
    first event it cannot read (one row at a time, only on this error path)."""
    why = str(error).removeprefix(f"{path}: ")
    seq = after + 1
    while last_seq is None or seq <= last_seq:
        try:
            row = db.execute("SELECT seq, type, task, data, ts, sum FROM events"
                             " WHERE run_id = ? AND seq = ?", (run_id, seq)).fetchone()
        except JournalDamaged:
            return JournalDamaged(f"{path}: event {seq} of run {run_id!r} cannot be read: "
                                  f"{why}")
        if row is None and last_seq is None:
            break
        seq += 1
    return JournalDamaged(f"{path}: the events of run {run_id!r} cannot be read: {why}")
