"""MCP servers declared in a workflow: their tools reach a model agent through a
connection the run opens once and closes when it ends."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from podium import Engine, LLMAgent, SQLiteStore, WorkflowError, parse_workflow
from podium.testing import ScriptedModel

pytest.importorskip("mcp")
SERVERS = Path(__file__).parent / "mcp_servers"

WORKFLOW = f"""
name: mcp-calc
mcp_servers:
  calc: {{command: {sys.executable}, args: [calc_server.py]}}
agents:
  helper: {{model: local, tools: [calc.add]}}
tasks:
  first: {{agent: helper, prompt: "2 + 3?"}}
  second: {{agent: helper, prompt: "4 + 5?"}}
"""


async def test_a_declared_server_gives_its_tools_to_the_agent(tmp_path: Path) -> None:
    workflow = parse_workflow(WORKFLOW, str(SERVERS / "calc.yaml"), base=SERVERS)
    declared = workflow.agents["helper"]
    assert isinstance(declared, LLMAgent)

    model = ScriptedModel([
        {"tool_calls": [{"name": "calc__add", "arguments": {"a": 2, "b": 3}}]}, "5",
        {"tool_calls": [{"name": "calc__add", "arguments": {"a": 4, "b": 5}}]}, "9",
    ])
    workflow.add_agent("helper", LLMAgent(model, name="helper", toolsets=declared.toolsets))
    # One after the other, so the scripted replies meet the tasks in order.
    workflow.tasks["second"] = replace(workflow.tasks["second"], needs=("first",))
    store = SQLiteStore(tmp_path / "j.db")
    try:
        state = await Engine(store).start(workflow)
    finally:
        await store.close()
    assert state.status == "completed", state.error
    assert state.outputs() == {"first": "5", "second": "9"}
    calls = [c for key in ("first", "second") for c in state.tasks[key].tool_calls]
    assert [(c["name"], c["result"]) for c in calls] == [
        ("calc__add", {"result": 5}), ("calc__add", {"result": 9})]
    offered = [t.name for t in model.calls[0].tools or ()]
    assert offered == ["calc__add"]  # only the selected tool


def test_tools_naming_an_undeclared_server_are_named() -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow("""
name: bad
mcp_servers:
  calc: {command: python, args: [x.py], colour: red}
agents:
  helper: {model: local, tools: [search.web]}
tasks:
  a: {agent: helper, prompt: hi}
""", "bad.yaml")
    fields = {p.field: p.line for p in caught.value.problems}
    assert fields.get("mcp_servers.calc.colour") == 4
    assert "agents.helper.tools.0" in fields
