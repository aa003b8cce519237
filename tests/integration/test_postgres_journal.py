"""The journal on a real PostgreSQL server, beyond the conformance suite: races between
stores that do not share a connection (as between processes or machines), the errors a
user meets, the choice of backend by URL, and the `podium` command on PostgreSQL: several
`podium run` processes on one journal, and a run waiting for a human answered from another
process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest

from podium import PostgresStore, SQLiteStore, UserError, open_store
from podium.core.events import NewEvent
from podium.security.crypto import KEY_ENV, Keyring, MasterKey
from podium.store.base import Conflict, Owner
from podium.store.postgres import SCHEMA_VERSION, JournalUnavailable
from tests.integration._postgres import PostgresServer
from tests.integration.test_crash import WORKFLOW, WORKFLOW_DIR, expected_keys, expected_outputs
from tests.integration.test_human_wait import AGENTS_DIR, PROMPT
from tests.integration.test_human_wait import WORKFLOW as REVIEW

PODIUM = Path(sys.executable).with_name("podium")
MASTER = MasterKey(secret=bytes(range(1, 33)), source="test")
START = NewEvent(type="run_started", data={"workflow": "w", "inputs": {}})
DEADLINE_S = 180.0


@pytest.fixture
def url(pg_server: PostgresServer) -> str:
    return pg_server.fresh_schema()


@pytest.fixture
async def stores(url: str) -> AsyncIterator[Callable[..., PostgresStore]]:
    """Makes stores on one journal, each with its own connections, closed afterwards."""
    made: list[PostgresStore] = []

    def make(keys: Keyring | None = None) -> PostgresStore:
        made.append(PostgresStore(url, keys=keys))
        return made[-1]

    yield make
    for store in made:
        await store.close()


def _sql(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


def _owner(token: str) -> Owner:
    return Owner(token=token, pid=os.getpid(), host="here")


# -- races between stores -----------------------------------------------------------------


async def test_one_of_two_stores_takes_over_a_dead_owners_run(
        stores: Callable[..., PostgresStore]) -> None:
    first, second = stores(), stores()
    dead = Owner(token="dead", pid=2**22 + 12345, host="here")
    for n in range(20):
        await first.create_run(f"r{n}", "w", START, dead)
        a, b = _owner(f"a{n}"), _owner(f"b{n}")
        got = await asyncio.gather(first.acquire(f"r{n}", a, 30), second.acquire(f"r{n}", b, 30))
        # The row lock queues them: one takes the run, the other sees it held by the first.
        assert got in ([None, a], [b, None]), got


async def test_one_of_two_stores_appends_past_the_same_last_event(
        stores: Callable[..., PostgresStore]) -> None:
    first, second = stores(), stores()
    me = _owner("a")
    await first.create_run("r", "w", START, me)
    for last in range(1, 21):
        outcomes = await asyncio.gather(
            first.append("r", [NewEvent(type="task_approved", task="x")], me, expect_last=last),
            second.append("r", [NewEvent(type="task_rejected", task="x")], me,
                          expect_last=last),
            return_exceptions=True)
        assert sorted(type(o).__name__ for o in outcomes) == ["Conflict", "list"], outcomes
    assert [e.seq for e in await first.events("r")] == list(range(1, 22))
    with pytest.raises(Conflict):
        await second.append("r", [NewEvent(type="run_waiting")], me, expect_last=3)


async def test_stores_racing_for_a_new_subject_share_one_data_key(
        stores: Callable[..., PostgresStore], url: str) -> None:
    keys = Keyring(keys=(MASTER,))
    first, second = stores(keys), stores(keys)
    me = _owner("a")
    await first.create_run("r1", "w", START, me)
    await second.create_run("r2", "w", START, me)
    for n in range(10):
        fact = NewEvent(type="tool_call", task="t", data={"n": n}, subject=f"s-{n}")
        await asyncio.gather(first.append("r1", [fact], me), second.append("r2", [fact], me))
    assert _sql(url, "SELECT owner, count(*) FROM podium_data_keys WHERE owner LIKE 'subject:%'"
                     " GROUP BY owner HAVING count(*) > 1") == []
    reader = stores(keys)
    for run in ("r1", "r2"):
        assert [e.data for e in await reader.events(run)][1:] == [{"n": n} for n in range(10)]
    assert await reader.shred_subject("s-3") == 1
    assert (await reader.events("r2"))[4].data == {"_erased": "subject"}


def test_processes_opening_a_new_journal_at_once_make_its_tables_once(url: str) -> None:
    script = (
        "import asyncio, os, sys, time\n"
        "from podium import PostgresStore\n"
        "from podium.core.events import NewEvent\n"
        "from podium.store import new_owner\n"
        "go = float(sys.argv[2])\n"
        "while time.time() < go: pass\n"
        "async def main():\n"
        "    for i in range(3):\n"
        "        s = PostgresStore(sys.argv[1], keys=None)\n"
        "        await s.create_run(f'r{os.getpid()}-{i}', 'w', NewEvent(type='run_started'),"
        " new_owner())\n"
        "        await s.close()\n"
        "asyncio.run(main())\n"
    )
    import time

    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", script, url, str(start)],
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    assert _sql(url, "SELECT count(*) FROM podium_runs") == [(12,)]
    assert _sql(url, "SELECT value FROM podium_meta WHERE key = 'schema'") == [
        (str(SCHEMA_VERSION),)]


# -- what a user meets ----------------------------------------------------------------------


async def test_an_unreachable_server_is_named_without_its_password(
        pg_server: PostgresServer, free_tcp_port: int) -> None:
    bad = pg_server.url().replace(f":{pg_server.port}/", f":{free_tcp_port}/")
    store = PostgresStore(bad, keys=None, connect_timeout=5)
    with pytest.raises(JournalUnavailable) as info:
        await store.runs()
    message = str(info.value)
    assert f"app:***@127.0.0.1:{free_tcp_port}/postgres" in message
    assert pg_server.password not in message and "s3cr3t" not in message
    await store.close()

    wrong = pg_server.url().replace("s3cr3t", "wrong")
    store = PostgresStore(wrong, keys=None)
    with pytest.raises(JournalUnavailable, match="password authentication failed"):
        await store.runs()
    await store.close()


async def test_a_journal_from_a_newer_podium_is_refused(
        stores: Callable[..., PostgresStore], url: str) -> None:
    await stores().create_run("r", "w", START, _owner("a"))
    _sql(url, f"UPDATE podium_meta SET value = '{SCHEMA_VERSION + 1}' WHERE key = 'schema'"
              " RETURNING key")
    with pytest.raises(Exception, match="newer than this Podium understands"):
        await stores().runs()


def test_the_extra_is_named_when_psycopg_pool_is_missing(
        monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)
    with pytest.raises(UserError, match=r"pip install 'podium\[postgres\]'"):
        asyncio.run(PostgresStore(url, keys=None).runs())


async def test_the_backend_is_chosen_by_the_url(url: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    for where, kind in ((url, PostgresStore), (url.replace("postgresql:", "postgres:"),
                                                PostgresStore),
                        (str(tmp_path / "j.db"), SQLiteStore), (None, SQLiteStore)):
        store = open_store(where, keys=None)
        try:
            assert isinstance(store, kind)
            assert await store.runs() == []
        finally:
            await store.close()
    assert (tmp_path / "podium.db").exists()  # SQLite stays the default
    assert "***" in open_store(url, keys=None).location


# -- the `podium` command on PostgreSQL ---------------------------------------------------


def _env(home: Path, url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "PODIUM_HOME": str(home), "PODIUM_DB": url, **extra}


def test_parallel_podium_runs_share_one_postgres_journal(tmp_path: Path, url: str) -> None:
    home, width = tmp_path / "home", 10
    env = _env(home, url, **{KEY_ENV: MASTER.text()})
    procs = []
    for n in range(4):
        with (tmp_path / f"{n}.out").open("wb") as out, (tmp_path / f"{n}.err").open("wb") as err:
            procs.append(subprocess.Popen(
                [str(PODIUM), "run", str(WORKFLOW), "--json", "--no-input",
                 "-i", f"base={n}", "-i", f"width={width}", "-i", "sleep_ms=2",
                 "-i", f"effects={tmp_path / f'{n}.effects'}"],
                cwd=WORKFLOW_DIR, stdout=out, stderr=err, env=env))
    for proc in procs:
        proc.wait(timeout=DEADLINE_S)
    run_ids = []
    for n, proc in enumerate(procs):
        stderr = (tmp_path / f"{n}.err").read_text()
        assert proc.returncode == 0, stderr
        record = json.loads((tmp_path / f"{n}.out").read_text())
        assert record["status"] == "completed"
        assert record["outputs"] == expected_outputs({"base": n, "width": width})
        run_ids.append(record["run_id"])
        keys, fan_outs = expected_keys({"base": n, "width": width})
        lines = (tmp_path / f"{n}.effects").read_text().splitlines()
        ran = Counter(json.loads(line)[0] for line in lines)
        assert ran == Counter(dict.fromkeys(keys - fan_outs, 1)), "each task ran once"

    listed = subprocess.run([str(PODIUM), "runs", "list", "--json"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert sorted(r["run_id"] for r in json.loads(listed.stdout)) == sorted(run_ids)
    assert _no_local_runs(home)
    # Gapless sequences, and every payload sealed (the runs were started with a master key).
    for run_id, count, last, clear in _sql(
            url, "SELECT e.run_id, count(*), max(r.last_seq), count(e.data) FROM podium_events"
                 " e JOIN podium_runs r USING (run_id) GROUP BY e.run_id"):
        assert run_id in run_ids and count == last and clear == 0


def _no_local_runs(home: Path) -> bool:
    """Nothing of the runs went to the default SQLite file (the audit log may be there)."""
    if not (home / "podium.db").exists():
        return True
    with closing(sqlite3.connect(home / "podium.db")) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    return "events" not in tables


def _podium(url: str, home: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([str(PODIUM), *args, "--db", url], cwd=AGENTS_DIR,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PODIUM_HOME": str(home)})
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"podium {' '.join(args)} printed no JSON (exit {done.returncode}):\n"
                    f"stdout: {done.stdout}\nstderr: {done.stderr}")


def test_a_waiting_run_is_approved_from_another_process(tmp_path: Path, url: str) -> None:
    home, effects = tmp_path / "home", tmp_path / "effects.log"
    workflow = tmp_path / "review.yaml"
    workflow.write_text(REVIEW.format(default=""))
    code, record = _podium(url, home, "run", str(workflow), "--json", "--no-input",
                           "-i", "topic=durable runs", "-i", f"effects={effects}")
    assert (code, record["status"], record["waiting"]) == (3, "waiting", ["review"])
    run_id = record["run_id"]
    # The process is gone, and gave the lease back with the event that says it waits.
    assert _sql(url, f"SELECT status, owner, lease_until FROM podium_runs WHERE run_id ="
                     f" '{run_id}'") == [("waiting", None, None)]
    code, shown = _podium(url, home, "runs", "show", run_id[:12], "--json")
    assert code == 0 and shown["status"] == "waiting"
    (review,) = [t for t in shown["tasks"] if t["id"] == "review"]
    assert review["prompt"] == PROMPT

    code, record = _podium(url, home, "approve", run_id, "review", "--data", '{"ok": true}',
                           "--json")
    assert code == 0, record
    assert record["status"] == "completed"
    assert record["outputs"]["publish"] == {"published": "Report on durable runs",
                                            "review": {"ok": True}}
    ran = Counter(json.loads(line)[0] for line in effects.read_text().splitlines())
    assert ran == Counter({"draft": 1, "publish": 1})
    refused = subprocess.run([str(PODIUM), "approve", run_id, "review", "--db", url],
                             cwd=AGENTS_DIR, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PODIUM_HOME": str(home)})
    assert refused.returncode == 2, refused.stderr
    assert "not waiting" in " ".join(refused.stderr.split())
    assert _no_local_runs(home)


def test_the_docs_example_runs_on_postgres(url: str, tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "postgres.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", docs, re.S)
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PODIUM_DB": url})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["completed Hello from PostgreSQL", "4 events journaled"]
    assert _sql(url, "SELECT count(*) FROM podium_events") == [(4,)]


def test_keys_rotate_on_postgres_while_a_run_waits(tmp_path: Path, url: str) -> None:
    """`podium keys rotate --db URL`: the waiting run, started under the old key, is
    approved and finished under the new one; the old key then reads nothing."""
    home, effects, new_file = tmp_path / "home", tmp_path / "effects.log", tmp_path / "new.key"
    new = MasterKey(secret=bytes(range(100, 132)), source="test")
    new_file.write_text(new.text() + "\n")
    workflow = tmp_path / "review.yaml"
    workflow.write_text(REVIEW.format(default=""))

    def podium(key: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(PODIUM), *args, "--db", url], cwd=AGENTS_DIR,
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PODIUM_HOME": str(home), KEY_ENV: key})

    started = podium(MASTER.text(), "run", str(workflow), "--json", "--no-input",
                     "-i", "topic=durable runs", "-i", f"effects={effects}")
    assert started.returncode == 3, started.stderr
    run_id = json.loads(started.stdout)["run_id"]
    rotated = podium(f"{new.text()},{MASTER.text()}", "keys", "rotate",
                     "--new-key-file", str(new_file))
    assert rotated.returncode == 0, rotated.stderr
    assert f"1 data key(s) re-wrapped under master key {new.key_id}" in rotated.stdout
    status = json.loads(podium(new.text(), "keys", "status", "--json").stdout)
    assert (status["current"], status["data_keys"]) == (new.key_id, {new.key_id: 1})

    refused = podium(MASTER.text(), "runs", "show", run_id)
    assert refused.returncode == 2
    assert f"under master key {new.key_id}" in " ".join(refused.stderr.split())
    approved = podium(new.text(), "approve", run_id, "review", "--json")
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["outputs"]["publish"]["review"] == {"approved": True}
    assert _sql(url, "SELECT count(*) FROM podium_events WHERE data IS NOT NULL") == [(0,)]


async def test_a_lost_connection_is_named_and_the_next_call_reconnects(
        stores: Callable[..., PostgresStore], url: str) -> None:
    store = stores()
    await store.create_run("r", "w", START, _owner("a"))
    _sql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <>"
              " pg_backend_pid() AND datname = current_database()")
    with pytest.raises(JournalUnavailable, match="lost the connection to the journal at "
                                                 r"postgresql://app:\*\*\*@"):
        await store.events("r")
    assert [e.seq for e in await store.events("r")] == [1]
