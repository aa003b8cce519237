"""An MCP server for tests, written with the official SDK: run it as
`python calc_server.py` (stdio) or `python calc_server.py --http PORT` (streamable HTTP on
127.0.0.1:PORT/mcp)."""

from __future__ import annotations

import os
import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("calc")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Return the text as it is."""
    return text


@server.tool()
def divide(a: float, b: float) -> float:
    """Divide a by b."""
    if b == 0:
        raise ToolError("cannot divide by zero")
    return a / b


@server.tool()
def refuse(reason: str) -> str:
    """Fail on purpose, quoting the reason."""
    raise ToolError(f"refused: {reason}")


@server.tool()
def crash() -> str:
    """Raise an unexpected error, whose details stay on the server."""
    raise RuntimeError("an internal detail")


@server.tool()
async def wait(seconds: float) -> str:
    """Wait, then say so."""
    await anyio.sleep(seconds)
    return "waited"


@server.tool()
def environment(name: str) -> str:
    """The value of an environment variable of the server's process."""
    return os.environ.get(name, "")


@server.tool()
def header(name: str, ctx: Context) -> str:
    """The value of an HTTP header of the request (streamable HTTP only)."""
    return (ctx.headers or {}).get(name.lower(), "")


@server.tool()
def exit_now() -> str:
    """End the server's process at once, as a crash would."""
    print("calc server: exiting on request", file=sys.stderr, flush=True)
    os._exit(7)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
