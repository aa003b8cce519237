"""The embedded journal: one SQLite file in WAL mode.

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
wrapped by the master key (`store/_keys.py`). Event types, task keys, sequence numbers and
times stay in clear: they say what happened, not with what data. Circuit rows hold an agent
name, a count and a time, and stay in clear too.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from podium._sqlite import connect, retrying, write
from podium.core.events import ERASED, RUN_ENDS, Event, NewEvent
from podium.errors import JournalDamaged, PodiumError, RunBusy, UnknownRun
from podium.security import key_audit
from podium.security.audit import AuditLog
from podium.security.crypto import KeyConfigError, Keyring, MasterKey, context, load_keyring
from podium.store._common import RUN_STATUS, busy, holds, like_prefix, one_run
from podium.store._common import dumps as _dumps
from podium.store._common import new_owner as new_owner
from podium.store._keys import SCHEMA as KEYS_SCHEMA
from podium.store._keys import DataKeys, run_owner, subject_owner
from podium.store._sqlite_sums import locate, migrate_sums
from podium.store._sums import check_count, event_sum
from podium.store.base import (
    CircuitState,
    Conflict,
    KeyStatus,
    LeaseLost,
    Owner,
    RunSummary,
    Store,
)

T = TypeVar("T")
SCHEMA_VERSION = 1
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
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    task TEXT,
    data TEXT NOT NULL,
    ts REAL NOT NULL,
    sum BLOB,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
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
""" + KEYS_SCHEMA
_INSERT_EVENT = ("INSERT INTO events (run_id, seq, type, task, data, ts, sum)"
                 " VALUES (?,?,?,?,?,?,?)")


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

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0,
                 lock_patience: float = 120.0,
                 keys: Keyring | Literal["env"] | None = "env",
                 audit: AuditLog | None = None, actor: str = "engine") -> None:
        self.audit, self.actor = audit, actor
        self.keyring = load_keyring() if keys == "env" else keys
        self.path = Path(path)
        self._keys = DataKeys(self.keyring, str(self.path))
        self._patience = lock_patience
        self._sums_required = False
        self._db = connect(self.path, timeout=busy_timeout)
        try:
            self._retrying(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            # Shredded keys and re-wrapped ones must not linger in free pages.
            self._db.execute("PRAGMA secure_delete=ON")
            self._write(self._create_schema)
        except BaseException:
            self._db.close()
            raise

    @property
    def location(self) -> str:
        return str(self.path)

    def _create_schema(self, db: sqlite3.Connection) -> None:
        # executescript() would commit the open transaction; run statements one by one.
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise PodiumError(f"{self.path}: journal schema {row[0]} is newer than this "
                              f"Podium understands ({SCHEMA_VERSION}); upgrade Podium")
        # Journals written before sessions existed gain the column in place.
        columns = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
        if "session" not in columns:
            db.execute("ALTER TABLE runs ADD COLUMN session TEXT")
        db.execute("CREATE INDEX IF NOT EXISTS runs_session ON runs (session, started_at)")
        self._migrate_sums(db)

    def _migrate_sums(self, db: sqlite3.Connection) -> None:
        self._sums_required = migrate_sums(db, self._keys)

    def _retrying(self, fn: Callable[[], T]) -> T:
        return retrying(fn, self.path, self._patience)

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in one write transaction, retrying while another writer holds the lock."""
        return write(self._db, fn, self.path, self._patience)

    # -- runs and events --------------------------------------------------------------

    async def create_run(self, run_id: str, workflow: str, first: NewEvent, owner: Owner) -> Event:
        now = time.time()

        def create(db: sqlite3.Connection) -> Event:
            db.execute(
                "INSERT INTO runs (run_id, workflow, status, started_at, updated_at, last_seq,"
                " owner, owner_pid, owner_host, lease_until, session)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, workflow, "running", now, now, 1, owner.token, owner.pid, owner.host,
                 now + 60, first.data.get("session")),
            )
            data, checksum = self._keys.encode_event(db, run_id, 1, first.type, first.task,
                                                     first.data, first.subject, now)
            db.execute(_INSERT_EVENT, (run_id, 1, first.type, first.task, data, now, checksum))
            return Event(run_id=run_id, seq=1, type=first.type, task=first.task,
                         data=first.data, ts=now)

        return self._write(create)

    async def append(
        self, run_id: str, events: Sequence[NewEvent], owner: Owner | None,
        *, expect_last: int | None = None, release: bool = False,
    ) -> list[Event]:
        if not events:
            return []
        status = next((RUN_STATUS[e.type] for e in reversed(events) if e.type in RUN_STATUS),
                      None)
        ends = any(e.type in RUN_ENDS for e in events)

        def append(db: sqlite3.Connection) -> list[Event]:
            now = time.time()
            n = len(events)
            sets = "last_seq = last_seq + ?, updated_at = ?"
            params: list[object] = [n, now]
            if status is not None:
                sets += ", status = ?"
                params.append(status)
            if ends:
                sets += ", finished_at = ?"
                params.append(now)
            if release:
                sets += ", owner = NULL, owner_pid = NULL, owner_host = NULL, lease_until = NULL"
            where = "run_id = ?"
            params.append(run_id)
            if owner is not None:
                where += " AND owner = ?"
                params.append(owner.token)
            if expect_last is not None:
                where += " AND last_seq = ?"
                params.append(expect_last)
            row = db.execute(f"UPDATE runs SET {sets} WHERE {where} RETURNING last_seq",
                             params).fetchone()
            if row is None:
                self._missing_or_lost(db, run_id, owner)
                raise Conflict(f"run {run_id!r} has events past {expect_last}")
            first = row[0] - n + 1
            encode = self._keys.encode_event
            rows = []
            for i, e in enumerate(events):
                data, checksum = encode(db, run_id, first + i, e.type, e.task, e.data,
                                        e.subject, now)
                rows.append((run_id, first + i, e.type, e.task, data, now, checksum))
            db.executemany(_INSERT_EVENT, rows)
            return [Event(run_id=run_id, seq=first + i, type=e.type, task=e.task, data=e.data,
                          ts=now) for i, e in enumerate(events)]

        return self._write(append)

    @staticmethod
    def _missing_or_lost(db: sqlite3.Connection, run_id: str, owner: Owner | None) -> None:
        row = db.execute("SELECT owner FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise UnknownRun(f"no run {run_id!r} in the journal")
        if owner is not None and row[0] != owner.token:
            raise LeaseLost(f"run {run_id!r} was taken over by another process")

    async def events(self, run_id: str, after: int = 0) -> list[Event]:
        db = self._db
        # The count first: events only grow, so fewer than it counts means damage.
        run = db.execute("SELECT last_seq, EXISTS (SELECT 1 FROM data_keys WHERE owner = ?)"
                         " FROM runs WHERE run_id = ?", (run_owner(run_id), run_id)).fetchone()
        try:
            rows = db.execute(
                "SELECT seq, type, task, data, ts, sum FROM events WHERE run_id = ? AND seq > ?"
                " ORDER BY seq", (run_id, after)).fetchall()
        except JournalDamaged as e:
            raise locate(db, self.path, run_id, after, None if run is None else run[0],
                         e) from e
        if run is None:
            if not rows and after == 0:
                raise UnknownRun(f"no run {run_id!r} in the journal")
            if rows:
                raise JournalDamaged(f"{self.path}: run {run_id!r} has events but no record "
                                     "in the runs table: the journal is damaged")
        check_count(str(self.path), run_id, after, [r[0] for r in rows],
                    None if run is None else run[0])
        decode = self._keys.decode_event
        sealed, required = bool(run and run[1]), self._sums_required
        return [Event(run_id=run_id, seq=s, type=t, task=k,
                      data=decode(db, run_id, s, t, k, d, ts, c, sealed_run=sealed,
                                  required=required), ts=ts)
                for s, t, k, d, ts, c in rows]

    async def runs(self, limit: int = 50, status: str | None = None) -> list[RunSummary]:
        query = ("SELECT run_id, workflow, status, started_at, updated_at, finished_at, last_seq"
                 " FROM runs")
        params: tuple[object, ...] = ()
        if status:
            query += " WHERE status = ?"
            params = (status,)
        query += " ORDER BY started_at DESC LIMIT ?"
        rows = self._db.execute(query, (*params, limit)).fetchall()
        return [RunSummary(run_id=r[0], workflow=r[1], status=r[2], started_at=r[3],
                           updated_at=r[4], finished_at=r[5], events=r[6]) for r in rows]

    async def session_runs(self, session: str) -> list[str]:
        rows = self._db.execute(
            "SELECT run_id FROM runs WHERE session = ? ORDER BY started_at, rowid",
            (session,)).fetchall()
        return [r[0] for r in rows]

    async def find_run(self, prefix: str) -> str:
        rows = self._db.execute(
            "SELECT run_id FROM runs WHERE run_id = ? OR run_id LIKE ? ESCAPE '\\' LIMIT 3",
            (prefix, like_prefix(prefix))).fetchall()
        return one_run(prefix, {str(r[0]) for r in rows}, self.path)

    # -- leases -----------------------------------------------------------------------

    async def acquire(self, run_id: str, owner: Owner, lease: float) -> Owner | None:
        def acquire(db: sqlite3.Connection) -> Owner | None:
            row = db.execute("SELECT owner, owner_pid, owner_host, lease_until FROM runs"
                             " WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise UnknownRun(f"no run {run_id!r} in the journal")
            token, pid, host, until = row
            now = time.time()
            if token is not None and token != owner.token and until is not None and until > now:
                holder = Owner(token=token, pid=pid, host=host)
                if holds(holder, owner):
                    return holder
            db.execute("UPDATE runs SET owner = ?, owner_pid = ?, owner_host = ?,"
                       " lease_until = ? WHERE run_id = ?",
                       (owner.token, owner.pid, owner.host, now + lease, run_id))
            return None

        return self._write(acquire)

    async def renew(self, run_id: str, owner: Owner, lease: float) -> None:
        def renew(db: sqlite3.Connection) -> None:
            cur = db.execute("UPDATE runs SET lease_until = ? WHERE run_id = ? AND owner = ?",
                             (time.time() + lease, run_id, owner.token))
            if cur.rowcount == 0:
                self._missing_or_lost(db, run_id, owner)
                raise LeaseLost(f"run {run_id!r} was taken over by another process")

        self._write(renew)

    async def release(self, run_id: str, owner: Owner) -> None:
        self._write(lambda db: db.execute(
            "UPDATE runs SET owner = NULL, owner_pid = NULL, owner_host = NULL,"
            " lease_until = NULL WHERE run_id = ? AND owner = ?", (run_id, owner.token)))

    # -- circuits ---------------------------------------------------------------------

    async def circuit(self, agent: str) -> CircuitState:
        row = self._db.execute("SELECT failures, opened_at FROM circuits WHERE agent = ?",
                               (agent,)).fetchone()
        return CircuitState() if row is None else CircuitState(failures=row[0], opened_at=row[1])

    async def set_circuit(self, agent: str, state: CircuitState) -> None:
        self._write(lambda db: db.execute(
            "INSERT INTO circuits VALUES (?,?,?) ON CONFLICT (agent) DO UPDATE SET"
            " failures = excluded.failures, opened_at = excluded.opened_at",
            (agent, state.failures, state.opened_at)))

    # -- the reply cache -----------------------------------------------------------------

    async def cache_get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM model_cache WHERE key = ?",
                               (key,)).fetchone()
        if row is None:
            return None
        raw = row[0]
        if isinstance(raw, bytes):
            raw = self._keys.open(self._db, raw, context("cache", key), f"cached reply {key!r}")
            if raw is None:
                return None
        value: dict[str, Any] = json.loads(raw)
        return value

    async def cache_put(self, key: str, value: dict[str, Any]) -> None:
        text = _dumps(value)

        def put(db: sqlite3.Connection) -> None:
            if self.keyring is None:
                self._keys.refuse_downgrade(db)
            sealed = self._keys.seal_for(db, "cache", text.encode(), context("cache", key))
            db.execute("INSERT INTO model_cache VALUES (?,?,?) ON CONFLICT (key) DO UPDATE SET"
                       " value = excluded.value, created = excluded.created",
                       (key, text if sealed is None else sealed, time.time()))

        self._write(put)

    # -- encryption at rest --------------------------------------------------------------

    @property
    def encrypted(self) -> bool:
        return self.keyring is not None

    async def vault_get(self, run_id: str) -> dict[str, str] | None:
        row = self._db.execute("SELECT data FROM vaults WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        raw = row[0]
        if isinstance(raw, bytes):
            raw = self._keys.open(self._db, raw, context("vault", run_id),
                                  f"the masking vault of run {run_id!r}")
            if raw is None:
                return None
        entries: dict[str, str] = json.loads(raw)
        return entries

    async def vault_put(self, run_id: str, entries: dict[str, str]) -> None:
        text = _dumps(entries)

        def put(db: sqlite3.Connection) -> None:
            if self.keyring is None:
                self._keys.refuse_clear(db, run_id)
            sealed = self._keys.seal_for(db, run_owner(run_id), text.encode(),
                                         context("vault", run_id))
            db.execute("INSERT INTO vaults VALUES (?,?,?) ON CONFLICT (run_id) DO UPDATE SET"
                       " data = excluded.data, updated = excluded.updated",
                       (run_id, text if sealed is None else sealed, time.time()))

        self._write(put)

    async def seal(self, value: bytes, *, where: bytes, run_id: str | None = None,
                   subject: str | None = None) -> bytes:
        owner = (subject_owner(subject) if subject is not None
                 else run_owner(run_id) if run_id is not None else "store")

        def seal(db: sqlite3.Connection) -> bytes | None:
            if self.keyring is None:
                self._keys.refuse_downgrade(db)
            return self._keys.seal_for(db, owner, value, where)

        sealed = self._write(seal)
        return bytes([0]) + value if sealed is None else sealed

    async def unseal(self, blob: bytes, *, where: bytes) -> bytes | None:
        if blob[:1] == b"\x00":
            return blob[1:]
        return self._keys.open(self._db, blob, where, "a sealed value")

    async def shred_run(self, run_id: str) -> None:
        async def shred() -> tuple[int, bool]:
            done = self._write(self._shred_run(run_id))
            self._checkpoint()
            return done

        await key_audit.audited_shred_run(self, run_id, shred)

    def _shred_run(self, run_id: str) -> Callable[[sqlite3.Connection], tuple[int, bool]]:
        def shred(db: sqlite3.Connection) -> tuple[int, bool]:
            row = db.execute("SELECT owner_pid, owner_host, lease_until FROM runs WHERE"
                             " run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise UnknownRun(f"no run {run_id!r} in the journal")
            pid, host, until = row
            if until is not None and until > time.time() and busy(pid, host):
                raise RunBusy(f"run {run_id!r} is being executed by process {pid} on "
                              f"{host!r}; erase it once it stopped")
            keys = self._keys.shred(db, run_owner(run_id))
            if keys == 0:
                # Written with no master key: overwrite the payloads themselves.
                erased = _dumps({ERASED: "run"})
                rows = db.execute("SELECT seq, type, task, ts FROM events WHERE run_id = ?"
                                  " AND typeof(data) = 'text'", (run_id,)).fetchall()
                db.executemany("UPDATE events SET data = ?, sum = ? WHERE run_id = ? AND"
                               " seq = ?", [(erased, event_sum(run_id, s, t, k, erased, ts),
                                             run_id, s) for s, t, k, ts in rows])
            vault = db.execute("DELETE FROM vaults WHERE run_id = ?", (run_id,)).rowcount
            return keys, vault > 0

        return shred

    async def shred_subject(self, subject: str) -> int:
        async def shred() -> int:
            if self.keyring is None:
                raise KeyConfigError(
                    f"cannot erase subject {subject!r} by crypto-shredding: this journal is "
                    "not encrypted (no master key configured), so payloads tagged with a "
                    "subject were stored in clear; configure a master key (podium keys init)")
            shredded = self._write(lambda db: self._keys.shred(db, subject_owner(subject)))
            self._checkpoint()
            return shredded

        return await key_audit.audited_shred_subject(self, subject, shred)

    async def key_status(self) -> KeyStatus:
        return self._keys.status(self._db)

    async def rotate_master_key(self, new: MasterKey, *, batch: int = 100) -> int:
        """Re-wrap every data key under `new`, in small transactions so that runs go on.

        `keys` (given when the store was made) must hold `new` and the key(s) the data keys
        are wrapped with now. First `new` becomes the journal's current master key (data keys
        made from then on are wrapped with it); then the others are re-wrapped, `batch` per
        transaction. Returns how many were re-wrapped. Interrupted, it can simply be run again.

        Raises:
            KeyConfigError: no keys, `new` not among them, or a data key under a master key
                that is not among them.
        """
        async def rotate() -> int:
            if self.keyring is None or self.keyring.get(new.key_id) is None:
                raise KeyConfigError("rotating needs a store opened with the new master key "
                                     "and the current one")
            self._write(lambda db: self._keys.start_rotation(db, new))
            total = 0
            while n := self._write(lambda db: self._keys.rewrap(db, new, batch)):
                total += n
            self._checkpoint()
            return total

        previous = [k for k in self.keyring.ids() if k != new.key_id] if self.keyring else []
        return await key_audit.audited_rotation(self, new, previous, rotate)

    def _checkpoint(self) -> None:
        """Move the WAL into the file and empty it, so that destroyed keys leave no copy in
        it (best effort: a reader holding an old snapshot makes SQLite skip part of it)."""
        self._retrying(lambda: self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())

    async def close(self) -> None:
        self._db.close()

