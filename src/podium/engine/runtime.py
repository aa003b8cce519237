"""The runtime: starts and resumes runs, schedules ready tasks, journals every change first.

A run is driven by one engine at a time, which holds the run's lease in the store; another
process that finds the lease held by a live owner does not touch the run. The state of a
run is always `RunState.of(journal)`: resuming after a crash folds the journal and goes on,
so completed tasks are never run again and interrupted ones run again with the same
idempotency key.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from podium.core.agent import Executor
from podium.core.check import check
from podium.core.events import (
    NewEvent,
    RunStarted,
    TaskApproved,
    TaskRejected,
)
from podium.core.inputs import coerce_inputs
from podium.core.principal import ANONYMOUS, Principal
from podium.core.state import ENDED_STATUSES, RunState
from podium.core.workflow import Workflow
from podium.engine import _control
from podium.engine._memory import needs_memory
from podium.engine.circuit import Breakers
from podium.engine.drive import EventHook, RunDrive
from podium.engine.executors.local import LocalExecutor
from podium.engine.guard import Guard
from podium.engine.tool_check import checked_tools
from podium.errors import (
    NotWaiting,
    RunBusy,
    UserError,
)
from podium.memory.store import MemoryStore
from podium.security.audit import AuditLog
from podium.security.functions import check_code
from podium.security.rbac import AccessPolicy
from podium.store.base import Conflict, RunSummary, Store, new_owner


def new_run_id() -> str:
    """A run id that sorts by time and is unique: `20261124-221530-3fa9c1`."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


