"""`AnthropicModel` through the real `anthropic` SDK against a stand-in for Anthropic's API.

Anthropic's API cannot be reached from here, so a real HTTP server on 127.0.0.1 stands
in for it: it implements just enough of `POST /v1/messages` (the request checks, a text
reply, a forced tool call, usage, the error shape) for the SDK to talk to it as it
would to the real one.
"""

from __future__ import annotations

import inspect
import json
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest

from podium.errors import ModelError, UserError
from podium.models import AnthropicModel, Message, resolve_model

pytest.importorskip("anthropic", reason="needs: pip install 'podium[anthropic]'")

SECRET = "sk-ant-test-0123456789abcdef-never-print-me"
KEY_ENV = "PODIUM_TEST_ANTHROPIC_KEY"


class Weather(pydantic.BaseModel):
    city: str
    temperature_c: int


ASK_WEATHER = [
    Message(role="system", content="You answer with JSON only."),
    Message(role="user", content="What is the weather in Paris today?"),
]
ASK_TEXT = [
    Message(role="system", content="Be brief."),
    Message(role="user", content="Say hello."),
    Message(role="assistant", content="Hello."),
    Message(role="user", content="Again, please."),
]


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    """Names in lower case."""
    body: dict[str, Any]


@dataclass
class StandIn:
    """What the stand-in answers; by default a well-formed message built from the request."""

    base_url: str = ""
    requests: list[Request] = field(default_factory=list)
    status: int = 200
    reply: Any = None
    """A JSON value (or raw bytes) sent instead of the computed message."""
    headers: dict[str, str] = field(default_factory=dict)
    tool_input: dict[str, Any] = field(default_factory=lambda: {"city": "Paris",
                                                                "temperature_c": 21})
    stop_reason: str | None = None
    echo_key: bool = False
    hang: bool = False
    release: threading.Event = field(default_factory=threading.Event)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _message(state: StandIn, body: dict[str, Any]) -> tuple[int, Any]:
    """Anthropic's answer to a well-formed request, or its error for a bad one."""
    missing = [k for k in ("model", "max_tokens", "messages") if k not in body]
    if missing:
        return 400, _error("invalid_request_error", f"{missing[0]}: Field required")
    choice = body.get("tool_choice")
    if choice is not None:
        tools = {tool["name"]: tool for tool in body.get("tools", [])}
        if choice.get("type") != "tool" or choice.get("name") not in tools:
            return 400, _error("invalid_request_error", "tool_choice names no tool")
        if tools[choice["name"]]["input_schema"].get("type") != "object":
            return 400, _error("invalid_request_error", "input_schema: type must be object")
        content = [{"type": "tool_use", "id": "toolu_01", "name": choice["name"],
                    "input": state.tool_input}]
        stop_reason = "tool_use"
    else:
        content = [{"type": "text", "text": "Hello from"},
                   {"type": "text", "text": " the stand-in."}]
        stop_reason = "end_turn"
    words = sum(len(str(m["content"]).split()) for m in body["messages"])
    return 200, {
        "id": "msg_01", "type": "message", "role": "assistant",
        "model": f"{body['model']}-20250101", "content": content,
        "stop_reason": state.stop_reason or stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": words, "output_tokens": 9,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2},
    }


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    state = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            headers = {name.lower(): value for name, value in self.headers.items()}
            state.requests.append(Request(self.path, headers, body))
            if state.hang:
                state.release.wait(timeout=30)
            if self.path != "/v1/messages":
                status, reply = 404, _error("not_found_error", f"no route {self.path}")
            elif self.headers.get("x-api-key") is None:
                status, reply = 401, _error("authentication_error", "x-api-key header is required")
            elif state.status != 200 or state.reply is not None:
                status, reply = state.status, state.reply
            else:
                status, reply = _message(state, body)
            if state.echo_key:
                reply["error"]["message"] += f" (key {self.headers.get('x-api-key')})"
            data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in state.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (the timeout test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def model(stand_in: StandIn, monkeypatch: pytest.MonkeyPatch) -> AnthropicModel:
    monkeypatch.setenv(KEY_ENV, SECRET)
    return AnthropicModel("claude-test", base_url=stand_in.base_url, api_key_env=KEY_ENV)


def _everything_about(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error)


# --- replies ------------------------------------------------------------------------------


async def test_a_text_reply_with_its_usage(stand_in: StandIn, model: AnthropicModel) -> None:
    reply = await model.complete(ASK_TEXT)

    assert reply.text == "Hello from the stand-in."
    # Tokens read from the prompt cache are input tokens too.
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (5 + 2, 9)
    assert reply.model == "claude-test-20250101"


async def test_the_request_is_a_messages_call_with_the_system_prompt_apart(
    stand_in: StandIn, model: AnthropicModel
) -> None:
    await model.complete(ASK_TEXT)

    [request] = stand_in.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == SECRET
    assert "anthropic-version" in request.headers
    assert request.body == {
        "model": "claude-test",
        "max_tokens": 1024,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Say hello."},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Again, please."},
        ],
    }


