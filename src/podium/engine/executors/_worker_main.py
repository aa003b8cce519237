"""A function worker process (see `local`): reads calls from one pipe, writes results to
another. Run as a script, so that starting it imports nothing of Podium's; the functions it
calls import what they need."""

import importlib
import os
import pickle
import signal
import sys
import types
from typing import Any


def _read(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _write(fd: int, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(len(data).to_bytes(8, "big") + data)
    while view:
        view = view[os.write(fd, view):]


def _portable(error: BaseException) -> BaseException:
    """`error` if it survives pickling, else a RuntimeError that describes it."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


class AttemptContext:
    """What a function called in a worker process gets as `ctx`: the attempt's values of
    Podium's TaskContext, read-only; nothing that lives in the engine's process (the
    journal, memory, the stream). Not Podium's class, so the worker need not import it."""

    def __init__(self, fields: dict[str, Any]) -> None:
        principal = fields.get("principal")
        if principal is not None:  # id, kind, roles: as attributes, like Principal's
            fields = {**fields, "principal": types.SimpleNamespace(
                **{**principal, "roles": frozenset(principal["roles"])})}
        self.__dict__.update(fields)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the task context is read-only ({name!r})")

    @property
    def streaming(self) -> bool:
        return False

    def token(self, text: str) -> None:
        """Nobody watches a worker's text as it is written."""

    def __repr__(self) -> str:
        fields = self.__dict__
        return f"AttemptContext(run_id={fields.get('run_id')!r}, task_id={fields.get('task_id')!r})"


def _call(request: tuple[Any, ...]) -> Any:
    module_name, qualname, folder, kwargs, ctx = request
    if folder not in sys.path:
        sys.path.append(folder)
    obj: Any = importlib.import_module(module_name)
    if kwargs is None:  # a warm-up: import only
        return None
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if ctx is not None:
        kwargs[ctx[0]] = AttemptContext(ctx[1])
    return obj(**kwargs)


def main(inbox: int, outbox: int, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the engine's to handle
    if sys.platform == "linux":
        import ctypes

        # Die with the engine's process, even when it is killed.
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before that took effect
        return
    while True:
        try:
            request = pickle.loads(_read(inbox, int.from_bytes(_read(inbox, 8), "big")))
        except EOFError:
            return
        module_name, qualname = request[0], request[1]
        if request[3] is None:  # a warm-up, unanswered: an import error shows at the call
            try:
                _call(request)
            except BaseException:
                pass
            continue
        try:
            reply: tuple[str, Any] = ("ok", _call(request))
        except BaseException as e:  # the engine raises it as the attempt's error
            reply = ("error", _portable(e))
        try:
            _write(outbox, reply)
        except Exception as e:  # the result cannot be pickled
            _write(outbox, ("error", TypeError(
                f"{module_name}:{qualname} returned a value that cannot be sent back from "
                f"its worker process: {type(e).__name__}: {e}")))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
