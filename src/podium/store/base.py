"""The journal's interface: append-only events per run, run leases, agent health, and the
opt-in cache of model replies.

Every backend (SQLite by default, PostgreSQL for shared deployments) implements `Store`
and passes the same conformance tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from podium.core.events import Event, NewEvent
from podium.errors import PodiumError


class LeaseLost(PodiumError):
    """Another process took the run over; this one must stop writing to it."""


class Conflict(PodiumError):
    """The run's journal grew since the caller last read it (`expect_last` did not hold)."""


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


class Store(ABC):
    """Durable, append-only journal of runs."""

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

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""
