"""Pattern blocks in YAML: the shipped examples run to the results their comments promise,
and mistakes in a block are reported with the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from podium import Engine, RunState, SQLiteStore, load_workflow, parse_workflow
from podium.errors import WorkflowError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "patterns"


async def _example(tmp_path: Path, name: str, inputs: dict[str, Any] | None = None
                   ) -> RunState:
    wf = load_workflow(EXAMPLES / f"{name}.yaml")
    store = SQLiteStore(tmp_path / "journal.db")
    try:
        state = await Engine(store).start(wf, inputs)
    finally:
        await store.close()
    assert state.status == "completed", state.error
    return state


async def test_chain_example(tmp_path: Path) -> None:
    state = await _example(tmp_path, "chain", {"text": "Paid 12.50, 30 and 7.50"})
    assert state.outputs()["summary"] == "3 amounts, 50.00 in all, 16.67 on average"
    assert list(state.outputs()) == ["summary_extract", "summary_total", "summary"]


@pytest.mark.parametrize(("message", "desk"), [
    ("I was charged twice for 49.99, please refund", "billing"),
    ("The app crashes at login with an error", "technical"),
    ("Do you ship to Norway?", "general")])
async def test_route_example(tmp_path: Path, message: str, desk: str) -> None:
    state = await _example(tmp_path, "route", {"message": message})
    assert state.outputs()["desk"]["route"] == desk
    ran = {k for k, t in state.tasks.items() if t.status == "completed"}
    assert ran == {"desk_classify", f"desk_{desk}", "desk"}


async def test_parallel_example_sections_and_vote(tmp_path: Path) -> None:
    state = await _example(tmp_path, "parallel",
                           {"text": "WORST delivery ever!! It was late and slow."})
    review, tone = state.outputs()["review"], state.outputs()["tone"]
    assert review == {"verdict": "revise", "issues": ["shouting"]}
    assert (tone["answer"], tone["status"], tone["agreement"]) == ("negative", "decided", 3)


async def test_orchestrate_example_bounded_by_max_items(tmp_path: Path) -> None:
    document = "".join(f"# Part {n}\nPart {n} says {n}. More.\n" for n in range(12))
    state = await _example(tmp_path, "orchestrate", {"document": document})
    brief = state.outputs()["brief"]
    assert brief.count("\n- ") + 1 == 10
    assert brief.endswith("(2 more parts not summarised)")


@pytest.mark.parametrize(("limit", "stopped", "rounds"), [
    (14, "accepted", 2), (3, "max_rounds", 3)])
async def test_refine_example(tmp_path: Path, limit: int, stopped: str, rounds: int) -> None:
    state = await _example(tmp_path, "refine", {"limit": limit})
    out = state.outputs()["short"]
    assert (out["stopped"], out["rounds"]) == (stopped, rounds)
    assert len(out["output"].split()) <= limit or stopped == "max_rounds"


async def test_supervisor_example(tmp_path: Path) -> None:
    state = await _example(tmp_path, "supervisor")
    out = state.outputs()["answer"]
    assert out["output"] == "Resolved: refunded 42.50 on KX-2041"
    assert [(h["from"], h["to"]) for h in out["handoffs"]] == [
        ("lead", "refunds"), ("refunds", "lead")]
    state = await _example(tmp_path, "supervisor", {"request": "I cannot login"})
    assert state.outputs()["answer"]["output"] == "A password reset link is on its way."


@pytest.mark.parametrize(("busy", "stopped", "last"), [
    ("Tuesday, Wednesday", "until", "Thursday works for me. AGREED"),
    ("Tuesday, Wednesday, Thursday, Friday", "max_turns", "Friday does not work for me.")])
async def test_discussion_example(tmp_path: Path, busy: str, stopped: str, last: str) -> None:
    state = await _example(tmp_path, "discussion", {"busy_colleague": busy})
    out = state.outputs()["day"]
    assert (out["stopped"], out["last"]["message"]) == (stopped, last)


# -- mistakes --------------------------------------------------------------------------------


def _problems(text: str) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(text, "flow.yaml")
    assert all(p.file == "flow.yaml" for p in caught.value.problems)
    return [(p.line, p.field, p.message) for p in caught.value.problems]


AGENTS = """
name: bad
agents:
  a: {function: examples.patterns.agents:extract}
  b: {function: examples.patterns.agents:total}
"""


def test_a_pattern_agent_naming_an_unknown_agent() -> None:
    found = _problems(AGENTS + """\
  panel:
    vote:
      agents: [a, bee]
tasks:
  t: {agent: panel, with: {text: x}}
""")
    assert found == [(8, "agents.panel.vote.agents.1",
                      "unknown agent 'bee'; known agents: 'a', 'b'")]


def test_a_pattern_agent_with_a_bad_bound_or_two_kinds() -> None:
    found = _problems(AGENTS + """\
  loop:
    refine: {generator: a, evaluator: b, max_rounds: 0}
  both:
    refine: {generator: a, evaluator: b}
    vote: {agents: [a, b]}
tasks:
  t: {agent: loop, with: {text: x}}
""")
    assert (7, "agents.loop.refine.max_rounds",
            "Input should be greater than or equal to 1") in found
    assert (8, "agents.both", "give exactly one of `vote:`, `refine:`, `supervisor:` or "
                              "`discussion:`") in found


def test_a_chain_step_with_a_bad_field_points_at_the_step() -> None:
    found = _problems(AGENTS + """\
tasks:
  sum:
    chain:
      - a
      - agent: b
        retry: {attempts: 0}
    with: {text: "1 2"}
""")
    assert found == [(11, "tasks.sum.retry.attempts",
                      "Input should be greater than or equal to 1")]


def test_unknown_fields_and_agents_in_a_task_block() -> None:
    found = _problems(AGENTS + """\
tasks:
  desk:
    route:
      classifier: a
      branches: {x: a}
      fallback: b
  sum:
    chain: [a, b]
    agent: a
  more:
    chain: [a, nobody]
    needs: [desk]
    with: {text: x}
""")
    assert found == [
        (11, "tasks.desk.route.fallback", "unknown field 'fallback'"),
        (14, "tasks.sum.agent", "unknown field 'agent'"),
        (16, "tasks.more.agent", "unknown agent 'nobody'; known agents: 'a', 'b' "
                                 "(and 'human')"),
    ]


def test_a_generated_task_that_clashes_with_a_written_one() -> None:
    found = _problems(AGENTS + """\
tasks:
  s_a: {agent: a, with: {text: x}}
  s:
    chain: [a, b]
    with: {text: x}
""")
    assert found == [(9, "tasks.s", "pattern 's' makes a task 's_a', but there is already "
                                    "one of that id; give the step an `id:`")]


def test_a_task_with_two_patterns() -> None:
    found = _problems(AGENTS + """\
tasks:
  s:
    chain: [a, b]
    parallel: {x: a}
""")
    assert found == [(7, "tasks.s", "give one pattern, not 'chain' and 'parallel'")]
