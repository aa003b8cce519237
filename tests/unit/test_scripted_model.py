"""The scripted test model: replies in order, recorded calls, clear exhaustion."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import pytest

from podium import testing
from podium.errors import ModelError, UserError
from podium.models import Message, ModelResponse, ScriptedModel, Usage

ASK = [Message(role="system", content="be brief"), Message(role="user", content="where is it")]


async def test_replies_come_in_order_and_dicts_become_json() -> None:
    model = ScriptedModel(["first reply", {"city": "Oslo", "temperature_c": 4}])

    first = await model.complete(ASK)
    second = await model.complete(ASK, output_schema={"type": "object"})

    assert first == ModelResponse(
        text="first reply", usage=Usage(input_tokens=5, output_tokens=2), model="scripted"
    )
    assert json.loads(second.text) == {"city": "Oslo", "temperature_c": 4}


async def test_every_call_is_recorded_as_made() -> None:
    model = ScriptedModel(["a", "b"])
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}

    await model.complete(ASK)
    await model.complete(ASK[1:], output_schema=schema, max_tokens=7, temperature=0.5)

    assert [c.messages for c in model.calls] == [tuple(ASK), (ASK[1],)]
    last = model.calls[1]
    assert (last.output_schema, last.max_tokens, last.temperature) == (schema, 7, 0.5)
    assert model.calls[0].output_schema is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        last.max_tokens = 8  # type: ignore[misc]


async def test_a_scripted_exception_is_raised_for_its_call_only() -> None:
    boom = TimeoutError("flaky provider")
    model = ScriptedModel([boom, "recovered"])

    with pytest.raises(TimeoutError) as raised:
        await model.complete(ASK)
    reply = await model.complete(ASK)

    assert raised.value is boom
    assert reply.text == "recovered"
    assert len(model.calls) == 2


async def test_running_out_of_replies_names_how_many_were_scripted() -> None:
    model = ScriptedModel(["only one"])
    await model.complete(ASK)

    with pytest.raises(ModelError, match=r"ran out of replies: 1 were scripted and call 2"):
        await model.complete(ASK)
    assert len(model.calls) == 2


async def test_no_replies_at_all_fails_on_the_first_call() -> None:
    with pytest.raises(ModelError, match="0 were scripted"):
        await ScriptedModel([]).complete(ASK)


async def test_a_sync_function_sees_messages_and_schema() -> None:
    seen: list[tuple[Sequence[Message], dict[str, Any] | None]] = []

    def reply(messages: Sequence[Message], schema: dict[str, Any] | None) -> str | dict[str, Any]:
        seen.append((messages, schema))
        return {"echo": messages[-1].content}

    model = ScriptedModel(reply)
    response = await model.complete(ASK, output_schema={"type": "object"})

    assert json.loads(response.text) == {"echo": "where is it"}
    assert seen == [(tuple(ASK), {"type": "object"})]


async def test_an_async_function_is_awaited_for_every_call() -> None:
    async def reply(messages: Sequence[Message], schema: dict[str, Any] | None) -> str:
        return f"{len(messages)} messages"

    model = ScriptedModel(reply)

    assert (await model.complete(ASK)).text == "2 messages"
    assert (await model.complete(ASK[:1])).text == "1 messages"
    assert len(model.calls) == 2


async def test_an_exception_from_the_function_propagates() -> None:
    def reply(messages: Sequence[Message], schema: dict[str, Any] | None) -> str:
        raise ModelError("scripted outage")

    model = ScriptedModel(reply)

    with pytest.raises(ModelError, match="scripted outage"):
        await model.complete(ASK)
    assert len(model.calls) == 1


@pytest.mark.parametrize("single", ["just text", {"a": 1}, ValueError("x")])
def test_a_single_reply_must_be_wrapped_in_a_list(single: Any) -> None:
    with pytest.raises(UserError, match=r"wrap it in a list"):
        ScriptedModel(single)


async def test_usage_counts_whitespace_separated_words() -> None:
    model = ScriptedModel(["one two\nthree  four"])

    response = await model.complete([Message(role="user", content="  a b\tc ")])

    assert response.usage == Usage(input_tokens=3, output_tokens=4)


def test_name_and_repr() -> None:
    model = ScriptedModel(["a", "b"], name="planner")

    assert model.name == "planner"
    assert repr(model) == "ScriptedModel(name='planner', 2 replies, calls=0)"


def test_podium_testing_exports_the_scripted_model() -> None:
    assert testing.ScriptedModel is ScriptedModel
    assert sorted(testing.__all__) == testing.__all__
    assert {"ModelCall", "ScriptedModel"} <= set(testing.__all__)
