"""`podium keys init|status|rotate`, and the notice when run data is stored unencrypted,
through the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from podium import SQLiteStore, UnknownRun
from podium.security import AuditLog
from podium.security.crypto import context

PODIUM = str(Path(sys.executable).with_name("podium"))
CANARY = "quokka-canary-4411"
WORKFLOW = """\
name: greet
inputs:
  who: {type: string}
agents:
  greeter: {function: "greeters:greet"}
tasks:
  hello: {agent: greeter, with: {who: "{{ inputs.who }}"}}
"""


def _podium(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_MASTER_KEY")}
    return subprocess.run([PODIUM, *args], env={**clean, "PODIUM_HOME": str(home), **env},
                          cwd=home, capture_output=True, text=True, timeout=120)


def _setup(tmp_path: Path) -> Path:
    (tmp_path / "greeters.py").write_text("def greet(who):\n    return f'hello {who}'\n")
    (tmp_path / "greet.yaml").write_text(WORKFLOW)
    return tmp_path


def _run(home: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    done = _podium("run", "greet.yaml", "-i", f"who={CANARY}", "--json", home=home)
    assert done.returncode == 0, done.stderr
    return done, json.loads(done.stdout)["run_id"]


def _on_disk(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in home.glob("podium.db*"))


def test_unencrypted_storage_is_said_plainly(tmp_path: Path) -> None:
    home = _setup(tmp_path)
    done, run_id = _run(home)
    notes = [line for line in done.stderr.splitlines() if "stored unencrypted" in line]
    assert len(notes) == 1, done.stderr
    assert "podium keys init" in notes[0]
    shown = _podium("runs", "show", run_id, home=home)
    assert shown.returncode == 0 and "stored unencrypted" in shown.stderr
    status = _podium("keys", "status", "--json", home=home)
    assert json.loads(status.stdout)["encrypted"] is False
    assert CANARY.encode() in _on_disk(home)


def test_init_run_rotate_and_the_old_key_reads_nothing(tmp_path: Path) -> None:
    home = _setup(tmp_path)
    made = _podium("keys", "init", home=home)
    assert made.returncode == 0, made.stderr
    old = (home / "master.key").read_text().strip()
    assert (home / "master.key").stat().st_mode & 0o777 == 0o600
    done, run_id = _run(home)
    assert "unencrypted" not in done.stderr
    assert CANARY.encode() not in _on_disk(home)
    assert _podium("keys", "init", home=home).returncode == 2  # never overwrites a key

    before = json.loads(_podium("keys", "status", "--json", home=home).stdout)
    assert before["encrypted"] is True and sum(before["data_keys"].values()) == 1

    rotated = _podium("keys", "rotate", home=home)
    assert rotated.returncode == 0, rotated.stderr
    assert "1 data key(s) re-wrapped" in rotated.stdout
    after = json.loads(_podium("keys", "status", "--json", home=home).stdout)
    assert after["current"] != before["current"]
    assert after["data_keys"] == {after["current"]: 1}
    assert (home / "master.key").read_text().strip() != old

    shown = _podium("runs", "show", run_id, "--json", home=home)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["outputs"] == {"hello": f"hello {CANARY}"}
    with_old = _podium("runs", "show", run_id, home=home, PODIUM_MASTER_KEY=old)
    assert with_old.returncode == 2
    assert f"encrypted under master key {after['current']}" in with_old.stderr


def test_rotating_to_a_given_key_file(tmp_path: Path) -> None:
    home = _setup(tmp_path)
    key_file = tmp_path / "first.key"
    env = {"PODIUM_MASTER_KEY_FILE": str(key_file)}
    assert _podium("keys", "init", "--out", str(key_file), home=home).returncode == 0
    done = _podium("run", "greet.yaml", "-i", f"who={CANARY}", "--json", home=home, **env)
    run_id = json.loads(done.stdout)["run_id"]
    new_file = tmp_path / "second.key"
    assert _podium("keys", "init", "--out", str(new_file), home=home).returncode == 0
    rotated = _podium("keys", "rotate", "--new-key-file", str(new_file), home=home, **env)
    assert rotated.returncode == 0, rotated.stderr
    assert f"PODIUM_MASTER_KEY_FILE={new_file}" in rotated.stdout
    assert _podium("runs", "show", run_id, home=home, **env).returncode == 2
    shown = _podium("runs", "show", run_id, home=home, PODIUM_MASTER_KEY_FILE=str(new_file))
    assert shown.returncode == 0, shown.stderr
    unkeyed = _podium("keys", "rotate", home=home)
    assert unkeyed.returncode == 2 and "no master key is configured" in unkeyed.stderr


def _audit(home: Path) -> list[dict[str, Any]]:
    verified = _podium("audit", "verify", home=home)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    exported = _podium("audit", "export", home=home)
    assert exported.returncode == 0, exported.stderr
    return [json.loads(line) for line in exported.stdout.splitlines()]


async def test_key_init_rotation_and_shredding_are_audited(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _setup(tmp_path)
    env = {"PODIUM_PRINCIPAL": "keeper"}
    assert _podium("keys", "init", home=home, **env).returncode == 0
    first = _podium("keys", "status", "--json", home=home)
    old = json.loads(first.stdout)["process_keys"][0]
    made = _audit(home)[-1]
    assert (made["actor"], made["action"], made["subject"], made["detail"]) == (
        "keeper", "key.init", f"master_key/0x{old}", "PODIUM_HOME")

    _, run_id = _run(home)
    assert _podium("keys", "rotate", home=home, **env).returncode == 0
    new = json.loads(_podium("keys", "status", "--json", home=home).stdout)["current"]
    rotated = _audit(home)[-1]
    assert (rotated["actor"], rotated["action"], rotated["subject"], rotated["detail"]) == (
        "keeper", "key.rotate", f"master_key/0x{new}", f"rewrapped=1 previous=0x{old}")

    # Shredding through the store's Python API, with the command's audit log.
    monkeypatch.setenv("PODIUM_HOME", str(home))
    for name in [k for k in os.environ if k.startswith("PODIUM_MASTER_KEY")]:
        monkeypatch.delenv(name)
    with AuditLog(home / "podium.db") as log:
        store = SQLiteStore(home / "podium.db", audit=log, actor="dpo")
        try:
            await store.vault_put(run_id, {"<EMAIL_1>": "ada@example.org",
                                           "<CARD_1>": "4111 1111 1111 1111"})
            await store.seal(b"notes", where=context("notes", "1", "text"), subject="cust-42")
            await store.shred_run(run_id)
            assert [r["data_classes"] for r in _audit(home)[-1:]] == [["CARD", "EMAIL"]]
            assert await store.shred_subject("cust-42") == 1
            assert _audit(home)[-1]["subject"].startswith("subject#")
            with pytest.raises(UnknownRun):
                await store.shred_run("no-such-run")
        finally:
            await store.close()
    trail = _audit(home)
    shreds = [(r["actor"], r["action"], r["subject"], r["outcome"], r["detail"],
               r["data_classes"]) for r in trail if r["action"] == "key.shred"]
    assert shreds == [
        ("dpo", "key.shred", f"run/{run_id}", "ok", "keys=1 vault", ["CARD", "EMAIL"]),
        ("dpo", "key.shred", trail[-2]["subject"], "ok", "keys=1", ["SUBJECT"]),
        ("dpo", "key.shred", "run/no-such-run", "error", "UnknownRun", [])]
    exported = json.dumps(trail)
    for value in ("ada@example.org", "4111", "cust-42", CANARY):
        assert value not in exported
