"""Every `podium` command x every role, through the real command (its click application,
in this process, for speed), with a real policy file installed in `$PODIUM_HOME/policy.yaml`,
real journals, memory and audit log: each cell is allowed or refused exactly as `MAY`, an
independent statement of what each role may do, says.

The list of commands comes from the command itself, so a command added without a row in
`MAY` fails `test_every_command_has_a_row`. A refusal exits 2, names the permission it
needs, and is in the audit log as `policy.deny`; an allowed cell exits as the command does
when it is allowed (`OK`).
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from podium.cli import app
from podium.core.principal import Principal
from podium.engine.runtime import Engine
from podium.memory.sqlite import SQLiteMemoryStore
from podium.security.audit import AuditLog
from podium.security.tokens import TokenStore
from podium.server.access import os_user
from podium.store.sqlite import SQLiteStore
from podium.yaml import load_workflow

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = """\
name: review
agents:
  drafter: {function: "steps:draft"}
tasks:
  draft: {agent: drafter}
  check: {agent: human, needs: [draft], prompt: "Publish {{ outputs.draft }}?"}
"""
STEPS = "def draft() -> str:\n    return 'the report'\n"
ROLES: dict[str, dict[str, Any]] = {
    "nobody": {},
    "reader": {"workflows": {"*": ["view"]}, "memory": {"notes/*": ["read"]}},
    "author": {"workflows": {"review": ["run", "view"]}, "agents": ["*"],
               "memory": {"notes/*": ["read", "write"]}},
    "steward": {"workflows": {"*": ["approve", "cancel"]}, "agents": ["*"],
                "memory": {"notes/*": ["write", "forget", "trust"]}, "subjects": ["*"]},
    "operator": {"workflows": {"*": ["serve"]}, "keys": ["status", "manage"],
                 "audit": ["verify", "export"], "tokens": {"*": ["issue", "revoke"]}},
    "admin": {"workflows": {"*": ["*"]}, "agents": ["*"], "memory": {"*": ["*"]},
              "subjects": ["*"], "keys": ["*"], "audit": ["*"], "tokens": {"*": ["*"]}},
}
"""The roles of the policy file; each role's principal is `ROLE-user`."""
EVERYONE = frozenset(ROLES)
MAY: dict[str, tuple[frozenset[str], str | None]] = {
    # row: (the roles that may, the permission a refusal names)
    "run": (frozenset({"author", "admin"}), "workflow:run"),
    "resume": (frozenset({"author", "admin"}), "workflow:run"),
    "approve": (frozenset({"steward", "admin"}), "workflow:approve"),
    "reject": (frozenset({"steward", "admin"}), "workflow:approve"),
    "cancel": (frozenset({"steward", "admin"}), "workflow:cancel"),
    "validate": (EVERYONE, None),
    "agents": (EVERYONE, None),
    "runs list": (EVERYONE, None),  # shows only the runs the principal may view
    "runs show": (frozenset({"reader", "author", "admin"}), "workflow:view"),
    "keys init": (frozenset({"operator", "admin"}), "keys:manage"),
    "keys status": (frozenset({"operator", "admin"}), "keys:status"),
    "keys rotate": (frozenset({"operator", "admin"}), "keys:manage"),
    "memory add": (frozenset({"author", "steward", "admin"}), "memory:write"),
    "memory add --trusted": (frozenset({"steward", "admin"}), None),
    "memory search": (frozenset({"reader", "author", "admin"}), "memory:read"),
    "memory list": (frozenset({"reader", "author", "admin"}), "memory:read"),
    "memory forget": (frozenset({"steward", "admin"}), "memory:forget"),
    "memory forget --subject": (frozenset({"steward", "admin"}), "subject:erase"),
    "memory promote": (frozenset({"steward", "admin"}), "memory:trust"),
    "audit verify": (frozenset({"operator", "admin"}), "audit:verify"),
    "audit export": (frozenset({"operator", "admin"}), "audit:export"),
    "mcp serve": (frozenset({"operator", "admin"}), "workflow:serve"),
    "tokens issue": (frozenset({"operator", "admin"}), "token:issue"),
    "tokens list": (EVERYONE, None),  # shows only the tokens the principal may revoke
    "tokens revoke": (frozenset({"operator", "admin"}), "token:revoke"),
}
"""What each role may do, stated independently of the code."""
OK = {"run": 3, "resume": 3, "reject": 1, "keys rotate": 2}
"""Exit status of an allowed cell, when not 0: a run waits for its approval, a rejected one
fails, and there is no master key to rotate."""


