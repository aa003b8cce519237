"""The `podium` command's trust model, each call a process of its own: it acts as the OS
user (not `$USER`), acts as another only by the policy's leave (audited), cannot swap an
installed policy nor switch its audit log off, and loads Python code only from the
modules the policy allows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from podium.server.access import os_user

PODIUM = str(Path(sys.executable).with_name("podium"))
WORKFLOW = """\
name: hello
agents:
  greeter: {function: "steps:hello"}
tasks:
  hi: {agent: greeter}
"""
SHELL = """\
name: shell
agents:
  greeter: {function: "steps:hello"}
  sh:
    function: "os:system"
tasks:
  hi: {agent: greeter}
"""
STEPS = "def hello() -> str:\n    return 'hello'\n"
POLICY = f"""\
roles:
  runner: {{workflows: {{"*": [run, view]}}, agents: ["*"], audit: [verify, export]}}
  deputy: {{act_as: ["bot-*"]}}
principals:
  {os_user()}: [runner, deputy]
  bot-1: [runner]
functions:
  allow: ["steps"]
"""


class Podium:
    """`podium` in a folder of its own, with POLICY installed in its home."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.home = folder, folder / "home"
        self.home.mkdir()
        (self.home / "policy.yaml").write_text(POLICY, encoding="utf-8")
        (folder / "hello.yaml").write_text(WORKFLOW, encoding="utf-8")
        (folder / "shell.yaml").write_text(SHELL, encoding="utf-8")
        (folder / "steps.py").write_text(STEPS, encoding="utf-8")

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items()
                   if k not in ("PODIUM_POLICY", "PODIUM_AUDIT", "PODIUM_DB",
                                "PODIUM_PRINCIPAL")}
        return subprocess.run([PODIUM, *args], cwd=self.folder, capture_output=True,
                              text=True, timeout=120,
                              env={**environ, "PODIUM_HOME": str(self.home), **env})

    def audit(self) -> list[dict[str, Any]]:
        done = self("audit", "export")
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture
def podium(tmp_path: Path) -> Podium:
    return Podium(tmp_path)


def test_the_principal_is_the_os_user_and_acting_as_another_needs_leave(
        podium: Podium) -> None:
    me = os_user()
    own = podium("run", "hello.yaml", "--json", USER="ann", LOGNAME="ann")
    assert own.returncode == 0, own.stderr
    assert json.loads(own.stdout)["principal"]["id"] == me  # $USER is not trusted

    refused = podium("run", "hello.yaml", "--json", PODIUM_PRINCIPAL="ann")
    assert refused.returncode == 2
    assert "$PODIUM_PRINCIPAL names 'ann'" in refused.stderr
    assert "needs permission principal:act_as" in refused.stderr

    deputised = podium("run", "hello.yaml", "--json", PODIUM_PRINCIPAL="bot-1")
    assert deputised.returncode == 0, deputised.stderr
    assert json.loads(deputised.stdout)["principal"]["id"] == "bot-1"

    trail = [(r["actor"], r["action"], r["subject"], r["outcome"]) for r in podium.audit()]
    assert (me, "policy.deny", "ann", "denied") in trail
    assert (me, "principal.act_as", "bot-1", "ok") in trail
    assert ("bot-1", "run.start") in {(a, b) for a, b, _, _ in trail}


def test_an_installed_policy_cannot_be_swapped_nor_its_audit_switched_off(
        podium: Podium, tmp_path: Path) -> None:
    lax = tmp_path / "lax.yaml"
    lax.write_text("everyone: [all]\nroles: {all: {workflows: {'*': ['*']}}}\n",
                   encoding="utf-8")
    for swapped in (podium("run", "hello.yaml", "--policy", str(lax)),
                    podium("runs", "list", PODIUM_POLICY=str(lax)),
                    podium("memory", "list", "-n", "x", "--policy", str(lax))):
        assert swapped.returncode == 2
        assert "is installed and in force" in swapped.stderr
        assert "cannot replace it" in swapped.stderr
    # Naming the installed file itself is no swap.
    same = podium("run", "hello.yaml", "--policy", str(podium.home / "policy.yaml"))
    assert same.returncode == 0, same.stderr

    off = podium("run", "hello.yaml", PODIUM_AUDIT="off")
    assert off.returncode == 2
    assert "the audit log cannot be switched off" in off.stderr

    elsewhere = tmp_path / "elsewhere.db"
    moved = podium("run", "hello.yaml", "--json", PODIUM_AUDIT=str(elsewhere))
    assert moved.returncode == 0, moved.stderr
    redirects = [r for r in podium.audit() if r["action"] == "audit.redirect"]
    assert [(r["actor"], r["detail"]) for r in redirects] == [(os_user(), str(elsewhere))]


def test_functions_come_only_from_the_modules_the_policy_allows(podium: Podium) -> None:
    for command in ("validate", "run", "agents"):
        refused = podium(command, "shell.yaml")
        assert refused.returncode == 2, (command, refused.stderr)
        assert ("shell.yaml:5: agents.sh.function: 'os:system': module 'os' is not allowed "
                f"by the access policy '{podium.home / 'policy.yaml'}' (functions.allow: "
                "'steps')") in refused.stderr, (command, refused.stderr)
    assert podium("validate", "hello.yaml").returncode == 0
    listed = podium("runs", "list", "--json")
    assert [r["workflow"] for r in json.loads(listed.stdout)] == []  # nothing journaled


def test_memory_commands_act_for_the_principal_run_acts_for(podium: Podium) -> None:
    """One rule for the acting principal: `memory add` and `memory forget` act for whom
    `podium run` acts for (the OS user, not `$USER`; another only by the policy's leave)."""
    policy = podium.home / "policy.yaml"
    policy.write_text(POLICY.replace(
        "audit: [verify, export]}", "audit: [verify, export], memory: {'*': ['*']}, "
        "subjects: ['*']}"), encoding="utf-8")
    me = os_user()
    for env, expected in (({"USER": "ann", "LOGNAME": "ann"}, me),
                          ({"PODIUM_PRINCIPAL": "bot-1"}, "bot-1")):
        ran = podium("run", "hello.yaml", "--json", **env)
        assert ran.returncode == 0, ran.stderr
        added = podium("memory", "add", "x", "-n", "notes/a", "--subject", f"s-{expected}",
                       "--json", **env)
        assert added.returncode == 0, added.stderr
        erased = podium("memory", "forget", "--subject", f"s-{expected}", "--json", **env)
        assert erased.returncode == 0, erased.stderr
        audited = {r["seq"]: r["actor"] for r in podium.audit()
                   if r["action"] == "memory.erase"}
        assert [json.loads(ran.stdout)["principal"]["id"],
                json.loads(added.stdout)["source"],
                audited[json.loads(erased.stdout)["audit_seq"]]] == [
            expected, f"operator:{expected}", expected]
    for command in (["run", "hello.yaml"], ["memory", "forget", "--subject", "s-1"]):
        refused = podium(*command, PODIUM_PRINCIPAL="ann")
        assert refused.returncode == 2, refused.stderr
        assert "$PODIUM_PRINCIPAL names 'ann'" in refused.stderr
