"""LLM agents: a model, instructions, optionally tools to act with and an output schema
the final answer must fit.

With tools, the agent runs a loop of turns::

    model turn ──► tool calls? ──no──► the final answer (validated as the task's output)
        ▲               │yes
        └── results ◄── run them concurrently; errors go back to the model too

Each model turn and each tool call is a durable step of the task: after a crash, the
resumed task replays the journaled replies and results instead of asking or acting again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from podium.core.agent import JSON, Agent, TaskContext, TaskInput
from podium.errors import ModelError, OutputInvalid, UserError
from podium.models.base import Message, Model, ModelResponse, ToolSpec
from podium.models.pricing import cost
from podium.tools._protocol import ToolOutcome, run_tool_calls
from podium.tools.tool import Tool, ToolArgumentsInvalid

ModelSource = Model | Callable[[], Model]


class LLMAgent(Agent):
    """Asks a chat model to do the task, calling tools as the model asks.

    The system message holds the agent's instructions; the user message is the task's
    rendered prompt, or, without one, its `with:` values as JSON. With an output schema
    (the task's `output:` or the agent's), the model is asked for JSON fitting it and the
    final answer is parsed; the engine then validates it like any other output.

    With `tools`, the model may answer a turn with tool calls instead: they run
    concurrently, each result (or error) goes back to the model, and the model takes
    another turn, up to `max_turns` turns. A call that names no tool or whose arguments do
    not fit the tool's schema goes back as an error the model can correct; after
    `max_argument_repairs` such turns in a row the attempt fails with
    `ToolArgumentsInvalid`. A tool that fails (`ToolFailed`) is reported to the model,
    which decides what to do. A model still calling tools at its last turn fails the
    attempt with a `ModelError`. Either failure is then the task's policy's to handle.

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

    Raises:
        UserError: two tools share a name, or a bound is out of range.
    """

    def __init__(self, model: ModelSource, *, name: str, instructions: str = "",
                 output: Any = None, description: str = "", skills: Collection[str] = (),
                 max_tokens: int | None = None, temperature: float | None = None,
                 tools: Sequence[Tool] = (), max_turns: int = 8,
                 max_argument_repairs: int = 2) -> None:
        names = [t.name for t in tools]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise UserError(f"agent {name!r}: tool names must be unique; "
                            f"{', '.join(map(repr, twice))} appear more than once")
        if max_turns < 1 or max_argument_repairs < 0:
            raise UserError(f"agent {name!r}: max_turns must be >= 1 and max_argument_repairs "
                            f">= 0, got {max_turns!r} and {max_argument_repairs!r}")
        self._model_source = model
        self._model: Model | None = model if isinstance(model, Model) else None
        self.name = name
        self.instructions = instructions
        self.output = output
        self.description = description
        self.skills = tuple(skills)
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.tools = tuple(tools)
        self.max_turns = max_turns
        self.max_argument_repairs = max_argument_repairs

    @property
    def model(self) -> Model:
        """The model, loaded at the first use."""
        if self._model is None:
            source = self._model_source
            assert not isinstance(source, Model)
            self._model = source()
        return self._model

    def messages(self, task: TaskInput) -> list[Message]:
        """The conversation sent to the model for this task, before any tool call."""
        system = self.instructions
        if task.output_schema is not None:
            schema = json.dumps(task.output_schema, ensure_ascii=False)
            system = f"{system}\n\nReply with a JSON object matching this schema: {schema}"
        content = task.prompt if task.prompt is not None else json.dumps(
            dict(task.args), ensure_ascii=False, default=str)
        messages = [Message(role="system", content=system.strip())] if system.strip() else []
        return [*messages, Message(role="user", content=content)]

    async def run(self, task: TaskInput, ctx: TaskContext) -> JSON:
        model = self.model
        messages = self.messages(task)
        tools = {t.name: t for t in self.tools}
        specs = tuple(ToolSpec(name=t.name, description=t.description, parameters=t.parameters)
                      for t in self.tools)
        repairs = 0
        last: list[str] = []
        for _turn in range(self.max_turns):
            response = await self._ask(model, messages, task, specs, ctx)
            if not (specs and response.tool_calls):
                return self._answer(model, response, task)
            messages.append(Message(role="assistant", content=response.text,
                                    tool_calls=response.tool_calls))
            outcomes = await run_tool_calls(response.tool_calls, tools, ctx)
            messages += [outcome.message() for outcome in outcomes]
            last = [call.name for call in response.tool_calls]
            repairs = repairs + 1 if any(o.repairable for o in outcomes) else 0
            if repairs > self.max_argument_repairs:
                raise ToolArgumentsInvalid(self._repairs_exhausted(model, outcomes))
        raise ModelError(
            f"agent {self.name!r}: model {model.name!r} stopped after {self.max_turns} turns "
            f"without a final answer (its last turn called {', '.join(map(repr, last))}); "
            f"raise max_turns, or say in the instructions when to stop calling tools")

    async def _ask(self, model: Model, messages: Sequence[Message], task: TaskInput,
                   specs: Sequence[ToolSpec], ctx: TaskContext) -> ModelResponse:
        """One model turn, as a durable step: a turn replayed after a crash is not asked
        again, nor counted again."""
        sent = tuple(messages)

        async def turn() -> JSON:
            started = time.perf_counter()
            response = await model.complete(sent, output_schema=task.output_schema,
                                            max_tokens=self.max_tokens,
                                            temperature=self.temperature,
                                            tools=specs or None)
            await ctx.record("model_call", {
                "model": response.model or model.name,
                "input_tokens": response.usage.input_tokens,
                "output_tokens": response.usage.output_tokens,
                "cost_usd": _cost(model, response),
                "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            })
            return response.to_json()

        return ModelResponse.from_json(await ctx.step("model", model.name, turn))

    def _answer(self, model: Model, response: ModelResponse, task: TaskInput) -> JSON:
        if task.output_schema is None:
            return response.text
        try:
            return json.loads(response.text)
        except json.JSONDecodeError as e:
            excerpt = response.text[:200]
            raise OutputInvalid(f"model {model.name!r} replied with text that is not JSON "
                                f"({e.msg} at char {e.pos}): {excerpt!r}") from None

    def _repairs_exhausted(self, model: Model, outcomes: Sequence[ToolOutcome]) -> str:
        errors = "; ".join(o.error or "" for o in outcomes if o.repairable)
        turns = self.max_argument_repairs + 1
        return (f"agent {self.name!r}: model {model.name!r} called tools that do not exist or "
                f"with invalid arguments {turns} turns in a row "
                f"(max_argument_repairs={self.max_argument_repairs}); last: {errors}")

    def __repr__(self) -> str:
        return f"LLMAgent({self.name!r})"


def _cost(model: Model, response: ModelResponse) -> float | None:
    """What the call cost in USD, or None when the model's price is unknown."""
    # The provider's name can be more precise (a dated variant); the workflow's name says
    # the provider, and `local` costs nothing whatever file it loads.
    for name in (response.model, model.name):
        if name:
            usd = cost(name, response.usage.input_tokens, response.usage.output_tokens)
            if usd is not None:
                return usd
    return None
