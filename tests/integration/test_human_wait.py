"""A run waiting for a human, across processes, through the `podium` command.

`podium run` stops at the human task with exit status 3 and ends its process; the waiting
run lives on in the journal, and a new process answers it: `podium approve` (its data
becomes the task's output and the downstream tasks run) or `podium reject` (the task's
policy decides: its `default:` completes the run, marked `defaulted`; without one the run
fails). Answering a task that is not waiting is refused with exit status 2.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

AGENTS_DIR = Path(__file__).resolve().parent / "crash_workflow"
PODIUM = Path(sys.executable).with_name("podium")

WORKFLOW = """\
name: review
inputs:
  topic: {{type: string}}
  effects: {{type: string}}
agents:
  drafter: {{function: "agents:draft"}}
  publisher: {{function: "agents:publish"}}
tasks:
  draft:
    agent: drafter
  review:
    agent: human
    needs: [draft]
    prompt: "Publish '{{{{ outputs.draft.title }}}}' ({{{{ outputs.draft.words }}}} words)?"
{default}
  publish:
    agent: publisher
    needs: [draft, review]
"""
DEFAULT = '    default: {ok: false, note: "nobody reviewed it"}'
PROMPT = "Publish 'Report on durable runs' (200 words)?"


class Podium:
    """The `podium` command against one journal, each call a new process."""

    def __init__(self, tmp_path: Path, *, default: bool = False) -> None:
        self.home = tmp_path / "home"
        self.effects = tmp_path / "effects.log"
        self.workflow = tmp_path / "review.yaml"
        self.workflow.write_text(WORKFLOW.format(default=DEFAULT if default else ""))

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        # cwd: the workflow's `agents:` module lives there.
        return subprocess.run([str(PODIUM), *args], cwd=AGENTS_DIR, capture_output=True,
                              text=True, env={**os.environ, "PODIUM_HOME": str(self.home)},
                              timeout=60)

    def record(self, *args: str) -> tuple[int, dict[str, Any]]:
        done = self(*args)
        try:
            return done.returncode, json.loads(done.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"podium {' '.join(args)} printed no JSON (exit {done.returncode}):"
                        f"\nstdout: {done.stdout}\nstderr: {done.stderr}")

    def start(self) -> dict[str, Any]:
        """`podium run` up to the human task: exit 3, the run waiting."""
        code, record = self.record("run", str(self.workflow), "--json", "--no-input",
                                   "-i", "topic=durable runs", "-i", f"effects={self.effects}")
        assert code == 3, record
        assert record["status"] == "waiting"
        return record

    def effects_by_task(self) -> Counter[str]:
        lines = self.effects.read_text().splitlines() if self.effects.exists() else []
        return Counter(json.loads(line)[0] for line in lines)

    def journal(self, run_id: str) -> list[tuple[str, str | None, dict[str, Any]]]:
        with closing(sqlite3.connect(self.home / "podium.db")) as conn:
            rows = conn.execute("SELECT type, task, data FROM events WHERE run_id = ?"
                                " ORDER BY seq", (run_id,)).fetchall()
        return [(t, k, json.loads(d)) for t, k, d in rows]

    def owner(self, run_id: str) -> tuple[Any, ...]:
        with closing(sqlite3.connect(self.home / "podium.db")) as conn:
            row = conn.execute("SELECT owner, owner_pid, lease_until FROM runs"
                               " WHERE run_id = ?", (run_id,)).fetchone()
        return tuple(row)


def _task(record: dict[str, Any], key: str) -> dict[str, Any]:
    (task,) = [t for t in record["tasks"] if t["id"] == key]
    return task


@pytest.fixture
def podium(tmp_path: Path) -> Podium:
    return Podium(tmp_path)


def test_the_waiting_run_outlives_its_process(podium: Podium) -> None:
    record = podium.start()
    run_id = record["run_id"]
    assert record["waiting"] == ["review"]
    assert _task(record, "review")["prompt"] == PROMPT
    assert "publish" not in record["outputs"]
    assert podium.effects_by_task() == Counter({"draft": 1})
    # The process is gone and holds nothing: the lease was given back.
    assert podium.owner(run_id) == (None, None, None)

    shown = podium("runs", "show", run_id, "--json")
    assert shown.returncode == 0, shown.stderr
    fresh = json.loads(shown.stdout)
    assert fresh["status"] == "waiting"
    assert fresh["waiting"] == ["review"]
    review = _task(fresh, "review")
    assert (review["status"], review["prompt"], review["wait_reason"]) == (
        "waiting", PROMPT, "approval")
    assert fresh["outputs"] == {"draft": {"title": "Report on durable runs", "words": 200}}

    listed = podium("runs", "list", "--json")
    assert [(r["run_id"], r["status"]) for r in json.loads(listed.stdout)] == [
        (run_id, "waiting")]
    text = podium("runs", "show", run_id)
    assert text.returncode == 0 and "waiting" in text.stdout


def test_approval_from_a_new_process_completes_the_run(podium: Podium) -> None:
    run_id = podium.start()["run_id"]
    code, record = podium.record("approve", run_id, "review", "--data", '{"ok": true}',
                                 "--json")
    assert code == 0, record
    assert record["status"] == "completed"
    assert record["outputs"]["review"] == {"ok": True}
    assert record["outputs"]["publish"] == {"published": "Report on durable runs",
                                            "review": {"ok": True}}
    review = _task(record, "review")
    assert (review["agent"], review["defaulted"]) == ("human", False)
    # The draft ran before the wait and not again; publish ran once, after the approval.
    assert podium.effects_by_task() == Counter({"draft": 1, "publish": 1})
    types = [(t, k) for t, k, _ in podium.journal(run_id)]
    assert types.index(("task_approved", "review")) < types.index(("task_started", "publish"))
    approved = [d for t, _, d in podium.journal(run_id) if t == "task_approved"]
    assert approved == [{"data": {"ok": True}, "by": approved[0]["by"]}]

    shown = json.loads(podium("runs", "show", run_id, "--json").stdout)
    assert shown["status"] == "completed"
    assert shown["outputs"] == record["outputs"]


def test_approval_without_data_records_approved(podium: Podium) -> None:
    run_id = podium.start()["run_id"]
    code, record = podium.record("approve", run_id, "review", "--json")
    assert code == 0, record
    assert record["outputs"]["review"] == {"approved": True}


def test_rejection_with_a_default_completes_with_the_default(tmp_path: Path) -> None:
    podium = Podium(tmp_path, default=True)
    run_id = podium.start()["run_id"]
    code, record = podium.record("reject", run_id, "review", "--reason", "too long", "--json")
    assert code == 0, record
    assert record["status"] == "completed"
    default = {"ok": False, "note": "nobody reviewed it"}
    review = _task(record, "review")
    assert (review["status"], review["defaulted"]) == ("completed", True)
    assert record["outputs"]["review"] == default
    assert record["outputs"]["publish"] == {"published": "Report on durable runs",
                                            "review": default}
    assert any(h.get("reason") == "too long" for h in review["history"]), review["history"]
    assert podium.effects_by_task() == Counter({"draft": 1, "publish": 1})


def test_rejection_without_a_default_fails_the_run(podium: Podium) -> None:
    run_id = podium.start()["run_id"]
    done = podium("reject", run_id, "review", "--reason", "wrong numbers")
    assert done.returncode == 1, done.stderr
    assert "wrong numbers" in done.stderr
    record = json.loads(podium("runs", "show", run_id, "--json").stdout)
    assert record["status"] == "failed"
    review = _task(record, "review")
    assert review["status"] == "failed"
    assert "rejected" in review["error"] and "wrong numbers" in review["error"]
    assert "publish" not in record["outputs"]
    assert podium.effects_by_task() == Counter({"draft": 1})


@pytest.mark.parametrize(("task", "why"), [
    ("draft", "it is completed"),
    ("publish", "it is"),
    ("nope", "not a task of this run"),
])
def test_answering_a_task_that_is_not_waiting_is_refused(podium: Podium, task: str,
                                                        why: str) -> None:
    run_id = podium.start()["run_id"]
    events = len(podium.journal(run_id))
    done = podium("approve", run_id, task, "--data", '{"ok": true}', "--json")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    message = " ".join(done.stderr.split())
    assert f"task {task!r} of run {run_id!r} is not waiting for a human" in message
    assert why in message
    assert "waiting: 'review'" in message
    # Nothing was journaled, and the run still waits for the real answer.
    assert len(podium.journal(run_id)) == events
    assert json.loads(podium("runs", "show", run_id, "--json").stdout)["status"] == "waiting"


def test_answering_twice_is_refused(podium: Podium) -> None:
    run_id = podium.start()["run_id"]
    assert podium("approve", run_id, "review", "--json").returncode == 0
    again = podium("reject", run_id, "review", "--reason", "changed my mind")
    assert again.returncode == 2
    assert "is not waiting for a human (it is completed)" in " ".join(again.stderr.split())
    record = json.loads(podium("runs", "show", run_id, "--json").stdout)
    assert record["status"] == "completed"
    assert record["outputs"]["review"] == {"approved": True}


def test_bad_answers_are_refused_and_lose_nothing(podium: Podium) -> None:
    run_id = podium.start()["run_id"]
    events = len(podium.journal(run_id))
    bad_json = podium("approve", run_id, "review", "--data", "{ok: yes")
    assert bad_json.returncode == 2
    assert "--data is not valid JSON" in bad_json.stderr
    unknown = podium("approve", "no-such-run", "review")
    assert unknown.returncode == 2
    assert "no run 'no-such-run'" in unknown.stderr
    assert len(podium.journal(run_id)) == events
    code, record = podium.record("approve", run_id, "review", "--data", "[1, 2]", "--json")
    assert code == 0
    assert record["outputs"]["review"] == [1, 2]


# -- an answer while the run's owner is still at work ------------------------------------

PARALLEL = """\
name: review-while-busy
inputs:
  topic: {type: string}
  gate: {type: string}
  effects: {type: string}
