"""docs/memory.md's examples run, so they stay true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from podium import parse_workflow

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "memory.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, re.S)


def test_the_python_example_runs(tmp_path: Path) -> None:
    (code,) = _blocks("python")
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Allergic to penicillin. trusted"


def test_the_yaml_example_is_a_valid_workflow() -> None:
    (text,) = _blocks("yaml")
    workflow = parse_workflow(text, "docs/memory.md")
    memory = workflow.tasks["note"].memory
    assert memory is not None and memory.top_k == 5 and memory.min_score == 0.2
    assert workflow.inputs["patient"].subject
