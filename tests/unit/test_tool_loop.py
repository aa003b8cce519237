"""LLM agents that call tools: the loop of model turns and tool calls, in real workflows
on SQLite, with the scripted model."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from podium import (
    Engine,
    Event,
    LLMAgent,
    RetryPolicy,
    RunState,
    SQLiteStore,
    UserError,
    Workflow,
)
from podium.models.base import Message, ModelResponse, ToolCall, ToolSpec, Usage
from podium.testing import ScriptedModel
from podium.tools import Tool, make_tool, tool

LIMIT = 5.0
"""Seconds a test may wait for something that happens at once when the code is right."""


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number.
        b: the second number.
    """
    return a + b


class Sum(BaseModel):
    total: int


def _workflow(agent: LLMAgent, **task: Any) -> Workflow:
    wf = Workflow("tools")
    wf.add_agent("a", agent)
    wf.add_task("t", agent="a", prompt="What is 2 + 3?", **task)
    return wf


def _calls(*calls: tuple[str, Any]) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments} for name, arguments in calls]}


def _task(state: RunState) -> dict[str, Any]:
    task: dict[str, Any] = state.record()["tasks"][0]
    return task


def _tool_messages(messages: Sequence[Message]) -> list[Message]:
    """The tool messages, with the untrusted-content delimiters around results taken off
    (tests/unit/test_mediation.py checks the delimiters)."""
    return [dataclasses.replace(m, content=_undelimited(m.content))
            for m in messages if m.role == "tool"]


def _undelimited(text: str) -> str:
    found = re.fullmatch(r'<untrusted-(\w+) source="[^"]*">\n(.*)\n</untrusted-\1>', text, re.S)
    return found[2] if found else text


# --- the loop -----------------------------------------------------------------------------


async def test_a_tool_call_then_an_answer(store: SQLiteStore) -> None:
    model = ScriptedModel([_calls(("add", {"a": 2, "b": 3})), {"total": 5}])
    agent = LLMAgent(model, name="a", instructions="Add with the tool.", tools=[add],
                     output=Sum)

    state = await Engine(store).start(_workflow(agent))

    assert state.status == "completed", state.error
    assert state.outputs()["t"] == {"total": 5}
    first, second = model.calls
    assert [t.name for t in first.tools] == ["add"]
    assert first.tools[0].parameters["required"] == ["a", "b"]
    assert first.output_schema is not None and "total" in first.output_schema["properties"]
    # The second turn sees the first one's call and its result, tied by the call's id.
    assistant, result = second.messages[-2], _tool_messages(second.messages)[-1]
    assert assistant.role == "assistant"
    assert assistant.tool_calls == (ToolCall(id="call_1_1", name="add",
                                             arguments='{"a": 2, "b": 3}'),)
    assert (result.role, result.tool_call_id, result.content, result.is_error) == (
        "tool", "call_1_1", "5", False)
    record = _task(state)
    assert record["tokens"]["calls"] == 2
    assert record["tool_calls"] == [{
        "call_id": "call_1_1", "name": "add", "arguments": {"a": 2, "b": 3}, "result": 5,
        "duration_ms": record["tool_calls"][0]["duration_ms"]}]


async def test_without_tools_the_model_is_asked_once_and_offered_none(
        store: SQLiteStore) -> None:
    model = ScriptedModel(["plain answer"])

    state = await Engine(store).start(_workflow(LLMAgent(model, name="a")))

    assert state.outputs()["t"] == "plain answer"
    assert [c.tools for c in model.calls] == [()]


