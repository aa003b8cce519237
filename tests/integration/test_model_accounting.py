"""Tokens counted for budgets and `runs show` against a real llama.cpp server, whose
streams carry no usage: the default (streaming) `podium run` counts them itself, and a
call that fails (cut off at `max_tokens`) is journaled with the tokens it spent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from podium.models import Message, OpenAICompatModel

pytestmark = pytest.mark.slow

PODIUM = str(Path(sys.executable).with_name("podium"))


def _podium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODIUM, *args, "--db", "j.db"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PODIUM_HOME": str(tmp_path)})


def _workflow(tmp_path: Path, base_url: str, agent: str, budget: str = "") -> None:
    (tmp_path / "wf.yaml").write_text(
        "name: counted\n" + budget +
        "agents:\n"
        "  writer:\n"
        "    model: openai:smollm2\n"
        f"    base_url: {base_url}\n"
        "    api_key_env: PODIUM_NO_KEY\n"
        "    temperature: 0\n" + agent +
        "tasks:\n"
        "  a: {agent: writer, prompt: 'Describe the sea in three sentences.'}\n"
        "  b: {agent: writer, prompt: 'Describe the sky in three sentences.', needs: [a]}\n"
        "  c: {agent: writer, prompt: 'Describe a forest in three sentences.', needs: [b]}\n")


def _record(tmp_path: Path, stderr: str) -> dict[str, Any]:
    shown = _podium(tmp_path, "runs", "show", _run_id(tmp_path), "--json")
    assert shown.returncode == 0, shown.stderr + stderr
    record: dict[str, Any] = json.loads(shown.stdout)
    return record


def _run_id(tmp_path: Path) -> str:
    listed = _podium(tmp_path, "runs", "list", "--json")
    return str(json.loads(listed.stdout)[0]["run_id"])


async def test_the_server_streams_no_usage(llama_server: str) -> None:
    """Why counting is needed: the stream's reply comes without token counts."""
    model = OpenAICompatModel("smollm2", base_url=llama_server, api_key_env="PODIUM_NO_KEY")
    pieces: list[str] = []
    reply = await model.complete([Message(role="user", content="Say hello.")], max_tokens=16,
                                 on_token=pieces.append)
    # llama-cpp-python's server ignores `stream_options.include_usage`.
    assert pieces and (reply.usage.input_tokens, reply.usage.output_tokens) == (0, 0)


def test_a_streaming_run_counts_tokens_and_its_budget_stops_it(
        llama_server: str, tmp_path: Path) -> None:
    _workflow(tmp_path, llama_server, "    max_tokens: 48\n", "budget: {tokens: 100}\n")

    done = _podium(tmp_path, "run", "wf.yaml", "--no-input")  # streams, as by default

    assert done.returncode == 1, done.stdout + done.stderr
    assert "✎ a:" in done.stderr  # it did stream
    assert "tokens budget of 100 exceeded" in done.stderr
    record = _record(tmp_path, done.stderr)
    assert record["reason"] == "budget_exceeded"
    first = record["tasks"][0]
    assert first["tokens"]["calls"] == 1
    assert first["tokens"]["input"] > 0 and first["tokens"]["output"] > 0
    assert record["tokens"]["input"] + record["tokens"]["output"] > 100
    assert record["tasks"][-1]["id"] != "c" or record["tasks"][-1]["status"] != "completed"


def test_a_call_cut_off_at_max_tokens_is_journaled_with_its_tokens(
        llama_server: str, tmp_path: Path) -> None:
    _workflow(tmp_path, llama_server,
              "    max_tokens: 4\n"
              "    output: {type: object, properties: {text: {type: string}},"
              " required: [text]}\n"
              "    retry: {attempts: 2}\n")

    done = _podium(tmp_path, "run", "wf.yaml", "--no-input")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "cut off at max_tokens=4" in done.stderr + done.stdout
    record = _record(tmp_path, done.stderr)
    first = record["tasks"][0]
    assert first["status"] == "failed"
    # Both attempts were model calls that spent tokens, though neither gave an answer.
    assert first["tokens"]["calls"] == 2
    assert first["tokens"]["input"] > 0 and first["tokens"]["output"] > 0
    assert record["tokens"]["input"] == first["tokens"]["input"]
