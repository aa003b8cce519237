"""The faithfulness check in runs, with the scripted model: the unsupported claims go back to
the model, are journaled, and once the repairs are spent the task's policy acts (retry,
fallback, default). Declared in Python and in YAML; bad declarations name the place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from podium import (
    Engine,
    Faithful,
    LLMAgent,
    RetryPolicy,
    RunState,
    SQLiteStore,
    Workflow,
    WorkflowError,
    parse_workflow,
)
from podium.testing import ScriptedModel

PROMPT = "Summarise: income 77325.13, expenses 73201.81 in October 2026, most on Travel."
GOOD = {"text": "In October 2026 income was $77,325.13 and expenses $73.2k, most on Travel."}
BAD = {"text": "In October 2026 income was $773,25.13, up 12% thanks to Acme Corp."}
SCHEMA: dict[str, Any] = {"type": "object", "required": ["text"],
                          "properties": {"text": {"type": "string"}}}


def _workflow(agent: LLMAgent, **task: Any) -> Workflow:
    wf = Workflow("faithful")
    wf.add_agent("writer", agent)
    wf.add_agent("template", lambda: {"text": "Income was 77,325.13."})
    wf.add_task("overview", agent="writer", prompt=PROMPT, output=SCHEMA, **task)
    return wf


async def _events(store: SQLiteStore, state: RunState, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in await store.events(state.run_id) if e.type == kind]


async def test_unsupported_claims_go_back_to_the_model_and_the_repair_is_used(
        store: SQLiteStore) -> None:
    model = ScriptedModel([BAD, GOOD])
    agent = LLMAgent(model, name="writer", checks=[Faithful()])

    state = await Engine(store).start(_workflow(agent))

    assert state.status == "completed", state.error
    assert state.outputs()["overview"] == GOOD
    # Asked again without the unfaithful reply, the claims named under the task.
    *_, asked = model.calls[1].messages
    assert [m.role for m in model.calls[1].messages] == [m.role for m in model.calls[0].messages]
    assert asked.role == "user"
    assert asked.content.startswith(
        f"{PROMPT}\n\nAn earlier reply to this stated things that are not in the data "
        "given: '$773,25.13', '12%', 'Acme Corp'. Use only figures")
    assert asked.content.endswith("Reply with JSON only.")
    checked = await _events(store, state, "output_checked")
    assert [(c["passed"], c.get("repair")) for c in checked] == [(False, None), (True, 1)]
    assert [c["text"] for c in checked[0]["claims"]] == ["$773,25.13", "12%", "Acme Corp"]
    assert all(c["ms"] >= 0 for c in checked)
    assert [c.get("repair") for c in await _events(store, state, "model_call")] == [None, 1]
    assert await _events(store, state, "attempt_failed") == []


async def test_spent_repairs_fail_the_attempt_then_the_fallback_writes(
        store: SQLiteStore) -> None:
    model = ScriptedModel([BAD, BAD])
    agent = LLMAgent(model, name="writer", checks=[Faithful()], max_repairs=1)

    state = await Engine(store).start(_workflow(agent, fallback=["template"]))

    assert state.status == "completed", state.error
    assert state.task("overview").agent == "template"
    (failed,) = await _events(store, state, "attempt_failed")
    assert failed["error_type"] == "Unfaithful" and failed["decision"] == "fallback"
    assert "gave no answer faithful to the task's data after 1 repair(s)" in failed["error"]
    assert "'Acme Corp' (entities at text)" in failed["error"]
    assert [c["text"] for c in failed["claims"]] == ["$773,25.13", "12%", "Acme Corp"]
    assert len(model.calls) == 2


async def test_a_retry_asks_afresh_and_the_default_ends_it(store: SQLiteStore) -> None:
    model = ScriptedModel([BAD, BAD, BAD, BAD])
    agent = LLMAgent(model, name="writer", checks=[Faithful()], max_repairs=1)
    wf = _workflow(agent, retry=RetryPolicy(attempts=2), default={"text": "unavailable"})

    state = await Engine(store).start(wf)

    assert state.status == "completed"
    assert state.outputs()["overview"] == {"text": "unavailable"}
    assert state.task("overview").defaulted
    decisions = [f["decision"] for f in await _events(store, state, "attempt_failed")]
    assert decisions == ["retry", "default"]
    assert len(model.calls) == 4
    assert model.calls[2].messages[-1].content == PROMPT  # the retry starts anew


async def test_a_task_check_applies_to_whichever_agent_writes(store: SQLiteStore) -> None:
    model = ScriptedModel([BAD, GOOD])
    wf = Workflow("faithful")
    wf.add_agent("writer", LLMAgent(model, name="writer"))
    wf.add_agent("template", lambda: {"text": "Income was 99,999.99."})
    wf.add_task("overview", agent="writer", prompt=PROMPT, output=SCHEMA,
                checks=[Faithful()], fallback=["template"], default={"text": "none"})

    state = await Engine(store).start(wf)

    # The model was told and repaired; the engine checked the result again.
    assert state.outputs()["overview"] == GOOD
    assert "'Acme Corp'" in model.calls[1].messages[-1].content

    model = ScriptedModel([BAD, BAD, BAD])
    wf.agents["writer"] = LLMAgent(model, name="writer")
    state = await Engine(store).start(wf)

    # The function fallback cannot be told, but is checked all the same: the default ends it.
    failures = await _events(store, state, "attempt_failed")
    assert [(f["agent"], f["error_type"]) for f in failures] == [
        ("writer", "Unfaithful"), ("template", "Unfaithful")]
    assert failures[1]["claims"] == [{"kind": "numbers", "text": "99,999.99", "where": "text"}]
    assert state.outputs()["overview"] == {"text": "none"}


async def test_a_reply_with_too_few_figures_is_asked_again(store: SQLiteStore) -> None:
    model = ScriptedModel([{"text": "A summary of the figures."}, GOOD])
    agent = LLMAgent(model, name="writer", checks=[Faithful(min_figures=2)])

    state = await Engine(store).start(_workflow(agent))

    assert state.outputs()["overview"] == GOOD
    assert "State at least 2 of the amounts" in model.calls[1].messages[-1].content
    first, second = await _events(store, state, "output_checked")
    assert not first["passed"] and first["claims"] == [] and "min_figures" in first["error"]
    assert second["passed"]


async def test_a_plain_text_reply_is_checked_too(store: SQLiteStore) -> None:
    model = ScriptedModel(["Income hit 1,000,000.", "Income was 77,325.13."])
    wf = Workflow("faithful")
    wf.add_agent("writer", LLMAgent(model, name="writer", checks=[Faithful()]))
    wf.add_task("overview", agent="writer", prompt=PROMPT)

    state = await Engine(store).start(wf)

    assert state.outputs()["overview"] == "Income was 77,325.13."
    told = model.calls[1].messages[-1].content
    assert "'1,000,000'" in told and "JSON" not in told


async def test_the_reply_cache_keeps_only_faithful_replies(store: SQLiteStore) -> None:
    first = ScriptedModel([BAD, GOOD])
    wf = _workflow(LLMAgent(first, name="writer", checks=[Faithful()], cache=True))
    await Engine(store).start(wf)

    again = ScriptedModel([GOOD])
    wf.agents["writer"] = LLMAgent(again, name="writer", checks=[Faithful()], cache=True)
    state = await Engine(store).start(wf)

    # The unfaithful first reply was not kept: the same request is asked afresh.
    assert state.outputs()["overview"] == GOOD
    assert len(again.calls) == 1


# -- YAML -------------------------------------------------------------------------------------

YAML = """\
name: report
inputs:
  month: {type: string}
