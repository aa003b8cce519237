"""Supervised worker processes for the local model: start, hand out, watch, restart, stop.

A `WorkerPool` per loaded model (file, `n_ctx`, seed, size) holds up to `size` worker
processes (`_local_worker.py`), each with the model loaded and answering one request at a
time over a pipe. The GGUF file is memory-mapped, so the weights' pages are shared
between workers; each has its own context (KV cache). Workers start on first use, grow
with demand up to `size`, stay for the next call, and stop when the interpreter exits.

The pool is shared by every event loop of the process (a CLI run has one, a test suite
many): each worker's pipes are read by threads, which hand messages to the loop of the
request in flight with `call_soon_threadsafe`. A worker that dies (a signal, an exit) is
reaped by its reader thread; the request it was serving fails with a retryable
`ModelError` naming the signal or exit code, and its place in the pool is free for a fresh
worker. A request that is cancelled (a task's timeout, a cancelled run) kills its worker:
it may be stuck in native code, and a killed worker is cheap to replace.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.errors import ModelError

_SCRIPT = str(Path(__file__).with_name("_local_worker.py"))
Message = dict[str, Any]
Listener = Callable[[Message | None], None]


@dataclass(frozen=True, kw_only=True)
class WorkerSpec:
    """What a worker loads."""

    model_path: str
    n_ctx: int
    seed: int
    n_threads: int
    """llama.cpp threads per worker: the cores shared out between the pool's workers."""


def describe_exit(returncode: int) -> str:
    """How a process ended, in words: `killed by signal SIGSEGV (11)`, `exited with
    code 1`; with what the signal usually means."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    number = -returncode
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    why = {"SIGSEGV": "a crash inside llama.cpp",
           "SIGBUS": "a crash inside llama.cpp, or the model file changed under it",
           "SIGILL": "an instruction this CPU lacks: llama.cpp was built for another CPU",
           "SIGABRT": "llama.cpp aborted",
           "SIGKILL": "killed from outside, e.g. by the out-of-memory killer"}.get(name)
    return f"was killed by signal {name} ({number})" + (f": {why}" if why else "")


class _Worker:
    """One worker process and the threads that read its pipes."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-P", _SCRIPT], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.pid = self.proc.pid
        self.busy = False
        self.killed = False
        self._lock = threading.Lock()
        self._listener: Listener | None = None
        self._unheard: list[Message | None] = []
        self._tail: deque[str] = deque(maxlen=12)
        self._readers = [threading.Thread(target=self._read, daemon=True,
                                          name=f"podium-local-{self.pid}-out"),
                         threading.Thread(target=self._drain, daemon=True,
                                          name=f"podium-local-{self.pid}-err")]
        for reader in self._readers:
            reader.start()
        self.send({"model_path": spec.model_path, "n_ctx": spec.n_ctx, "seed": spec.seed,
                   "n_threads": spec.n_threads})

    @property
    def alive(self) -> bool:
        return not self.killed and self.proc.returncode is None

    def last_words(self) -> str:
        """The end of the worker's stderr (a native crash's stack, a llama.cpp assert)."""
        with self._lock:
            lines = [line for line in self._tail if line.strip()]
        return " | ".join(lines[-3:])

    def listen(self, listener: Listener | None) -> None:
        """Route the worker's messages (None: it died) to `listener`, starting with any
        that came while nobody listened."""
        with self._lock:
            self._listener = listener
            unheard, self._unheard = self._unheard, []
        if listener is not None:
            for message in unheard:
                listener(message)

    def send(self, message: Message) -> None:
        with self._lock:
            stdin = self.proc.stdin
            if stdin is None or stdin.closed:
                return
            try:
                stdin.write(json.dumps(message, ensure_ascii=False).encode() + b"\n")
                stdin.flush()
            except OSError:
                pass  # it died; the reader thread reports how

    def kill(self) -> None:
        self.killed = True
        self.proc.kill()  # a no-op once it has been reaped

    def stop(self, timeout: float = 5.0) -> None:
        """Close its stdin (the worker exits), kill it if it does not, wait for the
        readers to reap it."""
        self._close_stdin()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        for reader in self._readers:
            if reader is not threading.current_thread():
                reader.join()

    def _close_stdin(self) -> None:
        with self._lock:
            if self.proc.stdin is not None and not self.proc.stdin.closed:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass

    def _deliver(self, message: Message | None) -> None:
        with self._lock:
            listener = self._listener
            if listener is None:
                self._unheard.append(message)
        if listener is not None:
            listener(message)

    def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        with stdout:
            for line in stdout:
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    continue  # not the protocol: a library writing to stdout
                if isinstance(message, dict):
                    self._deliver(message)
        self.proc.wait()
        self._close_stdin()
        _forget(self)
        self._deliver(None)

    def _drain(self) -> None:
        stderr = self.proc.stderr
        assert stderr is not None
        with stderr:
            for line in stderr:
                with self._lock:
                    self._tail.append(line.decode(errors="replace").rstrip())


_workers: set[_Worker] = set()
_workers_lock = threading.Lock()


def _forget(worker: _Worker) -> None:
    with _workers_lock:
        _workers.discard(worker)


