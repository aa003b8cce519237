"""A session's thread: what the earlier runs of a session asked and answered, read from
their journals (the store only says which runs belong to the session)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from podium.core.state import RunState, iso
from podium.store.base import Store


class SessionThread:
    """The runs of `session` started before `run_id`, loaded once, on first use.

    Each is `{"run_id", "workflow", "status", "started_at", "inputs", "outputs", "notes"}`,
    oldest first. Runs of the session started after this one are not part of its thread,
    nor runs of workflows `visible` says no to: under an access policy, those the run's
    principal may not view (`workflow:view`), since a session id is only a name anyone can
    give.
    """

    def __init__(self, store: Store, session: str, run_id: str,
                 visible: Callable[[str], bool] | None = None) -> None:
        self.store, self.session, self.run_id = store, session, run_id
        self.visible = visible
        self._thread: list[Mapping[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> Sequence[Mapping[str, Any]]:
        async with self._lock:
            if self._thread is None:
                self._thread = await self._load()
            return self._thread

    async def _load(self) -> list[Mapping[str, Any]]:
        ids = await self.store.session_runs(self.session)
        earlier = ids[:ids.index(self.run_id)] if self.run_id in ids else ids
        thread: list[Mapping[str, Any]] = []
        for run_id in earlier:
            state = RunState.of(run_id, await self.store.events(run_id))
            if self.visible is not None and not self.visible(state.workflow):
                continue
            thread.append({"run_id": run_id, "workflow": state.workflow,
                           "status": state.status, "started_at": iso(state.started_at),
                           "inputs": state.inputs, "outputs": state.outputs(),
                           "notes": state.notes})
        return thread
