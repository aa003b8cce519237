"""The one place long-term memory asks whether the run's principal may act on a namespace.

Actions: `memory:read` (declared retrieval, `recall`), `memory:write` (`remember`),
`memory:forget` (`forget`). The decision belongs to access control (`podium.security.rbac`),
reached through the task context's `authorize` once that exists; until then, every memory
action inside a run is allowed, and only the namespace binding limits what a task reaches.
"""

from __future__ import annotations

from typing import Any

ACTIONS = ("memory:read", "memory:write", "memory:forget")


async def authorize(ctx: Any, action: str, namespace: str) -> None:
    """Raise if the run's principal may not do `action` on `namespace`.

    Raises:
        PermissionDenied: the access policy in force refuses it (with RBAC in place).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown memory action {action!r}; expected one of {ACTIONS}")
    check = getattr(ctx, "authorize", None)
    if check is not None:
        await check(action, namespace)
