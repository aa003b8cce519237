"""An LLM agent's prompt, assembled within its context budget.

The prompt is built from sections in priority order::

    1 instructions     the system message (and the output schema, the tools)   never dropped
    2 task             the user message                                        never dropped
    3 outputs          the outputs of the tasks this one depends on            opt-in
    4 memory           memories retrieved for the task (`TaskInput.memories`)
    5 notes            the run's shared notes                                  opt-in
    6 session          earlier runs of the run's session                       on with a session

Each section in turn takes what it needs of the room the ones before it left, so what does
not fit is lost from the lowest priority first: the session thread's oldest entries are
summarised (by the agent's model or a summariser), notes are dropped oldest first, memories
least relevant first, outputs largest first; an entry that partly fits is truncated. When
the instructions and the task alone exceed the budget the attempt fails with
`ContextTooLarge`, naming the agent and the numbers.

Tokens are counted with the model's own tokenizer where it has one on this machine
(llama.cpp's for the local model), otherwise estimated at one token per 3 bytes of UTF-8,
rounded up, which overcounts English and code; every report says which (`counted`).

What was included, dropped, truncated or summarised is journaled as a `context_assembled`
event of the task, and `podium runs show` prints it.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from podium.core.agent import JSON, TaskContext, TaskInput
from podium.core.events import ContextAssembled, ModelCalled
from podium.core.memory import Memory, memory_line
from podium.core.untrusted import delimit, label, sources_of
from podium.errors import ContextTooLarge
from podium.models.base import Message, Model, ModelResponse, ToolSpec
from podium.models.tokens import MESSAGE_OVERHEAD, TokenCounter, estimate_tokens
from podium.tools.mediation import noticed

Section = Literal["outputs", "memory", "notes", "session"]

DEFAULT_BUDGET = 8_192
"""The prompt budget of a model whose window is unknown and whose agent sets none."""
_MIN_PIECE = 24
"""Below this many tokens of room, an entry is dropped rather than truncated or summarised."""
_TRUNCATED = " … [truncated]"
_HEADINGS: dict[Section, str] = {
    "session": "## Earlier in this session (oldest first)",
    "notes": "## Shared notes of this run (oldest first)",
    "memory": "## Retrieved memories (most relevant first)",
    "outputs": "## Outputs of the tasks this one depends on",
}
_PRIORITY: tuple[Section, ...] = ("outputs", "memory", "notes", "session")
_SUMMARY_PROMPT = (
    "You condense the earlier part of a conversation for an assistant that will continue "
    "it. Keep facts, names, numbers, decisions and open questions; drop pleasantries. "
    "Write at most {words} words of plain text.")


@dataclass(frozen=True, kw_only=True)
class ContextOptions:
    """What an LLM agent's prompt includes beyond its instructions and task.

    In YAML, an agent's `context:` mapping with the same fields (`summariser` a model
    name such as `local`).
    """

    outputs: bool = False
    """Include the outputs of the tasks this one depends on (directly or not)."""
    notes: bool = False
    """Include the run's shared notes."""
    session: bool | None = None
    """Include the session thread (earlier runs of the run's session). None: on when the
    run has a session, since starting a run in one asks for exactly that."""
    note_tool: bool = False
    """Offer the model a `note` tool that adds to the run's shared notes."""
    summarise: bool = True
    """Summarise the session thread's oldest entries when they do not fit; False drops
    them instead."""
    summariser: Model | Callable[[], Model] | None = field(default=None, repr=False)
    """The model that writes summaries; None: the agent's own."""
    summary_tokens: int = 256
    """Bound on a summary's length in tokens (and its share of the room: at most half)."""