def worker_pids(*, busy_only: bool = False) -> list[int]:
    """The process ids of the local model's live workers (only those serving a request,
    with `busy_only`), oldest first. For tests and operators: kill one to see the task's
    policy take over."""
    with _workers_lock:
        return sorted(w.pid for w in _workers if w.alive and (w.busy or not busy_only))


def stop_workers() -> None:
    """Stop every worker process of every pool (called at interpreter exit)."""
    with _workers_lock:
        workers = list(_workers)
    for worker in workers:
        worker._close_stdin()
    for worker in workers:
        worker.stop()


atexit.register(stop_workers)


def _post(loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[Message | None]
          ) -> Listener:
    def post(message: Message | None) -> None:
        try:
            loop.call_soon_threadsafe(inbox.put_nowait, message)
        except RuntimeError:
            pass  # the loop has closed: its request was abandoned

    return post


class WorkerPool:
    """Up to `size` workers for one model; see the module doc."""

    def __init__(self, spec: WorkerSpec, size: int, *, name: str) -> None:
        self.spec, self.size, self.name = spec, size, name
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._taken = 0
        """Places held by a live worker (idle or busy) or one starting."""
        self._waiters: deque[tuple[asyncio.AbstractEventLoop,
                                   asyncio.Future[_Worker | None]]] = deque()

    async def request(self, message: Message, on_piece: Callable[[str], None] | None
                      ) -> Message:
        """Send `message` to a worker and return its last reply (`result` or `error`),
        passing streamed pieces to `on_piece`.

        Raises:
            ModelError: the worker could not start, or died before it replied.
        """
        worker = await self._acquire()
        inbox: asyncio.Queue[Message | None] = asyncio.Queue()
        worker.listen(_post(asyncio.get_running_loop(), inbox))
        done = False
        try:
            worker.send(message)
            while True:
                reply = await inbox.get()
                if reply is None:
                    raise self._died(worker, "mid-reply")
                if "piece" in reply:
                    if on_piece is not None:
                        on_piece(str(reply["piece"]))
                    continue
                done = True
                return reply
        finally:
            if not done:
                # Cancelled (a timeout), or the caller's callback failed: the worker may be
                # anywhere in a reply nobody will read, or stuck; replace it.
                worker.kill()
            worker.listen(None)
            self._release(worker)

    def _died(self, worker: _Worker, when: str) -> ModelError:
        worker.proc.wait()
        code = worker.proc.returncode
        how = "was stopped" if worker.killed else describe_exit(code)
        words = worker.last_words()
        return ModelError(
            f"{self.name}: the model worker (pid {worker.pid}) running "
            f"{Path(self.spec.model_path).name!r} {how} {when}"
            + (f" (its last words: {words[-300:]!r})" if words else "")
            + "; a fresh worker starts on the next call", retryable=True)

    async def _acquire(self) -> _Worker:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[_Worker | None] | None = None
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive:
                    worker.busy = True
                    return worker
                self._taken -= 1  # died while idle: its place is free
            if self._taken < self.size:
                self._taken += 1
            else:
                waiter = loop.create_future()
                self._waiters.append((loop, waiter))
        if waiter is not None:
            try:
                got = await waiter
            except asyncio.CancelledError:
                with self._lock:
                    if (loop, waiter) in self._waiters:
                        self._waiters.remove((loop, waiter))
                if waiter.done() and not waiter.cancelled():
                    self._hand_over(waiter.result())
                raise
            if got is not None:
                got.busy = True
                return got
        try:
            return await self._start()
        except BaseException:
            self._hand_over(None)
            raise

    async def _start(self) -> _Worker:
        try:
            worker = _Worker(self.spec)
        except OSError as exc:
            raise ModelError(f"{self.name}: could not start a model worker "
                             f"({sys.executable} {_SCRIPT}): {exc}", retryable=True) from exc
        with _workers_lock:
            _workers.add(worker)
        inbox: asyncio.Queue[Message | None] = asyncio.Queue()
        worker.listen(_post(asyncio.get_running_loop(), inbox))
        try:
            reply = await inbox.get()
        except BaseException:
            worker.kill()
            raise
        finally:
            worker.listen(None)
        if reply is None:
            raise self._died(worker, "while loading the model")
        if "fatal" in reply:
            worker.kill()
            raise ModelError(f"{self.name}: {reply['fatal']}",
                             retryable=bool(reply.get("retryable")))
        worker.busy = True
        return worker

    def _release(self, worker: _Worker) -> None:
        worker.busy = False
        self._hand_over(worker if worker.alive else None)

    def _hand_over(self, item: _Worker | None) -> None:
        """Give a worker (or, None, a free place) to the first waiter still waiting, or
        keep it."""
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                if waiter.done():
                    continue
                try:
                    loop.call_soon_threadsafe(self._deliver, waiter, item)
                    return
                except RuntimeError:
                    continue  # its loop has closed
            if item is None:
                self._taken -= 1
            else:
                self._idle.append(item)

    def _deliver(self, waiter: asyncio.Future[_Worker | None], item: _Worker | None) -> None:
        if waiter.done():
            self._hand_over(item)
        else:
            waiter.set_result(item)
