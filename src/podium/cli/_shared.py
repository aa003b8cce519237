"""What every `podium` command shares, declared once: the two consoles (`out` for results
on stdout; `err` for progress, notes and errors on stderr), the options `--db`, `--policy`
and a run's `--json`, the access a command acts under (`acting`: the principal, the policy
and the audit log, resolved by `podium.server.access` the same way for every command),
and running a command's coroutine against the journal (`run_async`).

Errors are not mapped to exit statuses here: a command raises, and the command group
reports (`podium.cli._app.report`).

`podium --help` imports every command module, so this one (and they) import at their top
only what their signatures need (typer, rich, the standard library); what a command uses
(the engine, the store, the access policy) is imported when it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from podium.engine.runtime import Engine
    from podium.server.access import Access
    from podium.store.base import Store

T = TypeVar("T")

out = Console(highlight=False, soft_wrap=True, markup=False)
"""Standard output: what a command was asked for (a result, a table, JSON)."""
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
"""Standard error: progress, notes, warnings and errors."""

DbOption = Annotated[str | None, typer.Option(
    "--db", help="Journal: a SQLite file (default: $PODIUM_HOME/podium.db or the user data "
    "folder) or a postgresql://USER:PASSWORD@HOST/DB URL.", envvar="PODIUM_DB")]
PolicyOption = Annotated[Path | None, typer.Option(
    "--policy", help="Access policy file, when no administrator's policy is installed "
    "(/etc/podium/policy.yaml or $PODIUM_HOME/policy.yaml, which are used if there).",
    envvar="PODIUM_POLICY")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the run record as JSON.")]

NO_POLICY = ("no access policy (--policy, $PODIUM_POLICY or $PODIUM_HOME/policy.yaml): "
             "every principal may do everything")


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: MESSAGE` on stderr; the `typer.Exit` to raise."""
    err.print(f"[red]error:[/red] {escape(message)}", markup=True, highlight=False)
    return typer.Exit(code)


def audit_db(db: str | None) -> Path | None:
    """The file the audit log shares with the journal `--db`: the journal's own when it is a
    SQLite file; with a PostgreSQL journal (or none given), the default file (the audit log
    stays local)."""
    from podium.store import is_url

    return None if db is None or is_url(db) else Path(db)


def sqlite_only(db: str | None, command: str) -> Path | None:
    """`--db` for a command that works on a SQLite journal file only.

    Raises:
        typer.Exit: `db` is a PostgreSQL URL (said in one line, exit 2).
    """
    from podium.store import is_url

    if is_url(db):
        raise fail(f"{command} needs a SQLite journal file; --db (or PODIUM_DB) names a "
                   "PostgreSQL server", 2)
    return Path(db) if db else None


@contextmanager
def acting(db: str | None, policy: Path | None) -> Iterator[Access]:
    """The access a command acts under, for the journal `--db` (None: the default one):
    who (the OS user, or whom `$PODIUM_PRINCIPAL` names if the policy lets it), under which
    policy (`--policy`, or the administrator's), audited where (the journal's audit log).
    The same for every command (`podium.server.access.open_access`)."""
    from podium.server.access import open_access

    with open_access(audit_db(db), policy) as access:
        yield access


def engine_for(access: Access, store: Store) -> Engine:
    """An engine on `store` that checks against the access policy and writes to the audit
    log."""
    from podium.engine.runtime import Engine

    return Engine(store, policy=access.policy, audit=access.audit)


class _Terminated(Exception):
    """SIGTERM arrived while a command ran."""


def run_async(make: Callable[[Store], Coroutine[Any, Any, T]], db: str | None) -> T:
    """Run a command's coroutine against the journal `--db`. Ctrl-C and SIGTERM cancel it:
    runs in flight stop where they stand (their journal intact, resumable) and the process
    exits 130 or 143, without waiting for agents that cannot be stopped."""
    import asyncio
    import signal

    from podium.engine.executors.local import DaemonExecutor
    from podium.store import open_store

    done: list[T] = []

    async def main() -> None:
        store = open_store(db)
        me, loop = asyncio.current_task(), asyncio.get_running_loop()
        terminated: list[bool] = []

        def terminate() -> None:
            terminated.append(True)
            if me is not None:
                me.cancel()

        loop.add_signal_handler(signal.SIGTERM, terminate)
        # Blocking calls run in threads the process never waits for at its end.
        loop.set_default_executor(DaemonExecutor())
        try:
            # Kept out of the task's result: asyncio.run formats the task as it ends (to
            # compare signal handlers), and with it the result, a run of any size.
            done.append(await make(store))
        except asyncio.CancelledError:
            if terminated:
                raise _Terminated from None
            raise
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            await store.close()

    hint = "the journal keeps everything done so far. Continue with: podium resume RUN " \
           "(see podium runs list)"
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        err.print(f"interrupted; {hint}")
        raise typer.Exit(130) from None
    except _Terminated:
        err.print(f"terminated; {hint}")
        raise typer.Exit(143) from None
    return done[0]
