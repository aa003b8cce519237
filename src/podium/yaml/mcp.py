"""`mcp_servers:` in a workflow file: MCP servers its model agents may take tools from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from podium.errors import Problem, UserError
from podium.yaml.source import line_of


class MCPServerDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: str | None = None
    args: list[str] = []
    env: dict[str, str] = {}
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = {}
    timeout: float | None = Field(30.0, gt=0)
    connect_timeout: float = Field(30.0, gt=0)
    tags: list[str] = []
    external: bool = False
    include: list[str] | None = None
    exclude: list[str] = []
    max_result_bytes: int | None = Field(None, ge=1)


def mcp_servers(docs: dict[str, Any], lines: dict[str, int], source: str, base: Path | None
                ) -> tuple[dict[str, Any], list[Problem]]:
    """MCPServer configurations by name, and the problems found in their documents.

    A relative `cwd` (and a stdio server's default folder) is the workflow file's folder.
    """
    from podium.tools.mcp import MCPServer

    servers: dict[str, Any] = {}
    problems: list[Problem] = []

    def problem(field: str, message: str) -> None:
        problems.append(Problem(message=message, file=source, line=line_of(field, lines),
                                field=field))

    for name, raw in docs.items():
        at = f"mcp_servers.{name}"
        try:
            doc = MCPServerDoc.model_validate(raw)
        except ValidationError as e:
            for err in e.errors():
                loc = ".".join(str(p) for p in err["loc"])
                message = (f"unknown field {err['loc'][-1]!r}"
                           if err["type"] == "extra_forbidden" else err["msg"])
                problem(f"{at}.{loc}" if loc else at, message)
            continue
        fields = doc.model_dump(exclude_unset=True)
        if doc.command is not None and base is not None:
            cwd = Path(doc.cwd) if doc.cwd else base
            fields["cwd"] = str(cwd if cwd.is_absolute() else base / cwd)
        for key in ("tags",):
            if key in fields:
                fields[key] = frozenset(fields[key])
        try:
            servers[name] = MCPServer(name=name, **fields)
        except (UserError, TypeError, ValueError) as e:
            problem(at, str(e))
    return servers, problems
