"""Fixtures every test shares: a fresh journal, and the guard that keeps tests off real
remote models.

The guard (in the manner of pydantic-ai's `ALLOW_MODEL_REQUESTS = False`) wraps the
transports of httpx and of httpx2 (the fork the Anthropic SDK sends through), which the
OpenAI-compatible and Anthropic providers and every other HTTP client of Podium's use: a
request to any host but loopback is refused before a connection is made, and the test
fails at teardown even if the refusal was caught and swallowed (a workflow whose agent
failed, say). Tests talk to servers on 127.0.0.1 (the llama.cpp server, stand-ins) or to
`podium.testing.ScriptedModel`. Subprocesses (`podium` run by e2e tests) are not guarded.
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from podium import SQLiteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """A journal of its own for each test: a SQLite file in the test's temporary folder."""
    store = SQLiteStore(tmp_path / "podium.db")
    try:
        yield store
    finally:
        await store.close()


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine: `localhost`, 127.0.0.0/8 or ::1."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _http_libraries() -> list[ModuleType]:
    """httpx, and httpx2 (the fork the Anthropic SDK and the MCP client send through) when
    it is installed."""
    found = [httpx]
    with contextlib.suppress(ImportError):
        found.append(importlib.import_module("httpx2"))
    return found


@pytest.fixture(autouse=True)
def no_remote_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse every HTTP request to a host that is not loopback, and fail the test that
    sent one. Yields the list of refused URLs (a test of the guard itself clears it)."""
    refused: list[str] = []
    for library in _http_libraries():
        _guard(library, refused, monkeypatch)
    yield refused
    if refused:
        pytest.fail(f"the test tried to reach a real remote host: {', '.join(refused)}; "
                    "use a server on 127.0.0.1 or podium.testing.ScriptedModel",
                    pytrace=False)


def _guard(library: Any, refused: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrap `library`'s sync and async transports so that they refuse remote hosts."""
    send = library.HTTPTransport.handle_request
    send_async = library.AsyncHTTPTransport.handle_async_request

    def refuse(request: Any) -> None:
        if is_loopback(request.url.host):
            return
        url = str(request.url.copy_with(query=None, fragment=None))
        refused.append(url)
        raise library.ConnectError(
            f"tests must not reach {request.url.host!r} ({url}): a test talks to a server on "
            f"127.0.0.1 or to podium.testing.ScriptedModel, never to a real remote model "
            f"(tests/conftest.py)", request=request)

    def handle_request(self: Any, request: Any) -> Any:
        refuse(request)
        return send(self, request)

    async def handle_async_request(self: Any, request: Any) -> Any:
        refuse(request)
        return await send_async(self, request)

    monkeypatch.setattr(library.HTTPTransport, "handle_request", handle_request)
    monkeypatch.setattr(library.AsyncHTTPTransport, "handle_async_request",
                        handle_async_request)
