"""Task policies: retry, backoff, timeouts, output validation, fallback, the circuit breaker,
escalation to a human, defaults, and LLM agents' token accounting."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from podium import (
    HUMAN,
    CircuitPolicy,
    Engine,
    Escalate,
    Event,
    InputSpec,
    LLMAgent,
    NotWaiting,
    Retry,
    RetryPolicy,
    RunState,
    SQLiteStore,
    Workflow,
)
from podium.store.base import CircuitState
from podium.testing import ScriptedModel

HANG = 10.0


@pytest.fixture
def engine(store: SQLiteStore) -> Engine:
    return Engine(store)


class Journal:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event, state: RunState) -> None:
        self.events.append(event)

    def data(self, type_: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.type == type_]


async def start(engine: Engine, wf: Workflow, inputs: dict[str, Any] | None = None,
                journal: Journal | None = None) -> RunState:
    async with asyncio.timeout(HANG):
        return await engine.start(wf, inputs or {}, on_event=journal)


async def resume(engine: Engine, wf: Workflow, run_id: str) -> RunState:
    async with asyncio.timeout(HANG):
        return await engine.resume(wf, run_id)


def failing(times: int, error: Callable[[int], BaseException], result: Any = "ok",
            calls: list[int] | None = None) -> Callable[[], Any]:
    """An agent that raises `error(n)` on its first `times` calls, then returns `result`."""
    seen = calls if calls is not None else []

    def agent() -> Any:
        seen.append(len(seen) + 1)
        if len(seen) <= times:
            raise error(len(seen))
        return result

    return agent


def task_record(state: RunState, key: str) -> dict[str, Any]:
    return next(t for t in state.record()["tasks"] if t["id"] == key)


# -- retry ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("times", "status"), [(2, "completed"), (3, "failed")])
async def test_failed_attempts_are_retried_and_journaled_with_their_decisions(
        engine: Engine, times: int, status: str) -> None:
    wf = Workflow("retry")
    wf.add_task("t", agent=failing(times, lambda n: ValueError(f"bad {n}")),
                retry=RetryPolicy(attempts=3))
    journal = Journal()

    state = await start(engine, wf, journal=journal)

    assert state.status == status
    record = task_record(state, "t")
    assert record["attempts"] == 3
    assert [d["attempt"] for d in journal.data("task_started")] == [1, 2, 3]
    failures = [(f["attempt"], f["error"], f["decision"])
                for f in journal.data("attempt_failed")]
    decisions = [h["decision"] for h in record["history"] if "decision" in h]
    if status == "completed":
        assert state.outputs() == {"t": "ok"} and record["error"] is None
        assert failures == [(1, "ValueError: bad 1", "retry"), (2, "ValueError: bad 2", "retry")]
        assert decisions == ["retry", "retry"]
    else:
        assert failures[-1] == (3, "ValueError: bad 3", "fail")
        assert decisions == ["retry", "retry", "fail"]
        assert record["error"] == "ValueError: bad 3" and "bad 3" in (state.error or "")


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(attempts=10, backoff=0.5, multiplier=3, max_delay=10, jitter=0)

    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.5, 4.5, 10, 10]
    assert RetryPolicy(backoff=1, jitter=0).delay(4) == 8
    assert RetryPolicy(backoff=0).delay(3) == 0


def test_backoff_jitter_is_bounded_and_follows_the_random_source() -> None:
    policy = RetryPolicy(backoff=1.0, multiplier=2, max_delay=100, jitter=0.25)

    first = [policy.delay(n, random.Random(7)) for n in range(1, 6)]
    again = [policy.delay(n, random.Random(7)) for n in range(1, 6)]
    other = [policy.delay(n, random.Random(8)) for n in range(1, 6)]

    assert first == again
    assert first != other
    for n, delay in enumerate(first, start=1):
        base = 2 ** (n - 1)
        assert base * 0.75 <= delay <= base * 1.25
    rng = random.Random(1)
    spread = {round(policy.delay(1, rng), 6) for _ in range(50)}
    assert len(spread) > 40
    assert min(spread) < 1.0 < max(spread)


async def test_journaled_delays_follow_the_backoff(engine: Engine) -> None:
    wf = Workflow("backoff")
    wf.add_task("t", agent=failing(3, lambda n: OSError("flaky")),
                retry=RetryPolicy(attempts=4, backoff=0.001, multiplier=2, max_delay=0.003,
                                  jitter=0))
    journal = Journal()

    state = await start(engine, wf, journal=journal)

    assert state.status == "completed"
    assert [f["delay"] for f in journal.data("attempt_failed")] == [0.001, 0.002, 0.003]


@pytest.mark.parametrize(
    ("policy", "error", "attempts"),
    [
        (RetryPolicy(attempts=3, retry_on=("ConnectionError",)), ConnectionError("x"), 3),
        (RetryPolicy(attempts=3, retry_on=("ConnectionError",)),
         ConnectionRefusedError("subclass"), 3),
        (RetryPolicy(attempts=3, retry_on=("ConnectionError",)), ValueError("x"), 1),
        (RetryPolicy(attempts=3, no_retry_on=("ValueError",)), ValueError("x"), 1),
        (RetryPolicy(attempts=3, no_retry_on=("ValueError",)), KeyError("x"), 3),
        (RetryPolicy(attempts=3, retry_on=("OSError",), no_retry_on=("ConnectionError",)),
         ConnectionResetError("x"), 1),
        (RetryPolicy(attempts=3, retry_on=("OSError",), no_retry_on=("ConnectionError",)),
         FileNotFoundError("x"), 3),
    ],
)
async def test_retry_on_and_no_retry_on_choose_which_errors_retry(
        engine: Engine, policy: RetryPolicy, error: Exception, attempts: int) -> None:
    calls: list[int] = []
    wf = Workflow("filter")
    wf.add_task("t", agent=failing(9, lambda n: error, calls=calls), retry=policy)

    state = await start(engine, wf)

    assert state.status == "failed"
    assert len(calls) == attempts
    assert task_record(state, "t")["attempts"] == attempts


@pytest.mark.parametrize(("times", "status"), [(2, "completed"), (9, "failed")])
async def test_the_retry_signal_always_retries_within_the_attempts(
        engine: Engine, times: int, status: str) -> None:
    calls: list[int] = []
    wf = Workflow("signal")
    wf.add_task("t", agent=failing(times, lambda n: Retry(f"not ready {n}"), calls=calls),
                retry=RetryPolicy(attempts=3, retry_on=("ConnectionError",),
                                  no_retry_on=("Exception",)))
    journal = Journal()

    state = await start(engine, wf, journal=journal)

    assert state.status == status
    assert calls == [1, 2, 3]
    assert [(f["error_type"], f["decision"]) for f in journal.data("attempt_failed")][:2] == [
        ("Retry", "retry"), ("Retry", "retry")]


# -- timeout and output validation -------------------------------------------------------------


async def test_an_attempt_over_its_timeout_fails_with_task_timeout(engine: Engine) -> None:
    never = asyncio.Event()
    calls = 0

    async def slow_then_fast() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await never.wait()
        return "fast"

    wf = Workflow("timeout")
    wf.add_task("t", agent=slow_then_fast, timeout=0.02, retry=RetryPolicy(attempts=2))
    journal = Journal()

    state = await start(engine, wf, journal=journal)

    assert state.status == "completed"
    assert state.outputs() == {"t": "fast"}
    [failure] = journal.data("attempt_failed")
    assert failure["error_type"] == "TaskTimeout"
    assert failure["error"] == (
        "TaskTimeout: attempt 1 by agent 't' took longer than 0.02s")
    assert failure["decision"] == "retry"


class Invoice(BaseModel):
    number: str
    total: float


async def test_invalid_output_fails_the_attempt_and_is_retried(engine: Engine) -> None:
    replies: list[Any] = [{"number": "A-1"}, Invoice(number="A-1", total=12.5)]
    wf = Workflow("validate")
    wf.add_task("t", agent=lambda: replies.pop(0), output=Invoice,
                retry=RetryPolicy(attempts=2))
    journal = Journal()

    state = await start(engine, wf, journal=journal)

    assert state.status == "completed"
    assert state.outputs() == {"t": {"number": "A-1", "total": 12.5}}
    [failure] = journal.data("attempt_failed")
    assert failure["error_type"] == "OutputInvalid"
    assert "Invoice" in failure["error"] and "total" in failure["error"]


async def test_invalid_output_on_the_last_attempt_fails_the_task(engine: Engine) -> None:
    wf = Workflow("validate")
    wf.add_task("t", agent=lambda: {"number": 7}, output={
        "type": "object", "required": ["number"], "properties": {"number": {"type": "string"}}})

    state = await start(engine, wf)

    assert state.status == "failed"
    assert (task_record(state, "t")["error"] or "").startswith("OutputInvalid:")


# -- fallback ---------------------------------------------------------------------------------


async def test_fallback_agents_are_tried_in_order(engine: Engine) -> None:
    order: list[str] = []

    def agent(name: str, ok: bool) -> Callable[[], str]:
        def fn() -> str:
            order.append(name)
            if not ok:
                raise RuntimeError(f"{name} down")
            return name
        return fn

    wf = Workflow("fallback")
    wf.add_agent("primary", agent("primary", False))
    wf.add_agent("second", agent("second", False))
    wf.add_agent("third", agent("third", True))
    wf.add_agent("fourth", agent("fourth", True))
    wf.add_task("t", agent="primary", fallback=["second", "third", "fourth"],
                retry=RetryPolicy(attempts=2))
    journal = Journal()

    state = await start(engine, wf, journal=journal)

    assert state.outputs() == {"t": "third"}
    assert order == ["primary", "primary", "second", "second", "third"]
    assert [(f["agent"], f["decision"]) for f in journal.data("attempt_failed")] == [
        ("primary", "retry"), ("primary", "fallback"), ("second", "retry"),
        ("second", "fallback")]
    assert task_record(state, "t")["agent"] == "third"
    assert task_record(state, "t")["attempts"] == 5


# -- circuit breaker --------------------------------------------------------------------------


def circuit_workflow(calls: list[str], *, flaky_ok: bool = False, threshold: int = 2,
                     cooldown: float = 3600) -> Workflow:
    def flaky() -> str:
        calls.append("flaky")
        if not flaky_ok:
            raise ConnectionError("down")
        return "flaky"

    def backup() -> str:
        calls.append("backup")
        return "backup"

    wf = Workflow("cb", circuit=CircuitPolicy(threshold=threshold, cooldown=cooldown))
    wf.add_agent("flaky", flaky)
    wf.add_agent("backup", backup)
    wf.add_task("t", agent="flaky", fallback=["backup"], retry=RetryPolicy(attempts=5))
    return wf


async def test_the_circuit_opens_after_consecutive_failures_and_stops_retries(
        engine: Engine, store: SQLiteStore) -> None:
    calls: list[str] = []
    journal = Journal()

    state = await start(engine, circuit_workflow(calls), journal=journal)

    assert state.outputs() == {"t": "backup"}
    assert calls == ["flaky", "flaky", "backup"]
    last = journal.data("attempt_failed")[-1]
    assert (last["decision"], last.get("circuit")) == ("fallback", "open")
    circuit = await store.circuit("cb/flaky")
    assert circuit.failures == 2 and circuit.opened_at is not None


async def test_an_open_circuit_skips_the_agent_for_its_fallback_in_every_engine(
        engine: Engine, store: SQLiteStore) -> None:
    calls: list[str] = []
    await start(engine, circuit_workflow(calls))
    calls.clear()
    journal = Journal()

    # Another engine on the same store: the circuit's state is shared through the store.
    state = await start(Engine(store), circuit_workflow(calls), journal=journal)

    assert state.outputs() == {"t": "backup"}
    assert calls == ["backup"]
    assert journal.data("agent_skipped") == [{"agent": "flaky", "reason": "circuit open"}]
    assert {"agent": "flaky", "skipped": "circuit open"}.items() <= (
        task_record(state, "t")["history"][0].items())


async def test_an_open_circuit_without_fallback_fails_the_task(
        engine: Engine, store: SQLiteStore) -> None:
    await store.set_circuit("solo/a", CircuitState(failures=5, opened_at=time.time()))
    calls: list[str] = []
    wf = Workflow("solo", circuit=CircuitPolicy(threshold=5, cooldown=3600))
    wf.add_task("a", agent=lambda: calls.append("a"))

    state = await start(engine, wf)

    assert state.status == "failed"
    assert calls == []
    assert "circuit open" in (task_record(state, "a")["error"] or "")


async def test_after_the_cooldown_a_successful_trial_closes_the_circuit(
        store: SQLiteStore) -> None:
    await store.set_circuit("cb/flaky", CircuitState(failures=2, opened_at=time.time() - 60))
    calls: list[str] = []

    state = await start(Engine(store), circuit_workflow(calls, flaky_ok=True, cooldown=30))

    assert state.outputs() == {"t": "flaky"}
    assert calls == ["flaky"]
    assert await store.circuit("cb/flaky") == CircuitState()


async def test_after_the_cooldown_a_failed_trial_reopens_the_circuit_at_once(
        store: SQLiteStore) -> None:
    opened = time.time() - 60
    await store.set_circuit("cb/flaky", CircuitState(failures=2, opened_at=opened))
    calls: list[str] = []

    state = await start(Engine(store), circuit_workflow(calls, threshold=10, cooldown=30))

    assert calls == ["flaky", "backup"]
    assert state.outputs() == {"t": "backup"}
    circuit = await store.circuit("cb/flaky")
    assert circuit.opened_at is not None and circuit.opened_at > opened
    calls.clear()
    await start(Engine(store), circuit_workflow(calls, threshold=10, cooldown=30))
    assert calls == ["backup"]


async def test_a_trial_ending_in_escalation_does_not_block_the_agent(
        store: SQLiteStore) -> None:
    await store.set_circuit("cb/flaky", CircuitState(failures=2, opened_at=time.time() - 60))
    engine, calls = Engine(store), []

    def unsure() -> str:
        calls.append("flaky")
        raise Escalate("unsure")

    wf = circuit_workflow(calls, flaky_ok=True, cooldown=30)
    wf.add_agent("flaky", unsure)
    assert (await start(engine, wf)).status == "waiting"
    calls.clear()

    state = await start(engine, circuit_workflow(calls, flaky_ok=True, cooldown=30))

    assert calls == ["flaky"]
    assert state.outputs() == {"t": "flaky"}


async def test_with_no_cooldown_the_circuit_half_opens_at_once(
        engine: Engine, store: SQLiteStore) -> None:
    calls: list[str] = []
    await start(engine, circuit_workflow(calls, cooldown=0))
    assert (await store.circuit("cb/flaky")).opened_at is not None
    calls.clear()

    state = await start(engine, circuit_workflow(calls, flaky_ok=True, cooldown=0))

    assert calls == ["flaky"]
    assert state.outputs() == {"t": "flaky"}
    assert await store.circuit("cb/flaky") == CircuitState()


async def test_a_success_resets_the_count_of_consecutive_failures(
        engine: Engine, store: SQLiteStore) -> None:
    wf = Workflow("cb", circuit=CircuitPolicy(threshold=2, cooldown=3600))
    wf.add_task("t", agent=failing(1, lambda n: OSError("blip")), retry=RetryPolicy(attempts=2))

    await start(engine, wf)

    assert await store.circuit("cb/t") == CircuitState()


# -- escalation, human agents and defaults ----------------------------------------------------


async def test_on_failure_escalate_waits_and_approval_supplies_the_output(
        engine: Engine) -> None:
    wf = Workflow("esc")
    wf.add_task("t", agent=failing(9, lambda n: ValueError("unreadable")),
                on_failure="escalate")
    wf.add_task("after", agent=lambda t: {"got": t}, needs=["t"])

    state = await start(engine, wf)

    assert state.status == "waiting"
    assert state.record()["waiting"] == ["t"]
    waiting = task_record(state, "t")
    assert waiting["status"] == "waiting" and waiting["wait_reason"] == "escalation"
    assert "ValueError: unreadable" in waiting["prompt"]

    await engine.approve(state.run_id, "t", {"value": 42}, by="ann")
    state = await resume(engine, wf, state.run_id)

    assert state.status == "completed"
    assert state.outputs() == {"t": {"value": 42}, "after": {"got": {"value": 42}}}
    assert task_record(state, "t")["agent"] == HUMAN
    assert {"approved_by": "ann"}.items() <= next(
        h for h in task_record(state, "t")["history"] if "approved_by" in h).items()


@pytest.mark.parametrize(("default", "status"), [({"value": 0}, "completed"), (..., "failed")])
async def test_rejecting_an_escalation_uses_the_default_or_fails(
        engine: Engine, default: Any, status: str) -> None:
    wf = Workflow("esc")
    wf.add_task("t", agent=failing(9, lambda n: ValueError("unreadable")),
                on_failure="escalate", default=default)

    state = await start(engine, wf)
    await engine.reject(state.run_id, "t", "no idea either", by="bob")
    state = await resume(engine, wf, state.run_id)

    assert state.status == status
    record = task_record(state, "t")
    if status == "completed":
        assert state.outputs() == {"t": {"value": 0}}
        assert record["defaulted"] is True
    else:
        assert record["error"] == "rejected by bob: no idea either"


async def test_escalation_renders_a_templated_prompt(engine: Engine) -> None:
    wf = Workflow("esc", inputs={"month": InputSpec(type="string")})
    wf.add_task("t", agent=failing(9, lambda n: ValueError("unreadable")),
                prompt="Summarise the books for {{ inputs.month }}", on_failure="escalate")

    state = await start(engine, wf, {"month": "May"})

    assert state.status == "waiting"
    assert "Summarise the books for May" in task_record(state, "t")["prompt"]


async def test_an_agent_raising_escalate_hands_the_task_to_a_human(engine: Engine) -> None:
    calls: list[int] = []

    def unsure() -> str:
        calls.append(1)
        raise Escalate("amount over the limit")

    wf = Workflow("esc")
    wf.add_task("t", agent=unsure, retry=RetryPolicy(attempts=3))
    journal = Journal()

    state = await start(engine, wf, journal=journal)

    assert state.status == "waiting"
    assert calls == [1]
    assert [(f["error_type"], f["decision"]) for f in journal.data("attempt_failed")] == [
        ("Escalate", "escalate")]
    assert "amount over the limit" in task_record(state, "t")["prompt"]

    await engine.approve(state.run_id, "t", "approved amount", by="cfo")
    state = await resume(engine, wf, state.run_id)

    assert state.outputs() == {"t": "approved amount"}


@pytest.mark.parametrize("default", [{"eur": 1.0}, None])
async def test_the_default_is_used_and_marked_when_everything_failed(
        engine: Engine, default: Any) -> None:
    wf = Workflow("default")
    wf.add_task("rates", agent=failing(9, lambda n: TimeoutError("feed down")),
                retry=RetryPolicy(attempts=2), default=default)
    wf.add_task("use", agent=lambda rates: {"used": rates}, needs=["rates"])
    journal = Journal()

    state = await start(engine, wf, journal=journal)

    assert state.status == "completed"
    assert state.outputs() == {"rates": default, "use": {"used": default}}
    assert task_record(state, "rates")["defaulted"] is True
    assert task_record(state, "use")["defaulted"] is False
    assert journal.data("attempt_failed")[-1]["decision"] == "default"


async def test_a_human_task_waits_and_approval_data_becomes_its_output(
        engine: Engine) -> None:
    wf = Workflow("review", inputs={"amount": InputSpec(type="number")})
    wf.add_task("review", agent=HUMAN, prompt="Pay {{ inputs.amount }} EUR?")
    wf.add_task("pay", agent=lambda review: f"paid {review['amount']}", needs=["review"])

    state = await start(engine, wf, {"amount": 120})

    assert state.status == "waiting"
    record = task_record(state, "review")
    assert (record["prompt"], record["wait_reason"]) == ("Pay 120 EUR?", "approval")
    assert "pay" not in state.outputs()

    await engine.approve(state.run_id, "review", {"amount": 100}, by="ann")
    state = await resume(engine, wf, state.run_id)

    assert state.status == "completed"
    assert state.outputs() == {"review": {"amount": 100}, "pay": "paid 100"}


@pytest.mark.parametrize(
    ("options", "status", "output"),
    [
        ({"fallback": ["auto"]}, "completed", "auto-approved"),
        ({"default": "declined"}, "completed", "declined"),
        ({}, "failed", None),
    ],
)
async def test_rejecting_a_human_task_goes_to_fallback_default_or_failure(
        engine: Engine, options: dict[str, Any], status: str, output: Any) -> None:
    wf = Workflow("review")
    wf.add_agent("auto", lambda: "auto-approved")
    wf.add_task("review", agent=HUMAN, prompt="OK?", **options)

    state = await start(engine, wf)
    await engine.reject(state.run_id, "review", "too expensive", by="ann")
    state = await resume(engine, wf, state.run_id)

    assert state.status == status
    assert state.outputs().get("review") == output
    if status == "failed":
        assert task_record(state, "review")["error"] == "rejected by ann: too expensive"


async def test_answering_a_task_that_is_not_waiting_raises_not_waiting(
        engine: Engine) -> None:
    wf = Workflow("review")
    wf.add_task("done", agent=lambda: "done")
    wf.add_task("review", agent=HUMAN, prompt="OK?", needs=["done"])
    state = await start(engine, wf)

    with pytest.raises(NotWaiting, match=r"task 'done' .* not waiting .*completed.*'review'"):
        await engine.approve(state.run_id, "done", {})
    with pytest.raises(NotWaiting, match=r"task 'ghost' .* not a task of this run"):
        await engine.reject(state.run_id, "ghost", "why")

    await engine.approve(state.run_id, "review", {"ok": True})
    with pytest.raises(NotWaiting, match="already answered"):
        await engine.approve(state.run_id, "review", {"ok": False})
    state = await resume(engine, wf, state.run_id)
    assert state.outputs()["review"] == {"ok": True}
    with pytest.raises(NotWaiting, match="waiting: none"):
        await engine.approve(state.run_id, "review", {})


# -- LLM agents ----------------------------------------------------------------------------


class Weather(BaseModel):
    city: str
    temperature_c: int


async def test_llm_tokens_are_journaled_per_call_and_totalled(engine: Engine) -> None:
    model = ScriptedModel(["four words of reply", "two words"])
    # A trusted input: the prompt is counted as written, with no untrusted delimiters.
    wf = Workflow("llm", inputs={"topic": InputSpec(type="string", trusted=True)})
    wf.add_agent("writer", LLMAgent(model, name="writer", instructions="Be brief."))
    wf.add_task("draft", agent="writer", prompt="Write about {{ inputs.topic }}")
    wf.add_task("title", agent="writer", prompt="Title for: {{ outputs.draft }}",
                needs=["draft"])
    journal = Journal()

    state = await start(engine, wf, {"topic": "tides"}, journal=journal)

    assert state.status == "completed"
    assert state.outputs() == {"draft": "four words of reply", "title": "two words"}
    calls = journal.data("model_call")
    assert [(c["model"], c["input_tokens"], c["output_tokens"]) for c in calls] == [
        ("scripted", 2 + 3, 4), ("scripted", 2 + 6, 2)]
    assert task_record(state, "draft")["tokens"] == {"input": 5, "output": 4, "calls": 1,
                                                     "cost_usd": 0.0}
    assert state.record()["tokens"] == {"input": 13, "output": 6, "cost_usd": 0.0}
    assert model.calls[1].messages[-1].content == "Title for: four words of reply"


async def test_an_llm_reply_that_is_not_json_is_invalid_and_retried(engine: Engine) -> None:
    model = ScriptedModel(["Sure! It is 4 degrees in Oslo.",
                           '{"city": "Oslo", "temperature_c": 4}'])
    wf = Workflow("llm")
    # Without repairs, the unfit answer fails the attempt and the policy retries.
    wf.add_agent("forecaster", LLMAgent(model, name="forecaster", max_repairs=0))
    wf.add_task("weather", agent="forecaster", prompt="Weather in Oslo?", output=Weather,
                retry=RetryPolicy(attempts=2))
    journal = Journal()

    state = await start(engine, wf, journal=journal)

    assert state.status == "completed"
    assert state.outputs() == {"weather": {"city": "Oslo", "temperature_c": 4}}
    [failure] = journal.data("attempt_failed")
    assert (failure["error_type"], failure["decision"]) == ("OutputInvalid", "retry")
    assert "not JSON" in failure["error"]
    assert [c.output_schema for c in model.calls] == [Weather.model_json_schema()] * 2
    assert task_record(state, "weather")["tokens"]["calls"] == 2


async def test_approved_data_that_does_not_fit_the_output_schema_is_asked_again(
    tmp_path: Path,
) -> None:
    from pydantic import BaseModel

    class Decision(BaseModel):
        send: bool

    wf = Workflow("ask")
    wf.add_task("decide", agent="human", prompt="Send?", output=Decision)
    store = SQLiteStore(tmp_path / "j.db")
    engine = Engine(store)
    try:
        state = await engine.start(wf)
        await engine.approve(state.run_id, "decide", {"send": "maybe"})
        state = await engine.resume(wf, state.run_id)
        assert state.status == "waiting"
        task = state.tasks["decide"]
        assert "not accepted" in (task.prompt or "") and "send" in (task.prompt or "")
        await engine.approve(state.run_id, "decide", {"send": True})
        state = await engine.resume(wf, state.run_id)
        assert state.status == "completed"
        assert state.outputs()["decide"] == {"send": True}
    finally:
        await store.close()
