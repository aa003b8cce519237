"""The agent protocol: what a task hands an agent, and what the agent may use."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = Any
"""A JSON value: dict, list, str, int, float, bool or None."""

RecordFn = Callable[[str, dict[str, JSON]], Awaitable[None]]


async def _discard(kind: str, data: dict[str, JSON]) -> None:
    return None


@dataclass(frozen=True, kw_only=True)
class TaskContext:
    """What an agent knows about the run it works for.

    A function agent receives it as its `ctx` parameter.
    """

    run_id: str
    """The run this attempt belongs to."""
    task_id: str
    """The task's id in the workflow (for a fan-out item, the task's id)."""
    attempt: int
    """1 for the first attempt, counting retries and fallbacks."""
    idempotency_key: str
    """Stable for this task (and fan-out item) within this run, whatever crashes or retries:
    an agent with side effects should make them idempotent under this key."""
    inputs: Mapping[str, JSON]
    """The run's inputs."""
    outputs: Mapping[str, JSON]
    """The outputs of every task this one depends on, directly or not, by task id."""
    workflow: str = ""
    """The workflow's name."""
    item: JSON = None
    """For a `for_each` task, the current item."""
    index: int | None = None
    """For a `for_each` task, the current item's position."""
    _record: RecordFn = field(default=_discard, repr=False)

    async def record(self, kind: str, data: dict[str, JSON]) -> None:
        """Journal an observation about this attempt (a model call, a tool call)."""
        await self._record(kind, data)


@dataclass(frozen=True, kw_only=True)
class TaskInput:
    """What the task asks of the agent, rendered for this attempt."""

    args: Mapping[str, JSON]
    """The task's `with:` values, templates rendered."""
    prompt: str | None = None
    """The task's `prompt:`, rendered; None when the task has none."""
    output_schema: dict[str, JSON] | None = None
    """The JSON schema the output must satisfy, when the task or agent declares one."""


class Agent(ABC):
    """A worker that can take a task: an LLM, a Python function, a human, a service."""

    name: str
    description: str = ""
    skills: tuple[str, ...] = ()

    @abstractmethod
    async def run(self, task: TaskInput, ctx: TaskContext) -> JSON:
        """Do the task and return its output (a JSON value or a pydantic model)."""
