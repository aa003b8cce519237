"""The guard of tests/conftest.py: no test reaches a real remote model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from podium import Message, ModelError
from podium.models.anthropic import AnthropicModel
from podium.models.openai_compat import OpenAICompatModel

CONFTEST = Path(__file__).parents[1] / "conftest.py"
HELLO = [Message(role="user", content="hello")]


async def test_a_request_to_a_remote_openai_compatible_model_is_refused(
        no_remote_requests: list[str]) -> None:
    model = OpenAICompatModel("gpt-4o-mini", base_url="https://api.openai.com/v1")

    with pytest.raises(ModelError, match=r"tests must not reach 'api\.openai\.com'"):
        await model.complete(HELLO)

    assert no_remote_requests == ["https://api.openai.com/v1/chat/completions"]
    no_remote_requests.clear()  # checked above; the guard would fail this test otherwise


async def test_a_request_to_a_remote_anthropic_model_is_refused(
        no_remote_requests: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("anthropic")
    monkeypatch.setenv("PODIUM_TEST_ANTHROPIC_KEY", "sk-ant-test")
    model = AnthropicModel("claude-test", base_url="https://api.anthropic.com",
                           api_key_env="PODIUM_TEST_ANTHROPIC_KEY")

    with pytest.raises(ModelError, match=r"tests must not reach 'api\.anthropic\.com'"):
        await model.complete(HELLO)

    assert no_remote_requests == ["https://api.anthropic.com/v1/messages"]
    no_remote_requests.clear()


async def test_a_model_on_loopback_is_let_through(no_remote_requests: list[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = OpenAICompatModel("m", base_url=f"http://127.0.0.1:{port}/v1")

    with pytest.raises(ModelError, match="could not reach") as caught:
        await model.complete(HELLO)

    assert "tests must not reach" not in str(caught.value)
    assert no_remote_requests == []


def test_a_test_that_swallows_the_refusal_still_fails(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text(encoding="utf-8"))
    (tmp_path / "test_sneaky.py").write_text(
        "import httpx\n\n"
        "def test_sneaky() -> None:\n"
        "    try:\n"
        "        httpx.get('https://api.openai.com/v1/models')\n"
        "    except httpx.HTTPError:\n"
        "        pass\n")

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed, 1 error" in done.stdout
    assert "the test tried to reach a real remote host: https://api.openai.com/v1/models" in (
        done.stdout)