async def test_calls_of_one_turn_run_concurrently(store: SQLiteStore) -> None:
    # Each tool waits for the other to have started: run one after the other, they would
    # wait forever, and the timeout would say so.
    started = {"left": asyncio.Event(), "right": asyncio.Event()}

    def waiter(mine: str, other: str) -> Tool:
        async def wait(label: str) -> str:
            """Wait for the other tool."""
            started[mine].set()
            await started[other].wait()
            return f"{mine} saw {label}"
        return make_tool(wait, name=mine)

    model = ScriptedModel([
        _calls(("left", {"label": "x"}), ("right", {"label": "y"})),
        "both done",
    ])
    agent = LLMAgent(model, name="a", tools=[waiter("left", "right"), waiter("right", "left")])

    async with asyncio.timeout(LIMIT):
        state = await Engine(store).start(_workflow(agent))

    assert state.outputs()["t"] == "both done"
    results = _tool_messages(model.calls[1].messages)
    assert [(m.tool_call_id, m.content) for m in results] == [
        ("call_1_1", "left saw x"), ("call_1_2", "right saw y")]
    assert sorted(c["name"] for c in _task(state)["tool_calls"]) == ["left", "right"]


async def test_bad_arguments_go_back_and_the_corrected_call_succeeds(
        store: SQLiteStore) -> None:
    model = ScriptedModel([
        _calls(("add", {"a": "two", "b": 3})),
        _calls(("add", {"a": 2, "b": 3})),
        "5",
    ])
    agent = LLMAgent(model, name="a", tools=[add])

    state = await Engine(store).start(_workflow(agent))

    assert state.status == "completed", state.error
    assert state.outputs()["t"] == "5"
    (error,) = _tool_messages(model.calls[1].messages)
    assert error.is_error
    assert "'add'" in error.content and "a: Input should be a valid integer" in error.content
    first, second = _task(state)["tool_calls"]
    assert first["error_type"] == "ToolArgumentsInvalid" and "result" not in first
    assert second["result"] == 5


async def test_arguments_that_are_not_json_go_back_as_an_error(store: SQLiteStore) -> None:
    model = ScriptedModel([
        ModelResponse(text="", tool_calls=(ToolCall(id="c1", name="add", arguments="{a: 2"),)),
        "gave up on the tool",
    ])

    state = await Engine(store).start(_workflow(LLMAgent(model, name="a", tools=[add])))

    assert state.outputs()["t"] == "gave up on the tool"
    (error,) = _tool_messages(model.calls[1].messages)
    assert error.is_error and "not valid JSON" in error.content
    assert _task(state)["tool_calls"][0]["arguments"] == "{a: 2"


async def test_bad_arguments_beyond_the_bound_fail_the_attempt(store: SQLiteStore) -> None:
    bad = _calls(("add", {"a": 2}))
    model = ScriptedModel([bad, bad, bad, "never asked"])
    agent = LLMAgent(model, name="a", tools=[add], max_argument_repairs=2)

    state = await Engine(store).start(_workflow(agent))

    assert state.status == "failed"
    assert len(model.calls) == 3
    error = _task(state)["error"]
    assert "invalid arguments 3 turns in a row (max_argument_repairs=2)" in error
    assert "b: Field required" in error
    assert _task(state)["history"][1]["error"].startswith("ToolArgumentsInvalid")


async def test_a_valid_turn_resets_the_repair_count(store: SQLiteStore) -> None:
    bad, good = _calls(("add", {"a": 2})), _calls(("add", {"a": 2, "b": 3}))
    model = ScriptedModel([bad, good, bad, "done"])
    agent = LLMAgent(model, name="a", tools=[add], max_argument_repairs=1)

    state = await Engine(store).start(_workflow(agent))

    assert state.outputs()["t"] == "done"


async def test_an_unknown_tool_goes_back_and_counts_as_a_repair(store: SQLiteStore) -> None:
    model = ScriptedModel([_calls(("multiply", {"a": 2})), _calls(("multiply", {})), "x"])
    agent = LLMAgent(model, name="a", tools=[add], max_argument_repairs=1)

    state = await Engine(store).start(_workflow(agent))

    (error,) = _tool_messages(model.calls[1].messages)
    assert error.is_error
    assert error.content == "there is no tool named 'multiply'; the tools are: 'add'"
    assert state.status == "failed"
    assert "do not exist" in _task(state)["error"]
    assert [c["error_type"] for c in _task(state)["tool_calls"]] == ["UnknownTool"] * 2


