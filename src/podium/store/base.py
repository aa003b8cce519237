"""The journal: append-only events per run, run leases, agent health, the opt-in cache of
model replies, and encryption at rest; every operation written once, here.

`Store` owns each public operation and its invariants: who may append (the lease, checked
in the same statement that hands out sequence numbers), `expect_last`, the run's status and
end, checksums and sealing of payloads, refusing clear data in an encrypted journal, and
audited crypto-shredding and key rotation. The logic is written as flows of neutral SQL
(`store/sql.py`); a backend supplies the primitives: running a flow in one transaction or
statement by statement, how its dialect inserts events and keeps a sealed value, and what
to reclaim after destroying keys. `SQLiteStore` (a file, the default) and `PostgresStore`
(shared deployments) are those backends; `podium.testing.store_conformance` is the suite
every backend passes.
"""

from __future__ import annotations

import json
import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from podium.core.events import ERASED, RUN_ENDS, Event, NewEvent
from podium.errors import Conflict as Conflict
from podium.errors import JournalDamaged, PodiumError, RunBusy, UnknownRun
from podium.errors import LeaseLost as LeaseLost
from podium.security.audit import AuditLog
from podium.security.crypto import KeyConfigError, Keyring, MasterKey, context, load_keyring
from podium.security.key_audit import record_rotate, record_shred_run, record_shred_subject
from podium.security.masking import Vault
from podium.store._common import RUN_STATUS, alive, busy, dumps, like_prefix, one_run
from podium.store._sums import check_count, clear_payload, damaged, event_sum
from podium.store.keys import DataKeys, KeyStatus, run_owner, subject_owner
from podium.store.sql import Flow, Query, Row, count, many, one, rows

T = TypeVar("T")
Stored = tuple[str | bytes, bytes]
"""An event row's payload as kept (clear JSON text, or sealed bytes) and its checksum."""
_RELEASE = "owner = NULL, owner_pid = NULL, owner_host = NULL, lease_until = NULL"
EVENT_PAGE = 2000
"""How many events `Store.event_pages` reads at a time."""


@dataclass(frozen=True, kw_only=True)
class Owner:
    """Who executes a run: a token unique to one engine, and where it lives."""

    token: str
    pid: int
    host: str


def new_owner() -> Owner:
    """An owner token for this process."""
    return Owner(token=os.urandom(8).hex(), pid=os.getpid(), host=socket.gethostname())


def holds(holder: Owner, asker: Owner) -> bool:
    """Whether `holder`, whose lease has not run out, still counts against `asker`: a holder
    on another host is trusted until its lease ends; one on this host only while it lives."""
    return holder.host != asker.host or alive(holder.pid)


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    """A run as `podium runs list` shows it, without reading its journal."""

    run_id: str
    workflow: str
    status: str
    started_at: float
    updated_at: float
    finished_at: float | None
    events: int


@dataclass(frozen=True, kw_only=True)
class CircuitState:
    """An agent's circuit breaker, shared by every run on the store."""

    failures: int = 0
    """Consecutive failures."""
    opened_at: float | None = None
    """When the circuit opened; None while it is closed."""


