"""Access control inside runs, on real SQLite journals and audit logs: the principal flows
through the run; runs, approvals, agents and tool calls are checked against it; denials are
clear errors and audit records; delegation passes on no permission of the agent's own."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from podium import (
    HUMAN,
    AccessPolicy,
    Agent,
    Engine,
    LLMAgent,
    PermissionDenied,
    Principal,
    SQLiteStore,
    TaskContext,
    TaskInput,
    Workflow,
    parse_policy,
)
from podium.security import AuditLog, AuditRecord
from podium.testing import ScriptedModel
from podium.tools import Tool, make_tool

ROLES: dict[str, dict[str, Any]] = {
    "lead": {"workflows": {"*": ["run", "approve"]}, "agents": ["*"],
             "tools": {"*": ["call"]}},
    "analyst": {"workflows": {"report*": ["run"]}, "agents": ["writer", "reader"],
                "tools": {"tag:read": ["call"]}},
    "operator": {"workflows": {"payments": ["run"], "report": ["run"]},
                 "agents": ["payer", "reader"], "tools": {"wire": ["call"], "lookup": ["call"]}},
    "approver": {"workflows": {"*": ["approve"]}},
}
AGENTS = ["writer", "reader", "payer"]
TOOL_TAGS = {"lookup": {"read"}, "search": {"read"}, "wire": {"payments", "high_risk"},
             "email": {"send", "high_risk"}}
WORKFLOWS = ["report", "payments"]


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit.db", key=b"k" * 32, sign_every=None,
                  signing_key=Ed25519PrivateKey.generate()) as log:
        yield log


@pytest.fixture
def policy() -> AccessPolicy:
    return parse_policy(yaml.safe_dump({"roles": ROLES}), "engine.yaml")


def _records(audit: AuditLog, action: str | None = None) -> list[AuditRecord]:
    return [r for r in audit.records() if action is None or r.action == action]


class Tools:
    """Real tools that count their executions."""

    def __init__(self) -> None:
        self.executed: Counter[str] = Counter()

    def make(self, name: str) -> Tool:
        async def body(note: str = "") -> str:
            self.executed[name] += 1
            return f"{name} done"

        body.__doc__ = f"The {name} tool."
        return make_tool(body, name=name, tags=TOOL_TAGS[name])


def _calling_all(tools: list[Tool]) -> ScriptedModel:
    """A model that calls every tool once, then answers."""
    return ScriptedModel([{"tool_calls": [{"name": t.name, "arguments": {}} for t in tools]},
                          "finished"])


def _matrix_workflow(name: str, tools: Tools) -> Workflow:
    wf = Workflow(name)
    for agent in AGENTS:
        offered = [tools.make(t) for t in TOOL_TAGS]
        wf.add_agent(agent, LLMAgent(_calling_all(offered), name=agent, tools=offered))
        wf.add_task(f"t_{agent}", agent=agent, prompt="Work.", default="not permitted")
    return wf


def _allowed(role: str, kind: str, name: str) -> bool:
    """What ROLES say, read without the policy's code."""
    grants = ROLES[role]
    if kind == "workflow":
        return any(name.startswith(p.rstrip("*")) if p.endswith("*") else p == name
                   for p, verbs in grants.get("workflows", {}).items() if "run" in verbs)
    if kind == "agent":
        agents = grants.get("agents", [])
        return "*" in agents or name in agents
    tools = grants.get("tools", {})
    return "*" in tools or name in tools or any(
        p == f"tag:{tag}" for p in tools for tag in TOOL_TAGS[name])