async def test_a_failing_tool_reports_to_the_model_which_decides(store: SQLiteStore) -> None:
    @tool
    def lookup(city: str) -> str:
        """Look up a city."""
        raise ConnectionError(f"the directory is down for {city}")

    model = ScriptedModel([_calls(("lookup", {"city": "Oslo"})),
                           _calls(("lookup", {"city": "Oslo"})),
                           _calls(("lookup", {"city": "Oslo"})),
                           "I could not look it up."])
    agent = LLMAgent(model, name="a", tools=[lookup], max_argument_repairs=0)

    state = await Engine(store).start(_workflow(agent))

    # A failing tool is not the model's mistake: it uses no repair.
    assert state.outputs()["t"] == "I could not look it up."
    (error,) = _tool_messages(model.calls[1].messages)
    assert error.is_error
    assert error.content == ("tool 'lookup' failed: ConnectionError: the directory is down "
                             "for Oslo")
    assert _task(state)["tool_calls"][0]["error_type"] == "ToolFailed"


async def test_a_tool_that_times_out_is_a_failure_the_model_sees(store: SQLiteStore) -> None:
    async def slow() -> str:
        """Never answers in time."""
        await asyncio.Event().wait()
        return "never"

    model = ScriptedModel([_calls(("slow", {})), "moved on"])
    agent = LLMAgent(model, name="a", tools=[make_tool(slow, timeout=0.01)])

    async with asyncio.timeout(LIMIT):
        state = await Engine(store).start(_workflow(agent))

    assert state.outputs()["t"] == "moved on"
    assert "took longer than 0.01s" in _tool_messages(model.calls[1].messages)[0].content


async def test_reaching_max_turns_fails_the_attempt_with_a_clear_error(
        store: SQLiteStore) -> None:
    model = ScriptedModel(lambda messages, schema: _calls(("add", {"a": 1, "b": 1})))
    agent = LLMAgent(model, name="a", tools=[add], max_turns=3)

    state = await Engine(store).start(_workflow(agent))

    assert state.status == "failed"
    assert len(model.calls) == 3
    error = _task(state)["error"]
    assert error.startswith("ModelError")
    assert "stopped after 3 turns without a final answer" in error
    assert "called 'add'" in error
    assert len(_task(state)["tool_calls"]) == 3


async def test_max_turns_is_handled_by_the_task_policy(store: SQLiteStore) -> None:
    replies: list[Any] = [_calls(("add", {"a": 1, "b": 1}))] * 2 + ["second attempt answers"]
    model = ScriptedModel(replies)
    agent = LLMAgent(model, name="a", tools=[add], max_turns=2)

    state = await Engine(store).start(_workflow(agent, retry=RetryPolicy(attempts=2)))

    assert state.outputs()["t"] == "second attempt answers"
    assert _task(state)["attempts"] == 2


async def test_the_final_answer_is_validated_against_the_output_schema(
        store: SQLiteStore) -> None:
    model = ScriptedModel([_calls(("add", {"a": 2, "b": 3})), {"total": "five"}])
    agent = LLMAgent(model, name="a", tools=[add], output=Sum, max_repairs=0)

    state = await Engine(store).start(_workflow(agent))

    assert state.status == "failed"
    assert "total" in _task(state)["error"]