agents:
  drafter: {function: "agents:draft"}
  holder: {function: "agents:hold"}
  publisher: {function: "agents:publish"}
tasks:
  draft:
    agent: drafter
  slow:
    agent: holder
  review:
    agent: human
    needs: [draft]
    prompt: "Publish {{ outputs.draft.title }}?"
  publish:
    agent: publisher
    needs: [draft, review, slow]
"""


class BusyOwner:
    """`podium run` of PARALLEL, held at work by its `slow` task while `review` waits."""

    def __init__(self, tmp_path: Path) -> None:
        self.podium = Podium(tmp_path)
        self.gate, self.out, self.err = (tmp_path / n for n in ("gate", "run.out", "run.err"))
        self.podium.workflow.write_text(PARALLEL)
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [str(PODIUM), "run", str(self.podium.workflow), "--json", "--no-input",
                 "-i", "topic=leases", "-i", f"gate={self.gate}",
                 "-i", f"effects={self.podium.effects}"],
                cwd=AGENTS_DIR, stdout=out, stderr=err,
                env={**os.environ, "PODIUM_HOME": str(self.podium.home)})

    def wait_until_waiting(self) -> str:
        """The run id, once `slow` is in flight and `review` waits."""
        deadline = os.times().elapsed + 60
        while True:
            listed = json.loads(self.podium("runs", "list", "--json").stdout)
            if listed:
                record = json.loads(self.podium("runs", "show", listed[0]["run_id"],
                                                "--json").stdout)
                if record["waiting"] == ["review"] and self.podium.effects_by_task()["slow"]:
                    assert record["status"] == "running"
                    return str(record["run_id"])
            if self.proc.poll() is not None:
                pytest.fail(f"podium run exited {self.proc.returncode}: {self.err.read_text()}")
            assert os.times().elapsed < deadline, "the run never got to wait"

    def finish(self) -> tuple[int, dict[str, Any]]:
        self.gate.touch()
        code = self.proc.wait(timeout=60)
        return code, json.loads(self.out.read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def busy_owner(tmp_path: Path) -> Iterator[BusyOwner]:
    owner = BusyOwner(tmp_path)
    try:
        yield owner
    finally:
        owner.stop()


def test_an_approval_reaches_the_live_owner(busy_owner: BusyOwner) -> None:
    run_id = busy_owner.wait_until_waiting()
    answer = busy_owner.podium("approve", run_id, "review", "--data", '{"ok": true}')
    message = " ".join(answer.stderr.split())
    assert f"recorded; run {run_id!r} is being executed by process {busy_owner.proc.pid}" \
        in message
    # The owner acts on the approval once its other work is done.
    code, record = busy_owner.finish()
    assert code == 0, busy_owner.err.read_text()
    assert record["status"] == "completed"
    assert record["outputs"]["review"] == {"ok": True}
    assert record["outputs"]["publish"]["review"] == {"ok": True}
    assert busy_owner.podium.effects_by_task() == Counter({"draft": 1, "slow": 1,
                                                           "publish": 1})


def test_an_approval_handed_to_the_live_owner_exits_0(busy_owner: BusyOwner) -> None:
    run_id = busy_owner.wait_until_waiting()
    answer = busy_owner.podium("approve", run_id, "review")
    assert "recorded" in answer.stderr
    assert answer.returncode == 0


# -- a crash after the approval ------------------------------------------------------------

SHIP = """\
name: review-then-ship
inputs:
  topic: {type: string}
  gate: {type: string}
  effects: {type: string}
