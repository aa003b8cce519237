"""Stopping sync function agents: a timed-out attempt is stopped before the next one starts
(one idempotency key, never two attempts at once), and Ctrl-C, SIGTERM and `podium cancel`
end a `podium run` whose agent hangs in a blocking call, promptly, leaving the run
resumable. Real `podium` processes, real signals; each test waits for the journal to show
the hung task started before it acts."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from podium import Engine, RetryPolicy, SQLiteStore, Workflow

HERE = Path(__file__).resolve().parent / "stop_workflow"
PODIUM = Path(sys.executable).with_name("podium")
DEADLINE_S = 60.0
"""How long a test waits for a state before failing (never how long it expects things to
take)."""


def effects(path: Path) -> list[list[Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def pid_alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting to be reaped by init does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class Podium:
    """`podium` against one PODIUM_HOME, from the folder of the tests' agents."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.effects = tmp_path / "effects.log"
        self.gate = tmp_path / "gate"
        self.env = {**os.environ, "PODIUM_HOME": str(self.home)}

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(PODIUM), *args], cwd=HERE, capture_output=True, text=True,
                              env=self.env, timeout=DEADLINE_S)

    def start(self, workflow: str, *inputs: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(PODIUM), "run", workflow, "--no-input", "-i", f"effects={self.effects}",
             *inputs], cwd=HERE, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)

    def journal(self) -> list[tuple[str, str | None, dict[str, Any]]]:
        db = self.home / "podium.db"
        if not db.exists():
            return []
        with closing(sqlite3.connect(db)) as conn:
            try:
                rows = conn.execute("SELECT type, task, data FROM events ORDER BY seq"
                                    ).fetchall()
            except sqlite3.OperationalError:  # not created yet
                return []
        return [(t, k, json.loads(d)) for t, k, d in rows]

    def wait_until_hung(self, proc: subprocess.Popen[str]) -> None:
        """Until the journal shows `wait` started and its function is in its blocking call."""
        deadline = time.monotonic() + DEADLINE_S
        while not (any(t == "task_started" and k == "wait" for t, k, _ in self.journal())
                   and effects(self.effects)):
            if proc.poll() is not None:
                pytest.fail(f"podium run exited {proc.returncode}: {proc.communicate()}")
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.05)


@pytest.fixture
def podium(tmp_path: Path) -> Podium:
    return Podium(tmp_path)


@pytest.fixture
def hung(podium: Podium) -> Iterator[subprocess.Popen[str]]:
    proc = podium.start("hang.yaml", "-i", f"gate={podium.gate}")
    try:
        podium.wait_until_hung(proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _stopped_then_resumed(podium: Podium, proc: subprocess.Popen[str], sig: int) -> str:
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=DEADLINE_S)
    assert "Traceback" not in stderr, stderr
    types = [t for t, _, _ in podium.journal()]
    assert types[-1] == "task_started", types  # nothing journaled as done or waiting
    run_id = json.loads(podium("runs", "list", "--json").stdout)[0]["run_id"]
    record = json.loads(podium("runs", "show", run_id, "--json").stdout)
    assert record["status"] == "running"

    podium.gate.touch()
    resumed = podium("resume", run_id, "--json")
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads(resumed.stdout)
    assert record["status"] == "completed"
    assert record["outputs"] == {"wait": "through", "finish": "done"}
    return stderr


def test_ctrl_c_ends_a_run_whose_sync_agent_hangs_and_the_run_resumes(
        podium: Podium, hung: subprocess.Popen[str]) -> None:
    stderr = _stopped_then_resumed(podium, hung, signal.SIGINT)
    assert hung.returncode == 130
    assert "interrupted; the journal keeps everything done so far" in stderr


def test_sigterm_ends_a_run_whose_sync_agent_hangs_and_the_run_resumes(
        podium: Podium, hung: subprocess.Popen[str]) -> None:
    stderr = _stopped_then_resumed(podium, hung, signal.SIGTERM)
    assert hung.returncode == 143
    assert "terminated; the journal keeps everything done so far" in stderr


