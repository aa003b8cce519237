"""Access control: principals, roles, and the policy file that says what each role may do.

Every run, approval, tool call and memory access happens on behalf of a `Principal` (a user
or a service with roles). An `AccessPolicy` gives roles permissions; with a policy in force, what it
does not allow is denied. With no policy, everything is allowed (`AccessPolicy.unrestricted()`),
and the `podium` command says so.

The policy file (YAML)::

    roles:
      analyst:
        workflows: {"monthly_*": [run, view]}   # run, view, approve, cancel, serve, or "*"
        agents: [writer, "fin_*"]                # a list: may use these agents
        tools:
          search: [call]
          "tag:read": [call]                      # every tool tagged `read`
        memory: {"reports/*": [read, write]}      # read, write, forget, trust
      approver:
        workflows: {"*": [view, approve]}
      operator:
        subjects: ["*"]                           # erase everything about a subject
        act_as: ["report-bot"]                    # act as these principals
        tokens: {"report-bot": [issue, revoke]}   # API tokens for these principals
        keys: [status, manage]                    # the master key
        audit: [verify, export]                   # the audit log
    principals:                                   # who holds which roles
      ada: [analyst, approver]
      report-bot: {kind: service, roles: [analyst]}
    everyone: []                                  # roles every principal holds
    functions:                                    # modules a workflow file may name
      allow: ["examples.*", "mypkg.*"]

Patterns are shell globs (`fnmatch`, case-sensitive; `*` also matches `/`). A tool pattern
`tag:NAME` matches the tools carrying that permission tag (`@tool(tags={"high_risk"})`).

Actions are `kind:verb`: `workflow:run`, `workflow:view`, `workflow:approve`,
`workflow:cancel`, `workflow:serve`, `agent:use`, `tool:call`, `memory:read`,
`memory:write`, `memory:forget`, `memory:trust`, `subject:erase`, `principal:act_as`,
`token:issue`, `token:revoke`, `keys:status`, `keys:manage`, `audit:verify`, `audit:export`.

For other rooms (memory, tools), two ways to ask::

    policy.check(principal, "memory:read", namespace)   # raises PermissionDenied
    decision = policy.allows(principal, "tool:call", "send_email", tags={"high_risk"})

and, inside a run, on behalf of the run's principal and audited by the engine::

    await ctx.authorize("memory:forget", namespace)     # ctx: the TaskContext

What is checked is always the run's principal, never the agent: an agent that hands work to
another (`ctx.delegate`) passes on no permission of its own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from podium.core.principal import ANONYMOUS, Principal, PrincipalKind
from podium.errors import PermissionDenied, UserError

VERBS: Mapping[str, tuple[str, ...]] = {
    "workflow": ("run", "view", "approve", "cancel", "serve"),
    "agent": ("use",),
    "tool": ("call",),
    "memory": ("read", "write", "forget", "trust"),
    "subject": ("erase",),
    "principal": ("act_as",),
    "token": ("issue", "revoke"),
    "keys": ("status", "manage"),
    "audit": ("verify", "export"),
}
"""The verbs of each kind of resource."""
ACTIONS: frozenset[str] = frozenset(f"{k}:{v}" for k, verbs in VERBS.items() for v in verbs)
"""Every action a policy can allow."""
SECTIONS: Mapping[str, str] = {
    "workflow": "workflows", "agent": "agents", "tool": "tools", "memory": "memory",
    "subject": "subjects", "principal": "act_as", "token": "tokens", "keys": "keys",
    "audit": "audit"}
"""The policy file's section (under a role) of each kind of resource."""
_UNNAMED = frozenset({"keys", "audit"})
"""Kinds with one resource each (the master key, the audit log): their sections list verbs."""
_CACHE_LIMIT = 4096


