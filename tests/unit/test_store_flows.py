"""The journal's statements as values (`podium.store.sql`): one flow, two dialects, errors
thrown back into the flow; and `podium.testing` usable without pytest installed."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from podium.store.sql import POSTGRES, SQLITE, Flow, count, one, rows, run_sqlite


def _flow() -> Flow[tuple[int, list[tuple[str]]]]:
    yield count("CREATE TABLE {p}meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    yield count("INSERT INTO {p}meta VALUES (?, ?)", "a", "1")
    try:
        yield count("INSERT INTO {p}meta VALUES (?, ?)", "a", "2")
    except sqlite3.IntegrityError:
        pass  # the driver threw the statement's error into the flow
    changed = yield count("UPDATE {p}meta SET value = ? WHERE key = ?{for_update}", "3", "a")
    found = yield rows("SELECT value FROM {p}meta ORDER BY key")
    return changed, found


def test_a_flow_runs_on_sqlite_and_catches_what_a_statement_raises() -> None:
    db = sqlite3.connect(":memory:")
    try:
        assert run_sqlite(db, _flow()) == (1, [("3",)])
    finally:
        db.close()


def test_an_error_the_flow_does_not_catch_reaches_the_caller() -> None:
    def broken() -> Flow[None]:
        yield one("SELECT * FROM {p}missing")

    db = sqlite3.connect(":memory:")
    try:
        with pytest.raises(sqlite3.OperationalError, match="missing"):
            run_sqlite(db, broken())
    finally:
        db.close()


def test_each_dialect_spells_the_neutral_sql() -> None:
    neutral = "SELECT value FROM {p}meta WHERE key = ? AND value LIKE 'x%'{for_update}"

    assert SQLITE(neutral) == "SELECT value FROM meta WHERE key = ? AND value LIKE 'x%'"
    assert POSTGRES(neutral) == ("SELECT value FROM podium_meta WHERE key = %s AND value"
                                 " LIKE 'x%%' FOR UPDATE")


def test_importing_podium_and_its_testing_helpers_needs_no_pytest() -> None:
    code = ("import sys, podium, podium.testing, podium.store\n"
            "assert not {'pytest', 'pytest_asyncio'} & set(sys.modules), sys.modules.keys()\n")

    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