async def test_role_agent_tool_matrix_through_the_engine(
        store: SQLiteStore, audit: AuditLog, policy: AccessPolicy) -> None:
    executed, expected = set(), set()
    denied_runs, expected_denied_runs = set(), set()
    for role, workflow in itertools.product(ROLES, WORKFLOWS):
        tools = Tools()
        engine = Engine(store, policy=policy, audit=audit)
        who = Principal(id=f"{role}-user", roles=frozenset({role}))
        if not _allowed(role, "workflow", workflow):
            expected_denied_runs.add((role, workflow))
        try:
            state = await engine.start(_matrix_workflow(workflow, tools), principal=who)
        except PermissionDenied:
            denied_runs.add((role, workflow))
            continue
        assert state.status == "completed", state.error
        assert state.principal == who
        for agent in AGENTS:
            task = state.tasks[f"t_{agent}"]
            for call in task.tool_calls:
                if "result" in call:
                    executed.add((role, workflow, agent, call["name"]))
                else:
                    assert call["error_type"] == "PermissionDenied", call
                    # The model is told no more than that (no principal, no roles).
                    assert call["error"] == (f"tool {call['name']!r} is not permitted in "
                                             "this run; do without it")
            if not _allowed(role, "agent", agent):
                assert task.defaulted and task.tool_calls == []
                assert "PermissionDenied" in str(task.history), task.history
                continue
            for tool in TOOL_TAGS:
                if _allowed(role, "tool", tool):
                    expected.add((role, workflow, agent, tool))
        # A denied tool never ran: executions are exactly the allowed calls.
        assert sum(tools.executed.values()) == sum(
            1 for e in executed if e[:2] == (role, workflow))

    assert denied_runs == expected_denied_runs
    assert executed == expected
    assert {r for r, *_ in executed} == {"lead", "analyst", "operator"}
    # Every live tool call was audited with its decision; denials of agents and runs too.
    calls = _records(audit, "tool.call")
    assert Counter(r.outcome for r in calls)["allowed"] == len(executed)
    assert all(r.outcome in ("allowed", "denied") for r in calls)
    assert {(r.actor, r.subject) for r in _records(audit, "policy.deny")} >= {
        (f"{role}-user", workflow) for role, workflow in expected_denied_runs}
    assert len(_records(audit, "run.start")) == len(_records(audit, "run.end")) == (
        len(ROLES) * len(WORKFLOWS) - len(expected_denied_runs))


async def test_a_denied_run_is_a_clear_error_an_audit_record_and_no_journal(
        store: SQLiteStore, audit: AuditLog, policy: AccessPolicy) -> None:
    engine = Engine(store, policy=policy, audit=audit)
    who = Principal(id="ann", roles=frozenset({"analyst"}))

    with pytest.raises(PermissionDenied) as caught:
        await engine.start(_matrix_workflow("payments", Tools()), principal=who)

    assert str(caught.value).startswith(
        "user 'ann' (roles: analyst) may not run workflow 'payments'; in engine.yaml roles "
        "'lead', 'operator' may")
    assert await store.runs(10, None) == []
    [record] = _records(audit)
    assert (record.actor, record.action, record.subject, record.outcome, record.detail) == (
        "ann", "policy.deny", "payments", "denied", "workflow:run")
    assert audit.verify().ok


async def test_with_a_policy_a_run_without_principal_is_anonymous_and_denied(
        store: SQLiteStore, policy: AccessPolicy) -> None:
    with pytest.raises(PermissionDenied, match=r"user 'anonymous' .* may not run"):
        await Engine(store, policy=policy).start(_matrix_workflow("report", Tools()))


async def test_without_a_policy_everything_runs_and_the_principal_is_journaled(
        store: SQLiteStore, audit: AuditLog) -> None:
    tools = Tools()
    who = Principal(id="ada", kind="service", roles=frozenset({"nothing"}))

    state = await Engine(store, audit=audit).start(_matrix_workflow("payments", tools),
                                                   principal=who)

    assert state.status == "completed"
    assert sum(tools.executed.values()) == len(AGENTS) * len(TOOL_TAGS)
    assert (await Engine(store).state(state.run_id)).principal == who
    assert state.record()["principal"] == {"id": "ada", "kind": "service",
                                           "roles": ["nothing"]}
    actions = Counter(r.action for r in _records(audit))
    assert actions == {"run.start": 1, "run.end": 1, "tool.call": 12}
    assert {r.outcome for r in _records(audit, "tool.call")} == {"allowed"}


async def test_audit_records_hold_no_inputs_outputs_or_arguments(
        store: SQLiteStore, audit: AuditLog) -> None:
    wf = Workflow("report", inputs={})
    tools = Tools()
    lookup = tools.make("lookup")
    wf.add_agent("reader", LLMAgent(ScriptedModel([
        {"tool_calls": [{"name": "lookup", "arguments": {"note": "ada@example.com"}}]},
        "card 4111 1111 1111 1111"]), name="reader", tools=[lookup]))
    wf.add_task("t", agent="reader", prompt="Find ada@example.com")

    state = await Engine(store, audit=audit).start(wf, principal=Principal(id="ops"))

    assert state.outputs()["t"] == "card 4111 1111 1111 1111"
    text = repr([r.to_json() for r in _records(audit)])
    assert "ada@example.com" not in text and "4111" not in text
    assert "Find" not in text


