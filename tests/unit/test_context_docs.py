"""docs/context.md's examples are executed, so they stay true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from podium import LLMAgent, parse_workflow

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "context.md").read_text(encoding="utf-8")


def test_the_yaml_example_is_a_valid_workflow() -> None:
    [text] = re.findall(r"```yaml\n(.*?)```", DOC, re.S)
    workflow = parse_workflow(text, "docs/context.md")
    writer = workflow.agents["writer"]
    assert isinstance(writer, LLMAgent) and writer.context.notes and writer.context.outputs
    assert writer.context_budget == 1500


def test_the_python_example_prints_what_the_doc_says(tmp_path: Path) -> None:
    [code] = re.findall(r"```python\n(.*?)```", DOC, re.S)
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    printed = re.search(r"prints `(.*?)`", DOC)
    assert printed and done.stdout.strip() == printed[1]
