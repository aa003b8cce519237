"""The `podium` command.

Exit status: 0 completed, 1 failed (or cancelled, or the journal could not be written),
2 invalid input or workflow, 3 waiting for a human, 130 interrupted (Ctrl-C), 143
terminated (SIGTERM). Errors are mapped to their message and status in one place, `main`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from podium._cli_access import NO_POLICY, PolicyOption, acting, open_access
from podium._cli_json import print_record
from podium._cli_plan import plan_lines, plan_progress
from podium._yaml import MAX_DEPTH
from podium.agents._context_show import context_lines, context_summary, session_lines
from podium.agents._isolate import DaemonExecutor
from podium.config import database_path
from podium.core.events import Event
from podium.core.principal import Principal
from podium.core.state import RunState, iso
from podium.engine._inputs import unfit
from podium.engine._policies import describe
from podium.engine.loader import load_workflow
from podium.engine.runtime import Engine
from podium.errors import PodiumError, PolicyFileError, RunBusy, UserError, WorkflowError
from podium.memory._cli import app as memory_app
from podium.memory._cli import memory_for
from podium.models.pricing import check_prices
from podium.security._keys_cli import keys_app, unencrypted_notice
from podium.security._tokens_cli import tokens_app
from podium.security.rbac import Policy
from podium.store._open import is_url, open_store
from podium.store.base import Store

T = TypeVar("T")
EXIT = {"completed": 0, "failed": 1, "cancelled": 1, "waiting": 3, "running": 1}


class _Commands(TyperGroup):
    """The top command group: an error any command raises is reported here (`_report`),
    as one line and an exit status, whoever invokes the app (the console script, a test's
    CliRunner, a program embedding it), never as a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's own click Context, not public
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as e:
            raise typer.Exit(_report(e)) from None


app = typer.Typer(cls=_Commands, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False,
                  help="Podium: durable orchestration of AI agents, models and tools.")
runs_app = typer.Typer(no_args_is_help=True, help="Look at runs in the journal.")
app.add_typer(runs_app, name="runs")
app.add_typer(keys_app, name="keys")
app.add_typer(memory_app, name="memory")
app.add_typer(tokens_app, name="tokens")
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
out = Console(highlight=False, soft_wrap=True, markup=False)

