"""Tool names checked against the MCP servers that should offer them: by `podium
validate` when it can start the servers, and when a run starts, before any task runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any, TypeVar

from podium.core.agent import Resources
from podium.core.check import as_agent
from podium.core.workflow import Workflow
from podium.errors import PodiumError, Problem, WorkflowError
from podium.tools.toolset import MCPTools

T = TypeVar("T")


def mcp_selections(workflow: Workflow) -> list[MCPTools]:
    """Every MCP tool selection of the workflow's agents."""
    found: list[MCPTools] = []
    for name, ref in workflow.agents.items():
        try:
            agent = as_agent(name, ref)
        except Exception:  # the workflow check reports a bad agent
            continue
        found += [s for s in getattr(agent, "toolsets", ()) if isinstance(s, MCPTools)]
    return found


async def tool_problems(workflow: Workflow, resources: Resources
                        ) -> tuple[list[Problem], list[str]]:
    """Problems with the tool names the workflow's agents select from MCP servers, and
    the servers that could not be asked (each with why)."""
    problems: list[Problem] = []
    unasked: dict[str, str] = {}
    offered: dict[str, list[str]] = {}
    for selection in mcp_selections(workflow):
        server = selection.server.name
        if server in unasked:
            continue
        if server not in offered:
            try:
                offered[server] = await selection.offered(resources)
            except PodiumError as e:
                unasked[server] = str(e)
                continue
        problems += selection.problems(offered[server])
    return problems, [f"MCP server {name!r}: {why}" for name, why in unasked.items()]


async def check_tools(workflow: Workflow) -> tuple[list[Problem], list[str]]:
    """`tool_problems` with servers started for the check and stopped after it."""
    resources = RunResources()
    try:
        return await tool_problems(workflow, resources)
    finally:
        await resources.close()


async def checked_tools(workflow: Workflow) -> RunResources:
    """A run's resources, with the MCP connections its agents' tools need opened and the
    tool names they select checked against what the servers offer.

    Raises:
        WorkflowError: a name selects no tool its server offers (nothing is journaled). A
            server that cannot be reached is the tasks' failure to handle, as before.
    """
    resources = RunResources()
    try:
        problems, _ = await tool_problems(workflow, resources)
    except BaseException:
        await resources.close()
        raise
    if problems:
        await resources.close()
        raise WorkflowError(problems)
    return resources


class RunResources:
    """Resources a run's agents share (MCP connections), opened on first use and closed,
    in reverse order, when the drive ends."""

    def __init__(self) -> None:
        self._stack = AsyncExitStack()
        self._opened: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def get(self, key: str, opener: Callable[[], AbstractAsyncContextManager[T]]) -> T:
        async with self._lock:
            if key not in self._opened:
                self._opened[key] = await self._stack.enter_async_context(opener())
            found: T = self._opened[key]
            return found

    async def close(self) -> None:
        self._opened.clear()
        await self._stack.aclose()
