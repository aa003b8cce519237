"""Real servers on loopback for integration tests."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from podium.models.local import default_model_path
from tests.integration._postgres import PostgresServer, postgres_server

_STARTUP_DEADLINE_S = 120.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return _free_port()


def _wait_until_serving(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + _STARTUP_DEADLINE_S
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            # Waiting on the process doubles as the pause between polls, and notices a
            # server that died during startup instead of polling it until the deadline.
            try:
                code = process.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"llama.cpp server exited with {code} during startup:\n{log.read_text()}")
    pytest.fail(f"llama.cpp server did not answer {url} within {_STARTUP_DEADLINE_S:g}s")


def serve_llama(tmp_path_factory: pytest.TempPathFactory, *extra: str) -> Iterator[str]:
    """Run a real llama.cpp OpenAI-compatible server serving SmolLM2 on 127.0.0.1, with
    `extra` command-line options; yields its base URL and stops it afterwards."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("the llama.cpp server needs: pip install 'podium[server]'")
    port = _free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
               "--seed", "1234", "--verbose", "False", *extra]
    base_url = f"http://127.0.0.1:{port}/v1"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_until_serving(process, f"{base_url}/models", log)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server serving SmolLM2; yields its base URL."""
    yield from serve_llama(tmp_path_factory)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on loopback for the session (see `_postgres.py`); skipped
    where PostgreSQL or psycopg is missing. `pg_server.fresh_database()` makes a database."""
    with postgres_server() as server:
        yield server
