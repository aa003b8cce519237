"""Tool calls through every provider.

Real models (marked slow): the OpenAI-compatible provider against a real llama.cpp server
doing native tool calls, and the local llama.cpp model with the prompted JSON protocol.
Anthropic's API and other OpenAI-compatible servers cannot be reached from here, so a
real HTTP server on 127.0.0.1 stands in for them, checking each request's shape the way
the real API would and answering in its format.
"""

from __future__ import annotations

import atexit
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from podium import Engine, LLMAgent, SQLiteStore, Workflow
from podium.core.untrusted import delimit
from podium.models import AnthropicModel, LocalModel, OpenAICompatModel, local
from podium.models.base import Message, ToolCall, ToolSpec
from podium.models.local import protocol_schema
from podium.tools import tool
from tests.integration.conftest import serve_llama


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number.
        b: the second number.
    """
    return a + b


class Sum(BaseModel):
    total: int


ADD = ToolSpec(name=add.name, description=add.description, parameters=add.parameters)
ASK = [Message(role="system", content="You add numbers with the add tool."),
       Message(role="user", content="Call the add tool with a=2 and b=3.")]
CALLED = [*ASK,
          Message(role="assistant", tool_calls=(
              ToolCall(id="c1", name="add", arguments='{"a": 2, "b": 3}'),
              ToolCall(id="c2", name="add", arguments='{"a": 2}'))),
          Message(role="tool", tool_call_id="c1", content="5"),
          Message(role="tool", tool_call_id="c2", content="b: Field required", is_error=True)]


async def _run(agent: LLMAgent, tmp_path: Path, prompt: str) -> dict[str, Any]:
    wf = Workflow("tool-calling")
    wf.add_agent("a", agent)
    wf.add_task("t", agent="a", prompt=prompt)
    store = SQLiteStore(tmp_path / "j.db")
    try:
        state = await Engine(store).start(wf)
        record: dict[str, Any] = state.record()
        return record
    finally:
        await store.close()


# --- a stand-in HTTP server ---------------------------------------------------------------


@dataclass
class StandIn:
    """Answers each POST with `answer(path, body) -> (status, JSON)`; keeps the bodies."""

    answer: Callable[[str, dict[str, Any]], tuple[int, Any]]
    base_url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    state = StandIn(answer=lambda path, body: (500, {"error": "no answer scripted"}))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.bodies.append(body)
            status, reply = state.answer(self.path, body)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- OpenAI-compatible: the wire format ---------------------------------------------------


def _chat(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", **message}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3}, "model": "m"}


async def test_openai_tools_and_results_go_out_natively(stand_in: StandIn) -> None:
    stand_in.answer = lambda path, body: (200, _chat({"content": None, "tool_calls": [
        {"id": "call_9", "type": "function",
         "function": {"name": "add", "arguments": '{"a": 1, "b": 1}'}},
        # Ollama sends the arguments as an object.
        {"id": "call_10", "type": "function", "function": {"name": "add",
                                                           "arguments": {"a": 4, "b": 5}}},
    ]}, "tool_calls"))
    model = OpenAICompatModel("m", base_url=f"{stand_in.base_url}/v1", api_key_env="NO_KEY")

    reply = await model.complete(CALLED, tools=[ADD])

    assert reply.text == ""
    assert reply.tool_calls == (ToolCall(id="call_9", name="add", arguments='{"a": 1, "b": 1}'),
                                ToolCall(id="call_10", name="add",
                                         arguments='{"a": 4, "b": 5}'))
    (body,) = stand_in.bodies
    assert body["tools"] == [{"type": "function", "function": {
        "name": "add", "description": "Add two integers.", "parameters": add.parameters}}]
    assert body["tool_choice"] == "auto"
    assistant, first, second = body["messages"][2:]
    assert assistant == {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "add",
                                                      "arguments": '{"a": 2, "b": 3}'}},
        {"id": "c2", "type": "function", "function": {"name": "add",
                                                      "arguments": '{"a": 2}'}}]}
    assert first == {"role": "tool", "tool_call_id": "c1", "content": "5"}
    assert second == {"role": "tool", "tool_call_id": "c2",
                      "content": "Error: b: Field required"}


async def test_openai_without_tools_sends_no_tools(stand_in: StandIn) -> None:
    stand_in.answer = lambda path, body: (200, _chat({"content": "hi"}))
    model = OpenAICompatModel("m", base_url=f"{stand_in.base_url}/v1", api_key_env="NO_KEY")

    reply = await model.complete(ASK)

    assert (reply.text, reply.tool_calls) == ("hi", ())
    assert "tools" not in stand_in.bodies[0] and "tool_choice" not in stand_in.bodies[0]


# --- Anthropic: native tool use, through the real SDK -------------------------------------


def _anthropic(content: list[dict[str, Any]], stop: str) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test-1",
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 11, "output_tokens": 5}}


def _anthropic_turn(path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """Claude, as far as this test needs it: call `add`, then answer with the `output` tool.
    Requests that break the API's rules about tool use get its HTTP 400."""
    if path != "/v1/messages":
        return 404, {"type": "error", "error": {"type": "not_found_error", "message": path}}
    messages = body["messages"]
    roles = [m["role"] for m in messages]
    if any(a == b for a, b in itertools.pairwise(roles)) or roles[0] != "user":
        return 400, {"type": "error", "error": {"type": "invalid_request_error",
                                                "message": f"roles must alternate: {roles}"}}
    last = messages[-1]["content"]
    if isinstance(last, str):
        return 200, _anthropic([{"type": "text", "text": "Adding."},
                                {"type": "tool_use", "id": "toolu_1", "name": "add",
                                 "input": {"a": 2, "b": 3}}], "tool_use")
    uses = [b["id"] for b in messages[-2]["content"] if b["type"] == "tool_use"]
    results = [b["tool_use_id"] for b in last if b["type"] == "tool_result"]
    if uses != results:
        return 400, {"type": "error", "error": {"type": "invalid_request_error", "message":
                                                f"tool_use ids {uses} without results"}}
    # The result comes delimited as untrusted content: the number is its only line.
    total = int(last[0]["content"].splitlines()[1])
    return 200, _anthropic([{"type": "tool_use", "id": "toolu_2", "name": "output",
                             "input": {"total": total}}], "tool_use")


