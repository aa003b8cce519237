"""The embedded journal: one SQLite file in WAL mode. The operations are `Store`'s
(`store/base.py`); this module opens the file and runs them on it.

Writes take the database's write lock up front (`BEGIN IMMEDIATE`), so concurrent writers,
in this process or others, queue on SQLite's busy handler instead of deadlocking; a lock
held longer than that is retried with backoff, and only a lock that never frees reaches the
caller, as an error that says which file is locked.

`synchronous=NORMAL` in WAL mode keeps every committed event through a crash of the
process; only a power failure can lose the last commits.

Statements run on the event loop's thread: each is short (tens of microseconds), and a
thread hop per event would cost more than it saves.

With a master key (see `podium.security.crypto`), event payloads, the reply cache, masking
vaults and sealed values are encrypted with AES-256-GCM under data keys kept in the file,
wrapped by the master key (`store/keys.py`). Event types, task keys, sequence numbers and
times stay in clear: they say what happened, not with what data. Circuit rows hold an agent
name, a count and a time, and stay in clear too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from podium.core.events import NewEvent
from podium.errors import JournalDamaged, PodiumError
from podium.security.audit import AuditLog
from podium.security.crypto import Keyring
from podium.sqlite_files import connect, retrying, write
from podium.store._sqlite_sums import locate, migrate_sums
from podium.store.base import Store, Stored
from podium.store.keys import DATA_KEYS_SCHEMA
from podium.store.sql import Flow, Query, count, many, one, rows, run_sqlite

T = TypeVar("T")
SCHEMA_VERSION = 1
_EVENTS = """
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    task TEXT,
    data TEXT NOT NULL,
    ts REAL NOT NULL,
    sum BLOB,
    PRIMARY KEY (run_id, seq)"""
"""The events table's columns. It is a rowid table, its key an index beside it: a WITHOUT
ROWID table keeps its rows in an index b-tree, whose cells hold at most about 1,000 bytes
on 4 KB pages, so every event over that (a task's 1 KB output) took an overflow page of
its own (4.9 KB per task, where the rowid table takes 1.5 KB)."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    last_seq INTEGER NOT NULL,
    owner TEXT,
    owner_pid INTEGER,
    owner_host TEXT,
    lease_until REAL
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
CREATE TABLE IF NOT EXISTS events (""" + _EVENTS + """
);
CREATE TABLE IF NOT EXISTS circuits (
    agent TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    opened_at REAL
);
CREATE TABLE IF NOT EXISTS model_cache (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created REAL NOT NULL
);
""" + DATA_KEYS_SCHEMA + """
CREATE TABLE IF NOT EXISTS vaults (
    run_id TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    updated REAL NOT NULL
)
"""
_INSERT_EVENT = ("INSERT INTO events (run_id, seq, type, task, data, ts, sum)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?)")


def _events_with_rowids() -> Flow[bool]:
    """Move the events of a journal written when they were kept WITHOUT ROWID into the
    rowid table, once, in one transaction (a crash leaves the old table whole); whether
    they moved."""
    made = yield one("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'")
    if "WITHOUT ROWID" not in made[0].upper():
        return False
    columns = ", ".join(r[1] for r in (yield rows("PRAGMA table_info(events)")))
    yield count("CREATE TABLE events_rowid (" + _EVENTS + ")")
    yield count(f"INSERT INTO events_rowid ({columns}) SELECT {columns} FROM events"
                " ORDER BY run_id, seq")
    yield count("DROP TABLE events")
    yield count("ALTER TABLE events_rowid RENAME TO events")
    return True


class SQLiteStore(Store):
    """The journal in a SQLite file.

    Args:
        path: the database file; created with its folder if missing.
        busy_timeout: seconds to wait for another writer's lock before retrying.
        lock_patience: seconds of retries after which a lock is reported as an error.
        keys: the master keys to encrypt with; by default those configured in the
            environment (`load_keyring`); None stores data unencrypted.
        audit: where key rotations and crypto-shredding are recorded
            (`podium.security.key_audit`); None: nowhere. The store does not close it.
        actor: who those records name as having acted.
    """

    _RUNS = "the runs table"
    _GET_CACHE = "SELECT value, NULL FROM model_cache WHERE key = ?"
    _PUT_CACHE = ("INSERT INTO model_cache VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                  " value = excluded.value, created = excluded.created")
    _GET_VAULT = "SELECT data, NULL FROM vaults WHERE run_id = ?"
    _PUT_VAULT = ("INSERT INTO vaults VALUES (?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET"
                  " data = excluded.data, updated = excluded.updated")

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0,
                 lock_patience: float = 120.0,
                 keys: Keyring | Literal["env"] | None = "env",
                 audit: AuditLog | None = None, actor: str = "engine") -> None:
        super().__init__(keys=keys, location=str(path), audit=audit, actor=actor)
        self.path = Path(path)
        self._patience = lock_patience
        self._db = connect(self.path, timeout=busy_timeout)
        try:
            retrying(lambda: self._db.execute("PRAGMA journal_mode=WAL"), self.path,
                     self._patience)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            # Shredded keys and re-wrapped ones must not linger in free pages.
            self._db.execute("PRAGMA secure_delete=ON")
            self._sums_required = write(self._db, lambda db: run_sqlite(db, self._schema()),
                                        self.path, self._patience)
            self._move_events()
        except BaseException:
            self._db.close()
            raise

    @property
    def location(self) -> str:
        return str(self.path)

    def _move_events(self) -> None:
        """Give a journal whose events are kept WITHOUT ROWID the rowid table, then the
        pages they left back to the file system (best effort: free pages are used again)."""
        try:
            moved = write(self._db, lambda db: run_sqlite(db, _events_with_rowids()),
                          self.path, self._patience)
        except (JournalDamaged, sqlite3.IntegrityError):
            return  # a damaged file keeps its table, to be read as far as it can be
        if not moved:
            return
        try:
            retrying(lambda: self._db.execute("VACUUM"), self.path, 5.0)
        except (sqlite3.Error, PodiumError):
            pass

    def _schema(self) -> Flow[bool]:
        """Make the tables, or bring an older file's up to date; whether every event row
        has a checksum."""
        # executescript() would commit the open transaction; run statements one by one.
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                yield count(statement)
        row = yield one("SELECT value FROM meta WHERE key='schema'")
        if row is None:
            yield count("INSERT INTO meta VALUES ('schema', ?)", str(SCHEMA_VERSION))
        elif int(row[0]) > SCHEMA_VERSION:
            raise PodiumError(f"{self.path}: journal schema {row[0]} is newer than this "
                              f"Podium understands ({SCHEMA_VERSION}); upgrade Podium")
        # Journals written before sessions existed gain the column in place.
        columns = yield rows("PRAGMA table_info(runs)")
        if "session" not in {r[1] for r in columns}:
            yield count("ALTER TABLE runs ADD COLUMN session TEXT")
        yield count("CREATE INDEX IF NOT EXISTS runs_session ON runs (session, started_at)")
        return (yield from migrate_sums(self._keys))

    # -- the primitives of Store -------------------------------------------------------

    async def _read(self, flow: Flow[T]) -> T:
        return run_sqlite(self._db, flow)

    async def _write(self, flow: Flow[T], *, atomic: bool = True) -> T:
        # One way to write: with the write lock taken up front, retried while others hold it.
        return write(self._db, lambda db: run_sqlite(db, flow), self.path, self._patience)

    def _insert_events(self, run_id: str, first: int, ts: float, events: Sequence[NewEvent],
                       stored: Sequence[Stored]) -> Query:
        return many(_INSERT_EVENT, [(run_id, first + i, e.type, e.task, data, ts, checksum)
                                    for i, (e, (data, checksum))
                                    in enumerate(zip(events, stored, strict=True))])

    def _payload_params(self, payload: str | bytes) -> tuple[Any, ...]:
        return (payload,)

    def _unreadable(self, run_id: str, after: int, last_seq: int | None,
                    error: JournalDamaged) -> Flow[JournalDamaged]:
        return locate(self.path, run_id, after, last_seq, error)

    async def _reclaim(self, *tables: str) -> None:
        """Move the WAL into the file and empty it, so that destroyed keys leave no copy in
        it (best effort: a reader holding an old snapshot makes SQLite skip part of it)."""
        retrying(lambda: self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall(),
                 self.path, self._patience)

    async def close(self) -> None:
        self._db.close()
