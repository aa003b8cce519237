"""Circuit breakers per agent, shared through the store by every run and process."""

from __future__ import annotations

import time
from dataclasses import replace

from podium.core.policy import CircuitPolicy
from podium.store.base import CircuitState, Store


class Breakers:
    """The circuit breakers of one engine, cached, written through to the store on change."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._states: dict[str, CircuitState] = {}
        self._trial: set[str] = set()

    async def _state(self, key: str) -> CircuitState:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = await self._store.circuit(key)
        return state

    async def allow(self, key: str, policy: CircuitPolicy) -> bool:
        """Whether the agent may be tried now: closed, or half-open with no trial under way."""
        if policy.threshold <= 0:
            return True
        state = await self._state(key)
        if state.opened_at is None:
            return True
        if time.time() - state.opened_at < policy.cooldown or key in self._trial:
            return False
        self._trial.add(key)
        return True

    async def is_open(self, key: str, policy: CircuitPolicy) -> bool:
        """Whether `allow` would refuse the agent now; unlike it, claims no half-open trial."""
        if policy.threshold <= 0:
            return False
        state = await self._state(key)
        if state.opened_at is None:
            return False
        return time.time() - state.opened_at < policy.cooldown or key in self._trial

    def abandon(self, key: str) -> None:
        """A trial ended with neither success nor failure (escalated, cancelled)."""
        self._trial.discard(key)

    async def success(self, key: str) -> None:
        """An attempt succeeded: the circuit closes."""
        self._trial.discard(key)
        state = await self._state(key)
        if state.failures or state.opened_at is not None:
            self._states[key] = CircuitState()
            await self._store.set_circuit(key, self._states[key])

    async def failure(self, key: str, policy: CircuitPolicy) -> bool:
        """An attempt failed. Returns whether the circuit is now open."""
        if policy.threshold <= 0:
            return False
        half_open = key in self._trial
        self._trial.discard(key)
        state = await self._state(key)
        state = replace(state, failures=state.failures + 1)
        if half_open or (state.opened_at is None and state.failures >= policy.threshold):
            state = replace(state, opened_at=time.time())
        self._states[key] = state
        await self._store.set_circuit(key, state)
        return state.opened_at is not None
