"""A run's drive: schedules its ready tasks, journals every change before it counts.

`RunDrive` is what `Engine.start` and `Engine.resume` hand a run to once its lease is held
and its state folded: it runs the ready tasks (fan-outs an item at a time), groups the
appends of concurrent tasks into one commit, renews the lease, stops at a cancel, a budget
or a lost lease, and ends the run, or leaves it waiting for a person.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Set
from dataclasses import replace
from typing import Any, Protocol

from podium.core.agent import Agent, Capabilities, Executor
from podium.core.check import as_agent
from podium.core.events import (
    Event,
    FanoutStarted,
    ModelCalled,
    NewEvent,
    RunCompleted,
    RunFailed,
    RunWaiting,
    TaskCompleted,
    TaskFailed,
    TaskSkipped,
    item_key,
    split_key,
)
from podium.core.policy import Spent
from podium.core.principal import ANONYMOUS
from podium.core.state import DONE, RunState
from podium.core.templates import TemplateProblem, evaluate
from podium.core.workflow import Task, Workflow
from podium.engine import _control
from podium.engine._planning import RunPlanning
from podium.engine._session import SessionThread
from podium.engine.circuit import Breakers
from podium.engine.runner import TaskRunner
from podium.engine.tool_check import RunResources
from podium.errors import (
    JournalDamaged,
    JournalError,
    JournalUnavailable,
    PodiumError,
)
from podium.memory.store import MemoryStore
from podium.store.base import Conflict, LeaseLost

EventHook = Callable[[Event, RunState], None]
"""Called after each event is journaled, with the run's state including it."""


class Driver(_control.Controller, Protocol):
    """What driving a run needs of an engine (`Engine` is one)."""

    breakers: Breakers
    executor: Executor
    memory: MemoryStore | None