def test_podium_cancel_ends_a_run_whose_sync_agent_hangs(
        podium: Podium, hung: subprocess.Popen[str]) -> None:
    run_id = json.loads(podium("runs", "list", "--json").stdout)[0]["run_id"]
    cancelled = podium("cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr

    _, stderr = hung.communicate(timeout=DEADLINE_S)  # the heartbeat finds the lease gone
    assert hung.returncode == 1, stderr
    assert f"cancelled · run {run_id}" in stderr
    types = [t for t, _, _ in podium.journal()]
    assert types[-1] == "run_cancelled"
    assert not any(k == "finish" for _, k, _ in podium.journal())


def test_a_timed_out_attempt_is_stopped_before_the_next_starts(podium: Podium) -> None:
    proc = podium.start("timeout.yaml", "--json")
    stdout, stderr = proc.communicate(timeout=DEADLINE_S)
    assert proc.returncode == 0, stderr
    record = json.loads(stdout)
    (nap,) = record["tasks"]
    assert nap["attempts"] == 3
    assert nap["defaulted"] is True
    assert record["outputs"]["nap"] == "gave up"

    seen = effects(podium.effects)
    # Each attempt started once, in a process of its own, and none lived to finish: the
    # sleeper was killed at its timeout, not left to sleep on beside the next attempt.
    assert [e[0] for e in seen] == ["start", "start", "start"]
    assert [e[1] for e in seen] == [1, 2, 3]
    assert len({e[2] for e in seen}) == 1  # one idempotency key
    pids = [e[3] for e in seen]
    assert len(set(pids)) == 3 and proc.pid not in pids
    assert not any(pid_alive(p) for p in pids)
    failed = [d for t, _, d in podium.journal() if t == "attempt_failed"]
    assert [d["error_type"] for d in failed] == ["TaskTimeout"] * 3


async def test_an_attempt_in_a_thread_is_not_overlapped_by_its_retry(tmp_path: Path) -> None:
    """A function that cannot run in a worker (a closure) runs in a thread, which cannot be
    stopped: its retry waits until it has returned. Attempt 1 blocks until the engine says
    the retry is waiting for it; without that wait, attempt 2 would start at once (and
    release attempt 1 itself)."""
    log: list[tuple[str, int]] = []
    gate = threading.Event()

    def stubborn(ctx: Any) -> str:
        log.append(("start", ctx.attempt))
        if ctx.attempt == 1:
            gate.wait(DEADLINE_S)
        else:
            gate.set()
        log.append(("end", ctx.attempt))
        return f"attempt {ctx.attempt}"

    class Release(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "this attempt waits for it to return" in record.getMessage():
                gate.set()

    handler = Release()
    logging.getLogger("podium.agents").addHandler(handler)
    wf = Workflow("thread-retry")
    wf.add_task("t", agent=stubborn, timeout=0.1, retry=RetryPolicy(attempts=2))
    store = SQLiteStore(tmp_path / "podium.db")
    try:
        async with asyncio.timeout(DEADLINE_S):
            state = await Engine(store).start(wf)
    finally:
        logging.getLogger("podium.agents").removeHandler(handler)
        await store.close()
    assert state.status == "completed", state.error
    assert state.outputs() == {"t": "attempt 2"}
    assert log == [("start", 1), ("end", 1), ("start", 2), ("end", 2)]


HUNG_TO_THREAD = """
import asyncio, threading
from podium.engine.executors.local import DaemonExecutor

async def main():
    asyncio.get_running_loop().set_default_executor(DaemonExecutor())
    assert await asyncio.to_thread(lambda: 42) == 42  # idle threads are reused
    try:
        await asyncio.wait_for(asyncio.to_thread(threading.Event().wait), 0.1)
    except TimeoutError:
        print("timed out")

asyncio.run(main())
"""


def test_a_blocking_call_that_never_returns_does_not_keep_the_process_alive() -> None:
    """What the CLI gives its loop for `asyncio.to_thread` (sync tools, drivers, SMTP):
    the standard executor would join the hung thread at `asyncio.run`'s end, forever."""
    done = subprocess.run([sys.executable, "-c", HUNG_TO_THREAD], capture_output=True,
                          text=True, timeout=DEADLINE_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "timed out\n"


def test_a_worker_process_dies_with_a_killed_engine(podium: Podium) -> None:
    """SIGKILL leaves nobody to stop the worker: it must not sleep on as an orphan that a
    resumed attempt would run beside."""
    proc = podium.start("long.yaml")
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not effects(podium.effects):
            assert proc.poll() is None and time.monotonic() < deadline, "it never started"
            time.sleep(0.05)
        (_, _, _, worker), = effects(podium.effects)
        assert worker != proc.pid
        proc.kill()
    finally:
        proc.kill()
        proc.communicate()
    while pid_alive(worker):
        assert time.monotonic() < deadline, "the worker outlived its engine"
        time.sleep(0.05)