DbOption = Annotated[str | None, typer.Option(
    "--db", help="Journal: a SQLite file (default: $PODIUM_HOME/podium.db or the user data "
    "folder) or a postgresql://USER:PASSWORD@HOST/DB URL.", envvar="PODIUM_DB")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the run record as JSON.")]


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", markup=True, highlight=False)
    return typer.Exit(code)


def _sqlite_only(db: str | None, command: str) -> Path | None:
    """`--db` for a command that works on a SQLite file only."""
    if is_url(db):
        raise _fail(f"{command} needs a SQLite journal file; --db (or PODIUM_DB) names a "
                    "PostgreSQL server", 2)
    return Path(db) if db else None


def _audit_db(db: str | None) -> Path | None:
    """The file the audit log shares with the journal: the journal's own when it is a SQLite
    file; with a PostgreSQL journal, the default file (the audit log stays local)."""
    return None if db is None or is_url(db) else Path(db)


class _Terminated(Exception):
    """SIGTERM arrived while a command ran."""


def _run_async(make: Callable[[Store], Coroutine[Any, Any, T]], db: str | None) -> T:
    """Run a command's coroutine against the journal. Ctrl-C and SIGTERM cancel it: runs
    in flight stop where they stand (their journal intact, resumable) and the process
    exits 130 or 143, without waiting for agents that cannot be stopped."""

    async def main() -> T:
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
            return await make(store)
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
        return asyncio.run(main())
    except KeyboardInterrupt:
        err.print(f"interrupted; {hint}")
        raise typer.Exit(130) from None
    except _Terminated:
        err.print(f"terminated; {hint}")
        raise typer.Exit(143) from None


# -- progress -----------------------------------------------------------------------------

_MARKS = {"task_completed": "[green]✓[/green]", "task_failed": "[red]✗[/red]",
          "task_skipped": "[dim]↷[/dim]", "task_waiting": "[yellow]⏸[/yellow]",
          "attempt_failed": "[yellow]![/yellow]", "agent_skipped": "[yellow]⊘[/yellow]"}


_mid_line: list[str] = []
"""The task whose streamed text the last line of stderr is in the middle of, if any."""


def _end_stream() -> None:
    if _mid_line:
        _mid_line.clear()
        err.print()


def _say(*args: Any, **kwargs: Any) -> None:
    """Print a progress line, first ending any line of streamed text."""
    _end_stream()
    err.print(*args, **kwargs)


def _token(task: str, text: str) -> None:
    """Show a piece of a model's reply as it streams in, dimmed, after `✎ TASK: `."""
    if _mid_line != [task]:
        _end_stream()
        err.print(f"  [dim]✎ {task}:[/dim] ", end="", markup=True, highlight=False)
        _mid_line.append(task)
    err.print(text, end="", style="dim", markup=False, highlight=False)
    err.file.flush()


def _progress(event: Event, state: RunState) -> None:
    d, key = event.data, event.task or ""
    match event.type:
        case "run_started":
            _say(f"[bold]run {event.run_id}[/bold] · {d['workflow']}", markup=True)
        case "task_routed":
            from podium.engine.router import describe

            _say(f"  [dim]⇢ {key} {escape(describe(d)[0])}[/dim]", markup=True, highlight=False)
        case "task_started":
            attempt = f" (attempt {d['attempt']})" if d["attempt"] > 1 else ""
            _say(f"  [dim]…[/dim] {key} → {d['agent']}{attempt}", markup=True)
        case "task_completed":
            ts = state.tasks[key]
            took = (f" {ts.finished_at - ts.started_at:.2f}s"
                    if ts.started_at and ts.finished_at else "")
            note = " [yellow](default used)[/yellow]" if d.get("defaulted") else ""
            _say(f"  {_MARKS[event.type]} {key}{took}{note}", markup=True)
        case "attempt_failed":
            after = {"retry": f"retry in {d.get('delay', 0)}s", "fallback": "falling back",
                     "escalate": "escalating to a human", "default": "using the default",
                     "fail": "giving up", "ask_again": "asking again"}[d["decision"]]
            _say(f"  {_MARKS[event.type]} {key} by {d['agent']}: {d['error']} → {after}",
                      markup=True, highlight=False)
        case "agent_skipped":
            _say(f"  {_MARKS[event.type]} {key}: {d['agent']} skipped ({escape(str(d['reason']))})",
                      markup=True)
        case "task_waiting":
            _say(f"  {_MARKS[event.type]} {key} waits for a human: {escape(str(d.get('prompt')))}",
                      markup=True, highlight=False)
        case "task_failed" | "task_skipped":
            why = d.get("error") or d.get("reason") or ""
            _say(f"  {_MARKS[event.type]} {key}: {escape(str(why))}", markup=True,
                 highlight=False)
        case "tool_call":
            outcome = f"error: {d['error']}" if d.get("error") else f"→ {_short(d.get('result'))}"
            _say(f"  [dim]· {key}: tool {d.get('name')}({_short(d.get('arguments'))}) "
                      f"{outcome}[/dim]", markup=True, highlight=False)
        case "context_assembled" if d.get("dropped"):
            _say(f"  [dim]· {key}: {context_summary(d)}[/dim]", markup=True, highlight=False)
        case "model_call":
            _say(f"  [dim]· {key}: {d.get('model')} {d.get('input_tokens')}→"
                      f"{d.get('output_tokens')} tokens[/dim]", markup=True)
        case _:
            _say_plan(event)


def _say_plan(event: Event) -> None:
    line = plan_progress(event)
    if line is not None:
        _say(line, markup=True, highlight=False)


def _finish(state: RunState, as_json: bool) -> None:
    _end_stream()
    if as_json:
        print_record(state)
    else:
        _summary(state)
    raise typer.Exit(EXIT[state.status])


def _summary(state: RunState) -> None:
    colour = {"completed": "green", "failed": "red", "waiting": "yellow"}.get(state.status, "")
    err.print(f"[bold {colour}]{state.status}[/bold {colour}] · run {state.run_id}",
              markup=True)
    if state.status == "completed":
        outputs = state.outputs()
        last = list(outputs)[-1] if outputs else None
        if last is not None:
            value = outputs[last]
            out.print(value if isinstance(value, str) else json.dumps(value, indent=2,
                                                                      ensure_ascii=False))
    elif state.status == "failed":
        err.print(f"  {state.error}", highlight=False)
        err.print(f"  details: podium runs show {state.run_id}")
    elif state.status == "waiting":
        for task in state.waiting():
            err.print(f"  {task.key}: {task.prompt}", highlight=False)
            err.print(f"    podium approve {state.run_id} {task.key} [--data JSON]"
                      f"   |   podium reject {state.run_id} {task.key} [--reason TEXT]")


def _parse_inputs(pairs: list[str]) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise _fail(f"-i {pair!r}: write inputs as NAME=VALUE", 2)
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


# -- commands -----------------------------------------------------------------------------


@app.command()
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
    values = _parse_inputs(inputs or [])
    interactive = not (as_json or no_input) and sys.stdin.isatty()

    async def go(store: Store) -> RunState:
        with open_access(_audit_db(db), policy) as access:
            workflow = load_workflow(file, policy=access.policy)
            check_prices()  # a broken price file fails now, not after a model was paid for
            if notice := unencrypted_notice(store, store.location):
                err.print(notice, markup=False)
            if access.policy is None:
                err.print(f"[dim]note: {NO_POLICY}[/dim]", markup=True, highlight=False)
            engine, me = access.engine(store), access.principal
            engine.memory = memory_for(workflow)
            hook, tokens = (None, None) if as_json else (_progress, _token)
            state = await engine.start(workflow, values, run_id=run_id, on_event=hook,
                                       on_token=tokens, principal=me,
                                       session=session)
            while interactive and state.status == "waiting" and await _ask(state, engine, me):
                state = await engine.resume(workflow, state.run_id, on_event=hook,
                                            on_token=tokens, principal=me)
            return state

    _finish(_run_async(go, db), as_json)


@app.command()
def resume(
    run: Annotated[str, typer.Argument(help="Run id (or its unique start).")],
    as_json: JsonOption = False,
    db: DbOption = None,
    policy: PolicyOption = None,
) -> None:
    """Continue an interrupted run; completed tasks are not run again."""

    async def go(store: Store) -> RunState:
        with open_access(_audit_db(db), policy) as access:
            return await _resume(access.engine(store), await store.find_run(run), as_json,
                                 access.principal, access.policy)

    _finish(_run_async(go, db), as_json)


async def _resume(engine: Engine, run_id: str, as_json: bool, principal: Principal | None,
                  policy: Policy | None) -> RunState:
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
    return await engine.resume(workflow, run_id, on_event=None if as_json else _progress,
                               on_token=None if as_json else _token, principal=principal)


def _answer(run: str, task: str, as_json: bool, db: str | None, approve: bool,
            payload: Any, policy: Path | None) -> None:
    async def go(store: Store) -> RunState:
        run_id = await store.find_run(run)
        with open_access(_audit_db(db), policy) as access:
            engine, me = access.engine(store), access.principal
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

    state = _run_async(go, db)
    if state.status == "running":
        if as_json:
            print_record(state)
        raise typer.Exit(0)
    _finish(state, as_json)


@app.command()
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
    payload: Any = {"approved": True}
    if data is not None:
        try:
            payload = json.loads(data)
        except json.JSONDecodeError as e:
            raise _fail(f"--data is not valid JSON: {e.msg} at char {e.pos}", 2) from None
        except RecursionError:  # the decoder recurses once per level
            raise UserError(f"--data is nested more than {MAX_DEPTH} levels deep") from None
        if (why := unfit(payload)) is not None:
            raise UserError(f"--data {why}")
    _answer(run, task, as_json, db, True, payload, policy)


@app.command()
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


@app.command()
def cancel(
    run: Annotated[str, typer.Argument(help="Run id (or its unique start).")],
    reason: Annotated[str, typer.Option(help="Why; recorded in the journal.")] = "",
    as_json: JsonOption = False,
    db: DbOption = None,
    policy: PolicyOption = None,
) -> None:
    """Cancel a run: at once if it waits; a process executing it stops at its next step."""

    async def go(store: Store) -> RunState:
        with open_access(_audit_db(db), policy) as access:
            return await access.engine(store).cancel(await store.find_run(run), reason,
                                                     principal=access.principal)

    state = _run_async(go, db)
    if as_json:
        print_record(state)
    else:
        err.print(f"[bold]cancelled[/bold] · run {state.run_id}", markup=True)
        if state.tasks and any(t.status == "running" for t in state.tasks.values()):
            err.print("  a process executing it stops at its next step; what it was doing "
                      "may still finish", highlight=False)


@app.command()
def validate(file: Annotated[Path, typer.Argument(help="Workflow YAML file.")],
             policy: PolicyOption = None) -> None:
    """Check a workflow without running it; prints every problem found."""
    with open_access(None, policy) as access:
        workflow = load_workflow(file, policy=access.policy)
    from podium.engine._tool_check import check_tools

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


@app.command()
def agents(
    path: Annotated[Path | None, typer.Argument(
        help="A registry file or folder, or a workflow file (default: ./agents/).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the agents as JSON.")
                       ] = False,
    policy: PolicyOption = None,
) -> None:
    """List agents: name, skills, cost and latency hints, description."""
    from podium.engine._agents_cli import agents_command

    with acting(None, policy) as access:
        code = agents_command(path, as_json, access.policy)
    raise typer.Exit(code)


@runs_app.command("list")
def runs_list(
    as_json: JsonOption = False,
    db: DbOption = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    policy: PolicyOption = None,
) -> None:
    """Runs with their status, start and duration (those of workflows you may view)."""

    async def go(store: Store) -> list[dict[str, Any]]:
        with open_access(_audit_db(db), policy) as access:
            found = await access.engine(store).runs(principal=access.principal, limit=limit,
                                                    status=status)
        return [{
            "run_id": r.run_id, "workflow": r.workflow, "status": r.status,
            "started_at": iso(r.started_at), "finished_at": iso(r.finished_at),
            "duration": round((r.finished_at or r.updated_at) - r.started_at, 6),
            "events": r.events,
        } for r in found]

    rows = _run_async(go, db)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("run", "workflow", "status", "started", "duration")
    for r in rows:
        table.add_row(r["run_id"], r["workflow"], r["status"], r["started_at"],
                      f"{r['duration']:.2f}s")
    out.print(table)


@runs_app.command("show")
def runs_show(
    run: Annotated[str, typer.Argument(help="Run id (or its unique start).")],
    as_json: JsonOption = False,
    db: DbOption = None,
    policy: PolicyOption = None,
) -> None:
    """Every task of a run: agent, status, attempts, duration, error, tokens."""

    notice: list[str | None] = []

    async def go(store: Store) -> RunState:
        notice.append(unencrypted_notice(store, store.location))
        with open_access(_audit_db(db), policy) as access:
            return await access.engine(store).view(await store.find_run(run),
                                                   principal=access.principal)

    state = _run_async(go, db)
    if as_json:
        print_record(state)
        return
    record = state.record()
    out.print(f"[bold]run {state.run_id}[/bold] · {state.workflow} · {state.status}"
              f" · {record['duration']}s · tokens {record['tokens']['input']}→"
              f"{record['tokens']['output']} · ${record['tokens']['cost_usd']:.4f}",
              markup=True)
    if state.error:
        out.print(f"error: {state.error}", markup=False)
    if notice[0]:
        err.print(notice[0], markup=False)
    _show(session_lines(record))
    table = Table("task", "agent", "status", "attempts", "duration", "tokens", "error")
    for task in record["tasks"]:
        duration = "" if task["duration"] is None else f"{task['duration']:.3f}s"
        tokens = task["tokens"]
        status = task["status"] + (" (default)" if task["defaulted"] else "")
        table.add_row(task["id"], task["agent"] or "", status, str(task["attempts"]),
                      duration, _tokens(tokens), task["error"] or "")
    out.print(table)
    _show(plan_lines(record))
    for task in record["tasks"]:
        if task.get("routing"):
            from podium.engine.router import describe

            for line in describe(task["routing"]):
                out.print(f"  {task['id']} · routed {line}", markup=False)
        decisions = [h for h in task["history"] if "decision" in h or "skipped" in h]
        for h in decisions:
            what = h.get("decision") or f"skipped: {h.get('skipped')}"
            out.print(f"  {task['id']} · attempt {h.get('attempt', '-')} by "
                      f"{h.get('agent', '-')}: {h.get('error', '')} → {what}", markup=False)
        for call in task.get("calls", []):
            shown = " ".join(_short(call.get("output")).split())
            out.print(f"  {task['id']} · agent {call.get('agent')} → {shown}", markup=False)
        _show(context_lines(task))
        for call in task.get("tool_calls", []):
            outcome = (f"error: {call['error']}" if call.get("error")
                       else f"→ {_short(call.get('result'))}")
            out.print(f"  {task['id']} · tool {call.get('name')}({_short(call.get('arguments'))})"
                      f" {outcome} · {call.get('duration_ms', 0):.1f}ms", markup=False)


def _show(lines: list[str]) -> None:
    for line in lines:
        out.print(line, markup=False, highlight=False)


def _tokens(tokens: dict[str, Any]) -> str:
    if not tokens["calls"]:
        return ""
    notes = [f"{tokens[k]} {k}" for k in ("repairs", "cached") if tokens.get(k)]
    if tokens.get("cost_usd"):
        notes.insert(0, f"${tokens['cost_usd']:.4f}")
    return f"{tokens['input']}→{tokens['output']}" + (f" ({', '.join(notes)})" if notes else "")


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                            default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    db: DbOption = None,
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", help="Pinned Ed25519 public key (PEM) the heads must be signed with.")
    ] = None,
    policy: PolicyOption = None,
) -> None:
    """Check the audit chain and its signed heads; exit 1 if anything was tampered with."""
    from podium.security._audit_cli import audit_verify_command, log_path

    with acting(_audit_db(db), policy) as access:
        access.check("audit:verify", str(log_path(_audit_db(db))))
    raise typer.Exit(audit_verify_command(_audit_db(db), public_key))


