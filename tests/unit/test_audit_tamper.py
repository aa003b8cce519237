"""Every way of tampering with the audit log tried by someone who can write its database,
including cutting it, emptying it and rewriting it with the keys: each is named by
`AuditLog.verify()` and by `podium audit verify` (exit 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from benchmarks._audit_tamper import (
    EXPECTED,
    TAMPERS,
    UNDETECTABLE,
    cut_after_the_last_head,
    make_log,
)

from podium.security import AuditLog

PODIUM = str(Path(sys.executable).with_name("podium"))


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("PODIUM_HOME", str(home))
    for name in ("PODIUM_AUDIT_KEY", "PODIUM_AUDIT_KEY_FILE", "PODIUM_AUDIT_SIGNING_KEY_FILE",
                 "PODIUM_AUDIT_WITNESS", "PODIUM_AUDIT"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_every_tamper_is_named(name: str, tmp_path: Path, home: Path) -> None:
    db = tmp_path / "audit.db"
    make_log(db)
    with AuditLog(db, sign_on_close=False) as log:
        assert log.verify().ok
    tamper: Callable[[Path], None] = TAMPERS[name]
    tamper(db)
    with AuditLog(db, sign_on_close=False) as log:
        report = log.verify()
    assert EXPECTED[name] in {f.kind for f in report.findings}, report
    done = subprocess.run([PODIUM, "audit", "verify", "--db", str(db)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PODIUM_HOME": str(home)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "TAMPERED" in done.stdout and EXPECTED[name] in done.stdout


def test_what_is_cut_and_what_is_rewritten_is_said_in_words(tmp_path: Path) -> None:
    messages = {}
    for name in ("cut_newest_with_heads", "empty_both_tables", "rewrite_with_both_keys",
                 "replace_the_file"):
        db = tmp_path / f"{name}.db"
        make_log(db)
        TAMPERS[name](db)
        with AuditLog(db, sign_on_close=False) as log:
            messages[name] = " ".join(f.message for f in log.verify().findings)
    assert "records 101-130 cut" in messages["cut_newest_with_heads"]
    assert "log emptied" in messages["empty_both_tables"]
    assert "chain rewritten" in messages["rewrite_with_both_keys"]
    assert "log replaced" in messages["replace_the_file"]


def test_the_limit_is_a_tail_after_the_last_head_and_verify_says_so(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    make_log(db, sign_on_close=False)
    assert UNDETECTABLE == cut_after_the_last_head.__name__
    cut_after_the_last_head(db)
    with AuditLog(db, sign_on_close=False) as log:
        report = log.verify()
    assert report.ok and report.head is not None and report.head.seq == 100


def test_a_forged_witness_line_is_named(tmp_path: Path, home: Path) -> None:
    db = tmp_path / "audit.db"
    make_log(db)
    witness = home / "audit.witness"
    lines = witness.read_text().splitlines()
    witness.write_text("\n".join([*lines, lines[-1].replace('"seq":130', '"seq":999')]) + "\n")
    with AuditLog(db, sign_on_close=False) as log:
        report = log.verify()
    assert [f.kind for f in report.findings] == ["bad_signature"]
    assert "audit.witness" in report.findings[0].message


def test_keys_and_witness_can_live_apart_from_the_data(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    vault = tmp_path / "vault"
    monkeypatch.setenv("PODIUM_AUDIT_KEY_FILE", str(vault / "hmac.key"))
    monkeypatch.setenv("PODIUM_AUDIT_SIGNING_KEY_FILE", str(vault / "signing.key"))
    monkeypatch.setenv("PODIUM_AUDIT_WITNESS", str(tmp_path / "sink" / "heads.jsonl"))
    db = tmp_path / "data" / "audit.db"
    make_log(db)
    assert sorted(p.name for p in vault.iterdir()) == ["hmac.key", "signing.key"]
    assert (tmp_path / "sink" / "heads.jsonl").read_text().count("\n") == 3
    assert sorted(p.name for p in db.parent.iterdir() if p.is_file()) == ["audit.db"]
    for path in (vault / "hmac.key", vault / "signing.key", tmp_path / "sink" / "heads.jsonl",
                 db):
        assert path.stat().st_mode & 0o777 == 0o600, path
    TAMPERS["empty_both_tables"](db)
    with AuditLog(db, sign_on_close=False) as log:
        assert [f.kind for f in log.verify().findings] == ["emptied"]
