"""Function agents: any Python callable, sync or async, as an agent. Where a sync one runs
is the engine's choice (`TaskContext.executor`), not this module's."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Collection
from typing import Any

from podium.core.agent import JSON, Agent, TaskContext, TaskInput

_CONTEXT_NAMES = ("ctx", "item", "index", "prompt", "memories")


Shape = tuple[list[inspect.Parameter], bool, bool]


def _inspect(fn: Callable[..., Any]) -> Shape:
    """A callable's keyword parameters, whether it takes **kwargs, whether it is async."""
    parameters = inspect.signature(fn).parameters.values()
    params = [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    var_kw = any(p.kind is p.VAR_KEYWORD for p in parameters)
    target = getattr(fn, "__call__", fn) if not inspect.isroutine(fn) else fn  # noqa: B004
    return params, var_kw, inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(target)


_cached_inspect = functools.lru_cache(maxsize=4096)(_inspect)


def _shape(fn: Callable[..., Any]) -> Shape:
    # inspect.signature costs tens of microseconds; a workflow of 1,000 function tasks is
    # checked and run with the same functions again and again.
    try:
        return _cached_inspect(fn)
    except TypeError:  # an unhashable callable
        return _inspect(fn)


class FunctionAgent(Agent):
    """Calls a function with keyword arguments chosen by its parameter names.

    Each parameter is filled from, in order: the task's `with:` values; the output of the
    upstream task of that name; the run input of that name; `ctx` (the TaskContext), `item`
    and `index` (for `for_each` tasks), `prompt` (the rendered prompt) and `memories` (what
    the task's declared `memory:` retrieval found, best first). A parameter that
    none of these supply keeps its default. A `**kwargs` parameter receives every `with:`
    value.

    Sync functions run where the engine's executor puts them, where they never block other
    tasks and where an attempt can be stopped: when the task has a `timeout` and the
    function is importable by name (a module-level function, as every `function:` of a
    YAML workflow is), in a worker process, killed when the attempt times out or is
    cancelled; otherwise in a daemon thread, abandoned (never waited for) when the attempt
    is cancelled, the next attempt with the same idempotency key waiting for it to return.
    In a worker process, `ctx` is a copy holding the attempt's values (ids, inputs,
    outputs, item, notes), without the run's journal, memory or streaming: an object with
    the same attributes, read-only. Outside an engine (a context without an executor), a
    sync function runs in `asyncio.to_thread`.
    """

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None,
                 description: str = "", skills: Collection[str] = ()) -> None:
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "function"))
        self.description = description or inspect.getdoc(fn) or ""
        self.skills = tuple(skills)
        self._params, self._var_kw, self._is_async = _shape(fn)

    def missing(self, available: Collection[str]) -> list[str]:
        """Required parameters that nothing named in `available` (or the context) fills."""
        return [p.name for p in self._params
                if p.default is p.empty and p.name not in available
                and p.name not in _CONTEXT_NAMES]

    def _arguments(self, task: TaskInput, ctx: TaskContext) -> dict[str, Any]:
        context = {"ctx": ctx, "item": ctx.item, "index": ctx.index, "prompt": task.prompt,
                   "memories": list(task.memories)}
        kwargs: dict[str, Any] = dict(task.args) if self._var_kw else {}
        for p in self._params:
            name = p.name
            if name in task.args:
                kwargs[name] = task.args[name]
            elif name in ctx.outputs:
                kwargs[name] = ctx.outputs[name]
            elif name in ctx.inputs:
                kwargs[name] = ctx.inputs[name]
            elif name in context:
                kwargs[name] = context[name]
        return kwargs

    async def run(self, task: TaskInput, ctx: TaskContext) -> JSON:
        kwargs = self._arguments(task, ctx)
        if self._is_async:
            return await self.fn(**kwargs)
        executor = ctx.executor
        if executor is None:
            result = await asyncio.to_thread(functools.partial(self.fn, **kwargs))
        else:
            result = await executor.call(self.fn, kwargs, ctx,
                                         stoppable=task.timeout is not None)
        if inspect.isawaitable(result):
            return await result
        return result

    def __repr__(self) -> str:
        return f"FunctionAgent({self.name!r})"
