"""Tool sources: tools an agent learns of when it runs, such as an MCP server's."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Sequence
from typing import Protocol

from podium.core.agent import TaskContext
from podium.tools.tool import Tool


class ToolSource(Protocol):
    """Gives an agent tools at run time."""

    async def tools(self, ctx: TaskContext) -> Sequence[Tool]:
        """The tools, opened through `ctx` (so the run owns any connection)."""
        ...


class MCPTools:
    """The tools of one MCP server, selected by name patterns (`*` for all).

    The connection is a resource of the run: opened by the first task that needs it and
    closed when the run's drive ends. Tool names become `server__tool`, since providers
    accept only letters, digits, `_` and `-` in a tool's name.
    """

    def __init__(self, server: object, select: Sequence[str] = ("*",)) -> None:
        from podium.tools.mcp import MCPServer

        if not isinstance(server, MCPServer):
            raise TypeError(f"expected an MCPServer, got {server!r}")
        self.server = dataclasses.replace(server, prefix=False)
        self.select = tuple(select)

    async def tools(self, ctx: TaskContext) -> Sequence[Tool]:
        from podium.tools.mcp import MCPConnection

        connection = await ctx.resource(f"mcp:{self.server.name}",
                                        lambda: MCPConnection(self.server))
        return [dataclasses.replace(tool, name=f"{self.server.name}__{tool.name}")
                for tool in await connection.tools()
                if any(fnmatch.fnmatchcase(tool.name, p) for p in self.select)]

    def __repr__(self) -> str:
        return f"MCPTools({self.server.name!r}, select={list(self.select)!r})"
