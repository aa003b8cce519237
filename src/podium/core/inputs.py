"""Run inputs: checked against the workflow's declarations and converted to their types."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from podium.core.workflow import InputSpec, Workflow
from podium.errors import Problem, WorkflowError

MAX_DEPTH = 100
"""How deeply collections may nest in a YAML file and in JSON inputs: more is surely a
mistake or an attack, and would exhaust Python's recursion limit."""

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _convert(spec: InputSpec, value: Any) -> Any:
    """`value` as `spec.type`; strings (from the command line) are parsed."""
    kind = spec.type
    if kind == "any":
        return value
    if kind == "string":
        if isinstance(value, str):
            return value
        raise ValueError(f"expected a string, got {json.dumps(value)}")
    if isinstance(value, str):
        text = value.strip()
        if kind == "boolean":
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise ValueError(f"expected true or false, got {value!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"expected {_article(kind)}, got {value!r}") from None
        except RecursionError:  # the decoder recurses once per level
            raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from None
    checks: dict[str, tuple[type, ...]] = {
        "integer": (int,), "number": (int, float), "boolean": (bool,), "list": (list,),
        "object": (dict,),
    }
    if isinstance(value, bool) and kind in ("integer", "number"):
        raise ValueError(f"expected {_article(kind)}, got {json.dumps(value)}")
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, checks[kind]):
        raise ValueError(f"expected {_article(kind)}, got {json.dumps(value, default=str)}")
    return value


def unfit(value: Any) -> str | None:
    """Why `value` cannot be journaled as JSON text, or None: a string that is not valid
    Unicode (undecodable bytes from the command line, lone surrogates), or collections
    nested more than MAX_DEPTH deep. Walks iteratively: the value may be deep."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as e:
                char = ord(item[e.start])
                what = (f"byte 0x{char - 0xDC00:02x}" if 0xDC80 <= char <= 0xDCFF
                        else f"lone surrogate U+{char:04X}")
                return (f"is not valid UTF-8 text ({what} at position {e.start}); give it "
                        "as UTF-8")
        elif isinstance(item, list | tuple | dict):
            if depth >= MAX_DEPTH:
                return f"is nested more than {MAX_DEPTH} levels deep"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def coerce_inputs(workflow: Workflow, given: Mapping[str, Any]) -> dict[str, Any]:
    """The run's inputs: declared ones checked and converted, defaults filled in.

    Raises:
        WorkflowError: unknown, missing or ill-typed inputs, each named.
    """
    problems: list[Problem] = []
    result: dict[str, Any] = {}

    def problem(name: str, message: str) -> None:
        problems.append(Problem(message=message, field=f"inputs.{name}",
                                file=workflow.source))

    for name, value in given.items():
        if (why := unfit(name)) is not None:
            problem(ascii(name)[1:-1], f"the input's name {why}")
            continue
        spec = workflow.inputs.get(name)
        if spec is None and workflow.inputs:
            known = ", ".join(repr(n) for n in workflow.inputs)
            problem(name, f"unknown input {name!r}; this workflow takes {known}")
            continue
        try:
            converted = value if spec is None else _convert(spec, value)
        except ValueError as e:
            problem(name, str(e))
            continue
        if (why := unfit(converted)) is not None:
            problem(name, f"the value {why}")
        else:
            result[name] = converted
    for name, spec in workflow.inputs.items():
        if name in given:
            continue
        if spec.required:
            problem(name, f"missing required input {name!r} (give it with -i {name}=VALUE)")
        else:
            result[name] = spec.default
    if problems:
        raise WorkflowError(problems)
    return result
