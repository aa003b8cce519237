"""The PostgreSQL journal's tables, made on first use, and its connections."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from podium.errors import PodiumError, UserError
from podium.store.keys import POSTGRES_DATA_KEYS_SCHEMA

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    Conn = AsyncConnection[tuple[Any, ...]]

SCHEMA_VERSION = 2
"""The version of the tables this Podium makes and understands."""
URL_SCHEMES = ("postgresql://", "postgres://")
"""What a journal URL starts with when it names a PostgreSQL server."""
SCHEMA_LOCK = 0x706F6469756D  # "podium": the advisory lock making the tables
SCHEMA = """
CREATE TABLE IF NOT EXISTS podium_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS podium_runs (
    run_id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    last_seq INTEGER NOT NULL,
    owner TEXT,
    owner_pid INTEGER,
    owner_host TEXT,
    lease_until DOUBLE PRECISION,
    session TEXT,
    n BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX IF NOT EXISTS podium_runs_started ON podium_runs (started_at);
CREATE INDEX IF NOT EXISTS podium_runs_session ON podium_runs (session, started_at)
    WHERE session IS NOT NULL;
CREATE TABLE IF NOT EXISTS podium_events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    task TEXT,
    data TEXT,
    sealed BYTEA,
    ts DOUBLE PRECISION NOT NULL,
    sum BYTEA,
    PRIMARY KEY (run_id, seq)
);
ALTER TABLE podium_events ADD COLUMN IF NOT EXISTS sum BYTEA;
CREATE TABLE IF NOT EXISTS podium_circuits (
    agent TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    opened_at DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS podium_model_cache (
    key TEXT PRIMARY KEY,
    data TEXT,
    sealed BYTEA,
    created DOUBLE PRECISION NOT NULL
);
""" + POSTGRES_DATA_KEYS_SCHEMA + """
CREATE TABLE IF NOT EXISTS podium_vaults (
    run_id TEXT PRIMARY KEY,
    data TEXT,
    sealed BYTEA,
    updated DOUBLE PRECISION NOT NULL
);
"""


class JournalUnavailable(PodiumError):
    """The PostgreSQL server of the journal cannot be reached or refused the connection."""


def import_driver() -> tuple[Any, Any]:
    try:
        import psycopg
        import psycopg_pool
    except ImportError as e:
        raise UserError(f"a PostgreSQL journal needs psycopg and psycopg-pool ({e.name} is "
                        "missing): pip install 'podium[postgres]'") from None
    return psycopg, psycopg_pool


def redact(url: str) -> str:
    """`url` with its password replaced by `***`, fit to show."""
    parts = urlsplit(url)
    if parts.password is None:
        return re.sub(r"(password=)\S+", r"\1***", url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


async def open_pool(url: str, location: str, max_size: int, wait: float
                    ) -> AsyncConnectionPool[Any]:
    """A pool of connections to the journal, its tables made if need be; `wait`: seconds
    to wait for a connection."""
    psycopg, psycopg_pool = import_driver()
    try:
        conn = await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=max(1, round(wait)))
    except psycopg.Error as e:
        raise JournalUnavailable(f"cannot connect to the journal at {location}: "
                                 f"{str(e).strip()}") from None
    async with conn:
        await _create_schema(conn, location)
    pool: AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
        url, min_size=1, max_size=max_size, open=False, timeout=wait,
        kwargs={"autocommit": True}, name="podium-journal")
    await pool.open(wait=True, timeout=wait)
    return pool


async def _create_schema(conn: Conn, location: str) -> None:
    version = await _schema_version(conn, location)
    if version == SCHEMA_VERSION:
        return
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        await conn.execute(SCHEMA)
        # Checksums are required once no row lacks one (older rows are read unchecked).
        await conn.execute("INSERT INTO podium_meta SELECT 'event_sums', 'all' WHERE NOT EXISTS"
                           " (SELECT 1 FROM podium_events WHERE sum IS NULL)"
                           " ON CONFLICT (key) DO NOTHING")
        await conn.execute("INSERT INTO podium_meta VALUES ('schema', %s) ON CONFLICT (key)"
                           " DO UPDATE SET value = excluded.value"
                           " WHERE podium_meta.value::int < excluded.value::int",
                           (str(SCHEMA_VERSION),))
    await _schema_version(conn, location)


async def _schema_version(conn: Conn, location: str) -> int | None:
    cur = await conn.execute("SELECT to_regclass('podium_meta') IS NOT NULL")
    exists = await cur.fetchone()
    if not (exists and exists[0]):
        return None
    cur = await conn.execute("SELECT value FROM podium_meta WHERE key = 'schema'")
    row = await cur.fetchone()
    if row is None:
        return None
    if int(row[0]) > SCHEMA_VERSION:
        raise PodiumError(f"{location}: journal schema {row[0]} is newer than this "
                          f"Podium understands ({SCHEMA_VERSION}); upgrade Podium")
    return int(row[0])
