"""The agent registry: the agents a task may be given, by name, skill or meaning.

A registry holds agents and where each was declared (a file and line, or Python), so
that a duplicate name is reported at both places. It answers the questions routing and
planning ask: which skills exist, which agents have a skill, what an agent says of
itself (`card`)::

    registry = Registry()
    registry.add(summariser, file="agents/text.yaml", line=3)
    registry.with_skill("summarise")      # [summariser]
    registry.cards()                      # what `podium agents --json` prints
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from podium.core.agent import JSON, Agent
from podium.errors import Problem, WorkflowError


@dataclass(frozen=True, kw_only=True)
class Declared:
    """Where an agent was declared."""

    file: str | None = None
    """The YAML file, or None for an agent added in Python."""
    line: int | None = None
    """1-based line of the agent's name in `file`."""

    def __str__(self) -> str:
        if self.file is None:
            return "Python"
        return f"{self.file}:{self.line}" if self.line else self.file


def output_schema(agent: Agent) -> dict[str, JSON] | None:
    """The JSON schema of what the agent returns, when it declares one (`output`: a pydantic
    model class or a JSON schema)."""
    spec = getattr(agent, "output", None)
    if isinstance(spec, dict):
        return spec
    schema = getattr(spec, "model_json_schema", None)
    if isinstance(spec, type) and callable(schema):
        found: dict[str, JSON] = schema()
        return found
    return None


def card(name: str, agent: Agent, where: Declared | None = None) -> dict[str, JSON]:
    """What an agent says of itself, as JSON: name, kind, description, skills, schemas, hints
    and where it was declared."""
    return {
        "name": name,
        "kind": type(agent).__name__,
        "description": agent.description,
        "skills": list(agent.skills),
        "input_schema": agent.input_schema,
        "output_schema": output_schema(agent),
        "cost": agent.cost,
        "latency": agent.latency,
        "provides": agent.provides,
        "declared": str(where or Declared()),
    }


class Registry(Mapping[str, Agent]):
    """Agents by name, each with where it was declared. Read it as a mapping."""

    def __init__(self) -> None:
        self._agents: dict[str, Agent] = {}
        self._where: dict[str, Declared] = {}

    def add(self, agent: Agent, *, name: str | None = None, file: str | None = None,
            line: int | None = None) -> None:
        """Register `agent` under `name` (default: its own name).

        Raises:
            WorkflowError: an agent of that name is registered already; the problem names
                this declaration and the first one.
        """
        name = name or agent.name
        if name in self._agents:
            first = self._where[name]
            raise WorkflowError([Problem(
                message=f"duplicate agent {name!r}: already declared at {first}; "
                        "give one of them another name",
                file=file, line=line, field=f"agents.{name}")])
        self._agents[name] = agent
        self._where[name] = Declared(file=file, line=line)

    def where(self, name: str) -> Declared:
        """Where the agent `name` was declared."""
        return self._where[name]

    def skills(self) -> dict[str, list[str]]:
        """Every skill, sorted, with the names of the agents that have it."""
        found: dict[str, list[str]] = {}
        for name, agent in self._agents.items():
            for skill in agent.skills:
                found.setdefault(skill, []).append(name)
        return dict(sorted(found.items()))

    def with_skill(self, skill: str) -> list[str]:
        """The names of the agents that have `skill`, in registration order."""
        return [name for name, agent in self._agents.items() if skill in agent.skills]

    def card(self, name: str) -> dict[str, JSON]:
        """What the agent `name` says of itself (see `card`)."""
        return card(name, self._agents[name], self._where[name])

    def cards(self) -> list[dict[str, JSON]]:
        """Every agent's card, sorted by name."""
        return [self.card(name) for name in sorted(self._agents)]

    def __getitem__(self, name: str) -> Agent:
        return self._agents[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._agents)

    def __len__(self) -> int:
        return len(self._agents)

    def __repr__(self) -> str:
        return f"Registry({list(self._agents)!r})"


def skill_problem(skill: str, agents: Mapping[str, Any]) -> str | None:
    """Why no agent among `agents` (Agents, or callables that have no skills) can take a task
    asking for `skill`, or None when one can."""
    known = sorted({s for ref in agents.values() for s in getattr(ref, "skills", ())})
    if skill in known:
        return None
    listed = ", ".join(repr(s) for s in known) or "none"
    return f"unknown skill {skill!r}: no agent has it; known skills: {listed}"


@dataclass(frozen=True, kw_only=True)
class RouterPolicy:
    """How the router chooses an agent for a task that names a skill or a description."""

    model: Any = None
    """A model that chooses among the best-scored candidates: a name (`local`,
    `openai:NAME`, `anthropic:NAME`) or a `Model`. None: the best score wins."""
    top: int = 3
    """How many of the best-scored candidates the model chooses among."""
    epsilon: float = 0.02
    """Scores closer than this tie; among tied agents the cheaper, then the faster, wins."""
    min_score: float | None = None
    """Agents scored below this do not fit (None: any score fits)."""
