"""Principals: who a run, an approval, a tool call or a memory access is on behalf of.

The domain type only; what a principal may do is the policy's business
(`podium.security.rbac`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

PrincipalKind = Literal["user", "service"]


@dataclass(frozen=True, kw_only=True)
class Principal:
    """A user or a service, with the roles it holds."""

    id: str
    """Who it is: a user name, a service's name."""
    kind: PrincipalKind = "user"
    """`user` for a person, `service` for a program acting on its own account."""
    roles: frozenset[str] = frozenset()
    """The roles it holds; a policy says what each role may do."""

    def to_json(self) -> dict[str, Any]:
        """The principal as the journal records it with the run's start."""
        return {"id": self.id, "kind": self.kind, "roles": sorted(self.roles)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Principal:
        """The principal `to_json` recorded."""
        kind = data.get("kind", "user")
        return cls(id=str(data["id"]), kind="service" if kind == "service" else "user",
                   roles=frozenset(str(r) for r in data.get("roles", ())))

    def __str__(self) -> str:
        return self.id


ANONYMOUS = Principal(id="anonymous")
"""Who acts when no principal was given: it holds no role of its own."""
