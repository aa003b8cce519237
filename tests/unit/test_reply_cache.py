"""The opt-in cache of model replies in the journal's database: a request asked before is
answered from there, costs nothing, and is still a durable, journaled step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from podium import Engine, LLMAgent, RetryPolicy, RunState, SQLiteStore, Workflow
from podium.core.agent import TaskContext, TaskInput
from podium.models.base import Message, ToolSpec
from podium.models.interceptors import reply_key
from podium.testing import ScriptedModel
from podium.tools import tool

PRICED = "openai:gpt-4o-mini"
"""A model name with a known price, so a live call costs something."""


class Sum(BaseModel):
    total: int


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number.
        b: the second number.
    """
    added.append((a, b))
    return a + b


added: list[tuple[int, int]] = []


def _workflow(agent: LLMAgent, prompt: str = "What is 2 + 3?", **task: Any) -> Workflow:
    wf = Workflow("cached")
    wf.add_agent("a", agent)
    wf.add_task("t", agent="a", prompt=prompt, **task)
    return wf


async def _model_calls(store: SQLiteStore, state: RunState) -> list[dict[str, Any]]:
    return [e.data for e in await store.events(state.run_id) if e.type == "model_call"]


async def test_the_same_request_again_is_answered_from_the_cache(store: SQLiteStore) -> None:
    model = ScriptedModel(['{"total": 5}'], name=PRICED)
    agent = LLMAgent(model, name="a", output=Sum, cache=True, temperature=0)
    engine = Engine(store)

    first = await engine.start(_workflow(agent))
    second = await engine.start(_workflow(agent))

    assert first.outputs() == second.outputs() == {"t": {"total": 5}}
    assert len(model.calls) == 1  # the second run asked no model
    [live] = await _model_calls(store, first)
    assert live["cached"] is False and live["cost_usd"] > 0 and live["input_tokens"] > 0
    [hit] = await _model_calls(store, second)
    assert hit["cached"] is True
    assert (hit["cost_usd"], hit["input_tokens"], hit["output_tokens"]) == (0, 0, 0)
    assert hit["model"] == PRICED
    assert second.record()["tokens"] == {"input": 0, "output": 0, "cost_usd": 0.0}
    assert second.record()["tasks"][0]["tokens"]["calls"] == 1
    # Still a durable step: a resumed run replays it from the journal.
    steps = [e.data for e in await store.events(second.run_id) if e.type == "step_completed"]
    assert [(s["kind"], s["result"]["text"]) for s in steps] == [("model", '{"total": 5}')]


@pytest.mark.parametrize("change", [
    {"temperature": 0.7}, {"max_tokens": 50}, {"instructions": "Be brief."},
    {"output": None}, {"tools": [add]}])
async def test_a_different_request_misses(store: SQLiteStore, change: dict[str, Any]) -> None:
    model = ScriptedModel(lambda messages, schema: '{"total": 5}')
    settings: dict[str, Any] = {"output": Sum, "temperature": 0, "max_tokens": 100}
    engine = Engine(store)

    await engine.start(_workflow(LLMAgent(model, name="a", cache=True, **settings)))
    state = await engine.start(_workflow(LLMAgent(model, name="a", cache=True,
                                                  **{**settings, **change})))

    assert state.status == "completed", state.error
    assert len(model.calls) == 2
    assert [c["cached"] for c in await _model_calls(store, state)] == [False]


async def test_another_prompt_or_model_misses(store: SQLiteStore) -> None:
    engine = Engine(store)
    model = ScriptedModel(["one", "two", "three"])
    other = ScriptedModel(["four"], name="other")

    await engine.start(_workflow(LLMAgent(model, name="a", cache=True)))
    await engine.start(_workflow(LLMAgent(model, name="a", cache=True), prompt="And 3 + 4?"))
    state = await engine.start(_workflow(LLMAgent(other, name="a", cache=True)))

    assert (len(model.calls), len(other.calls)) == (2, 1)
    assert state.outputs()["t"] == "four"


