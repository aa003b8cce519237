"""SQLite writes that wait out other writers: shared by the journal and the audit log."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from podium.errors import PodiumError

T = TypeVar("T")


class StoreLocked(PodiumError):
    """The database stayed locked by another writer for longer than we wait."""


def retrying(fn: Callable[[], T], path: Path, patience: float) -> T:
    """`fn()`, tried again while the database is locked (switching a new file to WAL
    needs it to itself, and SQLite may answer "locked" there without waiting).

    Raises:
        StoreLocked: still locked after `patience` seconds.
    """
    deadline = time.monotonic() + patience
    delay = 0.005
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            if time.monotonic() > deadline:
                raise StoreLocked(f"{path}: still locked by another writer after "
                                  f"{patience:.0f}s; is a process stuck?") from e
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def write(db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T], path: Path,
          patience: float) -> T:
    """Run `fn` in one write transaction, taking the write lock up front (`BEGIN
    IMMEDIATE`) so writers queue instead of deadlocking."""
    retrying(lambda: db.execute("BEGIN IMMEDIATE"), path, patience)
    try:
        result = fn(db)
        db.execute("COMMIT")
    except BaseException:
        # SQLite ends the transaction itself on some errors (a full disk): a ROLLBACK then
        # would fail and hide the error that matters.
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result
