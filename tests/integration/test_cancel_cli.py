"""`podium cancel` across processes: a run a live `podium run` executes is cancelled in the
journal at once and its process stops at its next step (the downstream tasks never run);
a waiting run is cancelled on the spot; under an access policy `podium cancel` needs
`workflow:cancel`, `podium runs show` and `runs list` need `workflow:view`, and each is
audited, denials too."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.server.access import os_user
from tests.integration.test_human_wait import PODIUM, BusyOwner, Podium

POLICY = f"""\
roles:
  author:
    workflows: {{review: [run, view]}}
    agents: ["*"]
  operator:
    workflows: {{"*": [view, cancel]}}
    audit: [verify, export]
  tester:
    act_as: ["*"]
principals:
  ann: [author]
  ops: [operator]
  eve: []
  {os_user()}: [tester]
"""
"""The OS user (`tester`) runs the commands as ann, ops and eve ($PODIUM_PRINCIPAL)."""


@pytest.fixture
def busy(tmp_path: Path) -> Iterator[BusyOwner]:
    owner = BusyOwner(tmp_path)
    try:
        yield owner
    finally:
        owner.stop()


def test_a_run_a_live_process_executes_stops_at_its_next_step(busy: BusyOwner) -> None:
    run_id = busy.wait_until_waiting()  # `slow` is at work, `review` waits

    done = busy.podium("cancel", run_id, "--reason", "wrong topic")
    assert done.returncode == 0, done.stderr
    assert f"cancelled · run {run_id}" in done.stderr
    assert "stops at its next step" in done.stderr
    code, record = busy.finish()  # `slow` finishes; its process may journal nothing more

    assert code == 1, record
    assert record["status"] == "cancelled"
    assert record["error"].endswith(": wrong topic")
    assert busy.podium.effects_by_task()["publish"] == 0
    types = [t for t, _, _ in busy.podium.journal(run_id)]
    assert types[-1] == "run_cancelled"
    assert "task_completed" not in types[types.index("run_cancelled"):]
    late = busy.podium("approve", run_id, "review")
    assert late.returncode == 2 and "is cancelled" in late.stderr
    again = busy.podium("cancel", run_id)
    assert again.returncode == 2 and "already was cancelled" in again.stderr
    verified = busy.podium("audit", "verify")
    assert verified.returncode == 0, verified.stdout


class Users:
    """`podium` as one user or another, under POLICY."""

    def __init__(self, tmp_path: Path) -> None:
        self.podium = Podium(tmp_path)
        self.policy = tmp_path / "policy.yaml"
        self.policy.write_text(POLICY, encoding="utf-8")

    def __call__(self, user: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PODIUM_AUDIT", "PODIUM_DB")}
        return subprocess.run(
            [str(PODIUM), *args], cwd=self.podium.workflow.parent, capture_output=True,
            text=True, timeout=60, env={**env, "PODIUM_HOME": str(self.podium.home),
                                        "PODIUM_PRINCIPAL": user,
                                        "PODIUM_POLICY": str(self.policy)})


def test_view_list_and_cancel_under_a_policy(tmp_path: Path) -> None:
    users = Users(tmp_path)
    workflow = str(users.podium.workflow)
    started = subprocess.run(
        [str(PODIUM), "run", workflow, "--json", "--no-input", "-i", "topic=x",
         "-i", f"effects={users.podium.effects}"],
        cwd=Path(__file__).parent / "crash_workflow", capture_output=True, text=True,
        timeout=60, env={**os.environ, "PODIUM_HOME": str(users.podium.home),
                         "PODIUM_PRINCIPAL": "ann", "PODIUM_POLICY": str(users.policy)})
    assert started.returncode == 3, started.stderr
    run_id = json.loads(started.stdout)["run_id"]

    assert [r["run_id"] for r in json.loads(users("ann", "runs", "list", "--json").stdout)
            ] == [run_id]
    assert json.loads(users("eve", "runs", "list", "--json").stdout) == []
    hidden = users("eve", "runs", "show", run_id)
    assert hidden.returncode == 2
    assert "user 'eve' (roles: none) may not view workflow 'review'" in hidden.stderr
    refused = users("ann", "cancel", run_id)
    assert refused.returncode == 2
    assert "may not cancel workflow 'review'; in" in refused.stderr
    assert "roles 'operator' may" in refused.stderr
    assert users("ann", "runs", "show", run_id, "--json").returncode == 0

    cancelled = users("ops", "cancel", run_id, "--reason", "duplicate", "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    record = json.loads(cancelled.stdout)
    assert record["status"] == "cancelled"
    assert record["error"] == "cancelled by 'ops': duplicate"

    exported = users("ops", "audit", "export")
    records = list(map(json.loads, exported.stdout.splitlines()))
    # Less the records of the OS user acting as ann, eve and ops, one a command.
    assert {r["actor"] for r in records if r["action"] == "principal.act_as"} == {os_user()}
    trail = [(r["actor"], r["action"], r["outcome"], r["detail"])
             for r in records if r["action"] != "principal.act_as"]
    assert trail == [
        ("ann", "run.start", "ok", "review"),
        ("ann", "run.list", "ok", "shown=1 hidden=0"),
        ("eve", "run.list", "ok", "shown=0 hidden=1"),
        ("eve", "policy.deny", "denied", "workflow:view"),
        ("ann", "policy.deny", "denied", "workflow:cancel"),
        ("ann", "run.view", "ok", ""),
        ("ops", "run.cancel", "ok", "was waiting")]
    assert "duplicate" not in exported.stdout  # free text stays in the journal
    verified = users("ops", "audit", "verify")
    assert verified.returncode == 0, verified.stdout
    # The 7 above, and the OS user acting as someone in each of the 9 commands.
    assert "OK: 16 records" in verified.stdout
