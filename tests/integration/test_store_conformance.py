"""The conformance suite every journal store passes (`podium.testing.store_conformance`),
run for SQLite (a file) and PostgreSQL (a real server on loopback), with encryption at rest
off and on; and what only the SQLite journal does: older files brought up to date, WAL."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from podium import PostgresStore, SQLiteStore, Store
from podium.core.events import NewEvent
from podium.errors import JournalDamaged
from podium.security.crypto import Keyring, MasterKey
from podium.testing.store_conformance import START, StoreConformance, owner
from tests.integration._postgres import PostgresServer

MASTER = Keyring(keys=(MasterKey(secret=bytes(range(32)), source="test"),))


class TestSQLite(StoreConformance):
    @pytest.fixture
    def journal(self, tmp_path: Path) -> str:
        return str(tmp_path / "journal.db")

    def open_store(self, journal: str, *, keys: Keyring | None) -> Store:
        return SQLiteStore(journal, keys=keys)

    def alter(self, journal: str, statement: str, *params: object) -> None:
        with closing(sqlite3.connect(journal)) as conn, conn:
            conn.execute(statement.format(events="events").replace("%s", "?"), params)


class TestSQLiteEncrypted(TestSQLite):
    keys = MASTER


class TestPostgres(StoreConformance):
    @pytest.fixture
    def journal(self, pg_server: PostgresServer) -> str:
        return pg_server.fresh_schema()

    def open_store(self, journal: str, *, keys: Keyring | None) -> Store:
        return PostgresStore(journal, keys=keys)

    def alter(self, journal: str, statement: str, *params: object) -> None:
        with psycopg.connect(journal, autocommit=True) as conn:
            conn.execute(statement.format(events="podium_events"), params)  # type: ignore[arg-type]


class TestPostgresEncrypted(TestPostgres):
    keys = MASTER


async def test_a_sqlite_journal_from_before_sessions_gains_them(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "j.db") as db:
        db.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, status"
                   " TEXT NOT NULL, started_at REAL NOT NULL, updated_at REAL NOT NULL,"
                   " finished_at REAL, last_seq INTEGER NOT NULL, owner TEXT, owner_pid"
                   " INTEGER, owner_host TEXT, lease_until REAL)")
    db.close()
    store = SQLiteStore(tmp_path / "j.db")
    try:
        await store.create_run("r", "w", NewEvent(type="run_started", data={
            "workflow": "w", "session": "s"}), owner("a"))
        assert await store.session_runs("s") == ["r"]
    finally:
        await store.close()


def test_sqlite_journal_is_wal_and_intact(tmp_path: Path) -> None:
    asyncio.run(_fill(tmp_path / "j.db"))
    with sqlite3.connect(tmp_path / "j.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


async def test_a_sqlite_journal_from_before_the_reply_cache_gains_it(tmp_path: Path) -> None:
    await _fill(tmp_path / "j.db")
    with sqlite3.connect(tmp_path / "j.db") as db:
        db.execute("DROP TABLE model_cache")
    db.close()
    store = SQLiteStore(tmp_path / "j.db", keys=None)
    try:
        await store.cache_put("k", {"text": "t"})
        assert await store.cache_get("k") == {"text": "t"}
        assert [e.type for e in await store.events("r")] == ["run_started"]
    finally:
        await store.close()


async def _fill(path: Path) -> None:
    store = SQLiteStore(path, keys=None)
    await store.create_run("r", "w", START, owner("a"))
    await store.close()


def test_many_processes_opening_a_new_journal_at_once(tmp_path: Path) -> None:
    """Switching a file to WAL, and the checkpoint when the last connection closes, need
    the file alone; SQLite may answer "locked" there without waiting."""
    import subprocess
    import sys

    script = (
        "import asyncio, os, sys, time\n"
        "from podium import SQLiteStore\n"
        "from podium.core.events import NewEvent\n"
        "from podium.store import new_owner\n"
        "go = float(sys.argv[2])\n"
        "while time.time() < go: pass\n"
        "async def main():\n"
        "    for i in range(25):  # each close of the last connection checkpoints the WAL\n"
        "        s = SQLiteStore(sys.argv[1])\n"
        "        await s.create_run(f'r{os.getpid()}-{i}', 'w', NewEvent(type='run_started'),"
        " new_owner())\n"
        "        await s.close()\n"
        "asyncio.run(main())\n"
    )
    import time

    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "new.db"),
                               str(start)], stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    with sqlite3.connect(tmp_path / "new.db") as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 8 * 25
    db.close()


_WITHOUT_ROWID = """CREATE TABLE events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    task TEXT,
    data TEXT NOT NULL,
    ts REAL NOT NULL,
    sum BLOB,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID"""



def _as_before_rowids(db: sqlite3.Connection) -> None:
    """The events table exactly as the older Podium made it."""
    db.execute("ALTER TABLE events RENAME TO events_new")
    db.execute(_WITHOUT_ROWID)
    db.execute("INSERT INTO events SELECT run_id, seq, type, task, data, ts, sum"
               " FROM events_new")
    db.execute("DROP TABLE events_new")


@pytest.mark.parametrize(("keys", "sums"), [(None, True), (MASTER, True), (None, False)],
                         ids=["clear", "sealed", "before-checksums"])
async def test_a_sqlite_journal_with_events_without_rowid_moves_them_on_open(
        tmp_path: Path, keys: Keyring | None, sums: bool) -> None:
    """Journals written before events had rowids (which sent every event over about 1 KB
    to an overflow page of its own) open with their events moved, readable and checked."""
    path = tmp_path / "j.db"
    store = SQLiteStore(path, keys=keys)
    await store.create_run("r", "w", START, owner("a"))
    await store.append("r", [NewEvent(type="task_completed", task=f"t{i}",
                                      data={"output": "x" * 1024 * i}) for i in range(3)],
                       owner("a"))
    written = await store.events("r")
    await store.close()
    with closing(sqlite3.connect(path)) as db, db:
        _as_before_rowids(db)
        if not sums:
            db.execute("ALTER TABLE events DROP COLUMN sum")
            db.execute("DELETE FROM meta WHERE key = 'event_sums'")
    store = SQLiteStore(path, keys=keys)
    try:
        assert await store.events("r") == written
        await store.append("r", [NewEvent(type="run_completed")], owner("a"))
        assert [e.seq for e in await store.events("r")] == [1, 2, 3, 4, 5]
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as db:
        made = db.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()
        assert "WITHOUT ROWID" not in made[0]
        assert db.execute("SELECT count(*) FROM events WHERE sum IS NULL").fetchone()[0] == 0
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0  # the file shrank
    # Opened again, nothing more moves.
    store = SQLiteStore(path, keys=keys)
    try:
        assert len(await store.events("r")) == 5
    finally:
        await store.close()


async def test_a_damaged_sqlite_journal_without_rowids_keeps_its_events_where_they_are(
        tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    store = SQLiteStore(path, keys=None)
    for run_id, n in (("a", 40), ("b", 1)):
        await store.create_run(run_id, "w", START, owner("a"))
        await store.append(run_id, [NewEvent(type="task_completed", task=f"t{i}",
                                             data={"output": "x" * 1024}) for i in range(n)],
                           owner("a"))
    await store.close()
    with closing(sqlite3.connect(path)) as db, db:
        _as_before_rowids(db)
        leaves = db.execute("SELECT pageno FROM dbstat WHERE name = 'events'"
                            " AND pagetype = 'leaf' ORDER BY path").fetchall()
    assert len(leaves) > 4
    raw = bytearray(path.read_bytes())
    at = (leaves[2][0] - 1) * 4096 + 100  # a page of run a's events
    raw[at:at + 600] = bytes(600)
    path.write_bytes(bytes(raw))
    store = SQLiteStore(path, keys=None)  # opens, as it did before
    try:
        with pytest.raises(JournalDamaged):
            await store.events("a")
        assert len(await store.events("b")) == 2
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as db:
        made = db.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()
        assert "WITHOUT ROWID" in made[0]
