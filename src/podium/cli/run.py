"""`podium run|resume|approve|reject|cancel`: a run started, continued, answered or
cancelled, with its live progress on stderr and its result on stdout (`--json`: the run
record).

Exit status: 0 completed, 1 failed or cancelled, 3 waiting for a human (the errors' statuses
are `podium.cli._app.report`'s).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from podium.cli._json import print_record
from podium.cli._progress import end_stream, progress, summary, token
from podium.cli._shared import (
    NO_POLICY,
    DbOption,
    JsonOption,
    PolicyOption,
    acting,
    engine_for,
    err,
    fail,
    run_async,
)
from podium.cli.keys import unencrypted_notice
from podium.cli.memory import memory_for

if TYPE_CHECKING:
    from podium.core.principal import Principal
    from podium.core.state import RunState
    from podium.engine.runtime import Engine
    from podium.security.rbac import AccessPolicy
    from podium.store.base import Store

EXIT = {"completed": 0, "failed": 1, "cancelled": 1, "waiting": 3, "running": 1}


def _finish(state: RunState, as_json: bool) -> None:
    end_stream()
    if as_json:
        print_record(state)
    else:
        summary(state)
    raise typer.Exit(EXIT[state.status])


def _parse_inputs(pairs: list[str]) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise fail(f"-i {pair!r}: write inputs as NAME=VALUE", 2)
        inputs[name.strip()] = value
    return inputs


def _ask(state: RunState, engine: Engine, principal: Principal) -> Awaitable[bool]:
    """Ask the person at the terminal about each waiting task. Returns whether any answered."""

    async def ask() -> bool:
        answered = False
        for task in state.waiting():
            err.print(f"\n[bold]{task.key}[/bold]: {escape(str(task.prompt))}", markup=True,
                      highlight=False)
            answer = typer.prompt("approve? [y]es / [n]o / [l]ater", default="l").strip()
            if answer.lower().startswith("y"):
                await engine.approve(state.run_id, task.key, {"approved": True},
                                     principal=principal)
                answered = True
            elif answer.lower().startswith("n"):
                reason = typer.prompt("reason", default="")
                await engine.reject(state.run_id, task.key, reason, principal=principal)
                answered = True
        return answered

    return ask()


def run(
    file: Annotated[Path, typer.Argument(help="Workflow YAML file.")],
    inputs: Annotated[list[str] | None, typer.Option(
        "-i", "--input", help="An input as NAME=VALUE; repeat for more.")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
    run_id: Annotated[str | None, typer.Option(help="Use this run id.")] = None,
    no_input: Annotated[bool, typer.Option(
        "--no-input", help="Never prompt; a run waiting for a human exits with status 3.")
    ] = False,
    policy: PolicyOption = None,
    session: Annotated[str | None, typer.Option(
        "--session", help="Session id: runs of one session share a thread (docs/context.md).")
    ] = None,
) -> None:
    """Run a workflow: live progress, then the result."""
    from podium.models.pricing import check_prices
    from podium.yaml import load_workflow

    values = _parse_inputs(inputs or [])
    interactive = not (as_json or no_input) and sys.stdin.isatty()

    async def go(store: Store) -> RunState:
        with acting(db, policy) as access:
            workflow = load_workflow(file, policy=access.policy)
            check_prices()  # a broken price file fails now, not after a model was paid for
            if notice := unencrypted_notice(store, store.location):
                err.print(notice, markup=False)
            if access.policy is None:
                err.print(f"[dim]note: {NO_POLICY}[/dim]", markup=True, highlight=False)
            engine, me = engine_for(access, store), access.principal
            engine.memory = memory_for(workflow)
            hook, tokens = (None, None) if as_json else (progress, token)
            state = await engine.start(workflow, values, run_id=run_id, on_event=hook,
                                       on_token=tokens, principal=me,
                                       session=session)
            while interactive and state.status == "waiting" and await _ask(state, engine, me):
                state = await engine.resume(workflow, state.run_id, on_event=hook,
                                            on_token=tokens, principal=me)
            return state

    _finish(run_async(go, db), as_json)


def resume(
    run: Annotated[str, typer.Argument(help="Run id (or its unique start).")],
    as_json: JsonOption = False,
    db: DbOption = None,
    policy: PolicyOption = None,
) -> None:
    """Continue an interrupted run; completed tasks are not run again."""

    async def go(store: Store) -> RunState:
        with acting(db, policy) as access:
            return await _resume(engine_for(access, store), await store.find_run(run),
                                 as_json, access.principal, access.policy)

    _finish(run_async(go, db), as_json)


async def _resume(engine: Engine, run_id: str, as_json: bool, principal: Principal | None,
                  policy: AccessPolicy | None) -> RunState:
    from podium.errors import UserError
    from podium.yaml import load_workflow

    state = await engine.state(run_id)
    if state.status in ("completed", "failed", "cancelled"):
        return state
    if not state.source:
        raise UserError(f"run {run_id!r} was started from Python, not a file; resume it with "
                        "Engine.resume(workflow, run_id)")
    if state.cwd and os.path.isdir(state.cwd):  # noqa: ASYNC240 - once, before the run
        # Relative paths in the run's inputs and imports meant the folder it started in.
        os.chdir(state.cwd)
    workflow = load_workflow(state.source, policy=policy)
    engine.memory = memory_for(workflow)
    return await engine.resume(workflow, run_id, on_event=None if as_json else progress,
                               on_token=None if as_json else token, principal=principal)


def _answer(run: str, task: str, as_json: bool, db: str | None, approve: bool,
            payload: Any, policy: Path | None) -> None:
    from podium.errors import RunBusy

    async def go(store: Store) -> RunState:
        run_id = await store.find_run(run)
        with acting(db, policy) as access:
            engine, me = engine_for(access, store), access.principal
            if approve:
                await engine.approve(run_id, task, payload, principal=me)
            else:
                await engine.reject(run_id, task, payload, principal=me)
            try:
                # Going on after an answer needs only the permission to answer.
                return await _resume(engine, run_id, as_json, None, access.policy)
            except RunBusy as e:
                # The answer is journaled; the live owner acts on it before it waits or ends.
                err.print(f"recorded; {e}")
                return await engine.state(run_id)

    state = run_async(go, db)
    if state.status == "running":
        if as_json:
            print_record(state)
        raise typer.Exit(0)
    _finish(state, as_json)


def approve(
    run: Annotated[str, typer.Argument(help="Run id.")],
    task: Annotated[str, typer.Argument(help="The waiting task.")],
    data: Annotated[str | None, typer.Option(help="JSON that becomes the task's output.")
                    ] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
    policy: PolicyOption = None,
) -> None:
    """Approve a task waiting for a human, and continue the run."""
    from podium.core.inputs import MAX_DEPTH, unfit
    from podium.errors import UserError

    payload: Any = {"approved": True}
    if data is not None:
        try:
            payload = json.loads(data)
        except json.JSONDecodeError as e:
            raise fail(f"--data is not valid JSON: {e.msg} at char {e.pos}", 2) from None
        except RecursionError:  # the decoder recurses once per level
            raise UserError(f"--data is nested more than {MAX_DEPTH} levels deep") from None
        if (why := unfit(payload)) is not None:
            raise UserError(f"--data {why}")
    _answer(run, task, as_json, db, True, payload, policy)


def reject(
    run: Annotated[str, typer.Argument(help="Run id.")],
    task: Annotated[str, typer.Argument(help="The waiting task.")],
    reason: Annotated[str, typer.Option(help="Why; recorded in the journal.")] = "",
    as_json: JsonOption = False,
    db: DbOption = None,
    policy: PolicyOption = None,
) -> None:
    """Reject a task waiting for a human; its policy decides what follows."""
    _answer(run, task, as_json, db, False, reason, policy)


def cancel(
    run: Annotated[str, typer.Argument(help="Run id (or its unique start).")],
    reason: Annotated[str, typer.Option(help="Why; recorded in the journal.")] = "",
    as_json: JsonOption = False,
    db: DbOption = None,
    policy: PolicyOption = None,
) -> None:
    """Cancel a run: at once if it waits; a process executing it stops at its next step."""

    async def go(store: Store) -> RunState:
        with acting(db, policy) as access:
            return await engine_for(access, store).cancel(await store.find_run(run), reason,
                                                          principal=access.principal)

    state = run_async(go, db)
    if as_json:
        print_record(state)
    else:
        err.print(f"[bold]cancelled[/bold] · run {state.run_id}", markup=True)
        if state.tasks and any(t.status == "running" for t in state.tasks.values()):
            err.print("  a process executing it stops at its next step; what it was doing "
                      "may still finish", highlight=False)
