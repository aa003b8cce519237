"""`podium memory` takes the same forms of database as `podium run`: a file, or a
PostgreSQL URL (a real server with pgvector on loopback), given as `--memory-db` or
`$PODIUM_MEMORY_DB`; what cannot work on PostgreSQL says so in one line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from podium.cli import app
from podium.server.access import os_user
from tests.integration._pgvector import pgvector_server
from tests.integration._postgres import PostgresServer

UNSET = ("PODIUM_POLICY", "PODIUM_AUDIT", "PODIUM_DB", "PODIUM_PRINCIPAL", "PODIUM_MEMORY_DB",
         "PODIUM_MASTER_KEY", "PODIUM_MASTER_KEY_FILE")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with pgvector_server() as url:
        yield url


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def podium(*args: str, **env: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env or None)


def as_json(result: Result) -> Any:
    assert result.exit_code in (0, 1), (result.exit_code, result.stderr)
    return json.loads(result.stdout)


def test_memory_commands_use_a_postgresql_memory_store(pg_url: str, home: Path) -> None:
    ns = f"cli/{os.getpid()}"
    added = as_json(podium("memory", "add", "Allergic to penicillin.", "-n", ns, "--subject",
                           "p-1", "--json", "--memory-db", pg_url))
    assert added["source"] == f"operator:{os_user()}"
    # The same store through $PODIUM_MEMORY_DB, as for `podium run`.
    listed = as_json(podium("memory", "list", "-n", ns, "--json", PODIUM_MEMORY_DB=pg_url))
    assert [m["id"] for m in listed] == [added["id"]]
    found = as_json(podium("memory", "search", "drug allergy", "-n", ns, "--json",
                           "--memory-db", pg_url))
    assert [m["id"] for m in found] == [added["id"]]
    promoted = as_json(podium("memory", "promote", added["id"], "-n", ns, "--json",
                              "--memory-db", pg_url))
    assert promoted["by"] == f"human:{os_user()}"
    gone = as_json(podium("memory", "forget", added["id"], "-n", ns, "--json",
                          "--memory-db", pg_url))
    assert gone["forgotten"] is True
    # Nothing was written to a file named after the URL, nor to the default memory.db.
    assert not (home / "memory.db").exists()
    assert not Path("postgresql:").exists()


def test_forget_subject_erases_memories_in_postgresql_and_runs_in_the_sqlite_journal(
        pg_url: str, home: Path) -> None:
    ns = f"cli/{os.getpid()}/erase"
    podium("memory", "add", "Zebulon has hiccups.", "-n", ns, "--subject", "zq-1",
           "--memory-db", pg_url)
    erased = as_json(podium("memory", "forget", "--subject", "zq-1", "--json",
                            "--memory-db", pg_url))
    assert erased["memories"] == 1 and erased["subject_ref"].startswith("subject#")
    assert as_json(podium("memory", "list", "-n", ns, "--json", "--memory-db", pg_url)) == []


def test_a_postgresql_journal_is_refused_by_forget_subject_in_one_line(
        pg_url: str, home: Path) -> None:
    """Erasing runs works on a SQLite journal only: a PostgreSQL `--db` is refused before
    anything is erased, not read as a file that is not there (which erased nothing)."""
    ns = f"cli/{os.getpid()}/kept"
    podium("memory", "add", "Kept.", "-n", ns, "--subject", "k-1", "--memory-db", pg_url)
    for refused in (podium("memory", "forget", "--subject", "k-1", "--db", pg_url,
                           "--memory-db", pg_url),
                    podium("memory", "forget", "--subject", "k-1", "--memory-db", pg_url,
                           PODIUM_DB=pg_url)):
        assert refused.exit_code == 2, refused.stderr
        assert refused.stderr.splitlines() == [
            "error: podium memory forget --subject needs a SQLite journal file; --db (or "
            "PODIUM_DB) names a PostgreSQL server"]
    kept = as_json(podium("memory", "list", "-n", ns, "--json", "--memory-db", pg_url))
    assert [m["text"] for m in kept] == ["Kept."]


def test_a_server_without_pgvector_is_one_line(pg_server: PostgresServer) -> None:
    refused = podium("memory", "list", "-n", "x", "--memory-db", pg_server.fresh_database())
    assert refused.exit_code == 2
    assert refused.stderr.splitlines() == [
        "error: the PostgreSQL server lacks the pgvector extension: install it (Debian: "
        "postgresql-NN-pgvector)"]
