"""The agent protocol: what a task hands an agent, and what the agent may use."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

JSON = Any
"""A JSON value: dict, list, str, int, float, bool or None."""

RecordFn = Callable[[str, dict[str, JSON]], Awaitable[None]]


async def _discard(kind: str, data: dict[str, JSON]) -> None:
    return None


@dataclass
class _StepCursor:
    next: int = 0
    diverged: bool = False


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
    _replay: Sequence[Mapping[str, JSON]] = field(default=(), repr=False)
    _steps: _StepCursor = field(default_factory=lambda: _StepCursor(), repr=False)

    async def record(self, kind: str, data: dict[str, JSON]) -> None:
        """Journal an observation about this attempt: `model_call` (tokens, latency) or
        `tool_call` (name, arguments, result or error, duration)."""
        await self._record(kind, data)

    async def step(self, kind: str, name: str, run: Callable[[], Awaitable[JSON]]) -> JSON:
        """Run one durable step of this task (a model reply, a tool call) exactly once.

        Steps are numbered in the order an agent takes them. The first time, `run()` is
        called and its JSON result journaled; when the task runs again after a crash
        interrupted it, the journaled results are returned in the same order instead, so
        a tool call that completed is not repeated. Once the agent asks for a different
        step than the journal holds (its path changed), every later step runs live.
        """
        cursor = self._steps
        index = cursor.next
        cursor.next += 1
        if not cursor.diverged and index < len(self._replay):
            recorded = self._replay[index]
            if recorded.get("kind") == kind and recorded.get("name") == name:
                return recorded.get("result")
            cursor.diverged = True
        result = await run()
        await self._record("step_completed", {"index": index, "kind": kind, "name": name,
                                              "result": result})
        return result


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
