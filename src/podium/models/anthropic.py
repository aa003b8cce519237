"""Claude models through Anthropic's Messages API, with the official `anthropic` SDK.

Install the SDK with the `anthropic` extra (`pip install 'podium[anthropic]'`); it is
imported at the first call, so importing Podium never needs it.

System messages are sent apart, as the API's `system` field; the other messages go in
order. An output schema becomes a tool named `output` whose `input_schema` is the
schema, and `tool_choice` forces the model to call it; the tool call's input is the
reply, returned as JSON text. The API wants a tool's schema to describe an object, so
any other schema (an array, a string, ...) is wrapped as the object's `value` property
and unwrapped from the reply.

Tools are native tool use: each becomes `{"name", "description", "input_schema"}` in
`tools`; the reply's `tool_use` blocks become `ToolCall`s (their `input` as JSON text); an
assistant message that called tools is sent back as `text` and `tool_use` blocks, and the
results of one turn go together in the next user turn as `tool_result` blocks (with
`is_error` for an error). With an output schema as well, the `output` tool joins the
offered tools and `tool_choice: {"type": "any"}` makes the model call one of them: the
`output` tool to answer, another to act.

Sampling temperature: SDK 2.x speaks API version 2026-10-21, which answers HTTP 400 to
any `temperature` (or `top_p`, `top_k`), even the default; the SDK no longer has the
parameter. With such an SDK a call that sets a temperature raises `UserError` rather than
silently dropping it; with SDK 0.x or 1.x (API version 2023-06-01) it is sent.

The SDK's own retries are off (`max_retries=0`): Podium's retry policy owns retries.
Failures map to `ModelError`::

    anthropic.APITimeoutError     -> ModelError  "no answer from URL within Ns"
    anthropic.APIConnectionError  -> ModelError  "could not reach URL: ..."
    anthropic.APIStatusError      -> ModelError  "URL answered HTTP 429: <excerpt>; ..."
    (RateLimitError, InternalServerError, AuthenticationError, ... are its subclasses)
    any other anthropic error, a  -> ModelError  "URL sent a malformed reply: ..."
    malformed reply, a refusal,      or "... refused: ...", "... cut off at max_tokens"
    a reply cut short

The API key is read from an environment variable at each call, sent in the `x-api-key`
header (newer SDKs also send it as a Bearer token), and scrubbed from every error
message; it is never stored on the object.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from podium.errors import ModelError, UserError
from podium.models.base import Message, Model, ModelResponse, ToolCall, ToolSpec, Usage

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_API_KEY_ENV = "ANTHROPIC_API_KEY"
DEFAULT_MAX_TOKENS = 1024

_TOOL = "output"
_WRAPPED = "value"
_EXCERPT_CHARS = 300
_INSTALL_HINT = "install it with: pip install 'podium[anthropic]'"


class AnthropicModel(Model):
    """A Claude model behind Anthropic's Messages API, `POST {base_url}/v1/messages`.

    Example:
        ```python
        model = AnthropicModel("claude-3-5-haiku-latest")
        reply = await model.complete([Message(role="user", content="Hello")])
        ```
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        timeout: float = 60.0,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        """Describe how to reach the model; nothing is contacted until `complete`.

        Args:
            model: Anthropic's name for the model, e.g. `claude-sonnet-4-20250514`.
            base_url: the API root, before `/v1/messages`; defaults to the
                `ANTHROPIC_BASE_URL` environment variable, else `https://api.anthropic.com`.
            api_key_env: the environment variable holding the API key.
            timeout: seconds to wait for connecting and for each read.
            default_max_tokens: the bound on a reply's length when a call gives none;
                the API requires one.

        Raises:
            UserError: `model` is empty, a number is out of range, or the `anthropic`
                package is not installed.
        """
        if not model:
            raise UserError(
                "AnthropicModel needs a model name, e.g. 'anthropic:claude-3-5-haiku-latest'"
            )
        if timeout <= 0 or default_max_tokens < 1:
            raise UserError(
                f"AnthropicModel {model!r}: timeout must be > 0 and default_max_tokens >= 1, "
                f"got {timeout!r} and {default_max_tokens!r}"
            )
        if importlib.util.find_spec("anthropic") is None:
            raise UserError(f"model 'anthropic:{model}' needs the 'anthropic' SDK; {_INSTALL_HINT}")
        self.name = f"anthropic:{model}"
        self.model = model
        self.base_url = (
            base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL
        ).rstrip("/")
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.default_max_tokens = default_max_tokens

    def __repr__(self) -> str:
        return (
            f"AnthropicModel(model={self.model!r}, base_url={self.base_url!r}, "
            f"api_key_env={self.api_key_env!r})"
        )

    @property
    def url(self) -> str:
        """The Messages endpoint."""
        return f"{self.base_url}/v1/messages"

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
        """Answer `messages`; see `Model.complete`. Replies are not streamed yet:
        `on_token` is ignored.

        Raises:
            UserError: a tool is named `output`, the name the output schema's tool takes.
            ModelError: the API key is not set, or the API could not be reached, timed
                out, answered with an HTTP error or a malformed reply, refused, or cut
                the reply short.
        """
        if output_schema is not None and any(t.name == _TOOL for t in tools or ()):
            raise UserError(
                f"{self.name}: a tool named {_TOOL!r} clashes with the tool that carries "
                f"the output schema; rename the tool"
            )
        key = os.environ.get(self.api_key_env) or None
        if key is None:
            raise ModelError(
                f"{self.name}: no API key: set the environment variable ${self.api_key_env} "
                f"(or name another one with api_key_env)"
            )
        wrapped = output_schema is not None and output_schema.get("type") != "object"
        request = self._request(
            messages, output_schema=output_schema, wrapped=wrapped, max_tokens=max_tokens,
            tools=tools or (),
        )
        reply = await self._send(request, key, temperature)
        try:
            return self._parse(reply, key, structured=output_schema is not None, wrapped=wrapped,
                               max_tokens=request["max_tokens"])
        except (AttributeError, TypeError, KeyError) as exc:
            # Without strict validation the SDK builds its reply objects from whatever JSON
            # came back; a body that is not a message shows up as missing attributes.
            raise ModelError(
                f"{self.name}: {self.url} sent a malformed reply (not a message: {exc}): "
                f"{_excerpt(repr(reply), key)}"
            ) from None

    def _request(
        self,
        messages: Sequence[Message],
        *,
        output_schema: dict[str, Any] | None,
        wrapped: bool,
        max_tokens: int | None,
        tools: Sequence[ToolSpec],
    ) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        request: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens if max_tokens is not None else self.default_max_tokens,
            "messages": _messages(messages),
        }
        if system:
            request["system"] = system
        offered = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                   for t in tools]
        if output_schema is not None:
            offered.append({
                "name": _TOOL,
                "description": "Give the reply: call this with the reply as its input.",
                "input_schema": _wrap(output_schema) if wrapped else output_schema,
            })
            request["tool_choice"] = (
                {"type": "any"} if tools else {"type": "tool", "name": _TOOL})
        if offered:
            request["tools"] = offered
        return request

    async def _send(self, request: dict[str, Any], key: str, temperature: float | None) -> Any:
        try:
            import anthropic
        except ImportError as exc:
            raise UserError(f"model {self.name!r} needs the 'anthropic' SDK ({exc}); "
                            f"{_INSTALL_HINT}") from exc
        if temperature is not None:
            if not _sdk_takes_temperature():
                raise UserError(
                    f"{self.name}: Anthropic's API version {_api_version(anthropic)!r}, the one "
                    f"the installed 'anthropic' SDK {anthropic.__version__} speaks, takes no "
                    f"sampling temperature (it answers HTTP 400 to any): leave temperature "
                    f"unset for agents on this model"
                )
            request = {**request, "temperature": temperature}
        # An explicit api_key and base_url keep the SDK from looking for credentials or
        # an endpoint anywhere else (other variables, profiles on disk). Anthropic's API
        # documents the key in `x-api-key`, and Anthropic-compatible servers check that
        # header; older SDKs send it there, newer ones as a Bearer token instead, so it
        # is set explicitly (spelled as the SDK spells it, so it replaces, not doubles).
        client = anthropic.AsyncAnthropic(
            api_key=key, base_url=self.base_url, timeout=self.timeout, max_retries=0,
            default_headers={"X-Api-Key": key},
        )
        try:
            async with client:
                return await client.messages.create(**request)
        except anthropic.APITimeoutError as exc:
            raise ModelError(
                f"{self.name}: no answer from {self.url} within {self.timeout:g}s"
            ) from exc
        except anthropic.APIConnectionError as exc:
            detail = _redact(str(exc.__cause__ or exc) or type(exc).__name__, key)
            raise ModelError(
                f"{self.name}: could not reach {self.url}: {detail}; is the server running "
                f"and is base_url right?"
            ) from exc
        # The SDK's own errors quote the response body, which may echo the key: they are
        # not chained, so a traceback cannot show what the excerpt scrubbed.
        except anthropic.APIStatusError as exc:
            raise ModelError(self._status_message(exc, key)) from None
        except (anthropic.AnthropicError, ValueError) as exc:
            # ValueError: a body that is not JSON at all reaches us as the SDK's
            # json.JSONDecodeError, unwrapped.
            raise ModelError(
                f"{self.name}: {self.url} sent a malformed reply: {type(exc).__name__}: "
                f"{_excerpt(str(exc), key)}"
            ) from None

    def _status_message(self, exc: Any, key: str) -> str:
        status: int = exc.status_code
        hint = {
            401: f"; check the API key in ${self.api_key_env}",
            403: f"; check the API key in ${self.api_key_env}",
            404: "; check the model name and base_url",
            429: "; rate limited: retry later, or lower the run's concurrency",
            529: "; the API is overloaded: retry later",
        }.get(status, "")
        retry_after = exc.response.headers.get("retry-after")
        if retry_after and status in (429, 529):
            hint += f" (the server asks to wait {retry_after}s)"
        return (
            f"{self.name}: {self.url} answered HTTP {status}: "
            f"{_excerpt(exc.response.text, key)}{hint}"
        )

    def _parse(
        self, reply: Any, key: str, *, structured: bool, wrapped: bool, max_tokens: int
    ) -> ModelResponse:
        stop_reason = reply.stop_reason
        if stop_reason == "refusal":
            raise ModelError(f"{self.name} refused: {_excerpt(_text(reply.content), key)}")
        if structured and stop_reason == "max_tokens":
            raise ModelError(
                f"{self.name}: the reply was cut off at max_tokens={max_tokens} before its "
                f"JSON was complete; raise max_tokens"
            )
        uses = [b for b in reply.content if b.type == "tool_use"]
        tool_calls = tuple(
            ToolCall(id=b.id, name=b.name, arguments=json.dumps(b.input, ensure_ascii=False))
            for b in uses if not (structured and b.name == _TOOL)
        )
        if tool_calls:
            text = _text(reply.content)
        elif structured:
            calls = [b for b in uses if b.name == _TOOL]
            if not calls or not isinstance(calls[0].input, dict):
                raise ModelError(
                    f"{self.name}: the reply does not call the {_TOOL!r} tool that "
                    f"tool_choice forced: {_excerpt(repr(reply.content), key)}"
                )
            data: Any = calls[0].input
            if wrapped:
                if _WRAPPED not in data:
                    raise ModelError(
                        f"{self.name}: the {_TOOL!r} tool call has no {_WRAPPED!r}: "
                        f"{_excerpt(json.dumps(data), key)}"
                    )
                data = data[_WRAPPED]
            text = json.dumps(data, ensure_ascii=False)
        else:
            text = _text(reply.content)
            if not text and stop_reason != "max_tokens":
                raise ModelError(f"{self.name}: the reply has no text content: "
                                 f"{_excerpt(repr(reply.content), key)}")
        usage = reply.usage
        return ModelResponse(
            text=text,
            usage=Usage(
                # Tokens written to or read from the prompt cache are billed input tokens
                # that the API counts apart from `input_tokens`.
                input_tokens=int(usage.input_tokens or 0)
                + int(getattr(usage, "cache_creation_input_tokens", None) or 0)
                + int(getattr(usage, "cache_read_input_tokens", None) or 0),
                output_tokens=int(usage.output_tokens or 0),
            ),
            model=reply.model or self.model,
            tool_calls=tool_calls,
        )


