"""A pattern run through the `podium` command: each sub-agent call of a composite agent is
listed by `podium runs show`, with the sub-agent's name."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.e2e._cli import PODIUM, ROOT, podium_json


def test_runs_show_lists_each_sub_agent_call(tmp_path: Path) -> None:
    code, run = podium_json("run", "examples/patterns/supervisor.yaml", "--json",
                            home=tmp_path)
    assert code == 0 and run["status"] == "completed"
    code, shown = podium_json("runs", "show", run["run_id"], "--json", home=tmp_path)
    calls = shown["tasks"][0]["calls"]
    assert [c["agent"] for c in calls] == ["lead", "refunds", "lead"]
    assert calls[0]["output"] == {"handoff_to": "refunds",
                                  "context": {"order": "KX-2041", "amount": [42.5]}}
    done = subprocess.run([str(PODIUM), "runs", "show", run["run_id"]], cwd=ROOT,
                          env={**os.environ, "PODIUM_HOME": str(tmp_path), "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "answer · agent refunds → " in done.stdout
    assert "answer · agent lead → Resolved: refunded 42.50 on KX-2041" in done.stdout
