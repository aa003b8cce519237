"""Streaming: a model's reply reaches `Engine.start(on_token=...)` piece by piece, in a
real workflow on SQLite, and a replayed step streams nothing."""

from __future__ import annotations

from pathlib import Path

from podium import Engine, LLMAgent, SQLiteStore, Workflow
from podium.models.base import Message
from podium.testing import ScriptedModel
from podium.tools import tool


class Died(BaseException):
    """Ends the engine's drive the way a killed process would: mid-task, nothing caught."""


def _workflow(agent: LLMAgent) -> Workflow:
    wf = Workflow("streaming")
    wf.add_agent("a", agent)
    wf.add_task("t", agent="a", prompt="Greet the world.")
    return wf


async def test_scripted_model_streams_word_by_word() -> None:
    pieces: list[str] = []
    reply = await ScriptedModel(["hello  streaming world "]).complete(
        [Message(role="user", content="hi")], on_token=pieces.append)
    assert pieces == ["hello  ", "streaming ", "world "]
    assert "".join(pieces) == reply.text


async def test_tokens_reach_the_engine_hook_and_join_to_the_output(tmp_path: Path) -> None:
    pieces: list[tuple[str, str]] = []
    agent = LLMAgent(ScriptedModel(["hello streaming world"]), name="a")
    store = SQLiteStore(tmp_path / "j.db")
    try:
        state = await Engine(store).start(
            _workflow(agent), on_token=lambda task, text: pieces.append((task, text)))
        events = await store.events(state.run_id)
    finally:
        await store.close()
    assert state.status == "completed"
    assert {task for task, _ in pieces} == {"t"}
    assert len(pieces) == 3
    assert "".join(text for _, text in pieces) == state.outputs()["t"] == "hello streaming world"
    # Tokens are not events: the journal holds the reply, not its pieces.
    assert not any("token" in event.type for event in events)


async def test_without_a_hook_the_model_is_not_asked_to_stream(tmp_path: Path) -> None:
    seen: list[str] = []

    class Watched(ScriptedModel):
        async def complete(self, messages, **kwargs):  # type: ignore[no-untyped-def]
            seen.append("on_token" if kwargs.get("on_token") else "none")
            return await super().complete(messages, **kwargs)

    store = SQLiteStore(tmp_path / "j.db")
    try:
        state = await Engine(store).start(_workflow(LLMAgent(Watched(["hi"]), name="a")))
    finally:
        await store.close()
    assert state.status == "completed" and seen == ["none"]


async def test_a_replayed_step_streams_nothing(tmp_path: Path) -> None:
    crash = {"armed": True}

    @tool
    def look(word: str) -> str:
        """Look a word up.

        Args:
            word: the word.
        """
        if crash["armed"]:
            crash["armed"] = False
            raise Died  # stands for the process dying mid-task
        return word.upper()

    model = ScriptedModel([
        {"text": "let me look", "tool_calls": [{"name": "look", "arguments": {"word": "hi"}}]},
        "found it",
    ])
    wf = _workflow(LLMAgent(model, name="a", tools=[look]))
    store = SQLiteStore(tmp_path / "j.db")
    engine = Engine(store)
    first: list[str] = []
    second: list[str] = []
    try:
        try:
            await engine.start(wf, run_id="r1", on_token=lambda _, text: first.append(text))
        except BaseException as e:
            assert isinstance(e, Died | BaseExceptionGroup)
        await store.release("r1", engine.owner)
        state = await Engine(store).resume(wf, "r1",
                                           on_token=lambda _, text: second.append(text))
    finally:
        await store.close()
    assert state.status == "completed" and state.outputs()["t"] == "found it"
    assert "".join(first) == "let me look"
    # The first reply came from the journal: only the live second one streamed.
    assert "".join(second) == "found it"
    assert len(model.calls) == 2
