"""The composite patterns (vote, evaluator-optimizer, supervisor with handoffs, group
discussion) run by the engine, with the scripted model standing in for real ones: what
each sub-agent is asked, what the pattern returns, and the status when a bound is hit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from podium import Engine, LLMAgent, RunState, SQLiteStore, Workflow
from podium.errors import UserError
from podium.patterns import Discussion, Handoff, Refine, Supervisor, Vote
from podium.testing import ScriptedModel


async def _run(tmp_path: Path, wf: Workflow, inputs: dict[str, Any] | None = None
               ) -> RunState:
    store = SQLiteStore(tmp_path / "journal.db")
    try:
        return await Engine(store).start(wf, inputs)
    finally:
        await store.close()


def _one_task(agent: Any, args: dict[str, Any] | None = None, prompt: str | None = None
              ) -> Workflow:
    wf = Workflow("pattern")
    wf.add_agent(agent.name, agent)
    wf.add_task("t", agent=agent.name, args=args or {}, prompt=prompt)
    return wf


def _llm(name: str, replies: Any, **options: Any) -> tuple[LLMAgent, ScriptedModel]:
    model = ScriptedModel(replies, name=f"{name}-model")
    return LLMAgent(model, name=name, **options), model


# -- vote ---------------------------------------------------------------------------------


def _answers(*answers: Any) -> list[Any]:
    def voter(n: int, answer: Any) -> Any:
        def vote(question: str) -> Any:
            return answer
        vote.__name__ = f"voter{n}"
        return vote
    return [voter(n, a) for n, a in enumerate(answers)]


@pytest.mark.parametrize(("rule", "answers", "status", "winner"), [
    ("majority", ["yes", "no", "yes"], "decided", "yes"),
    ("majority", ["yes", "no", "maybe", "no"], "no_majority", None),
    ("plurality", ["a", "b", "b", "a"], "decided", "a"),  # a tie goes to the first voter
    ("unanimous", ["a", "a", "b"], "disagreed", None),
    ("unanimous", [{"x": 1, "y": 2}, {"y": 2, "x": 1}], "decided", {"x": 1, "y": 2}),
])
async def test_a_vote_combines_answers_by_its_rule(
        tmp_path: Path, rule: Any, answers: list[Any], status: str, winner: Any) -> None:
    vote = Vote(_answers(*answers), name="panel", rule=rule)
    state = await _run(tmp_path, _one_task(vote, {"question": "ship it?"}))
    out = state.outputs()["t"]
    assert (out["status"], out["answer"], out["decided_by"]) == (status, winner, rule)
    assert [v["answer"] for v in out["votes"]] == answers
    # Every voter's answer is a journaled sub-call, shown with the voter's name.
    calls = state.task("t").calls
    assert [c["agent"] for c in calls] == [f"voter{n}" for n in range(len(answers))]


async def test_a_vote_by_field_compares_only_that_field(tmp_path: Path) -> None:
    voters = _answers({"label": "spam", "score": 0.9}, {"label": "spam", "score": 0.6},
                      {"label": "ham", "score": 0.8})
    state = await _run(tmp_path, _one_task(Vote(voters, key="label"), {"question": "?"}))
    out = state.outputs()["t"]
    assert out["answer"] == {"label": "spam", "score": 0.9}
    assert out["agreement"] == 2


async def test_a_judge_picks_a_candidate_with_structured_output(tmp_path: Path) -> None:
    a, _ = _llm("a", ["Paris is the capital of France."])
    b, _ = _llm("b", ["Lyon."])
    judge, judge_model = _llm("judge", [{"choice": 0, "reason": "correct and complete"}])
    vote = Vote([a, b], judge=judge)
    state = await _run(tmp_path, _one_task(vote, prompt="What is the capital of France?"))
    out = state.outputs()["t"]
    assert out["answer"] == "Paris is the capital of France."
    assert (out["decided_by"], out["reason"]) == ("judge", "correct and complete")
    asked = judge_model.calls[0]
    assert asked.output_schema is not None
    assert asked.output_schema["properties"]["choice"]["enum"] == [0, 1]
    assert "1. Lyon." in asked.messages[-1].content


def test_a_vote_needs_two_voters_and_a_known_rule() -> None:
    with pytest.raises(UserError, match="at least two voters"):
        Vote(_answers("x"))
    with pytest.raises(UserError, match="unknown rule 'most'"):
        Vote(_answers("x", "y"), rule="most")  # type: ignore[arg-type]


# -- evaluator-optimizer ------------------------------------------------------------------


async def test_refine_loops_until_the_evaluator_accepts(tmp_path: Path) -> None:
    writer, writer_model = _llm("writer", ["A slogan that is far too long", "Short slogan"])
    critic, critic_model = _llm("critic", [
        {"accept": False, "feedback": "fewer words"}, {"accept": True, "feedback": "good"}])
    refine = Refine(writer, critic, max_rounds=4)
    state = await _run(tmp_path, _one_task(refine, prompt="Write a slogan for tea."))
    out = state.outputs()["t"]
    assert (out["output"], out["stopped"], out["rounds"], out["accepted"]) == (
        "Short slogan", "accepted", 2, True)
    # Round 2's writer reads its last draft and the feedback; the critic reads the draft.
    second = writer_model.calls[1].messages[-1].content
    assert "A slogan that is far too long" in second and "fewer words" in second
    assert "Short slogan" in critic_model.calls[1].messages[-1].content
    assert critic_model.calls[0].output_schema is not None
    assert [c["agent"] for c in state.task("t").calls] == ["writer", "critic"] * 2


async def test_refine_stops_at_max_rounds_with_a_clear_status(tmp_path: Path) -> None:
    writer, writer_model = _llm("writer", ["draft 1", "draft 2", "draft 3"])
    critic, _ = _llm("critic", [{"accept": False, "feedback": "no"}] * 3)
    state = await _run(tmp_path, _one_task(Refine(writer, critic, max_rounds=2),
                                           prompt="Write."))
    out = state.outputs()["t"]
    assert state.status == "completed"
    assert (out["stopped"], out["accepted"], out["rounds"], out["output"]) == (
        "max_rounds", False, 2, "draft 2")
    assert len(writer_model.calls) == 2


async def test_an_evaluator_reply_that_is_no_verdict_fails_the_task(tmp_path: Path) -> None:
    def writer(topic: str) -> str:
        return topic

    def critic(draft: str) -> dict[str, Any]:
        return {"verdict": "fine"}

    state = await _run(tmp_path, _one_task(Refine(writer, critic), {"topic": "tea"}))
    assert state.status == "failed"
    assert "accept" in (state.task("t").error or "")


# -- supervisor with handoffs -------------------------------------------------------------


async def test_a_handoff_passes_only_the_chosen_context(tmp_path: Path) -> None:
    lead, lead_model = _llm("lead", [
        {"handoff_to": "billing", "context": "Refund order 77 (12.00)", "answer": ""}])
    billing, billing_model = _llm("billing", [
        {"handoff_to": "none", "context": "", "answer": "Refunded 12.00 on order 77."}],
        description="refunds and invoices")
    tech, _ = _llm("tech", [], description="errors and logins")
    desk = Supervisor(lead, [billing, tech], max_handoffs=3)
    state = await _run(tmp_path, _one_task(
        desk, prompt="Customer Ann Lee (ann@example.com) wants order 77 refunded."))
    out = state.outputs()["t"]
    assert out == {"output": "Refunded 12.00 on order 77.", "agent": "billing",
                   "stopped": "answered",
                   "handoffs": [{"from": "lead", "to": "billing",
                                 "context": "Refund order 77 (12.00)"}]}
    # The lead was offered the others by name and description, as structured output.
    schema = lead_model.calls[0].output_schema
    assert schema is not None
    assert schema["properties"]["handoff_to"]["enum"] == ["billing", "tech", "none"]
    assert "refunds and invoices" in lead_model.calls[0].messages[-1].content
    # Billing saw the context the lead chose, not the conversation (no email address).
    seen = " ".join(m.content for m in billing_model.calls[0].messages)
    assert "Refund order 77 (12.00)" in seen and "ann@example.com" not in seen


async def test_function_agents_hand_off_with_a_handoff_value(tmp_path: Path) -> None:
    def lead(request: str | None = None, context: Any = None, **_: Any) -> Any:
        return f"done: {context}" if context else Handoff(to="worker", context={"n": 2})

    def worker(context: dict[str, Any], **_: Any) -> Handoff:
        return Handoff(to="lead", context=context["n"] * 21)

    state = await _run(tmp_path, _one_task(Supervisor(lead, [worker]), {"request": "x"}))
    out = state.outputs()["t"]
    assert (out["output"], out["agent"], len(out["handoffs"])) == ("done: 42", "lead", 2)


async def test_endless_handoffs_stop_at_max_handoffs(tmp_path: Path) -> None:
    def ping(**_: Any) -> Handoff:
        return Handoff(to="pong", context="ball")

    def pong(**_: Any) -> Handoff:
        return Handoff(to="ping", context="ball")

    state = await _run(tmp_path, _one_task(Supervisor(ping, [pong], max_handoffs=3)))
    out = state.outputs()["t"]
    assert state.status == "completed"
    assert (out["stopped"], out["output"], len(out["handoffs"])) == ("max_handoffs", None, 3)
    assert out["unfollowed"] == {"from": "pong", "to": "ping", "context": "ball"}
    assert len(state.task("t").calls) == 4


async def test_a_handoff_to_an_unknown_agent_fails_naming_it(tmp_path: Path) -> None:
    def lead(**_: Any) -> Handoff:
        return Handoff(to="nobody_here")

    def other(**_: Any) -> str:
        return "x"

    state = await _run(tmp_path, _one_task(Supervisor(lead, [other], name="desk")))
    assert state.status == "failed"
    assert "'lead' handed off to 'nobody_here'" in (state.task("t").error or "")


# -- group discussion ---------------------------------------------------------------------


def _speaker(name: str, lines: list[str]) -> Any:
    said = iter(lines)

    def speak(thread: list[dict[str, Any]]) -> str:
        return next(said)
    speak.__name__ = name
    return speak


async def test_round_robin_until_a_message_says_so(tmp_path: Path) -> None:
    alice = _speaker("alice", ["Tuesday?", "Thursday then?"])
    bob = _speaker("bob", ["Not Tuesday.", "Thursday works. DONE"])
    talk = Discussion([alice, bob], until="DONE", max_turns=10)
    state = await _run(tmp_path, _one_task(talk))
    out = state.outputs()["t"]
    assert [t["speaker"] for t in out["thread"]] == ["alice", "bob", "alice", "bob"]
    assert (out["stopped"], out["turns"]) == ("until", 4)
    assert out["last"] == {"speaker": "bob", "message": "Thursday works. DONE"}


async def test_a_model_chooses_each_speaker_with_structured_output(tmp_path: Path) -> None:
    expert, expert_model = _llm("expert", ["Use a B-tree index."],
                                description="knows databases")
    sceptic, _ = _llm("sceptic", ["What about write load?"], description="asks questions")
    chair, chair_model = _llm("chair", [
        {"speaker": "sceptic"}, {"speaker": "expert"}, {"speaker": "finish"}])
    talk = Discussion([expert, sceptic], speaker=chair, max_turns=5)
    state = await _run(tmp_path, _one_task(talk, prompt="How do we speed up lookups?"))
    out = state.outputs()["t"]
    assert [t["speaker"] for t in out["thread"]] == ["sceptic", "expert"]
    assert (out["stopped"], out["turns"]) == ("finish", 2)
    schema = chair_model.calls[0].output_schema
    assert schema is not None
    assert schema["properties"]["speaker"]["enum"] == ["expert", "sceptic", "finish"]
    assert "knows databases" in chair_model.calls[0].messages[-1].content
    # The expert read the thread so far: the sceptic's question.
    assert "sceptic: What about write load?" in expert_model.calls[0].messages[-1].content
    assert [c["agent"] for c in state.task("t").calls] == [
        "chair", "sceptic", "chair", "expert", "chair"]


async def test_a_discussion_that_never_ends_stops_at_max_turns(tmp_path: Path) -> None:
    a = _speaker("a", ["more"] * 10)
    b = _speaker("b", ["more"] * 10)
    state = await _run(tmp_path, _one_task(Discussion([a, b], until="DONE", max_turns=3)))
    out = state.outputs()["t"]
    assert state.status == "completed"
    assert (out["stopped"], out["turns"]) == ("max_turns", 3)
    assert [t["speaker"] for t in out["thread"]] == ["a", "b", "a"]


async def test_a_predicate_can_end_a_discussion(tmp_path: Path) -> None:
    a = _speaker("a", ["1", "2", "3"])
    b = _speaker("b", ["1", "2", "3"])
    talk = Discussion([a, b], until=lambda thread: len(thread) == 2)
    state = await _run(tmp_path, _one_task(talk))
    assert state.outputs()["t"]["stopped"] == "until"
    assert state.outputs()["t"]["turns"] == 2


def test_loop_bounds_must_be_positive() -> None:
    a, b = _speaker("a", []), _speaker("b", [])
    with pytest.raises(UserError, match="max_rounds must be at least 1"):
        Refine(a, b, max_rounds=0)
    with pytest.raises(UserError, match="max_handoffs must be at least 1"):
        Supervisor(a, [b], max_handoffs=0)
    with pytest.raises(UserError, match="max_turns must be at least 1"):
        Discussion([a, b], max_turns=0)


async def test_sub_agents_named_in_a_workflow_are_looked_up_there(tmp_path: Path) -> None:
    wf = Workflow("by-name")
    wf.add_agent("yes", lambda: "yes")
    wf.add_agent("no", lambda: "no")
    wf.add_agent("also_yes", lambda: "yes")
    wf.add_agent("panel", Vote(["yes", "no", "also_yes"], name="panel", registry=wf.agents))
    wf.add_agent("typo", Vote(["yes", "nope"], name="typo", registry=wf.agents))
    wf.add_task("t", agent="panel")
    wf.add_task("u", agent="typo", needs=["t"])
    state = await _run(tmp_path, wf)
    assert state.outputs()["t"]["answer"] == "yes"
    assert "no agent named 'nope'" in (state.task("u").error or "")
    assert json.dumps(state.record())  # the record, sub-calls included, is JSON
