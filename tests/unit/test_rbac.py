"""The access policy on its own: the whole permission matrix against an independent reading
of the grants, denial messages, and policy files whose errors name file, line and field."""

from __future__ import annotations

import itertools
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import yaml

from podium import (
    AccessPolicy,
    PermissionDenied,
    PolicyFileError,
    Principal,
    UserError,
    load_policy,
    parse_policy,
)
from podium.security.rbac import ACTIONS, VERBS

GRANTS: dict[str, dict[str, Any]] = {
    "admin": {"workflows": {"*": ["*"]}, "agents": ["*"], "tools": {"*": ["call"]},
              "memory": {"*": ["*"]}, "subjects": ["*"], "act_as": ["*"],
              "tokens": {"*": ["*"]}, "keys": ["*"], "audit": ["verify", "export"]},
    "analyst": {"workflows": {"report_*": ["run", "view"]}, "agents": ["writer", "fin_*"],
                "tools": {"search": ["call"], "tag:read": ["call"]},
                "memory": {"reports/*": ["read", "write"]}, "keys": ["status"]},
    "approver": {"workflows": {"report_*": ["view", "approve"], "payments": ["approve"]},
                 "audit": ["verify"], "act_as": ["bot-*"]},
    "operator": {"workflows": {"payments": ["run", "cancel"]}, "agents": {"payer": ["use"]},
                 "tools": {"tag:pay*": ["call"], "wire": ["call"]},
                 "memory": {"ledger/*": ["read", "forget", "trust"]},
                 "subjects": {"cust-*": ["erase"]}, "tokens": {"bot-*": ["issue"]}},
    "viewer": {"workflows": {"*": ["view"]}},
    "nobody": {},
}
"""Roles and what they may do, in the policy file's own shapes (lists and mappings)."""
WORKFLOWS = ["report_monthly", "report_q1", "payments", "hr_review"]
AGENTS = ["writer", "fin_reader", "fin_writer", "payer", "spy"]
TOOLS: dict[str, frozenset[str]] = {
    "search": frozenset({"read"}), "lookup": frozenset({"read"}),
    "ledger": frozenset({"read", "payments"}), "wire": frozenset({"payments", "high_risk"}),
    "email": frozenset({"send", "high_risk"}), "shell": frozenset(),
}
MEMORY = ["reports/2026", "reports", "ledger/acme", "hr/alice"]
PRINCIPALS = ["bot-1", "ada", "root"]
RESOURCES = {"workflow": WORKFLOWS, "agent": AGENTS, "tool": list(TOOLS), "memory": MEMORY,
             "subject": ["cust-42", "pt-7"], "principal": PRINCIPALS, "token": PRINCIPALS,
             "keys": ["master key"], "audit": ["podium.db"]}
SECTIONS = {"workflow": "workflows", "agent": "agents", "tool": "tools", "memory": "memory",
            "subject": "subjects", "principal": "act_as", "token": "tokens", "keys": "keys",
            "audit": "audit"}


def _expected(role: str, kind: str, verb: str, resource: str) -> bool:
    """What GRANTS say, read independently of the policy's code."""
    section = GRANTS[role].get(SECTIONS[kind], {})
    if kind in ("keys", "audit"):  # one resource each: the section lists verbs
        return verb in section or "*" in section
    if isinstance(section, list):  # a list of names: the kind's only verb
        section = {name: [VERBS[kind][0]] for name in section}
    for pattern, verbs in section.items():
        if verb not in verbs and "*" not in verbs:
            continue
        if pattern.startswith("tag:") and kind == "tool":
            if any(fnmatchcase(tag, pattern[4:]) for tag in TOOLS[resource]):
                return True
        elif fnmatchcase(resource, pattern):
            return True
    return False


@pytest.fixture(scope="module")
def policy() -> AccessPolicy:
    return parse_policy(yaml.safe_dump({"roles": GRANTS}), "matrix.yaml")


def test_the_whole_matrix_is_what_the_grants_say(policy: AccessPolicy) -> None:
    allowed, expected = set(), set()
    for role, action in itertools.product(GRANTS, sorted(ACTIONS)):
        kind, verb = action.split(":")
        who = Principal(id=f"{role}-user", roles=frozenset({role}))
        for resource in RESOURCES[kind]:
            tags = TOOLS[resource] if kind == "tool" else ()
            if policy.allows(who, action, resource, tags=tags).allowed:
                allowed.add((role, action, resource))
            if _expected(role, kind, verb, resource):
                expected.add((role, action, resource))

    assert allowed == expected
    # The matrix is not trivially full or empty: each role is allowed some, denied some.
    size = sum(len(RESOURCES[a.split(":")[0]]) for a in ACTIONS)
    by_role = {r: sum(1 for a in allowed if a[0] == r) for r in GRANTS}
    assert by_role["nobody"] == 0
    assert by_role["admin"] == size
    assert all(0 < n < size for r, n in by_role.items() if r not in ("admin", "nobody"))


def test_roles_add_up_and_everyone_applies_to_all(policy: AccessPolicy) -> None:
    both = Principal(id="ada", roles=frozenset({"analyst", "operator"}))
    assert policy.allows(both, "workflow:run", "report_q1").allowed
    assert policy.allows(both, "workflow:run", "payments").allowed
    assert not policy.allows(both, "workflow:run", "hr_review").allowed

    open_view = parse_policy(yaml.safe_dump({"roles": GRANTS, "everyone": ["viewer"]}))
    stranger = Principal(id="stranger")
    assert open_view.allows(stranger, "workflow:view", "hr_review").allowed
    assert not open_view.allows(stranger, "workflow:run", "hr_review").allowed
    assert not open_view.allows(None, "workflow:run", "hr_review").allowed


