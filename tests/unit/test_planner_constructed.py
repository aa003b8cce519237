"""Constructed plans with the scripted model: the model only says which listed skills to
use, under a schema that admits nothing else; Podium orders them, binds each task's needs
and arguments from the agents' parameters and `provides`, and refuses with reasons what
cannot be bound."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from podium import (
    Engine,
    Event,
    FunctionAgent,
    InputSpec,
    PlannerConfig,
    RunState,
    SQLiteStore,
    Workflow,
    load_workflow,
)
from podium.engine import _constructed as constructed
from podium.engine.planner import Planner
from podium.testing import ScriptedModel

HANG = 10.0


def read(month: str) -> dict[str, Any]:
    return {"month": month, "rows": [3, 4, 5]}


def add_up(rows: dict[str, Any]) -> int:
    return sum(rows["rows"])


def write(total: int, approval: Any, month: str) -> str:
    return f"{month}: {total} ({'approved' if approval is not None else 'unapproved'})"


def count(rows: dict[str, Any]) -> int:
    """An agent whose output goes by `plan`, the planning step's own key."""
    return len(rows["rows"])


def workflow(model: ScriptedModel, **config: Any) -> Workflow:
    wf = Workflow("report", inputs={"month": InputSpec(type="string")},
                  goal="report the total for {{ month }} once a person approves",
                  planner=PlannerConfig(model=model, form="constructed", **config))
    # Declared out of order on purpose: the listing puts each after what it uses.
    for name, fn, skill, provides in [("writer", write, "write_report", "report"),
                                      ("adder", add_up, "add_up", "total"),
                                      ("reader", read, "read_rows", "rows")]:
        agent = FunctionAgent(fn, name=name, skills=[skill], description=f"{name} does it")
        agent.provides = provides
        wf.add_agent(name, agent)
    return wf


def choose(*skills: str, listed: list[str] | None = None) -> str:
    names = listed or ["read_rows", "add_up", "human", "write_report"]
    return json.dumps({name: name in skills for name in names})


ALL = choose("read_rows", "add_up", "human", "write_report")


async def start(store: SQLiteStore, wf: Workflow, events: list[Event]) -> RunState:
    def keep(event: Event, state: RunState) -> None:
        events.append(event)

    async with asyncio.timeout(HANG):
        return await Engine(store).start(wf, {"month": "2026-10"}, on_event=keep)


def test_skills_are_listed_after_what_they_use_and_a_person_before_who_asks() -> None:
    listed = constructed.listing(workflow(ScriptedModel([])), ["month"])

    assert [(e.skill, e.gives, e.uses) for e in listed] == [
        ("read_rows", "rows", ("month",)),
        ("add_up", "total", ("rows",)),
        # `approval` is no agent's output and no input: a person's answer.
        ("human", "approval", ()),
        ("write_report", "report", ("total", "approval", "month")),
    ]


