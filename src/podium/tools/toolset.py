"""Tool sources: tools an agent learns of when it runs, such as an MCP server's."""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from podium.core.agent import Resources, TaskContext
from podium.errors import Problem, UserError
from podium.tools.tool import Tool, ToolArgumentsInvalid

if TYPE_CHECKING:
    from podium.tools.mcp import MCPConnection


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

    A pattern that selects none of the server's tools is a mistake (a misspelt name), not
    an empty selection: `problems` names each one with the nearest real names, and
    `tools` refuses to give tools while there is one.
    """

    def __init__(self, server: object, select: Sequence[str] = ("*",),
                 origins: Mapping[str, Problem] | None = None) -> None:
        """Args:
            server: the `MCPServer`.
            select: shell-style patterns of the server's tool names.
            origins: where each pattern was written (file, line, field), for problems.
        """
        from podium.tools.mcp import MCPServer

        if not isinstance(server, MCPServer):
            raise TypeError(f"expected an MCPServer, got {server!r}")
        self.server = dataclasses.replace(server, prefix=False)
        self.select = tuple(select)
        self.origins = dict(origins or {})

    def _open(self) -> MCPConnection:
        from podium.tools.mcp import MCPConnection

        return MCPConnection(self.server)

    @property
    def resource_key(self) -> str:
        """The key of the run's connection to the server."""
        return f"mcp:{self.server.name}"

    async def offered(self, resources: Resources) -> list[str]:
        """The names of the server's tools that its `include`/`exclude` let through,
        through the run's connection (opened if it is not)."""
        connection = await resources.get(self.resource_key, self._open)
        return [t.name for t in await connection.list_tools() if self.server.selects(t.name)]

    def problems(self, offered: Sequence[str]) -> list[Problem]:
        """A problem for each pattern that selects none of `offered`."""
        found = []
        for pattern in self.select:
            if any(fnmatch.fnmatchcase(name, pattern) for name in offered):
                continue
            ref = f"{self.server.name}.{pattern}"
            close = difflib.get_close_matches(pattern, offered, n=3, cutoff=0.5)
            hint = (f"; did you mean {', '.join(repr(f'{self.server.name}.{c}') for c in close)}?"
                    if close else "")
            shown = ", ".join(sorted(offered)[:20]) + (", …" if len(offered) > 20 else "")
            message = (f"{ref!r} names no tool of MCP server {self.server.name!r}{hint} "
                       f"It offers: {shown or 'no tools'}")
            origin = self.origins.get(pattern)
            found.append(dataclasses.replace(origin, message=message) if origin
                         else Problem(message=message))
        return found

    async def tools(self, ctx: TaskContext) -> Sequence[Tool]:
        connection = await ctx.resource(self.resource_key, self._open)
        tools = await connection.tools()
        problems = self.problems([t.name for t in tools])
        if problems:
            raise UserError("; ".join(str(p) for p in problems))
        return [dataclasses.replace(tool, name=f"{self.server.name}__{tool.name}")
                for tool in tools
                if any(fnmatch.fnmatchcase(tool.name, p) for p in self.select)]

    def __repr__(self) -> str:
        return f"MCPTools({self.server.name!r}, select={list(self.select)!r})"


class NoteTool:
    """Gives a model the `note` tool, which adds to the run's shared notes (the source
    behind `podium.agents.context.ContextOptions.note_tool`)."""

    async def tools(self, ctx: TaskContext) -> Sequence[Tool]:
        """The `note` tool, bound to this attempt's context."""

        async def call(arguments: Mapping[str, Any]) -> str:
            await ctx.note(arguments["text"])
            return "noted"

        def validate(arguments: Mapping[str, Any]) -> dict[str, Any]:
            text = arguments.get("text")
            if not isinstance(text, str) or not text.strip() or set(arguments) != {"text"}:
                raise ToolArgumentsInvalid("tool 'note' takes one argument, 'text': the "
                                           "note, a non-empty string")
            return {"text": text}

        return [Tool(name="note", description=(
            "Add a note to this run's shared notes, which later tasks can read: a fact, "
            "a decision or a warning worth passing on."),
            parameters={"type": "object", "properties": {"text": {
                "type": "string", "description": "the note"}}, "required": ["text"],
                "additionalProperties": False},
            call=call, tags=frozenset({"write"}), validate=validate)]

    def __repr__(self) -> str:
        return "NoteTool()"
