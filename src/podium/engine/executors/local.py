"""The local executor: where a sync function agent runs on this machine, so that an attempt
that times out or is cancelled stops, and a hung function never keeps the process alive.

Python cannot stop a thread, so there are two places (`LocalExecutor` chooses):

- a **worker process** (`call_in_worker`), when the attempt has a timeout and the function
  can be imported by name in another process (a module-level function, as every `function:`
  of a YAML workflow is). A timed-out or cancelled attempt kills its worker and waits for it
  to be gone before the cancellation goes on, so the next attempt never overlaps it. Workers
  are plain Python processes, reused between calls, that die with the engine's process.
- a **daemon thread** (`call_in_thread`) otherwise: a call costs tens of microseconds, not a
  process round trip. The engine refuses to wait for a cancelled one: it is abandoned (and
  logged), the process can exit past it, and the next attempt with the same idempotency key
  waits until it has returned rather than run beside it.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import functools
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from podium.core.agent import TaskContext

T = TypeVar("T")

log = logging.getLogger("podium.agents")  # the name users filter function agents' warnings by

_abandoned: dict[str, concurrent.futures.Future[Any]] = {}
"""Calls of cancelled attempts that still run in their thread, by idempotency key."""
_abandoned_lock = threading.Lock()


# -- threads ------------------------------------------------------------------------------


class DaemonExecutor(concurrent.futures.ThreadPoolExecutor):
    """An executor for `asyncio.to_thread` whose threads are daemons and whose shutdown
    never waits for a call still running. As a loop's default executor, a blocking call
    that never returns (a sync tool, a database driver, SMTP, a native library) cannot
    keep the process alive once its run is cancelled, interrupted or over; the standard
    ThreadPoolExecutor joins every thread, at `asyncio.run`'s end and at exit. (A
    ThreadPoolExecutor by class only because asyncio's loop accepts no other; none of its
    machinery is used.)

    At most `max_threads` threads run calls at once; more calls queue. A call that never
    returns holds one of them for good.
    """

    def __init__(self, max_threads: int = 64) -> None:
        super().__init__(max_workers=1)
        self._work: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]]
                                      | None] = queue.SimpleQueue()
        self._idle = 0
        self._started = 0
        self._max = max_threads
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
               ) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new calls after shutdown")
            self._work.put((future, functools.partial(fn, *args, **kwargs)))
            spawn = self._work.qsize() > self._idle and self._started < self._max
            self._started += spawn
        if spawn:
            threading.Thread(target=self._serve, name="podium-thread", daemon=True).start()
        return future

    def _serve(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._work.get()
            with self._lock:
                self._idle -= 1
            if item is None:
                return
            future, call = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as e:  # the awaiting task raises it
                    future.set_exception(e)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Let the threads end once idle; never wait for busy ones."""
        with self._lock:
            self._closed, started = True, self._started
        for _ in range(started):
            self._work.put(None)


_threads = DaemonExecutor()
"""Where sync functions run: its threads are reused, so a call costs no thread start."""


async def wait_for_abandoned(key: str) -> None:
    """Return once no abandoned attempt with idempotency key `key` is running."""
    with _abandoned_lock:
        call = _abandoned.get(key)
    if call is None:
        return
    log.warning("attempt %r: an earlier attempt is still running in a thread that cannot "
                "be stopped; this attempt waits for it to return", key)
    delay = 0.01
    while not call.done():
        await asyncio.sleep(delay)  # the thread may belong to another event loop's run
        delay = min(delay * 2, 0.5)
    with _abandoned_lock:
        if _abandoned.get(key) is call:
            del _abandoned[key]


async def call_in_thread(call: Callable[[], Any], key: str) -> Any:
    """`call()` in a daemon thread; when the awaiting task is cancelled while it runs, the
    call is abandoned under `key` (see `wait_for_abandoned`), never waited for."""
    future = _threads.submit(contextvars.copy_context().run, call)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        if not future.done():  # running: a call not yet started was cancelled with it
            with _abandoned_lock:
                _abandoned[key] = future
            log.warning("attempt %r was stopped while its function still runs in a thread "
                        "that cannot be stopped; it is abandoned", key)
        raise


# -- worker processes ---------------------------------------------------------------------


def importable(fn: Callable[..., Any]) -> tuple[str, str, str] | None:
    """`(module, qualified name, folder to import it from)` when another process can import
    `fn` by name and get the same function; None otherwise (a lambda, a closure, a method,
    a callable object, a function of `__main__`)."""
    module_name = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(module_name, str) or not isinstance(qualname, str):
        return None
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if module is None or module_name == "__main__" or not file or "<" in qualname:
        return None
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if obj is not fn:
        return None
    path = Path(file).resolve()
    depth = module_name.count(".") + (1 if path.stem == "__init__" else 0)
    return module_name, qualname, str(path.parents[depth])


