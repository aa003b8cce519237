"""The README's examples are executed, so they stay true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from podium import parse_workflow

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


@pytest.mark.parametrize("code", _blocks("python"))
def test_python_examples_run(code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Hello, Ada\nHello, Grace"


@pytest.mark.parametrize("text", _blocks("yaml"))
def test_yaml_examples_are_valid_workflows(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in re.findall(r"env:(\w+)", text):  # secrets are read when agents are built
        monkeypatch.setenv(name, "sqlite://" if name.endswith("_URL") else "s3cret")
    workflow = parse_workflow(text, "README.md")
    assert workflow.tasks


def test_first_two_commands_are_setup_and_tests() -> None:
    commands = _blocks("bash")
    assert "podium run examples/monthly_report.yaml" in commands[0]
    assert commands[1].strip() == "bash scripts/test"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "exec bash scripts/test" in ci
