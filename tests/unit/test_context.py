"""Context within a budget: shared notes, session threads, token counting, and prompt
assembly in priority order, in real workflows on SQLite with the scripted model (whose
`.calls` show exactly what was sent)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from podium import (
    ContextOptions,
    ContextTooLarge,
    Engine,
    InputSpec,
    LLMAgent,
    RetryPolicy,
    RunState,
    SQLiteStore,
    TaskContext,
    Workflow,
    parse_workflow,
)
from podium.agents.context import prompt_budget, truncate
from podium.cli._context import context_lines
from podium.core.events import Event
from podium.errors import WorkflowError
from podium.models import known_window
from podium.models.base import Message
from podium.models.tokens import TokenCounter, estimate_tokens
from podium.testing import ScriptedModel


def _system(model: ScriptedModel, call: int = -1) -> str:
    messages = model.calls[call].messages
    return messages[0].content if messages[0].role == "system" else ""


async def _events(store: SQLiteStore, state: RunState, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in await store.events(state.run_id) if e.type == kind]


# -- shared notes ----------------------------------------------------------------------


async def test_a_note_is_journaled_and_reaches_a_later_agent_that_opts_in(
        store: SQLiteStore) -> None:
    async def scout(ctx: TaskContext) -> str:
        await ctx.note("the customer prefers email")
        await ctx.note("invoice 1042 is disputed")
        return "scouted"

    seen: list[list[Any]] = []

    async def reader(ctx: TaskContext) -> int:
        seen.append([n["text"] for n in ctx.notes])
        return len(ctx.notes)

    model = ScriptedModel(["reply", "reply"])
    wf = Workflow("notes")
    wf.add_agent("scout", scout)
    wf.add_agent("reader", reader)
    wf.add_agent("writer", LLMAgent(model, name="writer", instructions="Write.",
                                    context=ContextOptions(notes=True)))
    wf.add_agent("blind", LLMAgent(model, name="blind", instructions="Write."))
    wf.add_task("scout", agent="scout")
    wf.add_task("read", agent="reader", needs=["scout"])
    wf.add_task("write", agent="writer", prompt="Reply to the customer.", needs=["read"])
    wf.add_task("blind", agent="blind", prompt="Reply.", needs=["write"])
    state = await Engine(store).start(wf)

    assert state.status == "completed", state.error
    assert await _events(store, state, "note_added") == [
        {"text": "the customer prefers email"}, {"text": "invoice 1042 is disputed"}]
    assert seen == [["the customer prefers email", "invoice 1042 is disputed"]]
    assert [(n["by"], n["text"]) for n in state.record()["notes"]] == [
        ("scout", "the customer prefers email"), ("scout", "invoice 1042 is disputed")]
    system = _system(model, 0)
    assert system.startswith("Write.\n\n## Shared notes of this run")
    assert "- (scout) the customer prefers email\n- (scout) invoice 1042 is disputed" in system
    assert _system(model, 1) == "Write."  # an agent that did not opt in sees none
    assert model.calls[0].messages[-1] == Message(role="user", content="Reply to the customer.")


def test_a_task_run_again_after_a_crash_keeps_its_note_once() -> None:
    def event(seq: int, kind: str, data: dict[str, Any], task: str | None = "t") -> Event:
        return Event(run_id="r", seq=seq, type=kind, task=task, data=data, ts=float(seq))

    state = RunState.of("r", [
        event(1, "run_started", {"workflow": "w", "inputs": {}}, None),
        event(2, "note_added", {"text": "same"}), event(3, "run_resumed", {}, None),
        event(4, "note_added", {"text": "same"}), event(5, "note_added", {"text": "new"}),
    ])
    assert [n["text"] for n in state.notes] == ["same", "new"]


async def test_an_empty_note_is_refused_naming_the_task(store: SQLiteStore) -> None:
    async def bad(ctx: TaskContext) -> None:
        await ctx.note("  ")

    wf = Workflow("bad-note")
    wf.add_agent("bad", bad)
    wf.add_task("t", agent="bad")
    state = await Engine(store).start(wf)
    assert state.status == "failed"
    assert "task 't': a note is a non-empty string" in (state.tasks["t"].error or "")


async def test_the_note_tool_lets_a_model_write_a_note(store: SQLiteStore) -> None:
    model = ScriptedModel([
        {"tool_calls": [{"name": "note", "arguments": {"text": "deadline is Friday"}}]},
        "noted it", "final"])
    wf = Workflow("note-tool")
    wf.add_agent("a", LLMAgent(model, name="a", context=ContextOptions(note_tool=True)))
    wf.add_agent("b", LLMAgent(model, name="b", context=ContextOptions(notes=True)))
    wf.add_task("first", agent="a", prompt="Find the deadline.")
    wf.add_task("second", agent="b", prompt="Plan.", needs=["first"])
    state = await Engine(store).start(wf)

    assert state.status == "completed", state.error
    assert [t.name for t in model.calls[0].tools] == ["note"]
    assert state.notes[0]["text"] == "deadline is Friday" and state.notes[0]["by"] == "first"
    assert "- (first) deadline is Friday" in _system(model, 2)


# -- sessions --------------------------------------------------------------------------


def _chat(model: ScriptedModel, **options: Any) -> Workflow:
    # A trusted input: the system message is compared as written, with no notice about
    # untrusted content (docs/tools-security.md).
    wf = Workflow("chat", inputs={"question": InputSpec(type="string", trusted=True)})
    wf.add_agent("bot", LLMAgent(model, name="bot", instructions="Answer.",
                                 context=ContextOptions(**options) if options else None))
    wf.add_task("answer", agent="bot", prompt="{{ inputs.question }}")
    return wf


async def test_a_session_shares_earlier_runs_inputs_and_outputs(store: SQLiteStore) -> None:
    model = ScriptedModel(["Your code word is PAPAYA.", "PAPAYA", "no idea", "no idea"])
    engine = Engine(store)
    first = await engine.start(_chat(model), {"question": "Give me a code word."},
                               session="chat-1")
    second = await engine.start(_chat(model), {"question": "What was my code word?"},
                                session="chat-1")
    other = await engine.start(_chat(model), {"question": "What was my code word?"},
                               session="chat-2")
    alone = await engine.start(_chat(model), {"question": "What was my code word?"})

    assert [s.status for s in (first, second, other, alone)] == ["completed"] * 4
    assert _system(model, 0) == "Answer."  # the session's first run has no thread yet
    thread = _system(model, 1)
    assert "## Earlier in this session (oldest first)" in thread
    assert f"[run {first.run_id} · chat · " in thread
    assert 'inputs: {"question": "Give me a code word."}' in thread
    assert "answer: Your code word is PAPAYA." in thread
    assert _system(model, 2) == "Answer." and _system(model, 3) == "Answer."
    assert second.record()["session"] == "chat-1"
    [assembled] = second.tasks["answer"].context
    assert assembled["sections"]["session"] == {
        "entries": 2, "kept": 2, "tokens": assembled["sections"]["session"]["tokens"],
        "dropped": 0, "truncated": 0, "summarised": 0}
    assert assembled["counted"] == "estimate" and assembled["dropped"] == []


async def test_an_agent_can_opt_out_of_the_session_thread(store: SQLiteStore) -> None:
    model = ScriptedModel(["one", "two"])
    engine = Engine(store)
    await engine.start(_chat(model, session=False), {"question": "a"}, session="s")
    await engine.start(_chat(model, session=False), {"question": "b"}, session="s")
    assert _system(model, 1) == "Answer."


async def test_a_blank_session_is_refused(store: SQLiteStore) -> None:
    with pytest.raises(Exception, match="session must be a non-empty string"):
        await Engine(store).start(_chat(ScriptedModel(["x"])), {"question": "a"}, session=" ")


def _summarising(messages: Sequence[Message], schema: Any) -> str:
    if messages[0].content.startswith("You condense"):
        return "SUMMARY: the user asked about orders 1 to 3."
    return "fine"


async def test_the_oldest_of_a_long_session_are_summarised_within_the_budget(
        store: SQLiteStore) -> None:
    model = ScriptedModel(_summarising)
    engine = Engine(store)
    runs = [await engine.start(_chat(model, summary_tokens=40), {"question": f"order {n}? "
                                                                 + "detail " * 40},
                               session="long") for n in range(1, 6)]
    budget_wf = Workflow("chat", inputs={"question": InputSpec(type="string")})
    budget_wf.add_agent("bot", LLMAgent(model, name="bot", instructions="Answer.",
                                        context=ContextOptions(summary_tokens=40),
                                        context_budget=400))
    budget_wf.add_task("answer", agent="bot", prompt="{{ inputs.question }}")
    last = await engine.start(budget_wf, {"question": "and now?"}, session="long")

    assert last.status == "completed", last.error
    summary_call, final_call = model.calls[-2], model.calls[-1]
    # The summariser got the oldest entries, in a bounded prompt, and a bound on its reply.
    assert summary_call.max_tokens == 40
    assert f"[run {runs[0].run_id} · chat · " in summary_call.messages[1].content
    sent = final_call.messages[0].content
    assert "[summary of " in sent and "SUMMARY: the user asked about orders 1 to 3." in sent
    assert f"[run {runs[-1].run_id}" in sent  # the newest stay verbatim
    assert f"[run {runs[0].run_id}" not in sent
    assert TokenCounter(model).messages(final_call.messages) <= 400
    [assembled] = last.tasks["answer"].context
    session = assembled["sections"]["session"]
    assert session["entries"] == 10 and session["summarised"] > 0
    assert assembled["used"] <= assembled["budget"] == 400
    assert assembled["budget_source"] == "context_budget"
    how = {d["how"] for d in assembled["dropped"]}
    assert "summarised" in how and all(d["section"] == "session" for d in assembled["dropped"])
    summaries = [d for d in await _events(store, last, "model_call") if d.get("summary")]
    assert len(summaries) == 1
    lines = context_lines(last.record()["tasks"][0])
    assert lines[0].startswith("  answer · context ") and "summarised" in lines[0]
    assert any(f"summarised from session: run {runs[0].run_id} inputs" in line
               for line in lines)


# -- priority order --------------------------------------------------------------------


async def test_a_tight_budget_gives_way_from_the_lowest_priority_first(
        store: SQLiteStore) -> None:
    async def upstream(ctx: TaskContext) -> dict[str, str]:
        await ctx.note("old note " + "n" * 300)
        await ctx.note("new note " + "m" * 300)
        return {"total": "42"}

    engine = Engine(store)
    model = ScriptedModel(["earlier answer " + "e" * 600] + ["done"] * 3)
    first = await engine.start(_chat(model), {"question": "earlier"}, session="tight")

    wf = Workflow("tight")
    wf.add_agent("up", upstream)
    wf.add_agent("bot", LLMAgent(
        model, name="bot", instructions="Use what you know.", context_budget=220,
        context=ContextOptions(outputs=True, notes=True, summarise=False)))
    wf.add_task("up", agent="up")
    wf.add_task("answer", agent="bot", prompt="What is the total?", needs=["up"])
    state = await engine.start(wf, session="tight")

    assert state.status == "completed", state.error
    [assembled] = state.tasks["answer"].context
    sections = assembled["sections"]
    assert sections["outputs"]["kept"] == 1 and sections["outputs"]["dropped"] == 0
    assert sections["notes"]["entries"] == 2 and sections["notes"]["kept"] == 2
    assert sections["notes"]["truncated"] == 1
    assert sections["session"] == {"entries": 2, "kept": 0, "tokens": 0, "dropped": 2,
                                   "truncated": 0, "summarised": 0}
    dropped = [(d["section"], d["item"], d["how"]) for d in assembled["dropped"]]
    # The oldest note gives way first (here cut to the room left), the session entirely.
    assert dropped == [("notes", "note by 'up'", "truncated"),
                       ("session", f"run {first.run_id} inputs", "dropped"),
                       ("session", f"run {first.run_id} output of 'answer'", "dropped")]
    sent = model.calls[-1].messages
    assert sent[0].content.startswith("Use what you know.")  # instructions never dropped
    assert sent[-1].content == "What is the total?"  # nor the task
    assert '{"total": "42"}' in sent[0].content
    assert "new note " + "m" * 300 in sent[0].content
    assert "n" * 300 not in sent[0].content and "… [truncated]" in sent[0].content
    assert "earlier answer" not in sent[0].content
    assert TokenCounter(model).messages(sent) <= 220


async def test_memories_are_placed_and_the_least_relevant_give_way(
        store: SQLiteStore) -> None:
    from podium.agents.context import assemble
    from podium.core.agent import TaskInput

    model = ScriptedModel(["x"])
    agent = LLMAgent(model, name="m", instructions="Hi.", context_budget=120)
    ctx = TaskContext(run_id="r", task_id="t", attempt=1, idempotency_key="k", inputs={},
                      outputs={})
    task = TaskInput(args={}, prompt="Q?", memories=(
        {"text": "most relevant fact", "source": "crm"}, "second fact " + "s" * 200,
        "least relevant " + "l" * 400))
    messages = await assemble(agent, model, task, ctx)
    system = messages[0].content
    assert "## Retrieved memories (most relevant first)\n- most relevant fact" in system
    assert "least relevant" not in system


async def test_instructions_that_cannot_fit_fail_naming_the_agent_and_numbers(
        store: SQLiteStore) -> None:
    model = ScriptedModel(["never"])
    wf = Workflow("too-big")
    wf.add_agent("verbose", LLMAgent(model, name="verbose", instructions="rule " * 200,
                                     context_budget=100))
    wf.add_task("t", agent="verbose", prompt="Go.", retry=RetryPolicy(attempts=3))
    state = await Engine(store).start(wf)

    assert state.status == "failed" and model.calls == []
    error = state.tasks["t"].error or ""
    assert error.startswith("ContextTooLarge: agent 'verbose': its instructions and the task "
                            "take ")
    assert "estimated at 3 bytes a token), more than its prompt budget of 100 (its " \
           "context_budget)" in error
    assert state.tasks["t"].attempts == 1  # trying again cannot help
    [failed] = await _events(store, state, "attempt_failed")
    assert (failed["error_type"], failed["decision"]) == (ContextTooLarge.__name__, "fail")


def test_the_budget_comes_from_the_window_less_the_reply() -> None:
    windowed = ScriptedModel(["x"], context_window=2048)
    assert prompt_budget(LLMAgent(windowed, name="a", max_tokens=300), windowed).tokens == 1748
    assert prompt_budget(LLMAgent(windowed, name="a"), windowed).tokens == 1536
    unknown = ScriptedModel(["x"])
    budget = prompt_budget(LLMAgent(unknown, name="a"), unknown)
    assert (budget.tokens, budget.source) == (8192, "default")
    assert known_window("anthropic:claude-3-5-haiku-latest") == 200_000
    assert known_window("openai:gpt-4o-mini-2024-07-18") == 128_000
    assert known_window("openai:my-own") is None


# -- counting --------------------------------------------------------------------------


def test_the_estimate_is_a_third_of_the_utf8_bytes_rounded_up() -> None:
    assert [estimate_tokens(t) for t in ("", "abc", "abcd", "é", "日本語")] == [0, 1, 2, 1, 3]


def test_truncation_fits_its_room_and_says_so() -> None:
    text = "word " * 500
    cut = truncate(text, 50, estimate_tokens)
    assert estimate_tokens(cut) <= 50 and cut.endswith("… [truncated]")
    assert truncate("short", 50, estimate_tokens) == "short"


# -- YAML ------------------------------------------------------------------------------


def test_yaml_context_settings_reach_the_agent() -> None:
    wf = parse_workflow("""
name: y
agents:
  bot:
    model: local
    context: {notes: true, outputs: true, session: false, note_tool: true,
              summariser: local, summary_tokens: 64}
    context_budget: 900
tasks:
  t: {agent: bot, prompt: hi}
""")
    agent = wf.agents["bot"]
    assert isinstance(agent, LLMAgent)
    assert agent.context_budget == 900
    assert (agent.context.notes, agent.context.outputs, agent.context.session,
            agent.context.note_tool, agent.context.summary_tokens) == (
        True, True, False, True, 64)
    assert callable(agent.context.summariser)


def test_yaml_context_mistakes_name_the_field() -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow("""
name: y
agents:
  f: {function: "json:dumps", context: {notes: true}}
  bot:
    model: local
    context: {notes: yes, summariser: gpt-4, bogus: 1}
    context_budget: 0
tasks:
  t: {agent: bot, prompt: hi}
""", "w.yaml")
    shown = json.dumps([str(p) for p in caught.value.problems])
    assert "w.yaml:4: agents.f.context: only model agents take context" in shown
    assert "agents.bot.context.bogus: unknown field 'bogus'" in shown
    assert "agents.bot.context_budget" in shown
