"""docs/planner.md's examples are executed, so they stay true."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from podium import PlannedTask, parse_workflow

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "planner.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, re.S)


@pytest.mark.parametrize("code", _blocks("python"))
def test_python_examples_run(code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['split', 'half_0', 'half_1']"


@pytest.mark.parametrize("text", _blocks("yaml"))
def test_yaml_examples_are_valid_workflows(text: str) -> None:
    workflow = parse_workflow(text, "docs/planner.md")
    assert workflow.goal and workflow.planner


@pytest.mark.parametrize("text", _blocks("json"))
def test_json_examples_are_plans(text: str) -> None:
    for task in json.loads(text)["tasks"]:
        PlannedTask.model_validate(task)
