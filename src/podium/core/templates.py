"""Templates (`{{ … }}`) and conditions, rendered in Jinja2's sandbox.

The sandbox refuses access to Python internals (`__class__`, `mro`, function globals) and
runs no code but the expression itself. Undefined names are errors, not empty strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.S)


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox, where `outputs.items` means the task `items`, not `dict.items`."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


_env = _Sandbox(undefined=StrictUndefined, autoescape=False)
_env.filters["tojson"] = _tojson
_env.policies["json.dumps_function"] = _tojson


class TemplateProblem(ValueError):
    """A template that does not parse or does not render; the message says why."""


def is_template(value: str) -> bool:
    """Whether a string contains template syntax."""
    return "{{" in value or "{%" in value


@lru_cache(maxsize=4096)
def _compile_expression(source: str) -> Any:
    try:
        return _env.compile_expression(source, undefined_to_none=False)
    except TemplateError as e:
        raise TemplateProblem(f"invalid expression {source!r}: {e}") from None


@lru_cache(maxsize=4096)
def _compile_template(source: str) -> Any:
    try:
        return _env.from_string(source)
    except TemplateError as e:
        raise TemplateProblem(f"invalid template {source!r}: {e}") from None


def evaluate(expression: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate a bare expression (`inputs.n > 3`), or a `{{ … }}` one, to a native value."""
    match = _SINGLE.match(expression)
    source = match["expr"] if match else expression
    try:
        result = _compile_expression(source.strip())(**scope)
        if isinstance(result, Undefined):
            # A bare expression hands back the Undefined instead of raising; make it raise,
            # keeping the sandbox's own words ("unsafe", "is undefined").
            result._fail_with_undefined_error()
        return result
    except TemplateProblem:
        raise
    except Exception as e:  # the sandbox raises SecurityError, UndefinedError, TypeError…
        raise TemplateProblem(f"{expression!r}: {e}") from None


def render(value: Any, scope: Mapping[str, Any]) -> Any:
    """Render templates inside `value` (strings, and strings nested in lists and dicts).

    A string that is exactly one `{{ expr }}` keeps the expression's native type; any other
    string with template syntax renders to a string.
    """
    if isinstance(value, str):
        if not is_template(value):
            return value
        if _SINGLE.match(value):
            return evaluate(value, scope)
        try:
            return _compile_template(value).render(**scope)
        except TemplateProblem:
            raise
        except Exception as e:
            raise TemplateProblem(f"{value!r}: {e}") from None
    if isinstance(value, Mapping):
        return {k: render(v, scope) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render(v, scope) for v in value]
    return value


@dataclass(frozen=True)
class Reference:
    """A name a template reads: `inputs.month` is Reference("inputs", "month")."""

    root: str
    attr: str | None


def _parse(source: str, expression: bool) -> nodes.Node:
    try:
        if expression:
            match = _SINGLE.match(source)
            inner = match["expr"] if match else source
            return _env.parse("{{ " + inner.strip() + " }}")
        return _env.parse(source)
    except TemplateError as e:
        raise TemplateProblem(f"invalid template {source!r}: {e.message}") from None


def references(source: str, *, expression: bool = False) -> Iterator[Reference]:
    """The top-level names a template or expression reads, with their first attribute.

    Raises:
        TemplateProblem: the template does not parse.
    """
    tree = _parse(source, expression)
    shadowed = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    attributed: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        target = node.node
        if isinstance(target, nodes.Name) and target.name not in shadowed:
            attributed.add(id(target))
            attr: str | None = None
            if isinstance(node, nodes.Getattr):
                attr = node.attr
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                attr = node.arg.value
            yield Reference(target.name, attr)
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and id(name) not in attributed and name.name not in shadowed:
            yield Reference(name.name, None)


def template_strings(value: Any) -> Iterator[str]:
    """Every string with template syntax inside `value`."""
    if isinstance(value, str):
        if is_template(value):
            yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from template_strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from template_strings(v)
