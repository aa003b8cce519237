"""How `podium runs show` and the run's progress describe an assembled prompt."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_SHOWN = 10
"""Dropped entries listed per prompt; the rest are counted."""


def context_summary(data: Mapping[str, Any]) -> str:
    """One line: the prompt's size against its budget and each section's fate."""
    how = "tokenizer" if data.get("counted") == "tokenizer" else "estimated"
    parts = [f"context {data.get('used')} of {data.get('budget')} tokens ({how})"]
    for name, s in (data.get("sections") or {}).items():
        fate = [f"{s[k]} {k}" for k in ("summarised", "truncated", "dropped") if s.get(k)]
        parts.append(f"{name} {s.get('kept')}/{s.get('entries')}"
                     + (f" ({', '.join(fate)})" if fate else ""))
    return " · ".join(parts)


def context_lines(task: Mapping[str, Any]) -> list[str]:
    """Lines for each prompt a task's agent assembled: its summary, then what was left out
    or cut, so a reader can see why the agent did not know something."""
    lines = []
    for data in task.get("context", ()):
        lines.append(f"  {task['id']} · {context_summary(data)}")
        dropped = data.get("dropped") or []
        for d in dropped[:_SHOWN]:
            kept = f", {d['kept_tokens']} kept" if d.get("how") == "truncated" else ""
            about = "~" if d.get("estimated") else ""
            lines.append(f"  {task['id']} ·   {d.get('how')} from {d.get('section')}: "
                         f"{d.get('item')} ({about}{d.get('tokens')} tokens{kept})")
        more = len(dropped) - _SHOWN + int(data.get("more_dropped") or 0)
        if more > 0:
            lines.append(f"  {task['id']} ·   … and {more} more")
    return lines


def session_lines(run: Mapping[str, Any]) -> list[str]:
    """A line naming the run's session and counting its shared notes, when it has either."""
    if not (run.get("session") or run.get("notes")):
        return []
    return [f"session {run.get('session') or '-'} · {len(run.get('notes') or ())} "
            "shared note(s)"]
