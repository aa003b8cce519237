"""A workflow served as an MCP tool, so that other agents can call an orchestrated workflow.

    podium mcp serve report.yaml                      # stdio: Claude Desktop, IDEs, agents
    podium mcp serve report.yaml --http --port 8765   # streamable HTTP at 127.0.0.1:8765/mcp

The server offers one tool, named after the workflow, whose arguments are the workflow's
declared inputs (their types, defaults and descriptions become the input schema). A call
starts a durable run in the journal and returns when the run completes, fails or waits for
a human, with `status`, `run_id` and `outputs`; a waiting run also lists the
`podium approve` / `podium reject` commands that continue it. A failed run is a tool error
whose text names the run and how to see its details. A run the caller abandons stays in
the journal, and `podium resume RUN` finishes it.

Every call is a run on behalf of an authenticated principal, under the access policy and
the audit log the `podium` command resolves (`podium.server.access`): over stdio the
principal is whoever started the server (the OS user, or whom it may act as); over HTTP
each request carries a bearer token (`podium tokens issue PRINCIPAL`) that names its
principal, and a request without a valid one is refused (401) before it reaches a tool.
The run needs `workflow:run` for that principal (a refusal is a tool error and a
`policy.deny` record); it is journaled with the principal, and audited (`run.start`,
`run.end`) like a run from the command line. Over HTTP, the server will not start before
a token has been issued.

Needs the `mcp` extra (`pip install 'podium[mcp]'`).
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field, create_model
from pydantic_core import to_jsonable_python

from podium.config import database_path
from podium.core.check import check
from podium.core.principal import Principal, PrincipalKind
from podium.core.state import RunState
from podium.core.workflow import InputSpec, InputType, Workflow
from podium.engine.runtime import Engine
from podium.errors import PermissionDenied, PodiumError, UserError, WorkflowError
from podium.security.tokens import TokenStore
from podium.server.access import Access, open_access
from podium.store.sqlite import SQLiteStore
from podium.yaml import load_workflow

if TYPE_CHECKING:
    from mcp.server.auth.provider import AccessToken
    from mcp.server.mcpserver import MCPServer as SDKServer
    from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
    from mcp.types import CallToolResult

__all__ = ["build_server", "serve"]

_TYPES: dict[InputType, Any] = {
    "string": str, "integer": int, "number": float, "boolean": bool,
    "list": list[Any], "object": dict[str, Any], "any": Any,
}
_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["completed", "failed", "waiting", "cancelled",
                                               "running"],
                   "description": "How the run ended, or `waiting` for a human."},
        "run_id": {"type": "string", "description": "The run's id in the Podium journal."},
        "outputs": {"type": "object", "description": "Outputs of completed tasks, by task."},
        "error": {"type": "string", "description": "Why the run failed."},
        "waiting": {"type": "array", "items": {"type": "object"},
                    "description": "Tasks waiting for a human, with the commands that "
                                   "approve or reject them."},
        "message": {"type": "string"},
    },
    "required": ["status", "run_id", "outputs"],
}


def _sdk() -> None:
    try:
        import mcp  # noqa: F401
    except ImportError as e:
        raise UserError(f"serving a workflow over MCP needs the 'mcp' SDK ({e}); install it "
                        "with: pip install 'podium[mcp]'") from None


def _tool_name(workflow: Workflow) -> str:
    """The MCP tool's name: the workflow's, in the characters MCP allows."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", workflow.name)[:128] or "workflow"


@functools.cache
def _base() -> type[ArgModelBase]:
    from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase

    class Inputs(ArgModelBase):
        model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    return Inputs


def _arguments_model(workflow: Workflow) -> type[ArgModelBase]:
    """The tool's arguments: the workflow's inputs, under their own names (any string)."""
    fields: dict[str, Any] = {}
    for i, (name, spec) in enumerate(workflow.inputs.items()):
        kind = _TYPES[spec.type]
        description = spec.description or None
        if spec.required:
            fields[f"input_{i}"] = (kind, Field(alias=name, description=description))
        else:
            # An optional input left out arrives as None and gets its default from the
            # engine, exactly as on the command line.
            extra = None if spec.default is None else {"default": spec.default}
            fields[f"input_{i}"] = (kind if kind is Any else kind | None, Field(
                None, alias=name, description=description, json_schema_extra=extra))
    return create_model(f"{_tool_name(workflow)}_inputs", __base__=_base(), **fields)


