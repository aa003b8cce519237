"""Encrypted long-term memory through the real command: the notice without a key, nothing
in clear with one, and `podium keys rotate` re-wrapping the memory database's keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PODIUM = str(Path(sys.executable).with_name("podium"))
CANARY = "axolotl-canary-9024"


def _podium(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("PODIUM_MASTER_KEY", "PODIUM_MEMORY_DB"))}
    return subprocess.run([PODIUM, *args], env={**clean, "PODIUM_HOME": str(home), **env},
                          cwd=home, capture_output=True, text=True, timeout=300)


def _add(home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    done = _podium("memory", "add", f"{CANARY} likes figs", "-n", "crm/c-1",
                   "--subject", "c-1", home=home, **env)
    assert done.returncode == 0, done.stderr
    return done


def _memory_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in home.glob("memory.db*"))


def test_memories_without_a_key_are_said_to_be_unencrypted(tmp_path: Path) -> None:
    done = _add(tmp_path)
    notes = [line for line in done.stderr.splitlines() if "unencrypted" in line]
    assert len(notes) == 1 and "memories are stored unencrypted" in notes[0], done.stderr
    assert CANARY.encode() in _memory_bytes(tmp_path)


def test_encrypted_memories_and_rotation(tmp_path: Path) -> None:
    home = tmp_path
    assert _podium("keys", "init", home=home).returncode == 0
    old = (home / "master.key").read_text().strip()
    done = _add(home)
    assert "unencrypted" not in done.stderr
    assert CANARY.encode() not in _memory_bytes(home)

    rotated = _podium("keys", "rotate", home=home)
    assert rotated.returncode == 0, rotated.stderr
    assert "1 memory data key(s) re-wrapped" in rotated.stdout

    found = _podium("memory", "search", "figs", "-n", "crm/c-1", "--json", home=home)
    assert found.returncode == 0, found.stderr
    assert [m["text"] for m in json.loads(found.stdout)] == [f"{CANARY} likes figs"]
    with_old = _podium("memory", "list", "-n", "crm/c-1", home=home, PODIUM_MASTER_KEY=old)
    assert with_old.returncode == 2 and "encrypted under master key" in with_old.stderr
    assert CANARY not in with_old.stdout
