"""Many runs on one journal at once: several `podium run` processes on one SQLite file,
many runs in one process on one `SQLiteStore`, and the lease that keeps a second process
off a run whose owner is alive."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from podium import Engine, InputSpec, RunState, SQLiteStore, Workflow
from tests.integration.test_crash import WORKFLOW, WORKFLOW_DIR, expected_keys, expected_outputs

PODIUM = Path(sys.executable).with_name("podium")
DEADLINE_S = 120.0


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "PODIUM_HOME": str(home)}


def _podium(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PODIUM), *args], cwd=WORKFLOW_DIR, capture_output=True,
                          text=True, env=_env(home), timeout=DEADLINE_S)


def _integrity(db: Path) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchall()


# -- several processes, one database -------------------------------------------------------


def test_parallel_processes_share_one_journal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    width = 10  # 22 tasks and 16 fan-out items per run
    procs = []
    for n in range(4):
        out, err = tmp_path / f"{n}.out", tmp_path / f"{n}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            procs.append(subprocess.Popen(
                [str(PODIUM), "run", str(WORKFLOW), "--json", "--no-input",
                 "-i", f"base={n}", "-i", f"width={width}", "-i", "sleep_ms=2",
                 "-i", f"effects={tmp_path / f'{n}.effects'}"],
                cwd=WORKFLOW_DIR, stdout=stdout, stderr=stderr, env=_env(home)))
    for proc in procs:
        proc.wait(timeout=DEADLINE_S)

    run_ids = []
    for n, proc in enumerate(procs):
        stderr = (tmp_path / f"{n}.err").read_text()
        assert "locked" not in stderr, stderr
        assert proc.returncode == 0, stderr
        record = json.loads((tmp_path / f"{n}.out").read_text())
        assert record["status"] == "completed"
        assert record["outputs"] == expected_outputs({"base": n, "width": width})
        run_ids.append(record["run_id"])
        keys, fan_outs = expected_keys({"base": n, "width": width})
        lines = (tmp_path / f"{n}.effects").read_text().splitlines()
        ran = Counter(json.loads(line)[0] for line in lines)
        assert ran == Counter(dict.fromkeys(keys - fan_outs, 1)), "each task ran once"

    listed = _podium("runs", "list", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["run_id"] for r in rows) == sorted(run_ids)
    assert {r["status"] for r in rows} == {"completed"}
    assert _integrity(home / "podium.db") == [("ok",)]


# -- many runs, one process ----------------------------------------------------------------


def _fan_workflow() -> Workflow:
    workflow = Workflow("fan", inputs={"n": InputSpec(type="integer")})

    @workflow.task()
    def numbers(n: int) -> list[int]:
        return list(range(n))

    def square(item: int) -> int:
        return item * item

    async def cube(item: int) -> int:
        await asyncio.sleep(0)
        return item ** 3

    workflow.add_task("square", agent=square, needs=["numbers"],
                      for_each="{{ outputs.numbers }}", concurrency=3)
    workflow.add_task("cube", agent=cube, needs=["numbers"], for_each="{{ outputs.numbers }}")

    @workflow.task(needs=["square", "cube"])
    async def total(square: list[int], cube: list[int]) -> int:
        return sum(square) + sum(cube)

    return workflow


@pytest.mark.parametrize("engines", ["one engine", "an engine per run"])
async def test_concurrent_runs_in_one_process(tmp_path: Path, engines: str) -> None:
    workflow = _fan_workflow()
    store = SQLiteStore(tmp_path / "podium.db")
    try:
        shared = Engine(store)

        def engine() -> Engine:
            return shared if engines == "one engine" else Engine(store)

        states: list[RunState] = await asyncio.gather(
            *(engine().start(workflow, {"n": n}) for n in range(3, 13)))
        assert [s.status for s in states] == ["completed"] * 10
        for n, state in zip(range(3, 13), states, strict=True):
            assert state.outputs()["total"] == sum(i * i + i ** 3 for i in range(n))
            events = await store.events(state.run_id)
            completed = Counter(e.task for e in events if e.type == "task_completed")
            assert set(completed.values()) == {1}
            assert len(completed) == 4 + 2 * n
        summaries = await store.runs(limit=20)
        assert len(summaries) == 10
        assert {s.status for s in summaries} == {"completed"}
        assert len({s.run_id for s in summaries}) == 10
    finally:
        await store.close()
    assert _integrity(tmp_path / "podium.db") == [("ok",)]


# -- the lease ----------------------------------------------------------------------------

GATED = """\
name: gated
inputs:
  gate: {type: string}
  effects: {type: string}
