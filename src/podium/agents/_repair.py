"""A model's final answer as structured output: parsed, checked against the task's schema,
and, when it does not fit, the words that ask the model to try again::

    reply ──► strip ``` fences ──► JSON (finite numbers, bounded depth) ──► the schema ──► answer
                                      │ not JSON                               │ does not fit
                                      └──────────────► OutputInvalid ◄─────────┘
                                                       └─► repair_prompt(error) to the model

The checks are the engine's own (`podium.core.output.validate`), so an answer the agent
accepts is one the engine accepts.
"""

from __future__ import annotations

import json
import math
from typing import Any

import jsonschema

from podium.core.agent import JSON
from podium.core.output import validate
from podium.errors import OutputInvalid
from podium.models.replies import strip_fences

MAX_DEPTH = 64
"""Nesting deeper than this is refused: no real answer needs it, and deeper values break
encoders and validators by recursion."""
MAX_DIGITS = 4000
"""Longer integers are refused (Python will not even print one of over 4,300 digits)."""

_EXCERPT = 200
_ERRORS = 5
_ERROR_CHARS = 300


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:40]!r} is too large for a float")
    return number


def _integer(text: str) -> int:
    if len(text) > MAX_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits is out of range")
    return int(text)


def _depth(value: JSON) -> int:
    """How deeply `value` nests, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, level + 1) for child in children)
    return deepest


def parse(text: str) -> JSON:
    """The JSON value a reply holds, code fences stripped.

    Raises:
        OutputInvalid: it is not JSON, has NaN, Infinity or an out-of-range number, or
            nests deeper than `MAX_DEPTH`.
    """
    body = strip_fences(text)
    try:
        value = json.loads(body, parse_constant=_no_constant, parse_float=_finite,
                           parse_int=_integer)
    except json.JSONDecodeError as e:
        raise OutputInvalid(f"the reply is not JSON ({e.msg} at char {e.pos}): "
                            f"{_excerpt(body)!r}") from None
    except ValueError as e:  # NaN, Infinity, 1e999, or an integer of thousands of digits
        raise OutputInvalid(f"the reply is not valid JSON: {_excerpt(str(e))}") from None
    except RecursionError:
        value = None
        depth = MAX_DEPTH + 1
    else:
        depth = _depth(value)
    if depth > MAX_DEPTH:
        raise OutputInvalid(f"the reply nests more than {MAX_DEPTH} levels deep")
    return value


def check(spec: Any, value: JSON) -> JSON:
    """`value` validated against `spec` (a pydantic model class or a JSON schema) by the
    engine's rules; the value as the engine would normalise it.

    Raises:
        OutputInvalid: it does not fit; for a JSON schema, with up to five of the reasons.
    """
    try:
        return validate(spec, value)
    except OutputInvalid as e:
        if not isinstance(spec, dict):
            raise OutputInvalid(_excerpt(str(e), _ERRORS * _ERROR_CHARS)) from None
        validator = jsonschema.validators.validator_for(spec)(spec)
        reasons = []
        for error in validator.iter_errors(value):
            where = ".".join(map(str, error.absolute_path)) or "(root)"
            reasons.append(f"at {where}: {_excerpt(error.message, _ERROR_CHARS)}")
            if len(reasons) == _ERRORS:
                break
        if not reasons:
            raise OutputInvalid(_excerpt(str(e), _ERRORS * _ERROR_CHARS)) from None
        raise OutputInvalid(f"output does not fit its schema {'; '.join(reasons)}") from None


def answer(text: str, spec: Any) -> JSON:
    """The reply `text` as the task's output: parsed, then checked against `spec`.

    Raises:
        OutputInvalid: it is not JSON or does not fit, saying why.
    """
    value = parse(text)
    try:
        # The value as parsed, not as normalised: the engine validates it again, and
        # validating a normalised value may not succeed (pydantic turns 1e20 into an
        # integer it then refuses).
        check(spec, value)
        return value
    except RecursionError:
        raise OutputInvalid(f"the reply nests too deeply to validate (over {MAX_DEPTH} "
                            "levels)") from None


def repair_prompt(error: str) -> str:
    """What the model is told after an answer that does not fit."""
    return f"Your reply did not fit the schema: {error}. Reply again with JSON only."


def _excerpt(text: str, limit: int = _EXCERPT) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"
