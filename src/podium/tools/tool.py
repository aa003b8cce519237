"""Tools: typed functions an LLM agent may call. The JSON schema comes from the type hints
and the Google-style docstring::

    @tool(tags={"read"})
    async def weather(city: str, unit: Literal["c", "f"] = "c") -> dict[str, float]:
        '''Current weather in a city.

        Args:
            city: the city's name, e.g. "Oslo".
            unit: degrees Celsius or Fahrenheit.
        '''
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import to_jsonable_python

from podium.errors import ToolArgumentsInvalid as ToolArgumentsInvalid
from podium.errors import ToolFailed as ToolFailed
from podium.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])
ToolCallable = Callable[[Mapping[str, Any]], Awaitable[Any]]
_CONTEXT_PARAMS = frozenset({"ctx"})
calling_context: ContextVar[Any] = ContextVar("podium_tool_context", default=None)
"""The TaskContext of the attempt whose model called the tool being run (set by the tool
loop), handed to a tool function's `ctx` parameter."""


@dataclass(frozen=True, kw_only=True)
class Tool:
    """A function an LLM agent may call, with the JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    """JSON schema of the arguments: an object."""
    call: ToolCallable = field(repr=False)
    """Calls the tool with arguments already checked against `parameters`."""
    tags: frozenset[str] = frozenset()
    """Permission tags (`read`, `write`, `send`, `spend`, …) that policies refer to;
    `high_risk` calls wait for a person once untrusted content is in the agent's context,
    and a `trusted` tool's results are not untrusted content (docs/tools-security.md)."""
    external: bool = False
    """The tool sends its arguments off this machine (a third-party API): they are masked
    with the calling agent's masking policy, and placeholders restored in its result."""
    timeout: float | None = 30.0
    """Seconds one call may take; None for no limit."""
    validate: Callable[[Mapping[str, Any]], dict[str, Any]] | None = field(default=None,
                                                                            repr=False)
    """Checks and converts arguments; raises ToolArgumentsInvalid. None: checked by schema
    only at the other end (an MCP server)."""
    max_result_bytes: int | None = None
    """The bound on a result, as JSON text in UTF-8 bytes: a larger one goes back to the
    model as an error, and is neither journaled nor shown to it. None: the calling
    agent's `max_tool_result_bytes`, else `DEFAULT_MAX_RESULT_BYTES`."""

    async def __call__(self, arguments: Mapping[str, Any]) -> Any:
        """Check the arguments, call the tool within its timeout, return a JSON value.

        Raises:
            ToolArgumentsInvalid: the arguments do not fit.
            ToolFailed: the tool raised or timed out.
        """
        checked = self.validate(arguments) if self.validate else dict(arguments)
        try:
            async with asyncio.timeout(self.timeout):
                result = await self.call(checked)
        except TimeoutError:
            raise ToolFailed(f"tool {self.name!r} took longer than {self.timeout}s") from None
        except (ToolArgumentsInvalid, ToolFailed):
            raise
        except Exception as e:
            raise ToolFailed(f"tool {self.name!r} failed: {type(e).__name__}: {e}") from e
        return to_jsonable_python(result, fallback=str)

    def spec(self) -> dict[str, Any]:
        """The tool as models are told of it: name, description, parameters."""
        return {"name": self.name, "description": self.description,
                "parameters": self.parameters}


def _docstring_args(doc: str) -> tuple[str, dict[str, str]]:
    """The summary of a Google-style docstring, and its `Args:` descriptions by name."""
    summary = doc.partition("\n\n")[0]
    args: dict[str, str] = {}
    section = re.search(r"^\s*Args:\s*\n(?P<body>(?:[ \t]+.*\n?)+)", doc, re.M)
    if section:
        current = None
        for line in section["body"].splitlines():
            match = re.match(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", line)
            if match and (current is None or len(line) - len(line.lstrip()) <= 8):
                current = match[1]
                args[current] = match[2].strip()
            elif current and line.strip():
                args[current] += " " + line.strip()
    return " ".join(summary.split()), args


def _arguments_model(fn: Callable[..., Any], name: str, docs: Mapping[str, str]
                     ) -> type[BaseModel]:
    try:
        hints = get_type_hints(fn)
    except (NameError, TypeError) as e:
        raise UserError(f"tool {name!r}: cannot read its type hints: {e}") from None
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.name in _CONTEXT_PARAMS:
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise UserError(f"tool {name!r}: *args and **kwargs cannot be described to a "
                            "model; name each argument")
        if param.name not in hints:
            raise UserError(f"tool {name!r}: argument {param.name!r} needs a type hint")
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints[param.name],
                              Field(default, description=docs.get(param.name) or None))
    return create_model(f"{name}_arguments",
                        __config__=ConfigDict(extra="forbid"), **fields)


def _explain(error: ValidationError) -> str:
    parts = []
    for err in error.errors()[:8]:
        where = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def make_tool(fn: Callable[..., Any], *, name: str | None = None,
              description: str | None = None, tags: Collection[str] = (),
              timeout: float | None = 30.0, external: bool = False,
              max_result_bytes: int | None = None) -> Tool:
    """A Tool from a typed function (sync or async). Sync functions run in a thread."""
    tool_name = name or fn.__name__
    summary, docs = _docstring_args(inspect.getdoc(fn) or "")
    model = _arguments_model(fn, tool_name, docs)
    schema = model.model_json_schema()
    schema.pop("title", None)
    wants_ctx = "ctx" in inspect.signature(fn).parameters

    def validate(arguments: Mapping[str, Any]) -> dict[str, Any]:
        try:
            checked = model.model_validate(dict(arguments))
        except ValidationError as e:
            raise ToolArgumentsInvalid(
                f"arguments for tool {tool_name!r} do not fit its schema: {_explain(e)}"
            ) from None
        return {k: getattr(checked, k) for k in type(checked).model_fields}

    async def call(arguments: Mapping[str, Any]) -> Any:
        kwargs = dict(arguments)
        if wants_ctx:
            kwargs.setdefault("ctx", calling_context.get())
        if inspect.iscoroutinefunction(fn):
            return await fn(**kwargs)
        return await asyncio.to_thread(functools.partial(fn, **kwargs))

    return Tool(name=tool_name, description=description or summary, parameters=schema,
                call=call, tags=frozenset(tags), timeout=timeout, validate=validate,
                external=external, max_result_bytes=max_result_bytes)


@overload
def tool(fn: F, /) -> Tool: ...
@overload
def tool(*, name: str | None = None, description: str | None = None,
         tags: Collection[str] = (), timeout: float | None = 30.0,
         external: bool = False, max_result_bytes: int | None = None
         ) -> Callable[[F], Tool]: ...
def tool(fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
         description: str | None = None, tags: Collection[str] = (),
         timeout: float | None = 30.0, external: bool = False,
         max_result_bytes: int | None = None) -> Tool | Callable[[F], Tool]:
    """Turn a typed function into a Tool: `@tool` or
    `@tool(tags={"high_risk"}, timeout=10, external=True, max_result_bytes=65536)`."""
    if fn is not None:
        return make_tool(fn)

    def wrap(f: F) -> Tool:
        return make_tool(f, name=name, description=description, tags=tags, timeout=timeout,
                         external=external, max_result_bytes=max_result_bytes)

    return wrap
