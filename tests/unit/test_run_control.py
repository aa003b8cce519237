"""Cancelling runs, and viewing and listing them under an access policy (a session's thread
included), on real SQLite journals and audit logs. Two engines on one journal file stand
for two processes: each has its own owner token, and the one driving a run holds its
lease."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from podium import (
    HUMAN,
    ContextOptions,
    Engine,
    InputSpec,
    LLMAgent,
    NotWaiting,
    PermissionDenied,
    Principal,
    RunEnded,
    SQLiteStore,
    UnknownRun,
    Workflow,
    parse_policy,
)
from podium.core.events import NewEvent
from podium.security import AuditLog
from podium.store.base import Owner
from podium.testing import ScriptedModel

POLICY = parse_policy(yaml.safe_dump({
    "roles": {
        "runner": {"workflows": {"job": ["run", "view"], "other": ["run"]},
                   "agents": ["*"]},
        "operator": {"workflows": {"job": ["view", "cancel"]}},
        "outsider": {"workflows": {"other": ["view"]}},
    }}), "cancel.yaml")
ANN = Principal(id="ann", roles=frozenset({"runner"}))
OPS = Principal(id="ops", roles=frozenset({"operator"}))
EVE = Principal(id="eve", roles=frozenset({"outsider"}))


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStore, SQLiteStore]]:
    first, second = SQLiteStore(tmp_path / "j.db"), SQLiteStore(tmp_path / "j.db")
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit.db", key=b"k" * 32, sign_every=None,
                  signing_key=Ed25519PrivateKey.generate()) as log:
        yield log


class Job:
    """`first` (an agent that waits for `gate`) then `second`; counts what ran."""

    def __init__(self, name: str = "job") -> None:
        self.started, self.gate = asyncio.Event(), asyncio.Event()
        self.ran: list[str] = []
        self.workflow = Workflow(name)
        self.workflow.add_agent("slow", self.slow)
        self.workflow.add_agent("after", self.after)
        self.workflow.add_task("first", agent="slow")
        self.workflow.add_task("second", agent="after", needs=["first"])

    async def slow(self) -> str:
        self.ran.append("first")
        self.started.set()
        await self.gate.wait()
        return "slow done"

    def after(self) -> str:
        self.ran.append("second")
        return "after done"


def _waiting_workflow(name: str = "job") -> Workflow:
    wf = Workflow(name)
    wf.add_agent("draft", lambda: "a draft")
    wf.add_task("draft", agent="draft")
    wf.add_task("check", agent=HUMAN, needs=["draft"], prompt="Publish?")
    return wf


async def test_a_waiting_run_is_cancelled_at_once(
        stores: tuple[SQLiteStore, SQLiteStore]) -> None:
    store, _ = stores
    engine = Engine(store)
    waiting = await engine.start(_waiting_workflow())
    assert waiting.status == "waiting"

    state = await engine.cancel(waiting.run_id, "not needed any more")

    assert state.status == "cancelled"
    assert state.reason == "cancelled"
    assert state.error == "cancelled: not needed any more"
    last = (await store.events(waiting.run_id))[-1]
    assert last.type == "run_cancelled" and last.data["was"] == "waiting"
    assert [r.status for r in await store.runs()] == ["cancelled"]
    # Its human task waits for nobody now, and resuming it changes nothing.
    with pytest.raises(NotWaiting, match="is cancelled"):
        await engine.approve(waiting.run_id, "check", {"ok": True})
    again = await engine.resume(_waiting_workflow(), waiting.run_id)
    assert again.status == "cancelled" and again.last_seq == state.last_seq


async def test_a_run_a_live_process_executes_stops_at_its_next_step(
        stores: tuple[SQLiteStore, SQLiteStore], audit: AuditLog) -> None:
    mine, theirs = stores
    job = Job()
    driver = Engine(mine, policy=POLICY, audit=audit)
    running = asyncio.create_task(driver.start(job.workflow, principal=ANN))
    await job.started.wait()
    run_id = (await theirs.runs())[0].run_id

    cancelled = await Engine(theirs, policy=POLICY, audit=audit).cancel(
        run_id, "wrong month", principal=OPS)
    assert cancelled.status == "cancelled"
    assert cancelled.error == "cancelled by 'ops': wrong month"
    job.gate.set()  # `first` finishes, but the process may journal nothing more
    state = await running

    assert state.status == "cancelled"
    assert job.ran == ["first"]  # `second` never started
    events = await mine.events(run_id)
    assert events[-1].type == "run_cancelled"
    assert events[-1].data["was"] == "running"
    assert (await mine.circuit("slow")).failures == 0  # a cancel is no failure of the agent
    trail = [(r.actor, r.action, r.outcome) for r in audit.records()]
    assert trail == [("ann", "run.start", "ok"), ("ops", "run.cancel", "ok"),
                     ("ann", "run.end", "cancelled")]
    assert "stops" in list(audit.records())[1].detail
    assert audit.verify().ok


async def test_a_long_task_is_interrupted_when_the_lease_is_renewed(
        stores: tuple[SQLiteStore, SQLiteStore]) -> None:
    mine, theirs = stores
    job = Job()  # its gate never opens: only the heartbeat can stop it
    running = asyncio.create_task(Engine(mine, lease=0.3).start(job.workflow))
    await job.started.wait()
    run_id = (await theirs.runs())[0].run_id

    await Engine(theirs).cancel(run_id)
    state = await running

    assert state.status == "cancelled"
    assert job.ran == ["first"]
    assert (await mine.circuit("slow")).failures == 0


async def test_a_run_whose_process_died_is_cancelled_at_once(
        stores: tuple[SQLiteStore, SQLiteStore]) -> None:
    store, _ = stores
    gone = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import os; print(os.getpid())", stdout=asyncio.subprocess.PIPE)
    out, _ = await gone.communicate()
    dead = Owner(token="dead", pid=int(out), host=socket.gethostname())
    await store.create_run("r-1", "job", NewEvent(type="run_started", data={
        "workflow": "job", "inputs": {}}), dead)
    await store.append("r-1", [NewEvent(type="task_started", task="first",
                                        data={"agent": "slow", "attempt": 1})], dead)

    state = await Engine(store).cancel("r-1", "stuck")

    assert state.status == "cancelled"
    # The lease is free: nobody executes it, and the journal takes no more from the dead.
    assert await store.acquire("r-1", dead, 30) is None


async def test_cancelling_an_ended_run_is_refused_and_journals_nothing(
        stores: tuple[SQLiteStore, SQLiteStore]) -> None:
    store, _ = stores
    job = Job()
    job.gate.set()
    engine = Engine(store)
    done = await engine.start(job.workflow)
    assert done.status == "completed"

    with pytest.raises(RunEnded, match=rf"run '{done.run_id}' already completed"):
        await engine.cancel(done.run_id)
    with pytest.raises(UnknownRun):
        await engine.cancel("no-such-run")
    assert (await engine.state(done.run_id)).last_seq == done.last_seq

    waiting = await engine.start(_waiting_workflow())
    await engine.cancel(waiting.run_id)
    with pytest.raises(RunEnded, match="already was cancelled"):
        await engine.cancel(waiting.run_id)


async def test_view_and_cancel_need_their_permissions(
        stores: tuple[SQLiteStore, SQLiteStore], audit: AuditLog) -> None:
    store, _ = stores
    engine = Engine(store, policy=POLICY, audit=audit)
    run = await engine.start(_waiting_workflow(), principal=ANN)

    assert (await engine.view(run.run_id, principal=ANN)).status == "waiting"
    with pytest.raises(PermissionDenied, match="may not view workflow 'job'"):
        await engine.view(run.run_id, principal=EVE)
    with pytest.raises(PermissionDenied, match="roles 'operator' may"):
        await engine.cancel(run.run_id, principal=ANN)
    assert (await engine.state(run.run_id)).status == "waiting"  # nothing journaled
    await engine.cancel(run.run_id, principal=OPS)

    trail = [(r.actor, r.action, r.subject, r.outcome, r.detail) for r in audit.records()]
    assert trail[1:] == [
        ("ann", "run.view", run.run_id, "ok", ""),
        ("eve", "policy.deny", run.run_id, "denied", "workflow:view"),
        ("ann", "policy.deny", run.run_id, "denied", "workflow:cancel"),
        ("ops", "run.cancel", run.run_id, "ok", "was waiting")]
    assert audit.verify().ok


async def test_runs_lists_only_what_the_principal_may_view(
        stores: tuple[SQLiteStore, SQLiteStore], audit: AuditLog) -> None:
    store, _ = stores
    engine = Engine(store, policy=POLICY, audit=audit)
    others = [(await engine.start(_waiting_workflow("other"), principal=ANN)).run_id
              for _ in range(3)]
    jobs = [(await engine.start(_waiting_workflow(), principal=ANN)).run_id
            for _ in range(5)]

    assert [r.run_id for r in await engine.runs(principal=EVE)] == others[::-1]
    # The newest five are hers to hide: the listing reads on to find two she may see.
    assert [r.run_id for r in await engine.runs(principal=EVE, limit=2)] == others[:0:-1]
    assert [r.run_id for r in await engine.runs(principal=ANN, limit=3)] == jobs[:1:-1]
    assert await engine.runs(principal=EVE, status="completed") == []

    listed = [r.detail for r in audit.records() if r.action == "run.list"]
    assert listed == ["shown=3 hidden=5", "shown=2 hidden=5", "shown=3 hidden=0",
                      "shown=0 hidden=0"]
    assert [r.run_id for r in await Engine(store).runs(limit=100)] == (others + jobs)[::-1]


async def test_a_session_thread_holds_only_runs_the_principal_may_view(
        stores: tuple[SQLiteStore, SQLiteStore]) -> None:
    store, _ = stores
    policy = parse_policy(yaml.safe_dump({"roles": {
        "chatter": {"workflows": {"chat": ["run", "view"]}, "agents": ["*"]},
        "guest": {"workflows": {"chat": ["run"]}, "agents": ["*"]}}}), "chat.yaml")
    alice = Principal(id="alice", roles=frozenset({"chatter"}))
    eve = Principal(id="eve", roles=frozenset({"guest"}))
    model = ScriptedModel(["Your code word is PAPAYA.", "no idea", "PAPAYA"])
    wf = Workflow("chat", inputs={"question": InputSpec(type="string")})
    wf.add_agent("bot", LLMAgent(model, name="bot", instructions="Answer.",
                                 context=ContextOptions()))
    wf.add_task("answer", agent="bot", prompt="{{ inputs.question }}")
    engine = Engine(store, policy=policy)

    first = await engine.start(wf, {"question": "A code word?"}, session="s", principal=alice)
    await engine.start(wf, {"question": "Alice's code word?"}, session="s", principal=eve)
    await engine.start(wf, {"question": "My code word?"}, session="s", principal=alice)

    systems = [str(call.messages[0].content) for call in model.calls]
    assert "Earlier in this session" not in systems[1]  # eve may run chats, not view them
    assert "PAPAYA" not in "".join(str(m.content) for m in model.calls[1].messages)
    assert f"[run {first.run_id} · chat · " in systems[2]
    assert "Alice's code word?" in systems[2]  # alice may view every chat, eve's too
