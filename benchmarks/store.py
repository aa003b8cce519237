"""The journal's backends compared: SQLite (a file, WAL) and PostgreSQL (a server on
loopback), each with encryption at rest off and on; prints one JSON object.

- `chain_async`, `fanout_tasks`, `fanout_for_each`: Podium's per-task overhead with the
  journal on that backend (as in `engine.py`): a chain of no-op agents, no-ops ready at
  once, one task mapped over many items. Per-task figures are the run's wall time over its
  tasks.
- `append_one_us`: one event appended by the lease holder, one call after another (the
  latency a chain pays per journal write); `append_batch_us_per_event`: 100 events per call.
- `fold_ms`: reading back a run of 2,000 events (what a resume or `podium runs show` does).

`postgres_async_commit` is PostgreSQL with `synchronous_commit=off` for the journal's
sessions: a commit returns before its WAL reaches the disk, as SQLite's `synchronous=NORMAL`
does, but a crash of the server (not only of the machine) can lose the last commits.

PostgreSQL runs on this machine, so the figures show the cost of the protocol and the
server's work, not of a network: add the round-trip time of yours (each task journals about
two writes that a chain waits for; group commit batches the rest).

    python benchmarks/store.py                           # starts a throwaway server
    python benchmarks/store.py --url postgresql://...    # or uses yours (tables podium_*)
    python benchmarks/store.py --quick                   # small sizes: a smoke test

Without `--url` (or `$PODIUM_BENCH_PG`), PostgreSQL's `initdb` and `pg_ctl` must be on the
PATH or under /usr/lib/postgresql; the server runs from a temporary folder, with fsync on.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _bench import (
    ITEMS,
    Timing,
    async_noop,
    chain,
    environment,
    for_each,
    independent,
    podium_run,
    repeat_interleaved,
    run_main,
    summary,
)

from podium import Engine, PostgresStore, SQLiteStore, Store, Workflow
from podium.core.events import NewEvent
from podium.security.crypto import Keyring, MasterKey
from podium.store import new_owner

KEYS = Keyring(keys=(MasterKey(secret=bytes(range(32)), source="benchmark"),))


@dataclass(frozen=True, kw_only=True)
class Sizes:
    chain: int
    fanout: int
    appends: int
    fold: int
    repeat: int


FULL = Sizes(chain=100, fanout=1000, appends=500, fold=2000, repeat=5)
QUICK = Sizes(chain=10, fanout=50, appends=20, fold=100, repeat=1)


@contextmanager
def throwaway_server() -> Iterator[str]:
    """A PostgreSQL server from a temporary folder on 127.0.0.1; yields its URL."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
        if not found:
            raise SystemExit("no PostgreSQL here: install it, or pass --url")
        initdb, pg_ctl = str(found[0]), str(found[0].with_name("pg_ctl"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    home = Path(tempfile.mkdtemp(prefix="podium-bench-pg-"))
    if as_user:
        shutil.chown(home, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = home / "data"
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "bench", "-A", "trust"],
                   check=True, capture_output=True)
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(home / "log"), "-w", "-o",
                    f"-p {port} -k {home} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://bench@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                       check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def fresh_schema(url: str, *settings: str) -> str:
    """A URL whose connections keep their tables in a new, empty schema, with `settings`
    (`name=value`) for their sessions."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")  # type: ignore[arg-type]
    options = "%20".join(f"-c{s.replace('=', '%3D')}" for s in (f"search_path={name}",
                                                               *settings))
    return f"{url}{'&' if '?' in url else '?'}options={options}"


def backends(folder: str, url: str) -> dict[str, Callable[[], Store]]:
    """A fresh journal of each backend, made on call."""
    def sqlite(keys: Keyring | None) -> Callable[[], Store]:
        return lambda: SQLiteStore(os.path.join(folder, f"{uuid.uuid4().hex}.db"), keys=keys)

    def postgres(keys: Keyring | None, *settings: str) -> Callable[[], Store]:
        return lambda: PostgresStore(fresh_schema(url, *settings), keys=keys)

    return {"sqlite": sqlite(None), "sqlite_encrypted": sqlite(KEYS),
            "postgres": postgres(None), "postgres_encrypted": postgres(KEYS),
            "postgres_async_commit": postgres(None, "synchronous_commit=off")}


async def overhead(make: Callable[[], Store], sizes: Sizes) -> dict[str, Any]:
    workloads: dict[str, tuple[Workflow, dict[str, Any] | None, int]] = {
        "chain_async": (chain(sizes.chain, async_noop), None, sizes.chain),
        "fanout_tasks": (independent(sizes.fanout, async_noop), None, sizes.fanout),
        "fanout_for_each": (for_each(async_noop), {ITEMS: list(range(sizes.fanout))},
                            sizes.fanout),
    }
    stores = {name: make() for name in workloads}
    try:
        runs = {name: podium_run(Engine(stores[name]), wf, inputs)
                for name, (wf, inputs, _) in workloads.items()}
        walls = await repeat_interleaved(runs, sizes.repeat)
    finally:
        for store in stores.values():
            await store.close()
    return {name: Timing(tasks=workloads[name][2], walls=walls[name]).report()
            for name in workloads}


async def journal_ops(make: Callable[[], Store], sizes: Sizes) -> dict[str, Any]:
    store = make()
    owner = new_owner()
    event = NewEvent(type="model_call", task="t", data={"model": "m", "tokens": [12, 34],
                                                        "text": "a reply of some words"})
    try:
        ones, batches, folds = [], [], []
        for r in range(sizes.repeat + 1):
            run_id = f"ops-{r}"
            await store.create_run(run_id, "bench", NewEvent(type="run_started"), owner)
            start = time.perf_counter()
            for _ in range(sizes.appends):
                await store.append(run_id, [event], owner)
            ones.append((time.perf_counter() - start) / sizes.appends * 1e6)
            start = time.perf_counter()
            batches_n = max(1, (sizes.fold - sizes.appends) // 100)
            for _ in range(batches_n):
                await store.append(run_id, [event] * 100, owner)
            batches.append((time.perf_counter() - start) / (batches_n * 100) * 1e6)
            start = time.perf_counter()
            events = await store.events(run_id)
            folds.append((time.perf_counter() - start) * 1e3)
        # The first round warmed caches and prepared statements up.
        return {"append_one_us": summary(ones[1:]),
                "append_batch_us_per_event": summary(batches[1:]),
                "fold_events": len(events), "fold_ms": summary(folds[1:], 2)}
    finally:
        await store.close()


async def measure(url: str, sizes: Sizes) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as folder:
        for name, make in backends(folder, url).items():
            results[name] = {**await overhead(make, sizes), **await journal_ops(make, sizes)}
    base = results["sqlite"]
    for pg in ("postgres", "postgres_async_commit"):
        results[f"{pg}_over_sqlite"] = {
            key: round(results[pg][key]["per_task_us"]["median"]
                       / base[key]["per_task_us"]["median"], 2)
            for key in ("chain_async", "fanout_tasks", "fanout_for_each")}
    return results


async def main(quick: bool, url: str | None) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    with _server(url) as where:
        results = await measure(where, sizes)
    return {
        "benchmark": "podium-store",
        "quick": quick,
        "journals": {"sqlite": "SQLiteStore on a file in a temporary folder (WAL, "
                               "synchronous=NORMAL)",
                     "postgres": "PostgresStore on a server on 127.0.0.1 ("
                                 + ("given by --url" if url else "throwaway, fsync on") + ")"},
        "repeat": sizes.repeat,
        "environment": environment(),
        "results": results,
    }


@contextmanager
def _server(url: str | None) -> Iterator[str]:
    if url:
        yield url
    else:
        with throwaway_server() as made:
            yield made


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--url", default=os.environ.get("PODIUM_BENCH_PG"),
                        help="a PostgreSQL server to use (default: start a throwaway one)")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse()
    run_main(lambda: main(args.quick, args.url))
