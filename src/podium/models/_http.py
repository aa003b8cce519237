"""Reading an HTTP reply within a byte limit: whole bodies, error bodies, and the lines
of a server-sent-event stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import httpx

from podium.models.base import Usage

_ERROR_BODY_BYTES = 64 * 1024
"""An error's body is read this far: enough to quote it and to see what it is about."""


@dataclass(frozen=True)
class Body:
    """A response read within its limit."""

    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


async def read_error(response: httpx.Response) -> Body:
    """An error response's status and the start of its body (enough to quote)."""
    content = bytearray()
    async for chunk in response.aiter_bytes():
        content += chunk
        if len(content) >= _ERROR_BODY_BYTES:
            break
    return Body(response.status_code, bytes(content[:_ERROR_BODY_BYTES]))


async def lines(response: httpx.Response, limit: int) -> AsyncGenerator[str | None, None]:
    """The body's lines as they arrive; None once more than `limit` bytes came. httpx's
    own `aiter_lines` would hold a line of any length whole before handing it over."""
    buffer = bytearray()
    read = 0
    async for chunk in response.aiter_bytes():
        read += len(chunk)
        if read > limit:
            yield None
            return
        buffer += chunk
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            yield buffer[start:end].decode("utf-8", "replace").rstrip("\r")
            start = end + 1
        del buffer[:start]
    if buffer:
        yield buffer.decode("utf-8", "replace").rstrip("\r")


def stream_usage(usage: dict[str, Any]) -> Usage:
    return Usage(input_tokens=int(usage.get("prompt_tokens") or 0),
                 output_tokens=int(usage.get("completion_tokens") or 0))