async def test_the_cache_is_off_by_default(store: SQLiteStore) -> None:
    model = ScriptedModel(['{"total": 5}'] * 2)
    engine = Engine(store)
    agent = LLMAgent(model, name="a", output=Sum)

    await engine.start(_workflow(agent))
    state = await engine.start(_workflow(agent))

    assert len(model.calls) == 2
    [call] = await _model_calls(store, state)
    assert "cached" not in call
    key = reply_key("scripted", model.calls[0].messages,
                    output_schema=Sum.model_json_schema(), tools=(), temperature=None,
                    max_tokens=None)
    assert await store.cache_get(key) is None


async def test_tool_turns_are_cached_but_tools_still_run(store: SQLiteStore) -> None:
    added.clear()
    model = ScriptedModel([{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]},
                           {"total": 5}])
    agent = LLMAgent(model, name="a", output=Sum, tools=[add], cache=True)
    engine = Engine(store)

    await engine.start(_workflow(agent))
    state = await engine.start(_workflow(agent))

    assert state.outputs()["t"] == {"total": 5}
    assert len(model.calls) == 2  # both turns of the second run came from the cache
    assert [c["cached"] for c in await _model_calls(store, state)] == [True, True]
    assert added == [(2, 3), (2, 3)]  # a cached reply is not a cached side effect


async def test_an_answer_that_does_not_fit_is_not_kept(store: SQLiteStore) -> None:
    model = ScriptedModel(["not JSON", '{"total": 5}'])
    agent = LLMAgent(model, name="a", output=Sum, cache=True, max_repairs=0)
    wf = _workflow(agent, retry=RetryPolicy(attempts=2))

    state = await Engine(store).start(wf)

    # The retry asked the model again instead of being served the same unfit answer.
    assert state.outputs()["t"] == {"total": 5}
    assert len(model.calls) == 2


async def test_repair_turns_are_cached_and_marked(store: SQLiteStore) -> None:
    model = ScriptedModel(["not JSON", '{"total": 5}', "not JSON"])
    agent = LLMAgent(model, name="a", output=Sum, cache=True)
    engine = Engine(store)

    await engine.start(_workflow(agent))
    state = await engine.start(_workflow(agent))

    # The unfit first answer was not kept, so it is asked again (and is unfit again); the
    # repair turn that followed it is the same request as before and comes from the cache.
    assert state.outputs()["t"] == {"total": 5}
    assert len(model.calls) == 3
    calls = await _model_calls(store, state)
    assert [(c["cached"], c.get("repair")) for c in calls] == [(False, None), (True, 1)]


async def test_without_an_engine_the_agent_calls_the_model_every_time() -> None:
    model = ScriptedModel(["a", "b"])
    agent = LLMAgent(model, name="a", cache=True)
    ctx = TaskContext(run_id="r", task_id="t", attempt=1, idempotency_key="k", inputs={},
                      outputs={})
    assert await agent.run(TaskInput(args={}, prompt="hi"), ctx) == "a"
    assert await agent.run(TaskInput(args={}, prompt="hi"), ctx) == "b"


def _key(messages: Sequence[Message] = (Message(role="user", content="hi"),), *,
         model: str = "m", output_schema: dict[str, Any] | None = None,
         tools: Sequence[ToolSpec] = (), temperature: float | None = 0.0,
         max_tokens: int | None = None) -> str:
    return reply_key(model, messages, output_schema=output_schema, tools=tools,
                     temperature=temperature, max_tokens=max_tokens)


def test_the_key_covers_everything_that_shapes_the_reply() -> None:
    base = _key()
    assert base == _key() and len(base) == 64
    variants = [
        _key(model="n"),
        _key((Message(role="user", content="hi!"),)),
        _key((Message(role="system", content="hi"),)),
        _key((Message(role="user", content="hi"), Message(role="assistant", content=""))),
        _key(output_schema={"type": "object"}),
        _key(tools=(ToolSpec(name="add"),)),
        _key(tools=(ToolSpec(name="add", description="adds"),)),
        _key(temperature=0.5),
        _key(temperature=None),
        _key(max_tokens=10),
    ]
    assert len({base, *variants}) == len(variants) + 1