async def test_a_temperature_is_sent_only_where_the_api_version_takes_one(
    stand_in: StandIn, model: AnthropicModel
) -> None:
    import anthropic.resources.messages

    sdk_takes_it = "temperature" in inspect.signature(
        anthropic.resources.messages.AsyncMessages.create).parameters

    if sdk_takes_it:
        await model.complete(ASK_TEXT, temperature=0.5)
        assert stand_in.requests[0].body["temperature"] == 0.5
    else:
        with pytest.raises(UserError, match=r"takes no sampling temperature.*leave temperature"):
            await model.complete(ASK_TEXT, temperature=0.5)
        assert stand_in.requests == []


async def test_structured_output_is_a_forced_tool_call(
    stand_in: StandIn, model: AnthropicModel
) -> None:
    schema = Weather.model_json_schema()

    reply = await model.complete(ASK_WEATHER, output_schema=schema, max_tokens=200)

    assert Weather.model_validate_json(reply.text) == Weather(city="Paris", temperature_c=21)
    jsonschema.validate(json.loads(reply.text), schema)
    body = stand_in.requests[0].body
    assert body["system"] == "You answer with JSON only."
    assert body["max_tokens"] == 200
    assert body["tool_choice"] == {"type": "tool", "name": "output"}
    [tool] = body["tools"]
    assert (tool["name"], tool["input_schema"]) == ("output", schema)


async def test_a_schema_that_is_not_an_object_is_wrapped_and_unwrapped(
    stand_in: StandIn, model: AnthropicModel
) -> None:
    schema = {"type": "array", "items": {"$ref": "#/$defs/City"},
              "$defs": {"City": {"type": "string"}}}
    stand_in.tool_input = {"value": ["Oslo", "Bergen"]}

    reply = await model.complete(ASK_WEATHER, output_schema=schema)

    assert json.loads(reply.text) == ["Oslo", "Bergen"]
    sent = stand_in.requests[0].body["tools"][0]["input_schema"]
    assert sent == {"type": "object", "required": ["value"],
                    "properties": {"value": {"type": "array", "items": {"$ref": "#/$defs/City"}}},
                    "$defs": {"City": {"type": "string"}}}


# --- failures -----------------------------------------------------------------------------


async def test_429_is_a_model_error_with_the_status_and_is_not_retried_by_the_sdk(
    stand_in: StandIn, model: AnthropicModel
) -> None:
    stand_in.status = 429
    stand_in.reply = _error("rate_limit_error", "Number of request tokens has exceeded your limit")
    stand_in.headers = {"retry-after": "7"}

    with pytest.raises(ModelError) as raised:
        await model.complete(ASK_TEXT)

    message = str(raised.value)
    assert "HTTP 429" in message
    assert "rate_limit_error" in message
    assert "wait 7s" in message
    # Podium's retry policy owns retries: the SDK's are off.
    assert len(stand_in.requests) == 1