class Store(ABC):
    """Durable, append-only journal of runs.

    Args:
        keys: the master keys to encrypt with; `"env"`: those configured in the environment
            (`load_keyring`); None stores data unencrypted.
        location: where the journal is, fit to show.
        audit: where key rotations and crypto-shredding are recorded
            (`podium.security.key_audit`); None: nowhere. The store does not close it.
        actor: who those records name as having acted.
    """

    audit: AuditLog | None = None
    """Where key rotations and crypto-shredding are recorded (`podium.security.key_audit`);
    None: nowhere. The store does not close it."""
    actor: str = "engine"
    """Who those records name as having acted."""

    def __init__(self, *, keys: Keyring | Literal["env"] | None, location: str,
                 audit: AuditLog | None, actor: str) -> None:
        self.audit, self.actor = audit, actor
        self.keyring = load_keyring() if keys == "env" else keys
        self._keys = DataKeys(self.keyring, location)
        self._sums_required = False
        """Every event row has a checksum (the journal's meta row `event_sums`)."""

    @property
    def location(self) -> str:
        """Where the journal is, fit to show (a file, or a URL without its password)."""
        return type(self).__name__

    # -- what a backend supplies ----------------------------------------------------------

    @abstractmethod
    async def _read(self, flow: Flow[T]) -> T:
        """Run `flow` statement by statement, each its own transaction."""

    @abstractmethod
    async def _write(self, flow: Flow[T], *, atomic: bool = True) -> T:
        """Run `flow`, which writes, in one transaction: committed if it returns, rolled back
        if it raises. `atomic=False`: its statements may also commit one by one (it is one
        statement, or they need not be atomic)."""

    @abstractmethod
    def _insert_events(self, run_id: str, first: int, ts: float, events: Sequence[NewEvent],
                       stored: Sequence[Stored]) -> Query:
        """The statement adding `events`, numbered from `first`, as `stored`."""

    @abstractmethod
    def _payload_params(self, payload: str | bytes) -> tuple[Any, ...]:
        """The parameters a payload (clear text or sealed bytes) takes in `_PUT_*`."""

    _RUNS: str
    """How messages name the table of runs."""
    _GET_CACHE: str
    """Selects a cached reply's payload (clear, sealed) by `key`."""
    _PUT_CACHE: str
    """Upserts a cached reply: key, the payload's `_payload_params`, the time."""
    _GET_VAULT: str
    """Selects a run's masking vault (clear, sealed) by run id."""
    _PUT_VAULT: str
    """Upserts a run's masking vault: run id, the payload's `_payload_params`, the time."""

    @abstractmethod
    async def _reclaim(self, *tables: str) -> None:
        """After keys were destroyed or re-wrapped in `tables`: free what still holds the old
        bytes, where the backend can (best effort)."""

    def _unreadable(self, run_id: str, after: int, last_seq: int | None,
                    error: JournalDamaged) -> Flow[JournalDamaged]:
        """The database found a run's events damaged while reading them: the error to raise
        (a backend may name the first event it cannot read)."""
        yield from ()
        return error

    async def _append_at_once(self, run_id: str, events: Sequence[NewEvent],
                              owner: Owner | None, expect_last: int | None, release: bool
                              ) -> list[Event] | None:
        """A backend's faster way to append, when it has one; None: use the general one."""
        return None

    def _appended(self, run_id: str, events: Sequence[NewEvent], last: int) -> None:
        """`events` were appended to the run, up to sequence number `last` (for a backend
        that remembers it)."""
        return None

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    # -- runs and events --------------------------------------------------------------

    async def create_run(self, run_id: str, workflow: str, first: NewEvent, owner: Owner) -> Event:
        """Create a run whose journal starts with `first`, leased to `owner`."""
        now = time.time()

        def create() -> Flow[None]:
            yield count("INSERT INTO {p}runs (run_id, workflow, status, started_at, updated_at,"
                        " last_seq, owner, owner_pid, owner_host, lease_until, session)"
                        " VALUES (?, ?, 'running', ?, ?, 1, ?, ?, ?, ?, ?)",
                        run_id, workflow, now, now, owner.token, owner.pid, owner.host,
                        now + 60, first.data.get("session"))
            stored = yield from self._keys.encode_event(run_id, 1, first.type, first.task,
                                                        first.data, first.subject, now)
            yield self._insert_events(run_id, 1, now, [first], [stored])

        await self._write(create())
        self._appended(run_id, [first], 1)
        return Event(run_id=run_id, seq=1, type=first.type, task=first.task, data=first.data,
                     ts=now)

    async def append(
        self, run_id: str, events: Sequence[NewEvent], owner: Owner | None,
        *, expect_last: int | None = None, release: bool = False,
    ) -> list[Event]:
        """Append events atomically, in order. With an owner, only while it holds the lease;
        with `expect_last`, only if the journal's last sequence number is still that; with
        `release`, the owner gives the lease up in the same transaction (so nobody can see
        the run waiting or ended yet still leased).

        Raises:
            LeaseLost: `owner` no longer holds the run's lease.
            Conflict: the journal grew past `expect_last`.
            UnknownRun: no such run.
        """
        if not events:
            return []
        done = await self._append_at_once(run_id, events, owner, expect_last, release)
        if done is not None:
            return done
        now = time.time()

        def append() -> Flow[int]:
            update, params = run_update(run_id, events, owner, expect_last, release, now)
            row = yield one(update + " RETURNING last_seq", *params)
            if row is None:
                yield from self._missing_or_lost(run_id, owner)
                raise Conflict(f"run {run_id!r} has events past {expect_last}")
            first: int = row[0] - len(events) + 1
            encode = self._keys.encode_event
            stored = []
            for i, e in enumerate(events):
                stored.append((yield from encode(run_id, first + i, e.type, e.task, e.data,
                                                 e.subject, now)))
            yield self._insert_events(run_id, first, now, events, stored)
            return first

        first = await self._write(append())
        self._appended(run_id, events, first + len(events) - 1)
        return [Event(run_id=run_id, seq=first + i, type=e.type, task=e.task, data=e.data,
                      ts=now) for i, e in enumerate(events)]

    @staticmethod
    def _missing_or_lost(run_id: str, owner: Owner | None) -> Flow[None]:
        """Raise UnknownRun if the run is gone, LeaseLost if `owner` lost it."""
        row = yield one("SELECT owner FROM {p}runs WHERE run_id = ?", run_id)
        if row is None:
            raise UnknownRun(f"no run {run_id!r} in the journal")
        if owner is not None and row[0] != owner.token:
            raise LeaseLost(f"run {run_id!r} was taken over by another process")

    async def events(self, run_id: str, after: int = 0) -> list[Event]:
        """The run's events with a sequence number above `after`, in order.

        Raises:
            UnknownRun: no such run.
            JournalDamaged: an event row fails its checksum, or events are missing.
        """
        return await self._read(self._events(run_id, after))

    async def event_pages(self, run_id: str, after: int = 0, *, size: int = EVENT_PAGE
                          ) -> AsyncIterator[list[Event]]:
        """The run's events above `after`, in order, read `size` at a time (each page its
        own read), so that a reader folding them holds one page and not the whole journal.
        It ends with the last event journaled when its last page was read.

        Raises:
            UnknownRun: no such run.
            JournalDamaged: as `events`, page by page.
        """
        while True:
            page = await self._read(self._events(run_id, after, size))
            if page:
                yield page
            if len(page) < size:
                return
            after = page[-1].seq

    def _events(self, run_id: str, after: int, limit: int | None = None
                ) -> Flow[list[Event]]:
        if not self._sums_required:
            self._sums_required = (
                yield one("SELECT 1 FROM {p}meta WHERE key = 'event_sums'")) is not None
        # The count first: events only grow, so fewer than it counts means damage.
        run = yield one("SELECT last_seq, EXISTS (SELECT 1 FROM {p}data_keys WHERE owner = ?)"
                        " FROM {p}runs WHERE run_id = ?", run_owner(run_id), run_id)
        last_seq = None if run is None else run[0]
        try:
            query = ("SELECT seq, type, task, data, {sealed}, ts, sum FROM {p}events"
                     " WHERE run_id = ? AND seq > ? ORDER BY seq")
            found: list[Row] = yield (rows(query, run_id, after) if limit is None else
                                      rows(query + " LIMIT ?", run_id, after, limit))
        except JournalDamaged as e:
            raise (yield from self._unreadable(run_id, after, last_seq, e)) from e
        if run is None:
            if not found and after == 0:
                raise UnknownRun(f"no run {run_id!r} in the journal")
            if found:
                raise JournalDamaged(f"{self.location}: run {run_id!r} has events but no "
                                     f"record in {self._RUNS}: the journal is damaged")
        # A full page is followed by more: only the last one can fall short of the count.
        check_count(self.location, run_id, after, [r[0] for r in found],
                    None if limit is not None and len(found) == limit else last_seq)
        sealed_run, required = bool(run and run[1]), self._sums_required
        out = []
        for seq, type_, task, text, sealed, ts, stored in found:
            checksum = None if stored is None else bytes(stored)
            if isinstance(text, str):
                data = clear_payload(self.location, run_id, seq, type_, task, text, ts,
                                     checksum, sealed_run=sealed_run, required=required)
            elif (blob := text if sealed is None else sealed) is None:
                raise damaged(self.location, run_id, seq, "it has no payload")
            else:
                data = yield from self._keys.decode_sealed(
                    run_id, seq, type_, task, bytes(blob), ts, checksum, required=required)
            out.append(Event(run_id=run_id, seq=seq, type=type_, task=task, data=data, ts=ts))
        return out

    async def runs(self, limit: int = 50, status: str | None = None) -> list[RunSummary]:
        """The most recent runs first."""
        query = ("SELECT run_id, workflow, status, started_at, updated_at, finished_at, last_seq"
                 " FROM {p}runs")
        params: tuple[object, ...] = ()
        if status:
            query += " WHERE status = ?"
            params = (status,)
        query += " ORDER BY started_at DESC LIMIT ?"
        found = await self._read(_one_query(rows(query, *params, limit)))
        return [RunSummary(run_id=r[0], workflow=r[1], status=r[2], started_at=r[3],
                           updated_at=r[4], finished_at=r[5], events=r[6]) for r in found]

    async def session_runs(self, session: str) -> list[str]:
        """The ids of the runs started with `session` (the `session` of their
        `run_started` event), in the order they started; empty for an unknown session."""
        found = await self._read(_one_query(rows(
            "SELECT run_id FROM {p}runs WHERE session = ? ORDER BY started_at, {started}",
            session)))
        return [r[0] for r in found]

    async def find_run(self, prefix: str) -> str:
        """The full id of the run whose id is `prefix` or starts with it.

        Raises:
            UnknownRun: none, or more than one, matches.
        """
        found = await self._read(_one_query(rows(
            "SELECT run_id FROM {p}runs WHERE run_id = ? OR run_id LIKE ? ESCAPE '\\' LIMIT 3",
            prefix, like_prefix(prefix))))
        return one_run(prefix, {str(r[0]) for r in found}, self.location)

    # -- leases -----------------------------------------------------------------------

    async def acquire(self, run_id: str, owner: Owner, lease: float) -> Owner | None:
        """Lease the run to `owner` for `lease` seconds if no live owner holds it.

        Returns None on success, else the live owner that holds it.
        """
        def acquire() -> Flow[Owner | None]:
            row = yield one("SELECT owner, owner_pid, owner_host, lease_until FROM {p}runs"
                            " WHERE run_id = ?{for_update}", run_id)
            if row is None:
                raise UnknownRun(f"no run {run_id!r} in the journal")
            token, pid, host, until = row
            now = time.time()
            if token is not None and token != owner.token and until is not None and until > now:
                holder = Owner(token=token, pid=pid, host=host)
                if holds(holder, owner):
                    return holder
            yield count("UPDATE {p}runs SET owner = ?, owner_pid = ?, owner_host = ?,"
                        " lease_until = ? WHERE run_id = ?",
                        owner.token, owner.pid, owner.host, now + lease, run_id)
            return None

        return await self._write(acquire())

    async def renew(self, run_id: str, owner: Owner, lease: float) -> None:
        """Extend `owner`'s lease. Raises LeaseLost if it no longer holds it."""
        def renew() -> Flow[None]:
            n = yield count("UPDATE {p}runs SET lease_until = ? WHERE run_id = ? AND owner = ?",
                            time.time() + lease, run_id, owner.token)
            if n == 0:
                yield from self._missing_or_lost(run_id, owner)
                raise LeaseLost(f"run {run_id!r} was taken over by another process")

        await self._write(renew(), atomic=False)

    async def release(self, run_id: str, owner: Owner) -> None:
        """Give the lease up (a no-op if `owner` does not hold it)."""
        await self._write(_one_query(count(
            f"UPDATE {{p}}runs SET {_RELEASE} WHERE run_id = ? AND owner = ?",
            run_id, owner.token)), atomic=False)

    # -- circuits and the reply cache -----------------------------------------------------

    async def circuit(self, agent: str) -> CircuitState:
        """The agent's circuit breaker state."""
        row = await self._read(_one_query(one(
            "SELECT failures, opened_at FROM {p}circuits WHERE agent = ?", agent)))
        return CircuitState() if row is None else CircuitState(failures=row[0], opened_at=row[1])

    async def set_circuit(self, agent: str, state: CircuitState) -> None:
        """Record the agent's circuit breaker state."""
        await self._write(_one_query(count(
            "INSERT INTO {p}circuits VALUES (?, ?, ?) ON CONFLICT (agent) DO UPDATE SET"
            " failures = excluded.failures, opened_at = excluded.opened_at",
            agent, state.failures, state.opened_at)), atomic=False)

    async def cache_get(self, key: str) -> dict[str, Any] | None:
        """The reply cached under `key` (what `cache_put` stored), or None."""
        reply: dict[str, Any] | None = await self._read(self._get(
            self._GET_CACHE, key, context("cache", key), f"cached reply {key!r}"))
        return reply

    async def cache_put(self, key: str, value: dict[str, Any]) -> None:
        """Cache a model reply (a JSON object) under `key`, replacing any there."""
        await self._write(self._put(self._PUT_CACHE, key, "cache", value,
                                    context("cache", key)))

    # -- encryption at rest (see podium.security.crypto) ---------------------------------

    @property
    def encrypted(self) -> bool:
        """Whether this store encrypts what it writes (it holds a master key)."""
        return self.keyring is not None

    async def vault_get(self, run_id: str) -> dict[str, str] | None:
        """The run's masking vault (placeholder → value), or None."""
        entries: dict[str, str] | None = await self._read(self._get(
            self._GET_VAULT, run_id, context("vault", run_id),
            f"the masking vault of run {run_id!r}"))
        return entries

    async def vault_put(self, run_id: str, entries: dict[str, str]) -> None:
        """Keep the run's masking vault, encrypted under the run's data key."""
        await self._write(self._put(self._PUT_VAULT, run_id, run_owner(run_id), entries,
                                    context("vault", run_id)))

    def _get(self, sql: str, key: str, where: bytes, what: str) -> Flow[Any]:
        row = yield one(sql, key)
        if row is None:
            return None
        text, sealed = row
        if isinstance(text, str):
            return json.loads(text)
        raw = yield from self._keys.open(text if sealed is None else sealed, where, what)
        return None if raw is None else json.loads(raw)

    def _put(self, sql: str, key: str, owner: str, value: dict[str, Any], where: bytes
             ) -> Flow[None]:
        text = dumps(value)
        if self.keyring is None and owner.startswith("run:"):
            yield from self._keys.refuse_clear(key)
        elif self.keyring is None:
            yield from self._keys.refuse_downgrade()
        sealed = yield from self._keys.seal_for(owner, text.encode(), where)
        payload = text if sealed is None else sealed
        yield count(sql, key, *self._payload_params(payload), time.time())

    async def seal(self, value: bytes, *, where: bytes, run_id: str | None = None,
                   subject: str | None = None) -> bytes:
        """`value` encrypted under the subject's data key (else the run's, else the store's),
        bound to `where` (make it with `podium.security.crypto.context`, naming the table,
        row and field the result will be kept in). Unencrypted stores return it marked as
        clear."""
        owner = (subject_owner(subject) if subject is not None
                 else run_owner(run_id) if run_id is not None else "store")

        def seal() -> Flow[bytes | None]:
            if self.keyring is None:
                yield from self._keys.refuse_downgrade()
            return (yield from self._keys.seal_for(owner, value, where))

        sealed = await self._write(seal())
        return bytes([0]) + value if sealed is None else sealed

    async def unseal(self, blob: bytes, *, where: bytes) -> bytes | None:
        """What `seal` sealed at `where`; None when its data key was shredded.

        Raises:
            DecryptError: `blob` was sealed for another place, or altered.
            KeyConfigError: the master key it needs is not configured.
        """
        if blob[:1] == b"\x00":
            return blob[1:]
        return await self._read(self._keys.open(blob, where, "a sealed value"))

    async def shred_run(self, run_id: str) -> None:
        """Destroy the run's data key: its payloads and vault become unreadable for good
        (events read back as `{"_erased": "run"}`; types, tasks and times remain). A run
        written unencrypted has its payloads overwritten instead.

        Raises:
            UnknownRun: no such run.
            RunBusy: a live process executes the run.
        """
        classes: set[str] = set()
        if self.audit is not None:  # the record names the classes of data the vault held
            try:
                entries = await self.vault_get(run_id)
            except PodiumError:  # unreadable here (no key, no run): no class named
                entries = None
            classes = Vault.from_entries(run_id, entries).labels() if entries else set()
        try:
            keys, vault = await self._write(self._shred_run(run_id))
            await self._reclaim("data_keys", "vaults", *(["events"] if keys == 0 else []))
        except PodiumError as e:
            if self.audit is not None:
                record_shred_run(self.audit, self.actor, run_id, 0, vault=False,
                                 data_classes=(), error=e)
            raise
        if self.audit is not None:
            record_shred_run(self.audit, self.actor, run_id, keys, vault=vault,
                             data_classes=classes)

    def _shred_run(self, run_id: str) -> Flow[tuple[int, bool]]:
        row = yield one("SELECT owner_pid, owner_host, lease_until FROM {p}runs"
                        " WHERE run_id = ?{for_update}", run_id)
        if row is None:
            raise UnknownRun(f"no run {run_id!r} in the journal")
        pid, host, until = row
        if until is not None and until > time.time() and busy(pid, host):
            raise RunBusy(f"run {run_id!r} is being executed by process {pid} on "
                          f"{host!r}; erase it once it stopped")
        keys = yield from self._keys.shred(run_owner(run_id))
        if keys == 0:
            # Written with no master key: overwrite the payloads themselves.
            erased = dumps({ERASED: "run"})
            found = yield rows("SELECT seq, type, task, ts FROM {p}events WHERE run_id = ?"
                               " AND {is_clear}", run_id)
            yield many("UPDATE {p}events SET data = ?, sum = ? WHERE run_id = ? AND seq = ?",
                       [(erased, event_sum(run_id, s, t, k, erased, ts), run_id, s)
                        for s, t, k, ts in found])
        vault = yield count("DELETE FROM {p}vaults WHERE run_id = ?", run_id)
        return keys, vault > 0

    async def shred_subject(self, subject: str) -> int:
        """Destroy the subject's data key: every payload sealed for the subject (events
        appended with `NewEvent(subject=...)`, values sealed with `seal(subject=...)`)
        becomes unreadable, in every run. Returns how many keys were destroyed (0: the
        subject had none). A later payload for the subject gets a new key.

        Raises:
            KeyConfigError: the store is unencrypted, so nothing was sealed per subject.
        """
        try:
            if self.keyring is None:
                raise KeyConfigError(
                    f"cannot erase subject {subject!r} by crypto-shredding: this journal is "
                    "not encrypted (no master key configured), so payloads tagged with a "
                    "subject were stored in clear; configure a master key (podium keys init)")
            shredded = await self._write(self._keys.shred(subject_owner(subject)))
            await self._reclaim("data_keys")
        except PodiumError as e:
            if self.audit is not None:
                record_shred_subject(self.audit, self.actor, subject, 0, e)
            raise
        if self.audit is not None:
            record_shred_subject(self.audit, self.actor, subject, shredded)
        return shredded

    async def key_status(self) -> KeyStatus:
        """Whether encryption is on, and the data keys by master key."""
        return await self._read(self._keys.status())

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
        try:
            total = await self._rotate(new, batch)
        except PodiumError as e:
            if self.audit is not None:
                record_rotate(self.audit, self.actor, new.key_id, previous, None, e)
            raise
        if self.audit is not None:
            record_rotate(self.audit, self.actor, new.key_id, previous, total)
        return total

    async def _rotate(self, new: MasterKey, batch: int) -> int:
        if self.keyring is None or self.keyring.get(new.key_id) is None:
            raise KeyConfigError("rotating needs a store opened with the new master key "
                                 "and the current one")
        await self._write(self._keys.start_rotation(new))
        total = 0
        while True:
            n, more = await self._write(self._rewrap(new, batch))
            total += n
            if not more:
                break
        await self._reclaim("data_keys")
        return total

    def _rewrap(self, new: MasterKey, batch: int) -> Flow[tuple[int, bool]]:
        """Re-wrap a batch: how many, and whether to go on (a row locked by a shred may drop
        out of a batch: count what is left before stopping)."""
        n = yield from self._keys.rewrap(new, batch)
        return n, n > 0 or (yield from self._keys.left_to_rewrap(new)) > 0


def run_update(run_id: str, events: Sequence[NewEvent], owner: Owner | None,
               expect_last: int | None, release: bool, now: float
               ) -> tuple[str, list[object]]:
    """The conditional update of the run's row that an append makes: its sequence numbers,
    status and end, and the lease and `expect_last` checks, in one statement."""
    status = next((RUN_STATUS[e.type] for e in reversed(events) if e.type in RUN_STATUS), None)
    sets = "UPDATE {p}runs SET last_seq = last_seq + ?, updated_at = ?"
    params: list[object] = [len(events), now]
    if status is not None:
        sets += ", status = ?"
        params.append(status)
    if any(e.type in RUN_ENDS for e in events):
        sets += ", finished_at = ?"
        params.append(now)
    if release:
        sets += ", " + _RELEASE
    where = " WHERE run_id = ?"
    params.append(run_id)
    if owner is not None:
        where += " AND owner = ?"
        params.append(owner.token)
    if expect_last is not None:
        where += " AND last_seq = ?"
        params.append(expect_last)
    return sets + where, params


def _one_query(query: Query) -> Flow[Any]:
    """A flow of one statement, returning its result."""
    return (yield query)
