"""Chat models behind any OpenAI-compatible HTTP server: OpenAI, vLLM, Ollama, llama.cpp.

Failures map to `ModelError`::

    httpx.TimeoutException      -> ModelError  "no answer from URL within Ns"
    httpx.TransportError        -> ModelError  "could not reach URL: ..."
    HTTP status >= 400          -> ModelError  "URL answered HTTP 500: <excerpt of the body>"
    a body that is not a chat   -> ModelError  "URL sent a malformed reply: ..."
    completion, or a refusal
    a reply past its byte limit -> ReplyTooLarge "the reply ... passed its limit of ..."

Replies are read within a byte limit (`podium.models.limits`): a body or stream that
passes it is cut off as it arrives and refused, never buffered whole. Streamed calls ask
for usage (`stream_options.include_usage`); servers that send none (llama.cpp's) leave it
0, and the agent counts the tokens itself. A failure after the server produced text (cut
off at `max_tokens`, an error mid-stream, a reply too large) carries what came as the
error's `partial`, so that its tokens still count.

The API key is read from an environment variable at each call, sent as a Bearer
token, and scrubbed from every error message; it is never stored on the object.

Tools are sent natively: `tools: [{"type": "function", "function": {name, description,
parameters}}]` with `tool_choice: "auto"`; the reply's `message.tool_calls` become
`ToolCall`s; an assistant message that called tools is sent back with its `tool_calls`,
and each result as `{"role": "tool", "tool_call_id": ..., "content": ...}` (an error's
content starting `Error: `).
llama-cpp-python's server does native tool calls only when started with
`--chat_format chatml-function-calling`, and only when `tool_choice` is given.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any, Literal, TypeAlias

import httpx
import pydantic

from podium.errors import ModelError, UserError
from podium.models._http import Body as _Body
from podium.models._http import lines as _lines
from podium.models._http import read_error as _read_error
from podium.models._http import stream_usage as _stream_usage
from podium.models.base import Message, Model, ModelResponse, ToolCall, ToolSpec, Usage
from podium.models.limits import ReplyTooLarge, body_limit, limit_source, reply_limit, size

SchemaMode: TypeAlias = Literal["auto", "json_schema", "json_object"]
"""How an output schema is sent; see `OpenAICompatModel`."""

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_EXCERPT_CHARS = 300
class _Usage(pydantic.BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _Function(pydantic.BaseModel):
    name: str
    # OpenAI sends JSON text; some servers (Ollama) send the object itself.
    arguments: str | dict[str, Any] | None = None


class _ToolCall(pydantic.BaseModel):
    id: str | None = None
    function: _Function


class _ReplyMessage(pydantic.BaseModel):
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(pydantic.BaseModel):
    message: _ReplyMessage
    finish_reason: str | None = None


class _Completion(pydantic.BaseModel):
    choices: list[_Choice] = pydantic.Field(min_length=1)
    usage: _Usage | None = None
    model: str | None = None


class OpenAICompatModel(Model):
    """A chat model behind the OpenAI chat-completions API, `POST {base_url}/chat/completions`.

    Output schemas. OpenAI, vLLM, Ollama and llama.cpp's own `llama-server` accept the
    structured-output form
    `{"type": "json_schema", "json_schema": {"name": "output", "schema": ..., "strict": true}}`.
    llama-cpp-python's server (`python -m llama_cpp.server`, checked with 0.3.36) does
    not: its request model only allows `{"type": "text" | "json_object", "schema": ...}`
    and answers anything else with an HTTP 500 whose body is the validation error
    (`'loc': ('body', 'response_format', 'type')`); it does enforce the `schema` of the
    `json_object` form, with a grammar. Hence `schema_mode`:

    - `"json_schema"`: always send the OpenAI form.
    - `"json_object"`: always send `{"type": "json_object", "schema": ...}`.
    - `"auto"` (default): send the OpenAI form; if the server answers with an HTTP error
      whose body mentions `response_format`, resend the same request once in the
      `json_object` form and, if that succeeds, keep using it for this model object.
      One extra round trip on the first structured call to such a server, none after.

    OpenAI's strict mode wants every property required and `additionalProperties: false`;
    the schema is sent as given, so a schema that does not meet that gets an HTTP 400
    from OpenAI, reported as a `ModelError`.

    The length bound is sent as `max_tokens`, which every server above accepts.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        schema_mode: SchemaMode = "auto",
        client: httpx.AsyncClient | None = None,
        max_reply_bytes: int | None = None,
    ) -> None:
        """Describe how to reach the model; nothing is contacted until `complete`.

        Args:
            model: the server's name for the model, e.g. `gpt-4o-mini` or `llama3.2`.
            base_url: the API root, ending before `/chat/completions`; defaults to the
                `OPENAI_BASE_URL` environment variable, else `https://api.openai.com/v1`.
            api_key_env: the environment variable holding the API key. When it is unset
                or empty no `Authorization` header is sent, as local servers expect.
            timeout: seconds to wait for connecting and for each read.
            schema_mode: how an output schema is sent; see the class docstring.
            client: an `httpx.AsyncClient` to send requests with, owned (and closed) by
                the caller, e.g. to share a connection pool. By default each call opens
                and closes its own client, so the model holds no resources.
            max_reply_bytes: the bound on a reply's text in UTF-8 bytes; by default one
                derived from each call's `max_tokens` (see `podium.models.limits`).

        Raises:
            UserError: `model` is empty, `schema_mode` is not one of the three modes, or
                `max_reply_bytes` is not positive.
        """
        if not model:
            raise UserError("OpenAICompatModel needs a model name, e.g. 'openai:gpt-4o-mini'")
        if schema_mode not in ("auto", "json_schema", "json_object"):
            raise UserError(
                f"unknown schema_mode {schema_mode!r}: use 'auto', 'json_schema' or 'json_object'"
            )
        if max_reply_bytes is not None and max_reply_bytes < 1:
            raise UserError(f"model 'openai:{model}': max_reply_bytes must be >= 1, "
                            f"got {max_reply_bytes!r}")
        self.name = f"openai:{model}"
        self.model = model
        self.max_reply_bytes = max_reply_bytes
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.schema_mode: SchemaMode = schema_mode
        self._client = client

    def __repr__(self) -> str:
        return (
            f"OpenAICompatModel(model={self.model!r}, base_url={self.base_url!r}, "
            f"api_key_env={self.api_key_env!r}, schema_mode={self.schema_mode!r})"
        )

    @property
    def url(self) -> str:
        """The chat-completions endpoint."""
        return f"{self.base_url}/chat/completions"

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        output_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        tools: Sequence[ToolSpec] | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> ModelResponse:
        """Answer `messages`; see `Model.complete`. With `on_token` and no tools the
        reply is streamed (server-sent events); with tools it is not.

        Raises:
            ModelError: the server could not be reached, timed out, answered with an
                HTTP error or a malformed body, refused, or cut a JSON reply short.
        """
        key = os.environ.get(self.api_key_env) or None
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [_message(m) for m in messages],
        }
        if tools:
            body["tools"] = [
                {"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}}
                for t in tools
            ]
            # OpenAI's default once tools are given; llama-cpp-python's server ignores
            # the tools unless it is said.
            body["tool_choice"] = "auto"
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        mode = self.schema_mode
        if output_schema is not None:
            body["response_format"] = _response_format(
                output_schema, "json_object" if mode == "json_object" else "json_schema"
            )
        if on_token is not None and not tools:
            return await self._complete_streamed(body, key, on_token, output_schema=output_schema,
                                                 max_tokens=max_tokens)
        response = await self._post(body, key, max_tokens)
        if (
            output_schema is not None
            and mode == "auto"
            and response.status_code >= 400
            and "response_format" in response.text
        ):
            body["response_format"] = _response_format(output_schema, "json_object")
            response = await self._post(body, key, max_tokens)
            if response.status_code < 400:
                self.schema_mode = "json_object"
        return self._parse(response, key, output_schema=output_schema, max_tokens=max_tokens)

    @contextlib.asynccontextmanager
    async def _open(self, body: dict[str, Any], key: str | None
                    ) -> AsyncIterator[httpx.Response]:
        """The response, its body not read yet: callers read it within their limit."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            async with contextlib.AsyncExitStack() as stack:
                client = self._client
                if client is None:
                    client = await stack.enter_async_context(
                        httpx.AsyncClient(timeout=self.timeout))
                yield await stack.enter_async_context(client.stream(
                    "POST", self.url, json=body, headers=headers, timeout=self.timeout))
        except httpx.TransportError as exc:
            raise self._transport_error(exc, key) from exc

    async def _post(self, body: dict[str, Any], key: str | None,
                    max_tokens: int | None) -> _Body:
        """The whole body, read within the limit (an error's, within `_ERROR_BODY_BYTES`)."""
        limit = body_limit(reply_limit(max_tokens, self.max_reply_bytes), stream=False)
        async with self._open(body, key) as response:
            if response.status_code >= 400:
                return await _read_error(response)
            content = bytearray()
            async for chunk in response.aiter_bytes():
                content += chunk
                if len(content) > limit:
                    raise self._too_large(len(content), limit, max_tokens, wire=True,
                                          partial=ModelResponse(text=content.decode(
                                              "utf-8", "replace")))
            return _Body(response.status_code, bytes(content))

    def _too_large(self, read: int | None, limit: int, max_tokens: int | None, *,
                   wire: bool, partial: ModelResponse) -> ReplyTooLarge:
        what = "reply body" if wire else "reply's text"
        at = f" at {size(read)}" if read is not None else ""
        return ReplyTooLarge(
            f"{self.name}: the {what} from {self.url} passed its limit of {size(limit)} "
            f"(from {limit_source(max_tokens, self.max_reply_bytes)}){at}; it "
            f"was cut off and refused. If replies this long are expected, raise "
            f"max_reply_bytes (an agent's `max_reply_bytes:`, or the model's "
            f"`options: {{max_reply_bytes: N}}`)", partial=partial)

    def _transport_error(self, exc: httpx.TransportError, key: str | None) -> ModelError:
        if isinstance(exc, httpx.TimeoutException):
            return ModelError(f"{self.name}: no answer from {self.url} within {self.timeout:g}s")
        detail = _redact(str(exc) or type(exc).__name__, key)
        return ModelError(
            f"{self.name}: could not reach {self.url}: {detail}; is the server running "
            f"and is base_url right?"
        )

    async def _complete_streamed(
        self, body: dict[str, Any], key: str | None, on_token: Callable[[str], None], *,
        output_schema: dict[str, Any] | None, max_tokens: int | None,
    ) -> ModelResponse:
        """`complete` with `"stream": true`: server-sent events, each piece of text handed
        to `on_token` as it arrives. The `response_format` fallback of `schema_mode="auto"`
        applies as for a non-streamed call."""
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        result = await self._stream(body, key, on_token, output_schema=output_schema,
                                    max_tokens=max_tokens)
        if (
            isinstance(result, _Body)
            and output_schema is not None
            and self.schema_mode == "auto"
            and "response_format" in result.text
        ):
            body["response_format"] = _response_format(output_schema, "json_object")
            result = await self._stream(body, key, on_token, output_schema=output_schema,
                                        max_tokens=max_tokens)
            if isinstance(result, ModelResponse):
                self.schema_mode = "json_object"
        if isinstance(result, ModelResponse):
            return result
        # An HTTP error: reported as for a call that was not streamed.
        return self._parse(result, key, output_schema=output_schema, max_tokens=max_tokens)

    async def _stream(
        self, body: dict[str, Any], key: str | None, on_token: Callable[[str], None], *,
        output_schema: dict[str, Any] | None, max_tokens: int | None,
    ) -> ModelResponse | _Body:
        """The streamed reply, or the HTTP error response (its body read) that came
        instead."""
        async with self._open(body, key) as response:
            if response.status_code >= 400:
                return await _read_error(response)
            return await self._read_events(response, key, on_token,
                                           output_schema=output_schema, max_tokens=max_tokens)

    async def _read_events(
        self, response: httpx.Response, key: str | None, on_token: Callable[[str], None], *,
        output_schema: dict[str, Any] | None, max_tokens: int | None,
    ) -> ModelResponse:
        """Lines `data: {chunk}` until `data: [DONE]`; each chunk's
        `choices[0].delta.content` is a piece of the text, and the last chunk may carry
        the usage (when the server honours `stream_options.include_usage`). The stream
        is cut off once its text, or the bytes read, pass their limits."""
        pieces: list[str] = []
        usage: dict[str, Any] = {}
        model = ""
        finish: str | None = None
        chunks = 0
        text_limit = reply_limit(max_tokens, self.max_reply_bytes)
        text_bytes = 0

        def partial() -> ModelResponse:
            return ModelResponse(text="".join(pieces), model=model or self.model,
                                 usage=_stream_usage(usage))

        events = self._chunks(response, key, body_limit(text_limit, stream=True), max_tokens,
                              partial)
        async with contextlib.aclosing(events):
            async for chunk in events:
                chunks += 1
                model = str(chunk.get("model") or model)
                if isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                choices = chunk.get("choices") or []
                delta = (choices[0].get("delta") or {}) if choices else {}
                if delta.get("refusal"):
                    raise ModelError(f"{self.name} refused: {_excerpt(delta['refusal'], key)}")
                piece = delta.get("content")
                if isinstance(piece, str) and piece:
                    text_bytes += len(piece.encode("utf-8", "replace"))
                    pieces.append(piece)
                    if text_bytes > text_limit:
                        raise self._too_large(text_bytes, text_limit, max_tokens, wire=False,
                                              partial=partial())
                    on_token(piece)
                if choices and choices[0].get("finish_reason"):
                    finish = choices[0]["finish_reason"]
        if not chunks:
            raise ModelError(f"{self.name}: {self.url} sent a stream with no chat chunks")
        if output_schema is not None and finish == "length":
            raise ModelError(
                f"{self.name}: the reply was cut off at max_tokens={max_tokens} before its "
                f"JSON was complete; raise max_tokens", partial=partial()
            )
        return partial()

    async def _chunks(self, response: httpx.Response, key: str | None, limit: int,
                      max_tokens: int | None, partial: Callable[[], ModelResponse]
                      ) -> AsyncGenerator[dict[str, Any], None]:
        """The stream's chat chunks (`data: {...}` lines), until `data: [DONE]`."""
        async with contextlib.aclosing(_lines(response, limit)) as read:
            async for line in read:
                if line is None:
                    raise self._too_large(None, limit, max_tokens, wire=True,
                                          partial=partial())
                if not line.startswith("data:"):
                    continue  # blank separators, comments (`: ping`), `event:` lines
                payload = line[len("data:"):].strip()
                if payload == "[DONE]":
                    return
                try:
                    chunk = json.loads(payload)
                except json.JSONDecodeError:
                    raise ModelError(f"{self.name}: {self.url} sent a malformed stream event: "
                                     f"{_excerpt(payload, key)}", partial=partial()) from None
                if not isinstance(chunk, dict):
                    continue
                if chunk.get("error"):
                    raise ModelError(f"{self.name}: {self.url} reported an error mid-stream: "
                                     f"{_excerpt(json.dumps(chunk['error']), key)}",
                                     partial=partial())
                yield chunk

    def _parse(
        self,
        response: _Body,
        key: str | None,
        *,
        output_schema: dict[str, Any] | None,
        max_tokens: int | None,
    ) -> ModelResponse:
        excerpt = _excerpt(response.text, key)
        if response.status_code >= 400:
            hint = {
                401: f"; check the API key in ${self.api_key_env}",
                403: f"; check the API key in ${self.api_key_env}",
                404: "; check the model name and base_url",
            }.get(response.status_code, "")
            raise ModelError(
                f"{self.name}: {self.url} answered HTTP {response.status_code}: {excerpt}{hint}"
            )
        try:
            completion = _Completion.model_validate_json(response.content)
        except pydantic.ValidationError as exc:
            raise ModelError(
                f"{self.name}: {self.url} sent a malformed reply (HTTP {response.status_code}, "
                f"not a chat completion: {exc.error_count()} problems): {excerpt}"
            ) from None
        choice = completion.choices[0]
        if choice.message.refusal:
            raise ModelError(f"{self.name} refused: {_excerpt(choice.message.refusal, key)}")
        calls = tuple(
            # Ids tie results to calls across the conversation: one the server left out
            # is made up, unique.
            ToolCall(id=call.id or f"call_{uuid.uuid4().hex[:16]}", name=call.function.name,
                     arguments=_arguments(call.function.arguments))
            for call in choice.message.tool_calls or ()
        )
        if choice.message.content is None and not calls:
            raise ModelError(f"{self.name}: the reply has no text content: {excerpt}")
        usage = completion.usage or _Usage()
        reply = ModelResponse(
            text=choice.message.content or "",
            tool_calls=calls,
            usage=Usage(
                input_tokens=usage.prompt_tokens or 0,
                output_tokens=usage.completion_tokens or 0,
            ),
            model=completion.model or self.model,
        )
        text_limit = reply_limit(max_tokens, self.max_reply_bytes)
        text_bytes = len(reply.text.encode("utf-8", "replace")) + sum(
            len(c.name.encode("utf-8", "replace")) + len(c.arguments.encode("utf-8", "replace"))
            for c in calls)
        if text_bytes > text_limit:
            raise self._too_large(text_bytes, text_limit, max_tokens, wire=False, partial=reply)
        if output_schema is not None and not calls and choice.finish_reason == "length":
            raise ModelError(
                f"{self.name}: the reply was cut off at max_tokens={max_tokens} before its "
                f"JSON was complete; raise max_tokens", partial=reply
            )
        return reply


def _message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        # The format has no error flag: the content says it.
        content = f"Error: {message.content}" if message.is_error else message.content
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": content}
    sent: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        # `content` stays a string, even empty: llama-cpp-python's server refuses null
        # and its chat templates fail on a missing one.
        sent["tool_calls"] = [
            {"id": call.id, "type": "function",
             "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    return sent


def _arguments(arguments: str | dict[str, Any] | None) -> str:
    if arguments is None:
        return "{}"
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False)


def _response_format(
    schema: dict[str, Any], mode: Literal["json_schema", "json_object"]
) -> dict[str, Any]:
    if mode == "json_object":
        return {"type": "json_object", "schema": schema}
    return {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }


def _redact(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text


def _excerpt(text: str, key: str | None) -> str:
    flat = " ".join(_redact(text, key).split())
    if len(flat) > _EXCERPT_CHARS:
        flat = flat[:_EXCERPT_CHARS] + "…"
    return flat or "(empty body)"