@functools.cache
def _sdk_takes_temperature() -> bool:
    # SDK 2.x speaks API version 2026-10-21, which rejects sampling parameters at any
    # value, and its `messages.create` no longer has them; SDK 0.x and 1.x have them.
    from anthropic.resources.messages import AsyncMessages

    return "temperature" in inspect.signature(AsyncMessages.create).parameters


def _api_version(sdk: Any) -> str:
    return str(getattr(getattr(sdk, "_constants", None), "ANTHROPIC_API_VERSION", "?"))


def _wrap(schema: dict[str, Any]) -> dict[str, Any]:
    inner = dict(schema)
    # `$ref`s point at the root's definitions, so the definitions move to the new root.
    defs: dict[str, Any] = {
        name: inner.pop(name) for name in ("$defs", "definitions") if name in inner
    }
    return {"type": "object", "properties": {_WRAPPED: inner}, "required": [_WRAPPED], **defs}


def _messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The conversation in the Messages API's form, system messages left out."""
    sent: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id or "",
                                      "content": m.content}
            if m.is_error:
                result["is_error"] = True
            last = sent[-1] if sent else None
            # The results of one turn's calls share the user turn that follows it.
            if (last is not None and last["role"] == "user" and isinstance(last["content"], list)
                    and all(b.get("type") == "tool_result" for b in last["content"])):
                last["content"].append(result)
            else:
                sent.append({"role": "user", "content": [result]})
        elif m.role == "assistant" and m.tool_calls:
            blocks: list[dict[str, Any]] = (
                [{"type": "text", "text": m.content}] if m.content else [])
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": _input(c)}
                       for c in m.tool_calls]
            sent.append({"role": "assistant", "content": blocks})
        else:
            sent.append({"role": m.role, "content": m.content})
    return sent


def _input(call: ToolCall) -> Any:
    # The API takes the input as an object: arguments the model wrote as something else
    # (they were answered with an error) are sent back as they came, under `arguments`.
    try:
        data = json.loads(call.arguments or "{}")
    except json.JSONDecodeError:
        return {"arguments": call.arguments}
    return data if isinstance(data, dict) else {"arguments": data}


def _text(content: Any) -> str:
    return "".join(block.text for block in content if block.type == "text")


def _redact(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text


def _excerpt(text: str, key: str | None) -> str:
    flat = " ".join(_redact(text, key).split())
    if len(flat) > _EXCERPT_CHARS:
        flat = flat[:_EXCERPT_CHARS] + "…"
    return flat or "(empty body)"
