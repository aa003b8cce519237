"""A damaged, truncated, read-only or key-less journal through the real `podium` command:
exit 2 with one line naming the file (and the run and event), never a traceback, never a
false state, never a downgrade to clear text, and nothing journaled lost."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

PODIUM = str(Path(sys.executable).with_name("podium"))
WORKFLOW = """\
name: greet
inputs:
  who: {type: string}
agents:
  greeter: {function: "greeters:greet"}
tasks:
  hello: {agent: greeter, with: {who: "{{ inputs.who }}"}}
  again: {agent: greeter, needs: [hello], with: {who: "{{ outputs.hello }}"}}
"""


def _podium(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("PODIUM_MASTER_KEY", "PODIUM_DB"))}
    return subprocess.run([PODIUM, *args], env={**clean, "PODIUM_HOME": str(home)},
                          cwd=home, capture_output=True, text=True, timeout=120)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "greeters.py").write_text("def greet(who):\n    return f'hello {who}'\n")
    (tmp_path / "greet.yaml").write_text(WORKFLOW)
    return tmp_path


def _run(home: Path) -> str:
    done = _podium("run", "greet.yaml", "-i", "who=ada", "--json", home=home)
    assert done.returncode == 0, done.stderr
    run_id: str = json.loads(done.stdout)["run_id"]
    return run_id


def _one_clear_error(done: subprocess.CompletedProcess[str], *names: str) -> str:
    """The single error line of a command that must fail with exit 2, naming `names`."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def _events(db: Path, run_id: str) -> list[tuple[int, str]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT seq, type FROM events WHERE run_id = ? ORDER BY seq",
                            (run_id,)).fetchall()


# -- item 7: damage is detected, named, and never reported as a state ----------------------


def test_an_overwritten_events_page_is_reported_not_folded_into_a_false_state(
        home: Path) -> None:
    run_id = _run(home)
    db = home / "podium.db"
    assert not (home / "podium.db-wal").exists()  # checkpointed: the page is in the file
    raw = bytearray(db.read_bytes())
    at = raw.rfind(b"run_completed")
    assert at > 0
    start = max(0, at - 300)
    raw[start:start + 600] = random.Random(7).randbytes(600)
    db.write_bytes(bytes(raw))
    shown = _podium("runs", "show", run_id, "--json", home=home)
    assert "running" not in shown.stdout
    assert "completed" not in shown.stdout
    line = _one_clear_error(shown, str(db), f"of run {run_id!r}")
    assert re.search(r"event \d+ of run", line), line


def test_an_altered_event_row_names_the_run_and_the_event(home: Path) -> None:
    run_id = _run(home)
    db = home / "podium.db"
    last = _events(db, run_id)[-1]
    assert last[1] == "run_completed"
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE events SET type = 'task_started' WHERE run_id = ? AND seq = ?",
                     (run_id, last[0]))
    line = _one_clear_error(_podium("runs", "show", run_id, "--json", home=home),
                            str(db), f"event {last[0]} of run {run_id!r}", "damaged")
    assert "checksum" in line


def test_a_missing_newest_event_is_reported(home: Path) -> None:
    run_id = _run(home)
    db = home / "podium.db"
    last = _events(db, run_id)[-1][0]
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("DELETE FROM events WHERE run_id = ? AND seq = ?", (run_id, last))
    _one_clear_error(_podium("runs", "show", run_id, "--json", home=home),
                     str(db), run_id, f"{last}..{last}")


# -- item 8: truncated, damaged, read-only journals ----------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_truncated_or_damaged_file_gives_one_line_for_every_command(
        home: Path, damage: str) -> None:
    run_id = _run(home)
    db = home / "podium.db"
    kept = home / "copy.db"
    shutil.copy(db, kept)
    raw = db.read_bytes()
    if damage == "truncated":
        db.write_bytes(raw[: len(raw) // 3 + 100])
    else:
        db.write_bytes(random.Random(3).randbytes(len(raw)))
    for args in (("runs", "list"), ("runs", "show", run_id), ("resume", run_id),
                 ("run", "greet.yaml", "-i", "who=bob")):
        _one_clear_error(_podium(*args, home=home), str(db))
    # The commands wrote nothing over what was there.
    assert db.read_bytes() == (raw[: len(raw) // 3 + 100] if damage == "truncated"
                               else random.Random(3).randbytes(len(raw)))


@contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """`path` unwritable even for root (who ignores modes): immutable while root."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        try:
            yield
        finally:
            path.chmod(mode)
        return
    flag = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if flag.returncode != 0:
        pytest.skip(f"running as root and chattr +i is refused here: {flag.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_journal_gives_one_line_and_loses_nothing(home: Path, what: str) -> None:
    run_id = _run(home)
    db = home / "podium.db"
    before = _events(db, run_id)
    with _read_only(db if what == "file" else home):
        _one_clear_error(_podium("run", "greet.yaml", "-i", "who=bob", home=home), str(db))
        # Reading may work (SQLite opens a read-only file read-only) or stop at a write
        # (the audit record of the read): either the right answer or one clear line.
        for args in (("runs", "list"), ("runs", "show", run_id), ("resume", run_id)):
            done = _podium(*args, home=home)
            if done.returncode == 0:
                assert run_id in done.stdout + done.stderr
            else:
                _one_clear_error(done, str(db))
    assert _events(db, run_id) == before
    shown = _podium("runs", "show", run_id, "--json", home=home)
    assert shown.returncode == 0 and json.loads(shown.stdout)["status"] == "completed"


# -- item 6: a journal that holds encrypted data never takes clear text ------------------


def test_a_deleted_master_key_refuses_new_runs_and_keeps_the_encrypted_run(
        home: Path) -> None:
    assert _podium("keys", "init", home=home).returncode == 0
    run_id = _run(home)
    db = home / "podium.db"
    before = _events(db, run_id)
    (home / "master.key").unlink()
    refused = _podium("run", "greet.yaml", "-i", "who=bob", "--json", home=home)
    line = _one_clear_error(refused, str(db), "encrypted", "master key")
    assert "PODIUM_MASTER_KEY" in line
    with closing(sqlite3.connect(db)) as conn:
        runs = [r[0] for r in conn.execute("SELECT run_id FROM runs")]
        clear = conn.execute("SELECT count(*) FROM events WHERE typeof(data) = 'text'"
                             ).fetchone()[0]
    assert runs == [run_id] and clear == 0
    assert _events(db, run_id) == before


# -- item 5: owner-only files ---------------------------------------------------------------


def test_journal_files_are_owner_only_and_a_shared_one_is_reported(home: Path) -> None:
    fresh = home / "fresh"
    fresh.mkdir()
    shutil.copy(home / "greeters.py", fresh)
    shutil.copy(home / "greet.yaml", fresh)
    home = fresh / "state"
    done = subprocess.run(
        [PODIUM, "run", "greet.yaml", "-i", "who=ada"], cwd=fresh, capture_output=True,
        text=True, timeout=120,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")},
             "PODIUM_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    made = [p for p in home.iterdir() if p.is_file()]
    assert {p.name for p in made} >= {"podium.db", "audit.key", "audit_signing.key"}
    for p in made:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    (home / "podium.db").chmod(0o644)
    again = _podium("runs", "list", home=home)
    assert again.returncode == 0
    warned = [line for line in again.stderr.splitlines() if "may be read by other users" in line]
    assert len(warned) == 1 and str(home / "podium.db") in warned[0], again.stderr
