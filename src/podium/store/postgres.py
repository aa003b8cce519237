"""The journal on a PostgreSQL server, for deployments where several machines share runs.

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
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from podium.core.events import ERASED, RUN_ENDS, Event, NewEvent
from podium.errors import JournalDamaged, RunBusy, UnknownRun
from podium.security import key_audit
from podium.security.audit import AuditLog
from podium.security.crypto import KeyConfigError, Keyring, MasterKey, context, load_keyring
from podium.store._common import RUN_STATUS, busy, dumps, holds, like_prefix, one_run
from podium.store._keys import run_owner, subject_owner
from podium.store._pg import SCHEMA_VERSION as SCHEMA_VERSION
from podium.store._pg import URL_SCHEMES as URL_SCHEMES
from podium.store._pg import JournalUnavailable as JournalUnavailable
from podium.store._pg import import_driver, open_pool, redact
from podium.store._pg_keys import PgDataKeys
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

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    Conn = AsyncConnection[tuple[Any, ...]]

_RUN = "UPDATE podium_runs SET last_seq = last_seq + %s, updated_at = %s"
_APPEND = ("INSERT INTO podium_events (run_id, seq, type, task, data, sealed, ts, sum)"
           " SELECT %s, %s + u.i, u.type, u.task, u.data, u.sealed, %s, u.sum FROM"
           " unnest(%s::text[], %s::text[], %s::text[], %s::bytea[], %s::bytea[])"
           " WITH ORDINALITY AS u(type, task, data, sealed, sum, i)")
_APPEND_GUESSED = _APPEND.replace(" FROM unnest(", " FROM r, unnest(")
"""After `WITH r AS (UPDATE podium_runs ... RETURNING last_seq)`: no run row, no events."""
_RELEASE = ", owner = NULL, owner_pid = NULL, owner_host = NULL, lease_until = NULL"


def _driver_errors() -> tuple[type[Exception], ...]:
    psycopg, psycopg_pool = import_driver()
    return psycopg.OperationalError, psycopg_pool.PoolTimeout


def _lost(error: Exception) -> bool:
    """Whether the server is gone or out of reach (not, say, a deadlock): no SQLSTATE (the
    client saw the connection break), a connection exception (08), or a shutdown (57P)."""
    state: str | None = getattr(error, "sqlstate", None)
    return state is None or state.startswith(("08", "57P"))


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

    def __init__(self, url: str, *, keys: Keyring | Literal["env"] | None = "env",
                 max_connections: int = 4, connect_timeout: float = 10.0,
                 audit: AuditLog | None = None, actor: str = "engine") -> None:
        self.url = url
        self.audit, self.actor = audit, actor
        self.keyring = load_keyring() if keys == "env" else keys
        self._keys = PgDataKeys(self.keyring, redact(url))
        self._sums_required = False
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

    def _tx(self) -> AbstractAsyncContextManager[Conn]:
        return self._conn(transaction=True)

    # -- runs and events --------------------------------------------------------------

    async def create_run(self, run_id: str, workflow: str, first: NewEvent, owner: Owner) -> Event:
        now = time.time()
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO podium_runs (run_id, workflow, status, started_at, updated_at,"
                " last_seq, owner, owner_pid, owner_host, lease_until, session)"
                " VALUES (%s, %s, 'running', %s, %s, 1, %s, %s, %s, %s, %s)",
                (run_id, workflow, now, now, owner.token, owner.pid, owner.host, now + 60,
                 first.data.get("session")))
            data, sealed, checksum = await self._keys.encode_event(
                conn, run_id, 1, first.type, first.task, first.data, first.subject, now)
            await conn.execute("INSERT INTO podium_events (run_id, seq, type, task, data,"
                               " sealed, ts, sum) VALUES (%s, 1, %s, %s, %s, %s, %s, %s)",
                               (run_id, first.type, first.task, data, sealed, now, checksum))
        self._last[run_id] = 1
        return Event(run_id=run_id, seq=1, type=first.type, task=first.task, data=first.data,
                     ts=now)

    async def append(
        self, run_id: str, events: Sequence[NewEvent], owner: Owner | None,
        *, expect_last: int | None = None, release: bool = False,
    ) -> list[Event]:
        if not events:
            return []
        now = time.time()
        guess = expect_last if expect_last is not None else self._last.get(run_id)
        if self.keyring is None and guess is not None:
            done = await self._append_guessed(run_id, events, owner, guess, release, now)
            if done is not None:
                return done
        update, params = self._run_update(run_id, events, owner, expect_last, release, now)
        async with self._tx() as conn:
            cur = await conn.execute(f"{update} RETURNING last_seq", params)
            row = await cur.fetchone()
            if row is None:
                await self._refused(conn, run_id, owner, expect_last)
            first = row[0] - len(events) + 1
            seqs = list(range(first, row[0] + 1))
            rows = [await self._keys.encode_event(conn, run_id, s, e.type, e.task, e.data,
                                                  e.subject, now)
                    for s, e in zip(seqs, events, strict=True)]
            await conn.execute(_APPEND, (
                run_id, first - 1, now, [e.type for e in events], [e.task for e in events],
                [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]))
        self._remember(run_id, events, row[0])
        return [Event(run_id=run_id, seq=s, type=e.type, task=e.task, data=e.data, ts=now)
                for s, e in zip(seqs, events, strict=True)]

    async def _append_guessed(self, run_id: str, events: Sequence[NewEvent],
                              owner: Owner | None, last: int, release: bool, now: float
                              ) -> list[Event] | None:
        """Append clear events in one statement if the run's last sequence number is still
        `last`; None (nothing written) if it is not, or the run or its lease is gone."""
        update, params = self._run_update(run_id, events, owner, last, release, now)
        texts = [dumps(e.data) for e in events]
        seqs = range(last + 1, last + len(events) + 1)
        sums = [event_sum(run_id, s, e.type, e.task, t, now)
                for s, e, t in zip(seqs, events, texts, strict=True)]
        async with self._conn() as conn:
            await self._keys.refuse_clear(conn, run_id)
            cur = await conn.execute(
                f"WITH r AS ({update} RETURNING last_seq) {_APPEND_GUESSED} RETURNING seq",
                (*params, run_id, last, now, [e.type for e in events],
                 [e.task for e in events], texts, [None] * len(events), sums))
            if not await cur.fetchall():
                return None
        self._remember(run_id, events, seqs[-1])
        return [Event(run_id=run_id, seq=s, type=e.type, task=e.task, data=e.data, ts=now)
                for s, e in zip(seqs, events, strict=True)]

    def _remember(self, run_id: str, events: Sequence[NewEvent], last: int) -> None:
        if any(e.type in RUN_ENDS for e in events):
            self._last.pop(run_id, None)
        else:
            self._last[run_id] = last

    @staticmethod
    def _run_update(run_id: str, events: Sequence[NewEvent], owner: Owner | None,
                    expect_last: int | None, release: bool, now: float
                    ) -> tuple[str, list[object]]:
        """The conditional update of the run's row that an append makes."""
        status = next((RUN_STATUS[e.type] for e in reversed(events) if e.type in RUN_STATUS),
                      None)
        sets = _RUN
        params: list[object] = [len(events), now]
        if status is not None:
            sets += ", status = %s"
            params.append(status)
        if any(e.type in RUN_ENDS for e in events):
            sets += ", finished_at = %s"
            params.append(now)
        if release:
            sets += _RELEASE
        where = " WHERE run_id = %s"
        params.append(run_id)
        if owner is not None:
            where += " AND owner = %s"
            params.append(owner.token)
        if expect_last is not None:
            where += " AND last_seq = %s"
            params.append(expect_last)
        return sets + where, params

    @staticmethod
    async def _refused(conn: Conn, run_id: str, owner: Owner | None,
                       expect_last: int | None) -> NoReturn:
        """Raise why the run's row did not match an append's or a renewal's conditions."""
        cur = await conn.execute("SELECT owner FROM podium_runs WHERE run_id = %s", (run_id,))
        row = await cur.fetchone()
        if row is None:
            raise UnknownRun(f"no run {run_id!r} in the journal")
        if owner is not None and row[0] != owner.token:
            raise LeaseLost(f"run {run_id!r} was taken over by another process")
        raise Conflict(f"run {run_id!r} has events past {expect_last}")

    async def events(self, run_id: str, after: int = 0) -> list[Event]:
        async with self._conn() as conn:
            if not self._sums_required:
                cur = await conn.execute("SELECT 1 FROM podium_meta WHERE key = 'event_sums'")
                self._sums_required = await cur.fetchone() is not None
            # The count first: events only grow, so fewer than it counts means damage.
            cur = await conn.execute(
                "SELECT last_seq, EXISTS (SELECT 1 FROM podium_data_keys WHERE owner = %s)"
                " FROM podium_runs WHERE run_id = %s", (run_owner(run_id), run_id))
            run = await cur.fetchone()
            cur = await conn.execute(
                "SELECT seq, type, task, data, sealed, ts, sum FROM podium_events"
                " WHERE run_id = %s AND seq > %s ORDER BY seq", (run_id, after))
            rows = await cur.fetchall()
            if run is None:
                if not rows and after == 0:
                    raise UnknownRun(f"no run {run_id!r} in the journal")
                if rows:
                    raise JournalDamaged(f"{self.location}: run {run_id!r} has events but no "
                                         "record in podium_runs: the journal is damaged")
            check_count(self.location, run_id, after, [r[0] for r in rows],
                        None if run is None else run[0])
            decode = self._keys.decode_event
            sealed_run, required = bool(run and run[1]), self._sums_required
            return [Event(run_id=run_id, seq=s, type=t, task=k,
                          data=await decode(conn, run_id, s, t, k, d, b, ts, c,
                                            sealed_run=sealed_run, required=required), ts=ts)
                    for s, t, k, d, b, ts, c in rows]

    async def runs(self, limit: int = 50, status: str | None = None) -> list[RunSummary]:
        query = ("SELECT run_id, workflow, status, started_at, updated_at, finished_at, last_seq"
                 " FROM podium_runs")
        params: tuple[object, ...] = ()
        if status:
            query += " WHERE status = %s"
            params = (status,)
        query += " ORDER BY started_at DESC LIMIT %s"
        async with self._conn() as conn:
            rows = await (await conn.execute(query, (*params, limit))).fetchall()
        return [RunSummary(run_id=r[0], workflow=r[1], status=r[2], started_at=r[3],
                           updated_at=r[4], finished_at=r[5], events=r[6]) for r in rows]

    async def session_runs(self, session: str) -> list[str]:
        async with self._conn() as conn:
            cur = await conn.execute("SELECT run_id FROM podium_runs WHERE session = %s"
                                     " ORDER BY started_at, n", (session,))
            return [r[0] for r in await cur.fetchall()]

    async def find_run(self, prefix: str) -> str:
        async with self._conn() as conn:
            cur = await conn.execute("SELECT run_id FROM podium_runs WHERE run_id = %s OR"
                                     " run_id LIKE %s LIMIT 3", (prefix, like_prefix(prefix)))
            ids = {str(r[0]) for r in await cur.fetchall()}
        return one_run(prefix, ids, self.location)

    # -- leases -----------------------------------------------------------------------

    async def acquire(self, run_id: str, owner: Owner, lease: float) -> Owner | None:
        async with self._tx() as conn:
            cur = await conn.execute("SELECT owner, owner_pid, owner_host, lease_until FROM"
                                     " podium_runs WHERE run_id = %s FOR UPDATE", (run_id,))
            row = await cur.fetchone()
            if row is None:
                raise UnknownRun(f"no run {run_id!r} in the journal")
            token, pid, host, until = row
            now = time.time()
            if token is not None and token != owner.token and until is not None and until > now:
                holder = Owner(token=token, pid=pid, host=host)
                if holds(holder, owner):
                    return holder
            await conn.execute("UPDATE podium_runs SET owner = %s, owner_pid = %s,"
                               " owner_host = %s, lease_until = %s WHERE run_id = %s",
                               (owner.token, owner.pid, owner.host, now + lease, run_id))
        return None

    async def renew(self, run_id: str, owner: Owner, lease: float) -> None:
        async with self._conn() as conn:
            cur = await conn.execute("UPDATE podium_runs SET lease_until = %s WHERE"
                                     " run_id = %s AND owner = %s",
                                     (time.time() + lease, run_id, owner.token))
            if cur.rowcount == 0:
                await self._refused(conn, run_id, owner, None)

    async def release(self, run_id: str, owner: Owner) -> None:
        async with self._conn() as conn:
            await conn.execute(f"UPDATE podium_runs SET {_RELEASE[2:]} WHERE run_id = %s"
                               " AND owner = %s", (run_id, owner.token))

    # -- circuits ---------------------------------------------------------------------

    async def circuit(self, agent: str) -> CircuitState:
        async with self._conn() as conn:
            cur = await conn.execute("SELECT failures, opened_at FROM podium_circuits"
                                     " WHERE agent = %s", (agent,))
            row = await cur.fetchone()
        return CircuitState() if row is None else CircuitState(failures=row[0], opened_at=row[1])

    async def set_circuit(self, agent: str, state: CircuitState) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO podium_circuits VALUES (%s, %s, %s) ON CONFLICT (agent) DO UPDATE"
                " SET failures = excluded.failures, opened_at = excluded.opened_at",
                (agent, state.failures, state.opened_at))

    # -- the reply cache and vaults ------------------------------------------------------

    async def cache_get(self, key: str) -> dict[str, Any] | None:
        reply: dict[str, Any] | None = await self._get(
            "podium_model_cache", "key", key, context("cache", key), f"cached reply {key!r}")
        return reply

    async def cache_put(self, key: str, value: dict[str, Any]) -> None:
        await self._put("podium_model_cache", "key", key, "created", "cache", value,
                        context("cache", key))

    async def vault_get(self, run_id: str) -> dict[str, str] | None:
        entries: dict[str, str] | None = await self._get(
            "podium_vaults", "run_id", run_id, context("vault", run_id),
            f"the masking vault of run {run_id!r}")
        return entries

    async def vault_put(self, run_id: str, entries: dict[str, str]) -> None:
        await self._put("podium_vaults", "run_id", run_id, "updated", run_owner(run_id),
                        entries, context("vault", run_id))

    async def _get(self, table: str, column: str, key: str, where: bytes, what: str
                   ) -> Any:
        async with self._conn() as conn:
            cur = await conn.execute(f"SELECT data, sealed FROM {table} WHERE {column} = %s",
                                     (key,))
            row = await cur.fetchone()
            if row is None:
                return None
            text, sealed = row
            if text is None:
                raw = await self._keys.open(conn, sealed, where, what)
                if raw is None:
                    return None
                text = raw.decode()
        return json.loads(text)

    async def _put(self, table: str, column: str, key: str, stamp: str, owner: str,
                   value: dict[str, Any], where: bytes) -> None:
        text = dumps(value)
        async with self._tx() as conn:
            if self.keyring is None and owner.startswith("run:"):
                await self._keys.refuse_clear(conn, key)
            elif self.keyring is None:
                await self._keys.refuse_downgrade(conn)
            sealed = await self._keys.seal_for(conn, owner, text.encode(), where)
            await conn.execute(
                f"INSERT INTO {table} ({column}, data, sealed, {stamp}) VALUES (%s, %s, %s, %s)"
                f" ON CONFLICT ({column}) DO UPDATE SET data = excluded.data,"
                f" sealed = excluded.sealed, {stamp} = excluded.{stamp}",
                (key, text if sealed is None else None, sealed, time.time()))

    # -- encryption at rest --------------------------------------------------------------

    @property
    def encrypted(self) -> bool:
        return self.keyring is not None

    async def seal(self, value: bytes, *, where: bytes, run_id: str | None = None,
                   subject: str | None = None) -> bytes:
        owner = (subject_owner(subject) if subject is not None
                 else run_owner(run_id) if run_id is not None else "store")
        async with self._tx() as conn:
            if self.keyring is None:
                await self._keys.refuse_downgrade(conn)
                return bytes([0]) + value
            sealed = await self._keys.seal_for(conn, owner, value, where)
        assert sealed is not None
        return sealed

    async def unseal(self, blob: bytes, *, where: bytes) -> bytes | None:
        if blob[:1] == b"\x00":
            return blob[1:]
        async with self._conn() as conn:
            return await self._keys.open(conn, blob, where, "a sealed value")

    async def shred_run(self, run_id: str) -> None:
        await key_audit.audited_shred_run(self, run_id, lambda: self._shred_run(run_id))

    async def _shred_run(self, run_id: str) -> tuple[int, bool]:
        async with self._tx() as conn:
            cur = await conn.execute("SELECT owner_pid, owner_host, lease_until FROM"
                                     " podium_runs WHERE run_id = %s FOR UPDATE", (run_id,))
            row = await cur.fetchone()
            if row is None:
                raise UnknownRun(f"no run {run_id!r} in the journal")
            pid, host, until = row
            if until is not None and until > time.time() and busy(pid, host):
                raise RunBusy(f"run {run_id!r} is being executed by process {pid} on "
                              f"{host!r}; erase it once it stopped")
            keys = await self._keys.shred(conn, run_owner(run_id))
            if keys == 0:
                # Written with no master key: overwrite the payloads themselves.
                erased = dumps({ERASED: "run"})
                cur = await conn.execute("SELECT seq, type, task, ts FROM podium_events WHERE"
                                         " run_id = %s AND data IS NOT NULL", (run_id,))
                rows = await cur.fetchall()
                async with conn.cursor() as c:
                    await c.executemany(
                        "UPDATE podium_events SET data = %s, sum = %s WHERE run_id = %s AND"
                        " seq = %s", [(erased, event_sum(run_id, s, t, k, erased, ts), run_id, s)
                                      for s, t, k, ts in rows])
            cur = await conn.execute("DELETE FROM podium_vaults WHERE run_id = %s", (run_id,))
            vault = cur.rowcount > 0
        await self._vacuum("podium_data_keys", "podium_vaults",
                           *(["podium_events"] if keys == 0 else []))
        return keys, vault

    async def shred_subject(self, subject: str) -> int:
        async def shred() -> int:
            if self.keyring is None:
                raise KeyConfigError(
                    f"cannot erase subject {subject!r} by crypto-shredding: this journal is "
                    "not encrypted (no master key configured), so payloads tagged with a "
                    "subject were stored in clear; configure a master key (podium keys init)")
            async with self._tx() as conn:
                shredded = await self._keys.shred(conn, subject_owner(subject))
            await self._vacuum("podium_data_keys")
            return shredded

        return await key_audit.audited_shred_subject(self, subject, shred)

    async def key_status(self) -> KeyStatus:
        async with self._conn() as conn:
            return await self._keys.status(conn)

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
        previous = [k for k in self.keyring.ids() if k != new.key_id] if self.keyring else []
        return await key_audit.audited_rotation(self, new, previous,
                                                lambda: self._rotate(new, batch))

    async def _rotate(self, new: MasterKey, batch: int) -> int:
        if self.keyring is None or self.keyring.get(new.key_id) is None:
            raise KeyConfigError("rotating needs a store opened with the new master key and "
                                 "the current one")
        async with self._tx() as conn:
            await self._keys.start_rotation(conn, new)
        total = 0
        while True:
            async with self._tx() as conn:
                n = await self._keys.rewrap(conn, new, batch)
                # A row locked by a shred may drop out of a batch: count before stopping.
                if n == 0 and await self._keys.left_to_rewrap(conn, new) == 0:
                    break
            total += n
        await self._vacuum("podium_data_keys")
        return total

    async def _vacuum(self, *tables: str) -> None:
        """Reclaim the dead rows that still hold destroyed or re-wrapped keys (best effort:
        rows an open snapshot may still see are kept, and the WAL and backups keep theirs)."""
        async with self._conn() as conn:
            await conn.execute(f"VACUUM {', '.join(tables)}")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
