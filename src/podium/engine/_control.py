"""What a principal may do to runs from outside them: view, list, cancel.

The engine's `view`, `runs` and `cancel` are here, checked against the access policy
(`workflow:view`, `workflow:cancel`) and audited:

| action | subject | outcome | detail |
| --- | --- | --- | --- |
| `run.view` | run id | `ok` | |
| `run.list` | `runs` | `ok` | how many runs were shown and how many hidden |
| `run.cancel` | run id | `ok` | the status the run had, and whether a live process was told |
| `policy.deny` | run id | `denied` | `workflow:view` or `workflow:cancel` |

A cancel is one journal append: `run_cancelled` (data: `reason` `cancelled`, `error`, `by`,
`was`) with the run's lease released in the same transaction, under `expect_last`, so that
it never lands after the run ended. The process that was executing the run finds its lease
gone at its next write or renewal, reads the journal, sees the cancel, and stops (see
`RunDrive.drive`). The reason given is journaled, not audited: it is free text, and the audit
log holds no personal values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from podium.core.events import NewEvent, RunCancelled, RunResumed
from podium.core.principal import ANONYMOUS, Principal
from podium.core.settled import LeanFold
from podium.core.state import ENDED_STATUSES, RunState
from podium.engine.guard import Guard
from podium.errors import RunEnded
from podium.store.base import Conflict, LeaseLost, Owner, RunSummary, Store


class Controller(Protocol):
    """What acting on runs from outside needs of an engine (`Engine` is one): its journal,
    its guard, and who it is in the runs' leases."""

    store: Store
    guard: Guard | None
    owner: Owner
    lease: float

    async def state(self, run_id: str) -> RunState:
        """The run's state, folded from its journal."""
        ...


async def view(engine: Controller, run_id: str, principal: Principal | None,
               lean: bool = False) -> RunState:
    """`Engine.view`."""
    state = await fold(engine.store, run_id, lean)
    if engine.guard is not None:
        engine.guard.check(principal or ANONYMOUS, "workflow:view", state.workflow,
                           subject=run_id)
        engine.guard.record(principal, "run.view", run_id)
    return state


async def fold(store: Store, run_id: str, lean: bool) -> RunState:
    """The run's state folded from its journal read a page at a time; `lean`: with its
    finished tasks kept as their records (`LeanFold`), unless the journal adds to a task
    after it finished, which is folded again in full."""
    if lean:
        folding = LeanFold(run_id)
        async for page in store.event_pages(run_id):
            if not folding.add(page):
                break
        else:
            return folding.state
    state = RunState(run_id=run_id)
    async for page in store.event_pages(run_id):
        for event in page:
            state.apply(event)
    return state


def viewer(engine: Controller, principal: Principal | None) -> Callable[[str], bool] | None:
    """Whether `principal` may view runs of a workflow (by name); None with no policy."""
    if engine.guard is None or not engine.guard.policy.enforced:
        return None
    policy, who = engine.guard.policy, principal or ANONYMOUS
    return lambda workflow: policy.allows(who, "workflow:view", workflow).allowed


async def runs(engine: Controller, principal: Principal | None, limit: int, status: str | None
               ) -> list[RunSummary]:
    """`Engine.runs`: reads more of the newest runs until `limit` visible ones are found."""
    guard = engine.guard
    if guard is None:
        return await engine.store.runs(limit, status)
    who = principal or ANONYMOUS
    asked = limit
    while True:
        found = await engine.store.runs(asked, status)
        shown: list[RunSummary] = []
        hidden = 0
        for r in found:
            if len(shown) == limit:
                break
            if guard.policy.allows(who, "workflow:view", r.workflow).allowed:
                shown.append(r)
            else:
                hidden += 1
        if len(shown) == limit or len(found) < asked:
            break
        asked *= 4
    guard.record(principal, "run.list", "runs", detail=f"shown={len(shown)} hidden={hidden}")
    return shown


async def cancel(engine: Controller, run_id: str, reason: str, principal: Principal | None
                 ) -> RunState:
    """`Engine.cancel`."""
    state = await engine.state(run_id)
    if engine.guard is not None:
        engine.guard.check(principal or ANONYMOUS, "workflow:cancel", state.workflow,
                           subject=run_id)
    by = (principal or ANONYMOUS).id if engine.guard is not None or principal else ""
    while True:
        if state.status in ENDED_STATUSES:
            await engine.store.release(run_id, engine.owner)
            raise RunEnded(f"run {run_id!r} already {_ended(state.status)}; there is "
                           "nothing to cancel")
        holder = await engine.store.acquire(run_id, engine.owner, engine.lease)
        error = f"cancelled by {by!r}" if by else "cancelled"
        event = NewEvent.of(RunCancelled(
            reason="cancelled", error=f"{error}: {reason}" if reason else error,
            by=by, was=state.status))
        try:
            # Without the lease (a live process holds it) the append takes it away.
            await engine.store.append(run_id, [event], engine.owner if holder is None else None,
                                      expect_last=state.last_seq, release=True)
            break
        except (Conflict, LeaseLost):  # the journal grew meanwhile: look again
            state = await engine.state(run_id)
    if engine.guard is not None:
        told = f"; process {holder.pid} executing it stops" if holder is not None else ""
        engine.guard.record(principal, "run.cancel", run_id, detail=f"was {state.status}{told}")
    return await engine.state(run_id)


def _ended(status: str) -> str:
    return "was cancelled" if status == "cancelled" else status


async def resumed(engine: Controller, run_id: str) -> RunState | None:
    """Journal `run_resumed`, once `engine` holds the run's lease; unless the run was
    cancelled meanwhile: then release the lease and return the cancelled state.

    Raises:
        LeaseLost: another process took the run over.
    """
    try:
        if (await engine.state(run_id)).status != "cancelled":
            await engine.store.append(run_id, [NewEvent.of(RunResumed(
                pid=engine.owner.pid))], engine.owner)
            return None
    except LeaseLost:  # a cancel took the lease after we looked
        pass
    await engine.store.release(run_id, engine.owner)
    state = await engine.state(run_id)
    if state.status != "cancelled":
        raise LeaseLost(f"run {run_id!r} was taken over by another process")
    return state
