"""Built-in agents declared in YAML: built from their documents, errors named with lines."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from podium import Engine, SQLiteStore, WorkflowError, parse_workflow


def _db(tmp_path: Path) -> Path:
    path = tmp_path / "crm.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, tier TEXT)")
        db.executemany("INSERT INTO customers (name, tier) VALUES (?, ?)",
                       [("Ada", "gold"), ("Grace", "silver"), ("Linus", "gold")])
    return path


async def test_a_sql_agent_from_yaml_binds_parameters_and_stays_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_URL", f"sqlite:///{_db(tmp_path)}")
    workflow = parse_workflow("""
name: crm
inputs: {tier: {type: string}}
agents:
  crm:
    sql: {url: "env:CRM_URL", query: "SELECT name FROM customers WHERE tier = :tier ORDER BY id"}
  vandal:
    sql: {url: "env:CRM_URL", query: "DELETE FROM customers"}
tasks:
  gold: {agent: crm, with: {params: {tier: "{{ inputs.tier }}"}}}
  wipe: {agent: vandal, needs: [gold], default: {refused: true}}
""", "crm.yaml")
    store = SQLiteStore(tmp_path / "journal.db")
    try:
        state = await Engine(store).start(workflow, {"tier": "gold"})
    finally:
        await store.close()
    assert state.status == "completed"
    assert state.outputs()["gold"]["rows"] == [{"name": "Ada"}, {"name": "Linus"}]
    assert state.tasks["wipe"].defaulted  # refused as a write, so the default was used
    with closing(sqlite3.connect(tmp_path / "crm.db")) as db:
        assert db.execute("SELECT count(*) FROM customers").fetchone()[0] == 3
    assert str(tmp_path / "crm.db") not in (tmp_path / "journal.db").read_text(errors="ignore")


def test_bad_built_in_agent_documents_are_named_with_their_lines() -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow("""
name: bad
agents:
  api: {http: {url: /x, retries: 2, colour: blue}}
  two: {sql: {url: "sqlite://"}, function: "os:getcwd"}
  mail: {email: {host: localhost, sender: "not an address"}}
tasks:
  a: {agent: api}
""", "bad.yaml")
    problems = {(p.field, p.line) for p in caught.value.problems}
    assert ("agents.api.http.colour", 4) in problems
    assert ("agents.two", 5) in problems
    messages = " ".join(str(p) for p in caught.value.problems)
    assert "exactly one of" in messages
