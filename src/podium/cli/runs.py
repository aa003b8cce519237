"""`podium runs list|show`: the runs in the journal, and everything about one of them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from podium.cli._context import context_lines, session_lines
from podium.cli._json import print_record
from podium.cli._plan import plan_lines
from podium.cli._progress import short
from podium.cli._shared import (
    DbOption,
    JsonOption,
    PolicyOption,
    acting,
    engine_for,
    err,
    out,
    run_async,
)
from podium.cli.keys import unencrypted_notice

if TYPE_CHECKING:
    from podium.core.state import RunState
    from podium.store.base import Store

app = typer.Typer(no_args_is_help=True, help="Look at runs in the journal.")


@app.command("list")
def runs_list(
    as_json: JsonOption = False,
    db: DbOption = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    policy: PolicyOption = None,
) -> None:
    """Runs with their status, start and duration (those of workflows you may view)."""
    from rich.table import Table

    from podium.core.state import iso

    async def go(store: Store) -> list[dict[str, Any]]:
        with acting(db, policy) as access:
            found = await engine_for(access, store).runs(principal=access.principal,
                                                         limit=limit, status=status)
        return [{
            "run_id": r.run_id, "workflow": r.workflow, "status": r.status,
            "started_at": iso(r.started_at), "finished_at": iso(r.finished_at),
            "duration": round((r.finished_at or r.updated_at) - r.started_at, 6),
            "events": r.events,
        } for r in found]

    rows = run_async(go, db)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("run", "workflow", "status", "started", "duration")
    for r in rows:
        table.add_row(r["run_id"], r["workflow"], r["status"], r["started_at"],
                      f"{r['duration']:.2f}s")
    out.print(table)


@app.command("show")
def runs_show(
    run: Annotated[str, typer.Argument(help="Run id (or its unique start).")],
    as_json: JsonOption = False,
    db: DbOption = None,
    policy: PolicyOption = None,
) -> None:
    """Every task of a run: agent, status, attempts, duration, error, tokens."""
    from rich.table import Table

    notice: list[str | None] = []

    async def go(store: Store) -> RunState:
        notice.append(unencrypted_notice(store, store.location))
        with acting(db, policy) as access:
            return await engine_for(access, store).view(
                await store.find_run(run), principal=access.principal, lean=as_json)

    state = run_async(go, db)
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
            from podium.engine.router import describe_routing

            for line in describe_routing(task["routing"]):
                out.print(f"  {task['id']} · routed {line}", markup=False)
        decisions = [h for h in task["history"] if "decision" in h or "skipped" in h]
        for h in decisions:
            what = h.get("decision") or f"skipped: {h.get('skipped')}"
            out.print(f"  {task['id']} · attempt {h.get('attempt', '-')} by "
                      f"{h.get('agent', '-')}: {h.get('error', '')} → {what}", markup=False)
        for call in task.get("calls", []):
            shown = " ".join(short(call.get("output")).split())
            out.print(f"  {task['id']} · agent {call.get('agent')} → {shown}", markup=False)
        _show(context_lines(task))
        for call in task.get("tool_calls", []):
            outcome = (f"error: {call['error']}" if call.get("error")
                       else f"→ {short(call.get('result'))}")
            out.print(f"  {task['id']} · tool {call.get('name')}({short(call.get('arguments'))})"
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

