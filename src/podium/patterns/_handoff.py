"""The value an agent returns to hand a conversation to another (see `Supervisor`)."""

from __future__ import annotations

from dataclasses import dataclass

from podium.core.agent import JSON


@dataclass(frozen=True, kw_only=True)
class Handoff:
    """What an agent returns to hand the conversation to another.

    The next agent is given only `context` (and who handed off): nothing else of the
    conversation so far reaches it unless this agent puts it there.
    """

    to: str
    """The name of the agent that takes over."""
    context: JSON = None
    """What the next agent is told."""

    def to_json(self) -> dict[str, JSON]:
        """The handoff as the journal holds it (the shape a model replies with, too)."""
        return {"handoff_to": self.to, "context": self.context}
