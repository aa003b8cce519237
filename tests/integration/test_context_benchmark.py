"""The context benchmark runs and prints JSON (its figures are read by people, not tests)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                reason="the local model needs: pip install 'podium[local]'")


def test_context_benchmark_prints_json() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "context.py"), "--quick"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    results = report["results"]
    assert set(results) == {"typical", "long_session", "large_trimmed", "large_fits"}
    for shape in results.values():
        assert shape["estimate"]["counted"] == "estimate"
        assert shape["llama_tokenizer"]["counted"] == "tokenizer"
        assert all(s["used"] <= s["budget"] for s in shape.values())
