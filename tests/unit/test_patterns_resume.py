"""A loop pattern interrupted by a crash resumes where it stood: the sub-agent calls that
completed are replayed from the journal, not made again, and so are the model turns of a
sub-agent that the crash interrupted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podium import Engine, LLMAgent, Message, SQLiteStore, Workflow, tool
from podium.patterns import Refine, Supervisor
from podium.testing import ScriptedModel


class Died(BaseException):
    """Ends the engine's drive the way a killed process would: mid-task, nothing caught."""


async def _crash_then_resume(tmp_path: Path, wf: Workflow) -> Any:
    store = SQLiteStore(tmp_path / "journal.db")
    engine = Engine(store)
    try:
        try:
            await engine.start(wf, run_id="r1")
        except BaseException as e:
            assert isinstance(e, Died | BaseExceptionGroup)
        else:
            raise AssertionError("the run was meant to die")
        # A new process finds the lease free once the old one is gone.
        await store.release("r1", engine.owner)
        return await Engine(store).resume(wf, "r1")
    finally:
        await store.close()


async def test_refine_resumed_after_a_crash_repeats_no_completed_sub_call(
        tmp_path: Path) -> None:
    writer_model = ScriptedModel(["first draft", "second draft", "a third draft"],
                                 name="writer-model")
    writer = LLMAgent(writer_model, name="writer")
    judged: list[str] = []
    crash = {"armed": True}

    def critic(draft: str, round: int) -> dict[str, Any]:
        judged.append(draft)
        if round == 2 and crash["armed"]:
            crash["armed"] = False
            raise Died  # the process dies while the critic judges round 2
        return {"accept": round == 2, "feedback": "shorter"}

    wf = Workflow("refine-crash")
    wf.add_agent("loop", Refine(writer, critic, name="loop", max_rounds=3))
    wf.add_task("t", agent="loop", prompt="Write a slogan.")
    state = await _crash_then_resume(tmp_path, wf)

    assert state.status == "completed"
    out = state.outputs()["t"]
    assert (out["output"], out["stopped"], out["rounds"]) == ("second draft", "accepted", 2)
    # Two drafts in all: round 1's and round 2's were journaled and replayed, not asked
    # again (a third model call would have produced "a third draft").
    assert len(writer_model.calls) == 2
    # The critic judged round 1 once, and round 2 again (its call was the one cut short).
    assert judged == ["first draft", "second draft", "second draft"]
    assert [c["agent"] for c in state.task("t").calls] == [
        "writer", "critic", "writer", "critic"]


async def test_a_sub_agent_cut_short_replays_its_own_completed_turns(tmp_path: Path) -> None:
    looked_up: list[str] = []
    crash = {"armed": True}

    @tool
    def order_status(order: str) -> str:
        """The status of an order."""
        looked_up.append(order)
        if crash["armed"]:
            crash["armed"] = False
            raise Died  # the process dies inside the specialist's tool call
        return "shipped"

    lead_model = ScriptedModel([{"handoff_to": "orders", "context": "where is A-7?",
                                 "answer": ""}], name="lead-model")

    def orders_reply(messages: Sequence[Message], schema: Any) -> dict[str, Any]:
        if messages[-1].role == "tool":
            # The result arrives delimited as untrusted content; its text is the middle line.
            status = messages[-1].content.splitlines()[1]
            return {"handoff_to": "none", "context": "", "answer": f"A-7 has {status}."}
        return {"tool_calls": [{"name": "order_status", "arguments": {"order": "A-7"}}]}

    orders_model = ScriptedModel(orders_reply, name="orders-model")
    lead = LLMAgent(lead_model, name="lead")
    orders = LLMAgent(orders_model, name="orders", tools=[order_status])
    wf = Workflow("handoff-crash")
    wf.add_agent("desk", Supervisor(lead, [orders], name="desk"))
    wf.add_task("t", agent="desk", prompt="A customer asks where order A-7 is.")
    state = await _crash_then_resume(tmp_path, wf)

    assert state.status == "completed"
    assert state.outputs()["t"]["output"] == "A-7 has shipped."
    assert len(lead_model.calls) == 1  # the lead's completed handoff was replayed
    # The specialist's first turn (asking for the tool) was journaled inside its call and
    # replayed; only the tool call the crash interrupted ran again.
    assert len(orders_model.calls) == 2
    assert looked_up == ["A-7", "A-7"]
