"""A hostile OpenAI-compatible server on loopback: replies far past `max_tokens` are cut
off while they are read and refused, and usage billed implausibly low is counted here.
Failed calls are journaled with the tokens they spent, so budgets see them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from podium import Engine, LLMAgent, SQLiteStore, Workflow
from podium.core.policy import Budget
from podium.models import Message, OpenAICompatModel
from podium.models.limits import ReplyTooLarge

ASK = [Message(role="user", content="Say hello.")]
HUGE = 30 * 1024 * 1024
PIECE = 64 * 1024


@dataclass
class Hostile:
    """What the server sends (`mode`), and how far it got."""

    base_url: str = ""
    mode: str = "json"
    size: int = HUGE
    billed: int = 10
    sent: int = 0
    cut: bool = False
    """The client closed the connection before the whole reply was written."""
    done: threading.Event = field(default_factory=threading.Event)


def _reply(hostile: Hostile) -> Iterator[bytes]:
    if hostile.mode == "json":
        yield b'{"model": "m", "choices": [{"finish_reason": "stop", "message": {"content": "'
        for _ in range(hostile.size // PIECE):
            yield b"A" * PIECE
        usage = {"prompt_tokens": 3, "completion_tokens": hostile.billed}
        yield b'"}}], "usage": ' + json.dumps(usage).encode() + b"}"
    elif hostile.mode == "stream":
        chunk = {"model": "m", "choices": [{"delta": {"content": "A" * PIECE}}]}
        event = b"data: " + json.dumps(chunk).encode() + b"\n\n"
        for _ in range(hostile.size // PIECE):
            yield event
        yield b"data: [DONE]\n\n"
    else:  # one line that never ends
        yield b'data: {"choices": [{"delta": {"content": "'
        for _ in range(hostile.size // PIECE):
            yield b"A" * PIECE


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    state = Hostile()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if state.mode == "refuse":
                self.send_response(503)
                self.end_headers()
                self.wfile.write(b'{"error": "overloaded"}')
                state.done.set()
                return
            self.send_response(200)
            kind = "application/json" if state.mode == "json" else "text/event-stream"
            self.send_header("Content-Type", kind)
            self.end_headers()
            try:
                for part in _reply(state):
                    self.wfile.write(part)
                    state.sent += len(part)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                state.cut = True
            finally:
                state.done.set()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("mode", ["json", "stream", "line"])
async def test_a_30_mb_reply_to_max_tokens_50_is_cut_off_while_read(
        hostile: Hostile, mode: str) -> None:
    hostile.mode = mode
    model = OpenAICompatModel("m", base_url=hostile.base_url)
    pieces: list[str] = []

    with pytest.raises(ReplyTooLarge) as caught:
        await model.complete(ASK, max_tokens=50,
                             on_token=pieces.append if mode != "json" else None)

    message = str(caught.value)
    assert "openai:m" in message and "max_tokens=50" in message
    assert "passed its limit of" in message and "max_reply_bytes" in message
    assert not caught.value.retryable
    assert hostile.done.wait(30), "the server is still writing"
    assert hostile.cut and hostile.sent < HUGE // 2, hostile.sent
    # What reached the caller is bounded by the limit, not by what the server sent.
    assert sum(map(len, pieces)) <= 50 * 64 + 4096


async def test_max_reply_bytes_is_the_limit_when_set(hostile: Hostile) -> None:
    hostile.mode, hostile.size = "json", 4 * PIECE
    model = OpenAICompatModel("m", base_url=hostile.base_url, max_reply_bytes=100_000)
    with pytest.raises(ReplyTooLarge, match=r"limit of 97\.7 KiB \(from max_reply_bytes\)"):
        await model.complete(ASK)
    hostile.done.clear()
    roomy = OpenAICompatModel("m", base_url=hostile.base_url, max_reply_bytes=1_000_000)
    assert len((await roomy.complete(ASK)).text) == 4 * PIECE


def _workflow(base_url: str, budget: Budget, max_tokens: int | None = None) -> Workflow:
    wf = Workflow("hostile", budget=budget)
    wf.add_agent("writer", LLMAgent(OpenAICompatModel("m", base_url=base_url), name="writer",
                                    max_tokens=max_tokens))
    wf.add_task("a", agent="writer", prompt="write")
    wf.add_task("b", agent="writer", prompt="write more", needs=["a"])
    return wf


async def _run(wf: Workflow, db: Path) -> dict[str, object]:
    store = SQLiteStore(db)
    try:
        state = await Engine(store).start(wf)
        record: dict[str, object] = (await Engine(store).state(state.run_id)).record()
        events = await store.events(state.run_id)
    finally:
        await store.close()
    record["model_calls"] = [e.data for e in events if e.type == "model_call"]
    return record


async def test_a_megabyte_billed_as_10_tokens_is_counted_and_stops_the_budget(
        hostile: Hostile, tmp_path: Path) -> None:
    hostile.mode, hostile.size, hostile.billed = "json", 16 * PIECE, 10

    record = await _run(_workflow(hostile.base_url, Budget(tokens=100)), tmp_path / "j.db")

    assert record["status"] == "failed" and record["reason"] == "budget_exceeded"
    assert "tokens budget of 100 exceeded" in str(record["error"])
    (call,) = record["model_calls"]  # type: ignore[misc]
    # One token per 3 bytes at least: far more than the 10 billed, and what counts.
    assert call["output_tokens"] >= 16 * PIECE // 3
    assert call["reported"] == {"input_tokens": 3, "output_tokens": 10}
    assert call["counted"] == "estimate"
    assert "b" not in record["outputs"]  # type: ignore[operator]


async def test_a_refused_reply_is_journaled_with_its_tokens_not_its_text(
        hostile: Hostile, tmp_path: Path) -> None:
    hostile.mode = "stream"
    db = tmp_path / "j.db"

    record = await _run(_workflow(hostile.base_url, Budget(tokens=100_000), max_tokens=50), db)

    assert record["status"] == "failed"
    calls = record["model_calls"]
    assert isinstance(calls, list) and calls
    assert all(c["error_type"] == "ReplyTooLarge" for c in calls)
    assert all(c["output_tokens"] > 50 for c in calls)
    # Nothing like the 30 MB reached the journal.
    assert _journal_bytes(tmp_path) < 2 * 1024 * 1024


def _journal_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("j.db*"))


async def test_a_call_refused_outright_is_journaled_as_spending_nothing(
        hostile: Hostile, tmp_path: Path) -> None:
    hostile.mode = "refuse"

    record = await _run(_workflow(hostile.base_url, Budget(tokens=100)), tmp_path / "j.db")

    assert record["status"] == "failed" and record["reason"] != "budget_exceeded"
    (call,) = record["model_calls"]  # type: ignore[misc]
    assert call["error_type"] == "ModelError" and "HTTP 503" in call["error"]
    assert (call["input_tokens"], call["output_tokens"]) == (0, 0)
