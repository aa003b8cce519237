"""MCP: servers' tools as Podium Tools, and a workflow served as an MCP tool.

Every server is a real subprocess: the SDK-written calc server (mcp_servers/calc_server.py)
over stdio and over streamable HTTP on 127.0.0.1, the published `mcp-server-time` package
run as its users run it, and `podium.server.mcp` serving mcp_servers/greet.yaml.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="the MCP tests need: pip install 'podium[mcp]'")

from mcp import Client, StdioServerParameters

from podium import Engine, SQLiteStore, UserError
from podium.security.tokens import TokenStore
from podium.server.mcp import build_server
from podium.tools import Tool, ToolArgumentsInvalid, ToolFailed
from podium.tools.mcp import MCPConnection, MCPServer, MCPUnavailable

HERE = Path(__file__).parent / "mcp_servers"
CALC = str(HERE / "calc_server.py")
GREET = str(HERE / "greet.yaml")
TOKEN_VAR = "PODIUM_TEST_MCP_TOKEN"
TOKEN = "tok-3f9a-very-secret"
_STARTUP_DEADLINE_S = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until something accepts connections on the port; fails if the process dies first."""
    deadline = time.monotonic() + _STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        # Waiting on the process is the pause between polls, and notices a dead server.
        try:
            code = process.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"server exited with {code} during startup:\n{log.read_text()}")
    pytest.fail(f"nothing listened on 127.0.0.1:{port} within {_STARTUP_DEADLINE_S:g}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _http_server(command: list[str], port: int, log: Path) -> Iterator[str]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_listening(process, port, log)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            _stop(process)


@pytest.fixture(scope="module")
def calc_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The calc server over streamable HTTP on 127.0.0.1; yields its endpoint."""
    port = _free_port()
    log = tmp_path_factory.mktemp("calc_http") / "server.log"
    yield from _http_server([sys.executable, CALC, "--http", str(port)], port, log)


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(TOKEN_VAR, TOKEN)
    return TOKEN


@pytest.fixture
def calc(token: str) -> MCPServer:
    """The calc server over stdio, with a secret passed in its environment."""
    return MCPServer(name="calc", command=sys.executable, args=[CALC], tags={"math"},
                     env={"CALC_TOKEN": f"env:{TOKEN_VAR}"}, timeout=20)


def _by_name(tools: list[Tool]) -> dict[str, Tool]:
    return {t.name: t for t in tools}


# -- the calc server over stdio ----------------------------------------------------------


async def test_stdio_tools_are_podium_tools(calc: MCPServer) -> None:
    async with MCPConnection(calc) as conn:
        assert conn.server_info["name"] == "calc"
        tools = _by_name(await conn.tools())
        assert {"calc.add", "calc.echo", "calc.divide", "calc.crash", "calc.wait",
                "calc.exit_now"} <= set(tools)
        add = tools["calc.add"]
        assert add.description == "Add two integers."
        assert add.parameters["type"] == "object"
        assert add.parameters["required"] == ["a", "b"]
        assert add.parameters["properties"]["a"]["type"] == "integer"
        assert add.tags == frozenset({"math"}) and add.timeout == 20
        assert add.spec()["name"] == "calc.add"
        # The SDK's server wraps a plain return value as structured content {"result": …}.
        assert await add({"a": 2, "b": 40}) == {"result": 42}
        assert await tools["calc.echo"]({"text": "héllo"}) == {"result": "héllo"}
        # Calls from many tasks share the one session.
        sums = await asyncio.gather(*(add({"a": i, "b": i}) for i in range(20)))
        assert [s["result"] for s in sums] == [2 * i for i in range(20)]


async def test_bad_arguments_are_refused_before_any_call(calc: MCPServer) -> None:
    async with MCPConnection(calc) as conn:
        add = _by_name(await conn.tools())["calc.add"]
        with pytest.raises(ToolArgumentsInvalid) as wrong:
            await add({"a": "two"})
    message = str(wrong.value)
    assert "'calc.add'" in message
    assert "a: 'two' is not of type 'integer'" in message
    assert "'b' is a required property" in message
    # The connection is closed now: a call would fail, so reaching the check proves the
    # arguments are refused before anything is sent.
    with pytest.raises(ToolArgumentsInvalid):
        await add({"a": 1.5, "b": 2})
    with pytest.raises(ToolFailed, match=r"the connection is not open"):
        await add({"a": 1, "b": 2})


async def test_tool_errors_become_tool_failed(calc: MCPServer) -> None:
    async with MCPConnection(calc) as conn:
        tools = _by_name(await conn.tools())
        with pytest.raises(ToolFailed, match=r"'calc.divide' failed: .*cannot divide by zero"):
            await tools["calc.divide"]({"a": 1, "b": 0})
        # An unexpected exception's details stay on the server.
        with pytest.raises(ToolFailed, match=r"'calc.crash' failed") as crash:
            await tools["calc.crash"]({})
        assert "internal detail" not in str(crash.value)
        with pytest.raises(ToolFailed, match=r"Unknown tool"):
            await conn.call("no_such_tool", {})
        # The session survives failed calls.
        assert await tools["calc.add"]({"a": 1, "b": 1}) == {"result": 2}


async def test_a_slow_call_times_out_and_the_session_goes_on(calc: MCPServer) -> None:
    async with MCPConnection(calc) as conn:
        tools = _by_name(await conn.tools())
        impatient = dataclasses.replace(tools["calc.wait"], timeout=0.2)
        with pytest.raises(ToolFailed, match=r"took longer than 0.2s"):
            await impatient({"seconds": 30})
        assert await tools["calc.wait"]({"seconds": 0}) == {"result": "waited"}


async def test_a_server_that_dies_fails_calls_without_hanging(calc: MCPServer) -> None:
    async with MCPConnection(calc) as conn:
        tools = _by_name(await conn.tools())
        with pytest.raises(ToolFailed, match=r"connection to MCP server 'calc' broke"):
            await tools["calc.exit_now"]({})
        with pytest.raises(ToolFailed, match=r"'calc'"):
            await tools["calc.echo"]({"text": "anyone there?"})


async def test_env_secret_reaches_the_server_and_is_never_shown(calc: MCPServer) -> None:
    assert TOKEN not in repr(calc)
    async with MCPConnection(calc) as conn:
        tools = _by_name(await conn.tools())
        assert await tools["calc.environment"]({"name": "CALC_TOKEN"}) == {"result": TOKEN}
        # A server quoting the secret back in an error does not get it into the message.
        with pytest.raises(ToolFailed) as refused:
            await tools["calc.refuse"]({"reason": f"token {TOKEN} is wrong"})
    assert TOKEN not in str(refused.value) and "token *** is wrong" in str(refused.value)


async def test_include_exclude_and_plain_names(calc: MCPServer) -> None:
    server = dataclasses.replace(calc, include=["add", "e*"], exclude=["exit_now"],
                                 prefix=False)
    async with MCPConnection(server) as conn:
        assert sorted(t.name for t in await conn.tools()) == ["add", "echo", "environment"]
    typo = dataclasses.replace(calc, include=["ad"])
    async with MCPConnection(typo) as conn:
        with pytest.raises(UserError, match=r"'include' names 'ad', which it does not offer; "
                                            r"it offers .*add"):
            await conn.tools()


async def test_a_connection_may_close_in_another_task(calc: MCPServer) -> None:
    """The session lives in the connection's own task, so no cancel scope straddles tasks."""
    conn = MCPConnection(calc)
    await asyncio.create_task(conn.__aenter__())
    tools = _by_name(await asyncio.create_task(conn.tools()))
    assert await asyncio.create_task(tools["calc.add"]({"a": 1, "b": 2})) == {"result": 3}
    await conn.__aexit__(None, None, None)
    with pytest.raises(ToolFailed, match=r"not open"):
        await tools["calc.add"]({"a": 1, "b": 2})


# -- the calc server over streamable HTTP -------------------------------------------------


async def test_streamable_http(calc_url: str, token: str) -> None:
    server = MCPServer(name="calc", url=calc_url,
                       headers={"X-Calc-Token": f"env:{TOKEN_VAR}"})
    assert token not in repr(server)
    async with MCPConnection(server) as conn:
        tools = _by_name(await conn.tools())
        assert await tools["calc.add"]({"a": 20, "b": 22}) == {"result": 42}
        assert await tools["calc.header"]({"name": "X-Calc-Token"}) == {"result": token}
        with pytest.raises(ToolArgumentsInvalid, match=r"'calc.echo'"):
            await tools["calc.echo"]({"text": 3})
        with pytest.raises(ToolFailed, match=r"cannot divide by zero"):
            await tools["calc.divide"]({"a": 1, "b": 0})
        with pytest.raises(ToolFailed) as refused:
            await tools["calc.refuse"]({"reason": token})
        assert token not in str(refused.value)


async def test_http_wrong_path_says_what_to_check(calc_url: str) -> None:
    wrong = calc_url.removesuffix("/mcp") + "/not-mcp"
    with pytest.raises(MCPUnavailable, match=r"did not accept the MCP handshake.*check the "
                                             r"path in 'url' \(servers often serve /mcp\)"):
        async with MCPConnection(MCPServer(name="calc", url=wrong)):
            pass


# -- a published server, run as its users run it ------------------------------------------


async def test_published_time_server() -> None:
    pytest.importorskip("mcp_server_time", reason="needs: pip install mcp-server-time")
    server = MCPServer(name="time", command=sys.executable,
                       args=["-m", "mcp_server_time", "--local-timezone", "UTC"])
    async with MCPConnection(server) as conn:
        tools = _by_name(await conn.tools())
        assert set(tools) == {"time.get_current_time", "time.convert_time"}
        assert tools["time.convert_time"].parameters["required"] == [
            "source_timezone", "time", "target_timezone"]
        now = await tools["time.get_current_time"]({"timezone": "UTC"})
        assert now["timezone"] == "UTC" and now["is_dst"] is False
        # Tokyo keeps no daylight saving time, so the answer does not depend on the date.
        converted = await tools["time.convert_time"](
            {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"})
        assert converted["target"]["datetime"][11:16] == "21:00"
        assert converted["time_difference"] == "+9.0h"
        with pytest.raises(ToolFailed, match=r"Invalid timezone"):
            await tools["time.get_current_time"]({"timezone": "Mars/Olympus_Mons"})
        with pytest.raises(ToolArgumentsInvalid, match=r"'time' is a required property"):
            await tools["time.convert_time"]({"source_timezone": "UTC",
                                              "target_timezone": "UTC"})


# -- a workflow served as an MCP tool ------------------------------------------------------


def _serve_command(db: Path, transport: str = "stdio", port: int = 0,
                   tokens: Path | None = None) -> list[str]:
    code = ("from podium.server.mcp import serve; "
            "from podium.security.tokens import TokenStore; "
            f"serve({GREET!r}, {str(db)!r}, transport={transport!r}, port={port}, "
            f"tokens=TokenStore({str(tokens)!r}) if {tokens is not None} else None)")
    return [sys.executable, "-c", code]


async def _journal(db: Path, run_id: str) -> dict[str, object]:
    store = SQLiteStore(db)
    try:
        return (await Engine(store).state(run_id)).record()
    finally:
        await store.close()


async def test_serve_a_workflow_over_stdio(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    command = _serve_command(db)
    # The environment as it is (the SDK's default keeps only a few variables): the server
    # imports the Podium under test.
    params = StdioServerParameters(command=command[0], args=command[1:], cwd=str(tmp_path),
                                   env=dict(os.environ))
    async with Client(params) as client:
        (tool,) = (await client.list_tools()).tools
        assert tool.name == "greet"
        assert "Greets someone" in (tool.description or "")
        schema = tool.input_schema
        assert schema["required"] == ["name"]
        assert schema["properties"]["name"] == {"type": "string", "title": "Name",
                                                "description": "Who to greet"}
        assert schema["properties"]["times"]["default"] == 2
        assert schema["additionalProperties"] is False

        done = await client.call_tool("greet", {"name": "Ada", "times": 3})
        assert not done.is_error
        body = done.structured_content
        assert body is not None and body["status"] == "completed"
        assert body["outputs"] == {"greet": ["Hello, Ada!"] * 3,
                                   "shout": "HELLO, ADA! HELLO, ADA! HELLO, ADA!"}
        assert json.loads(done.content[0].text)["run_id"] == body["run_id"]  # type: ignore[union-attr]

        waiting = await client.call_tool("greet", {"name": "Bob", "approval": True})
        wait_body = waiting.structured_content
        assert wait_body is not None and wait_body["status"] == "waiting"
        (task,) = wait_body["waiting"]
        assert task["task"] == "check" and task["prompt"] == "Shout at Bob?"
        expected = f"podium approve {wait_body['run_id']} check --db {db.resolve()}"
        assert task["approve"] == expected

        refused = await client.call_tool("greet", {"name": "Cy", "times": "many"})
        assert refused.is_error

    record = await _journal(db, body["run_id"])
    assert record["status"] == "completed" and record["outputs"] == body["outputs"]
    assert record["inputs"] == {"name": "Ada", "times": 3, "approval": False}

    # The waiting run is durable: another process approves it from the command line.
    approve = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "podium", *task["approve"].split()[1:], "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await approve.communicate()
    assert approve.returncode == 0, err.decode()
    assert json.loads(out)["outputs"]["shout"] == "HELLO, BOB! HELLO, BOB!"
    assert (await _journal(db, wait_body["run_id"]))["status"] == "completed"


async def test_podium_calls_a_served_workflow_over_http(tmp_path: Path) -> None:
    """Podium's own client, calling a workflow another Podium process serves; it
    authenticates with a token (`podium tokens issue`)."""
    db, port = tmp_path / "journal.db", _free_port()
    tokens = TokenStore(tmp_path / "tokens.db")
    _, token = tokens.issue("flows-client", kind="service", by="test")
    served = _http_server(_serve_command(db, "streamable-http", port, tokens.path), port,
                          tmp_path / "serve.log")
    url = next(served)
    try:
        async with MCPConnection(MCPServer(name="flows", url=url, headers={
                "Authorization": f"Bearer {token}"})) as conn:
            (greet,) = await conn.tools()
            assert greet.name == "flows.greet"
            with pytest.raises(ToolArgumentsInvalid, match=r"'name' is a required property"):
                await greet({"times": 1})
            body = await greet({"name": "Di", "times": 1})
            assert body["status"] == "completed"
            assert body["outputs"]["shout"] == "HELLO, DI!"
            with pytest.raises(ToolArgumentsInvalid, match=r"times: -0.5 is not of type "):
                await greet({"name": "Di", "times": -0.5})
            # A run that fails is a tool error naming the run and where to look.
            with pytest.raises(ToolFailed, match=r"run \S+ failed: .*a name is needed.*\n"
                                                 r"details: podium runs show "):
                await greet({"name": ""})
    finally:
        served.close()
    assert (await _journal(db, body["run_id"]))["status"] == "completed"
    assert (await _journal(db, body["run_id"]))["principal"]["id"] == "flows-client"


async def test_build_server_schema_for_every_input_type(tmp_path: Path) -> None:
    flow = tmp_path / "types.yaml"
    flow.write_text(
        "name: all types\n"
        "inputs:\n"
        "  s: {type: string}\n"
        "  i: {type: integer, default: 3}\n"
        "  n: {type: number, default: 0.5}\n"
        "  b: {type: boolean, default: true}\n"
        "  l: {type: list, default: [1]}\n"
        "  o: {type: object, default: {}}\n"
        "  a: {type: any, default: null}\n"
        "  with space: {type: string, default: x}\n"
        "agents: {echo: {function: 'echo_agent:echo'}}\n"
        "tasks: {t: {agent: echo}}\n", encoding="utf-8")
    (tmp_path / "echo_agent.py").write_text("def echo(s):\n    return s\n", encoding="utf-8")
    server = build_server(flow, tmp_path / "journal.db")
    (tool,) = await server.list_tools()
    assert tool.name == "all_types"
    props = tool.input_schema["properties"]
    assert props["s"]["type"] == "string"
    assert {"type": "integer"} in props["i"]["anyOf"] and props["i"]["default"] == 3
    assert {"type": "number"} in props["n"]["anyOf"]
    assert {"type": "boolean"} in props["b"]["anyOf"] and props["b"]["default"] is True
    assert {"type": "array", "items": {}} in props["l"]["anyOf"]
    assert props["o"]["default"] == {}
    assert "with space" in props
    assert tool.input_schema["required"] == ["s"]


# -- connection failures --------------------------------------------------------------------


async def test_missing_command_names_the_server() -> None:
    server = MCPServer(name="ghost", command="podium-no-such-mcp-server", args=["--stdio"])
    with pytest.raises(UserError, match=r"MCP server 'ghost': command "
                                        r"'podium-no-such-mcp-server' not found on PATH"):
        async with MCPConnection(server):
            pass


async def test_server_exiting_at_startup_quotes_its_stderr() -> None:
    server = MCPServer(name="broken", command=sys.executable, args=[
        "-c", "import sys; print('config file missing: /etc/broken.toml', file=sys.stderr);"
              " sys.exit(3)"])
    with pytest.raises(MCPUnavailable) as failed:
        async with MCPConnection(server):
            pass
    message = str(failed.value)
    assert "MCP server 'broken'" in message and "closed the connection" in message
    assert "check 'command', 'args' and 'env'" in message
    assert "config file missing: /etc/broken.toml" in message


async def test_secret_arguments_are_masked_in_what_the_server_said(token: str) -> None:
    server = MCPServer(name="leaky", command=sys.executable, args=[
        "-c", "import sys; print('cannot log in with', sys.argv[1], file=sys.stderr); "
              "sys.exit(1)", f"env:{TOKEN_VAR}"])
    with pytest.raises(MCPUnavailable) as failed:
        async with MCPConnection(server):
            pass
    assert "cannot log in with ***" in str(failed.value)
    assert token not in str(failed.value)


async def test_refused_port_names_the_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}/mcp"
    with pytest.raises(MCPUnavailable, match=f"MCP server 'remote': nothing accepted a "
                                             f"connection at '{url}'.*check that the server "
                                             "is running"):
        async with MCPConnection(MCPServer(name="remote", url=url)):
            pass


async def test_unset_secret_and_bad_configs_are_user_errors(tmp_path: Path) -> None:
    os.environ.pop("PODIUM_TEST_MCP_UNSET", None)
    remote = MCPServer(name="remote", url="http://127.0.0.1:9/mcp",
                       headers={"Authorization": "Bearer ${env:PODIUM_TEST_MCP_UNSET}"})
    with pytest.raises(UserError, match=r"header 'Authorization'.*'PODIUM_TEST_MCP_UNSET' is "
                                        r"not set"):
        async with MCPConnection(remote):
            pass
    with pytest.raises(UserError, match=r"cwd .* is not a folder"):
        async with MCPConnection(MCPServer(name="x", command=sys.executable,
                                           cwd=str(tmp_path / "missing"))):
            pass
    with pytest.raises(UserError, match=r"either 'command'.*or 'url'.*not both"):
        MCPServer(name="x", command="a", url="http://b")
    with pytest.raises(UserError, match=r"neither"):
        MCPServer(name="x")
    with pytest.raises(UserError, match=r"use letters, digits"):
        MCPServer(name="a.b", command="a")
    with pytest.raises(UserError, match=r"must start with http"):
        MCPServer(name="x", url="127.0.0.1:8000/mcp")
