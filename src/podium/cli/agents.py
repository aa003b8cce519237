"""`podium agents`: the agents of a registry or a workflow, as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from podium.cli._shared import PolicyOption, acting, out

if TYPE_CHECKING:
    from podium.core.registry import Registry
    from podium.security.rbac import AccessPolicy

DEFAULT = Path("agents")
"""Where `podium agents` looks when given no path: the `agents/` folder here."""


def _is_workflow(path: Path) -> bool:
    """Whether a YAML file is a workflow (it has more than an `agents:` mapping)."""
    from podium.yaml import YAMLSyntaxError, compose, read_text

    try:
        data = compose(read_text(path))[0]
    except (OSError, YAMLSyntaxError):
        return False  # the registry loader reports it, with the line
    return isinstance(data, dict) and bool(set(data) - {"agents"})


def registry_at(path: Path | None) -> Registry:
    """The registry `podium agents PATH` lists: a workflow's agents (its own and those of its
    registries), a registry file, or a folder of them.

    Raises:
        WorkflowError: problems in the files, each naming file and line.
        UserError: nothing at the path.
    """
    from podium.errors import UserError
    from podium.yaml import load_registry, load_workflow, workflow_registry

    if path is None:
        if not DEFAULT.is_dir():
            raise UserError("no agents/ folder here: give a registry file or folder, or a "
                            "workflow file: podium agents PATH")
        path = DEFAULT
    if path.is_file() and _is_workflow(path):
        return workflow_registry(load_workflow(path))
    return load_registry(path)


def agents(
    path: Annotated[Path | None, typer.Argument(
        help="A registry file or folder, or a workflow file (default: ./agents/).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the agents as JSON.")
                       ] = False,
    policy: PolicyOption = None,
) -> None:
    """List agents: name, skills, cost and latency hints, description."""
    from rich.table import Table

    with acting(None, policy) as access:
        registry = agents_at(path, access.policy)
    if as_json:
        out.print_json(json.dumps({"agents": registry.cards(), "skills": registry.skills()}))
        return
    table = Table("agent", "kind", "skills", "cost", "latency", "description")
    for card in registry.cards():
        table.add_row(str(card["name"]), str(card["kind"]), ", ".join(card["skills"]),
                      "" if card["cost"] is None else f"{card['cost']:g}",
                      "" if card["latency"] is None else f"{card['latency']:g}s",
                      str(card["description"]))
    out.print(table)


def agents_at(path: Path | None, policy: AccessPolicy | None = None) -> Registry:
    """`registry_at(path)`, naming Python code only from modules `policy` allows
    (`functions.allow`).

    Raises:
        UserError: the path holds no valid registry or workflow (the CLI reports it).
    """
    from podium.yaml import functions_allowed

    with functions_allowed(policy):
        return registry_at(path)