@dataclass(frozen=True, kw_only=True)
class AccessDecision:
    """Whether a principal may do an action on a resource, and why."""

    allowed: bool
    """The answer."""
    reason: str
    """Why, for people: the role and rule that allowed it, or what would have."""
    rule: str | None = None
    """The rule that allowed it, as `roles.ROLE.SECTION.PATTERN`; None when denied, or when
    no policy is in force."""


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One grant of a policy: a role may do `verbs` on resources matching `pattern`."""

    role: str
    kind: str
    """`workflow`, `agent`, `tool` or `memory`."""
    pattern: str
    """A glob on the resource's name, or `tag:GLOB` on a tool's tags."""
    verbs: frozenset[str]
    where: str = ""
    """`file:line` of the rule."""

    def matches(self, resource: str, tags: Collection[str]) -> bool:
        """Whether the rule covers the resource named `resource` with these tags."""
        if self.kind == "tool" and self.pattern.startswith("tag:"):
            wanted = self.pattern[4:]
            return any(fnmatchcase(tag, wanted) for tag in tags)
        return fnmatchcase(resource, self.pattern)

    @property
    def name(self) -> str:
        """The rule's place in the file: `roles.ROLE.SECTION.PATTERN` (`roles.ROLE.SECTION`
        for `keys` and `audit`)."""
        if self.kind in _UNNAMED:
            return f"roles.{self.role}.{SECTIONS[self.kind]}"
        return f"roles.{self.role}.{SECTIONS[self.kind]}.{self.pattern}"

    def __str__(self) -> str:
        return f"{self.where} {self.name}".strip()


def split_action(action: str) -> tuple[str, str]:
    """`workflow:run` as `("workflow", "run")`.

    Raises:
        UserError: not one of `ACTIONS`.
    """
    kind, _, verb = action.partition(":")
    if action not in ACTIONS:
        raise UserError(f"unknown action {action!r}; the actions are "
                        f"{', '.join(sorted(ACTIONS))}")
    return kind, verb


class AccessPolicy:
    """Which roles may do what; built from a policy file with `load_policy` or
    `parse_policy` (`podium.yaml.policy`), or from rules in Python.

    Args:
        rules: every grant.
        principals: the principals the policy knows, with their roles.
        everyone: roles every principal holds.
        source: where the policy came from, for messages.
        enforced: False for `AccessPolicy.unrestricted()`, which allows everything.
    """

    def __init__(self, rules: Collection[Rule] = (), *,
                 principals: Mapping[str, Principal] | None = None,
                 everyone: Collection[str] = (), source: str = "<policy>",
                 enforced: bool = True, functions: Collection[str] | None = None) -> None:
        self.rules = tuple(rules)
        self.principals = dict(principals or {})
        self.everyone = frozenset(everyone)
        self.source = source
        self.enforced = enforced
        self.functions = tuple(functions) if functions is not None else None
        """Globs on the modules Python code named in a workflow file may come from
        (`functions: {allow: [...]}`); None: any module."""
        self.roles = frozenset(r.role for r in self.rules)
        self._by_role: dict[tuple[str, str], list[Rule]] = {}
        for rule in self.rules:
            self._by_role.setdefault((rule.role, rule.kind), []).append(rule)
        self._cache: dict[tuple[Any, ...], AccessDecision] = {}

    @classmethod
    def unrestricted(cls) -> AccessPolicy:
        """No policy in force: every principal may do everything."""
        return cls(enforced=False, source="no policy")

    def principal(self, id: str, *, kind: PrincipalKind | None = None) -> Principal:
        """The principal named `id` with the roles this policy gives it (none if unlisted)."""
        known = self.principals.get(id)
        if known is None:
            return Principal(id=id, kind=kind or "user")
        return known if kind is None or kind == known.kind else Principal(
            id=id, kind=kind, roles=known.roles)

    def allows(self, principal: Principal | None, action: str, resource: str, *,
               tags: Collection[str] = ()) -> AccessDecision:
        """Whether `principal` may do `action` (e.g. `tool:call`) on `resource` (a workflow,
        agent, tool or memory namespace name); `tags` are a tool's permission tags.

        Raises:
            UserError: `action` is not one of `ACTIONS`.
        """
        kind, verb = split_action(action)
        if not self.enforced:
            return AccessDecision(allowed=True, reason="no access policy in force: everything is "
                                                 "allowed")
        who = principal or ANONYMOUS
        roles = who.roles | self.everyone
        key = (who.id, who.kind, roles, kind, verb, resource, frozenset(tags))
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            found = self._cache[key] = self._decide(who, roles, kind, verb, resource, tags)
        return found

    def check(self, principal: Principal | None, action: str, resource: str, *,
              tags: Collection[str] = ()) -> AccessDecision:
        """Like `allows`, but a denial raises.

        Raises:
            PermissionDenied: the policy does not allow it; the message says which roles would.
        """
        decision = self.allows(principal, action, resource, tags=tags)
        if not decision.allowed:
            raise PermissionDenied(decision.reason, principal=(principal or ANONYMOUS).id,
                                   action=action, resource=resource)
        return decision

    def function_allowed(self, module: str) -> bool:
        """Whether a workflow file may name Python code from `module` (a dotted name):
        a glob of `functions.allow` matches it or one of its parent packages."""
        if self.functions is None:
            return True
        parts = module.split(".")
        names = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
        return any(fnmatchcase(name, pattern) for name in names for pattern in self.functions)

    def _grant(self, role: str, kind: str, verb: str, resource: str,
               tags: Collection[str]) -> Rule | None:
        for rule in self._by_role.get((role, kind), ()):
            if (verb in rule.verbs or "*" in rule.verbs) and rule.matches(resource, tags):
                return rule
        return None

    def _decide(self, who: Principal, roles: frozenset[str], kind: str, verb: str,
                resource: str, tags: Collection[str]) -> AccessDecision:
        for role in sorted(roles):
            rule = self._grant(role, kind, verb, resource, tags)
            if rule is not None:
                return AccessDecision(allowed=True, rule=rule.name, reason=(
                    f"role {role!r} may {verb} {kind} {resource!r} ({rule})"))
        would = sorted(r for r in self.roles - roles
                       if self._grant(r, kind, verb, resource, tags) is not None)
        held = ", ".join(sorted(roles)) or "none"
        doing = verb.replace("_", " ")
        reason = f"{who.kind} {who.id!r} (roles: {held}) may not {doing} {kind} {resource!r}"
        if tags:
            reason += f" (tags: {', '.join(sorted(tags))})"
        if would:
            reason += f"; in {self.source} roles {', '.join(map(repr, would))} may"
        else:
            reason += f"; no role in {self.source} may"
        unknown = sorted(roles - self.roles)
        if unknown:
            reason += f" (roles {', '.join(map(repr, unknown))} grant nothing there)"
        if not who.roles and who.id not in self.principals:
            reason += f"; {who.id!r} is not listed under principals:"
        reason += f"; needs permission {kind}:{verb}"
        return AccessDecision(allowed=False, reason=reason)

    def __repr__(self) -> str:
        if not self.enforced:
            return "AccessPolicy.unrestricted()"
        return f"AccessPolicy({self.source!r}, roles={sorted(self.roles)})"


__all__ = [
    "ACTIONS",
    "SECTIONS",
    "VERBS",
    "AccessDecision",
    "AccessPolicy",
    "PermissionDenied",
    "Principal",
    "Rule",
    "split_action",
]
