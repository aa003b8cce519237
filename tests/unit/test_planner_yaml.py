"""`goal:` and `planner:` in YAML: read into the same objects, mistakes named by line."""

from __future__ import annotations

import pytest

from podium import PlannerConfig, WorkflowError, parse_workflow
from podium.models.local import LocalModel

BASE = """\
name: planned
inputs:
  month: {type: string}
agents:
  fetcher: {function: "tests.unit.test_planner:fetch", skills: [fetch_rows]}
"""


def test_goal_and_planner_are_read() -> None:
    wf = parse_workflow(BASE + """\
goal: "report on {{ month }} ({{ inputs.month }})"
planner: {model: local, max_tasks: 3, max_repairs: 1, max_replans: 0, approve_plan: true}
""")

    assert wf.goal == "report on {{ month }} ({{ inputs.month }})"
    assert isinstance(wf.planner, PlannerConfig)
    assert (wf.planner.max_tasks, wf.planner.max_repairs, wf.planner.max_replans,
            wf.planner.approve_plan) == (3, 1, 0, True)
    assert not wf.tasks
    made = wf.planner.model()  # built on first use, not when the file is read
    assert isinstance(made, LocalModel)


@pytest.mark.parametrize(("extra", "expected"), [
    ('goal: "report on {{ year }}"\nplanner: {model: local}\n',
     "<string>:6: goal: unknown name 'year'; a goal can use the inputs ('month')"),
    ('goal: "report on {{ inputs.year }}"\nplanner: {model: local}\n',
     "<string>:6: goal: unknown input 'year'; declared inputs: 'month'"),
    ('goal: "report"\n', "<string>:6: goal: a goal needs a planner: with a model"),
    ("planner: {model: local}\n", "<string>:6: planner: a planner needs a goal: to plan for"),
    ('goal: "report"\nplanner: {model: local, max_tasks: 0}\n',
     "<string>:7: planner.max_tasks: Input should be greater than or equal to 1"),
    ('goal: "report"\nplanner: {model: "nowhere:model"}\n',
     "<string>:7: planner.model: cannot import 'nowhere:model'"),
    ('goal: "report"\nplanner: {model: local}\ntasks:\n  plan: {agent: fetcher, '
     'with: {month: x}}\n',
     "<string>:9: tasks.plan: 'plan' names the planning step in a workflow with a goal"),
])
def test_mistakes_are_named_with_their_line(extra: str, expected: str) -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(BASE + extra)

    assert any(str(p).startswith(expected) for p in caught.value.problems), [
        str(p) for p in caught.value.problems]


def test_a_workflow_needs_tasks_or_a_goal() -> None:
    with pytest.raises(WorkflowError, match="at least one task \\(or a goal: for a planner\\)"):
        parse_workflow(BASE)