@dataclass(frozen=True, kw_only=True)
class PromptSpec:
    """What assembling a prompt needs of the agent it is for (`LLMAgent.prompt_spec`)."""

    agent: str
    """The agent's name, for the journal and errors."""
    instructions: str = ""
    """The system message."""
    context: ContextOptions = field(default_factory=ContextOptions)
    """What the prompt includes beyond the instructions and the task."""
    context_budget: int | None = None
    """Tokens the prompt may take; None: the model's window less room for the reply."""
    max_tokens: int | None = None
    """The bound on the reply's length, kept free in the model's window."""

    def messages(self, task: TaskInput) -> list[Message]:
        """The conversation sent to the model for `task`, before any context section or
        tool call: the instructions (and the output schema to fit), then the task's
        rendered prompt, or, without one, its `with:` values as JSON."""
        system = self.instructions
        if task.output_schema is not None:
            schema = json.dumps(task.output_schema, ensure_ascii=False)
            system = f"{system}\n\nReply with a JSON object matching this schema: {schema}"
        content = task.prompt if task.prompt is not None else json.dumps(
            dict(task.args), ensure_ascii=False, default=str)
        if task.prompt is None and task.untrusted:
            content = delimit(content, ",".join(task.untrusted))
        messages = [Message(role="system", content=system.strip())] if system.strip() else []
        return noticed([*messages, Message(role="user", content=content)], task.untrusted)


class PromptSource(Protocol):
    """What has a prompt spec: an `LLMAgent`."""

    @property
    def prompt_spec(self) -> PromptSpec:
        """What assembling the agent's prompt needs."""
        ...


def _spec(source: PromptSpec | PromptSource) -> PromptSpec:
    return source if isinstance(source, PromptSpec) else source.prompt_spec


class _Entry:
    """One piece of a section; counted only when the fitting needs its size, since a
    tokenizer is slow next to the rest and most of a long thread is never looked at."""

    def __init__(self, label: str, text: str, counter: Callable[[str], int]) -> None:
        self.label, self.text, self._counter = label, text, counter

    @functools.cached_property
    def tokens(self) -> int:
        return self._counter(self.text)

    def size(self) -> dict[str, JSON]:
        """Its size for the journal: counted if it was, else estimated (and marked so)."""
        if "tokens" in self.__dict__:
            return {"tokens": self.tokens}
        return {"tokens": estimate_tokens(self.text), "estimated": True}


@dataclass(kw_only=True)
class _Fitted:
    kept: list[_Entry] = field(default_factory=list)
    dropped: list[dict[str, JSON]] = field(default_factory=list)
    summarised: int = 0
    truncated: int = 0

    def used(self, counter: TokenCounter, name: Section) -> int:
        if not self.kept:
            return 0
        return counter(_HEADINGS[name]) + sum(e.tokens + 1 for e in self.kept)


@dataclass(frozen=True, kw_only=True)
class PromptBudget:
    """How many tokens a prompt may take, and where the number came from."""

    tokens: int
    source: Literal["context_budget", "window", "default"]
    window: int | None
    reserve: int
    """Tokens of the window kept for the reply."""