def test_an_allowed_decision_names_the_rule_and_its_line() -> None:
    policy = parse_policy("roles:\n  analyst:\n    tools:\n      'tag:read': [call]\n",
                          "p.yaml")
    who = Principal(id="ada", roles=frozenset({"analyst"}))

    decision = policy.allows(who, "tool:call", "search", tags={"read"})

    assert decision.allowed
    assert decision.rule == "roles.analyst.tools.tag:read"
    assert "p.yaml:4" in decision.reason


def test_a_denial_says_who_what_and_which_roles_would(policy: AccessPolicy) -> None:
    who = Principal(id="bob", roles=frozenset({"analyst"}))

    with pytest.raises(PermissionDenied) as caught:
        policy.check(who, "workflow:run", "payments")

    message = str(caught.value)
    assert "user 'bob' (roles: analyst) may not run workflow 'payments'" in message
    assert "roles 'admin', 'operator' may" in message
    assert "matrix.yaml" in message
    assert (caught.value.principal, caught.value.action, caught.value.resource) == (
        "bob", "workflow:run", "payments")
    assert isinstance(caught.value, UserError)


def test_a_principal_unknown_to_the_policy_holds_no_role(policy: AccessPolicy) -> None:
    decision = policy.allows(policy.principal("mallory"), "agent:use", "writer")

    assert not decision.allowed
    assert "'mallory' is not listed under principals:" in decision.reason


def test_principals_get_their_roles_and_kind_from_the_file() -> None:
    policy = parse_policy(
        "roles: {a: {agents: [x]}, b: {}}\n"
        "principals:\n  ada: [a, b]\n  bot: {kind: service, roles: [a]}\n")

    assert policy.principal("ada") == Principal(id="ada", roles=frozenset({"a", "b"}))
    assert policy.principal("bot") == Principal(id="bot", kind="service",
                                                roles=frozenset({"a"}))
    assert policy.principal("zed") == Principal(id="zed")


def test_without_a_policy_everything_is_allowed_and_said_so() -> None:
    open_policy = AccessPolicy.unrestricted()

    decision = open_policy.allows(None, "tool:call", "wire", tags={"high_risk"})

    assert decision.allowed and "no access policy" in decision.reason
    assert open_policy.check(Principal(id="x"), "memory:forget", "hr/alice").allowed


def test_an_unknown_action_is_a_clear_error(policy: AccessPolicy) -> None:
    with pytest.raises(UserError, match=r"unknown action 'tool:run'; the actions are "):
        policy.allows(Principal(id="a"), "tool:run", "x")


# -- policy files ---------------------------------------------------------------------------


def _problems(text: str) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text, "policy.yaml")
    assert all(p.file == "policy.yaml" for p in caught.value.problems)
    return [(p.line, p.field, p.message) for p in caught.value.problems]


def test_a_bad_verb_names_its_line_and_field() -> None:
    text = "roles:\n  analyst:\n    workflows:\n      report: [run, fly]\n"

    [(line, field, message)] = _problems(text)

    assert (line, field) == (4, "roles.analyst.workflows.report.1")
    assert "'run'" in message and "'approve'" in message


def test_every_problem_is_reported_at_once() -> None:
    text = ("roles:\n"
            "  analyst:\n"
            "    agent: [writer]\n"                      # 3: agents, misspelt
            "    memory: {notes: [read, erase]}\n"       # 4: no such verb
            "principals:\n"
            "  ada: [analyst, auditor]\n"                # 6: auditor is no role
            "everyone: [guest]\n")                       # 7: nor is guest
    problems = _problems(text)

    assert [(line, field) for line, field, _ in problems] == [
        (3, "roles.analyst.agent"), (4, "roles.analyst.memory.notes.1"),
        (6, "principals.ada.roles.1"), (7, "everyone.0")]
    assert problems[0][2] == "unknown field 'agent'"


def test_unknown_roles_name_their_line() -> None:
    text = ("roles:\n  analyst: {}\n"
            "principals:\n  ada: [analyst, auditor]\n  bot: {kind: service, roles: [x]}\n"
            "everyone: [guest]\n")

    problems = _problems(text)

    assert [(line, field) for line, field, _ in problems] == [
        (4, "principals.ada.roles.1"), (5, "principals.bot.roles.0"), (6, "everyone.0")]
    assert "unknown role 'auditor'; the roles are 'analyst'" in problems[0][2]


def test_a_bad_principal_kind_and_a_yaml_error_name_their_line() -> None:
    assert _problems("roles: {}\nprincipals:\n  bot: {kind: robot}\n")[0][:2] == (
        3, "principals.bot.kind")
    [(line, field, message)] = _problems("roles:\n  a: [unclosed\n")
    assert line == 3 and field is None and message.startswith("not valid YAML")
    assert _problems("- a list\n")[0][2].startswith("a policy file is a mapping")
    assert _problems("roles:\n  a: [x]\n")[0] == (
        2, "roles.a", "a role is a mapping with workflows, agents, tools and memory")


def test_load_policy_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("roles:\n  a:\n    tools: {x: [use]}\n", encoding="utf-8")

    with pytest.raises(PolicyFileError) as caught:
        load_policy(path)
    assert f"{path}:3: roles.a.tools.x.0" in str(caught.value)
    with pytest.raises(UserError, match="cannot read access policy"):
        load_policy(tmp_path / "missing.yaml")


def test_an_empty_file_denies_everything() -> None:
    policy = parse_policy("", "empty.yaml")

    assert not policy.allows(Principal(id="a", roles=frozenset({"x"})), "workflow:view",
                             "w").allowed
