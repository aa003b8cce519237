"""The interceptor chains around an LLM agent's model calls and tool calls: their one
fixed order, one input dataclass per hook that an interceptor may change, and your own
interceptors added through `LLMAgent(interceptors=...)`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from podium import Engine, LLMAgent, SQLiteStore, Workflow
from podium.agents.interceptors import Interceptor, model_chain, tool_chain
from podium.core.agent import TaskContext, TaskInput
from podium.models.base import Message, ModelResponse, ToolCall
from podium.models.interceptors import ModelCallInput, ModelInterceptor
from podium.security import MaskingPolicy
from podium.testing import ScriptedModel
from podium.tools import tool
from podium.tools.calls import ToolOutcome
from podium.tools.interceptors import ToolCallInput, ToolInterceptor
from podium.tools.mediation import Mediation, ToolPolicy

EMAIL = "ada.lovelace@example.com"


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number.
        b: the second number.
    """
    return a + b


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "j.db")
    try:
        yield store
    finally:
        await store.close()


def _links(chain: Any) -> list[str]:
    names = []
    while chain is not None:
        names.append(type(chain).__name__)
        chain = getattr(chain, "next", None)
    return names


class _Seen(ModelInterceptor):
    """Records the inputs and replies it sees, and notes its name for the journal."""

    def __init__(self, next: ModelInterceptor, seen: list[Any], name: str) -> None:
        super().__init__(next)
        self.seen, self.name = seen, name

    async def call_model(self, input: ModelCallInput) -> ModelResponse:
        self.seen.append((self.name, input))
        response = await self.next.call_model(input)
        self.seen.append((self.name, response))
        input.notes[f"seen_by_{self.name}"] = True
        return response


class _Watch(Interceptor):
    def __init__(self, name: str, seen: list[Any]) -> None:
        self.name, self.seen = name, seen

    def intercept_model(self, next: ModelInterceptor) -> ModelInterceptor:
        return _Seen(next, self.seen, self.name)


class _Rewrite(ModelInterceptor):
    """Passes on a changed copy of the input: a system message of its own added."""

    async def call_model(self, input: ModelCallInput) -> ModelResponse:
        told = Message(role="system", content="Answer in French.")
        return await self.next.call_model(dataclasses.replace(
            input, messages=(told, *input.messages), temperature=0.0))


class _French(Interceptor):
    def intercept_model(self, next: ModelInterceptor) -> ModelInterceptor:
        return _Rewrite(next)


class _Doubling(ToolInterceptor):
    """Changes the call's arguments on the way in, and the result on the way out."""

    async def call_tool(self, input: ToolCallInput) -> ToolOutcome:
        arguments = {k: 2 * v for k, v in json.loads(input.call.arguments).items()}
        call = dataclasses.replace(input.call, arguments=json.dumps(arguments))
        outcome = await self.next.call_tool(dataclasses.replace(input, call=call))
        input.notes["doubled"] = True
        return dataclasses.replace(outcome, result=f"{outcome.result} (doubled)")


class _Doubler(Interceptor):
    def intercept_tool(self, next: ToolInterceptor) -> ToolInterceptor:
        return _Doubling(next)


def test_the_chains_are_built_in_their_one_fixed_order() -> None:
    everything = model_chain(cache=True, masking=MaskingPolicy(),
                             interceptors=[_Watch("a", []), _Watch("b", [])])
    assert _links(everything) == ["ModelJournal", "_Seen", "_Seen", "ReplyCache", "Masking",
                                  "Accounting", "Complete"]
    first, second = everything.next, everything.next.next  # type: ignore[attr-defined]
    assert (first.name, second.name) == ("a", "b")
    assert _links(model_chain(cache=False, masking=None)) == [
        "ModelJournal", "Accounting", "Complete"]
    gate = Mediation("a", ToolPolicy())
    assert _links(tool_chain(mediation=gate, masking=MaskingPolicy(),
                             interceptors=[_Doubler()])) == [
        "ToolJournal", "_Doubling", "_Gate", "ToolAccess", "ToolMasking", "RunTool"]
    assert _links(tool_chain(mediation=gate, masking=None)) == [
        "ToolJournal", "_Gate", "ToolAccess", "RunTool"]


