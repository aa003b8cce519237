"""`podium memory add|search|list|forget|promote`, and erasure of a subject from the memory
store and the journal, through the real command on real files."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from podium.server.access import os_user
from tests.e2e._cli import ROOT, podium_json

PODIUM = str(Path(sys.executable).with_name("podium"))
WORKFLOW = """
name: visit
inputs:
  patient: {type: string, subject: true}
  complaint: string
agents:
  scribe: {function: "notes:write"}
tasks:
  note:
    agent: scribe
    memory:
      namespace: "patients/{{ inputs.patient }}"
  review:
    agent: human
    needs: note
    prompt: "Check the note: {{ outputs.note }}"
"""
NOTES = '''
async def write(complaint: str, ctx) -> str:
    """Writes the note, and remembers the complaint in the patient's memory."""
    await ctx.memory.remember(f"Complained of {complaint}")
    return f"Visit note: {complaint}"
'''
TARGET, TARGET_TEXT = "pt-zq7wx", "Zebulon Quixote: durian-induced hiccups"
OTHER, OTHER_TEXT = "pt-bb2", "a sprained left ankle"


def _podium(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODIUM, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PODIUM_HOME": str(home)})


def _bytes(home: Path, *names: str) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(home.iterdir())
                    if path.name.startswith(names or ("podium.db", "memory.db")))


def test_add_search_list_forget_and_promote(tmp_path: Path) -> None:
    code, added = podium_json("memory", "add", "Allergic to penicillin.", "--namespace",
                              "patients/p-1", "--subject", "p-1", "--json", home=tmp_path)
    assert code == 0 and added["trust"] == "untrusted"
    # The operator is the OS user the process runs as, not whatever $USER says.
    assert added["source"] == f"operator:{os_user()}"
    podium_json("memory", "add", "Likes the window seat.", "-n", "patients/p-1", "--trusted",
                "--json", home=tmp_path)
    podium_json("memory", "add", "Allergic to latex.", "-n", "patients/p-2", "--json",
                home=tmp_path)
    code, found = podium_json("memory", "search", "drug allergy", "-n", "patients/p-1",
                              "--top-k", "1", "--json", home=tmp_path)
    assert code == 0 and [m["id"] for m in found] == [added["id"]] and found[0]["score"] > 0
    code, listed = podium_json("memory", "list", "-n", "patients/p-1", "--trusted-only",
                               "--json", home=tmp_path)
    assert [m["text"] for m in listed] == ["Likes the window seat."]
    code, promoted = podium_json("memory", "promote", added["id"], "-n", "patients/p-1",
                                 "--json", home=tmp_path)
    assert code == 0 and promoted["by"].startswith("human:")
    # Another namespace cannot reach it, by search or by id.
    code, other = podium_json("memory", "search", "Allergic to penicillin.", "-n",
                              "patients/p-2", "--json", home=tmp_path)
    assert [m["text"] for m in other] == ["Allergic to latex."]
    code, missed = podium_json("memory", "forget", added["id"], "-n", "patients/p-2",
                               "--json", home=tmp_path)
    assert code == 1 and missed["forgotten"] is False
    code, gone = podium_json("memory", "forget", added["id"], "-n", "patients/p-1", "--json",
                             home=tmp_path)
    assert code == 0 and gone["forgotten"] is True
    shown = _podium("memory", "list", "-n", "patients/p-1", home=tmp_path)
    assert "window seat" in shown.stdout and "penicillin" not in shown.stdout


def test_bad_input_names_the_problem(tmp_path: Path) -> None:
    bad = _podium("memory", "search", "x", "-n", "patients/*", home=tmp_path)
    assert bad.returncode == 2 and "'patients/*' is not a memory namespace" in bad.stderr
    trusted_tool = _podium("memory", "add", "x", "-n", "a", "--source", "tool:web",
                           "--trusted", home=tmp_path)
    assert trusted_tool.returncode == 2 and "promote" in trusted_tool.stderr
    neither = _podium("memory", "forget", "-n", "a", home=tmp_path)
    assert neither.returncode == 2 and "--subject" in neither.stderr


@pytest.mark.parametrize("encrypted", [False, True], ids=["clear", "encrypted"])
def test_forget_subject_erases_memories_and_runs_and_other_runs_still_resume(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encrypted: bool) -> None:
    """Unencrypted, the subject's runs are deleted; encrypted, the subject's data key is
    destroyed (crypto-shredding). Either way nothing about the subject is left to read."""
    if encrypted:
        monkeypatch.setenv("PODIUM_MASTER_KEY", secrets.token_hex(32))
    else:
        monkeypatch.delenv("PODIUM_MASTER_KEY", raising=False)
    home = tmp_path / "home"
    (tmp_path / "visit.yaml").write_text(WORKFLOW)
    (tmp_path / "notes.py").write_text(NOTES)
    runs = {}
    for patient, text in ((TARGET, TARGET_TEXT), (OTHER, OTHER_TEXT)):
        code, record = podium_json("run", str(tmp_path / "visit.yaml"), "-i",
                                   f"patient={patient}", "-i", f"complaint={text}",
                                   "--json", "--no-input", home=home)
        assert code == 3 and record["status"] == "waiting", record
        runs[patient] = record["run_id"]
    podium_json("memory", "add", f"{TARGET_TEXT}, again", "-n", f"clinic/{TARGET}/extra",
                "--subject", TARGET, "--json", home=home)
    code, listed = podium_json("memory", "list", "-n", f"patients/{TARGET}", "--json",
                               home=home)
    assert [m["subject"] for m in listed] == [TARGET]  # the run's subject, by default
    before = _bytes(home)
    assert TARGET.encode() in before
    # With a master key, the journal and memory.db both keep the texts encrypted.
    assert (TARGET_TEXT.encode() in before) is not encrypted
    assert (OTHER_TEXT.encode() in _bytes(home, "podium.db")) is not encrypted
    assert (OTHER_TEXT.encode() in _bytes(home, "memory.db")) is not encrypted

    code, erased = podium_json("memory", "forget", "--subject", TARGET, "--json", home=home)
    assert code == 0, erased
    assert erased["memories"] == 2 and erased["subject_ref"].startswith("subject#")
    if encrypted:
        assert erased["keys"] == 1 and erased["runs"] == []
        code, shown = podium_json("runs", "show", runs[TARGET], "--json", home=home)
        assert TARGET_TEXT not in json.dumps(shown) and TARGET not in json.dumps(shown)
    else:
        assert erased["keys"] == 0 and erased["runs"] == [runs[TARGET]]
        assert erased["events"] > 3
        assert _podium("runs", "show", runs[TARGET], home=home).returncode != 0

    after = _bytes(home)
    for secret in (TARGET_TEXT, "Zebulon", "durian"):
        assert secret.encode() not in after, secret
    # An encrypted journal keeps the subject's pseudonymous id as its (shredded) key's owner.
    assert (TARGET.encode() in after) is encrypted
    assert (OTHER_TEXT.encode() in after) is not encrypted
    code, kept = podium_json("memory", "list", "-n", f"patients/{OTHER}", "--json", home=home)
    assert [m["text"] for m in kept] == [f"Complained of {OTHER_TEXT}"]
    code, found = podium_json("memory", "search", TARGET_TEXT, "-n", f"patients/{TARGET}",
                              "--json", home=home)
    assert found == []

    code, done = podium_json("approve", runs[OTHER], "review", "--json", home=home)
    assert code == 0 and done["status"] == "completed"
    verified = _podium("audit", "verify", home=home)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    exported = [json.loads(line) for line in
                _podium("audit", "export", home=home).stdout.splitlines()]
    (record,) = [r for r in exported if r["action"] == "memory.erase"]
    assert record["subject"] == erased["subject_ref"]
    assert f"runs={len(erased['runs'])} " in record["detail"]
    assert f"keys={erased['keys']}" in record["detail"]