async def test_tool_calls_show_in_the_run_record_with_usage(store: SQLiteStore) -> None:
    model = ScriptedModel([
        ModelResponse(text="let me add", usage=Usage(input_tokens=10, output_tokens=4),
                      tool_calls=(ToolCall(id="x1", name="add", arguments='{"a": 1, "b": 2}'),
                                  ToolCall(id="x2", name="add", arguments='{"a": 3, "b": 4}'))),
        "3 and 7",
    ])

    state = await Engine(store).start(_workflow(LLMAgent(model, name="a", tools=[add])))

    record = _task(state)
    calls = sorted(record["tool_calls"], key=lambda c: c["call_id"])
    assert [(c["call_id"], c["arguments"], c["result"]) for c in calls] == [
        ("x1", {"a": 1, "b": 2}, 3), ("x2", {"a": 3, "b": 4}, 7)]
    assert all(c["duration_ms"] >= 0 for c in calls)
    assert record["tokens"]["calls"] == 2 and record["tokens"]["input"] >= 10
    assert model.calls[1].messages[-3].content == "let me add"


def test_tool_names_must_be_unique_and_bounds_sane() -> None:
    model = ScriptedModel(["x"])
    with pytest.raises(UserError, match="'add' appear more than once"):
        LLMAgent(model, name="a", tools=[add, add])
    with pytest.raises(UserError, match="max_turns must be >= 1"):
        LLMAgent(model, name="a", tools=[add], max_turns=0)


# --- durability ---------------------------------------------------------------------------


class Died(BaseException):
    """Ends the engine's drive the way a killed process would: mid-task, nothing caught."""


async def test_a_crash_mid_loop_repeats_neither_completed_tools_nor_model_turns(
        store: SQLiteStore) -> None:
    charged: list[int] = []
    shipped: list[str] = []
    crash = {"armed": True}

    @tool
    def charge(amount: int) -> str:
        """Charge the card."""
        charged.append(amount)
        return f"charged {amount}"

    @tool
    def ship(item: str) -> str:
        """Ship the item."""
        shipped.append(item)
        if crash["armed"]:
            crash["armed"] = False
            raise Died  # stands for the process dying while the tool runs
        return f"shipped {item}"

    def reply(messages: Sequence[Message], schema: dict[str, Any] | None) -> dict[str, Any]:
        done = [m.content for m in messages if m.role == "tool"]
        if not done:
            return _calls(("charge", {"amount": 30}))
        if len(done) == 1:
            return _calls(("ship", {"item": "book"}))
        return {"total": 30}

    model = ScriptedModel(reply)
    agent = LLMAgent(model, name="a", tools=[charge, ship], output=Sum)
    wf = _workflow(agent)
    engine = Engine(store)
    with pytest.raises((Died, BaseExceptionGroup)):
        await engine.start(wf, run_id="r1")
    assert (charged, shipped, len(model.calls)) == ([30], ["book"], 2)

    # A new process finds the lease free once the old one is gone.
    await store.release("r1", engine.owner)
    state = await Engine(store).resume(wf, "r1")

    assert state.status == "completed", state.error
    assert state.outputs()["t"] == {"total": 30}
    assert charged == [30]  # the completed tool call was not repeated
    assert shipped == ["book", "book"]  # the interrupted one ran again
    assert len(model.calls) == 3  # the two turns before the crash were replayed
    last = model.calls[2].messages
    assert [m.content for m in _tool_messages(last)] == ["charged 30", "shipped book"]
    record = _task(state)
    assert record["tokens"]["calls"] == 3  # replayed turns are not counted twice
    assert [c["name"] for c in record["tool_calls"]] == ["charge", "ship"]


