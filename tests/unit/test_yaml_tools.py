"""Tools named in YAML reach the model agent; bad references are named with their lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium import Engine, LLMAgent, SQLiteStore, WorkflowError, parse_workflow, tool
from podium.testing import ScriptedModel


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


WORKFLOW = """
name: tools
agents:
  helper:
    model: local
    tools: ["tests.unit.test_yaml_tools:add", "tests.unit.test_yaml_tools:shout"]
    max_turns: 3
tasks:
  sum: {agent: helper, prompt: "2 + 3?"}
"""


async def test_yaml_tools_are_given_to_the_agent_and_called(tmp_path: Path) -> None:
    workflow = parse_workflow(WORKFLOW, "tools.yaml")
    agent = workflow.agents["helper"]
    assert isinstance(agent, LLMAgent)
    assert [t.name for t in agent.tools] == ["add", "shout"]
    model = ScriptedModel([{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]},
                           "5"])
    workflow.add_agent("helper", LLMAgent(model, name="helper", tools=agent.tools))
    store = SQLiteStore(tmp_path / "j.db")
    try:
        state = await Engine(store).start(workflow)
    finally:
        await store.close()
    assert state.status == "completed" and state.outputs()["sum"] == "5"
    assert state.tasks["sum"].tool_calls[0]["result"] == 5


def test_bad_tool_references_are_named() -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow("""
name: bad
agents:
  helper:
    model: local
    tools: ["tests.unit.test_yaml_tools:nope", "tests.unit.test_yaml_tools:add",
            "tests.unit.test_yaml_tools:add"]
tasks:
  a: {agent: helper, prompt: hi}
""", "bad.yaml")
    fields = [p.field for p in caught.value.problems]
    assert "agents.helper.tools.0" in fields
    assert "agents.helper.tools" in fields  # the duplicate name
