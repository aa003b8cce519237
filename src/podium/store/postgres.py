"""The journal on a PostgreSQL server, for deployments where several machines share runs.
The operations are `Store`'s (`store/base.py`); this module connects and runs them there.

Install the extra: `pip install 'podium[postgres]'` (psycopg 3 and its connection pool).
Point Podium at a database with a libpq URL: `PODIUM_DB=postgresql://user:pw@host/db` or
`--db postgresql://...`. The tables (all named `podium_*`, so they can share a database with
an application) are made on first use; making them is serialised by an advisory lock, so
processes starting at once on an empty database do not trip over each other.

Isolation: PostgreSQL's default, read committed, with the races closed by row locks rather
than by serializable transactions with retries. An append is one conditional
`UPDATE podium_runs ... WHERE run_id = ? AND owner = ? AND last_seq = ? RETURNING last_seq`:
the update locks the run's row, a concurrent appender waits for it, and PostgreSQL checks
the `WHERE` again against the row as the first one committed it, so the owner and
`expect_last` tests and the sequence numbers handed out cannot interleave. Leases read the
row `SELECT ... FOR UPDATE` before deciding, so two processes taking a run over queue on the
row and the second sees the first's lease. Serializable would make every conflict a failed
transaction to retry; these conflicts are on one known row, so waiting on its lock is
cheaper and cannot fail spuriously.

Each event row carries a checksum over its sequence number among the rest
(`store/_sums.py`), so the client must know the numbers before it inserts. Without
encryption it guesses them from its own last append to the run, and an append is a single
statement (the update, conditional on that `last_seq`, and the insert of the events in one
`WITH`): one round trip. When the guess fails (another process appended, the lease was
lost, the run is unknown) and when encrypted (the payloads are sealed, bound to their row,
after the update hands the numbers out), it is a transaction of two statements (four round
trips with its begin and commit), which also raises the right error.

Payloads are kept as JSON text (`data`) in clear, or as AES-256-GCM ciphertext (`sealed`)
under the run's or subject's data key, exactly as in the SQLite journal (see
`podium.security.crypto`); event types, task keys, sequence numbers and times stay in clear.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from podium.core.events import RUN_ENDS, Event, NewEvent
from podium.security.audit import AuditLog
from podium.security.crypto import Keyring
from podium.store._common import dumps
from podium.store._pg import SCHEMA_VERSION as SCHEMA_VERSION
from podium.store._pg import URL_SCHEMES as URL_SCHEMES
from podium.store._pg import JournalUnavailable as JournalUnavailable
from podium.store._pg import import_driver, open_pool, redact
from podium.store._sums import event_sum
from podium.store.base import Owner, Store, Stored, run_update
from podium.store.sql import POSTGRES, Flow, Query, count, rows, run_async

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    Conn = AsyncConnection[tuple[Any, ...]]

T = TypeVar("T")
_APPEND = ("INSERT INTO {p}events (run_id, seq, type, task, data, sealed, ts, sum)"
           " SELECT ?, ? + u.i, u.type, u.task, u.data, u.sealed, ?, u.sum FROM"
           " unnest(?::text[], ?::text[], ?::text[], ?::bytea[], ?::bytea[])"
           " WITH ORDINALITY AS u(type, task, data, sealed, sum, i)")
_APPEND_GUESSED = _APPEND.replace(" FROM unnest(", " FROM r, unnest(")
"""After `WITH r AS (UPDATE podium_runs ... RETURNING last_seq)`: no run row, no events."""


def _driver_errors() -> tuple[type[Exception], ...]:
    psycopg, psycopg_pool = import_driver()
    return psycopg.OperationalError, psycopg_pool.PoolTimeout


def _lost(error: Exception) -> bool:
    """Whether the server is gone or out of reach (not, say, a deadlock): no SQLSTATE (the
    client saw the connection break), a connection exception (08), or a shutdown (57P)."""
    state: str | None = getattr(error, "sqlstate", None)
    return state is None or state.startswith(("08", "57P"))


def _step(conn: Conn) -> Callable[[Query], Awaitable[Any]]:
    """Runs one query of a flow on `conn`."""
    async def step(query: Query) -> Any:
        sql = POSTGRES(query.sql)
        if query.want == "many":
            async with conn.cursor() as cursor:
                await cursor.executemany(sql, query.params)
            return None
        cursor = await conn.execute(sql, query.params)
        if query.want == "one":
            return await cursor.fetchone()
        if query.want == "all":
            return await cursor.fetchall()
        return cursor.rowcount

    return step


class PostgresStore(Store):
    """The journal in a PostgreSQL database.

    Connections are opened on first use, so making the store does no I/O.

    Args:
        url: a libpq connection URL (`postgresql://user:password@host:port/database`).
        keys: the master keys to encrypt with; by default those configured in the
            environment (`load_keyring`); None stores data unencrypted.
        max_connections: the most connections this store holds open at once.
        connect_timeout: seconds to wait for the server before giving up.
        audit: where key rotations and crypto-shredding are recorded
            (`podium.security.key_audit`); None: nowhere. The store does not close it.
        actor: who those records name as having acted.
    """

    _RUNS = "podium_runs"
    _GET_CACHE = "SELECT data, sealed FROM podium_model_cache WHERE key = ?"
    _PUT_CACHE = ("INSERT INTO podium_model_cache (key, data, sealed, created)"
                  " VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET data = excluded.data,"
                  " sealed = excluded.sealed, created = excluded.created")
    _GET_VAULT = "SELECT data, sealed FROM podium_vaults WHERE run_id = ?"
    _PUT_VAULT = ("INSERT INTO podium_vaults (run_id, data, sealed, updated)"
                  " VALUES (?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET data = excluded.data,"
                  " sealed = excluded.sealed, updated = excluded.updated")

    def __init__(self, url: str, *, keys: Keyring | Literal["env"] | None = "env",
                 max_connections: int = 4, connect_timeout: float = 10.0,
                 audit: AuditLog | None = None, actor: str = "engine") -> None:
        super().__init__(keys=keys, location=redact(url), audit=audit, actor=actor)
        self.url = url
        self._last: dict[str, int] = {}
        """The last sequence number this store appended to each run it is appending to."""
        self._max = max_connections
        self._timeout = connect_timeout
        self._pool: AsyncConnectionPool[Any] | None = None
        self._opening = asyncio.Lock()

    @property
    def location(self) -> str:
        return redact(self.url)

    # -- connections and the schema -------------------------------------------------------

    async def _ready(self) -> AsyncConnectionPool[Any]:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                self._pool = await open_pool(self.url, self.location, self._max,
                                             self._timeout)
        return self._pool

    @asynccontextmanager
    async def _conn(self, *, transaction: bool = False) -> AsyncIterator[Conn]:
        """A connection in autocommit mode (each statement is its own transaction), or in
        one transaction committed when the block ends."""
        pool = await self._ready()
        try:
            async with pool.connection() as conn:
                if not transaction:
                    yield conn
                    return
                async with conn.transaction():
                    yield conn
        except _driver_errors() as e:
            if not _lost(e):
                raise
            # The pool drops the broken connection; the next call gets a new one.
            raise JournalUnavailable(f"lost the connection to the journal at "
                                     f"{self.location}: {str(e).strip()}") from None

    # -- the primitives of Store -------------------------------------------------------

    async def _read(self, flow: Flow[T]) -> T:
        async with self._conn() as conn:
            return await run_async(flow, _step(conn))

    async def _write(self, flow: Flow[T], *, atomic: bool = True) -> T:
        async with self._conn(transaction=atomic) as conn:
            return await run_async(flow, _step(conn))

    def _insert_events(self, run_id: str, first: int, ts: float, events: Sequence[NewEvent],
                       stored: Sequence[Stored]) -> Query:
        return count(_APPEND, run_id, first - 1, ts, [e.type for e in events],
                     [e.task for e in events], *_columns([s[0] for s in stored]),
                     [s[1] for s in stored])

    def _payload_params(self, payload: str | bytes) -> tuple[Any, ...]:
        return (payload, None) if isinstance(payload, str) else (None, payload)

    async def _append_at_once(self, run_id: str, events: Sequence[NewEvent],
                              owner: Owner | None, expect_last: int | None, release: bool
                              ) -> list[Event] | None:
        """Append clear events in one statement if the run's last sequence number is still
        the one this store last appended (or `expect_last`); None (nothing written) if it
        is not, or the run or its lease is gone, or the journal is encrypted."""
        last = expect_last if expect_last is not None else self._last.get(run_id)
        if self.keyring is not None or last is None:
            return None
        now = time.time()
        update, params = run_update(run_id, events, owner, last, release, now)
        texts = [dumps(e.data) for e in events]
        seqs = range(last + 1, last + len(events) + 1)
        sums = [event_sum(run_id, s, e.type, e.task, t, now)
                for s, e, t in zip(seqs, events, texts, strict=True)]

        def append() -> Flow[bool]:
            yield from self._keys.refuse_clear(run_id)
            written = yield rows(
                f"WITH r AS ({update} RETURNING last_seq) {_APPEND_GUESSED} RETURNING seq",
                *params, run_id, last, now, [e.type for e in events], [e.task for e in events],
                texts, [None] * len(events), sums)
            return bool(written)

        if not await self._write(append(), atomic=False):
            return None
        self._appended(run_id, events, seqs[-1])
        return [Event(run_id=run_id, seq=s, type=e.type, task=e.task, data=e.data, ts=now)
                for s, e in zip(seqs, events, strict=True)]

    def _appended(self, run_id: str, events: Sequence[NewEvent], last: int) -> None:
        if any(e.type in RUN_ENDS for e in events):
            self._last.pop(run_id, None)
        else:
            self._last[run_id] = last

    async def _reclaim(self, *tables: str) -> None:
        """Reclaim the dead rows that still hold destroyed or re-wrapped keys (best effort:
        rows an open snapshot may still see are kept, and the WAL and backups keep theirs)."""
        async with self._conn() as conn:
            await conn.execute(f"VACUUM {', '.join('podium_' + t for t in tables)}")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def _columns(payloads: list[str | bytes]) -> tuple[list[str | None], list[bytes | None]]:
    """Payloads as the two columns that keep them: clear text, sealed bytes."""
    return ([p if isinstance(p, str) else None for p in payloads],
            [p if isinstance(p, bytes) else None for p in payloads])
