"""The benchmark scripts run and print JSON (their figures are read by people, not tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration._postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["engine.py", "peers.py", "agents.py", "security.py",
                                    "router.py", "planner.py", "memory.py", "faithfulness.py",
                                    "models.py", "examples.py"])
def test_benchmark_prints_json(script: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert isinstance(report, dict) and report


def test_store_benchmark_prints_json(pg_server: PostgresServer) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "store.py"), "--quick",
                           "--url", pg_server.url()],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    for backend in ("sqlite", "sqlite_encrypted", "postgres", "postgres_encrypted"):
        assert results[backend]["chain_async"]["per_task_us"]["median"] > 0
        assert results[backend]["fold_events"] == results["sqlite"]["fold_events"]
