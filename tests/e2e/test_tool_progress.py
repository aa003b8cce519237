"""Tool calls show in `podium run`'s progress and in `podium runs show`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PODIUM = str(Path(sys.executable).with_name("podium"))


def test_tool_calls_are_shown(tmp_path: Path) -> None:
    (tmp_path / "calc.py").write_text(
        "from podium import tool\n"
        "from podium.testing import ScriptedModel\n"
        "from podium import LLMAgent\n\n"
        "@tool\n"
        "def add(a: int, b: int) -> int:\n"
        "    '''Add two integers.'''\n"
        "    return a + b\n\n"
        "model = ScriptedModel([{'tool_calls': [{'name': 'add', 'arguments': {'a': 2, 'b': 3}}]},"
        " 'five'])\n"
        "helper = LLMAgent(model, name='helper', tools=[add])\n")
    (tmp_path / "flow.yaml").write_text(
        "name: calc\nagents:\n  helper: {function: 'calc:helper'}\n"
        "tasks:\n  sum: {agent: helper, prompt: 'add 2 and 3'}\n")
    env = {**os.environ, "PODIUM_HOME": str(tmp_path / "home")}
    done = subprocess.run([PODIUM, "run", "flow.yaml", "--no-input"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "tool add(" in done.stderr and "→ 5" in done.stderr
    listed = subprocess.run([PODIUM, "runs", "list", "--json"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    run_id = json.loads(listed.stdout)[0]["run_id"]
    shown = subprocess.run([PODIUM, "runs", "show", run_id], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert 'tool add({"a": 2, "b": 3}) → 5' in shown.stdout