async def test_a_principal_that_looks_personal_is_audited_as_a_pseudonym(
        store: SQLiteStore, audit: AuditLog) -> None:
    state = await Engine(store, audit=audit).start(
        _matrix_workflow("report", Tools()), principal=Principal(id="ada@example.com"))

    starts = _records(audit, "run.start")
    assert state.status == "completed"
    assert starts[0].actor.startswith("pseudonym-") and "PSEUDONYM" in starts[0].data_classes
    assert "ada@example.com" not in repr([r.to_json() for r in _records(audit)])


# -- approvals ------------------------------------------------------------------------------


def _review() -> Workflow:
    wf = Workflow("report")
    wf.add_task("check", agent=HUMAN, prompt="Publish?")
    return wf


async def test_approvals_are_checked_journaled_and_audited(
        store: SQLiteStore, audit: AuditLog, policy: AccessPolicy) -> None:
    engine = Engine(store, policy=policy, audit=audit)
    ann = Principal(id="ann", roles=frozenset({"analyst"}))
    bob = Principal(id="bob", roles=frozenset({"approver"}))
    state = await engine.start(_review(), principal=ann)
    assert state.status == "waiting"

    with pytest.raises(PermissionDenied, match=r"user 'ann' .* may not approve workflow "
                                               "'report'"):
        await engine.approve(state.run_id, "check", {"ok": True}, principal=ann)
    assert (await engine.state(state.run_id)).tasks["check"].approval is None

    await engine.approve(state.run_id, "check", {"ok": True}, principal=bob)
    done = await engine.resume(_review(), state.run_id, principal=ann)

    assert done.status == "completed"
    assert done.principal == ann  # the run stays ann's; bob only approved
    assert {"approved_by": "bob"}.items() <= done.tasks["check"].history[-1].items()
    trail = [(r.actor, r.action, r.outcome) for r in _records(audit)]
    assert trail == [("ann", "run.start", "ok"), ("ann", "policy.deny", "denied"),
                     ("bob", "task.approve", "ok"), ("ann", "run.resume", "ok"),
                     ("ann", "run.end", "completed")]


async def test_a_rejection_needs_the_approve_permission_too(
        store: SQLiteStore, audit: AuditLog, policy: AccessPolicy) -> None:
    engine = Engine(store, policy=policy, audit=audit)
    ann = Principal(id="ann", roles=frozenset({"analyst"}))
    state = await engine.start(_review(), principal=ann)

    with pytest.raises(PermissionDenied):
        await engine.reject(state.run_id, "check", "no", principal=ann)
    await engine.reject(state.run_id, "check", "no",
                        principal=Principal(id="lee", roles=frozenset({"lead"})))

    assert (await engine.state(state.run_id)).tasks["check"].approval == {
        "approved": False, "reason": "no", "by": "lee"}
    assert [r.actor for r in _records(audit, "task.reject")] == ["lee"]


async def test_resuming_needs_the_run_permission(
        store: SQLiteStore, policy: AccessPolicy) -> None:
    engine = Engine(store, policy=policy)
    state = await engine.start(_review(), principal=Principal(
        id="ann", roles=frozenset({"analyst"})))

    with pytest.raises(PermissionDenied, match=r"user 'bob' .* may not run workflow"):
        await engine.resume(_review(), state.run_id,
                            principal=Principal(id="bob", roles=frozenset({"approver"})))


# -- agents and delegation ------------------------------------------------------------------


async def test_a_denied_agent_falls_back_to_a_permitted_one(
        store: SQLiteStore, audit: AuditLog, policy: AccessPolicy) -> None:
    wf = Workflow("report")
    wf.add_agent("writer", lambda: "by writer")
    wf.add_agent("payer", lambda: "by payer")
    wf.add_task("t", agent="payer", fallback=["writer"])

    state = await Engine(store, policy=policy, audit=audit).start(
        wf, principal=Principal(id="ann", roles=frozenset({"analyst"})))

    assert state.outputs()["t"] == "by writer"
    [denied] = [h for h in state.tasks["t"].history if h.get("agent") == "payer"]
    assert denied["decision"] == "fallback"
    assert denied["error"].startswith("PermissionDenied: user 'ann' (roles: analyst) may not "
                                      "use agent 'payer'")
    [record] = _records(audit, "policy.deny")
    assert (record.subject, record.detail) == (f"{state.run_id}/t", "agent:use")


