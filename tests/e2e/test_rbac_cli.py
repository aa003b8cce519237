"""The `podium` command under an access policy: it acts as the local user, or as
`$PODIUM_PRINCIPAL` when the policy lets the OS user act as them (here the role `tester`),
finds the policy (`--policy`, `$PODIUM_POLICY`, `$PODIUM_HOME/policy.yaml`), refuses what
the policy does not allow with exit status 2 and an audit record, and `podium audit
verify` checks what the runs wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from podium.server.access import os_user

PODIUM = str(Path(sys.executable).with_name("podium"))

WORKFLOW = """\
name: review
agents:
  drafter: {function: "steps:draft"}
tasks:
  draft:
    agent: drafter
  check:
    agent: human
    needs: [draft]
    prompt: "Publish {{ outputs.draft }}?"
"""
STEPS = """\
def draft() -> str:
    return "the report"
"""
POLICY = f"""\
roles:
  author:
    workflows: {{review: [run, view]}}
    agents: [drafter]
  approver:
    workflows: {{"*": [approve]}}
  reader:
    workflows: {{"*": [view]}}
  tester:
    act_as: ["*"]
principals:
  ann: [author]
  bob: [approver]
  rita: [reader]
  {os_user()}: [tester]
"""


class Podium:
    """`podium` in a folder of its own, each call a new process, as a given user."""

    def __init__(self, tmp_path: Path) -> None:
        self.folder, self.home = tmp_path, tmp_path / "home"
        (tmp_path / "review.yaml").write_text(WORKFLOW, encoding="utf-8")
        (tmp_path / "steps.py").write_text(STEPS, encoding="utf-8")
        self.policy = tmp_path / "policy.yaml"
        self.policy.write_text(POLICY, encoding="utf-8")

    def __call__(self, user: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items()
                   if k not in ("PODIUM_POLICY", "PODIUM_AUDIT", "PODIUM_DB")}
        return subprocess.run([PODIUM, *args], cwd=self.folder, capture_output=True, text=True,
                              timeout=120, env={**environ, "PODIUM_HOME": str(self.home),
                                                "PODIUM_PRINCIPAL": user, **env})

    def audit(self) -> list[dict[str, Any]]:
        """The audit log, less the records of the OS user acting as the test's users."""
        done = self("ann", "audit", "export")
        assert done.returncode == 0, done.stderr
        records = [json.loads(line) for line in done.stdout.splitlines()]
        assert all(r["actor"] == os_user() for r in records if r["action"] == "principal.act_as")
        return [r for r in records if r["action"] != "principal.act_as"]


def test_run_and_approve_are_refused_without_the_permission(tmp_path: Path) -> None:
    podium = Podium(tmp_path)
    policy = ("--policy", str(podium.policy))

    refused = podium("rita", "run", "review.yaml", "--json", "--no-input", *policy)
    assert refused.returncode == 2, refused.stderr
    assert "user 'rita' (roles: reader) may not run workflow 'review'" in refused.stderr
    assert "roles 'author' may" in refused.stderr
    listed = podium("rita", "runs", "list", "--json")
    assert json.loads(listed.stdout) == []  # nothing journaled

    started = podium("ann", "run", "review.yaml", "--json", "--no-input", *policy)
    assert started.returncode == 3, started.stderr
    record = json.loads(started.stdout)
    assert record["principal"] == {"id": "ann", "kind": "user", "roles": ["author"]}
    run_id = record["run_id"]

    # The policy found through $PODIUM_POLICY this time.
    self_approval = podium("ann", "approve", run_id, "check", "--json",
                           PODIUM_POLICY=str(podium.policy))
    assert self_approval.returncode == 2
    assert "user 'ann' (roles: author) may not approve workflow 'review'" in (
        self_approval.stderr)

    # bob may approve, not run: the run goes on after his answer all the same.
    approved = podium("bob", "approve", run_id, "check", "--json",
                      PODIUM_POLICY=str(podium.policy))
    assert approved.returncode == 0, approved.stderr
    done = json.loads(approved.stdout)
    assert done["status"] == "completed"
    assert done["principal"]["id"] == "ann"

    trail = [(r["actor"], r["action"], r["outcome"]) for r in podium.audit()]
    assert trail == [
        ("rita", "policy.deny", "denied"), ("rita", "run.list", "ok"),
        ("ann", "run.start", "ok"),
        ("ann", "policy.deny", "denied"), ("bob", "task.approve", "ok"),
        ("ann", "run.end", "completed")]
    verified = podium("ann", "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The 6 above, and the OS user acting as someone in each of the 7 commands.
    assert "OK: 13 records" in verified.stdout


def test_the_policy_in_podium_home_applies_by_default(tmp_path: Path) -> None:
    podium = Podium(tmp_path)
    podium.home.mkdir()
    podium.policy.rename(podium.home / "policy.yaml")

    refused = podium("mallory", "run", "review.yaml", "--json", "--no-input")

    assert refused.returncode == 2
    assert "'mallory' is not listed under principals:" in refused.stderr


def test_without_a_policy_the_command_says_everything_is_allowed(tmp_path: Path) -> None:
    podium = Podium(tmp_path)
    podium.policy.unlink()

    started = podium("rita", "run", "review.yaml", "--json", "--no-input")

    assert started.returncode == 3, started.stderr
    assert started.stderr.count("every principal may do everything") == 1
    assert json.loads(started.stdout)["principal"]["id"] == "rita"


def test_an_invalid_policy_names_file_line_and_field(tmp_path: Path) -> None:
    podium = Podium(tmp_path)
    podium.policy.write_text(POLICY.replace("[approve]", "[approve, sign]"),
                             encoding="utf-8")

    refused = podium("bob", "run", "review.yaml", "--no-input", "--policy",
                     str(podium.policy))

    assert refused.returncode == 2
    assert f"{podium.policy}:6: roles.approver.workflows.*.1" in refused.stderr


def test_podium_audit_off_keeps_no_audit_log(tmp_path: Path) -> None:
    podium = Podium(tmp_path)

    started = podium("ann", "run", "review.yaml", "--json", "--no-input", "--policy",
                     str(podium.policy), PODIUM_AUDIT="off")

    assert started.returncode == 3, started.stderr
    assert podium.audit() == []
