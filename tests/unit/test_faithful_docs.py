"""docs/faithfulness.md's examples are executed, so they stay true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from podium import Faithful, LLMAgent, parse_workflow

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "faithfulness.md").read_text(encoding="utf-8")


def test_the_yaml_example_is_a_valid_workflow() -> None:
    [text] = re.findall(r"```yaml\n(.*?)```", DOC, re.S)
    workflow = parse_workflow(text, "docs/faithfulness.md", base=ROOT)
    writer = workflow.agents["writer"]
    assert isinstance(writer, LLMAgent) and writer.max_repairs == 1
    assert writer.checks == (Faithful(sources=("prompt",), allow=(2026,)),)


def test_the_python_example_prints_what_the_doc_says(tmp_path: Path) -> None:
    [code] = re.findall(r"```python\n(.*?)```", DOC, re.S)
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    printed = re.search(r"`(Income was .*?)` and `(.*?)`", DOC, re.S)
    assert printed
    assert done.stdout.splitlines() == [printed[1], " ".join(printed[2].split())]