def prompt_budget(agent: PromptSpec | PromptSource, model: Model) -> PromptBudget:
    """The agent's `context_budget`, else the model's window less room for the reply
    (`max_tokens`, the model's default reply bound, or a quarter of the window)."""
    spec = _spec(agent)
    window = model.context_window
    reserve = spec.max_tokens or getattr(model, "default_max_tokens", None) or (
        min(4096, window // 4) if window else 0)
    if spec.context_budget is not None:
        return PromptBudget(tokens=spec.context_budget, source="context_budget", window=window,
                      reserve=reserve)
    if window is None:
        return PromptBudget(tokens=DEFAULT_BUDGET, source="default", window=None, reserve=reserve)
    return PromptBudget(tokens=max(1, window - reserve), source="window", window=window,
                  reserve=reserve)


async def assemble(agent: PromptSpec | PromptSource, model: Model, task: TaskInput,
                   ctx: TaskContext, tools: Sequence[ToolSpec] = ()) -> list[Message]:
    """The messages to send for `task`: the agent's instructions and the task, with as
    much of the context sections as the budget allows; journals what it did. `agent` is
    its prompt spec, or the agent itself.

    Raises:
        ContextTooLarge: the instructions and the task alone exceed the budget.
    """
    started = time.perf_counter()
    spec = _spec(agent)
    base = spec.messages(task)
    counter = TokenCounter(model)
    budget = prompt_budget(spec, model)
    tool_text = json.dumps([{"name": t.name, "description": t.description,
                             "parameters": t.parameters} for t in tools], ensure_ascii=False)
    tool_tokens = counter(tool_text) if tools else 0
    fixed = counter.messages(base) + tool_tokens
    if fixed > budget.tokens:
        raise ContextTooLarge(_too_large(spec, model, counter, budget, fixed))
    options = spec.context
    sections = await _sections(options, task, ctx, counter)
    room = budget.tokens - fixed - (0 if base[0].role == "system" else MESSAGE_OVERHEAD)
    fitted: dict[Section, _Fitted] = {}
    for name in _PRIORITY:
        entries = sections.get(name)
        if not entries:
            continue
        heading = counter(_HEADINGS[name])
        if name == "session":
            fitted[name] = await _fit_session(entries, room - heading, spec, model, ctx,
                                              counter)
        else:
            fitted[name] = _fit(entries, room - heading, counter,
                                drop_first=_drop_order(name, entries))
        room -= fitted[name].used(counter, name)
    messages = _with_context(base, fitted)
    used = counter.messages(messages) + tool_tokens
    # Tokens do not add up exactly (text merges differently across the seams where
    # entries are joined): what still overflows gives way in the same order.
    while used > budget.tokens and _give_way(fitted):
        messages = _with_context(base, fitted)
        used = counter.messages(messages) + tool_tokens
    if fitted:
        await ctx.record(_report(
            spec, model, counter, budget, fixed, used, fitted, sections, started))
    return messages


def _give_way(fitted: Mapping[Section, _Fitted]) -> bool:
    """Drop one more kept entry, from the lowest priority section that has one."""
    for name in reversed(_PRIORITY):
        f = fitted.get(name)
        if f is None or not f.kept:
            continue
        order = _drop_order(name, f.kept)
        e = f.kept.pop(order[0])
        f.dropped.append({"item": e.label, **e.size(), "how": "dropped"})
        return True
    return False


def _too_large(spec: PromptSpec, model: Model, counter: TokenCounter, budget: PromptBudget,
               fixed: int) -> str:
    how = "counted by the model's tokenizer" if counter.counted == "tokenizer" else (
        "estimated at 3 bytes a token")
    origin = {"context_budget": "its context_budget",
              "window": f"model {model.name!r}'s window of {budget.window} less "
                        f"{budget.reserve} kept for the reply",
              "default": f"the default for a model with no known window ({model.name!r})"}
    return (f"agent {spec.agent!r}: its instructions and the task take {fixed} tokens "
            f"({how}), more than its prompt budget of {budget.tokens} "
            f"({origin[budget.source]}); shorten the instructions or the task's input, "
            f"or raise the agent's context_budget")


def _drop_order(name: Section, entries: Sequence[_Entry]) -> list[int]:
    """Indices of `entries` in the order they give way."""
    if name == "memory":
        return list(reversed(range(len(entries))))
    if name == "outputs":
        return sorted(range(len(entries)), key=lambda i: -entries[i].tokens)
    return list(range(len(entries)))


async def _sections(options: ContextOptions, task: TaskInput, ctx: TaskContext,
                    counter: TokenCounter) -> dict[Section, list[_Entry]]:
    def entry(label: str, text: str) -> _Entry:
        return _Entry(label, text, counter)

    found: dict[Section, list[_Entry]] = {}
    if options.outputs:
        found["outputs"] = [entry(f"output of {key!r}", _output_text(ctx.outputs, key))
                            for key in sorted(ctx.outputs)]
    found["memory"] = [entry(f"memory {n}", f"- {_memory_text(m)}")
                       for n, m in enumerate(task.memories, start=1)]
    if options.notes:
        found["notes"] = [entry(f"note by {n.get('by')!r}", _note_text(n))
                          for n in ctx.notes]
    if options.session is not False and ctx.session is not None:
        found["session"] = [entry(label, text) for run in await ctx.session_thread()
                            for label, text in _run_entries(run)]
    return found


def _output_text(outputs: Mapping[str, JSON], key: str) -> str:
    """An upstream output as a context entry; delimited when it derives from untrusted
    content (reading it notes that in the attempt's provenance)."""
    text = _text(outputs[key])
    found = sources_of(outputs, key)
    return f"### {key}\n{delimit(text, label(found)) if found else text}"


def _note_text(note: Mapping[str, JSON]) -> str:
    """A shared note as a context entry; delimited when its writer had read untrusted
    content."""
    text = str(note["text"])
    if note.get("untrusted"):
        text = delimit(text, f"note:{note.get('by')}")
    return f"- ({note.get('by')}) {text}"


def _run_entries(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    rid = run["run_id"]
    head = f"[run {rid} · {run.get('workflow')} · {run.get('started_at')}]"
    found = [(f"run {rid} inputs", f"{head} inputs: {_text(run.get('inputs') or {})}")]
    found += [(f"run {rid} note by {n.get('by')!r}", f"{head} note ({n.get('by')}): "
               f"{n.get('text')}") for n in run.get("notes") or ()]
    found += [(f"run {rid} output of {key!r}", f"{head} {key}: {_text(value)}")
              for key, value in (run.get("outputs") or {}).items()]
    return found


def _text(value: JSON) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str)


def _memory_text(memory: JSON) -> str:
    if isinstance(memory, Memory):
        return memory_line(memory)  # marked as data, with its trust and source
    if isinstance(memory, Mapping) and "text" in memory:
        return str(memory["text"])
    return _text(memory)


def _fit(entries: list[_Entry], room: int, counter: TokenCounter, *,
         drop_first: Sequence[int]) -> _Fitted:
    """The entries that fit in `room` (one separator token each), giving way in
    `drop_first` order; the first that does not fit is truncated instead when there is
    room for a useful piece of it."""
    kept: set[int] = set()
    cut: int | None = None
    for index in reversed(drop_first):
        size = entries[index].tokens + 1
        if size > room:
            cut = index
            break
        kept.add(index)
        room -= size
    fitted = _Fitted()
    for index, e in enumerate(entries):
        if index in kept:
            fitted.kept.append(e)
        elif index == cut and room - 1 >= _MIN_PIECE:
            text = truncate(e.text, room - 1, counter)
            piece = _Entry(e.label, text, counter)
            fitted.kept.append(piece)
            fitted.truncated += 1
            fitted.dropped.append({"item": e.label, **e.size(), "how": "truncated",
                                   "kept_tokens": piece.tokens})
        else:
            fitted.dropped.append({"item": e.label, **e.size(), "how": "dropped"})
    return fitted


def truncate(text: str, tokens: int, count: Callable[[str], int]) -> str:
    """The longest start of `text` that, marked as truncated, counts at most `tokens`."""
    if count(text) <= tokens:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if count(text[:middle] + _TRUNCATED) <= tokens:
            low = middle
        else:
            high = middle - 1
    return text[:low] + _TRUNCATED if low else ""


async def _fit_session(entries: list[_Entry], room: int, spec: PromptSpec, model: Model,
                       ctx: TaskContext, counter: TokenCounter) -> _Fitted:
    """The session thread in `room`: the newest entries as they are, the oldest ones that
    do not fit summarised (or dropped when there is no room for a summary)."""
    left = room
    for e in reversed(entries):
        left -= e.tokens + 1
        if left < 0:
            break
    else:
        return _Fitted(kept=list(entries))
    options = spec.context
    summary_room = min(options.summary_tokens, room // 2)
    if not options.summarise or summary_room < _MIN_PIECE:
        return _fit(entries, room, counter, drop_first=range(len(entries)))
    # Keep the newest entries whole while they leave room for the summary.
    kept: list[_Entry] = []
    left = room - summary_room
    for e in reversed(entries):
        if e.tokens + 1 > left:
            break
        kept.insert(0, e)
        left -= e.tokens + 1
    older = entries[:len(entries) - len(kept)]
    summariser = _summariser(options, model)
    text, fed = await _summarise(older, summary_room, summariser, ctx,
                                 same_tokens=summariser is model)
    # The marker before the summary takes a few tokens of its room too.
    text = truncate(text, summary_room - 16, counter)
    fitted = _Fitted()
    if text:
        shown = f"[summary of {fed} earlier entries] {text}"
        fitted.kept.append(_Entry("summary", shown, counter))
    fitted.kept += kept
    fitted.summarised = fed
    for n, e in enumerate(older):
        how = "summarised" if n >= len(older) - fed and text else "dropped"
        fitted.dropped.append({"item": e.label, **e.size(), "how": how})
    return fitted


def _summariser(options: ContextOptions, model: Model) -> Model:
    source = options.summariser
    if source is None:
        return model
    return source if isinstance(source, Model) else source()


async def _summarise(older: Sequence[_Entry], tokens: int, model: Model, ctx: TaskContext,
                     *, same_tokens: bool) -> tuple[str, int]:
    """A summary of `older` of at most `tokens` tokens, by `model`, as a durable step;
    and how many of the entries it covers (the newest that fit the summariser's own
    budget: the prompt is bounded, the oldest beyond it are dropped)."""
    counter = TokenCounter(model)
    window = model.context_window or DEFAULT_BUDGET
    system = _SUMMARY_PROMPT.format(words=max(10, int(tokens * 0.6)))
    room = min(window - tokens, 16_384) - counter(system) - 3 * MESSAGE_OVERHEAD
    chosen: list[_Entry] = []
    for e in reversed(older):
        size = (e.tokens if same_tokens else counter(e.text)) + 1
        if size > room:
            break
        chosen.insert(0, e)
        room -= size
    if not chosen:
        return "", 0
    messages = (Message(role="system", content=system),
                Message(role="user", content="\n".join(e.text for e in chosen)))

    async def call() -> JSON:
        started = time.perf_counter()
        response: ModelResponse = await model.complete(messages, max_tokens=tokens,
                                                       temperature=0)
        await ctx.record(ModelCalled(
            model=response.model or model.name, input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens, summary=True,
            latency_ms=round((time.perf_counter() - started) * 1000, 3)))
        return response.text.strip()

    summary = await ctx.step("summary", model.name, call)
    return str(summary or ""), len(chosen)


def _with_context(base: list[Message], fitted: Mapping[Section, _Fitted]) -> list[Message]:
    """`base` with the kept sections appended to the system message, most relevant last
    (nearest the task)."""
    blocks = [f"{_HEADINGS[name]}\n" + "\n".join(e.text for e in fitted[name].kept)
              for name in reversed(_PRIORITY) if name in fitted and fitted[name].kept]
    if not blocks:
        return base
    context = "\n\n".join(blocks)
    if base[0].role == "system":
        return [Message(role="system", content=f"{base[0].content}\n\n{context}"), *base[1:]]
    return [Message(role="system", content=context), *base]


def _report(spec: PromptSpec, model: Model, counter: TokenCounter, budget: PromptBudget, fixed: int,
            used: int, fitted: Mapping[Section, _Fitted],
            sections: Mapping[Section, list[_Entry]], started: float) -> ContextAssembled:
    dropped = [{"section": name, **d} for name, f in fitted.items() for d in f.dropped]
    return ContextAssembled(
        agent=spec.agent, model=model.name, counted=counter.counted,
        budget=budget.tokens, budget_source=budget.source, window=budget.window,
        fixed=fixed, used=used,
        sections={name: {"entries": len(sections[name]), "kept": len(f.kept),
                         "tokens": f.used(counter, name),
                         "dropped": sum(1 for d in f.dropped if d["how"] == "dropped"),
                         "truncated": f.truncated, "summarised": f.summarised}
                  for name, f in fitted.items()},
        dropped=dropped[:50], more_dropped=len(dropped) - 50 if len(dropped) > 50 else None,
        ms=round((time.perf_counter() - started) * 1000, 3),
    )
