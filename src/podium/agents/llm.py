"""LLM agents: a model, instructions, optionally tools to act with and an output schema
the final answer must fit.

The agent runs a loop of turns::

    model turn ──► tool calls? ──no──► fits the output schema? ──yes──► passes checks? ──► output
        ▲               │yes                    │no (max_repairs times at most)  │no
        │               ▼                       ▼                                ▼
        └── results ◄── run them concurrently;  the errors go back: "reply      the unsupported
                        errors go back too      again with JSON"                claims go back

Each model turn and each tool call is a durable step of the task: after a crash, the
resumed task replays the journaled replies and results instead of asking or acting again.
With `cache=True`, a turn whose request (model, messages, schema, tools, parameters) was
answered before, in any run on the same journal, takes the stored reply instead of calling
the model.

Each model turn and each tool call passes through a chain of interceptors (the journal,
the reply cache, masking, accounting; mediation and the access check for tools), in the
order `podium.agents.interceptors` fixes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import replace
from typing import Any

from podium.agents._repair import answer, repair_prompt
from podium.agents.context import ContextOptions, PromptSpec, assemble
from podium.agents.interceptors import Interceptor, model_chain, tool_chain
from podium.core.agent import JSON, Agent, TaskContext, TaskInput
from podium.core.events import OutputChecked
from podium.core.faithful import Faithful, Given
from podium.core.memory import Memory
from podium.core.output import schema_of
from podium.errors import ModelError, OutputInvalid, Unfaithful, UserError
from podium.models.base import Message, Model, ModelResponse, ToolCall, ToolSpec
from podium.models.interceptors import ModelCallInput, ModelInterceptor
from podium.security.masking import MaskingPolicy
from podium.tools.calls import ToolOutcome, run_tool_calls
from podium.tools.interceptors import ToolCallInput
from podium.tools.mediation import Mediation, ToolPolicy, allowlist_problems, noticed
from podium.tools.tool import Tool, ToolArgumentsInvalid
from podium.tools.toolset import MCPTools, NoteTool, ToolSource

ModelSource = Model | Callable[[], Model]


class LLMAgent(Agent):
    """Asks a chat model to do the task, calling tools as the model asks.

    The system message holds the agent's instructions; the user message is the task's
    rendered prompt, or, without one, its `with:` values as JSON. With an output schema
    (the task's `output:` or the agent's), the model is asked for JSON fitting it and the
    final answer is parsed (inside ```json fences too) and validated by the engine's rules.
    An answer that is not JSON or does not fit goes back to the model with the errors, up
    to `max_repairs` times; then the attempt fails with `OutputInvalid`, for the task's
    policy to handle. Repair turns are durable steps like the others, and journaled as
    `model_call`s with `repair: n`; they do not count against `max_turns`.

    With `checks` (the agent's, and the task's the engine hands over), an answer that fits
    its schema must also pass each check: a faithfulness check
    (`podium.core.faithful.Faithful`) sends the claims the data does not support back to
    the model, within the same `max_repairs`, then fails the attempt with `Unfaithful` (an
    `OutputInvalid`) naming them. The model is asked again without its unfaithful reply
    (the claims named under the task): a small model shown its own reply writes it again.
    Every check is journaled as an `output_checked`.

    With `tools`, the model may answer a turn with tool calls instead: they run
    concurrently, each result (or error) goes back to the model, and the model takes
    another turn, up to `max_turns` turns. A call that names no tool or whose arguments do
    not fit the tool's schema goes back as an error the model can correct; after
    `max_argument_repairs` such turns in a row the attempt fails with
    `ToolArgumentsInvalid`. A tool that fails (`ToolFailed`) is reported to the model,
    which decides what to do. A model still calling tools at its last turn fails the
    attempt with a `ModelError`. Either failure is then the task's policy's to handle.

    With `cache=True`, replies are kept in the journal's database by a sha256 of what was
    asked (the model's name, the messages, the output schema, the tools, `temperature` and
    `max_tokens`); the same request again, in any run, is answered from there without
    calling the model, journaled as a `model_call` with `cached: true` that costs nothing.
    Only usable replies are kept: an answer that did not fit is asked afresh by a retry.
    Caching suits deterministic settings (temperature 0) and repeated runs of a workflow.

    Args:
        model: a Model, or a function returning one (called at the first use, so a workflow
            can be checked without loading a model).
        name: the agent's name.
        instructions: the system message.
        output: a pydantic model class the final answer must validate against.
        description: what the agent does, for routing.
        skills: what the agent can do, for routing.
        max_tokens: a bound on each reply's length.
        temperature: the sampling temperature; the model's default when None.
        tools: the tools the model may call; names must be unique.
        max_turns: model turns per attempt, the final answer's included.
        max_argument_repairs: turns in a row whose calls named no tool or had invalid
            arguments that are sent back for the model to correct; one more fails the
            attempt.
        max_repairs: final answers that are not JSON or do not fit the output schema sent
            back for the model to correct; one more fails the attempt with `OutputInvalid`.
        cache: answer a request asked before from the reply cache in the journal.
        toolsets: sources of more tools, learnt when the agent runs (an MCP server's).
        masking: personal data to mask before it reaches an external model (restored in
            the reply), or an `external` tool; not applied to models that run on this
            machine.
        allowed_tools: the tools the agent may call, by name (shell-style patterns) or
            `tag:NAME`; others are not offered, and calls to them are refused. None: all.
        high_risk_without_approval: let `high_risk` tools run without a person's approval
            even once untrusted content is in the context (docs/tools-security.md).
        context: what the prompt includes beyond the instructions and the task (upstream
            outputs, shared notes, the session thread); see `podium.agents.context`.
        context_budget: tokens the prompt may take; default: the model's window less
            room for the reply.
        max_reply_bytes: the bound on a reply's text in UTF-8 bytes; a reply past it
            fails the attempt with `ReplyTooLarge`. Default: derived from `max_tokens`
            (`podium.models.limits`).
        max_tool_result_bytes: the bound on a tool's result, as JSON text in UTF-8
            bytes, for tools that set none of their own; a result past it goes back to
            the model as an error. Default: `podium.tools.DEFAULT_MAX_RESULT_BYTES`.
        checks: what the final answer must pass beyond its schema (a `Faithful` check).
        interceptors: your own links around every model call and tool call, the first
            outermost (`podium.agents.interceptors`).

    Raises:
        UserError: two tools share a name, a bound is out of range, or an allowlist entry
            names no tool the agent is given.
    """

    def __init__(self, model: ModelSource, *, name: str, instructions: str = "",
                 output: Any = None, description: str = "", skills: Collection[str] = (),
                 max_tokens: int | None = None, temperature: float | None = None,
                 tools: Sequence[Tool] = (), max_turns: int = 8,
                 max_argument_repairs: int = 2, max_repairs: int = 2,
                 cache: bool = False, toolsets: Sequence[ToolSource] = (),
                 masking: MaskingPolicy | None = None, context: ContextOptions | None = None,
                 context_budget: int | None = None,
                 allowed_tools: Collection[str] | None = None,
                 high_risk_without_approval: bool = False,
                 max_reply_bytes: int | None = None,
                 max_tool_result_bytes: int | None = None,
                 checks: Sequence[Faithful] = (),
                 interceptors: Sequence[Interceptor] = ()) -> None:
        names = [t.name for t in tools]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise UserError(f"agent {name!r}: tool names must be unique; "
                            f"{', '.join(map(repr, twice))} appear more than once")
        if max_turns < 1 or max_argument_repairs < 0:
            raise UserError(f"agent {name!r}: max_turns must be >= 1 and max_argument_repairs "
                            f">= 0, got {max_turns!r} and {max_argument_repairs!r}")
        if max_repairs < 0:
            raise UserError(f"agent {name!r}: max_repairs must be >= 0, got {max_repairs!r}")
        for setting, value in (("max_reply_bytes", max_reply_bytes),
                               ("max_tool_result_bytes", max_tool_result_bytes)):
            if value is not None and value < 1:
                raise UserError(f"agent {name!r}: {setting} must be >= 1, got {value!r}")
        if context_budget is not None and context_budget < 1:
            raise UserError(f"agent {name!r}: context_budget must be >= 1, "
                            f"got {context_budget!r}")
        self._model_source = model
        self._model: Model | None = model if isinstance(model, Model) else None
        self.name = name
        self.instructions = instructions
        self.output = output
        self.description = description
        self.skills = tuple(skills)
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_reply_bytes = max_reply_bytes
        self.max_tool_result_bytes = max_tool_result_bytes
        self.tools = tuple(tools)
        self.context = context or ContextOptions()
        self.context_budget = context_budget
        self.toolsets = (*toolsets, NoteTool()) if self.context.note_tool else tuple(toolsets)
        self.masking = masking
        self.tool_policy = ToolPolicy(
            allow=None if allowed_tools is None else tuple(allowed_tools),
            high_risk_without_approval=high_risk_without_approval)
        """Which tools the engine lets the model call, and when a person must approve."""
        if allowed_tools is not None:
            prefixes = [f"{s.server.name}__" if isinstance(s, MCPTools) else ""
                        for s in toolsets]
            for _, problem in allowlist_problems(list(allowed_tools), names, prefixes)[:1]:
                raise UserError(f"agent {name!r}: allowed_tools: {problem}")
        self.max_turns = max_turns
        self.max_argument_repairs = max_argument_repairs
        self.max_repairs = max_repairs
        self.cache = cache
        self.checks = tuple(checks)
        """Checks every final answer must pass, whichever task the agent does."""
        self.interceptors = tuple(interceptors)
        """Your own links around every model call and tool call, the first outermost."""
        self._output_schema: dict[str, Any] | None = None
        try:
            self._output_schema = schema_of(output)
        except TypeError:
            pass  # not an output spec: the workflow check names it

    @property
    def model(self) -> Model:
        """The model, loaded at the first use."""
        if self._model is None:
            source = self._model_source
            assert not isinstance(source, Model)
            self._model = source()
        return self._model

    @property
    def prompt_spec(self) -> PromptSpec:
        """What assembling the agent's prompt needs (`podium.agents.context`)."""
        return PromptSpec(agent=self.name, instructions=self.instructions,
                          context=self.context, context_budget=self.context_budget,
                          max_tokens=self.max_tokens)

    def messages(self, task: TaskInput) -> list[Message]:
        """The conversation sent to the model for this task, before any tool call."""
        return self.prompt_spec.messages(task)

    async def _all_tools(self, ctx: TaskContext) -> list[Tool]:
        found = list(self.tools)
        for source in self.toolsets:
            found.extend(await source.tools(ctx))
        names = [t.name for t in found]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise UserError(f"agent {self.name!r}: tool names must be unique; "
                            f"{', '.join(map(repr, twice))} appear more than once")
        return found

    async def run(self, task: TaskInput, ctx: TaskContext) -> JSON:
        model = self.model
        offered = await self._all_tools(ctx) if self.toolsets else list(self.tools)
        tools = {t.name: t for t in offered}
        # Retrieved memories are documents nobody vouched for: untrusted like tool results.
        ctx.mark_untrusted(*task.untrusted, *(["memory"] if any(
            not (isinstance(m, Memory) and m.trust == "trusted") for m in task.memories)
            else []))
        gate = Mediation(self.name, self.tool_policy, ctx.untrusted)
        specs = tuple(ToolSpec(name=t.name, description=t.description, parameters=t.parameters)
                      for t in gate.offered(offered))
        models = model_chain(cache=self.cache, masking=self.masking,
                             interceptors=self.interceptors)
        calls = tool_chain(mediation=gate, masking=self.masking,
                           interceptors=self.interceptors)

        def run_call(call: ToolCall) -> Awaitable[ToolOutcome]:
            return calls.call_tool(ToolCallInput(call=call, tools=tools, ctx=ctx,
                                                 max_result_bytes=self.max_tool_result_bytes))

        assembled = await assemble(self.prompt_spec, model, task, ctx, specs)
        gate.absorb(ctx.untrusted)  # upstream outputs the context sections read
        messages = noticed(assembled, gate.untrusted)
        spec = self._spec(task)
        checks = tuple(dict.fromkeys((*task.checks, *self.checks)))
        given = Given(prompt=task.prompt, args=task.args, inputs=ctx.inputs,
                      outputs=ctx.outputs)

        def final(text: str) -> JSON:
            output = text if spec is None else answer(text, spec)
            for check in checks:
                check.check(output, given)
            return output

        turns = argument_repairs = repairs = 0
        while True:
            response = await self._ask(models, model, messages, task, specs, ctx, repairs,
                                       final)
            if not (specs and response.tool_calls):
                try:
                    output = response.text if spec is None else answer(response.text, spec)
                    await _verify(checks, output, given, ctx, repairs)
                    return output
                except OutputInvalid as e:
                    if repairs >= self.max_repairs:
                        raise self._unfit(model, e) from None
                    repairs += 1
                    if isinstance(e, Unfaithful):
                        messages = _asked_again(messages, _feedback(e, checks, spec))
                    else:
                        messages += [Message(role="assistant", content=response.text),
                                     Message(role="user", content=repair_prompt(str(e)))]
                    continue
            messages.append(Message(role="assistant", content=response.text,
                                    tool_calls=response.tool_calls))
            outcomes = await gate.settle(
                await run_tool_calls(response.tool_calls, ctx, run_call), tools, ctx, calls)
            messages += [gate.message(outcome, tools) for outcome in outcomes]
            gate.observe(outcomes, tools)
            ctx.mark_untrusted(*gate.untrusted)
            messages = noticed(messages, gate.untrusted)
            argument_repairs = argument_repairs + 1 if any(o.repairable for o in outcomes) else 0
            if argument_repairs > self.max_argument_repairs:
                raise ToolArgumentsInvalid(self._repairs_exhausted(model, outcomes))
            turns += 1
            if turns >= self.max_turns:
                called = ", ".join(repr(call.name) for call in response.tool_calls)
                raise ModelError(
                    f"agent {self.name!r}: model {model.name!r} stopped after {self.max_turns} "
                    f"turns without a final answer (its last turn called {called}); "
                    f"raise max_turns, or say in the instructions when to stop calling tools")

    def _spec(self, task: TaskInput) -> Any:
        """What the final answer is checked against: the agent's pydantic model when the
        task asks for its schema (the engine checks with the model too), else the task's
        JSON schema."""
        if task.output_schema is None:
            return None
        if task.output is not None:
            return task.output
        if self._output_schema is not None and task.output_schema == self._output_schema:
            return self.output
        return task.output_schema

    async def _ask(self, chain: ModelInterceptor, model: Model, messages: Sequence[Message],
                   task: TaskInput, specs: Sequence[ToolSpec], ctx: TaskContext, repair: int,
                   final: Callable[[str], JSON]) -> ModelResponse:
        """One model turn, through the agent's interceptors, as a durable step: a turn
        replayed after a crash is not asked again, nor counted again. `repair` numbers the
        turn among repairs (0: not one); `final` makes a final answer of a reply, or raises
        `OutputInvalid`."""

        def usable(response: ModelResponse) -> bool:
            if specs and response.tool_calls:
                return True
            try:
                final(response.text)
            except OutputInvalid:
                return False
            return True

        call = ModelCallInput(
            model=model, messages=tuple(messages), ctx=ctx, output_schema=task.output_schema,
            tools=tuple(specs), max_tokens=self.max_tokens, temperature=self.temperature,
            on_token=ctx.token if ctx.streaming else None, agent=self.name,
            max_reply_bytes=self.max_reply_bytes, usable=usable,
            notes={"repair": repair} if repair else {})

        async def turn() -> JSON:
            return (await chain.call_model(call)).to_json()

        return ModelResponse.from_json(await ctx.step("model", model.name, turn))

    def _unfit(self, model: Model, error: OutputInvalid) -> OutputInvalid:
        if isinstance(error, Unfaithful):
            return Unfaithful(
                f"agent {self.name!r}: model {model.name!r} gave no answer faithful to the "
                f"task's data after {self.max_repairs} repair(s) "
                f"(max_repairs={self.max_repairs}); last: {error}", claims=error.claims)
        return OutputInvalid(f"agent {self.name!r}: model {model.name!r} gave no answer that "
                             f"fits the output schema after {self.max_repairs} repair(s) "
                             f"(max_repairs={self.max_repairs}); last: {error}")

    def _repairs_exhausted(self, model: Model, outcomes: Sequence[ToolOutcome]) -> str:
        errors = "; ".join(o.error or "" for o in outcomes if o.repairable)
        turns = self.max_argument_repairs + 1
        return (f"agent {self.name!r}: model {model.name!r} called tools that do not exist or "
                f"with invalid arguments {turns} turns in a row "
                f"(max_argument_repairs={self.max_argument_repairs}); last: {errors}")

    def __repr__(self) -> str:
        return f"LLMAgent({self.name!r})"


async def _verify(checks: Sequence[Faithful], output: JSON, given: Given, ctx: TaskContext,
                  repair: int) -> None:
    """Apply the checks to a final answer, journaling each outcome.

    Raises:
        Unfaithful: a check failed.
    """
    marks: dict[str, JSON] = {"repair": repair} if repair else {}
    for check in checks:
        started = time.perf_counter()
        failure: Unfaithful | None = None
        try:
            check.check(output, given)
        except Unfaithful as e:
            failure = e
            raise
        finally:
            await ctx.record(OutputChecked(
                check="faithful", passed=failure is None,
                claims=failure.claims if failure else [],
                error=str(failure) if failure and not failure.claims else None,
                ms=round((time.perf_counter() - started) * 1000, 3), **marks))


def _feedback(error: Unfaithful, checks: Sequence[Faithful], spec: Any) -> str:
    """What the model is told after a final answer with unsupported claims."""
    told = checks[0].feedback(error)
    return f"{told} Reply with JSON only." if spec is not None else told


def _asked_again(messages: list[Message], told: str) -> list[Message]:
    """The conversation before the refused reply, `told` added to its last user message
    (or as one, after a tool result)."""
    last = messages[-1]
    if last.role != "user":
        return [*messages, Message(role="user", content=told)]
    return [*messages[:-1], replace(last, content=f"{last.content}\n\n{told}")]
