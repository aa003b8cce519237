"""The `podium` command group, and the one place an error becomes a message and an exit
status (`report`), for every command and every caller: the console script, a test's
CliRunner, a program embedding the app."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from podium.cli._shared import err


class _Commands(TyperGroup):
    """The top command group: an error any command raises is reported here (`report`),
    as one line and an exit status, whoever invokes the app (the console script, a test's
    CliRunner, a program embedding it), never as a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's own click Context, not public
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as e:
            raise typer.Exit(report(e)) from None


app = typer.Typer(cls=_Commands, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False,
                  help="Podium: durable orchestration of AI agents, models and tools.")


def report(error: BaseException) -> int:
    """Say what went wrong in one line per problem, and return the exit status: 2 for a
    mistake in what was asked (a workflow, an input, a policy, a run id) or a denial, 1 for
    a run or the journal that could not go on."""
    import sqlite3

    from podium.errors import PodiumError, PolicyFileError, UserError, WorkflowError

    if isinstance(error, WorkflowError | PolicyFileError):
        for problem in error.problems:
            err.print(f"[red]error:[/red] {escape(str(problem))}", markup=True, highlight=False)
        files = {p.file for p in error.problems if p.file}
        if len(error.problems) > 1:
            err.print(f"{len(error.problems)} problems" + (
                f" in {files.pop()}" if len(files) == 1 else ""))
        return 2
    if isinstance(error, PodiumError):
        err.print(f"[red]error:[/red] {escape(str(error))}", markup=True, highlight=False)
        return 2 if isinstance(error, UserError) else 1
    if isinstance(error, OSError | sqlite3.Error) and not os.environ.get("PODIUM_DEBUG"):
        # The machine's doing (a full disk, a file not allowed), not a bug of Podium's.
        what = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        where = getattr(error, "filename", None)
        err.print(f"[red]error:[/red] {escape(what)}" + (f": {escape(str(where))}" if where
                                                         else ""), markup=True, highlight=False)
        return 1
    if os.environ.get("PODIUM_DEBUG"):
        raise error
    text = str(error)
    described = f"{type(error).__name__}: {text}" if text else type(error).__name__
    err.print(f"[red]error:[/red] {escape(described)} (a fault in Podium; "
              "PODIUM_DEBUG=1 shows where)", markup=True, highlight=False)
    return 1


def main() -> None:
    """Entry point of the `podium` console script. A command's errors are reported by the
    command group (`_Commands`); what is raised outside any command is reported here the
    same way (`report`), never as a traceback."""
    try:
        app()
    except Exception as e:
        sys.exit(report(e))