class RunDrive:
    """One engine's drive of one run: from its folded state to its end or its wait."""

    def __init__(self, engine: Driver, workflow: Workflow, state: RunState,
                 on_event: EventHook | None,
                 on_token: Callable[[str, str], None] | None = None,
                 resources: RunResources | None = None) -> None:
        self.engine, self.store, self.owner = engine, engine.store, engine.owner
        self.workflow, self.state, self.on_event = workflow, state, on_event
        self.run_id = state.run_id
        self.subject = next(iter(workflow.subjects(state.inputs)), None)
        """Whom the run is about (its first input marked `subject`): its events are tagged."""
        self.resources = resources or RunResources()
        agents: dict[str, Agent] = {
            name: as_agent(name, ref) for name, ref in workflow.agents.items()}
        self.runner = TaskRunner(
            run_id=self.run_id, workflow=workflow.name, state=lambda: self.state,
            journal=self.journal, agents=agents, breakers=engine.breakers,
            lent=Capabilities(
                cache=engine.store, resources=self.resources, on_token=on_token,
                vaults=engine.store, executor=engine.executor,
                session_thread=SessionThread(
                    engine.store, state.session, self.run_id, _control.viewer(
                        engine, state.principal)) if state.session else None),
            guard=engine.guard, principal=state.principal or (
                ANONYMOUS if engine.guard is not None else None),
            router_policy=workflow.router, session=state.session,
            untrusted_inputs=frozenset(n for n, s in workflow.inputs.items() if not s.is_trusted),
            memory=engine.memory, subjects=tuple(workflow.subjects(state.inputs)),
            circuits={name: getattr(a, "circuit", None) or workflow.circuit
                      for name, a in agents.items()})
        # A goal's plan, a replan or subtasks add tasks: the run executes the workflow
        # `planning` derives from the journal, never changing the caller's.
        self.planning = RunPlanning(workflow, lambda: self.state, self.journal, self._reload)
        self._index(self.planning.workflow())
        self._busy = 0
        """Tasks and fan-out items under way; with more than one, appends are grouped."""
        self._pending: list[tuple[tuple[NewEvent, ...], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self.spent = Spent()
        self.spent_by_agent: dict[str, Spent] = {}
        for ts in state.tasks.values():
            for spent in (self.spent, self._agent_spent(ts.agent)):
                spent.tokens += ts.input_tokens + ts.output_tokens
                spent.cost_usd += ts.cost_usd
                spent.model_calls += ts.model_calls
                spent.tool_calls += len(ts.tool_calls)
        self._over_budget: str | None = None
        self._lost: LeaseLost | None = None
        """Set when the heartbeat found the lease gone (the run cancelled, or taken over)."""
        self._main: asyncio.Task[Any] | None = None

    def _index(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.dependents: dict[str, list[str]] = {t: [] for t in workflow.tasks}
        for task in workflow.tasks.values():
            for need in task.needs:
                self.dependents[need].append(task.id)
        self.ancestors = workflow.ancestor_map()

    async def _reload(self) -> None:
        self.state = RunState.of(self.run_id, await self.store.events(self.run_id))

    async def journal(self, *events: NewEvent, expect_last: int | None = None,
                      release: bool = False) -> None:
        """Append events; they count once appended (the caller goes on after the commit)."""
        if self.subject is not None:
            # Sealed under the subject's key, so erasing the subject shreds them.
            events = tuple(e if e.subject else replace(e, subject=self.subject)
                           for e in events)
        if expect_last is None and not release and (self._busy > 1 or self._pending):
            # Group commit: what several tasks journal in one turn of the loop shares one
            # transaction, written by `_writer`.
            done = asyncio.get_running_loop().create_future()
            self._pending.append((events, done))
            self._wake.set()
            await done
            return
        self._applied(await self._append(events, expect_last=expect_last, release=release))

    async def _append(self, events: tuple[NewEvent, ...] | list[NewEvent], *,
                      expect_last: int | None = None, release: bool = False) -> list[Event]:
        """`store.append` for this drive; a failure to write (not a lost lease or a
        conflict, which the drive handles) becomes JournalUnavailable, which stops the run
        as it stands instead of failing an attempt."""
        try:
            return await self.store.append(self.run_id, events, self.owner,
                                           expect_last=expect_last, release=release)
        except JournalDamaged:
            raise
        except JournalError as e:
            # Named by file in the store; here the run it stopped is what matters.
            raise self._unavailable(e.__cause__ or e) from e
        except (PodiumError, asyncio.CancelledError):
            raise
        except Exception as e:
            raise self._unavailable(e) from e

    def _unavailable(self, e: BaseException) -> JournalUnavailable:
        return JournalUnavailable(
            f"cannot write to the journal {self.store.location!r}: {e}; run "
            f"{self.run_id!r} stopped where it stood, everything journaled is kept: "
            f"free space (or make it writable), then `podium resume {self.run_id}`",
            run_id=self.run_id)

    def _applied(self, events: list[Event]) -> None:
        for event in events:
            self.state.apply(event)
            if self.on_event:
                self.on_event(event, self.state)
            if event.type in ("model_call", "tool_call") and event.task is not None:
                self._spend(event)

    def _agent_spent(self, agent: str | None) -> Spent:
        return self.spent_by_agent.setdefault(agent or "", Spent())

    def _spend(self, event: Event) -> None:
        """Count what the event consumed; stop the run when a budget is reached."""
        agent = self.state.task(event.task or "").agent or ""
        d = event.payload
        for spent in (self.spent, self._agent_spent(agent)):
            if isinstance(d, ModelCalled):
                spent.model_calls += 1
                spent.tokens += int(d.input_tokens or 0) + int(d.output_tokens or 0)
                spent.cost_usd += float(d.cost_usd or 0.0)
            else:
                spent.tool_calls += 1
        over = self.workflow.budget.exceeded(self.spent)
        if over is None and agent in self.workflow.agent_budgets:
            over = self.workflow.agent_budgets[agent].exceeded(self.spent_by_agent[agent])
            over = over and f"agent {agent!r}: {over}"
        if over is not None and self._over_budget is None:
            self._over_budget = over
            if self._main is not None:
                self._main.cancel()  # every task of the run stops; drive() records why

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0)  # let the other tasks of this turn add theirs
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                appended = await self._append([e for events, _ in batch for e in events])
            except Exception as e:  # each waiting task raises it as its own
                for _, done in batch:
                    if not done.done():
                        done.set_exception(e)
                continue
            self._applied(appended)
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def drive(self) -> RunState:
        heartbeat = asyncio.create_task(self._heartbeat())
        writer = asyncio.create_task(self._writer())
        self._main = asyncio.current_task()
        try:
            await self._within_limits()
        except BaseExceptionGroup as group:
            # One task's engine failure (a lost lease, a broken store) ends the drive; show
            # it as itself, not wrapped.
            error = group.exceptions[0]
            if not (isinstance(error, LeaseLost) and await self._cancelled()):
                raise error from None
        except LeaseLost:
            if not await self._cancelled():
                raise
        finally:
            heartbeat.cancel()
            writer.cancel()
            await asyncio.gather(heartbeat, writer, return_exceptions=True)
            for _, done in self._pending:
                done.cancel()
            await self.resources.close()
            try:
                await self.store.release(self.run_id, self.owner)
            except Exception:  # the journal failed: the lease lapses with this process,
                pass  # and the error that ended the drive is the one to show
        return self.state

    async def _within_limits(self) -> None:
        limits = [t for t in (self.workflow.timeout, self.workflow.budget.seconds)
                  if t is not None]
        remaining = max(0.0, min(limits) - self.state.active_seconds) if limits else None
        try:
            async with asyncio.timeout(remaining):
                if await self.planning.prepare():
                    self._index(self.planning.workflow())
                    await self._schedule()
        except TimeoutError:
            by_budget = self.workflow.timeout is None or (
                self.workflow.budget.seconds is not None
                and self.workflow.budget.seconds <= self.workflow.timeout)
            await self.journal(NewEvent.of(RunFailed(
                reason="budget_exceeded" if by_budget else "timeout",
                error=f"seconds budget of {self.workflow.budget.seconds} exceeded"
                if by_budget else
                f"the run took longer than its timeout of {self.workflow.timeout}s")))
        except asyncio.CancelledError:
            if self._main is None or (self._over_budget is None and self._lost is None):
                raise
            self._main.uncancel()
            if self._lost is not None:
                raise self._lost from None
            await self.journal(NewEvent.of(RunFailed(
                reason="budget_exceeded", error=self._over_budget)))

    async def _cancelled(self) -> bool:
        """Whether the lease went to `Engine.cancel`; then the drive ends with the journal's
        state, `cancelled`, rather than with `LeaseLost`."""
        state = RunState.of(self.run_id, await self.store.events(self.run_id))
        if state.status != "cancelled":
            return False
        self.state = state
        return True

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.engine.lease / 3)
            try:
                await self.store.renew(self.run_id, self.owner, self.engine.lease)
            except LeaseLost as e:
                # Cancelled or taken over while a task runs: stop now, not at its next write.
                # (A lease this drive gave up itself, on waiting or ending, is not news.)
                if self.state.status == "running" and self._main is not None:
                    self._lost = e
                    self._main.cancel()
                return

    def _unmet(self, task: Task) -> int:
        return sum(1 for need in task.needs
                   if self.state.task(need).status not in ("completed", "skipped"))

    def _frontier(self) -> tuple[dict[str, int], deque[str], list[str], int]:
        """Unmet needs per task, the tasks ready to start, those failed, and how many
        are settled, as the state stands."""
        tasks = self.workflow.tasks
        unmet = {tid: self._unmet(t) for tid, t in tasks.items()}
        ready = deque(tid for tid, n in unmet.items()
                      if n == 0 and self.state.task(tid).status not in DONE)
        failed = [t for t in tasks if self.state.task(t).status == "failed"]
        settled = sum(1 for t in tasks if self.state.task(t).status in DONE)
        return unmet, ready, failed, settled

    async def _schedule(self) -> None:  # noqa: C901 - the scheduler's loop reads best whole
        if await self.planning.catch_up():
            self._index(self.planning.workflow())
        tasks = self.workflow.tasks
        unmet, ready, failed, settled = self._frontier()
        finished: asyncio.Queue[str] = asyncio.Queue()
        in_flight = 0
        async with asyncio.TaskGroup() as group:
            while True:
                while ready and not failed:
                    self._busy += 1
                    group.create_task(self._task(tasks[ready.popleft()], finished))
                    in_flight += 1
                if in_flight == 0:
                    if failed and await self.planning.replan(failed):
                        self._index(self.planning.workflow())
                        tasks = self.workflow.tasks
                        unmet, ready, failed, settled = self._frontier()
                        continue
                    if failed or settled == len(tasks):
                        await self._end(failed)
                        return
                    answered = await self._answered()
                    if answered:
                        ready.extend(answered)
                        continue
                    try:
                        await self._wait()
                        return
                    except Conflict:
                        continue
                done = await finished.get()
                in_flight -= 1
                status = self.state.task(done).status
                added: set[str] = set()
                if status == "completed":
                    growth = await self.planning.grow(done)
                    if growth == "rejected":
                        status = "failed"
                    elif growth == "grown":
                        before = set(tasks)
                        self._index(self.planning.workflow())
                        tasks = self.workflow.tasks
                        added = tasks.keys() - before
                        for new in added:
                            unmet[new] = self._unmet(tasks[new])
                            if unmet[new] == 0:
                                ready.append(new)
                if status == "failed":
                    failed.append(done)
                elif status in DONE:
                    settled += 1
                    for dependent in self.dependents[done]:
                        if dependent in added:  # counted its needs as they stand
                            continue
                        unmet[dependent] -= 1
                        if unmet[dependent] == 0:
                            ready.append(dependent)

    async def _end(self, failed: list[str]) -> None:
        if failed:
            first = self.state.task(failed[0])
            await self.journal(NewEvent.of(RunFailed(
                reason="task_failed", error=f"task {first.key!r} failed: {first.error}")),
                release=True)
        else:
            await self.journal(NewEvent.of(RunCompleted()), release=True)

    async def _answered(self) -> list[str]:
        """Tasks a human answered since we last looked (read from the journal)."""
        self.state = RunState.of(self.run_id, await self.store.events(self.run_id))
        return sorted({split_key(t.key)[0] for t in self.state.waiting()
                       if t.approval is not None})

    async def _wait(self) -> None:
        """Nothing can move until a human answers: say so, unless an answer just came."""
        waiting = [t.key for t in self.state.waiting()]
        if not waiting:
            unsettled = [k for k, t in self.state.tasks.items() if t.status not in DONE]
            raise RuntimeError(f"run {self.run_id!r}: no task is under way or waiting, yet "
                               f"{unsettled or 'some'} did not finish; not journaling it "
                               "as waiting")
        await self.journal(NewEvent.of(RunWaiting(tasks=waiting)),
                           expect_last=self.state.last_seq, release=True)

    def _scope(self, task: Task) -> dict[str, Any]:
        outputs = _Outputs(lambda: self.state, self.ancestors[task.id])
        return {"inputs": self.state.inputs, "outputs": outputs, "run": {"id": self.run_id}}

    async def _task(self, task: Task, finished: asyncio.Queue[str]) -> None:
        try:
            ts = self.state.task(task.id)
            scope = self._scope(task)
            if task.needs and all(self.state.task(n).status == "skipped" for n in task.needs):
                await self.journal(NewEvent.of(TaskSkipped(
                    reason="every task it needs was skipped"), task=task.id))
            elif ts.status == "pending" and task.when and not evaluate(task.when, scope):
                await self.journal(NewEvent.of(TaskSkipped(
                    reason=f"when: {task.when} is false"), task=task.id))
            elif task.for_each:
                await self._fan_out(task, scope)
            else:
                await self.runner.run(task, task.id, scope)
        except TemplateProblem as e:
            await self.journal(NewEvent.of(TaskFailed(
                error=f"template in task {task.id!r}: {e}", error_type="TemplateError"),
                task=task.id))
        finally:
            self._busy -= 1
        # Only a task that ran its course is reported: one that raised (the journal failed,
        # the drive is cancelled) must not look settled to the scheduler, which would then
        # find nothing to do and journal the run as waiting.
        finished.put_nowait(task.id)

    async def _fan_out(self, task: Task, scope: dict[str, Any]) -> None:
        items = evaluate(task.for_each or "", scope)
        if not isinstance(items, list | tuple):
            raise TemplateProblem(f"for_each: {task.for_each} gave "
                                  f"{type(items).__name__}, not a list")
        ts = self.state.task(task.id)
        if ts.fanout is None:
            await self.journal(NewEvent.of(FanoutStarted(count=len(items)), task=task.id))
        elif ts.fanout != len(items):
            raise TemplateProblem(f"for_each gave {len(items)} items on resume, "
                                  f"{ts.fanout} before; its inputs changed")
        limit = asyncio.Semaphore(task.concurrency or max(1, len(items)))

        async def one(index: int, item: Any) -> None:
            try:
                async with limit:
                    await self.runner.run(task, item_key(task.id, index),
                                          {**scope, "item": item, "index": index})
            finally:
                self._busy -= 1

        async with asyncio.TaskGroup() as group:
            for index, item in enumerate(items):
                known = self.state.tasks.get(item_key(task.id, index))
                if known is None or known.status not in DONE:
                    self._busy += 1
                    group.create_task(one(index, item))
        keys = [item_key(task.id, i) for i in range(len(items))]
        failed = [k for k in keys if self.state.task(k).status == "failed"]
        if failed:
            await self.journal(NewEvent.of(TaskFailed(
                error=f"{len(failed)} of {len(keys)} items failed; first {failed[0]!r}: "
                      f"{self.state.task(failed[0]).error}", error_type="TaskFailed"),
                task=task.id))
        elif all(self.state.task(k).status == "completed" for k in keys):
            read = dict.fromkeys(s for k in keys for s in self.state.task(k).untrusted)
            await self.journal(NewEvent.of(TaskCompleted(
                output=[self.state.task(k).output for k in keys], agent=task.agent,
                untrusted=list(read) or None), task=task.id))


class _Outputs(Mapping[str, Any]):
    """A task's upstream outputs, read from the run's state when asked (not copied)."""

    __slots__ = ("_keys", "_state")

    def __init__(self, state: Callable[[], RunState], keys: Set[str]) -> None:
        self._state, self._keys = state, keys

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        return self._state().task(key).output

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return repr(dict(self))