agents:
  drafter: {function: "agents:draft"}
  holder: {function: "agents:hold"}
tasks:
  draft:
    agent: drafter
  review:
    agent: human
    needs: [draft]
  ship:
    agent: holder
    needs: [review]
"""


def test_an_approval_survives_a_crash_of_the_process_acting_on_it(tmp_path: Path) -> None:
    podium = Podium(tmp_path)
    podium.workflow.write_text(SHIP)
    gate = tmp_path / "gate"
    code, record = podium.record("run", str(podium.workflow), "--json", "--no-input",
                                 "-i", "topic=ships", "-i", f"gate={gate}",
                                 "-i", f"effects={podium.effects}")
    assert (code, record["waiting"]) == (3, ["review"])
    run_id = record["run_id"]

    approver = subprocess.Popen(
        [str(PODIUM), "approve", run_id, "review", "--data", '{"ok": "ship it"}', "--json"],
        cwd=AGENTS_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PODIUM_HOME": str(podium.home)})
    try:
        # `ship` blocks on the gate once it has started: kill the approver right there.
        deadline = os.times().elapsed + 60
        while not podium.effects_by_task()["ship"]:
            try:
                approver.wait(timeout=0.01)
            except subprocess.TimeoutExpired:
                assert os.times().elapsed < deadline, "ship never started"
            else:
                pytest.fail(f"podium approve exited {approver.returncode} before the kill")
    finally:
        approver.kill()
        approver.wait()
    assert approver.returncode == -9

    # The approval and the completed review are in the journal; only `ship` is in flight.
    events = [(t, k) for t, k, _ in podium.journal(run_id)]
    assert ("task_approved", "review") in events
    assert ("task_completed", "review") in events
    assert ("task_completed", "ship") not in events
    again = podium("approve", run_id, "review")
    assert again.returncode == 2
    assert "not waiting for a human (it is completed)" in " ".join(again.stderr.split())

    gate.touch()
    code, record = podium.record("resume", run_id, "--json")
    assert code == 0, record
    assert record["status"] == "completed"
    assert record["outputs"]["review"] == {"ok": "ship it"}
    assert record["outputs"]["ship"] == "released"
    lines = [json.loads(line) for line in podium.effects.read_text().splitlines()]
    ship = [line for line in lines if line[0] == "ship"]
    assert [key for _, key, _, _ in ship] == [f"{run_id}:ship"] * 2
    assert ship[0][3] == approver.pid and ship[1][3] != approver.pid
    assert podium.effects_by_task()["draft"] == 1
    assert [t for t, k, _ in podium.journal(run_id)].count("task_approved") == 1
