"""The engine's side of access control: checks a run's actions against the policy and
writes what happened to the audit log.

Audit records written (actor: the principal; no inputs, outputs or arguments, ever):

| action | subject | outcome | when |
| --- | --- | --- | --- |
| `run.start` | run id | `ok` | a run was started (detail: the workflow) |
| `run.resume` | run id | `ok` | a run was resumed by a principal |
| `run.end` | run id | `completed`, `failed`, `cancelled` | a drive ended the run |
| `tool.call` | `run/task/tool` | `allowed`, `denied` | every live tool call (detail: the rule) |
| `tool.call` | `run/task/tool` | `held`, `denied` | tool mediation's decisions (`mediation: …`) |
| `task.approve`, `task.reject` | `run/task` | `ok` | a human answered a waiting task |
| `policy.deny` | the resource | `denied` | any other denial (detail: the action) |
| `run.view`, `run.list`, `run.cancel` | run id, `runs` | `ok` | see `engine/_control.py` |
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Collection

from podium.core.principal import ANONYMOUS, Principal
from podium.errors import PermissionDenied
from podium.security.audit import AuditLog
from podium.security.rbac import AccessDecision, AccessPolicy

_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def _pseudonym(value: str) -> str:
    # Letters only, so that the audit log's check for personal numbers cannot trip on it.
    return "pseudonym-" + hashlib.sha256(value.encode()).hexdigest()[:16].translate(_LETTERS)


class Guard:
    """An engine's access policy and audit log.

    Args:
        policy: what principals may do; `AccessPolicy.unrestricted()` to allow everything.
        audit: where decisions and run events are recorded; None for nowhere.
    """

    def __init__(self, policy: AccessPolicy, audit: AuditLog | None) -> None:
        self.policy, self.audit = policy, audit

    def record(self, principal: Principal | None, action: str, subject: str,
               outcome: str = "ok", detail: str = "", *, data_classes: Collection[str] = ()
               ) -> None:
        """Append an audit record, if there is a log. A principal or subject that looks
        like a personal value (an e-mail address) is recorded as a pseudonym."""
        if self.audit is None:
            return
        actor = (principal or ANONYMOUS).id
        classes = set(data_classes)
        try:
            self.audit.append(actor=actor, action=action, subject=subject, outcome=outcome,
                              detail=detail, data_classes=classes)
        except ValueError:
            self.audit.append(actor=_pseudonym(actor), action=action,
                              subject=_pseudonym(subject), outcome=outcome,
                              detail=_pseudonym(detail) if detail else "",
                              data_classes=classes | {"PSEUDONYM"})

    def check(self, principal: Principal | None, action: str, resource: str, *,
              subject: str | None = None, tags: Collection[str] = ()) -> AccessDecision:
        """The decision on `action`; a denial is audited as `policy.deny` and raised.

        Raises:
            PermissionDenied: the policy does not allow it.
        """
        decision = self.policy.allows(principal, action, resource, tags=tags)
        if not decision.allowed:
            self.record(principal, "policy.deny", subject or resource, "denied", action)
            raise PermissionDenied(decision.reason, principal=(principal or ANONYMOUS).id,
                                   action=action, resource=resource)
        return decision

    def tool_call(self, principal: Principal | None, subject: str, tool: str,
                  tags: Collection[str]) -> None:
        """Decide on one tool call and audit the decision, allowed or not.

        Raises:
            PermissionDenied: the policy does not allow it.
        """
        decision = self.policy.allows(principal, "tool:call", tool, tags=tags)
        self.record(principal, "tool.call", subject,
                    "allowed" if decision.allowed else "denied",
                    decision.rule or ("" if decision.allowed else "no rule allows it"))
        if not decision.allowed:
            raise PermissionDenied(decision.reason, principal=(principal or ANONYMOUS).id,
                                   action="tool:call", resource=tool)

    def authorizer(self, principal: Principal | None, run_id: str
                   ) -> Callable[[str, str, str, frozenset[str]], Awaitable[None]]:
        """The `TaskContext` hook for the tasks of a run (`Capabilities.authorize`): checks
        on behalf of the run's principal, never the agent's."""
        async def authorize(key: str, action: str, resource: str, tags: frozenset[str]
                            ) -> None:
            subject = f"{run_id}/{key}/{resource}"
            if action == "tool:call":
                self.tool_call(principal, subject, resource, tags)
            else:
                self.check(principal, action, resource, subject=subject, tags=tags)

        return authorize