async def test_your_interceptor_sees_the_call_as_asked_and_the_reply_as_read(
        store: SQLiteStore) -> None:
    # Yours are outside masking: the clear conversation in, the restored reply out, while
    # the external model sees placeholders only.
    seen: list[Any] = []
    model = ScriptedModel(lambda messages, schema: f"Wrote to {messages[-1].content[-9:]}",
                          external=True)
    agent = LLMAgent(model, name="w", masking=MaskingPolicy(),
                     interceptors=[_Watch("outer", seen), _Watch("inner", seen)])
    wf = Workflow("watched")
    wf.add_agent("w", agent)
    wf.add_task("t", agent="w", prompt=f"Mail {EMAIL}")

    state = await Engine(store).start(wf)

    assert state.status == "completed", state.error
    assert EMAIL not in model.calls[0].messages[-1].content
    assert [name for name, _ in seen] == ["outer", "inner", "inner", "outer"]
    asked, replied = seen[0][1], seen[-1][1]
    assert isinstance(asked, ModelCallInput) and asked.messages[-1].content == f"Mail {EMAIL}"
    assert isinstance(replied, ModelResponse) and replied.text == f"Wrote to {EMAIL}"
    [call] = [e.data for e in await store.events(state.run_id) if e.type == "model_call"]
    # What every link noted reaches the one model_call event.
    notes = call["notes"]
    assert notes["seen_by_outer"] is notes["seen_by_inner"] is call["masked"] is True
    assert call["input_tokens"] > 0 and "latency_ms" in call


async def test_an_interceptor_can_change_the_input_it_passes_on() -> None:
    model = ScriptedModel(["Bonjour"])
    agent = LLMAgent(model, name="fr", interceptors=[_French()])
    ctx = TaskContext(run_id="r", task_id="t", attempt=1, idempotency_key="k", inputs={},
                      outputs={})

    assert await agent.run(TaskInput(args={}, prompt="Hello"), ctx) == "Bonjour"

    [call] = model.calls
    assert [m.content for m in call.messages] == ["Answer in French.", "Hello"]
    assert call.temperature == 0.0


async def test_a_tool_interceptor_changes_the_call_and_its_outcome(store: SQLiteStore) -> None:
    model = ScriptedModel([{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]},
                           "done"])
    agent = LLMAgent(model, name="a", tools=[add], interceptors=[_Doubler()])
    wf = Workflow("doubled")
    wf.add_agent("a", agent)
    wf.add_task("t", agent="a", prompt="Add 2 and 3.")

    state = await Engine(store).start(wf)

    assert state.status == "completed", state.error
    result = next(m for m in model.calls[1].messages if m.role == "tool")
    assert "\n10 (doubled)\n" in result.content  # delimited: a tool's result is untrusted
    [journaled] = [e.data for e in await store.events(state.run_id) if e.type == "tool_call"]
    # The journal sits outside yours: it records the call as the model asked it and the
    # outcome the model read, with what you noted.
    assert journaled["arguments"] == {"a": 2, "b": 3}
    assert journaled["result"] == "10 (doubled)" and journaled["notes"]["doubled"] is True


async def test_a_cached_reply_passes_your_interceptor_but_reaches_no_model(
        store: SQLiteStore) -> None:
    seen: list[Any] = []
    model = ScriptedModel(["four"])
    agent = LLMAgent(model, name="a", cache=True, interceptors=[_Watch("mine", seen)])
    wf = Workflow("cached")
    wf.add_agent("a", agent)
    wf.add_task("t", agent="a", prompt="2 + 2?")
    engine = Engine(store)

    await engine.start(wf)
    state = await engine.start(wf)

    assert state.outputs()["t"] == "four" and len(model.calls) == 1
    assert [name for name, _ in seen] == ["mine"] * 4
    [hit] = [e.data for e in await store.events(state.run_id) if e.type == "model_call"]
    assert hit["cached"] is True and hit["notes"]["seen_by_mine"] is True
    assert (hit["input_tokens"], hit["output_tokens"], hit["cost_usd"]) == (0, 0, 0)


async def test_the_base_interceptor_passes_calls_on_unchanged() -> None:
    outcome = ToolOutcome(call=ToolCall(id="c", name="x", arguments="{}"), result=1)

    class End(ToolInterceptor):
        def __init__(self) -> None:
            self.inputs: list[ToolCallInput] = []

        async def call_tool(self, input: ToolCallInput) -> ToolOutcome:
            self.inputs.append(input)
            return outcome

    end = End()
    chain = Interceptor().intercept_tool(ToolInterceptor(end))
    ctx = TaskContext(run_id="r", task_id="t", attempt=1, idempotency_key="k", inputs={},
                      outputs={})
    given = ToolCallInput(call=outcome.call, tools={}, ctx=ctx)
    assert await chain.call_tool(given) is outcome
    assert end.inputs == [given]
