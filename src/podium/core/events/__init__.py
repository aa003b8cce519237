"""Journal events: every state change of a run, in the order it happened.

A task's key is its id, or `id[i]` for item `i` of a `for_each` task.

| type | task | data |
| --- | --- | --- |
| run_started | | workflow, version, source, inputs, pid, principal (id, kind, roles), session |
| run_resumed | | pid |
| task_routed | key | agent (None: nothing fits), by, why, candidates, filtered, model, error |
| task_started | key | agent, attempt, idempotency_key |
| attempt_failed | key | agent, attempt, error, error_type, decision, delay |
| agent_skipped | key | agent, reason |
| model_call | key | model, input_tokens, output_tokens, latency_ms |
| tool_call | key | name, arguments, result or error, duration_ms; refused, reason, rejected_by |
| step_completed | key | index, kind, name, result, scope (replayed after a crash) |
| note_added | key | text (a shared note any later prompt may include), untrusted |
| context_assembled | key | agent, budget, counted, used, sections, dropped |
| memory_recalled | key | namespace, ids, scores, trust, top_k, trusted_only (no texts) |
| output_checked | key | check, passed, claims (kind, text, where), error, ms, repair |
| fanout_started | id | count |
| task_waiting | key | prompt, reason, error; tool_call (reason `tool_approval`) |
| task_approved | key | data, by |
| task_rejected | key | reason, by |
| task_completed | key | output, agent, defaulted, untrusted (the sources the output derives from) |
| task_skipped | key | reason |
| task_failed | key | error, error_type |
| plan_invalid | | attempt, reason, problems, reply (a plan that failed its check) |
| plan_created | | version, reason, goal, tasks (every planned task in effect), dropped |
| plan_extended | key | version, tasks (subtasks the task returned, added to the plan) |
| run_waiting | | tasks |
| run_completed | | |
| run_failed | | error, reason |
| run_cancelled | | reason (`cancelled`), error, by, was (the status it had) |

A `step_completed` of kind `agent` is a sub-agent call a pattern's composite agent made
(`name` is the sub-agent); `scope` places steps taken inside another step (`/3`).

`decision` on a failed attempt is what the policy did next: `retry`, `fallback`, `escalate`,
`default` or `fail`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventType = Literal[
    "run_started", "run_resumed", "task_routed", "task_started", "attempt_failed", "agent_skipped",
    "model_call", "tool_call", "step_completed", "note_added", "context_assembled",
    "memory_recalled", "output_checked",
    "fanout_started", "task_waiting",
    "task_approved", "task_rejected",
    "task_completed", "task_skipped", "task_failed", "run_waiting", "run_completed",
    "run_failed", "run_cancelled", "plan_invalid", "plan_created", "plan_extended",
]
ERASED = "_erased"
"""The one key of a payload whose data key was shredded: `{"_erased": "run"}` or
`{"_erased": "subject"}` (see `Store.shred_run`, `Store.shred_subject`)."""
RUN_ENDS = frozenset({"run_completed", "run_failed", "run_cancelled"})


@dataclass(frozen=True, kw_only=True, slots=True)
class NewEvent:
    """An event not yet appended: the journal gives it its sequence number and time."""

    type: EventType
    task: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    subject: str | None = None
    """The data subject (a person, by a pseudonymous id) the payload is about: with
    encryption at rest, it is sealed under that subject's key, so that erasing the subject
    (`Store.shred_subject`) makes it unreadable while the rest of the run stays readable."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """An event as the journal holds it."""

    run_id: str
    seq: int
    """1-based position in the run's journal."""
    type: EventType
    task: str | None
    data: dict[str, Any]
    ts: float
    """Seconds since the epoch when it was appended."""


def item_key(task_id: str, index: int) -> str:
    """The key of item `index` of a `for_each` task."""
    return f"{task_id}[{index}]"


def split_key(key: str) -> tuple[str, int | None]:
    """`("id", i)` for an item key `id[i]`, `("id", None)` for a task key."""
    if key.endswith("]") and "[" in key:
        base, _, index = key[:-1].rpartition("[")
        if index.isdigit():
            return base, int(index)
    return key, None