async def test_an_agent_denied_outright_fails_the_run_with_the_reason(
        store: SQLiteStore, policy: AccessPolicy) -> None:
    wf = Workflow("report")
    wf.add_agent("payer", lambda: "paid")
    wf.add_task("t", agent="payer")

    state = await Engine(store, policy=policy).start(
        wf, principal=Principal(id="ann", roles=frozenset({"analyst"})))

    assert state.status == "failed"
    assert "may not use agent 'payer'" in (state.error or "")


class Manager(Agent):
    """An agent that hands the task to another agent."""

    def __init__(self, helper: Agent) -> None:
        self.name, self.helper = "manager", helper

    async def run(self, task: TaskInput, ctx: TaskContext) -> Any:
        return await ctx.delegate(self.helper, TaskInput(args={}, prompt="Pay the invoice."))


DELEGATION = {
    "clerk": {"workflows": {"pay": ["run"]}, "agents": ["manager"], "tools": ["lookup"]},
    "clerk_plus": {"workflows": {"pay": ["run"]}, "agents": ["manager", "payer"],
                   "tools": ["lookup"]},
    "treasurer": {"workflows": {"pay": ["run"]}, "agents": ["manager", "payer"],
                  "tools": ["lookup", "wire"]},
}


def _delegation(tools: Tools) -> Workflow:
    wire = tools.make("wire")
    payer = LLMAgent(_calling_all([wire]), name="payer", tools=[wire])
    wf = Workflow("pay")
    wf.add_agent("manager", Manager(payer))
    wf.add_task("pay", agent="manager")
    return wf


@pytest.mark.parametrize(("role", "wired", "status"), [
    ("clerk", 0, "failed"), ("clerk_plus", 0, "completed"), ("treasurer", 1, "completed")])
async def test_delegation_checks_the_runs_principal_not_the_agent(
        store: SQLiteStore, audit: AuditLog, role: str, wired: int, status: str) -> None:
    policy = parse_policy(yaml.safe_dump({"roles": DELEGATION}))
    tools = Tools()
    who = Principal(id="pat", roles=frozenset({role}))

    state = await Engine(store, policy=policy, audit=audit).start(_delegation(tools),
                                                                  principal=who)

    assert state.status == status, state.error
    assert tools.executed["wire"] == wired
    if role == "clerk":
        # The manager may be used by the clerk; the payer it hands work to may not.
        assert "may not use agent 'payer'" in (state.error or "")
        assert [r.detail for r in _records(audit, "policy.deny")] == ["agent:use"]
    else:
        [call] = _records(audit, "tool.call")
        assert (call.actor, call.outcome) == (
            "pat", "allowed" if role == "treasurer" else "denied")
        assert call.subject == f"{state.run_id}/pay/wire"


async def test_ctx_authorize_is_what_memory_code_calls(store: SQLiteStore,
                                                       audit: AuditLog) -> None:
    policy = parse_policy(yaml.safe_dump({"roles": {"r": {
        "workflows": {"notes": ["run"]}, "agents": ["*"],
        "memory": {"notes/*": ["read"]}}}}))
    outcomes: list[str] = []

    async def remember(ctx: TaskContext) -> list[str]:
        for action, space in (("memory:read", "notes/ada"), ("memory:forget", "notes/ada")):
            try:
                await ctx.authorize(action, space)
                outcomes.append(f"{action} ok")
            except PermissionDenied as e:
                outcomes.append(f"{action} denied: {e.resource}")
        return outcomes

    wf = Workflow("notes")
    wf.add_agent("mem", remember)
    wf.add_task("t", agent="mem")
    state = await Engine(store, policy=policy, audit=audit).start(
        wf, principal=Principal(id="ann", roles=frozenset({"r"})))

    assert state.outputs()["t"] == ["memory:read ok", "memory:forget denied: notes/ada"]
    [record] = _records(audit, "policy.deny")
    assert (record.detail, record.subject) == ("memory:forget",
                                               f"{state.run_id}/t/notes/ada")