def _description(workflow: Workflow) -> str:
    about = f" {workflow.description.strip()}" if workflow.description.strip() else ""
    return (f"Run the Podium workflow {workflow.name!r} (version {workflow.version}) durably "
            f"and return its status, run_id and outputs.{about} A run that needs a person's "
            "approval returns status 'waiting' with the commands that continue it.")


def _db_flag(db: Path) -> str:
    """`--db PATH` for commands about runs in this journal, unless it is the default."""
    return "" if db == database_path().resolve() else f" --db {shlex.quote(str(db))}"


def _approve_hint(run_id: str, task: str, db: Path) -> dict[str, str]:
    flag = _db_flag(db)
    run, key = shlex.quote(run_id), shlex.quote(task)
    return {"approve": f"podium approve {run} {key}{flag}",
            "reject": f"podium reject {run} {key}{flag}"}


def _result(state: RunState, db: Path) -> CallToolResult:
    from mcp.types import CallToolResult, TextContent

    body: dict[str, Any] = {"status": state.status, "run_id": state.run_id,
                            "outputs": to_jsonable_python(state.outputs(), fallback=str)}
    flag = _db_flag(db)
    if state.status == "waiting":
        waiting = [{"task": t.key, "prompt": t.prompt or "", **_approve_hint(state.run_id,
                                                                              t.key, db)}
                   for t in state.waiting()]
        body["waiting"] = waiting
        body["message"] = (f"run {state.run_id} is waiting for a human: "
                           + "; ".join(f"{w['task']}: {w['prompt']} (continue with: "
                                       f"{w['approve']})" for w in waiting))
    if state.status in ("failed", "cancelled"):
        body["error"] = state.error or state.status
        text = (f"run {state.run_id} {state.status}: {body['error']}\n"
                f"details: podium runs show {state.run_id}{flag}")
        return CallToolResult(content=[TextContent(type="text", text=text)],
                              structured_content=body, is_error=True)
    text = json.dumps(body, ensure_ascii=False)
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=body)


def _refusal(message: str) -> CallToolResult:
    from mcp.types import CallToolResult, TextContent

    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


async def run_workflow(workflow: Workflow, db: Path, inputs: dict[str, Any], *,
                       access: Access | None = None, principal: Principal | None = None
                       ) -> CallToolResult:
    """Start a durable run with these inputs on behalf of `principal`, under `access`'s
    policy and audit log, and describe how it ended, as MCP replies."""
    given = {k: v for k, v in inputs.items()
             if not (v is None and not workflow.inputs.get(k, InputSpec()).required)}
    try:
        store = SQLiteStore(db)
    except (OSError, sqlite3.Error, PodiumError) as e:
        return _refusal(f"cannot open the journal {str(db)!r}: {e}")
    try:
        engine = (Engine(store, policy=access.policy, audit=access.audit) if access is not None
                  else Engine(store))
        state = await engine.start(workflow, given, principal=principal)
    except PermissionDenied as e:
        return _refusal(f"refused: {e}")
    except WorkflowError as e:
        return _refusal("the inputs do not fit the workflow:\n"
                        + "\n".join(f"  {p.field or ''}: {p.message}" for p in e.problems))
    except PodiumError as e:
        return _refusal(f"the run could not start: {e}")
    finally:
        await store.close()
        # Over stdio, fd 1 points at stderr while the server runs and at the MCP stream
        # after: what agents printed must leave Python's buffer now, not at exit.
        sys.stdout.flush()
    return _result(state, db)


class _Tokens:
    """The SDK's `TokenVerifier` over Podium's token store: a token's principal becomes the
    access token's `client_id`."""

    def __init__(self, store: TokenStore) -> None:
        self.store = store

    async def verify_token(self, token: str) -> AccessToken | None:
        from mcp.server.auth.provider import AccessToken

        record = self.store.verify(token)
        if record is None:
            return None
        return AccessToken(token=token, client_id=record.principal, scopes=[],
                           claims={"kind": record.kind, "token_id": record.id})


def _caller(access: Access, tokens: TokenStore | None) -> Principal:
    """Who the current call is for: the token's principal over HTTP, else the server's."""
    if tokens is None:
        return access.principal
    from mcp.server.auth.middleware.auth_context import get_access_token

    token = get_access_token()
    if token is None:  # the SDK refuses unauthenticated requests before they get here
        raise PermissionDenied("an unauthenticated call reached the tool",
                               action="workflow:run")
    kind: PrincipalKind = ("service" if (token.claims or {}).get("kind") == "service"
                           else "user")
    if access.policy is not None:
        return access.policy.principal(token.client_id, kind=kind)
    return Principal(id=token.client_id, kind=kind)