def test_the_schema_admits_only_the_listed_skills_each_once() -> None:
    listed = constructed.listing(workflow(ScriptedModel([])), ["month"])
    schema = constructed.choice_schema(listed)

    jsonschema.validate(json.loads(ALL), schema)
    for bad in ({"read_rows": True}, {**json.loads(ALL), "divine": True},
                {**json.loads(ALL), "add_up": "yes"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    assert list(schema["properties"]) == ["read_rows", "add_up", "human", "write_report"]


def test_needs_and_arguments_are_bound_from_parameters_and_provides() -> None:
    wf = workflow(ScriptedModel([]))
    listed = constructed.listing(wf, ["month"])

    tasks, problems = constructed.build(listed, listed, wf, "the goal {{ x }}", ["month"])

    assert problems == []
    assert [(t["id"], t["skill"], t["needs"], t["with"]) for t in tasks] == [
        ("rows", "read_rows", [], {}),          # month: a run input, read by name
        ("total", "add_up", ["rows"], {}),
        ("approval", "human", ["total"], {}),   # a person sees the step above
        ("report", "write_report", ["total", "approval"], {}),
    ]
    # The rendered goal is shown as text, never rendered again.
    assert tasks[2]["prompt"] == ("For this goal: {% raw %}the goal {{ x }}{% endraw %}\n"
                                  "Approve the output of 'total'?")


def test_an_output_named_like_a_taken_id_is_renamed_and_bound_by_template() -> None:
    wf = workflow(ScriptedModel([]))
    agent = FunctionAgent(count, name="counter", skills=["count_rows"])
    agent.provides = "plan"
    wf.add_agent("counter", agent)
    wf.add_agent("user", FunctionAgent(add_up_plan, name="user", skills=["use_count"]))
    listed = constructed.listing(wf, ["month"])
    chosen = [e for e in listed if e.skill in ("read_rows", "count_rows", "use_count")]

    tasks, problems = constructed.build(chosen, listed, wf, "goal", ["month"])

    assert problems == []
    by_skill = {t["skill"]: t for t in tasks}
    assert by_skill["count_rows"]["id"] == "plan_2"
    assert by_skill["count_rows"]["needs"] == ["rows"]
    assert by_skill["use_count"]["needs"] == ["plan_2"]
    assert by_skill["use_count"]["with"] == {"plan": "{{ outputs.plan_2 }}"}


def add_up_plan(plan: int) -> int:
    return plan * 2


def test_what_a_chosen_skill_needs_from_one_skill_alone_is_added_with_why() -> None:
    wf = workflow(ScriptedModel([]))
    listed = constructed.listing(wf, ["month"])
    chosen = [e for e in listed if e.skill == "write_report"]

    tasks, problems = constructed.build(chosen, listed, wf, "goal", ["month"])

    assert problems == []
    assert [(t["id"], t.get("description")) for t in tasks] == [
        ("rows", "read_rows: rows (added: 'add_up' uses its 'rows')"),
        ("total", "add_up: total (added: 'write_report' uses its 'total')"),
        ("approval", "human: approval (added: 'write_report' uses its 'approval')"),
        ("report", None),
    ]


def ambiguous(wf: Workflow) -> Workflow:
    """`rows` given by two skills: which one to use is the model's to say."""
    fast = FunctionAgent(read, name="fast_reader", skills=["read_rows_fast"])
    fast.provides = "rows"
    wf.add_agent("fast_reader", fast)
    return wf


AMBIGUOUS = ["read_rows", "read_rows_fast", "add_up", "human", "write_report"]


def test_a_parameter_several_skills_give_and_none_chosen_is_refused_with_reasons() -> None:
    wf = ambiguous(workflow(ScriptedModel([])))
    listed = constructed.listing(wf, ["month"])
    assert [e.skill for e in listed] == AMBIGUOUS
    chosen = [e for e in listed if e.skill in ("add_up", "write_report")]

    _, problems = constructed.build(chosen, listed, wf, "goal", ["month"])

    assert problems == [
        "step 1 ('add_up'): agent 'adder' needs 'rows', which no chosen skill above it "
        "gives and no run input supplies; choose 'read_rows', 'read_rows_fast' (it gives "
        "'rows')",
    ]


@pytest.mark.parametrize(("reply", "problem"), [
    ("not json", "the reply is not JSON"),
    ('{"read_rows": 1}', "does not fit the plan's schema"),
    ('{"read_rows": true, "divine": true}', "names skills that are not listed: ['divine']"),
    ('{"read_rows": true}', "says nothing of skills ['add_up', 'human', 'write_report']"),
])
def test_a_reply_that_is_no_choice_is_refused_with_the_reason(reply: str, problem: str
                                                              ) -> None:
    listed = constructed.listing(workflow(ScriptedModel([])), ["month"])

    chosen, problems = constructed.parse_choices(reply, listed)

    assert chosen == [] or problems
    assert any(problem in p for p in problems), problems


async def test_a_constructed_plan_is_journaled_and_runs(store: SQLiteStore) -> None:
    model = ScriptedModel([ALL])
    events: list[Event] = []
    wf = workflow(model)

    state = await start(store, wf, events)
    assert state.status == "waiting"
    assert [t.key for t in state.waiting()] == ["approval"]
    await Engine(store).approve(state.run_id, "approval", {"ok": True}, by="ana")
    async with asyncio.timeout(HANG):
        state = await Engine(store).resume(wf, state.run_id)

    assert state.status == "completed", state.error
    assert state.outputs()["report"] == "2026-10: 12 (approved)"
    [created] = [e for e in events if e.type == "plan_created"]
    assert [t["id"] for t in created.data["tasks"]] == ["rows", "total", "approval", "report"]
    # The model saw the skills in order with what each uses and gives, and its schema.
    call = model.calls[0]
    assert call.output_schema == constructed.choice_schema(
        constructed.listing(wf, ["month"]))
    assert "- add_up: adder does it Uses: rows. Gives: total." in call.messages[1].content


async def test_a_refused_choice_goes_back_with_the_reasons_then_the_run_fails(
        store: SQLiteStore) -> None:
    model = ScriptedModel([choose("add_up", listed=AMBIGUOUS), choose(listed=AMBIGUOUS),
                           choose("write_report", listed=AMBIGUOUS)])
    events: list[Event] = []

    state = await start(store, ambiguous(workflow(model, max_repairs=2)), events)

    assert state.status == "failed"
    invalid = [e.data for e in events if e.type == "plan_invalid"]
    assert [d["attempt"] for d in invalid] == [1, 2, 3]
    assert "agent 'adder' needs 'rows'" in invalid[0]["problems"][0]
    assert invalid[1]["problems"] == ["the plan has no tasks: choose at least one skill "
                                      "(true)"]
    assert "choose 'read_rows', 'read_rows_fast'" in model.calls[1].messages[-1].content
    assert state.error is not None and "agent 'adder' needs 'rows'" in state.error
    assert not any(e.type == "plan_created" for e in events)


async def test_a_repaired_choice_runs(store: SQLiteStore) -> None:
    model = ScriptedModel([choose("add_up", listed=AMBIGUOUS),
                           choose("read_rows_fast", "write_report", listed=AMBIGUOUS)])
    events: list[Event] = []

    state = await start(store, ambiguous(workflow(model, max_repairs=1)), events)

    assert state.status == "waiting"
    [created] = [e.data for e in events if e.type == "plan_created"]
    assert created["attempts"] == 2
    assert [t["skill"] for t in created["tasks"]] == [
        "read_rows_fast", "add_up", "human", "write_report"]


def test_auto_is_free_form_for_other_models_and_constructed_for_a_local_one() -> None:
    wf = workflow(ScriptedModel([]))
    assert wf.planner is not None
    auto = Planner(wf, PlannerConfig(model=ScriptedModel([])))
    assert auto.form == "free"
    assert Planner(wf).form == "constructed"


def test_the_planned_examples_declare_what_each_agent_provides() -> None:
    root = Path(__file__).resolve().parents[2] / "examples"
    for name, inputs in (("monthly_report_planned.yaml", ["month", "db", "outbox", "to"]),
                         ("supply_chain_planned.yaml", ["db"])):
        wf = load_workflow(root / name)
        listed = constructed.listing(wf, inputs)
        tasks, problems = constructed.build(listed, listed, wf, "goal", inputs)
        assert problems == [], name
        skills = [t["skill"] for t in tasks]
        assert skills.index("human") < len(skills)
    finance = load_workflow(root / "monthly_report_planned.yaml")
    order = [e.skill for e in constructed.listing(finance, ["month", "db", "outbox", "to"])]
    assert order == ["extract_transactions", "validate_transactions", "analyse_finances",
                     "write_overview", "format_report", "human", "send_report"]
