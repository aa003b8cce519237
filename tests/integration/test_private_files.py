"""Podium's files are owner-only from their creation: the journal with its WAL and shared
memory files, a separate audit database, key files, the witness, and the folders made for
them; an existing file open to others is reported once."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from podium import SQLiteStore
from podium.core.events import NewEvent
from podium.security import AuditLog
from podium.store.base import Owner

START = NewEvent(type="run_started", data={"workflow": "w", "inputs": {}})


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_files_and_folders_are_owner_only_while_in_use(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path / "home"))
    for name in ("PODIUM_AUDIT_KEY", "PODIUM_AUDIT_KEY_FILE", "PODIUM_AUDIT_SIGNING_KEY_FILE",
                 "PODIUM_AUDIT_WITNESS"):
        monkeypatch.delenv(name, raising=False)
    store = SQLiteStore(tmp_path / "a" / "b" / "podium.db", keys=None)
    try:
        await store.create_run("r", "w", START, Owner(token="t", pid=os.getpid(), host="h"))
        with AuditLog(tmp_path / "audit" / "audit.db") as log:
            log.append(actor="ada", action="run.start", subject="r")
            journal = sorted((tmp_path / "a" / "b").iterdir())
            assert [p.name for p in journal] == ["podium.db", "podium.db-shm", "podium.db-wal"]
            audit = sorted((tmp_path / "audit").iterdir())
            assert [p.name for p in audit] == ["audit.db", "audit.db-shm", "audit.db-wal"]
            modes = {p: _mode(p) for p in (*journal, *audit)}
        home = sorted((tmp_path / "home").iterdir())  # the log signed its head on close
        assert [p.name for p in home] == ["audit.key", "audit.witness", "audit_signing.key"]
        modes |= {p: _mode(p) for p in home}
        assert {p: m for p, m in modes.items() if m != 0o600} == {}
        for folder in ("a", "a/b", "audit", "home"):
            assert _mode(tmp_path / folder) == 0o700, folder
    finally:
        await store.close()


async def test_a_journal_open_to_others_is_reported_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "shared.db"
    db.touch(mode=0o644)
    db.chmod(0o644)
    for _ in range(2):
        await SQLiteStore(db, keys=None).close()
    warned = [line for line in capsys.readouterr().err.splitlines()
              if "may be read by other users" in line]
    assert warned == [f"warning: {db} may be read by other users (mode -rw-r--r--); make it "
                      f"owner-only: chmod 600 {db}"]
    assert _mode(db) == 0o644  # reported, not changed: sharing may be deliberate