def cli_commands() -> list[str]:
    """Every command of `podium`, as typed (`memory add`), read from the command itself."""
    def walk(command: Any, prefix: str) -> Iterator[str]:
        # Typer carries its own copy of click: a group is what has subcommands.
        if getattr(command, "commands", None):
            for name, sub in command.commands.items():
                yield from walk(sub, f"{prefix} {name}".strip())
        else:
            yield prefix

    return sorted(walk(typer.main.get_command(app), ""))


@dataclass
class Home:
    """A Podium home with the policy installed, and fixtures each cell may consume."""

    folder: Path

    @property
    def home(self) -> Path:
        return self.folder / "home"

    def waiting_run(self) -> str:
        """A new run of `review`, started by `author-user`, waiting for its approval."""
        async def start() -> str:
            store = SQLiteStore(self.home / "podium.db")
            try:
                state = await Engine(store).start(
                    load_workflow(self.folder / "review.yaml"),
                    principal=Principal(id="author-user", roles=frozenset({"author"})))
                return state.run_id
            finally:
                await store.close()

        return asyncio.run(start())

    def memory(self) -> str:
        """A new untrusted memory in `notes/a`; its id."""
        async def add() -> str:
            store = SQLiteMemoryStore(self.home / "memory.db")
            try:
                return (await store.add("notes/a", "Ada likes tea.", source="operator:x",
                                        subject="s-1")).id
            finally:
                await store.close()

        return asyncio.run(add())

    def token(self) -> str:
        return TokenStore(self.home / "tokens.db").issue("bot", by="test")[0].id

    def args(self, row: str) -> list[str]:
        """The command line of a row, with the fixtures it needs made now."""
        made: dict[str, Callable[[], list[str]]] = {
            "run": lambda: ["run", "review.yaml", "--no-input", "--json"],
            "resume": lambda: ["resume", self.waiting_run(), "--json"],
            "approve": lambda: ["approve", self.waiting_run(), "check", "--json"],
            "reject": lambda: ["reject", self.waiting_run(), "check", "--json"],
            "cancel": lambda: ["cancel", self.waiting_run(), "--json"],
            "validate": lambda: ["validate", "review.yaml"],
            "agents": lambda: ["agents", "review.yaml", "--json"],
            "runs list": lambda: ["runs", "list", "--json"],
            "runs show": lambda: ["runs", "show", self.waiting_run(), "--json"],
            "keys init": lambda: ["keys", "init", "--out",
                                  str(self.folder / f"key-{len(list(self.folder.iterdir()))}")],
            "keys status": lambda: ["keys", "status", "--json"],
            "keys rotate": lambda: ["keys", "rotate"],
            "memory add": lambda: ["memory", "add", "Bob likes coffee.", "-n", "notes/a",
                                   "--json"],
            "memory add --trusted": lambda: ["memory", "add", "Cy likes milk.", "-n",
                                             "notes/a", "--trusted", "--json"],
            "memory search": lambda: ["memory", "search", "tea", "-n", "notes/a", "--json"],
            "memory list": lambda: ["memory", "list", "-n", "notes/a", "--json"],
            "memory forget": lambda: ["memory", "forget", self.memory(), "-n", "notes/a",
                                      "--json"],
            "memory forget --subject": lambda: ["memory", "forget", "--subject", "s-1",
                                                "--json"],
            "memory promote": lambda: ["memory", "promote", self.memory(), "-n", "notes/a",
                                       "--json"],
            "audit verify": lambda: ["audit", "verify"],
            "audit export": lambda: ["audit", "export"],
            "mcp serve": lambda: ["mcp", "serve", "review.yaml"],
            "tokens issue": lambda: ["tokens", "issue", "bot", "--json"],
            "tokens list": lambda: ["tokens", "list", "--json"],
            "tokens revoke": lambda: ["tokens", "revoke", self.token()],
        }
        return made[row]()


def _policy() -> str:
    principals = {f"{role}-user": [role] for role in ROLES if role != "nobody"}
    # The OS user runs the cells as each role's principal: the policy lets it.
    return yaml.safe_dump({"roles": {**ROLES, "tester": {"act_as": ["*"]}},
                           "principals": {**principals, os_user(): ["tester"]}})


UNSET = ("PODIUM_POLICY", "PODIUM_AUDIT", "PODIUM_DB", "PODIUM_PRINCIPAL", "PODIUM_MEMORY_DB",
         "PODIUM_MASTER_KEY", "PODIUM_MASTER_KEY_FILE")
