"""The `podium` command: `app` (a Typer application) and `main` (the console script).

Exit status: 0 completed, 1 failed (or cancelled, or the journal could not be written),
2 invalid input or workflow, 3 waiting for a human, 130 interrupted (Ctrl-C), 143
terminated (SIGTERM). Errors are mapped to their message and status in one place,
`podium.cli._app.report`.

One module per command group, all wired here in the order `podium --help` lists them:
top-level commands are functions, groups are Typer applications. What every command
shares (the consoles, `--db`, `--policy`, the acting principal, the journal) is declared
once, in `podium.cli._shared`.
"""

from __future__ import annotations

from podium.cli import agents, audit, keys, mcp, memory, run, runs, tokens, validate
from podium.cli._app import app, main

__all__ = ["app", "main"]

for command in (run.run, run.resume, run.approve, run.reject, run.cancel,
                validate.validate, agents.agents):
    app.command()(command)
for name, group in (("runs", runs.app), ("keys", keys.app), ("memory", memory.app),
                    ("tokens", tokens.app), ("audit", audit.app), ("mcp", mcp.app)):
    app.add_typer(group, name=name)