def build_server(workflow_path: str | Path, db_path: str | Path | None = None, *,
                 access: Access | None = None, tokens: TokenStore | None = None,
                 url: str | None = None) -> SDKServer:
    """An MCP server (the SDK's `MCPServer`, formerly FastMCP) offering one tool that runs
    the workflow durably, journaling to `db_path`.

    Args:
        workflow_path: the workflow's YAML file; loaded and checked now.
        db_path: the journal; None for Podium's default (`podium.config.database_path()`).
        access: the policy, audit log and principal calls run under; None for the `podium`
            command's (`podium.server.access.open_access`).
        tokens: with HTTP, the store whose bearer tokens authenticate each request and name
            its principal; None over stdio.
        url: the server's endpoint, with `tokens`.

    Raises:
        WorkflowError: the workflow is invalid, or names code the policy does not allow.
        UserError: the file cannot be read, or the `mcp` SDK is not installed.
    """
    _sdk()
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.tools import Tool
    from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata

    # Absolute: the commands a waiting run's reply gives may be typed anywhere.
    db = (Path(db_path) if db_path is not None else database_path()).resolve()
    if access is None:
        access = open_access(db, None)
    workflow = load_workflow(workflow_path, policy=access.policy)
    check(workflow)
    arguments = _arguments_model(workflow)
    parameters = arguments.model_json_schema(by_alias=True)
    parameters.pop("title", None)

    async def run(**inputs: Any) -> CallToolResult:
        return await run_workflow(workflow, db, inputs, access=access,
                                  principal=_caller(access, tokens))

    tool = Tool(fn=run, name=_tool_name(workflow), title=workflow.name,
                description=_description(workflow), parameters=parameters,
                fn_metadata=FuncMetadata(arg_model=arguments, output_schema=_OUTPUT_SCHEMA),
                is_async=True, context_kwarg=None, annotations=None)
    auth: dict[str, Any] = {}
    if tokens is not None:
        from mcp.server.auth.settings import AuthSettings
        from pydantic import AnyHttpUrl

        endpoint = url or "http://127.0.0.1/mcp"
        auth = {"token_verifier": _Tokens(tokens), "auth": AuthSettings(
            issuer_url=AnyHttpUrl(endpoint.rpartition("/mcp")[0] or endpoint),
            resource_server_url=AnyHttpUrl(endpoint), validate_token_resource=False)}
    return MCPServer(name=f"podium-{_tool_name(workflow)}", version=workflow.version,
                     instructions=_description(workflow), tools=[tool], **auth)


def serve(workflow_path: str | Path, db_path: str | Path | None = None, *,
          transport: Literal["stdio", "streamable-http"] = "stdio",
          host: str = "127.0.0.1", port: int = 8000, access: Access | None = None,
          tokens: TokenStore | None = None) -> None:
    """Serve the workflow as an MCP tool until stopped (blocking).

    Over stdio (the default) the MCP client starts this process and talks on its stdin and
    stdout; what agents print goes to stderr; calls run for the server's principal. Over
    streamable HTTP the endpoint is `http://HOST:PORT/mcp`, and every request must carry a
    bearer token from `tokens` (default: `$PODIUM_HOME/tokens.db`).

    Args:
        access: the policy, audit log and principal; None: the `podium` command's.
        tokens: over HTTP, the token store; None for the default one.

    Raises:
        WorkflowError: the workflow is invalid.
        UserError: the file cannot be read, the `mcp` SDK is not installed, or, over HTTP,
            no token was ever issued.
    """
    db = (Path(db_path) if db_path is not None else database_path()).resolve()
    own = access is None
    access = access or open_access(db, None)
    try:
        if transport == "stdio":
            build_server(workflow_path, db, access=access).run("stdio")
            return
        tokens = tokens or TokenStore()
        if not tokens.list():
            raise UserError(f"no API token in {str(tokens.path)!r}: nobody could call the "
                            "server; issue one first with: podium tokens issue PRINCIPAL")
        url = f"http://{host}:{port}/mcp"
        build_server(workflow_path, db, access=access, tokens=tokens, url=url).run(
            "streamable-http", host=host, port=port)
    finally:
        if own:
            access.close()