"""Variables the cells run without; `PODIUM_HOME` is the home's, and the folder is the cwd."""


def make_home(folder: Path) -> Home:
    """The policy installed in `folder/home`, and the workflow in `folder`."""
    made = Home(folder)
    made.home.mkdir()
    (made.home / "policy.yaml").write_text(_policy(), encoding="utf-8")
    (folder / "review.yaml").write_text(WORKFLOW, encoding="utf-8")
    (folder / "steps.py").write_text(STEPS, encoding="utf-8")
    return made


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    made = make_home(tmp_path)
    monkeypatch.chdir(tmp_path)
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PODIUM_HOME", str(made.home))
    return made


@dataclass(frozen=True)
class Cell:
    row: str
    role: str
    code: int
    stderr: str


def walk(home: Home) -> list[Cell]:
    """Run every row of `MAY` as every role: the refused cells of a row before its allowed
    ones, so that what an allowed cell changes (a run cancelled) hides no refusal."""
    runner = CliRunner()
    cells = []
    for row, (may, _) in MAY.items():
        for role in sorted(ROLES, key=lambda r: (r in may, r)):
            result = runner.invoke(app, home.args(row), env={"PODIUM_PRINCIPAL": f"{role}-user"},
                                   input="")
            cells.append(Cell(row, role, result.exit_code, result.stderr))
    return cells


def test_every_command_has_a_row() -> None:
    rows = {row.split(" --")[0] for row in MAY}
    assert set(cli_commands()) == rows
    assert set(itertools.chain.from_iterable(may for may, _ in MAY.values())) <= set(ROLES)


def mismatches(cells: list[Cell]) -> list[str]:
    """The cells whose outcome is not what `MAY` says, each said in a line."""
    wrong = []
    for cell in cells:
        may, permission = MAY[cell.row]
        if cell.role in may:
            if cell.code != OK.get(cell.row, 0) or "needs permission" in cell.stderr:
                wrong.append(f"{cell.row} as {cell.role}: allowed, but exit {cell.code}: "
                             f"{cell.stderr.strip()}")
        elif cell.code != 2 or not re.search(
                rf"user '{cell.role}-user' \(roles: [^)]*\) may not .*; needs permission "
                rf"{permission or '(memory:write|memory:trust)'}", cell.stderr):
            wrong.append(f"{cell.row} as {cell.role}: refused, but exit {cell.code}: "
                         f"{cell.stderr.strip()}")
    return wrong


def test_every_command_as_every_role(home: Home) -> None:
    cells = walk(home)

    assert mismatches(cells) == []
    assert len(cells) == len(MAY) * len(ROLES)

    # Every refusal is in the audit log, and the log is intact.
    refused = [c for c in cells if c.role not in MAY[c.row][0]]
    with AuditLog(home.home / "podium.db", sign_on_close=False) as log:
        denials = [r for r in log.records() if r.action == "policy.deny"]
        assert log.verify().ok
    assert len(denials) == len(refused)
    assert {r.actor for r in denials} == {f"{c.role}-user" for c in refused}


def test_the_docs_table_has_every_command() -> None:
    doc = (ROOT / "docs" / "rbac.md").read_text(encoding="utf-8")
    table = doc[doc.index("## Every command's permission"):]
    documented = set(re.findall(r"^\| `podium ([a-z ]+?)(?: --[a-z]+)?` \|", table, re.M))
    assert documented == set(cli_commands())


@pytest.mark.parametrize("row", ["memory list", "memory add --trusted",
                                 "memory forget --subject"])
def test_the_issue_s_memory_commands_are_refused_in_a_process_of_their_own(
        home: Home, row: str) -> None:
    """As the issue found them: a principal the policy gives nothing, in a new process."""
    import os
    import subprocess
    import sys

    args = home.args(row)
    env = {**os.environ, "PODIUM_HOME": str(home.home), "PODIUM_PRINCIPAL": "nobody-user"}
    done = subprocess.run([str(Path(sys.executable).with_name("podium")), *args],
                          cwd=home.folder, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "user 'nobody-user' (roles: none) may not" in done.stderr
    assert "needs permission" in done.stderr


def matrix_size() -> dict[str, int]:
    """The size of the matrix: commands (with their variants) x roles."""
    return {"commands": len(cli_commands()), "rows": len(MAY), "roles": len(ROLES),
            "cells": len(MAY) * len(ROLES),
            "refusals": sum(len(set(ROLES) - may) for may, _ in MAY.values())}

