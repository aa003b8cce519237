"""Untrusted content cannot reach a high-risk tool without a person's approval, whichever
way it travels: the injection matrix of `_taint_matrix` (every route from an untrusted
source into a prompt or a tool argument, times two high-risk tools that act for real on
loopback servers), and its trusted control (no false positives). Real SQLite journals;
the scripted model obeys any order it reads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from podium import Engine, LLMAgent, SQLiteStore, parse_workflow
from podium.testing import ScriptedModel
from tests.integration._taint_matrix import (
    HOSTILE,
    OPS,
    ROUTES,
    TOOLS,
    Obedient,
    Sinks,
    echo,
    high_risk_tools,
    run_case,
    sinks,
)


@pytest.fixture(scope="module")
def where() -> Iterator[Sinks]:
    with sinks() as found:
        yield found


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("route", list(ROUTES))
async def test_an_order_in_untrusted_content_is_held_for_a_person(
        route: str, tool: str, tmp_path: Path, where: Sinks) -> None:
    outcome = await run_case(route, tool, False, tmp_path, where)

    assert outcome.attempts == 1, outcome  # the model read the order and tried
    assert outcome.executed == [], outcome  # nothing reached the SMTP or HTTP server
    assert (outcome.status, outcome.held) == ("waiting", 1), outcome
    assert outcome.noticed, outcome
    assert outcome.delimited or not outcome.must_delimit, outcome


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("route", list(ROUTES))
async def test_the_same_route_from_a_trusted_source_is_not_held(
        route: str, tool: str, tmp_path: Path, where: Sinks) -> None:
    outcome = await run_case(route, tool, True, tmp_path, where)

    assert outcome.status == "completed", outcome
    assert (outcome.attempts, outcome.held, outcome.executed) == (1, 0, [OPS]), outcome
    assert outcome.blocks == 0 and not outcome.noticed, outcome


REPORTED = """
name: tickets
inputs:
  ticket: {type: string}
  count: {type: integer}
agents:  # replaced below by agents on the scripted model
  bot: {model: local}
  summariser: {model: local}
tasks:
  triage: {agent: summariser, prompt: "Count {{ inputs.count }}: {{ inputs.ticket }}"}
  tally: {agent: summariser, prompt: "How many? {{ inputs.count }}"}
  t:
    agent: bot
    needs: [triage, tally]
    for_each: "{{ [inputs.ticket] }}"
    prompt: "Handle ticket: {{ item }}"
"""


async def test_the_reported_for_each_route_is_held_and_taint_is_journaled(
        tmp_path: Path, where: Sinks) -> None:
    wf = parse_workflow(REPORTED, "tickets.yaml")
    model = Obedient("send_email")
    wf.add_agent("bot", LLMAgent(ScriptedModel(model), name="bot",
                                 tools=high_risk_tools(where)))
    wf.add_agent("summariser", LLMAgent(ScriptedModel(echo), name="summariser"))
    where.clear()
    async with _journal(tmp_path) as store:
        state = await Engine(store).start(wf, {"ticket": HOSTILE, "count": 1})
        journaled = await Engine(store).state(state.run_id)

    assert where.received() == [] and model.attempts == 1
    item = journaled.task("t[0]")
    assert item.wait_reason == "tool_approval" and item.waiting_for is not None
    assert item.waiting_for["untrusted"] == ["input:ticket"]
    user = model.prompts[0][-1].content
    assert user.startswith('Handle ticket: <untrusted-') and 'source="input:ticket"' in user
    # What each task read is journaled with its output, for the tasks downstream.
    assert journaled.task("triage").untrusted == ("input:ticket",)
    assert journaled.task("tally").untrusted == ()
    records = {t["id"]: t for t in journaled.record()["tasks"]}
    assert records["triage"]["untrusted"] == ["input:ticket"]
    assert "untrusted" not in records["tally"]


@asynccontextmanager
async def _journal(folder: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(folder / "journal.db")
    try:
        yield store
    finally:
        await store.close()
