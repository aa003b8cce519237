"""Tool names an agent takes from an MCP server are checked against the server's own
list: by `podium validate` when it can start the server (a warning when it cannot), and
when a run starts, before any task runs. A misspelt name is an error naming the file,
line and field, and the nearest real names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from podium import Engine, LLMAgent, SQLiteStore, WorkflowError, parse_workflow
from podium.testing import ScriptedModel

pytest.importorskip("mcp")
SERVERS = Path(__file__).parent / "mcp_servers"
PODIUM = str(Path(sys.executable).with_name("podium"))


def _workflow(tools: str, command: str = sys.executable) -> str:
    return f"""name: mcp-names
mcp_servers:
  calc: {{command: {command}, args: [{SERVERS / "calc_server.py"}]}}
agents:
  noter: {{function: "os.path:basename"}}
  helper: {{model: local, tools: {tools}}}
tasks:
  first: {{agent: noter, with: {{p: "a/b"}}}}
  sum: {{agent: helper, prompt: "2 + 3?", needs: [first]}}
"""


def _podium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODIUM, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PODIUM_HOME": str(tmp_path)})


def test_validate_names_a_misspelt_tool_and_the_nearest_real_ones(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(_workflow("[calc.ad, calc.echo]"))

    done = _podium(tmp_path, "validate", "wf.yaml")

    assert done.returncode == 2, done.stderr
    assert "wf.yaml:6: agents.helper.tools.0: 'calc.ad' names no tool of MCP server " \
           "'calc'; did you mean 'calc.add'" in done.stderr
    assert "It offers: add, crash, divide, echo" in done.stderr
    assert "agents.helper.tools.1" not in done.stderr
    assert done.stderr.count("error:") == 1  # one problem, one line


def test_validate_passes_real_names_and_patterns(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(_workflow("[calc.add, 'calc.d*', calc]"))
    done = _podium(tmp_path, "validate", "wf.yaml")
    assert done.returncode == 0, done.stderr
    assert "ok: mcp-names" in done.stderr and "warning" not in done.stderr


def test_a_pattern_that_selects_nothing_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(_workflow("['calc.git_*']"))
    done = _podium(tmp_path, "validate", "wf.yaml")
    assert done.returncode == 2
    assert "'calc.git_*' names no tool of MCP server 'calc'" in done.stderr


def test_validate_warns_when_it_cannot_start_the_server(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(_workflow("[calc.ad]", command="no-such-mcp-server"))

    done = _podium(tmp_path, "validate", "wf.yaml")

    assert done.returncode == 0, done.stderr
    assert "warning: could not start it to check the tool names" in done.stderr
    assert "'no-such-mcp-server' not found" in done.stderr
    assert "checked when a run starts" in done.stderr


def test_a_run_with_a_misspelt_tool_fails_before_any_task_runs(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(_workflow("[calc.ad]"))

    done = _podium(tmp_path, "run", "wf.yaml", "--no-input", "--db", "j.db")

    assert done.returncode == 2, done.stdout + done.stderr
    assert "agents.helper.tools.0: 'calc.ad' names no tool" in done.stderr
    assert "did you mean 'calc.add'" in done.stderr
    listed = _podium(tmp_path, "runs", "list", "--json", "--db", "j.db")
    assert json.loads(listed.stdout) == []  # nothing ran, nothing was journaled


async def test_engine_start_checks_names_and_journals_nothing(tmp_path: Path) -> None:
    workflow = parse_workflow(_workflow("[calc.add, calc.ech]"), str(tmp_path / "wf.yaml"))
    declared = workflow.agents["helper"]
    assert isinstance(declared, LLMAgent)
    model = ScriptedModel(["never asked"])
    workflow.add_agent("helper", LLMAgent(model, name="helper", toolsets=declared.toolsets))
    store = SQLiteStore(tmp_path / "j.db")
    try:
        with pytest.raises(WorkflowError) as caught:
            await Engine(store).start(workflow)
        assert await store.runs() == []
    finally:
        await store.close()
    (problem,) = caught.value.problems
    assert (problem.field, problem.line) == ("agents.helper.tools.1", 6)
    assert "did you mean 'calc.echo'" in problem.message
    assert model.calls == []


async def test_an_mcp_servers_max_result_bytes_bounds_its_tools_results(
        tmp_path: Path) -> None:
    text = _workflow("[calc.echo]").replace("args: [", "max_result_bytes: 50, args: [")
    workflow = parse_workflow(text, str(tmp_path / "wf.yaml"))
    declared = workflow.agents["helper"]
    assert isinstance(declared, LLMAgent)
    model = ScriptedModel([
        {"tool_calls": [{"name": "calc__echo", "arguments": {"text": "e" * 20}}]},
        {"tool_calls": [{"name": "calc__echo", "arguments": {"text": "e" * 80}}]}, "done"])
    workflow.add_agent("helper", LLMAgent(model, name="helper", toolsets=declared.toolsets))
    store = SQLiteStore(tmp_path / "j.db")
    try:
        state = await Engine(store).start(workflow)
    finally:
        await store.close()
    assert state.status == "completed", state.error
    short, long = state.tasks["sum"].tool_calls
    assert short["result"] == {"result": "e" * 20}
    assert "result" not in long
    assert "tool 'calc__echo' returned 94 bytes, more than its limit of 50 bytes " \
           "(the tool's max_result_bytes)" in long["error"]
