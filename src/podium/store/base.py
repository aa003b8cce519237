"""The journal's interface: append-only events per run, run leases, agent health, and the
opt-in cache of model replies.

Every backend (SQLite by default, PostgreSQL for shared deployments) implements `Store`
and passes the same conformance tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from podium.core.events import Event, NewEvent
from podium.errors import Conflict as Conflict
from podium.errors import LeaseLost as LeaseLost
from podium.security.audit import AuditLog
from podium.security.crypto import MasterKey


@dataclass(frozen=True, kw_only=True)
class Owner:
    """Who executes a run: a token unique to one engine, and where it lives."""

    token: str
    pid: int
    host: str


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


@dataclass(frozen=True, kw_only=True)
class KeyStatus:
    """What `podium keys status` shows."""

    encrypted: bool
    """Whether this process holds a master key (and so encrypts what it writes)."""
    process_keys: tuple[str, ...]
    """The ids of the master keys this process holds, the primary first."""
    current: str | None
    """The id of the journal's current master key; None before the first data key."""
    data_keys: dict[str, int] = field(default_factory=dict)
    """Live data keys by the id of the master key that wraps them."""
    shredded: int = 0
    """Data keys destroyed (what they encrypted is unreadable)."""
    clear_runs: int = 0
    """Runs whose journal was written with no master key (stored unencrypted)."""


class Store(ABC):
    """Durable, append-only journal of runs."""

    audit: AuditLog | None = None
    """Where key rotations and crypto-shredding are recorded (`podium.security.key_audit`);
    None: nowhere. The store does not close it."""
    actor: str = "engine"
    """Who those records name as having acted."""

    @property
    def location(self) -> str:
        """Where the journal is, fit to show (a file, or a URL without its password)."""
        return type(self).__name__

    @abstractmethod
    async def create_run(self, run_id: str, workflow: str, first: NewEvent, owner: Owner) -> Event:
        """Create a run whose journal starts with `first`, leased to `owner`."""

    @abstractmethod
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

    @abstractmethod
    async def events(self, run_id: str, after: int = 0) -> list[Event]:
        """The run's events with a sequence number above `after`, in order.

        Raises:
            UnknownRun: no such run.
        """

    @abstractmethod
    async def runs(self, limit: int = 50, status: str | None = None) -> list[RunSummary]:
        """The most recent runs first."""

    @abstractmethod
    async def session_runs(self, session: str) -> list[str]:
        """The ids of the runs started with `session` (the `session` of their
        `run_started` event), in the order they started; empty for an unknown session."""

    @abstractmethod
    async def find_run(self, prefix: str) -> str:
        """The full id of the run whose id is `prefix` or starts with it.

        Raises:
            UnknownRun: none, or more than one, matches.
        """

    @abstractmethod
    async def acquire(self, run_id: str, owner: Owner, lease: float) -> Owner | None:
        """Lease the run to `owner` for `lease` seconds if no live owner holds it.

        Returns None on success, else the live owner that holds it.
        """

    @abstractmethod
    async def renew(self, run_id: str, owner: Owner, lease: float) -> None:
        """Extend `owner`'s lease. Raises LeaseLost if it no longer holds it."""

    @abstractmethod
    async def release(self, run_id: str, owner: Owner) -> None:
        """Give the lease up (a no-op if `owner` does not hold it)."""

    @abstractmethod
    async def circuit(self, agent: str) -> CircuitState:
        """The agent's circuit breaker state."""

    @abstractmethod
    async def set_circuit(self, agent: str, state: CircuitState) -> None:
        """Record the agent's circuit breaker state."""

    @abstractmethod
    async def cache_get(self, key: str) -> dict[str, Any] | None:
        """The reply cached under `key` (what `cache_put` stored), or None."""

    @abstractmethod
    async def cache_put(self, key: str, value: dict[str, Any]) -> None:
        """Cache a model reply (a JSON object) under `key`, replacing any there."""

    # -- encryption at rest (see podium.security.crypto) ---------------------------------

    @property
    @abstractmethod
    def encrypted(self) -> bool:
        """Whether this store encrypts what it writes (it holds a master key)."""

    @abstractmethod
    async def vault_get(self, run_id: str) -> dict[str, str] | None:
        """The run's masking vault (placeholder → value), or None."""

    @abstractmethod
    async def vault_put(self, run_id: str, entries: dict[str, str]) -> None:
        """Keep the run's masking vault, encrypted under the run's data key."""

    @abstractmethod
    async def seal(self, value: bytes, *, where: bytes, run_id: str | None = None,
                   subject: str | None = None) -> bytes:
        """`value` encrypted under the subject's data key (else the run's, else the store's),
        bound to `where` (make it with `podium.security.crypto.context`, naming the table,
        row and field the result will be kept in). Unencrypted stores return it marked as
        clear."""

    @abstractmethod
    async def unseal(self, blob: bytes, *, where: bytes) -> bytes | None:
        """What `seal` sealed at `where`; None when its data key was shredded.

        Raises:
            DecryptError: `blob` was sealed for another place, or altered.
            KeyConfigError: the master key it needs is not configured.
        """

    @abstractmethod
    async def shred_run(self, run_id: str) -> None:
        """Destroy the run's data key: its payloads and vault become unreadable for good
        (events read back as `{"_erased": "run"}`; types, tasks and times remain). A run
        written unencrypted has its payloads overwritten instead.

        Raises:
            UnknownRun: no such run.
            RunBusy: a live process executes the run.
        """

    @abstractmethod
    async def shred_subject(self, subject: str) -> int:
        """Destroy the subject's data key: every payload sealed for the subject (events
        appended with `NewEvent(subject=...)`, values sealed with `seal(subject=...)`)
        becomes unreadable, in every run. Returns how many keys were destroyed (0: the
        subject had none). A later payload for the subject gets a new key.

        Raises:
            KeyConfigError: the store is unencrypted, so nothing was sealed per subject.
        """

    @abstractmethod
    async def key_status(self) -> KeyStatus:
        """Whether encryption is on, and the data keys by master key."""

    @abstractmethod
    async def rotate_master_key(self, new: MasterKey, *, batch: int = 100) -> int:
        """Re-wrap every data key under `new`; returns how many were re-wrapped."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""
