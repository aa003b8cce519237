"""`podium mcp serve`: a workflow served as an MCP tool (`podium.server.mcp`), under
the command's access: `workflow:serve` on the workflow, then each call a run for the
principal at the terminal (stdio) or of the caller's token (HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from podium.cli._shared import NO_POLICY, DbOption, PolicyOption, acting, err, sqlite_only
from podium.config import database_path

app = typer.Typer(no_args_is_help=True, help="Model Context Protocol: serve workflows.")


@app.command("serve")
def mcp_serve(
    file: Annotated[Path, typer.Argument(help="Workflow YAML file.")],
    http: Annotated[bool, typer.Option(
        "--http", help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio.")
    ] = False,
    host: Annotated[str, typer.Option(help="Interface to listen on with --http.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on with --http.")] = 8000,
    db: DbOption = None,
    policy: PolicyOption = None,
) -> None:
    """Serve a workflow as an MCP tool for other agents; each call is a durable run, for
    you over stdio, for the principal of the caller's token over HTTP (podium tokens)."""
    from podium.server.mcp import serve
    from podium.yaml import load_workflow

    journal = sqlite_only(db, "podium mcp serve") or database_path()
    try:
        with acting(str(journal), policy) as access:
            workflow = load_workflow(file, policy=access.policy)
            access.check("workflow:serve", workflow.name)
            if access.policy is None:
                err.print(f"warning: {NO_POLICY}: "
                          + ("every caller holding a token" if http else
                             f"you ({access.principal.id})")
                          + f" may run {workflow.name!r} here", highlight=False)
            serve(file, journal, transport="streamable-http" if http else "stdio",
                  host=host, port=port, access=access)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
