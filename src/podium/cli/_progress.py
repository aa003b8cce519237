"""A run as the terminal shows it: live progress on stderr while it goes (a line per
event, a model's reply streaming in dimmed), then its summary (the result on stdout)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from podium.cli._context import context_summary
from podium.cli._plan import plan_progress
from podium.cli._shared import err, out

if TYPE_CHECKING:
    from podium.core.events import Event
    from podium.core.state import RunState

_MARKS = {"task_completed": "[green]✓[/green]", "task_failed": "[red]✗[/red]",
          "task_skipped": "[dim]↷[/dim]", "task_waiting": "[yellow]⏸[/yellow]",
          "attempt_failed": "[yellow]![/yellow]", "agent_skipped": "[yellow]⊘[/yellow]"}


_mid_line: list[str] = []
"""The task whose streamed text the last line of stderr is in the middle of, if any."""


def end_stream() -> None:
    """End the line of streamed text stderr is in the middle of, if any."""
    if _mid_line:
        _mid_line.clear()
        err.print()


def say(*args: Any, **kwargs: Any) -> None:
    """Print a progress line, first ending any line of streamed text."""
    end_stream()
    err.print(*args, **kwargs)


def token(task: str, text: str) -> None:
    """Show a piece of a model's reply as it streams in, dimmed, after `✎ TASK: `."""
    if _mid_line != [task]:
        end_stream()
        err.print(f"  [dim]✎ {task}:[/dim] ", end="", markup=True, highlight=False)
        _mid_line.append(task)
    err.print(text, end="", style="dim", markup=False, highlight=False)
    err.file.flush()


def progress(event: Event, state: RunState) -> None:
    """The progress line of an event, if it has one (an engine's `on_event`)."""
    d, key = event.data, event.task or ""
    match event.type:
        case "run_started":
            say(f"[bold]run {event.run_id}[/bold] · {d['workflow']}", markup=True)
        case "task_routed":
            from podium.engine.router import describe_routing

            said = escape(describe_routing(d)[0])
            say(f"  [dim]⇢ {key} {said}[/dim]", markup=True, highlight=False)
        case "task_started":
            attempt = f" (attempt {d['attempt']})" if d["attempt"] > 1 else ""
            say(f"  [dim]…[/dim] {key} → {d['agent']}{attempt}", markup=True)
        case "task_completed":
            ts = state.tasks[key]
            took = (f" {ts.finished_at - ts.started_at:.2f}s"
                    if ts.started_at and ts.finished_at else "")
            note = " [yellow](default used)[/yellow]" if d.get("defaulted") else ""
            say(f"  {_MARKS[event.type]} {key}{took}{note}", markup=True)
        case "attempt_failed":
            after = {"retry": f"retry in {d.get('delay', 0)}s", "fallback": "falling back",
                     "escalate": "escalating to a human", "default": "using the default",
                     "fail": "giving up", "ask_again": "asking again"}[d["decision"]]
            say(f"  {_MARKS[event.type]} {key} by {d['agent']}: {d['error']} → {after}",
                markup=True, highlight=False)
        case "agent_skipped":
            say(f"  {_MARKS[event.type]} {key}: {d['agent']} skipped ({escape(str(d['reason']))})",
                markup=True)
        case "task_waiting":
            say(f"  {_MARKS[event.type]} {key} waits for a human: {escape(str(d.get('prompt')))}",
                markup=True, highlight=False)
        case "task_failed" | "task_skipped":
            why = d.get("error") or d.get("reason") or ""
            say(f"  {_MARKS[event.type]} {key}: {escape(str(why))}", markup=True,
                highlight=False)
        case "tool_call":
            outcome = f"error: {d['error']}" if d.get("error") else f"→ {short(d.get('result'))}"
            say(f"  [dim]· {key}: tool {d.get('name')}({short(d.get('arguments'))}) "
                f"{outcome}[/dim]", markup=True, highlight=False)
        case "context_assembled" if d.get("dropped"):
            say(f"  [dim]· {key}: {context_summary(d)}[/dim]", markup=True, highlight=False)
        case "model_call":
            say(f"  [dim]· {key}: {d.get('model')} {d.get('input_tokens')}→"
                f"{d.get('output_tokens')} tokens[/dim]", markup=True)
        case _:
            _say_plan(event)


def _say_plan(event: Event) -> None:
    line = plan_progress(event)
    if line is not None:
        say(line, markup=True, highlight=False)


def summary(state: RunState) -> None:
    """How a run ended, on stderr, and its last output on stdout."""
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


def short(value: Any, limit: int = 80) -> str:
    """A value in one line of at most `limit` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                            default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"