async def test_a_crash_during_concurrent_calls_keeps_the_ones_that_completed(
        store: SQLiteStore) -> None:
    ran: list[str] = []
    crash = {"armed": True}
    fast_journaled = asyncio.Event()

    def watch(event: Event, state: RunState) -> None:
        if event.type == "step_completed" and event.data["name"] == "fast":
            fast_journaled.set()

    async def fast(n: int) -> int:
        """Fast."""
        ran.append(f"fast{n}")
        return n

    async def dies() -> str:
        """Dies the first time, once the other call of its turn is journaled."""
        ran.append("dies")
        if crash["armed"]:
            crash["armed"] = False
            await fast_journaled.wait()
            raise Died
        return "lived"

    model = ScriptedModel([_calls(("fast", {"n": 1}), ("dies", {})), "all done"])
    agent = LLMAgent(model, name="a", tools=[make_tool(fast), make_tool(dies)])
    wf = _workflow(agent)
    engine = Engine(store)
    with pytest.raises((Died, BaseExceptionGroup)):
        async with asyncio.timeout(LIMIT):
            await engine.start(wf, run_id="r2", on_event=watch)
    await store.release("r2", engine.owner)

    state = await Engine(store).resume(wf, "r2")

    assert state.outputs()["t"] == "all done"
    assert ran == ["fast1", "dies", "dies"]
    assert len(model.calls) == 2
    results = _tool_messages(model.calls[1].messages)
    assert [m.content for m in results] == ["1", "lived"]


async def test_calls_that_finish_out_of_order_replay_in_order(store: SQLiteStore) -> None:
    ran: list[str] = []
    crash = {"armed": True}
    quick_done = asyncio.Event()

    async def slow() -> str:
        """Finishes after quick."""
        ran.append("slow")
        await quick_done.wait()
        return "slow result"

    async def quick() -> str:
        """Finishes first."""
        ran.append("quick")
        quick_done.set()
        return "quick result"

    async def dies() -> str:
        """Dies the first time."""
        ran.append("dies")
        if crash["armed"]:
            crash["armed"] = False
            raise Died
        return "lived"

    model = ScriptedModel(lambda messages, schema: [
        _calls(("slow", {}), ("quick", {})), _calls(("dies", {})), "done",
    ][sum(1 for m in messages if m.tool_calls)])
    agent = LLMAgent(model, name="a", tools=[make_tool(f) for f in (slow, quick, dies)])
    wf = _workflow(agent)
    engine = Engine(store)
    with pytest.raises((Died, BaseExceptionGroup)):
        async with asyncio.timeout(LIMIT):
            await engine.start(wf, run_id="r3")
    await store.release("r3", engine.owner)

    async with asyncio.timeout(LIMIT):
        state = await Engine(store).resume(wf, "r3")

    assert state.outputs()["t"] == "done"
    assert ran == ["slow", "quick", "dies", "dies"]
    assert len(model.calls) == 3


# --- the scripted model's tool replies ----------------------------------------------------


async def test_the_scripted_model_scripts_tool_calls_and_records_the_tools() -> None:
    spec = ToolSpec(name="add", parameters=add.parameters)
    model = ScriptedModel([
        {"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}},
                        {"name": "add", "arguments": '{"a": 3, "b": 4}', "id": "mine"}],
         "text": "adding"},
        {"tool_calls": "not a list"},
    ])

    reply = await model.complete([Message(role="user", content="go")], tools=[spec])

    assert reply.text == "adding"
    assert reply.tool_calls == (
        ToolCall(id="call_1_1", name="add", arguments='{"a": 1, "b": 2}'),
        ToolCall(id="mine", name="add", arguments='{"a": 3, "b": 4}'))
    assert model.calls[0].tools == (spec,)
    with pytest.raises(UserError, match="'tool_calls' must be a list"):
        await model.complete([Message(role="user", content="go")])


async def test_a_dict_with_other_keys_is_still_json_text() -> None:
    model = ScriptedModel([{"tool_calls": [], "total": 1}])

    reply = await model.complete([Message(role="user", content="go")])

    assert json.loads(reply.text) == {"tool_calls": [], "total": 1}
    assert reply.tool_calls == ()


def test_a_response_round_trips_through_json() -> None:
    response = ModelResponse(text="t", model="m", usage=Usage(input_tokens=1, output_tokens=2),
                             tool_calls=(ToolCall(id="c", name="n", arguments="{}"),))

    assert ModelResponse.from_json(json.loads(json.dumps(response.to_json()))) == response
