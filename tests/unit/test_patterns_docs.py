"""The Python example of docs/patterns.md is executed, so it stays true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "patterns.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("code", re.findall(r"```python\n(.*?)```", DOC, re.S))
def test_python_examples_run(code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", ["chain", "route", "parallel", "orchestrate", "refine",
                                  "supervisor", "discussion"])
def test_every_example_the_doc_names_exists(name: str) -> None:
    assert (ROOT / "examples" / "patterns" / f"{name}.yaml").exists()