async def test_500_is_a_model_error_with_the_status_and_never_the_key(
    stand_in: StandIn, model: AnthropicModel
) -> None:
    stand_in.status = 500
    stand_in.reply = _error("api_error", "Internal server error")
    stand_in.echo_key = True

    with pytest.raises(ModelError) as raised:
        await model.complete(ASK_TEXT)

    assert "HTTP 500" in str(raised.value)
    assert "api_error" in str(raised.value)
    assert "(key ***)" in str(raised.value)
    assert SECRET not in _everything_about(raised.value)
    assert SECRET not in repr(model)
    assert len(stand_in.requests) == 1


async def test_a_bad_key_is_a_model_error_that_names_the_variable(
    stand_in: StandIn, model: AnthropicModel
) -> None:
    stand_in.status = 401
    stand_in.reply = _error("authentication_error", "invalid x-api-key")

    with pytest.raises(ModelError, match=rf"HTTP 401.*check the API key in \${KEY_ENV}"):
        await model.complete(ASK_TEXT)


async def test_a_closed_port_is_a_model_error(
    free_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    model = AnthropicModel("claude-test", base_url=f"http://127.0.0.1:{free_tcp_port}",
                           api_key_env=KEY_ENV)

    with pytest.raises(ModelError, match=r"could not reach http://127\.0\.0\.1:\d+/v1/messages"):
        await model.complete(ASK_TEXT)


async def test_a_server_that_does_not_answer_times_out_as_a_model_error(
    stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    stand_in.hang = True
    model = AnthropicModel("claude-test", base_url=stand_in.base_url, api_key_env=KEY_ENV,
                           timeout=0.2)

    with pytest.raises(ModelError, match=r"no answer from .* within 0\.2s"):
        await model.complete(ASK_TEXT)


async def test_no_key_is_a_model_error_and_sends_nothing(
    stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    model = AnthropicModel("claude-test", base_url=stand_in.base_url, api_key_env=KEY_ENV)

    with pytest.raises(ModelError, match=rf"no API key: set the environment variable \${KEY_ENV}"):
        await model.complete(ASK_TEXT)

    assert stand_in.requests == []


async def test_a_json_reply_cut_short_is_a_model_error(
    stand_in: StandIn, model: AnthropicModel
) -> None:
    stand_in.stop_reason = "max_tokens"
    stand_in.tool_input = {"city": "Par"}

    with pytest.raises(ModelError, match="cut off at max_tokens=5"):
        await model.complete(ASK_WEATHER, output_schema={"type": "object"}, max_tokens=5)


async def test_a_refusal_is_a_model_error(stand_in: StandIn, model: AnthropicModel) -> None:
    stand_in.stop_reason = "refusal"

    with pytest.raises(ModelError, match="claude-test refused"):
        await model.complete(ASK_TEXT)


@pytest.mark.parametrize(
    "reply",
    [b"not json at all", {}, {"type": "message", "content": "no blocks", "usage": {}}],
    ids=["not-json", "empty", "wrong-shape"],
)
async def test_a_malformed_reply_is_a_model_error(
    stand_in: StandIn, model: AnthropicModel, reply: Any
) -> None:
    stand_in.reply = reply

    with pytest.raises(ModelError, match="malformed reply"):
        await model.complete(ASK_TEXT)


# --- by name ------------------------------------------------------------------------------


async def test_resolve_model_reaches_the_api_by_name(
    stand_in: StandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.setenv(KEY_ENV, SECRET)

    model = resolve_model("anthropic:claude-test", base_url=stand_in.base_url,
                          api_key_env=KEY_ENV, options={"default_max_tokens": 64})
    reply = await model.complete(ASK_TEXT)

    assert isinstance(model, AnthropicModel)
    assert model.name == "anthropic:claude-test"
    assert reply.text == "Hello from the stand-in."
    assert stand_in.requests[0].body["max_tokens"] == 64
