"""The router, with the real local embedding model and real SQLite journals: tasks that
name a skill or a description find their agent; the decision is journaled, shown, and
replayed on resume. The scripted model stands in only for `router: model`."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from podium import (
    CircuitPolicy,
    Engine,
    FunctionAgent,
    RouterPolicy,
    RunState,
    SQLiteStore,
    Workflow,
    load_workflow,
)
from podium.core.events import Event
from podium.models.base import Message
from podium.store.base import CircuitState
from podium.testing import ScriptedModel


def agent(name: str, description: str, skills: Sequence[str] = (), *, cost: float | None = None,
          latency: float | None = None, result: Any = None) -> FunctionAgent:
    def work() -> Any:
        return result if result is not None else name

    made = FunctionAgent(work, name=name, description=description, skills=skills)
    made.cost, made.latency = cost, latency
    return made


STAFF = [
    agent("translator", "Translates text between human languages, such as English to French.",
          ["text"]),
    agent("tax_adviser", "Computes income tax and VAT owed from invoices and payslips.",
          ["finance"]),
    agent("sql_writer", "Writes SQL queries against the sales database.", ["data"]),
    agent("poet", "Writes short poems and song lyrics on request.", ["text"]),
]


def workflow(*agents: FunctionAgent, **task: Any) -> Workflow:
    wf = Workflow("routing")
    for a in agents:
        wf.add_agent(a.name, a)
    wf.add_task("job", **task)
    return wf


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    store = SQLiteStore(tmp_path / "journal.db")
    yield Engine(store)
    await store.close()


async def routed(engine: Engine, state: RunState) -> list[Event]:
    return [e for e in await engine.store.events(state.run_id) if e.type == "task_routed"]


async def test_a_skill_keeps_only_the_agents_that_have_it(engine: Engine) -> None:
    wf = workflow(*STAFF, skill="text", description="Put this paragraph into Spanish.")

    state = await engine.start(wf)

    assert state.status == "completed", state.error
    assert state.outputs() == {"job": "translator"}
    routing = state.tasks["job"].routing
    assert routing is not None
    assert [c["agent"] for c in routing["candidates"]] == ["translator", "poet"]
    assert {f["agent"]: f["reason"] for f in routing["filtered"]} == {
        "tax_adviser": "lacks skill 'text'", "sql_writer": "lacks skill 'text'"}
    assert routing["by"] == "score" and "closest in meaning" in routing["why"]


@pytest.mark.parametrize(("description", "expected"), [
    ("How much VAT do I owe on last quarter's invoices?", "tax_adviser"),
    ("List the ten best-selling products of March from the orders table.", "sql_writer"),
    ("Rewrite this memo in German for the Berlin office.", "translator"),
    ("A limerick about a cat who hates Mondays.", "poet"),
])
async def test_a_description_alone_is_routed_by_meaning(engine: Engine, description: str,
                                                        expected: str) -> None:
    state = await engine.start(workflow(*STAFF, description=description))

    assert state.outputs() == {"job": expected}
    routing = state.tasks["job"].routing
    assert routing is not None and routing["filtered"] == []
    scores = [c["score"] for c in routing["candidates"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 4


async def test_a_prompt_is_part_of_what_is_compared(engine: Engine) -> None:
    wf = workflow(*STAFF, description="A request from a colleague.",
                  prompt="Translate '{{ inputs.text }}' into Italian.")
    wf.inputs["text"] = __import__("podium").InputSpec(type="string")

    state = await engine.start(wf, {"text": "good morning"})

    assert state.outputs() == {"job": "translator"}
    assert "Italian" in state.tasks["job"].routing["query"]  # type: ignore[index]


async def test_an_agent_whose_circuit_is_open_is_skipped(engine: Engine) -> None:
    wf = workflow(*STAFF, skill="text", description="Put this paragraph into Spanish.")
    wf.circuit = CircuitPolicy(threshold=1, cooldown=3600)
    await engine.store.set_circuit("routing/translator",
                                   CircuitState(failures=1, opened_at=time.time()))

    state = await engine.start(wf)

    assert state.outputs() == {"job": "poet"}
    routing = state.tasks["job"].routing
    assert routing is not None
    assert {"agent": "translator", "reason": "circuit open"} == {
        k: v for k, v in routing["filtered"][0].items() if k != "score"}


async def test_when_nothing_fits_the_task_fails_naming_the_nearest(engine: Engine) -> None:
    wf = workflow(*STAFF, skill="finance", description="Work out the VAT on these invoices.")
    wf.circuit = CircuitPolicy(threshold=1, cooldown=3600)
    await engine.store.set_circuit("routing/tax_adviser",
                                   CircuitState(failures=1, opened_at=time.time()))

    state = await engine.start(wf)

    assert state.status == "failed"
    error = state.tasks["job"].error or ""
    assert error.startswith("no agent fits task 'job': none with skill 'finance' is "
                            "available; nearest: 'tax_adviser' (score 0.")
    assert "circuit open); " in error and "lacks skill 'finance')" in error
    assert error.count("'") >= 6  # three agents named, best first
    assert state.tasks["job"].status == "failed"
    assert [e.type for e in await engine.store.events(state.run_id)][-3:] == [
        "task_routed", "task_failed", "run_failed"]


async def test_nothing_fits_then_the_fallback_or_default_applies(engine: Engine) -> None:
    wf = Workflow("routing")
    wf.add_agent("poet", STAFF[3])
    wf.add_task("job", description="Anything at all.", router=RouterPolicy(min_score=0.99),
                default="nobody")

    state = await engine.start(wf)

    assert state.status == "completed" and state.outputs() == {"job": "nobody"}
    routing = state.tasks["job"].routing
    assert routing is not None
    assert routing["filtered"][0]["reason"] == "score below min_score 0.99"
    assert isinstance(routing["filtered"][0]["score"], float)
    assert routing["error"].startswith(
        "no agent fits task 'job': none is available; nearest: 'poet' (score 0."), routing
    assert routing["error"].endswith(", score below min_score 0.99)"), routing


async def test_tied_scores_go_to_the_cheaper_then_the_faster(engine: Engine) -> None:
    same = "Summarises long reports into one paragraph."
    pricey = agent("pricey", same, ["summary"], cost=0.05, latency=1.0)
    cheap = agent("cheap", same, ["summary"], cost=0.01, latency=9.0)
    fast_cheap = agent("fast_cheap", same, ["summary"], cost=0.01, latency=2.0)

    state = await engine.start(workflow(pricey, cheap, skill="summary",
                                        description="Shorten the annual report."))
    routing = state.tasks["job"].routing
    assert state.outputs() == {"job": "cheap"} and routing is not None
    assert routing["by"] == "tie-break"
    assert routing["why"] == ("'cheap' ties with 'pricey' (scores within 0.02) and is cheaper "
                              "(cost 0.01 vs 0.05)")

    state = await engine.start(workflow(pricey, cheap, fast_cheap, skill="summary",
                                        description="Shorten the annual report."))
    routing = state.tasks["job"].routing
    assert state.outputs() == {"job": "fast_cheap"} and routing is not None
    assert routing["candidates"][0]["agent"] == "fast_cheap"
    assert routing["why"] == ("'fast_cheap' ties with 'cheap' (scores within 0.02) and is "
                              "faster (latency 2 vs 9)")


async def test_a_tie_break_says_why(engine: Engine) -> None:
    pricey = agent("pricey", "Summarises long reports into one paragraph.", cost=0.05)
    cheap = agent("cheap", "Summarises long reports in one paragraph.", cost=0.01)
    policy = RouterPolicy(epsilon=0.5)

    state = await engine.start(workflow(pricey, cheap, description="Summarise long reports "
                                        "into one paragraph.", router=policy))

    routing = state.tasks["job"].routing
    assert state.outputs() == {"job": "cheap"} and routing is not None
    if routing["by"] == "tie-break":  # pricey scored higher: the hint decided
        assert "is cheaper (cost 0.01 vs 0.05)" in routing["why"]
    assert routing["candidates"][0]["agent"] == "cheap"


def chooser(choice: str) -> ScriptedModel:
    def reply(messages: Sequence[Message], schema: dict[str, Any] | None) -> dict[str, Any]:
        assert (schema is not None and choice in json.dumps(schema)) or choice == "ghost"
        return {"agent": choice, "reason": "it reads best"}

    return ScriptedModel(reply, name="chooser")


async def test_router_model_chooses_among_the_top_candidates(engine: Engine) -> None:
    model = chooser("poet")
    wf = workflow(*STAFF, skill="text", description="Put this paragraph into Spanish.",
                  router=RouterPolicy(model=model, top=2))

    state = await engine.start(wf)

    assert state.outputs() == {"job": "poet"}
    routing = state.tasks["job"].routing
    assert routing is not None and routing["by"] == "model"
    assert routing["model"] == {"name": "chooser", "choice": "poet",
                                "reason": "it reads best", "valid": True}
    (call,) = model.calls
    assert "translator" in call.messages[-1].content and "tax_adviser" not in \
        call.messages[-1].content
    assert state.tasks["job"].model_calls == 1  # the routing call is journaled and counted


async def test_a_model_choice_outside_the_candidates_falls_back_to_the_best_score(
        engine: Engine) -> None:
    model = chooser("ghost")
    wf = workflow(*STAFF, skill="text", description="Put this paragraph into Spanish.",
                  router=RouterPolicy(model=model))

    state = await engine.start(wf)

    assert state.outputs() == {"job": "translator"}
    routing = state.tasks["job"].routing
    assert routing is not None and routing["by"] == "score"
    assert routing["model"]["valid"] is False
    assert routing["model"]["error"] == ("'ghost' is not one of the candidates "
                                         "['translator', 'poet']")
    assert routing["why"].endswith("the model's choice was rejected")


async def test_a_reply_that_is_not_json_falls_back_too(engine: Engine) -> None:
    model = ScriptedModel(["the poet, obviously"])
    wf = workflow(*STAFF, skill="text", description="Put this paragraph into Spanish.",
                  router=RouterPolicy(model=model))

    state = await engine.start(wf)

    assert state.outputs() == {"job": "translator"}
    assert state.tasks["job"].routing["model"]["error"].startswith("JSONDecodeError")  # type: ignore[index]


async def test_resume_replays_the_decision_instead_of_routing_again(engine: Engine,
                                                                    tmp_path: Path) -> None:
    started = asyncio.Event()

    async def hang() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    first = FunctionAgent(hang, name="translator",
                          description="Translates text between human languages.",
                          skills=["text"])
    model = chooser("translator")
    wf = Workflow("routing")
    wf.add_agent("translator", first)
    wf.add_agent("poet", STAFF[3])
    wf.add_task("job", skill="text", description="Put this paragraph into Spanish.",
                router=RouterPolicy(model=model))
    run = asyncio.create_task(engine.start(wf, run_id="r1"))
    await started.wait()
    run.cancel()  # the process dies while the routed task runs
    with pytest.raises(asyncio.CancelledError):
        await run

    # Were it routed afresh, the poet would now win: the translator's words changed.
    wf2 = Workflow("routing")
    wf2.add_agent("translator", agent("translator", "Repairs bicycles.", ["text"]))
    wf2.add_agent("poet", agent("poet", "Translates paragraphs into Spanish.", ["text"]))
    wf2.add_task("job", skill="text", description="Put this paragraph into Spanish.",
                 router=RouterPolicy(model=chooser("poet")))
    state = await Engine(SQLiteStore(tmp_path / "journal.db")).resume(wf2, "r1")

    assert state.status == "completed" and state.outputs() == {"job": "translator"}
    assert len(await routed(engine, state)) == 1
    assert len(model.calls) == 1


# -- the documentation ------------------------------------------------------------------------

DOC = Path(__file__).parents[2] / "docs" / "routing.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_python_example_in_the_docs_runs() -> None:
    (code,) = _blocks("python")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("'it_helpdesk' is the closest in meaning")


def test_the_yaml_in_the_docs_is_a_registry_and_a_workflow(tmp_path: Path) -> None:
    registry, workflow_text = _blocks("yaml")
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "office.yaml").write_text(registry, encoding="utf-8")
    (tmp_path / "wf.yaml").write_text(workflow_text, encoding="utf-8")

    wf = load_workflow(tmp_path / "wf.yaml")

    assert set(wf.agents) == {"translator", "summariser", "shouter"}
    assert wf.tasks["gist"].skill == "writing" and wf.tasks["french"].routed
