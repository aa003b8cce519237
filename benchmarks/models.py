"""The local model: load time, first-token latency, tokens per second, and throughput with
1, 2 and 4 model calls at once, in-process (Podium's old design: one `Llama` per process
behind a lock) against the supervised worker processes of `LocalModel`. Prints JSON.

    python benchmarks/models.py [--quick] [--tokens N] [--build LABEL=PYTHON ...]

`--build native=/tmp/venv-native/bin/python` also measures llama.cpp as built in another
environment (say, with its native flags), in-process, by running this script there with
`--llama-only` (which needs nothing but `llama_cpp`): the portable build's cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

STORY = "Write a long story about a lighthouse keeper and a storm."
# About 400 tokens of prompt, for prompt-evaluation speed.
LONG = " ".join(["The quarterly figures show steady growth in every region we serve."] * 32)


def _messages(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def llama_in_process(model_path: str, tokens: int, repeats: int) -> dict[str, Any]:
    """llama.cpp loaded in this process, as Podium used it before the workers: load time,
    prompt evaluation, first token, decode speed, and 1/2/4 calls at once behind one
    lock (one context cannot serve two calls)."""
    import llama_cpp

    started = time.perf_counter()
    llama = llama_cpp.Llama(model_path=model_path, n_ctx=2048, seed=1234, verbose=False)
    load_s = time.perf_counter() - started
    prompt_rates, first_ms, decode_rates = [], [], []
    for _ in range(repeats):
        llama.reset()  # no reuse of the previous prompt's cache
        n_prompt = len(llama.tokenize(LONG.encode(), add_bos=True))
        started = time.perf_counter()
        llama.create_completion(LONG, max_tokens=1)
        prompt_rates.append(n_prompt / (time.perf_counter() - started))
        llama.reset()
        started = time.perf_counter()
        first: float | None = None
        pieces = 0
        for chunk in llama.create_chat_completion(_messages(STORY), max_tokens=tokens,
                                                  stream=True):
            if chunk["choices"][0].get("delta", {}).get("content"):
                pieces += 1
                first = first if first is not None else time.perf_counter()
        ended = time.perf_counter()
        assert first is not None
        first_ms.append((first - started) * 1000)
        decode_rates.append((pieces - 1) / (ended - first))
    lock = threading.Lock()

    def call(out: list[int]) -> None:
        with lock:
            llama.reset()
            reply = llama.create_chat_completion(_messages(STORY), max_tokens=tokens)
            out.append(reply["usage"]["completion_tokens"])

    concurrent = {}
    for n in (1, 2, 4):
        done: list[int] = []
        threads = [threading.Thread(target=call, args=(done,)) for _ in range(n)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        concurrent[str(n)] = round(sum(done) / (time.perf_counter() - started), 1)
    info = llama_cpp.llama_print_system_info().decode()
    llama.close()
    return {"llama_cpp": llama_cpp.__version__, "system_info": info.strip(),
            "n_threads": llama.n_threads, "load_s": round(load_s, 3),
            "prompt_eval_tokens_per_s": round(statistics.median(prompt_rates), 1),
            "first_token_ms": round(statistics.median(first_ms), 1),
            "tokens_per_s": round(statistics.median(decode_rates), 1),
            "concurrent_tokens_per_s": concurrent}


async def workers(tokens: int, repeats: int, size: int) -> dict[str, Any]:
    """`LocalModel`'s worker pool of `size`: the first call's latency (a worker started
    and the model loaded), then first token, decode speed, and 1/2/4 calls at once."""
    from podium.models.base import Message
    from podium.models.local import LocalModel

    # A seed of its own gives this measurement a pool (and cold workers) of its own.
    model = LocalModel(workers=size, seed=4321 + size)
    ask = [Message(role="user", content=STORY)]
    started = time.perf_counter()
    await model.complete([Message(role="user", content="Hi")], max_tokens=1)
    cold_s = time.perf_counter() - started
    first_ms, decode_rates = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        stamps = await _stamped(model, ask, tokens)
        first_ms.append((stamps[0] - started) * 1000)
        decode_rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    concurrent = {}
    for n in (1, 2, 4):
        started = time.perf_counter()
        replies = await asyncio.gather(*(model.complete(ask, max_tokens=tokens)
                                         for _ in range(n)))
        elapsed = time.perf_counter() - started
        concurrent[str(n)] = round(sum(r.usage.output_tokens for r in replies) / elapsed, 1)
    return {"workers": size, "n_threads_per_worker": max(1, (os.cpu_count() or 1) // size),
            "first_call_s": round(cold_s, 3),
            "first_token_ms": round(statistics.median(first_ms), 1),
            "tokens_per_s": round(statistics.median(decode_rates), 1),
            "concurrent_tokens_per_s": concurrent}


async def _stamped(model: Any, ask: Any, tokens: int) -> list[float]:
    """When each piece of a streamed reply arrived."""
    stamps: list[float] = []
    await model.complete(ask, max_tokens=tokens,
                         on_token=lambda _: stamps.append(time.perf_counter()))
    return stamps


def _progress(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few tokens, one repeat")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per reply")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--build", action="append", default=[], metavar="LABEL=PYTHON",
                        help="also measure the llama_cpp of this interpreter, in-process")
    parser.add_argument("--llama-only", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    tokens, repeats = (12, 1) if args.quick else (args.tokens, args.repeats)
    if args.llama_only:
        print(json.dumps(llama_in_process(args.llama_only, tokens, repeats)))
        return
    from podium.models.local import default_model_path, default_workers, stop_workers

    model_path = str(default_model_path())
    report: dict[str, Any] = {"model": Path(model_path).name, "tokens": tokens,
                              "repeats": repeats, "cpus": os.cpu_count(),
                              "load_average_before": _load_average()}
    _progress("in-process")
    report["in_process"] = llama_in_process(model_path, tokens, repeats)
    sizes = sorted({1, default_workers()} | (set() if args.quick else {2, 4}))
    report["workers"] = {}
    for size in sizes:
        _progress(f"workers={size}")
        report["workers"][str(size)] = asyncio.run(workers(tokens, repeats, size))
        stop_workers()  # idle workers of one measurement do not weigh on the next
    builds = {}
    for item in args.build:
        label, _, python = item.partition("=")
        _progress(f"build {label}")
        done = subprocess.run([python, __file__, "--llama-only", model_path,
                               "--tokens", str(tokens), "--repeats", str(repeats)],
                              capture_output=True, text=True, check=True)
        builds[label] = json.loads(done.stdout)
    if builds:
        builds["this"] = report["in_process"]
        report["builds"] = builds
    report["load_average_after"] = _load_average()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
