"""The one place long-term memory asks whether the run's principal may act on a namespace.

Actions: `memory:read` (declared retrieval, `recall`), `memory:write` (`remember`),
`memory:forget` (`forget`). The decision belongs to access control (`podium.security.rbac`),
reached through the task context's `authorize`: the run's principal is checked against the
access policy's `memory:` grants (namespace globs), and the decision is audited. Without a
policy in force everything is allowed, and only the namespace binding limits a task.
"""

from __future__ import annotations

from podium.core.agent import TaskContext

ACTIONS = ("memory:read", "memory:write", "memory:forget")


async def authorize(ctx: TaskContext | None, action: str, namespace: str) -> None:
    """Raise if the run's principal may not do `action` on `namespace`.

    Raises:
        PermissionDenied: the access policy in force refuses it.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown memory action {action!r}; expected one of {ACTIONS}")
    if ctx is not None:
        await ctx.authorize(action, namespace)
