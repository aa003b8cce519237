"""docs/rbac.md's examples are executed, so they stay true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from podium import PolicyFileError, parse_policy

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "rbac.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, re.S)


def test_the_policy_file_example_is_valid() -> None:
    policy = parse_policy(_blocks("yaml")[0], "policy.yaml")

    assert policy.roles == {"analyst", "approver", "treasurer", "viewer"}
    assert policy.principal("report-bot").kind == "service"


def test_the_bad_file_gives_the_errors_shown() -> None:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(_blocks("yaml")[1], "policy.yaml")

    shown = _blocks("text")[0].strip().splitlines()
    assert [str(p) for p in caught.value.problems] == shown


def test_the_python_example_runs_and_prints_what_is_shown(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(_blocks("yaml")[0], encoding="utf-8")
    script = tmp_path / "example.py"
    script.write_text(_blocks("python")[0], encoding="utf-8")

    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == _blocks("text")[1].strip()
