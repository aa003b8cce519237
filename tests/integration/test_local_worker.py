"""The local model's worker processes, with the real llama.cpp: a worker killed mid-reply
(SIGSEGV, SIGKILL) or hung past the task's timeout becomes a retryable `ModelError`, the
task's policy goes on (retry, fallback, default), the journal says what happened, and the
next call gets a fresh worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from podium import Engine, SQLiteStore, parse_workflow
from podium.errors import ModelError
from podium.models.base import Message
from podium.models.local import LocalModel, stop_workers, worker_pids

pytestmark = pytest.mark.slow

ASK = [Message(role="user", content="Say hello in five words.")]


WORKFLOW = """
name: crashy
agents:
  writer:
    model: local
    instructions: You write short friendly greetings.
    max_tokens: 32
  template_writer:
    function: tests.integration._fallback_writer:template
tasks:
  greet:
    agent: writer
    prompt: Say hello in five words.
    retry: {{attempts: {attempts}}}
    {policy}
  again:
    agent: writer
    needs: [greet]
    prompt: Say goodbye in five words.
"""


class _Killer:
    """An `on_token` hook that sends `signum` to the worker serving the task `task` at its
    first streamed piece: the reply has begun, so the worker dies mid-reply."""

    def __init__(self, signum: int, task: str = "greet") -> None:
        self.signum, self.task = signum, task
        self.killed: int | None = None

    def __call__(self, key: str, text: str) -> None:
        if key != self.task or self.killed is not None:
            return
        busy = worker_pids(busy_only=True)
        assert len(busy) == 1, busy
        self.killed = busy[0]
        os.kill(self.killed, self.signum)


async def _run(text: str, tmp_path: Path, hook: _Killer) -> tuple[dict[str, Any], list[Any]]:
    store = SQLiteStore(tmp_path / "journal.db")
    try:
        state = await Engine(store).start(parse_workflow(text, "crashy.yaml"), {},
                                          on_token=hook)
        return state.record(), await store.events(state.run_id)
    finally:
        await store.close()


def _failures(events: list[Any]) -> list[dict[str, Any]]:
    return [e.data for e in events if e.type == "attempt_failed" and e.task == "greet"]


@pytest.mark.parametrize(("signum", "words"), [
    (signal.SIGSEGV, "killed by signal SIGSEGV (11)"),
    (signal.SIGKILL, "killed by signal SIGKILL (9)"),
])
async def test_a_worker_killed_mid_reply_hands_the_task_to_the_fallback(
        tmp_path: Path, signum: int, words: str) -> None:
    hook = _Killer(signum)
    record, events = await _run(WORKFLOW.format(
        attempts=1, policy="fallback: [template_writer]"), tmp_path, hook)
    assert hook.killed is not None, "the reply never streamed"
    assert record["status"] == "completed", record
    assert record["outputs"]["greet"] == "Hello from the template."
    [failure] = _failures(events)
    assert failure["error_type"] == "ModelError" and failure["decision"] == "fallback"
    assert words in failure["error"] and f"pid {hook.killed}" in failure["error"]
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in failure["error"]
    # The next local-model task ran on a fresh worker.
    assert isinstance(record["outputs"]["again"], str) and record["outputs"]["again"]
    assert hook.killed not in worker_pids() and worker_pids()


async def test_without_a_fallback_the_default_is_used(tmp_path: Path) -> None:
    hook = _Killer(signal.SIGSEGV)
    record, events = await _run(WORKFLOW.format(
        attempts=1, policy='default: "No greeting today."'), tmp_path, hook)
    assert hook.killed is not None
    assert record["status"] == "completed", record
    assert record["outputs"]["greet"] == "No greeting today."
    [task] = [t for t in record["tasks"] if t["id"] == "greet"]
    assert task["defaulted"] is True
    [failure] = _failures(events)
    assert "SIGSEGV (11)" in failure["error"] and failure["decision"] == "default"


async def test_a_crash_is_retried_on_a_fresh_worker(tmp_path: Path) -> None:
    hook = _Killer(signal.SIGSEGV)
    record, events = await _run(WORKFLOW.format(attempts=2, policy=""), tmp_path, hook)
    assert record["status"] == "completed", record
    [failure] = _failures(events)
    assert failure["decision"] == "retry" and "SIGSEGV" in failure["error"]
    [task] = [t for t in record["tasks"] if t["id"] == "greet"]
    assert task["attempts"] == 2 and isinstance(record["outputs"]["greet"], str)
    assert record["outputs"]["greet"] != ""


async def test_a_hung_worker_is_killed_at_the_timeout(tmp_path: Path) -> None:
    # A pool of one worker, warmed, then stopped (SIGSTOP): it neither replies nor dies,
    # which is a hang. The task's timeout cancels the call, which kills the worker.
    model = LocalModel(workers=1)
    busy: list[int] = []
    await model.complete(ASK, max_tokens=2,
                         on_token=lambda _: busy.extend(worker_pids(busy_only=True)))
    hung = busy[0]
    os.kill(hung, signal.SIGSTOP)
    text = WORKFLOW.format(attempts=1, policy="timeout: 3\n    fallback: [template_writer]")
    text = text.replace("    max_tokens: 32\n", "    max_tokens: 32\n    options: {workers: 1}\n")
    record, events = await _run(text, tmp_path, _Killer(signal.SIGCONT, task="none"))
    assert record["outputs"]["greet"] == "Hello from the template."
    [failure] = _failures(events)
    assert failure["error_type"] == "TaskTimeout" and failure["decision"] == "fallback"
    assert hung not in worker_pids()
    assert isinstance(record["outputs"]["again"], str)  # on a fresh worker
    stop_workers()  # joins every worker's reader: the hung one has been reaped
    with pytest.raises(ProcessLookupError):
        os.kill(hung, 0)


async def test_a_model_call_error_names_the_model_and_the_signal() -> None:
    model = LocalModel()
    pieces: list[str] = []

    def kill_at_first_piece(piece: str) -> None:
        if not pieces:
            os.kill(worker_pids(busy_only=True)[0], signal.SIGSEGV)
        pieces.append(piece)

    with pytest.raises(ModelError, match=r"local: the model worker \(pid \d+\) running "
                                         r"'SmolLM2.*' was killed by signal SIGSEGV") as e:
        await model.complete(ASK, max_tokens=32, on_token=kill_at_first_piece)
    assert e.value.retryable is True
    assert (await model.complete(ASK, max_tokens=8)).text  # a fresh worker answers


async def test_several_calls_run_at_once_on_several_workers() -> None:
    model = LocalModel(workers=2)
    seen: set[int] = set()

    def note(piece: str) -> None:
        seen.update(worker_pids(busy_only=True))

    replies = await asyncio.gather(*(model.complete(ASK, max_tokens=16, on_token=note)
                                     for _ in range(2)))
    assert all(r.text for r in replies)
    # Both calls were in flight on two workers at once at some piece.
    assert len(seen) == 2


async def test_a_file_that_is_not_a_model_is_a_non_retryable_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file")
    with pytest.raises(ModelError, match=r"could not load .*bad\.gguf") as e:
        await LocalModel(bad).complete(ASK, max_tokens=4)
    assert e.value.retryable is False


def test_workers_stop_with_the_process_without_warnings(tmp_path: Path) -> None:
    code = (
        "import asyncio\n"
        "from podium.models.local import LocalModel, worker_pids\n"
        "from podium.models.base import Message\n"
        "m = LocalModel()\n"
        "asyncio.run(m.complete([Message(role='user', content='Hi')], max_tokens=4))\n"
        "print(m.count_tokens('hello'), *worker_pids())\n")
    done = subprocess.run([sys.executable, "-X", "dev", "-W", "error", "-c", code],
                          capture_output=True, text=True, timeout=300, env=os.environ)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    _count, *pids = map(int, done.stdout.split())
    assert pids
    for pid in pids:  # reaped by the process that started them, before it exited
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_installed_build_passes_the_amx_check() -> None:
    import llama_cpp

    from podium.models._local_worker import amx_problem, cpu_flags

    info = llama_cpp.llama_print_system_info().decode()
    assert amx_problem(info, cpu_flags()) is None, info
