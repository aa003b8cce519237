"""Hostile inputs through the real `podium` command: a workflow file with non-UTF-8 bytes,
a non-UTF-8 `-i` value, a 5,000-deep YAML document, a 975-deep JSON input, deep `--data`,
and a disk that fills up mid-run. Each ends with exit 2 (1 for the full disk: the run could
not go on) and one line naming the file and line or the input, never a traceback; nothing
journaled before is lost, and the run the full disk stopped completes on `podium resume`
once there is space again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PODIUM = Path(sys.executable).with_name("podium")

AGENTS = """\
import secrets


def echo(s: str = "", x: object = None) -> dict:
    return {"s": s, "x": x}


def big() -> str:
    return secrets.token_hex(100_000)  # 200 kB that do not compress
"""

INPUTS = """\
name: inputs
inputs:
  s: {type: string}
  x: {type: list, default: []}
agents:
  echo: {function: "agents:echo"}
tasks:
  a: {agent: echo}
"""

HUMAN = """\
name: ask
tasks:
  ok: {agent: human, prompt: "fine?"}
"""


class Podium:
    def __init__(self, folder: Path, home: Path) -> None:
        self.folder, self.home = folder, home
        (folder / "agents.py").write_text(AGENTS, encoding="utf-8")
        (folder / "inputs.yaml").write_text(INPUTS, encoding="utf-8")

    def __call__(self, *args: str | bytes) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(PODIUM), *args], cwd=self.folder, capture_output=True,
                              env={**os.environ, "PODIUM_HOME": str(self.home)},
                              timeout=120, text=True, errors="replace")

    def runs(self) -> list[dict[str, Any]]:
        listed = self("runs", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        return json.loads(listed.stdout)  # type: ignore[no-any-return]


def the_error(done: subprocess.CompletedProcess[str]) -> str:
    """The one error line (notes aside), checking there is nothing else."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if not line.startswith("note:")]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


@pytest.fixture
def podium(tmp_path: Path) -> Podium:
    cli = Podium(tmp_path, tmp_path / "home")
    first = cli("run", "inputs.yaml", "--json", "-i", "s=kept")
    assert first.returncode == 0, first.stderr
    return cli


@pytest.fixture(autouse=True)
def nothing_journaled_is_lost(podium: Podium) -> Iterator[None]:
    yield
    runs = podium.runs()
    assert runs[-1]["status"] == "completed"
    record = json.loads(podium("runs", "show", runs[-1]["run_id"], "--json").stdout)
    assert record["outputs"]["a"] == {"s": "kept", "x": []}


def test_a_workflow_file_with_non_utf8_bytes(podium: Podium) -> None:
    (podium.folder / "latin1.yaml").write_bytes(
        b"name: latin\n# caf\xe9 au lait\ntasks:\n  a: {agent: echo}\n")
    for command in ("run", "validate"):
        done = podium(command, "latin1.yaml")
        assert done.returncode == 2
        assert the_error(done) == ("error: latin1.yaml:2: not UTF-8 text: byte 0xe9 at "
                                   "column 6; save the file as UTF-8")
    assert len(podium.runs()) == 1


def test_an_access_policy_with_non_utf8_bytes(podium: Podium) -> None:
    (podium.folder / "policy.yaml").write_bytes(b"roles:\n  caf\xe9: {}\n")
    done = podium("runs", "list", "--policy", "policy.yaml")
    assert done.returncode == 2
    assert the_error(done) == ("error: policy.yaml:2: not UTF-8 text: byte 0xe9 at column 6; "
                               "save the file as UTF-8")


def test_a_non_utf8_input_value(podium: Podium) -> None:
    done = podium("run", "inputs.yaml", b"-i", b"s=caf\xe9")
    assert done.returncode == 2
    assert the_error(done) == ("error: inputs.yaml: inputs.s: the value is not valid UTF-8 "
                               "text (byte 0xe9 at position 3); give it as UTF-8")
    named = podium("run", "inputs.yaml", "-i", "s=ok", b"-i", b"x\xff=[]")
    assert named.returncode == 2
    assert "inputs.x\\udcff: the input's name is not valid UTF-8 text" in the_error(named)
    assert len(podium.runs()) == 1


def test_a_yaml_document_5000_levels_deep(podium: Podium) -> None:
    (podium.folder / "deep.yaml").write_text(
        "name: deep\ntasks:\n  a: {agent: echo, with: {x: " + "[" * 5000 + "]" * 5000
        + "}}\n", encoding="utf-8")
    done = podium("run", "deep.yaml")
    assert done.returncode == 2
    assert the_error(done) == ("error: deep.yaml:3: not valid YAML: nested more than 100 "
                               "levels deep")
    assert len(podium.runs()) == 1


@pytest.mark.parametrize("depth", [975, 5000])
def test_a_json_input_nested_too_deep(podium: Podium, depth: int) -> None:
    done = podium("run", "inputs.yaml", "-i", "s=a", "-i", "x=" + "[" * depth + "]" * depth)
    assert done.returncode == 2
    assert the_error(done).startswith("error: inputs.yaml: inputs.x: ")
    assert the_error(done).endswith("nested more than 100 levels deep")
    assert len(podium.runs()) == 1


def test_approval_data_nested_too_deep(podium: Podium) -> None:
    (podium.folder / "ask.yaml").write_text(HUMAN, encoding="utf-8")
    waiting = podium("run", "ask.yaml", "--no-input")
    assert waiting.returncode == 3, waiting.stderr
    run_id = podium.runs()[0]["run_id"]
    done = podium("approve", run_id, "ok", "--data", "[" * 975 + "]" * 975)
    assert done.returncode == 2
    assert the_error(done) == "error: --data is nested more than 100 levels deep"
    assert podium.runs()[0]["status"] == "waiting"


# -- a full disk --------------------------------------------------------------------------

CHAIN = "name: chain\nagents:\n  big: {function: \"agents:big\"}\ntasks:\n" + "".join(
    f"  t{i}: {{agent: big{f', needs: [t{i - 1}]' if i else ''}}}\n" for i in range(12))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (needs root: mounting is the only real full disk)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_stops_the_run_resumably(podium: Podium, small_disk: Path) -> None:
    disk = Podium(podium.folder, small_disk / "home")
    (podium.folder / "chain.yaml").write_text(CHAIN, encoding="utf-8")

    done = disk("run", "chain.yaml")
    assert done.returncode == 1
    error = the_error(done)
    run_id = error.split("run '")[1].split("'")[0]
    assert error == (
        f"error: cannot write to the journal '{small_disk}/home/podium.db': database or "
        f"disk is full; run '{run_id}' stopped where it stood, everything journaled is "
        f"kept: free space (or make it writable), then `podium resume {run_id}`")

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    events = disk("runs", "show", run_id, "--json")
    record = json.loads(events.stdout)
    assert record["status"] == "running"  # not waiting for nobody, not failed
    assert record["waiting"] == []
    completed = [t["id"] for t in record["tasks"] if t["status"] == "completed"]
    assert 0 < len(completed) < 12

    resumed = disk("resume", run_id, "--json")
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads(resumed.stdout)
    assert final["status"] == "completed"
    assert len(final["outputs"]) == 12
    assert all(final["outputs"][t] == record["outputs"][t] for t in completed)
