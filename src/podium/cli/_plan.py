"""How the `podium` command shows a run's plan: progress lines and `podium runs show`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape

if TYPE_CHECKING:
    from podium.core.events import Event


def plan_progress(event: Event) -> str | None:
    """One progress line for a plan event; None for any other event."""
    if event.type not in ("plan_created", "plan_invalid", "plan_extended"):
        return None
    d = event.data
    if event.type == "plan_invalid":
        problems = escape("; ".join(d.get("problems", [])))
        return f"  [yellow]![/yellow] plan attempt {d.get('attempt')} fails its check: {problems}"
    ids = escape(", ".join(str(t.get("id", "?")) for t in d.get("tasks", [])))
    if event.type == "plan_extended":
        return f"  [cyan]+[/cyan] {event.task} adds subtasks (plan v{d.get('version')}): {ids}"
    return f"  [cyan]☰[/cyan] plan v{d.get('version')} ({d.get('reason')}): {ids}"


def plan_lines(record: dict[str, Any]) -> list[str]:
    """The plan in effect and its history, for `podium runs show`."""
    plan = record.get("plan")
    if not plan:
        return []
    lines = []
    if plan.get("tasks") is not None:
        lines.append(f"plan v{plan.get('version')}"
                     + (f" for: {plan['goal']}" if plan.get("goal") else ""))
        for i, task in enumerate(plan["tasks"], start=1):
            needs = f" after {', '.join(task['needs'])}" if task.get("needs") else ""
            lines.append(f"  {i}. {task['id']} [{task['skill']}]{needs}")
    for h in plan.get("history", []):
        if "invalid" in h:
            lines.append(f"  · {h.get('reason')} attempt {h['invalid']} failed its check: "
                         + "; ".join(h.get("problems", [])))
        else:
            by = f" by {h['by']}" if h.get("by") else ""
            dropped = f", dropped {', '.join(h['dropped'])}" if h.get("dropped") else ""
            lines.append(f"  · v{h['version']} ({h['reason']}{by}): "
                         f"{', '.join(h.get('tasks', []))}{dropped}")
    for task in plan.get("superseded", []):
        lines.append(f"  · superseded {task['id']} ({task['status']} by {task['agent']}): "
                     f"{task.get('error') or ''}")
    return lines