@audit_app.command("export")
def audit_export(
    db: DbOption = None,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="JSON-lines file (default: standard output).")] = None,
    policy: PolicyOption = None,
) -> None:
    """Write the audit log as JSON lines for a SIEM."""
    from podium.security._audit_cli import audit_export_command, log_path

    with acting(_audit_db(db), policy) as access:
        access.check("audit:export", str(log_path(_audit_db(db))))
    raise typer.Exit(audit_export_command(_audit_db(db), out_file))


mcp_app = typer.Typer(no_args_is_help=True, help="Model Context Protocol: serve workflows.")
app.add_typer(mcp_app, name="mcp")


@mcp_app.command("serve")
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
    from podium.tools.mcp_serve import serve

    journal = _sqlite_only(db, "podium mcp serve") or database_path()
    try:
        with acting(journal, policy) as access:
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


def _report(error: BaseException) -> int:
    """Say what went wrong in one line per problem, and return the exit status: 2 for a
    mistake in what was asked (a workflow, an input, a policy, a run id), 1 for a run or
    the journal that could not go on."""
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
    err.print(f"[red]error:[/red] {escape(describe(error))} (a fault in Podium; "
              "PODIUM_DEBUG=1 shows where)", markup=True, highlight=False)
    return 1


def main() -> None:
    """Entry point of the `podium` console script. A command's errors are reported by the
    command group (`_Commands`); what is raised outside any command is reported here the
    same way (`_report`), never as a traceback."""
    try:
        app()
    except Exception as e:
        sys.exit(_report(e))