async def test_anthropic_tool_use_in_a_workflow(
        stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("anthropic", reason="needs: pip install 'podium[anthropic]'")
    monkeypatch.setenv("PODIUM_TEST_ANTHROPIC_KEY", "sk-ant-test")
    stand_in.answer = _anthropic_turn
    model = AnthropicModel("claude-test", base_url=stand_in.base_url,
                           api_key_env="PODIUM_TEST_ANTHROPIC_KEY")
    agent = LLMAgent(model, name="a", instructions="Add with the tool.", tools=[add],
                     output=Sum)

    record = await _run(agent, tmp_path, "What is 2 + 3?")

    assert record["status"] == "completed", record["error"]
    assert record["outputs"]["t"] == {"total": 5}
    first, second = stand_in.bodies
    assert [t["name"] for t in first["tools"]] == ["add", "output"]
    assert first["tools"][0]["input_schema"] == add.parameters
    assert first["tool_choice"] == {"type": "any"}
    assert second["messages"][1] == {"role": "assistant", "content": [
        {"type": "text", "text": "Adding."},
        {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 2, "b": 3}}]}
    assert second["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": delimit("5", "tool:add")}]}
    (call,) = record["tasks"][0]["tool_calls"]
    assert (call["call_id"], call["arguments"], call["result"]) == ("toolu_1",
                                                                    {"a": 2, "b": 3}, 5)


async def test_anthropic_results_of_one_turn_share_a_user_turn_and_errors_are_flagged(
        stand_in: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("anthropic", reason="needs: pip install 'podium[anthropic]'")
    monkeypatch.setenv("PODIUM_TEST_ANTHROPIC_KEY", "sk-ant-test")
    stand_in.answer = lambda path, body: (200, _anthropic(
        [{"type": "text", "text": "5, and b was missing."}], "end_turn"))
    model = AnthropicModel("claude-test", base_url=stand_in.base_url,
                           api_key_env="PODIUM_TEST_ANTHROPIC_KEY")

    reply = await model.complete(CALLED, tools=[ADD])

    assert (reply.text, reply.tool_calls) == ("5, and b was missing.", ())
    (body,) = stand_in.bodies
    assert "tool_choice" not in body
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "5"},
        {"type": "tool_result", "tool_use_id": "c2", "content": "b: Field required",
         "is_error": True}]


# --- the local protocol's schema ----------------------------------------------------------


class Place(BaseModel):
    city: str
    country: str


