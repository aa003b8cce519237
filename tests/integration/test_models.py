"""Model providers against real parts on loopback: llama.cpp in-process and as a server,
and a tiny HTTP server for the failures a real provider can produce."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pydantic
import pytest

from podium.errors import ModelError, UserError
from podium.models import LocalModel, Message, OpenAICompatModel, resolve_model


class Weather(pydantic.BaseModel):
    city: str
    temperature_c: int


ASK_WEATHER = [
    Message(role="system", content="You answer with JSON only."),
    Message(role="user", content="What is the weather in Paris today? Give city, temperature_c."),
]
ASK_TEXT = [Message(role="user", content="Say hello in one short sentence.")]
SECRET = "sk-test-0123456789abcdef-never-print-me"

slow = pytest.mark.slow


# --- the in-process llama.cpp model -------------------------------------------------------


@slow
async def test_local_model_reply_validates_against_the_schema() -> None:
    model = LocalModel()

    reply = await model.complete(
        ASK_WEATHER, output_schema=Weather.model_json_schema(), temperature=0.0
    )

    Weather.model_validate_json(reply.text)
    assert reply.usage.input_tokens > 0
    assert reply.usage.output_tokens > 0
    assert reply.model == "SmolLM2-135M-Instruct.Q4_1.gguf"


@slow
async def test_local_model_answers_in_plain_text() -> None:
    reply = await LocalModel().complete(ASK_TEXT, max_tokens=32)

    assert reply.text.strip()
    assert 0 < reply.usage.output_tokens <= 32


def test_local_model_with_a_missing_file_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match=r"'/nonexistent/a\.gguf' does not exist"):
        LocalModel(model_path="/nonexistent/a.gguf")
    monkeypatch.setenv("PODIUM_LOCAL_MODEL_PATH", "/nonexistent/b.gguf")
    with pytest.raises(UserError, match=r"'/nonexistent/b\.gguf' does not exist.*LOCAL_MODEL_PATH"):
        LocalModel()


# --- an OpenAI-compatible server: llama.cpp's ---------------------------------------------


@slow
async def test_openai_compat_reply_validates_against_the_schema(llama_server: str) -> None:
    model = OpenAICompatModel("smollm2", base_url=llama_server)

    reply = await model.complete(
        ASK_WEATHER, output_schema=Weather.model_json_schema(), temperature=0.0
    )

    Weather.model_validate_json(reply.text)
    assert reply.usage.input_tokens > 0
    assert reply.usage.output_tokens > 0
    # llama-cpp-python's server rejects OpenAI's json_schema form; auto mode fell back.
    assert model.schema_mode == "json_object"


@slow
async def test_llama_server_rejects_the_openai_json_schema_form(llama_server: str) -> None:
    model = OpenAICompatModel("smollm2", base_url=llama_server, schema_mode="json_schema")

    with pytest.raises(ModelError, match=r"HTTP 500.*response_format"):
        await model.complete(ASK_WEATHER, output_schema=Weather.model_json_schema())


@slow
async def test_openai_compat_answers_in_plain_text(llama_server: str) -> None:
    model = resolve_model("openai:smollm2", base_url=llama_server)

    reply = await model.complete(ASK_TEXT, max_tokens=32)

    assert reply.text.strip()
    assert reply.usage.input_tokens > 0
    assert 0 < reply.usage.output_tokens <= 32


# --- failures, from a tiny real HTTP server -----------------------------------------------


@dataclass
class TinyServer:
    """An HTTP server on 127.0.0.1 that answers every POST with `status` and `body`."""

    base_url: str = ""
    status: int = 200
    body: bytes = b"{}"
    echo_authorization: bool = False
    hang: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[object] = field(default_factory=list)


@pytest.fixture
def tiny_server() -> Iterator[TinyServer]:
    state = TinyServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.headers.append(dict(self.headers))
            state.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            if state.hang:
                state.release.wait(timeout=30)
            body = state.body
            if state.echo_authorization:
                body += self.headers.get("Authorization", "").encode()
            try:
                self.send_response(state.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (the timeout test); nothing to answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    # A short poll interval keeps shutdown() from waiting out the default half second.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


async def test_a_server_that_is_down_is_a_model_error(free_tcp_port: int) -> None:
    model = OpenAICompatModel("m", base_url=f"http://127.0.0.1:{free_tcp_port}/v1")

    with pytest.raises(ModelError, match=r"could not reach http://127\.0\.0\.1:"):
        await model.complete(ASK_TEXT)


async def test_http_500_is_a_model_error_with_the_status_and_never_the_key(
    tiny_server: TinyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODIUM_TEST_KEY", SECRET)
    tiny_server.status = 500
    tiny_server.body = b'{"error": "boom", "you sent": "'
    tiny_server.echo_authorization = True
    model = OpenAICompatModel("m", base_url=tiny_server.base_url, api_key_env="PODIUM_TEST_KEY")

    with pytest.raises(ModelError) as raised:
        await model.complete(ASK_TEXT)

    assert tiny_server.headers[0]["Authorization"] == f"Bearer {SECRET}"
    message = str(raised.value)
    assert "HTTP 500" in message
    assert "boom" in message
    assert SECRET not in message
    assert "Bearer ***" in message
    assert SECRET not in repr(model)


async def test_the_request_is_an_openai_chat_completion(
    tiny_server: TinyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    tiny_server.body = json.dumps(
        {
            "model": "m-2024",
            "choices": [{"message": {"content": '{"city": "Oslo", "temperature_c": 4}'}}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7},
        }
    ).encode()
    model = OpenAICompatModel("m", base_url=tiny_server.base_url, schema_mode="json_schema")
    schema = Weather.model_json_schema()

    reply = await model.complete(ASK_WEATHER, output_schema=schema, max_tokens=50, temperature=0)

    assert Weather.model_validate_json(reply.text) == Weather(city="Oslo", temperature_c=4)
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.model) == (11, 7, "m-2024")
    assert "Authorization" not in tiny_server.headers[0]
    assert tiny_server.bodies[0] == {
        "model": "m",
        "messages": [{"role": m.role, "content": m.content} for m in ASK_WEATHER],
        "max_tokens": 50,
        "temperature": 0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": schema, "strict": True},
        },
    }


@pytest.mark.parametrize(
    "body", [b"not json at all", b'{"choices": []}', b'{"choices": [{"text": "legacy"}]}']
)
async def test_a_malformed_body_is_a_model_error(tiny_server: TinyServer, body: bytes) -> None:
    tiny_server.body = body
    model = OpenAICompatModel("m", base_url=tiny_server.base_url)

    with pytest.raises(ModelError, match="malformed reply"):
        await model.complete(ASK_TEXT)


async def test_a_json_reply_cut_short_is_a_model_error(tiny_server: TinyServer) -> None:
    tiny_server.body = json.dumps(
        {"choices": [{"message": {"content": '{"city": "Os'}, "finish_reason": "length"}]}
    ).encode()
    model = OpenAICompatModel("m", base_url=tiny_server.base_url)

    with pytest.raises(ModelError, match="cut off at max_tokens=5"):
        await model.complete(ASK_WEATHER, output_schema={"type": "object"}, max_tokens=5)


async def test_a_slow_server_times_out_as_a_model_error(tiny_server: TinyServer) -> None:
    tiny_server.hang = True
    model = OpenAICompatModel("m", base_url=tiny_server.base_url, timeout=0.2)

    with pytest.raises(ModelError, match=r"no answer from .* within 0.2s"):
        await model.complete(ASK_TEXT)


# --- resolve_model ------------------------------------------------------------------------


def test_resolve_model_builds_openai_models_from_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")

    model = resolve_model("openai:gpt-4o-mini", api_key_env="MY_KEY", options={"timeout": 5})

    assert isinstance(model, OpenAICompatModel)
    assert (model.name, model.url, model.api_key_env, model.timeout) == (
        "openai:gpt-4o-mini",
        "http://127.0.0.1:9/v1/chat/completions",
        "MY_KEY",
        5,
    )


def test_resolve_model_shares_one_local_model_per_process() -> None:
    first = resolve_model("local")

    assert isinstance(first, LocalModel)
    assert resolve_model("local") is first
    assert resolve_model("local", options={"n_ctx": 1024}) is not first


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        ("gpt-4o", {}, r"unknown model 'gpt-4o': use 'local' or 'openai:NAME'"),
        ("openai:", {}, r"names no model"),
        ("local", {"options": {"temperature": 1}}, r"does not take option\(s\) 'temperature'"),
        ("openai:m", {"options": {"n_ctx": 1}},
         r"accepts 'max_reply_bytes', 'schema_mode', 'timeout'"),
        ("local", {"base_url": "http://x"}, r"apply only to 'openai:NAME'"),
        ("openai:m", {"options": {"schema_mode": "xml"}}, r"unknown schema_mode 'xml'"),
    ],
)
def test_resolve_model_rejects_what_it_does_not_know(
    spec: str, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        resolve_model(spec, **kwargs)  # type: ignore[arg-type]
