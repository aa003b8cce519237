"""LLM agents: a model, instructions, and optionally an output schema the reply must fit."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from typing import Any

from podium.core.agent import JSON, Agent, TaskContext, TaskInput
from podium.errors import OutputInvalid
from podium.models.base import Message, Model, ModelResponse
from podium.models.pricing import cost

ModelSource = Model | Callable[[], Model]


class LLMAgent(Agent):
    """Asks a chat model to do the task.

    The system message holds the agent's instructions; the user message is the task's
    rendered prompt, or, without one, its `with:` values as JSON. With an output schema
    (the task's `output:` or the agent's), the model is asked for JSON fitting it and the
    reply is parsed; the engine then validates it like any other output.

    Args:
        model: a Model, or a function returning one (called at the first use, so a workflow
            can be checked without loading a model).
        output: a pydantic model class the reply must validate against.
    """

    def __init__(self, model: ModelSource, *, name: str, instructions: str = "",
                 output: Any = None, description: str = "", skills: Collection[str] = (),
                 max_tokens: int | None = None, temperature: float | None = None) -> None:
        self._model_source = model
        self._model: Model | None = model if isinstance(model, Model) else None
        self.name = name
        self.instructions = instructions
        self.output = output
        self.description = description
        self.skills = tuple(skills)
        self.max_tokens = max_tokens
        self.temperature = temperature

    @property
    def model(self) -> Model:
        """The model, loaded at the first use."""
        if self._model is None:
            source = self._model_source
            assert not isinstance(source, Model)
            self._model = source()
        return self._model

    def messages(self, task: TaskInput) -> list[Message]:
        """The conversation sent to the model for this task."""
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
        started = time.perf_counter()
        response = await model.complete(self.messages(task), output_schema=task.output_schema,
                                        max_tokens=self.max_tokens,
                                        temperature=self.temperature)
        await ctx.record("model_call", {
            "model": response.model or model.name,
            "input_tokens": response.usage.input_tokens,
            "output_tokens": response.usage.output_tokens,
            "cost_usd": _cost(model, response),
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        })
        if task.output_schema is None:
            return response.text
        try:
            return json.loads(response.text)
        except json.JSONDecodeError as e:
            excerpt = response.text[:200]
            raise OutputInvalid(f"model {model.name!r} replied with text that is not JSON "
                                f"({e.msg} at char {e.pos}): {excerpt!r}") from None

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
