"""`podium validate`: a workflow checked without running it, every problem found printed;
tool names are checked against the MCP servers' own lists, where they start."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from podium.cli._shared import PolicyOption, acting, err


def validate(file: Annotated[Path, typer.Argument(help="Workflow YAML file.")],
             policy: PolicyOption = None) -> None:
    """Check a workflow without running it; prints every problem found."""
    import asyncio

    from podium.errors import WorkflowError
    from podium.yaml import load_workflow

    with acting(None, policy) as access:
        workflow = load_workflow(file, policy=access.policy)
    from podium.engine.tool_check import check_tools

    # Tool names are checked against the MCP servers' own lists, where they start.
    problems, unasked = asyncio.run(check_tools(workflow))
    for why in unasked:
        err.print(f"[yellow]warning:[/yellow] could not start it to check the tool names "
                  f"its agents use, which are checked when a run starts: {escape(why)}",
                  markup=True, highlight=False)
    if problems:
        raise WorkflowError(problems)
    err.print(f"[green]ok[/green]: {workflow.name} · {len(workflow.tasks)} tasks, "
              f"{len(workflow.agents)} agents", markup=True)
