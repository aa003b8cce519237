"""`podium mcp serve` from the command line: another agent calls a whole workflow."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

mcp = pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PODIUM = str(Path(sys.executable).with_name("podium"))


async def test_podium_mcp_serve_runs_the_workflow_for_a_client(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "name: greet\ninputs: {name: {type: string}}\n"
        "agents: {hello: {function: 'greeting:hello'}}\n"
        "tasks: {hello: {agent: hello, with: {name: '{{ inputs.name }}'}}}\n")
    (tmp_path / "greeting.py").write_text("def hello(name: str) -> str:\n"
                                          "    return f'Hello, {name}!'\n")
    params = StdioServerParameters(command=PODIUM, args=[
        "mcp", "serve", str(flow), "--db", str(tmp_path / "j.db")], cwd=str(tmp_path))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = (await session.list_tools()).tools
        assert [t.name for t in tools] == ["greet"]
        result = await session.call_tool("greet", {"name": "Ada"})
    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["status"] == "completed"
    assert result.structured_content["outputs"] == {"hello": "Hello, Ada!"}
