"""The graph patterns (chain, route, parallel sectioning, orchestrator-workers) built with
the Python API: the tasks they add, what each is given, and the pattern's result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from podium import Engine, InputSpec, LLMAgent, RunState, SQLiteStore, Workflow
from podium.errors import WorkflowError
from podium.patterns import Step, chain, orchestrate, parallel, route
from podium.testing import ScriptedModel


async def _run(tmp_path: Path, wf: Workflow, inputs: dict[str, Any] | None = None
               ) -> RunState:
    store = SQLiteStore(tmp_path / "journal.db")
    try:
        return await Engine(store).start(wf, inputs)
    finally:
        await store.close()


async def test_a_chain_hands_each_step_the_last_output(tmp_path: Path) -> None:
    wf = Workflow("chain", inputs={"text": InputSpec(type="string")})
    wf.add_agent("split", lambda text: text.split())
    wf.add_agent("count", lambda input: len(input))
    wf.add_agent("say", lambda input, unit: f"{input} {unit}")
    tasks = chain(wf, "words", ["split", "count", Step(agent="say", options={
        "args": {"unit": "words"}})], args={"text": "{{ inputs.text }}"})
    assert [t.id for t in tasks] == ["words_split", "words_count", "words"]
    assert [t.needs for t in tasks] == [(), ("words_split",), ("words_count",)]
    state = await _run(tmp_path, wf, {"text": "one two three"})
    assert state.outputs()["words"] == "3 words"


def test_a_chain_numbers_an_agent_that_comes_twice() -> None:
    wf = Workflow("twice")
    wf.add_agent("inc", lambda input=0: input + 1)
    ids = [t.id for t in chain(wf, "n", ["inc", "inc", "inc"])]
    assert ids == ["n_inc_1", "n_inc_2", "n"]


@pytest.mark.parametrize(("message", "desk"), [
    ("my invoice is wrong", "billing"), ("the app crashes", "technical")])
async def test_a_route_runs_only_the_branch_the_classifier_picks(
        tmp_path: Path, message: str, desk: str) -> None:
    model = ScriptedModel(lambda messages, schema: {
        "route": "billing" if "invoice" in messages[-1].content else "technical"})
    wf = Workflow("route", inputs={"message": InputSpec(type="string")})
    wf.add_agent("classify", LLMAgent(model, name="classify"))
    wf.add_agent("billing", lambda message: f"billing: {message}")
    wf.add_agent("technical", lambda message: f"technical: {message}")
    route(wf, "desk", classifier="classify",
          branches={"billing": "billing", "technical": "technical"},
          args={"message": "{{ inputs.message }}"}, prompt="Route: {{ inputs.message }}")
    state = await _run(tmp_path, wf, {"message": message})
    assert state.outputs()["desk"] == {"route": desk, "output": f"{desk}: {message}"}
    other = "technical" if desk == "billing" else "billing"
    assert state.task(f"desk_{other}").status == "skipped"
    # The classifier was asked for structured output naming a branch.
    schema = model.calls[0].output_schema
    assert schema is not None
    assert schema["properties"]["route"]["enum"] == ["billing", "technical"]


async def test_a_route_label_outside_the_branches_fails_the_classifier(
        tmp_path: Path) -> None:
    wf = Workflow("route-bad")
    wf.add_agent("classify", lambda: {"route": "sales"})
    wf.add_agent("a", lambda: "a")
    route(wf, "r", classifier="classify", branches={"a": "a"})
    state = await _run(tmp_path, wf)
    assert state.status == "failed"
    assert "sales" in (state.task("r_classify").error or "")


async def test_parallel_sections_run_at_once_and_join(tmp_path: Path) -> None:
    wf = Workflow("sections", inputs={"text": InputSpec(type="string")})
    wf.add_agent("words", lambda text: len(text.split()))
    wf.add_agent("chars", lambda text: len(text))
    wf.add_agent("card", lambda sections: f"{sections['w']} words, {sections['c']} chars")
    tasks = parallel(wf, "stats", {"w": "words", "c": "chars"},
                     args={"text": "{{ inputs.text }}"})
    assert [t.needs for t in tasks[:2]] == [(), ()]  # independent: they run at once
    state = await _run(tmp_path, wf, {"text": "a bc"})
    assert state.outputs()["stats"] == {"sections": {"w": 2, "c": 4}}
    parallel(wf, "summary", {"w": "words", "c": "chars"}, combine="card",
             args={"text": "{{ inputs.text }}"})
    state = await _run(tmp_path, wf, {"text": "a bc"})
    assert state.outputs()["summary"] == "2 words, 4 chars"


async def test_orchestrator_fans_out_to_workers_and_synthesises(tmp_path: Path) -> None:
    wf = Workflow("orchestrate", inputs={"topic": InputSpec(type="string")})
    wf.add_agent("plan", lambda topic: {"items": [f"{topic} {n}" for n in range(5)]})
    wf.add_agent("work", lambda item: item.upper())
    wf.add_agent("join", lambda results, planned: f"{'; '.join(results)} ({planned} planned)")
    orchestrate(wf, "report", planner="plan", worker="work", synthesizer="join",
                args={"topic": "{{ inputs.topic }}"}, concurrency=2, max_items=3)
    state = await _run(tmp_path, wf, {"topic": "part"})
    # At most max_items workers ran; the synthesiser is told how many were planned.
    assert state.task("report_work").fanout == 3
    assert state.outputs()["report"] == "PART 0; PART 1; PART 2 (5 planned)"


async def test_a_plan_that_is_not_a_list_fails_the_workers_clearly(tmp_path: Path) -> None:
    wf = Workflow("orchestrate-bad")
    wf.add_agent("plan", lambda: "not a list")
    wf.add_agent("work", lambda item: item)
    orchestrate(wf, "o", planner="plan", worker="work")
    state = await _run(tmp_path, wf)
    assert state.status == "failed"
    assert "not a list" in (state.task("o_work").error or "")


def test_a_pattern_naming_an_unknown_agent_is_a_workflow_error() -> None:
    wf = Workflow("unknown")
    wf.add_agent("a", lambda: 1)
    chain(wf, "c", ["a", "nope"])
    with pytest.raises(WorkflowError, match="unknown agent 'nope'"):
        wf.check()