class Engine:
    """Runs workflows durably against a store.

    Args:
        store: the journal.
        lease: seconds a run's lease lasts between renewals; another process may take a
            run over only once its owner's lease expired or its owner's process is gone.
        policy: the access policy runs, approvals, agents and tools are checked against;
            None: everything is allowed.
        audit: where run starts and ends, tool calls, approvals and denials are recorded;
            None: nowhere. The engine does not close it.
        memory: the long-term memory store that tasks declaring `memory:` read and write.
        executor: where sync function agents run; None: this machine's threads and worker
            processes (`LocalExecutor`).
    """

    def __init__(self, store: Store, *, lease: float = 30.0, policy: AccessPolicy | None = None,
                 audit: AuditLog | None = None, memory: MemoryStore | None = None,
                 executor: Executor | None = None) -> None:
        self.store = store
        self.memory = memory
        self.executor = executor or LocalExecutor()
        self.lease = lease
        self.owner = new_owner()
        self.breakers = Breakers(store)
        self.policy = policy
        self.guard = (Guard(policy or AccessPolicy.unrestricted(), audit)
                      if policy is not None or audit is not None else None)
        """None when there is neither a policy nor an audit log: then nothing is checked."""

    async def start(self, workflow: Workflow, inputs: Mapping[str, Any] | None = None, *,
                    run_id: str | None = None, on_event: EventHook | None = None,
                    on_token: Callable[[str, str], None] | None = None,
                    principal: Principal | None = None,
                    session: str | None = None) -> RunState:
        """Start a run on behalf of `principal` and drive it until it completes, fails or
        waits for a human. `on_token(task key, text)` is called as agents' model replies
        stream in.

        Runs started with the same `session` share a thread: the inputs, outputs and
        notes of the session's earlier runs reach this run's LLM agents' prompts.

        Raises:
            WorkflowError: the workflow or the inputs are invalid (nothing is journaled).
            PermissionDenied: the policy does not let the principal run the workflow
                (nothing is journaled).
            UserError: `session` is not a non-empty string.
        """
        if session is not None and (not isinstance(session, str) or not session.strip()):
            raise UserError(f"session must be a non-empty string, got {session!r}")
        check(workflow)
        check_code(workflow, self.policy)
        needs_memory(workflow, self.memory)
        values = coerce_inputs(workflow, inputs or {})
        if self.guard is not None:
            principal = principal or ANONYMOUS
            self.guard.check(principal, "workflow:run", workflow.name)
        run_id = run_id or new_run_id()
        subjects = workflow.subjects(values)
        first = NewEvent.of(RunStarted(
            workflow=workflow.name, version=workflow.version,
            source=os.path.abspath(workflow.source)  # noqa: ASYNC240 - no I/O
            if workflow.source else None,
            cwd=os.getcwd(), inputs=values, pid=os.getpid(),
            principal=principal.to_json() if principal else None,
            session=session,
            subjects=subjects or None), subject=subjects[0] if subjects else None)
        resources = await checked_tools(workflow)
        try:
            event = await self.store.create_run(run_id, workflow.name, first, self.owner)
        except BaseException:
            await resources.close()
            raise
        state = RunState.of(run_id, [event])
        if self.guard is not None:
            self.guard.record(principal, "run.start", run_id, detail=workflow.name)
        if on_event:
            on_event(event, state)
        return self._ended(await RunDrive(self, workflow, state, on_event, on_token,
                                      resources).drive())

    def _ended(self, state: RunState) -> RunState:
        if self.guard is not None and state.status in ENDED_STATUSES:
            self.guard.record(state.principal, "run.end", state.run_id, state.status)
        return state

    async def resume(self, workflow: Workflow, run_id: str, *,
                     on_event: EventHook | None = None,
                     on_token: Callable[[str, str], None] | None = None,
                     principal: Principal | None = None) -> RunState:
        """Continue a run that was interrupted or that a human answered. With a policy,
        `principal` (who resumes it) must be allowed to run the workflow; the run's tasks
        stay on behalf of the principal that started it.

        A run that already ended is returned as it is.

        Raises:
            RunBusy: a live process is executing the run.
            UnknownRun: no such run.
            PermissionDenied: the policy does not let `principal` run the workflow.
        """
        state = await self.state(run_id)
        if state.status in ENDED_STATUSES:
            return state
        check(workflow)
        check_code(workflow, self.policy)
        needs_memory(workflow, self.memory)
        if self.guard is not None and principal is not None:
            self.guard.check(principal, "workflow:run", state.workflow, subject=run_id)
        holder = await self.store.acquire(run_id, self.owner, self.lease)
        if holder is not None:
            raise RunBusy(f"run {run_id!r} is being executed by process {holder.pid} on "
                          f"{holder.host!r}; it will pick up approvals by itself")
        cancelled = await _control.resumed(self, run_id)
        if cancelled is not None:
            return cancelled
        for event in await self.store.events(run_id, after=state.last_seq):
            state.apply(event)
        try:
            resources = await checked_tools(workflow)
        except BaseException:
            await self.store.release(run_id, self.owner)
            raise
        if self.guard is not None and principal is not None:
            self.guard.record(principal, "run.resume", run_id)
        return self._ended(await RunDrive(self, workflow, state, on_event, on_token,
                                      resources).drive())

    async def state(self, run_id: str) -> RunState:
        """The run's state, folded from its journal (unchecked: see `view`)."""
        return RunState.of(run_id, await self.store.events(run_id))

    async def view(self, run_id: str, *, principal: Principal | None = None,
                   lean: bool = False) -> RunState:
        """The run's state, for `principal`: with a policy, it needs `workflow:view` on the
        run's workflow; the view is audited (`run.view`). The journal is read a page at a
        time; `lean`: a state to print the run record from, of a run of any size, whose
        finished tasks are kept as their records alone (`podium.core.settled`).

        Raises:
            UnknownRun: no such run.
            PermissionDenied: the policy does not let the principal view the run.
        """
        return await _control.view(self, run_id, principal, lean)

    async def runs(self, *, principal: Principal | None = None, limit: int = 50,
                   status: str | None = None) -> list[RunSummary]:
        """The newest runs (up to `limit`, of `status` if given) that `principal` may view
        (`workflow:view`); runs of other workflows are left out, and the listing is audited
        (`run.list`, with how many were shown and hidden)."""
        return await _control.runs(self, principal, limit, status)

    async def cancel(self, run_id: str, reason: str = "", *,
                     principal: Principal | None = None) -> RunState:
        """Cancel a run on behalf of `principal` (with a policy, it needs `workflow:cancel`);
        audited as `run.cancel`.

        `run_cancelled` is journaled at once, and the run's lease is taken in the same
        transaction: a run waiting for a human, or whose process is gone, is cancelled then
        and there; a live process executing it can no longer write to it, and stops at its
        next scheduling point (a task starting or finishing, a model or tool call journaled,
        or its next lease renewal). A call already under way may still finish.

        Returns:
            The run's state, `cancelled`.

        Raises:
            UnknownRun: no such run.
            RunEnded: the run already completed, failed or was cancelled.
            PermissionDenied: the policy does not let the principal cancel it (nothing is
                journaled).
        """
        return await _control.cancel(self, run_id, reason, principal)

    async def approve(self, run_id: str, task: str, data: Any = None, *, by: str = "",
                      principal: Principal | None = None) -> None:
        """Record `principal`'s approval of a waiting task; `data` becomes its output.
        `by` names who approved when no principal is given.

        Raises:
            PermissionDenied: the policy does not let the principal approve in this
                workflow (nothing is journaled).
        """
        by = await self._approver(run_id, task, principal, by)
        await self._answer(run_id, task, NewEvent.of(TaskApproved(data=data, by=by),
                                                     task=task))
        if self.guard is not None:
            self.guard.record(principal, "task.approve", f"{run_id}/{task}")

    async def reject(self, run_id: str, task: str, reason: str = "", *, by: str = "",
                     principal: Principal | None = None) -> None:
        """Record `principal`'s rejection of a waiting task; its policy decides what
        follows. Needs the same permission as `approve`.

        Raises:
            PermissionDenied: the policy does not let the principal approve in this
                workflow (nothing is journaled).
        """
        by = await self._approver(run_id, task, principal, by)
        await self._answer(run_id, task, NewEvent.of(TaskRejected(reason=reason, by=by),
                                                     task=task))
        if self.guard is not None:
            self.guard.record(principal, "task.reject", f"{run_id}/{task}")

    async def _approver(self, run_id: str, task: str, principal: Principal | None,
                        by: str) -> str:
        if self.guard is not None:
            workflow = (await self.state(run_id)).workflow
            self.guard.check(principal or ANONYMOUS, "workflow:approve", workflow,
                             subject=f"{run_id}/{task}")
        return principal.id if principal is not None else by

    async def _answer(self, run_id: str, task: str, event: NewEvent) -> None:
        # The check and the append must see the same journal, or two people could answer
        # one task; when the run's owner appends in between, look again.
        while True:
            state = await self.state(run_id)
            if state.status == "cancelled":  # its tasks may still show as waiting
                raise NotWaiting(f"run {run_id!r} is cancelled: its tasks wait for nobody")
            waiting = [t.key for t in state.waiting()]
            ts = state.tasks.get(task)
            if ts is None or ts.status != "waiting":
                status = "not started, or not a task of this run" if ts is None else ts.status
                listed = ", ".join(repr(k) for k in waiting) or "none"
                raise NotWaiting(f"task {task!r} of run {run_id!r} is not waiting for a "
                                 f"human (it is {status}); waiting: {listed}")
            if ts.approval is not None:
                raise NotWaiting(f"task {task!r} of run {run_id!r} was already answered")
            try:
                await self.store.append(run_id, [event], None, expect_last=state.last_seq)
                return
            except Conflict:
                continue
