"""The SQLite journal's side of per-event checksums (`store/_sums.py`): giving rows written
before checksums existed theirs, and naming the event SQLite cannot read in a damaged file."""

from __future__ import annotations

from pathlib import Path

from podium.errors import JournalDamaged
from podium.store.keys import DataKeys
from podium.store.sql import Flow, count, many, one, rows


def migrate_sums(keys: DataKeys) -> Flow[bool]:
    """Give rows written before checksums existed theirs, once; whether every row has one.

    Until every row has one (sealed rows need their master key), rows without are read
    unchecked; from then on (the meta row `event_sums`) a row without one is damage.
    """
    if (yield one("SELECT value FROM meta WHERE key = 'event_sums'")) is not None:
        return True
    columns = yield rows("PRAGMA table_info(events)")
    if "sum" not in {r[1] for r in columns}:
        yield count("ALTER TABLE events ADD COLUMN sum BLOB")
    found = yield rows("SELECT run_id, seq, type, task, data, ts FROM events WHERE sum IS NULL")
    sums = []
    for row in found:
        sums.append(((yield from keys.sum_of(*row)), row[0], row[1]))
    yield many("UPDATE events SET sum = ? WHERE run_id = ? AND seq = ?",
               [s for s in sums if s[0] is not None])
    if any(s[0] is None for s in sums):
        return False
    yield count("INSERT INTO meta VALUES ('event_sums', 'all')")
    return True


def locate(path: Path, run_id: str, after: int, last_seq: int | None,
           error: JournalDamaged) -> Flow[JournalDamaged]:
    """SQLite found the file damaged while reading a run's events: the error naming the
    first event it cannot read (one row at a time, only on this error path)."""
    why = str(error).removeprefix(f"{path}: ")
    seq = after + 1
    while last_seq is None or seq <= last_seq:
        try:
            row = yield one("SELECT seq, type, task, data, ts, sum FROM events"
                            " WHERE run_id = ? AND seq = ?", run_id, seq)
        except JournalDamaged:
            return JournalDamaged(f"{path}: event {seq} of run {run_id!r} cannot be read: "
                                  f"{why}")
        if row is None and last_seq is None:
            break
        seq += 1
    return JournalDamaged(f"{path}: the events of run {run_id!r} cannot be read: {why}")