agents:
  holder: {function: "agents:hold"}
  drafter: {function: "agents:draft"}
tasks:
  held:
    agent: holder
  after:
    agent: drafter
    needs: [held]
    with: {topic: "{{ outputs.held }}"}
"""


def test_resume_of_a_run_whose_owner_is_alive_is_refused(tmp_path: Path) -> None:
    home, gate, effects = tmp_path / "home", tmp_path / "gate", tmp_path / "effects.log"
    workflow = tmp_path / "gated.yaml"
    workflow.write_text(GATED)
    with (tmp_path / "run.out").open("wb") as out, (tmp_path / "run.err").open("wb") as err:
        owner = subprocess.Popen(
            [str(PODIUM), "run", str(workflow), "--json", "--no-input",
             "-i", f"gate={gate}", "-i", f"effects={effects}"],
            cwd=WORKFLOW_DIR, stdout=out, stderr=err, env=_env(home))
    try:
        # The agent has started (and blocks on the gate) once its effect line is there.
        deadline = os.times().elapsed + DEADLINE_S
        while not (effects.exists() and effects.read_text().endswith("\n")):
            try:
                owner.wait(timeout=0.01)
            except subprocess.TimeoutExpired:
                assert os.times().elapsed < deadline, "the held task never started"
            else:
                pytest.fail(f"podium run exited {owner.returncode}: "
                            f"{(tmp_path / 'run.err').read_text()}")
        ((run_id, status),) = [(r["run_id"], r["status"]) for r in json.loads(
            _podium("runs", "list", "--json", home=home).stdout)]
        assert status == "running"
        events_before = _events(home, run_id)

        for args in (["resume", run_id], ["resume", run_id, "--json"]):
            refused = _podium(*args, home=home)
            assert refused.returncode == 2, (refused.stdout, refused.stderr)
            message = " ".join(refused.stderr.split())
            assert f"run {run_id!r} is being executed by process {owner.pid}" in message
            assert refused.stdout == ""
        # The refused resumes wrote nothing, took nothing, and ran nothing.
        assert _events(home, run_id) == events_before
        assert _owner_pid(home, run_id) == owner.pid
        assert owner.poll() is None

        gate.touch()
        assert owner.wait(timeout=DEADLINE_S) == 0, (tmp_path / "run.err").read_text()
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    record = json.loads((tmp_path / "run.out").read_text())
    assert record["status"] == "completed"
    assert record["outputs"]["held"] == "released"
    assert record["outputs"]["after"]["title"] == "Report on released"
    lines = [json.loads(line) for line in effects.read_text().splitlines()]
    assert [(key, pid) for key, _, _, pid in lines] == [("held", owner.pid),
                                                        ("after", owner.pid)]
    assert not any(e[0] == "run_resumed" for e in _events(home, run_id))


def _events(home: Path, run_id: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(home / "podium.db")) as conn:
        return conn.execute("SELECT seq, type, task FROM events WHERE run_id = ?"
                            " ORDER BY seq", (run_id,)).fetchall()


def _owner_pid(home: Path, run_id: str) -> int | None:
    with closing(sqlite3.connect(home / "podium.db")) as conn:
        (pid,) = conn.execute("SELECT owner_pid FROM runs WHERE run_id = ?",
                              (run_id,)).fetchone()
    return pid
