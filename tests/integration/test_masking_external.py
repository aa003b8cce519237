"""Canary personal data never reaches an external model; the reply gets it back."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from podium import Engine, LLMAgent, SQLiteStore, Workflow
from podium.models import OpenAICompatModel
from podium.security import MaskingPolicy
from podium.testing import ScriptedModel

CANARIES = {"email": "ada.lovelace@example.com", "card": "4111 1111 1111 1111",
            "iban": "DE89 3704 0044 0532 0130 00"}


class _Provider(BaseHTTPRequestHandler):
    """Stands in for an external provider: records every body, echoes the user's text."""

    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append(body)
        user = json.loads(body)["messages"][-1]["content"]
        reply = {"id": "x", "object": "chat.completion", "model": "stand-in",
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": f"Noted: {user}"}}],
                 "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[str]:
    _Provider.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _workflow(model: Any) -> Workflow:
    wf = Workflow("canary")
    wf.add_agent("writer", LLMAgent(model, name="writer", masking=MaskingPolicy()))
    wf.add_task("note", agent="writer",
                prompt=f"Customer {CANARIES['email']} paid with {CANARIES['card']} "
                       f"from {CANARIES['iban']}.")
    return wf


async def test_canaries_never_reach_the_external_model(provider: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    store = SQLiteStore(tmp_path / "j.db")
    try:
        state = await Engine(store).start(_workflow(OpenAICompatModel("gpt-x",
                                                                      base_url=provider)))
    finally:
        await store.close()
    assert state.status == "completed", state.error
    sent = b"".join(_Provider.bodies).decode()
    assert _Provider.bodies and "<EMAIL_1>" in sent and "<CARD_1>" in sent
    for value in CANARIES.values():
        assert value not in sent
        assert value.replace(" ", "") not in sent
    output = state.outputs()["note"]
    for value in CANARIES.values():
        assert value in output  # restored in the reply


async def test_local_models_are_not_masked(tmp_path: Path) -> None:
    model = ScriptedModel(lambda messages, schema: "ok")
    store = SQLiteStore(tmp_path / "j.db")
    try:
        await Engine(store).start(_workflow(model))
    finally:
        await store.close()
    assert CANARIES["email"] in model.calls[0].messages[-1].content


async def test_unknown_placeholders_in_a_reply_are_reported(tmp_path: Path) -> None:
    model = ScriptedModel(["Wrote to <EMAIL_1> and <EMAIL_7>."], external=True)
    store = SQLiteStore(tmp_path / "j.db")
    try:
        state = await Engine(store).start(_workflow(model))
        events = await store.events(state.run_id)
    finally:
        await store.close()
    assert state.outputs()["note"] == f"Wrote to {CANARIES['email']} and <EMAIL_7>."
    call = next(e for e in events if e.type == "model_call")
    assert call.data["unknown_placeholders"] == ["<EMAIL_7>"]
