"""The planner with the scripted model: a goal becomes a checked plan, repaired, approved,
replanned after a failure, grown by subtasks, and kept across a resume."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest

from podium import (
    Engine,
    Event,
    FunctionAgent,
    InputSpec,
    PlannerConfig,
    RunState,
    SQLiteStore,
    UserError,
    Workflow,
    subtasks,
)
from podium.cli._plan import plan_lines
from podium.engine.planner import PlannedTask, plan_problems, planned_task
from podium.models.base import Message
from podium.testing import ScriptedModel

HANG = 10.0


class Calls:
    """What the agents were called with, in order."""

    def __init__(self) -> None:
        self.log: list[str] = []


def fetch(month: str) -> dict[str, Any]:
    return {"month": month, "rows": [3, 4, 5]}


def total(data: dict[str, Any]) -> int:
    return sum(data["rows"])


def write(month: str, total: int) -> str:
    return f"{month}: {total}"


def broken_total(data: dict[str, Any]) -> int:
    raise ValueError("the ledger is locked")


def workflow(model: ScriptedModel, calls: Calls | None = None, **config: Any) -> Workflow:
    calls = calls or Calls()

    def logged(fn: Any, name: str) -> Any:
        def agent(**kwargs: Any) -> Any:
            calls.log.append(name)
            return fn(**kwargs)
        agent.__signature__ = __import__("inspect").signature(fn)  # type: ignore[attr-defined]
        return agent

    wf = Workflow("report", inputs={"month": InputSpec(type="string")},
                  goal="create a monthly report for {{ month }}",
                  planner=PlannerConfig(model=model, **config))
    for name, fn, skill in [("fetcher", fetch, "fetch_rows"), ("adder", total, "add_up"),
                            ("writer", write, "write_report"),
                            ("flaky", broken_total, "add_up_fast")]:
        wf.add_agent(name, FunctionAgent(logged(fn, name), name=name, skills=[skill],
                                         description=f"{name} does {skill}"))
    return wf


def plan(*tasks: dict[str, Any]) -> str:
    return json.dumps({"tasks": list(tasks)})


GET = {"id": "get_rows", "skill": "fetch_rows", "needs": [], "with": {}}
ADD = {"id": "total", "skill": "add_up", "needs": ["get_rows"],
       "with": {"data": "{{ outputs.get_rows }}"}}
WRITE = {"id": "report", "skill": "write_report", "needs": ["total"], "with": {}}
VALID = plan(GET, ADD, WRITE)


async def start(store: SQLiteStore, wf: Workflow, events: list[Event] | None = None
                ) -> RunState:
    def keep(event: Event, state: RunState) -> None:
        if events is not None:
            events.append(event)

    async with asyncio.timeout(HANG):
        return await Engine(store).start(wf, {"month": "2026-10"}, on_event=keep)


def user_text(messages: Sequence[Message]) -> str:
    return "\n".join(m.content for m in messages if m.role == "user")


# -- a valid plan ---------------------------------------------------------------------------


async def test_a_valid_plan_is_journaled_and_runs(store: SQLiteStore) -> None:
    model = ScriptedModel([VALID])
    events: list[Event] = []

    state = await start(store, workflow(model), events)

    assert state.status == "completed", state.error
    assert state.outputs()["report"] == "2026-10: 12"
    assert state.plan is not None and state.plan["version"] == 1
    assert [t["id"] for t in state.plan["tasks"]] == ["get_rows", "total", "report"]
    assert state.plan["goal"] == "create a monthly report for 2026-10"
    # Planned before anything ran; the planner's call is the plan step's.
    types = [e.type for e in events]
    assert types.index("plan_created") < types.index("task_started")
    assert state.tasks["plan"].status == "completed"
    assert state.tasks["plan"].model_calls == 1
    asked = model.calls[0]
    assert "Goal: create a monthly report for 2026-10" in user_text(asked.messages)
    assert "fetch_rows (agent fetcher)" in user_text(asked.messages)
    assert asked.output_schema is not None
    skill = asked.output_schema["properties"]["tasks"]["items"]["properties"]["skill"]
    assert skill["enum"] == ["add_up", "add_up_fast", "fetch_rows", "human", "write_report"]
    record = state.record()
    assert record["plan"]["history"][0]["tasks"] == ["get_rows", "total", "report"]
    # The journal read back tells the same story.
    assert RunState.of(state.run_id, await store.events(state.run_id)).record() == record


async def test_a_workflow_with_a_goal_and_fixed_tasks_plans_around_them(
        store: SQLiteStore) -> None:
    model = ScriptedModel([plan({"id": "total", "skill": "add_up", "needs": ["seed"],
                                 "with": {"data": "{{ outputs.seed }}"}})])
    wf = workflow(model)
    wf.add_task("seed", agent=lambda: {"rows": [1, 2]})

    state = await start(store, wf)

    assert state.status == "completed", state.error
    assert state.outputs()["total"] == 3
    assert "Tasks the run already has" in user_text(model.calls[0].messages)


# -- the check, and repairs -----------------------------------------------------------------


@pytest.mark.parametrize(("bad", "expected"), [
    (plan(GET, {**ADD, "skill": "divine"}, WRITE),
     "task 'total' (skill): unknown skill 'divine': no agent has it; known skills: "
     "'add_up', 'add_up_fast', 'fetch_rows', 'write_report'"),
    (plan({**GET, "needs": ["report"]}, ADD, WRITE),
     "task 'get_rows' (needs): cycle: 'get_rows' → 'report' → 'total' → 'get_rows'"),
    (plan(GET, {**ADD, "with": {}}, WRITE),
     "needs 'data', which no with: value, upstream task or input supplies"),
    (plan(GET, {**ADD, "with": {"data": "{{ inputs.year }}"}}, WRITE),
     "task 'total' (with): unknown input 'year'; declared inputs: 'month'"),
    (plan(GET, {**ADD, "needs": []}, WRITE),
     "task 'total' (with): outputs.get_rows is not upstream of task 'total'"),
    (plan(GET, GET, WRITE), "task 'get_rows': two tasks have this id"),
    (plan({**GET, "id": "plan"}), "task 'plan': 'plan' names the planning step"),
    ('{"tasks": [{"id": "x"}]}', "the reply does not fit the plan's schema: tasks.0.skill: "
                                 "Field required"),
    ("I would fetch the rows first", "the reply is not JSON"),
])
async def test_a_plan_that_fails_its_check_goes_back_with_the_reasons(
        store: SQLiteStore, bad: str, expected: str) -> None:
    model = ScriptedModel([bad, VALID])
    events: list[Event] = []

    state = await start(store, workflow(model), events)

    assert state.status == "completed", state.error
    invalid = [e for e in events if e.type == "plan_invalid"]
    assert len(invalid) == 1
    assert any(expected in p for p in invalid[0].data["problems"]), \
        invalid[0].data["problems"]
    repair = model.calls[1].messages
    assert repair[-2].content == bad and repair[-2].role == "assistant"
    assert repair[-1].content.startswith("That plan fails its check:")
    assert expected in repair[-1].content
    assert state.tasks["plan"].repairs == 1 and state.tasks["plan"].model_calls == 2
    assert state.record()["plan"]["history"][0]["invalid"] == 1


async def test_a_plan_over_max_tasks_is_refused(store: SQLiteStore) -> None:
    model = ScriptedModel([VALID, plan(GET, {**ADD, "id": "report", "skill": "add_up"})])
    events: list[Event] = []

    state = await start(store, workflow(model, max_tasks=2), events)

    assert state.status == "completed", state.error
    [invalid] = [e for e in events if e.type == "plan_invalid"]
    assert invalid.data["problems"] == [
        "the plan has 3 tasks, more than max_tasks=2; merge or drop some"]
    assert model.calls[0].output_schema is not None
    assert model.calls[0].output_schema["properties"]["tasks"]["maxItems"] == 2


async def test_when_repairs_run_out_the_run_fails_listing_the_reasons(
        store: SQLiteStore) -> None:
    cyclic = plan({**GET, "needs": ["report"]}, ADD, WRITE)
    model = ScriptedModel([cyclic, cyclic, cyclic])
    events: list[Event] = []

    state = await start(store, workflow(model, max_repairs=2), events)

    assert state.status == "failed"
    assert state.reason == "plan_invalid"
    assert state.error is not None
    assert state.error.startswith("no plan passed its check in 3 attempt(s) (max_repairs=2)")
    assert "cycle: 'get_rows' → 'report' → 'total' → 'get_rows'" in state.error
    assert len(model.calls) == 3
    assert not [e for e in events if e.type == "task_started"]
    assert [e.data["attempt"] for e in events if e.type == "plan_invalid"] == [1, 2, 3]


async def test_a_model_error_counts_as_a_failed_attempt(store: SQLiteStore) -> None:
    from podium import ModelError

    model = ScriptedModel([ModelError("reply cut off at max_tokens"), VALID])

    state = await start(store, workflow(model), [])

    assert state.status == "completed", state.error
    assert state.plan_history[0]["problems"] == [
        "the model failed: reply cut off at max_tokens"]


def test_the_check_names_every_problem_at_once() -> None:
    wf = workflow(ScriptedModel([]))
    tasks = [PlannedTask.model_validate(t) for t in (
        {**GET, "skill": "divine"}, {**ADD, "with": {"data": "{{ outputs.nowhere }}"}})]

    problems = plan_problems(wf, tasks, max_tasks=1)

    assert problems == [
        "the plan has 2 tasks, more than max_tasks=1; merge or drop some",
        "task 'get_rows' (skill): unknown skill 'divine': no agent has it; known skills: "
        "'add_up', 'add_up_fast', 'fetch_rows', 'write_report'",
        "task 'total' (with): unknown task 'nowhere' in outputs.nowhere",
    ]


def test_a_planned_task_names_a_skill_for_the_router() -> None:
    task = planned_task(PlannedTask.model_validate(ADD))
    assert (task.agent, task.skill, task.routed) == ("", "add_up", True)
    person = planned_task(PlannedTask.model_validate({**ADD, "skill": "human"}))
    assert (person.agent, person.skill) == ("human", None)


async def test_the_router_chooses_each_planned_task_s_agent(store: SQLiteStore) -> None:
    events: list[Event] = []

    await start(store, workflow(ScriptedModel([VALID])), events)

    routed = {e.task: e.data["agent"] for e in events if e.type == "task_routed"}
    assert routed == {"get_rows": "fetcher", "total": "adder", "report": "writer"}


# -- approval -------------------------------------------------------------------------------


async def test_an_approved_plan_runs_and_a_resume_never_asks_again(
        store: SQLiteStore) -> None:
    wf = workflow(ScriptedModel([VALID]), approve_plan=True)
    events: list[Event] = []

    state = await start(store, wf, events)

    assert state.status == "waiting"
    assert [t.key for t in state.waiting()] == ["plan"]
    prompt = state.tasks["plan"].prompt or ""
    assert prompt.startswith("Approve plan v1 for: create a monthly report for 2026-10")
    assert "2. total [add_up] after get_rows" in prompt
    assert not [e for e in events if e.type == "task_started"]

    # Another engine, as another process: a model without replies fails if asked.
    later = workflow(ScriptedModel([]), approve_plan=True)
    engine = Engine(store)
    await engine.approve(state.run_id, "plan", {"approved": True}, by="ana")
    async with asyncio.timeout(HANG):
        state = await engine.resume(later, state.run_id)

    assert state.status == "completed", state.error
    assert state.outputs()["report"] == "2026-10: 12"
    assert state.tasks["plan"].output == {"approved": True, "version": 1, "by": "ana"}


async def test_a_rejected_plan_fails_the_run_with_the_reason(store: SQLiteStore) -> None:
    wf = workflow(ScriptedModel([VALID]), approve_plan=True)
    state = await start(store, wf)
    engine = Engine(store)

    await engine.reject(state.run_id, "plan", "we need a forecast too", by="ana")
    async with asyncio.timeout(HANG):
        state = await engine.resume(wf, state.run_id)

    assert state.status == "failed"
    assert state.reason == "plan_rejected"
    assert state.error == "plan rejected by ana: we need a forecast too"
    assert "get_rows" not in state.tasks


async def test_a_resumed_run_uses_its_journaled_plan(store: SQLiteStore) -> None:
    entered, gate = asyncio.Event(), asyncio.Event()

    async def slow_fetch(month: str) -> dict[str, Any]:
        entered.set()
        await gate.wait()
        return fetch(month)

    def with_slow_fetch(model: ScriptedModel) -> Workflow:
        wf = workflow(model)
        wf.agents["fetcher"] = FunctionAgent(slow_fetch, name="fetcher",
                                             skills=["fetch_rows"])
        return wf

    first = asyncio.create_task(Engine(store).start(
        with_slow_fetch(ScriptedModel([VALID])), {"month": "2026-10"}, run_id="r1"))
    async with asyncio.timeout(HANG):
        await entered.wait()
    first.cancel()  # the process stops with the plan journaled and get_rows in flight
    with pytest.raises(asyncio.CancelledError):
        await first

    gate.set()
    # A model without replies fails if it is asked again.
    async with asyncio.timeout(HANG):
        state = await Engine(store).resume(with_slow_fetch(ScriptedModel([])), "r1")

    assert state.status == "completed", state.error
    assert state.outputs()["report"] == "2026-10: 12"
    assert [h.get("version") for h in state.plan_history] == [1]
    assert state.tasks["get_rows"].attempts == 2


# -- replanning -----------------------------------------------------------------------------


FLAKY = plan(GET, {**ADD, "skill": "add_up_fast"}, WRITE)
REPLAN = plan({**ADD, "id": "total"}, WRITE)


async def test_a_failed_task_is_replanned_and_completed_work_is_kept(
        store: SQLiteStore) -> None:
    calls = Calls()
    model = ScriptedModel([FLAKY, REPLAN])
    events: list[Event] = []

    state = await start(store, workflow(model, calls), events)

    assert state.status == "completed", state.error
    assert state.outputs()["report"] == "2026-10: 12"
    assert calls.log == ["fetcher", "flaky", "adder", "writer"]  # fetched once
    assert state.plan is not None and state.plan["version"] == 2
    [created] = [e for e in events if e.type == "plan_created" and e.data["version"] == 2]
    assert created.data["reason"] == "replan"
    assert created.data["dropped"] == ["report", "total"]
    assert created.data["failed"] == {"total": "ValueError: the ledger is locked"}
    asked = user_text(model.calls[1].messages)
    assert "- get_rows: output {\"month\": \"2026-10\", \"rows\": [3, 4, 5]}" in asked
    assert "- total: ValueError: the ledger is locked" in asked
    superseded = state.record()["plan"]["superseded"]
    assert [(t["id"], t["status"], t["agent"]) for t in superseded] == [
        ("total", "failed", "flaky")]
    assert state.tasks["total"].agent == "adder"
    assert plan_lines(state.record()) == [
        "plan v2 for: create a monthly report for 2026-10",
        "  1. get_rows [fetch_rows]",
        "  2. total [add_up] after get_rows",
        "  3. report [write_report] after total",
        "  · v1 (goal): get_rows, total, report",
        "  · v2 (replan): get_rows, total, report, dropped report, total",
        "  · superseded total (failed by flaky): ValueError: the ledger is locked",
    ]


async def test_a_replan_keeps_completed_ids_out_of_the_new_plan(store: SQLiteStore) -> None:
    events: list[Event] = []
    model = ScriptedModel([FLAKY, plan(GET, ADD, WRITE), REPLAN])

    state = await start(store, workflow(model), events)

    assert state.status == "completed", state.error
    [invalid] = [e for e in events if e.type == "plan_invalid"]
    assert invalid.data["reason"] == "replan"
    assert invalid.data["problems"][0].startswith(
        "task 'get_rows': the run already has a task 'get_rows'")


async def test_when_replans_run_out_the_run_fails_with_the_task(store: SQLiteStore) -> None:
    model = ScriptedModel([FLAKY])

    state = await start(store, workflow(model, max_replans=0))

    assert state.status == "failed"
    assert state.error == "task 'total' failed: ValueError: the ledger is locked"
    assert len(model.calls) == 1


# -- subtasks -------------------------------------------------------------------------------


def splitter(month: str) -> dict[str, Any]:
    return subtasks([
        {"id": "first_half", "skill": "add_up", "needs": ["split"],
         "with": {"data": {"rows": "{{ outputs.split.halves[0] }}"}}},
        {"id": "second_half", "skill": "add_up", "needs": ["split"],
         "with": {"data": {"rows": "{{ outputs.split.halves[1] }}"}}},
    ], halves=[[1, 2], [3, 4]])


async def test_a_task_may_add_checked_subtasks_to_the_run(store: SQLiteStore) -> None:
    wf = workflow(ScriptedModel([plan({"id": "split", "skill": "split_work", "needs": [],
                                       "with": {}})]))
    wf.add_agent("splitter", FunctionAgent(splitter, skills=["split_work"]))
    events: list[Event] = []

    state = await start(store, wf, events)

    assert state.status == "completed", state.error
    assert state.outputs()["first_half"] == 3 and state.outputs()["second_half"] == 7
    [extended] = [e for e in events if e.type == "plan_extended"]
    assert extended.task == "split" and extended.data["version"] == 2
    assert state.plan is not None
    assert [t["id"] for t in state.plan["tasks"]] == ["split", "first_half", "second_half"]


async def test_subtasks_that_fail_the_check_fail_their_task(store: SQLiteStore) -> None:
    def bad_splitter() -> dict[str, Any]:
        return subtasks([{"id": "more", "skill": "teleport", "needs": ["split"]},
                         {"id": "loop", "skill": "add_up", "needs": ["loop"],
                          "with": {"data": {}}}])

    wf = Workflow("grow")
    wf.add_agent("adder", FunctionAgent(total, skills=["add_up"]))
    wf.add_task("split", agent=bad_splitter)
    wf.add_task("after", agent=lambda split: "ran", needs=["split"])

    state = await start(store, wf)

    assert state.status == "failed"
    error = state.tasks["split"].error or ""
    assert error.startswith("its subtasks fail their check: task 'more' (skill): unknown "
                            "skill 'teleport': no agent has it; known skills: 'add_up'")
    assert "task 'loop' (needs): cycle: 'loop' → 'loop'" in error
    assert state.error == f"task 'split' failed: {error}"
    assert "after" not in state.outputs()


def test_subtasks_are_shaped_when_made() -> None:
    with pytest.raises(UserError, match=r"subtask 0: skill: Field required"):
        subtasks([{"id": "x"}])
