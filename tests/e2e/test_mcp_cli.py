"""`podium mcp serve` from the command line: another agent calls a whole workflow."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from podium.server.access import os_user

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


# -- under the access policy and the audit log ---------------------------------------------

GREET = ("name: greet\ninputs: {name: {type: string}}\n"
         "agents: {hello: {function: 'greeting:hello'}}\n"
         "tasks: {hello: {agent: hello, with: {name: '{{ inputs.name }}'}}}\n")
POLICY = """\
roles:
  server: {workflows: {greet: [serve, view]}, audit: [verify, export]}
  caller: {workflows: {greet: [run, view]}, agents: ["*"]}
principals:
  ann: [caller]
  eve: []
  %s: [server%s]
"""


def _setup(tmp_path: Path, *, os_user_runs: bool) -> tuple[Path, dict[str, str]]:
    """A workflow, and a $PODIUM_HOME whose installed policy lets the OS user serve it (and
    run it, if `os_user_runs`); the environment to run `podium` in."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "policy.yaml").write_text(
        POLICY % (os_user(), ", caller" if os_user_runs else ""), encoding="utf-8")
    (tmp_path / "flow.yaml").write_text(GREET, encoding="utf-8")
    (tmp_path / "greeting.py").write_text("def hello(name: str) -> str:\n"
                                          "    return f'Hello, {name}!'\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PODIUM_POLICY", "PODIUM_AUDIT", "PODIUM_DB", "PODIUM_PRINCIPAL")}
    return home, {**env, "PODIUM_HOME": str(home)}


def _podium(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODIUM, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def _audit(env: dict[str, str], cwd: Path, *db: str) -> list[tuple[str, str, str]]:
    """The audit log of the journal j.db, or of `--db` given in `db`."""
    done = _podium(env, cwd, "audit", "export", *(db or ("--db", str(cwd / "j.db"))))
    assert done.returncode == 0, done.stderr
    return [(r["actor"], r["action"], r["outcome"])
            for r in map(json.loads, done.stdout.splitlines())]


async def _call_stdio(env: dict[str, str], cwd: Path) -> Any:
    params = StdioServerParameters(command=PODIUM, args=[
        "mcp", "serve", "flow.yaml", "--db", str(cwd / "j.db")], cwd=str(cwd), env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        return await session.call_tool("greet", {"name": "Ada"})


@pytest.mark.parametrize("os_user_runs", [True, False], ids=["allowed", "refused"])
async def test_over_stdio_the_os_user_runs_under_the_policy_and_the_audit(
        tmp_path: Path, os_user_runs: bool) -> None:
    _, env = _setup(tmp_path, os_user_runs=os_user_runs)
    result = await _call_stdio(env, tmp_path)

    me = os_user()
    if os_user_runs:
        assert not result.is_error, result.content
        run_id = result.structured_content["run_id"]
        listed = _podium(env, tmp_path, "runs", "show", run_id, "--json", "--db",
                         str(tmp_path / "j.db"))
        assert json.loads(listed.stdout)["principal"]["id"] == me
        assert (me, "run.start", "ok") in _audit(env, tmp_path)
    else:
        assert result.is_error
        text = result.content[0].text
        assert f"user {me!r} (roles: server) may not run workflow 'greet'" in text
        assert "needs permission workflow:run" in text
        assert (me, "policy.deny", "denied") in _audit(env, tmp_path)
        assert "run.start" not in {a for _, a, _ in _audit(env, tmp_path)}


def test_serve_needs_the_serve_permission_and_http_needs_a_token(tmp_path: Path) -> None:
    home, env = _setup(tmp_path, os_user_runs=True)
    (home / "policy.yaml").write_text(POLICY.replace("[serve, view]", "[view]")
                                      % (os_user(), ""), encoding="utf-8")
    refused = _podium(env, tmp_path, "mcp", "serve", "flow.yaml", "--db", "j.db")
    assert refused.returncode == 2
    assert "needs permission workflow:serve" in refused.stderr

    (home / "policy.yaml").write_text(POLICY % (os_user(), ""), encoding="utf-8")
    untokened = _podium(env, tmp_path, "mcp", "serve", "flow.yaml", "--http", "--port", "1",
                        "--db", "j.db")
    assert untokened.returncode == 2
    assert "no API token" in untokened.stderr and "podium tokens issue" in untokened.stderr


async def test_over_http_every_call_is_authenticated_and_runs_as_the_token_s_principal(
        tmp_path: Path) -> None:
    import httpx2

    home, env = _setup(tmp_path, os_user_runs=False)
    # The OS user may issue tokens (it is the administrator here).
    (home / "policy.yaml").write_text(
        POLICY.replace("  caller:", "  issuer: {tokens: {'*': [issue]}}\n  caller:")
        % (os_user(), ", issuer"), encoding="utf-8")
    tokens = {}
    for who in ("ann", "eve"):
        issued = _podium(env, tmp_path, "tokens", "issue", who, "--json")
        assert issued.returncode == 0, issued.stderr
        tokens[who] = json.loads(issued.stdout)["token"]
    assert tokens["ann"].encode() not in (home / "tokens.db").read_bytes()
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = _start(env, tmp_path, log, "mcp", "serve", "flow.yaml", "--http", "--port",
                    str(port), "--db", str(tmp_path / "j.db"))
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        _wait_listening(server, port, tmp_path / "serve.log")
        async with httpx2.AsyncClient() as plain:
            for headers in ({}, {"Authorization": "Bearer pdm_0000_forged"},
                            {"Authorization": f"Bearer {tokens['ann']}x"}):
                answer = await plain.post(url, headers={
                    **headers, "Accept": "application/json, text/event-stream"},
                    json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
                assert answer.status_code == 401, (headers, answer.text)
        results = {who: await _call_http(url, token) for who, token in tokens.items()}
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

    assert not results["ann"].is_error, results["ann"].content
    run_id = results["ann"].structured_content["run_id"]
    shown = _podium(env, tmp_path, "runs", "show", run_id, "--json", "--db",
                    str(tmp_path / "j.db"))
    assert json.loads(shown.stdout)["principal"] == {"id": "ann", "kind": "user",
                                                     "roles": ["caller"]}
    assert results["eve"].is_error
    assert "user 'eve' (roles: none) may not run workflow 'greet'" in (
        results["eve"].content[0].text)
    trail = _audit(env, tmp_path)
    assert ("ann", "run.start", "ok") in trail and ("ann", "run.end", "completed") in trail
    assert ("eve", "policy.deny", "denied") in trail
    # Tokens are issued beside the default journal, and audited there.
    assert (os_user(), "token.issue", "ok") in _audit(env, tmp_path, "--db",
                                                      str(home / "podium.db"))


async def _call_http(url: str, token: str) -> Any:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async with (httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
                streamable_http_client(url, http_client=http) as (read, write, *_),
                ClientSession(read, write) as session):
        await session.initialize()
        return await session.call_tool("greet", {"name": "Ada"})


def _start(env: dict[str, str], cwd: Path, log: Any, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([PODIUM, *args], cwd=cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until something accepts connections on the port; fails if the process dies first."""
    for _ in range(1200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        try:  # waiting on the process is the pause between polls, and notices a death
            code = process.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"server exited with {code} during startup:\n{log.read_text()}")
    pytest.fail(f"nothing listened on 127.0.0.1:{port}")
