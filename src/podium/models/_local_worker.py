"""The local model's worker process: llama.cpp behind a pipe, speaking JSON lines.

Run as a script (`python -P _local_worker.py`), not as `-m podium.models...`, so that it
imports only the standard library and `llama_cpp`, not the whole of Podium. The parent
(`podium.models._local_pool`) writes one JSON object per line on the worker's stdin:

- first, the settings: `{"model_path", "n_ctx", "seed", "n_threads"}`; the worker loads
  the model and answers `{"ready": {"pid", "system_info"}}`, or `{"fatal": message,
  "retryable": bool}` and exits 1;
- then requests, one at a time: `{"op": "complete", "kwargs": {...}, "stream": bool}`.
  A streamed request is answered by `{"piece": text}` lines as llama.cpp samples them;
  every request ends with `{"result": <llama.cpp's chat completion>}` or
  `{"error": message}`.

The worker exits when its stdin closes, even mid-reply: stdin is read by a thread of its
own, so a parent that dies (or closes the pipe) never leaves a worker behind.

The AMX check (`amx_problem`) lives here too, free of llama.cpp, so it can be tested as a
pure function.
"""

from __future__ import annotations

import faulthandler
import json
import os
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

AMX_OVERRIDE_ENV = "PODIUM_LOCAL_ALLOW_AMX"
"""Set to 1 to run a llama.cpp build with AMX on a CPU with AMX anyway (for a build where
upstream has fixed the fault)."""

INSTALL_FIX = "python3 scripts/install.py --rebuild-llama"


def amx_problem(system_info: str, cpu_flags: frozenset[str]) -> str | None:
    """Why this llama.cpp build must not run on this CPU, or None when it may.

    `system_info` is `llama_cpp.llama_print_system_info()`: the instruction sets the
    build *uses* (`AMX_INT8 = 1` appears only when it was compiled with AMX, i.e. natively
    on an AMX machine). `cpu_flags` are the CPU's own (Linux: `/proc/cpuinfo`'s flags).
    Both together are llama.cpp's AMX matrix-multiply path, which crashes in `decode`
    (ggml-org/llama.cpp#20824).
    """
    built = {part.split("=")[0].strip().upper() for part in system_info.split("|")
             if part.split("=")[-1].strip() == "1"}
    if not any(name.startswith("AMX") for name in built):
        return None
    if not any(flag.startswith("amx") for flag in cpu_flags):
        return None
    return (
        "llama.cpp was built with AMX (its native flags) and this CPU has AMX: that path "
        "crashes in decode (ggml-org/llama.cpp#20824). Rebuild llama-cpp-python without "
        f"it: run `{INSTALL_FIX}` (or set ${AMX_OVERRIDE_ENV}=1 to run it anyway)"
    )


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them; empty elsewhere (macOS and arm64
    have no AMX)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def prompt_tokens(llama: Any, messages: list[dict[str, str]]) -> int:
    """The prompt's length in tokens: the messages rendered with the file's chat template
    and tokenized, as llama.cpp does for a non-streamed call; without a template (or if
    rendering fails), the messages' bare text, which counts a little low."""
    template = llama.metadata.get("tokenizer.chat_template")
    try:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        model = llama._model  # llama-cpp-python has no public way to a token's text
        prompt = Jinja2ChatFormatter(
            template=template, eos_token=model.token_get_text(llama.token_eos()),
            bos_token=model.token_get_text(llama.token_bos()))(messages=messages).prompt  # type: ignore[arg-type]
        return len(llama.tokenize(prompt.encode(), add_bos=True, special=True))
    except Exception:  # a count is not worth failing the call for
        text = "\n".join(m["content"] for m in messages)
        return len(llama.tokenize(text.encode(), add_bos=True))


def _answer(llama: Any, request: dict[str, Any], send: Callable[[dict[str, Any]], None]
            ) -> dict[str, Any]:
    kwargs = request["kwargs"]
    if not request.get("stream"):
        result: dict[str, Any] = llama.create_chat_completion(**kwargs)
        return result
    # Streamed chunks carry no usage: output tokens are counted as content chunks (one
    # token each), input tokens by rendering the prompt.
    pieces: list[str] = []
    finish: str | None = None
    for chunk in llama.create_chat_completion(**kwargs, stream=True):
        choice = chunk["choices"][0]
        piece = choice.get("delta", {}).get("content")
        if piece:
            pieces.append(piece)
            send({"piece": piece})
        finish = choice.get("finish_reason") or finish
    return {"choices": [{"message": {"content": "".join(pieces)}, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens(llama, kwargs["messages"]),
                      "completion_tokens": len(pieces)}}


def _read_stdin(inbox: queue.Queue[dict[str, Any]]) -> None:
    for line in sys.stdin.buffer:
        inbox.put(json.loads(line))
    # The parent closed the pipe or died: nobody is left to read a reply.
    os._exit(0)


def main() -> int:
    # A native crash prints the Python stack (which llama.cpp call) before the process
    # dies of its signal; the parent quotes the end of stderr in its error.
    faulthandler.enable()
    out = sys.stdout.buffer
    lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        with lock:
            out.write(json.dumps(message, ensure_ascii=False).encode() + b"\n")
            out.flush()

    inbox: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(target=_read_stdin, args=(inbox,), daemon=True).start()
    settings = inbox.get()
    try:
        import llama_cpp
    except ImportError as exc:
        send({"fatal": f"llama-cpp-python is not installed ({exc})", "retryable": False})
        return 1
    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    problem = amx_problem(info, cpu_flags())
    if problem and os.environ.get(AMX_OVERRIDE_ENV) != "1":
        send({"fatal": problem, "retryable": False})
        return 1
    try:
        llama = llama_cpp.Llama(model_path=settings["model_path"], n_ctx=settings["n_ctx"],
                                seed=settings["seed"], n_threads=settings["n_threads"],
                                # Prompts too: llama.cpp's default (every core) in each of
                                # several workers would oversubscribe the cores.
                                n_threads_batch=settings["n_threads"], verbose=False)
    except Exception as exc:
        send({"fatal": f"could not load {settings['model_path']!r}: {exc}; is it a GGUF "
                       f"chat model?", "retryable": False})
        return 1
    send({"ready": {"pid": os.getpid(), "system_info": info}})
    while True:
        request = inbox.get()
        try:
            send({"result": _answer(llama, request, send)})
        except Exception as exc:
            send({"error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    sys.exit(main())
