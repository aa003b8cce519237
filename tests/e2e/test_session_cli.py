"""Sessions through the real `podium` command and the real local model: a second run of
a session knows what the first was told; what did not fit a tight budget is shown by
`podium runs show`; instructions that cannot fit fail naming the agent and the numbers."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e._cli import PODIUM, podium_json

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                reason="the local model needs: pip install 'podium[local]'")

CHAT = """
name: chat
inputs:
  # The person running the command types the message: trusted, so the small model reads
  # it as written, without untrusted-content delimiters (docs/tools-security.md).
  message:
    type: string
    trusted: true
agents:
  bot:
    model: local
    temperature: 0
    max_tokens: 24
    instructions: You are a helpful assistant. Use what was said earlier in this session.
{extra}
tasks:
  reply:
    agent: bot
    prompt: "{{{{ inputs.message }}}}"
"""


def _flow(folder: Path, name: str, extra: str = "") -> str:
    path = folder / name
    path.write_text(CHAT.format(extra=extra))
    return str(path)


def test_a_session_carries_what_the_first_run_was_told_to_the_second(tmp_path: Path) -> None:
    home = tmp_path / "home"
    chat = _flow(tmp_path, "chat.yaml")
    code, first = podium_json("run", chat, "-i",
                              "message=Please remember that the code word is PAPAYA.",
                              "--session", "s1", "--json", home=home)
    assert code == 0, first
    code, second = podium_json("run", chat, "-i", "message=What is the code word?",
                               "--session", "s1", "--json", home=home)
    assert code == 0, second
    assert "PAPAYA" in second["outputs"]["reply"]
    assert second["session"] == "s1"
    [assembled] = second["tasks"][0]["context"]
    assert assembled["counted"] == "tokenizer" and assembled["window"] == 2048
    assert assembled["sections"]["session"]["kept"] == 2 and assembled["dropped"] == []

    code, elsewhere = podium_json("run", chat, "-i", "message=What is the code word?",
                                  "--session", "s2", "--json", home=home)
    assert code == 0 and "context" not in elsewhere["tasks"][0]  # another session: no thread

    # A tight budget: the thread no longer fits, and `runs show` says what gave way.
    tight = _flow(tmp_path, "tight.yaml", "    context_budget: 60\n"
                                          "    context: {summarise: false}")
    code, third = podium_json("run", tight, "-i", "message=What is the code word?",
                              "--session", "s1", "--json", home=home)
    assert code == 0, third
    [assembled] = third["tasks"][0]["context"]
    assert assembled["used"] <= 60 and assembled["sections"]["session"]["entries"] == 4
    env = {**os.environ, "PODIUM_HOME": str(home)}
    shown = subprocess.run([str(PODIUM), "runs", "show", third["run_id"]], env=env,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "session s1" in shown.stdout
    assert "reply · context " in shown.stdout and "(tokenizer)" in shown.stdout
    assert f"dropped from session: run {first['run_id']} inputs" in shown.stdout


def test_instructions_that_cannot_fit_fail_with_the_numbers(tmp_path: Path) -> None:
    tiny = _flow(tmp_path, "tiny.yaml", "    context_budget: 10")
    code, record = podium_json("run", tiny, "-i", "message=hello", "--json",
                               home=tmp_path / "home")
    assert code == 1 and record["status"] == "failed"
    error = record["tasks"][0]["error"]
    assert error.startswith("ContextTooLarge: agent 'bot': its instructions and the task take ")
    assert "(counted by the model's tokenizer), more than its prompt budget of 10" in error