class _Worker:
    """A Python process started for function calls: not forked (this process has threads)
    and not through multiprocessing (which would run the caller's main module again)."""

    def __init__(self) -> None:
        to_child, self.send_fd = os.pipe()
        self.recv_fd, from_child = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-P", str(_WORKER_MAIN), str(to_child), str(from_child),
             str(os.getpid())],
            pass_fds=(to_child, from_child), env=env, stdin=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        os.set_blocking(self.recv_fd, False)

    def send(self, message: Any) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(len(data).to_bytes(8, "big") + data)
        while view:
            view = view[os.write(self.send_fd, view):]

    async def receive(self) -> Any:
        loop = asyncio.get_running_loop()
        buffer = bytearray()
        need: int | None = None
        while need is None or len(buffer) < need:
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self.recv_fd, _set_once, readable)
            try:
                await readable
            finally:
                loop.remove_reader(self.recv_fd)
            try:
                chunk = os.read(self.recv_fd, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                raise EOFError
            buffer += chunk
            if need is None and len(buffer) >= 8:
                need = 8 + int.from_bytes(buffer[:8], "big")
        return pickle.loads(buffer[8:need])

    def stop(self) -> int | None:
        """Kill the worker, wait until it is gone, and return its exit status."""
        self.process.kill()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:  # stuck in the kernel; it is dead to us anyway
            log.warning("function worker %d did not exit after SIGKILL", self.process.pid)
        for fd in (self.send_fd, self.recv_fd):
            os.close(fd)
        return self.process.returncode


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_WORKER_MAIN = Path(__file__).with_name("_worker_main.py")
_idle: list[_Worker] = []
_idle_lock = threading.Lock()
_owner_pid = os.getpid()


@atexit.register
def _stop_idle() -> None:
    """Idle workers end with the process (they would anyway, on their parent's death)."""
    with _idle_lock:
        workers, _idle[:] = list(_idle), []
    for worker in workers:
        worker.stop()


def _take() -> _Worker:
    global _owner_pid
    with _idle_lock:
        if _owner_pid != os.getpid():  # a forked child must not share its parent's workers
            _idle.clear()
            _owner_pid = os.getpid()
        while _idle:
            worker = _idle.pop()
            if worker.process.poll() is None:
                return worker
            worker.stop()
    return _Worker()


async def call_in_worker(target: tuple[str, str, str], kwargs: Mapping[str, Any],
                         context: tuple[str, dict[str, Any]] | None = None) -> Any:
    """The function named by `target` (see `importable`) called with `kwargs` in a worker
    process, and with `context[1]` as a read-only object in parameter `context[0]`; if the
    awaiting task is cancelled (a timeout, a cancel), the worker is killed and reaped
    before the cancellation goes on, and a fresh one is started for the next attempt."""
    worker = _take()
    try:
        worker.send((*target, dict(kwargs), context))
        status, value = await worker.receive()
    except EOFError:
        code = worker.stop()
        raise RuntimeError(f"the worker process running {target[0]}:{target[1]} died "
                           f"(exit status {code})") from None
    except BaseException:
        worker.stop()
        _warm(target)
        raise
    with _idle_lock:
        _idle.append(worker)
    if status == "error":
        raise value
    return value


def _warm(target: tuple[str, str, str]) -> None:
    """Start a worker that imports `target`'s module while nobody waits, so that a retry's
    time limit is not spent starting one."""
    try:
        worker = _Worker()
        worker.send((*target, None, None))
    except OSError as e:
        log.warning("could not start a function worker: %s", e)
        return
    with _idle_lock:
        _idle.append(worker)


# -- the executor -------------------------------------------------------------------------


class LocalExecutor:
    """Runs sync function agents on this machine (`podium.core.agent.Executor`): with a
    timeout and a function importable by name, in a worker process; otherwise in a daemon
    thread."""

    async def call(self, fn: Callable[..., Any], kwargs: dict[str, Any], ctx: TaskContext,
                   *, stoppable: bool) -> Any:
        key = ctx.idempotency_key
        await wait_for_abandoned(key)
        target = _importable(fn) if stoppable else None
        if target is not None:
            context = None
            if "ctx" in kwargs:
                context = ("ctx", _attempt_values(kwargs.pop("ctx")))
            return await call_in_worker(target, kwargs, context)
        return await call_in_thread(functools.partial(fn, **kwargs), key)


_cached_importable = functools.lru_cache(maxsize=4096)(importable)


def _importable(fn: Callable[..., Any]) -> tuple[str, str, str] | None:
    try:
        return _cached_importable(fn)
    except TypeError:  # an unhashable callable
        return importable(fn)


def _attempt_values(ctx: TaskContext) -> dict[str, Any]:
    """The attempt's values, without what lives in this process (journal, memory, stream),
    for a function called in a worker process."""
    principal = None if ctx.principal is None else ctx.principal.to_json()
    return {"run_id": ctx.run_id, "task_id": ctx.task_id, "attempt": ctx.attempt,
            "idempotency_key": ctx.idempotency_key, "inputs": dict(ctx.inputs),
            "outputs": dict(ctx.outputs), "workflow": ctx.workflow, "item": ctx.item,
            "index": ctx.index, "principal": principal,
            "session": ctx.session,
            "approval": None if ctx.approval is None else dict(ctx.approval),
            "notes": ctx.notes, "memory": None}
