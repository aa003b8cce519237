"""Streaming from real models: llama.cpp in a worker process, a real OpenAI-compatible
server, and the `podium run` command's progress display."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from podium.models.base import Message
from podium.models.local import LocalModel
from podium.models.openai_compat import OpenAICompatModel

pytestmark = pytest.mark.slow

PODIUM = str(Path(sys.executable).with_name("podium"))
ASK = [Message(role="user", content="Say hello in five words.")]


async def test_local_model_streams_pieces_that_join_to_the_reply() -> None:
    pieces: list[str] = []
    reply = await LocalModel().complete(ASK, max_tokens=24, on_token=pieces.append)
    assert len(pieces) > 1 and reply.text.strip()
    assert "".join(pieces) == reply.text
    assert reply.usage.output_tokens == len(pieces) and reply.usage.input_tokens > 0
    # Streamed or not, the prompt is counted alike. (The texts need not be identical: the
    # same seed repeats a reply within one build of llama.cpp, not across builds, and
    # streamed and unstreamed calls may take different paths.)
    unstreamed = await LocalModel().complete(ASK, max_tokens=24)
    assert unstreamed.text.strip() and unstreamed.usage.input_tokens == reply.usage.input_tokens


async def test_openai_compat_model_streams_from_a_real_server(llama_server: str) -> None:
    pieces: list[str] = []
    model = OpenAICompatModel("smollm2", base_url=llama_server, api_key_env="PODIUM_NO_KEY")
    reply = await model.complete(ASK, max_tokens=24, on_token=pieces.append)
    assert len(pieces) > 1
    assert "".join(pieces) == reply.text
    if reply.usage.output_tokens:  # only when the server honours include_usage
        assert reply.usage.input_tokens > 0


def test_podium_run_shows_streamed_text(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text(
        "from podium import LLMAgent\n"
        "from podium.testing import ScriptedModel\n"
        "helper = LLMAgent(ScriptedModel(['hello streaming world']), name='helper')\n")
    (tmp_path / "wf.yaml").write_text(
        "name: stream\n"
        "agents:\n"
        "  helper:\n"
        "    function: 'mod:helper'\n"
        "tasks:\n"
        "  greet:\n"
        "    agent: helper\n"
        "    prompt: Greet.\n")
    done = subprocess.run([PODIUM, "run", "wf.yaml", "--no-input", "--db", "j.db"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PODIUM_HOME": str(tmp_path),
                               "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✎ greet: hello streaming world" in done.stderr
    assert "hello streaming world" in done.stdout
