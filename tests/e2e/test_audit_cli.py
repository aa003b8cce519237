"""`podium audit verify` and `podium audit export` on a real journal database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from podium.security import AuditLog

PODIUM = str(Path(sys.executable).with_name("podium"))


def _podium(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODIUM, *args], env={**os.environ, "PODIUM_HOME": str(home)},
                          capture_output=True, text=True, timeout=60)


def test_verify_and_export_from_the_command_line(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    with AuditLog() as log:
        for i in range(5):
            log.append(actor="ada", action="run.start", subject=f"run-{i}")
    ok = _podium("audit", "verify", home=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    exported = _podium("audit", "export", home=tmp_path)
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["seq"] for r in lines] == [1, 2, 3, 4, 5]
    with closing(sqlite3.connect(tmp_path / "podium.db")) as db, db:
        db.execute("UPDATE audit_log SET actor = 'eve' WHERE seq = 2")
    bad = _podium("audit", "verify", home=tmp_path)
    assert bad.returncode == 1
    assert "#2 edited" in bad.stdout + bad.stderr
