"""Payloads of observations: what an attempt did along the way (`TaskContext.record`).
Their event's `task` is the key of the task whose attempt it was."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from podium.core.events._payload import JSON, Payload, omitted


@dataclass(frozen=True, kw_only=True)
class ModelCalled(Payload):
    """`model_call`: one call to a model, with what it counts for against budgets."""

    type: ClassVar[Literal["model_call"]] = "model_call"
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None = None
    """USD, where the model's price is known."""
    summary: bool | None = omitted()
    """True for a call that summarised a session's earlier runs for a prompt."""
    cached: bool | None = omitted()
    """Whether the reply came from the reply cache (for agents that use one)."""
    latency_ms: float
    counted: str | None = omitted()
    """How the tokens were counted when the provider's report was implausible."""
    reported: dict[str, JSON] | None = omitted()
    """The provider's own report, when it was not taken as it is."""
    repair: int | None = omitted()
    """Which repair the call was (a reply asked for again), from 1."""
    error: str | None = omitted()
    error_type: str | None = omitted()
    masked: bool | None = omitted()
    """True when personal data was masked before the call."""
    unknown_placeholders: list[str] | None = omitted()
    mangled_placeholders: list[str] | None = omitted()
    purpose: str | None = omitted()
    """What the call was for, when not the task itself (`routing`)."""
    notes: dict[str, JSON] | None = omitted()
    """What interceptors of the call noted beyond the fields above (see
    `podium.agents.interceptors`)."""


@dataclass(frozen=True, kw_only=True)
class ToolCalled(Payload):
    """`tool_call`: one tool call, refused or run. The journal holds `result` or, for a
    call that failed or was refused, `error` and `error_type`."""

    type: ClassVar[Literal["tool_call"]] = "tool_call"
    call_id: str
    name: str
    arguments: JSON
    """As shown to people: masked values stay masked."""
    result: JSON = None
    error: str | None = omitted()
    error_type: str | None = omitted()
    approval: str | None = omitted()
    """The id of the approval a held call waits for."""
    refused: bool | None = omitted()
    reason: str | None = omitted()
    """Why it was refused."""
    rejected_by: str | None = omitted()
    """Who rejected it, for a call a person refused."""
    duration_ms: float
    notes: dict[str, JSON] | None = omitted()
    """What interceptors of the call noted beyond the fields above (see
    `podium.agents.interceptors`)."""

    def to_data(self) -> dict[str, JSON]:
        data = Payload.to_data(self)
        if self.error is not None:
            del data["result"]
        return data


@dataclass(frozen=True, kw_only=True)
class StepCompleted(Payload):
    """`step_completed`: a durable step (`TaskContext.step`), replayed after a crash. A step
    of kind `agent` is a sub-agent call a pattern's composite agent made."""

    type: ClassVar[Literal["step_completed"]] = "step_completed"
    index: int
    kind: str
    name: str
    """The model, the tool, or for kind `agent` the sub-agent."""
    result: JSON
    scope: str | None = omitted()
    """Places a step taken inside another step (`/3`)."""


@dataclass(frozen=True, kw_only=True)
class NoteAdded(Payload):
    """`note_added`: a shared note any later prompt may include (`TaskContext.note`)."""

    type: ClassVar[Literal["note_added"]] = "note_added"
    text: str
    untrusted: list[str] | None = omitted()
    """The untrusted sources the attempt that wrote it had read."""


@dataclass(frozen=True, kw_only=True)
class ContextAssembled(Payload):
    """`context_assembled`: how an LLM agent's prompt was fitted within its budget."""

    type: ClassVar[Literal["context_assembled"]] = "context_assembled"
    agent: str
    model: str
    counted: str
    """How tokens were counted."""
    budget: int
    budget_source: str
    window: int | None
    fixed: int
    """Tokens of the instructions and the task, which are always sent."""
    used: int
    sections: dict[str, JSON]
    """Per section: entries, kept, tokens, dropped, truncated, summarised."""
    dropped: list[dict[str, JSON]]
    """What was left out (the first 50)."""
    more_dropped: int | None = omitted()
    ms: float


@dataclass(frozen=True, kw_only=True)
class MemoryRecalled(Payload):
    """`memory_recalled`: the memories a task's `memory.query` found (no texts: they stay
    in the memory store)."""

    type: ClassVar[Literal["memory_recalled"]] = "memory_recalled"
    namespace: str
    ids: list[str]
    scores: list[float | None]
    trust: list[str]
    top_k: int
    trusted_only: bool


@dataclass(frozen=True, kw_only=True)
class OutputChecked(Payload):
    """`output_checked`: an output check applied to a final answer."""

    type: ClassVar[Literal["output_checked"]] = "output_checked"
    check: str
    passed: bool
    claims: list[JSON]
    """The unsupported claims (kind, text, where)."""
    error: str | None = omitted()
    ms: float
    repair: int | None = omitted()
