"""Size limits on what models and tools send back, with the scripted model in real
workflows on SQLite: a result or reply past its limit is refused with an error naming
the tool or model, the size, the limit and the setting; nothing of it is journaled."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from podium import (
    Engine,
    LLMAgent,
    RunState,
    SQLiteStore,
    UserError,
    Workflow,
    WorkflowError,
    parse_workflow,
)
from podium.models import OpenAICompatModel
from podium.models.limits import DEFAULT_MAX_REPLY_BYTES, reply_limit
from podium.testing import ScriptedModel
from podium.tools import DEFAULT_MAX_RESULT_BYTES, tool

BIG = "x" * (DEFAULT_MAX_RESULT_BYTES + 10)


@tool
def dump() -> str:
    """Everything there is."""
    return BIG


@tool(max_result_bytes=100)
def chatty() -> dict[str, str]:
    """A little too much."""
    return {"text": "y" * 200}


async def _run(store: SQLiteStore, agent: LLMAgent) -> RunState:
    wf = Workflow("limits")
    wf.add_agent("bot", agent)
    wf.add_task("t", agent="bot", prompt="go")
    state = await Engine(store).start(wf)
    return await Engine(store).state(state.run_id)


def _calling(name: str, then: str = "done") -> ScriptedModel:
    return ScriptedModel([{"tool_calls": [{"name": name, "arguments": {}}]}, then])


@pytest.mark.parametrize(("tool_limit", "agent_limit", "size", "setting"), [
    (None, None, "1.0 MiB", "the default"),
    (None, 1000, "1000 bytes", "the agent's max_tool_result_bytes"),
])
async def test_a_tool_result_past_its_limit_goes_back_as_an_error(
        store: SQLiteStore, tool_limit: int | None, agent_limit: int | None, size: str,
        setting: str) -> None:
    model = _calling("dump")
    agent = LLMAgent(model, name="bot", tools=[dump], max_tool_result_bytes=agent_limit)

    state = await _run(store, agent)

    assert state.status == "completed"
    (call,) = state.tasks["t"].tool_calls
    assert call["error_type"] == "ToolFailed" and "result" not in call
    assert f"tool 'dump' returned 1.0 MiB, more than its limit of {size} ({setting})" \
        in call["error"]
    assert "max_result_bytes" in call["error"]
    # The model read the error, not the megabyte.
    sent = model.calls[1].messages[-1]
    assert sent.is_error and len(sent.content) < 1000


async def test_a_tool_sets_its_own_limit(store: SQLiteStore) -> None:
    state = await _run(store, LLMAgent(_calling("chatty"), name="bot", tools=[chatty]))
    (call,) = state.tasks["t"].tool_calls
    assert "more than its limit of 100 bytes (the tool's max_result_bytes)" in call["error"]


async def test_within_the_limit_the_result_is_kept(store: SQLiteStore) -> None:
    roomier = dataclasses.replace(chatty, max_result_bytes=1000)
    agent = LLMAgent(_calling("chatty"), name="bot", tools=[roomier])
    state = await _run(store, agent)
    (call,) = state.tasks["t"].tool_calls
    assert call["result"] == {"text": "y" * 200}


async def test_a_reply_past_the_agents_limit_fails_and_is_journaled_without_text(
        store: SQLiteStore) -> None:
    agent = LLMAgent(ScriptedModel(["word " * 2000]), name="bot", max_reply_bytes=5000)

    state = await _run(store, agent)

    assert state.status == "failed"
    error = str(state.tasks["t"].error)
    assert "ReplyTooLarge" in error and "agent 'bot': model 'scripted' replied 9.8 KiB" in error
    assert "more than its limit of 4.9 KiB (from max_reply_bytes)" in error
    events = await store.events(state.run_id)
    (call,) = [e.data for e in events if e.type == "model_call"]
    assert call["error_type"] == "ReplyTooLarge" and call["output_tokens"] == 2000
    assert not any("word word" in str(e.data) for e in events)


async def test_max_tokens_bounds_a_reply_by_default(store: SQLiteStore) -> None:
    limit = reply_limit(10)
    assert limit < len("z" * (limit + 1))
    assert reply_limit(None) == DEFAULT_MAX_REPLY_BYTES
    agent = LLMAgent(ScriptedModel(["z" * (limit + 1)]), name="bot", max_tokens=10)
    state = await _run(store, agent)
    assert state.status == "failed" and "max_tokens=10" in str(state.tasks["t"].error)


@pytest.mark.parametrize("setting", ["max_reply_bytes", "max_tool_result_bytes"])
def test_limits_must_be_positive(setting: str) -> None:
    kwargs: dict[str, Any] = {setting: 0}
    with pytest.raises(UserError, match=f"agent 'bot': {setting} must be >= 1, got 0"):
        LLMAgent(ScriptedModel([]), name="bot", **kwargs)


def test_yaml_sets_the_limits_on_the_agent_and_its_model() -> None:
    workflow = parse_workflow("""
name: limited
agents:
  bot: {model: "openai:m", base_url: "http://127.0.0.1:9/v1", max_reply_bytes: 1000,
        max_tool_result_bytes: 500}
tasks:
  t: {agent: bot, prompt: go}
""", "limited.yaml")
    agent = workflow.agents["bot"]
    assert isinstance(agent, LLMAgent)
    assert (agent.max_reply_bytes, agent.max_tool_result_bytes) == (1000, 500)
    assert isinstance(agent.model, OpenAICompatModel) and agent.model.max_reply_bytes == 1000


def test_only_model_agents_take_reply_limits() -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow("""
name: limited
agents:
  f: {function: "os.path:basename", max_reply_bytes: 10}
tasks:
  t: {agent: f, with: {p: a}}
""", "limited.yaml")
    (problem,) = caught.value.problems
    assert (problem.field, problem.line) == ("agents.f.max_reply_bytes", 4)
    assert "only model agents take max_reply_bytes" in problem.message