def test_the_local_protocol_schema_becomes_a_llama_cpp_grammar() -> None:
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    # Importing llama_cpp opens files that only the local model's exit hook closes.
    atexit.register(local._close_vocabs)

    @tool
    def weather(place: Place, unit: str = "c") -> str:
        """Weather at a place."""
        return "sunny"

    class Report(BaseModel):
        place: Place
        summary: str

    specs = [ADD, ToolSpec(name="weather", parameters=weather.parameters)]
    schema = protocol_schema(specs, Report.model_json_schema(), max_calls=2)

    # Each part's definitions moved to the root, renamed apart, with their references.
    assert sorted(schema["$defs"]) == ["answer_Place", "tool1_Place"]
    text = json.dumps(schema)
    assert '"#/$defs/tool1_Place"' in text and '"#/$defs/answer_Place"' in text
    grammar = llama_grammar.json_schema_to_gbnf(json.dumps(schema))
    assert '"\\"add\\""' in grammar and '"\\"weather\\""' in grammar
    assert "tool1-Place ::=" in grammar and "answer-Place ::=" in grammar
    reply = {"tool_calls": [{"name": "weather",
                             "arguments": {"place": {"city": "Oslo", "country": "NO"}}}]}
    jsonschema.validate(reply, schema)
    jsonschema.validate({"answer": {"place": {"city": "Oslo", "country": "NO"},
                                    "summary": "sunny"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tool_calls": [{"name": "add", "arguments": {"a": "x"}}]},
                            schema)


# --- real models --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server with native tool calls, serving SmolLM2.

    Its default chat handler (the GGUF file's template) ignores `tools` unless one tool is
    forced; `chatml-function-calling` lets the model choose between a message and calls,
    constraining each call's arguments with a grammar built from the tool's schema.
    """
    pytest.importorskip("llama_cpp.server", reason="needs: pip install 'podium[server]'")
    yield from serve_llama(tmp_path_factory, "--chat_format", "chatml-function-calling")


def _schema_valid(calls: list[dict[str, Any]]) -> None:
    assert calls
    for call in calls:
        assert call["name"] == "add"
        jsonschema.validate(call["arguments"], add.parameters)
        assert call["result"] == call["arguments"]["a"] + call["arguments"]["b"]


@pytest.mark.slow
async def test_local_model_calls_a_tool_then_answers(tmp_path: Path) -> None:
    agent = LLMAgent(LocalModel(), name="a", instructions="You add numbers with the add tool.",
                     tools=[add], output=Sum, temperature=0, max_tokens=96, max_turns=4)

    record = await _run(agent, tmp_path, "Call the add tool with a=2 and b=3.")

    task = record["tasks"][0]
    # The mechanism: a grammar-valid call, parsed, run, and its result sent back.
    _schema_valid(task["tool_calls"])
    assert task["tokens"]["calls"] >= 2
    # What SmolLM2-135M makes of it, deterministic at temperature 0 with a fixed seed.
    assert record["status"] == "completed", task["error"]
    assert task["tool_calls"][0]["arguments"] == {"a": 2, "b": 3}
    assert record["outputs"]["t"] == {"total": 5}


@pytest.mark.slow
async def test_openai_compatible_server_calls_tools_natively(
        tool_server: str, tmp_path: Path) -> None:
    model = OpenAICompatModel("smollm2", base_url=tool_server, api_key_env="NO_KEY")
    agent = LLMAgent(model, name="a", instructions="You add numbers with the add tool.",
                     tools=[add], temperature=0, max_tokens=96, max_turns=3)

    record = await _run(agent, tmp_path, "Call the add tool with a=2 and b=3.")

    task = record["tasks"][0]
    # Native calls with arguments the server's grammar kept to the schema, run, and
    # their results (assistant tool_calls, then role "tool") accepted back every turn.
    _schema_valid(task["tool_calls"])
    assert task["tool_calls"][0]["arguments"] == {"a": 2, "b": 3}
    assert all(c["call_id"].startswith("call_") for c in task["tool_calls"])
    # chatml-function-calling's template (llama-cpp-python 0.3.36) renders no `tool`
    # message, so the model never sees a result and SmolLM2 calls `add` again each turn:
    # the attempt ends with the loop's clear error instead of an answer.
    assert task["tokens"]["calls"] == 3
    if record["status"] != "completed":
        assert "stopped after 3 turns without a final answer" in task["error"]


@pytest.mark.slow
async def test_openai_compatible_server_reply_parses_into_tool_calls(tool_server: str) -> None:
    model = OpenAICompatModel("smollm2", base_url=tool_server, api_key_env="NO_KEY")

    reply = await model.complete(ASK, tools=[ADD], temperature=0, max_tokens=96)

    assert reply.text == ""
    (call,) = reply.tool_calls
    assert call.name == "add"
    jsonschema.validate(json.loads(call.arguments), add.parameters)
    follow_up = await model.complete(
        [*ASK, Message(role="assistant", tool_calls=reply.tool_calls),
         Message(role="tool", tool_call_id=call.id, content="5")],
        tools=[ADD], temperature=0, max_tokens=96)
    assert follow_up.usage.input_tokens > reply.usage.input_tokens