agents:
  writer:
    model: local
    checks:
      faithful: {sources: [prompt], tolerance: 0.01, allow: [2026], kinds: [numbers, dates]}
  template:
    function: examples.finance.agents:previous_month
tasks:
  analyse:
    agent: template
  overview:
    agent: writer
    needs: [analyse]
    prompt: "Figures: {{ outputs.analyse }}"
    checks:
      faithful: {sources: [prompt, outputs.analyse, inputs.month]}
  again:
    agent: writer
    needs: [overview]
    checks: {faithful: true}
"""


def test_yaml_declares_checks_on_agents_and_tasks() -> None:
    wf = parse_workflow(YAML, "report.yaml")
    writer = wf.agents["writer"]
    assert isinstance(writer, LLMAgent)
    assert writer.checks == (Faithful(sources=("prompt",), tolerance=0.01, allow=(2026,),
                                      kinds=("numbers", "dates")),)
    assert wf.tasks["overview"].checks == (
        Faithful(sources=("prompt", "outputs.analyse", "inputs.month")),)
    assert wf.tasks["again"].checks == (Faithful(),)
    assert wf.tasks["analyse"].checks == ()


@pytest.mark.parametrize(("old", "new", "line", "field", "says"), [
    ("kinds: [numbers, dates]", "kinds: [numbers, colours]", 8,
     "agents.writer.checks.faithful.kinds.1", "'numbers', 'currency'"),
    ("tolerance: 0.01", "tolerance: 2", 8, "agents.writer.checks.faithful.tolerance",
     "less than 1"),
    ("sources: [prompt], ", "sources: [memory], ", 8, "agents.writer.checks.faithful.sources",
     "'memory' is not a source"),
    ("{faithful: true}", "{faithfull: true}", 23, "tasks.again.checks.faithfull",
     "unknown field 'faithfull'"),
    ("outputs.analyse, inputs.month", "outputs.again, inputs.month", 19,
     "tasks.overview.checks.faithful.sources", "does not depend on a task 'again'"),
    ("outputs.analyse, inputs.month", "outputs.analyse, inputs.day", 19,
     "tasks.overview.checks.faithful.sources", "no input 'day'"),
])
def test_bad_declarations_name_the_file_line_and_field(old: str, new: str, line: int,
                                                        field: str, says: str) -> None:
    assert old in YAML
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(YAML.replace(old, new), "report.yaml")
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == ("report.yaml", line, field)
    assert says in problem.message


def test_the_monthly_report_checks_its_overview() -> None:
    root = Path(__file__).resolve().parents[2]
    wf = parse_workflow((root / "examples" / "monthly_report.yaml").read_text(),
                        "monthly_report.yaml", base=root)
    writer = wf.agents["writer"]
    assert isinstance(writer, LLMAgent)
    assert writer.checks == (Faithful(sources=("prompt",), min_figures=2),)
    assert wf.tasks["overview"].policy.fallback == ("template_writer",)
