"""Journals written before per-event checksums existed: a SQLite journal gets them on first
open (sealed rows once the master key is at hand), a PostgreSQL journal reads its older rows
unchecked; either way, what is written from then on is checked."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from podium import JournalDamaged, PostgresStore, SQLiteStore
from podium.core.events import NewEvent
from podium.security.crypto import Keyring, MasterKey
from podium.store.base import Owner
from tests.integration._postgres import PostgresServer

ME = Owner(token="me", pid=os.getpid(), host="here")
START = NewEvent(type="run_started", data={"workflow": "w", "inputs": {}})
KEYS = Keyring(keys=(MasterKey(secret=bytes(range(32)), source="test"),))


async def _legacy_sqlite(db: Path, keys: Keyring | None) -> None:
    """A journal as Podium wrote it before checksums: no `sum` column, no meta row."""
    store = SQLiteStore(db, keys=keys)
    await store.create_run("old", "w", START, ME)
    await store.append("old", [NewEvent(type="task_completed", task="t", data={"output": 1})],
                       ME)
    await store.close()
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("ALTER TABLE events DROP COLUMN sum")
        conn.execute("DELETE FROM meta WHERE key = 'event_sums'")


def _sums(db: Path) -> list[bytes | None]:
    with closing(sqlite3.connect(db)) as conn:
        return [r[0] for r in conn.execute("SELECT sum FROM events ORDER BY run_id, seq")]


async def test_a_clear_sqlite_journal_gets_its_checksums_on_first_open(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    await _legacy_sqlite(db, None)
    store = SQLiteStore(db, keys=None)
    try:
        assert all(s is not None and s[0] == 0 for s in _sums(db))
        assert [e.type for e in await store.events("old")] == ["run_started",
                                                               "task_completed"]
        with closing(sqlite3.connect(db)) as conn, conn:
            conn.execute("UPDATE events SET task = 'u' WHERE run_id = 'old' AND seq = 2")
        with pytest.raises(JournalDamaged, match="event 2 of run 'old'"):
            await store.events("old")
    finally:
        await store.close()


async def test_sealed_rows_wait_for_the_master_key(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    await _legacy_sqlite(db, KEYS)
    keyless = SQLiteStore(db, keys=None)  # cannot compute keyed checksums: leaves them
    await keyless.close()
    assert _sums(db) == [None, None]
    store = SQLiteStore(db, keys=KEYS)
    try:
        assert all(s is not None and s[0] == 1 for s in _sums(db))
        with closing(sqlite3.connect(db)) as conn, conn:
            conn.execute("UPDATE events SET sum = NULL WHERE seq = 1")
        again = SQLiteStore(db, keys=KEYS)  # migrated: a missing checksum is damage now
        try:
            with pytest.raises(JournalDamaged, match=r"event 1 of run 'old'.*no checksum"):
                await again.events("old")
        finally:
            await again.close()
    finally:
        await store.close()


async def test_a_postgres_journal_reads_older_rows_unchecked_and_checks_new_ones(
        pg_server: PostgresServer) -> None:
    url = pg_server.fresh_schema()
    store = PostgresStore(url, keys=None)
    await store.create_run("old", "w", START, ME)
    await store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE podium_events DROP COLUMN sum")
        conn.execute("DELETE FROM podium_meta WHERE key = 'event_sums'")
        conn.execute("UPDATE podium_meta SET value = '1' WHERE key = 'schema'")
    store = PostgresStore(url, keys=None)
    try:
        await store.append("old", [NewEvent(type="run_completed", data={})], ME)
        assert [e.type for e in await store.events("old")] == ["run_started",
                                                               "run_completed"]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE podium_events SET type = 'run_failed' WHERE seq = 2")
        with pytest.raises(JournalDamaged, match="event 2 of run 'old'"):
            await store.events("old")
    finally:
        await store.close()
