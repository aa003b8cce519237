"""Templates (`{{ … }}`) and conditions, rendered in Jinja2's sandbox.

The sandbox refuses access to Python internals (`__class__`, `mro`, function globals) and
runs no code but the expression itself. Undefined names are errors, not empty strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
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
    found = _looked_up(source, scope)
    if found is not _MISSING:
        return found
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


_MISSING = object()


def _looked_up(source: str, scope: Mapping[str, Any]) -> Any:
    """The value of a dotted name (`outputs.fetch.rows`) looked up as the sandbox looks it
    up when every step is a mapping's key, without compiling it (each distinct expression
    costs Jinja about a millisecond to compile); _MISSING for anything else, which Jinja
    evaluates (and explains when it fails)."""
    match = _BARE.fullmatch(source)
    if match is None:
        return _MISSING
    root, *attrs = match[1].split(".")
    if root not in scope or root in _KEYWORDS or any(a in _KEYWORDS for a in attrs):
        return _MISSING
    value = scope[root]
    for attr in attrs:
        if not (isinstance(value, Mapping) and attr in value):
            return _MISSING
        value = value[attr]
    return value


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
    simple = _simple_references(source, expression)
    if simple is not None:
        yield from simple
        return
    tree = _parse(source, expression)
    yield from _references(tree, _shadowed(tree))


_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = rf"{_NAME}(?:\.{_NAME})*"
_OUTPUT = re.compile(rf"\{{\{{\s*({_DOTTED})\s*\}}\}}")
_BARE = re.compile(rf"\s*({_DOTTED})\s*")
_KEYWORDS = frozenset({"true", "false", "none", "True", "False", "None", "and", "or", "not",
                       "in", "is", "if", "else"})


def _simple_references(source: str, expression: bool) -> list[Reference] | None:
    """The references of a template whose every tag is `{{ name.attr… }}` (or of such a
    bare expression), as Jinja's parse would give them, without parsing it (most templates
    are these, and Jinja's parser costs a fraction of a millisecond); None for any other."""
    if expression:
        match = _OUTPUT.fullmatch(source.strip()) or _BARE.fullmatch(source)
        found = [match[1]] if match else None
    elif "{" not in source:
        return []
    else:
        found = _OUTPUT.findall(source)
        if source.count("{") != 2 * len(found):
            return None  # other tags ({%, {#), or braces next to a tag
    if not found:
        return None
    parts = [name.split(".", 2) for name in found]
    if any(word in _KEYWORDS for words in parts for word in words):
        return None
    # Jinja's order: the names read with an attribute first, then the bare ones.
    return ([Reference(words[0], words[1]) for words in parts if len(words) > 1]
            + [Reference(words[0], None) for words in parts if len(words) == 1])


def _shadowed(tree: nodes.Node) -> set[str]:
    """Names the template binds itself (`for`, `set`, macro parameters)."""
    return {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}


def _with_self(node: nodes.Node, kinds: Any) -> Iterator[Any]:
    if isinstance(node, kinds):
        yield node
    yield from node.find_all(kinds)


def _references(node: nodes.Node, shadowed: set[str]) -> Iterator[Reference]:
    """The scope names `node` (itself included) reads, with their first attribute."""
    attributed: set[int] = set()
    for found in _with_self(node, (nodes.Getattr, nodes.Getitem)):
        target = found.node
        if isinstance(target, nodes.Name) and target.name not in shadowed:
            attributed.add(id(target))
            attr: str | None = None
            if isinstance(found, nodes.Getattr):
                attr = found.attr
            elif isinstance(found.arg, nodes.Const) and isinstance(found.arg.value, str):
                attr = found.arg.value
            yield Reference(target.name, attr)
    for name in _with_self(node, nodes.Name):
        if name.ctx == "load" and id(name) not in attributed and name.name not in shadowed:
            yield Reference(name.name, None)


Sources = frozenset[str]
Classify = Callable[[Reference], Sources]
Mark = Callable[[Any, tuple[str, ...]], str]
_MARK = "_podium_mark"
"""The function a marked template calls around each output derived from marked sources."""


def _bound(node: nodes.Node) -> set[str]:
    """The names an assignment target binds (`a`, `a, b`, `ns.attr` binds `ns`)."""
    names = {n.name for n in _with_self(node, nodes.Name) if n.ctx == "store"}
    return names | {n.name for n in _with_self(node, nodes.NSRef)}


class _Flow:
    """Which sources each part of one template derives from: scope names as `classify`
    says, and the template's own variables (`for`, `set`, `with`, macro parameters) from
    what they were bound to, to a fixed point."""

    def __init__(self, tree: nodes.Node, classify: Classify) -> None:
        self.classify, self.shadowed = classify, _shadowed(tree)
        self.local: dict[str, Sources] = {}
        read = frozenset().union(*(classify(r) for r in _references(tree, self.shadowed)))
        changed = True
        while changed:
            changed = False
            for target, derived in self._bindings(tree, read):
                for name in target:
                    before = self.local.get(name, frozenset())
                    if not derived <= before:
                        self.local[name] = before | derived
                        changed = True

    def _bindings(self, tree: nodes.Node, read: Sources
                  ) -> Iterator[tuple[set[str], Sources]]:
        for node in tree.find_all((nodes.For, nodes.Assign, nodes.AssignBlock, nodes.With,
                                   nodes.Macro, nodes.CallBlock)):
            if isinstance(node, nodes.For):
                derived = self.of(node.iter)
                yield _bound(node.target), derived
                yield {"loop"}, derived  # loop.previtem and loop.nextitem hold items
            elif isinstance(node, nodes.Assign):
                yield _bound(node.target), self.of(node.node)
            elif isinstance(node, nodes.AssignBlock):
                yield _bound(node.target), frozenset().union(*(self.of(n) for n in node.body))
            elif isinstance(node, nodes.With):
                for target, value in zip(node.targets, node.values, strict=False):
                    yield _bound(target), self.of(value)
            elif isinstance(node, nodes.Macro | nodes.CallBlock):
                # A macro's parameters take whatever a call passes: assume the worst.
                yield {a.name for a in node.args} | {"caller", "varargs", "kwargs"}, read

    def of(self, node: nodes.Node) -> Sources:
        """The sources `node`'s value derives from."""
        found: set[str] = set()
        for ref in _references(node, self.shadowed):
            found |= self.classify(ref)
        for name in _with_self(node, nodes.Name):
            if name.ctx == "load" and (name.name in self.shadowed or name.name == "loop"):
                # A template may rebind a scope name on one branch only: count both.
                found |= self.local.get(name.name, frozenset())
                found |= self.classify(Reference(name.name, None))
        return frozenset(found)


def derived(source: str, classify: Classify, *, expression: bool = False) -> Sources:
    """Every source a template (or expression) reads, as `classify` names them per scope
    name it reads.

    Raises:
        TemplateProblem: the template does not parse.
    """
    classes = tuple((r, s) for r in _candidates(source, expression) if (s := classify(r)))
    return _derived(source, expression, classes) if classes else frozenset()


@lru_cache(maxsize=4096)
def _derived(source: str, expression: bool, classes: tuple[tuple[Reference, Sources], ...]
             ) -> Sources:
    known = dict(classes)
    tree = _parse(source, expression)
    return _Flow(tree, lambda ref: known.get(ref, frozenset())).of(tree)


@lru_cache(maxsize=4096)
def _candidates(source: str, expression: bool = False) -> tuple[Reference, ...]:
    """Every reference a template may read a scope name by, in a stable order: those
    `references` finds, and each name the template rebinds, as a whole."""
    tree = _parse(source, expression)
    shadowed = _shadowed(tree)
    found = set(_references(tree, shadowed)) | {Reference(n, None) for n in shadowed}
    return tuple(sorted(found, key=lambda r: (r.root, r.attr or "")))


@lru_cache(maxsize=1024)
def _marked(source: str, classes: tuple[tuple[Reference, Sources], ...]) -> Any:
    tree = _parse(source, False)
    assert isinstance(tree, nodes.Template)
    known = dict(classes)
    flow = _Flow(tree, lambda ref: known.get(ref, frozenset()))
    for output in tree.find_all(nodes.Output):
        for i, node in enumerate(output.nodes):
            if isinstance(node, nodes.TemplateData):
                continue
            derived = flow.of(node)
            if derived:
                output.nodes[i] = nodes.Call(
                    nodes.Name(_MARK, "load", lineno=node.lineno),
                    [node, nodes.Const(tuple(sorted(derived)), lineno=node.lineno)],
                    [], None, None, lineno=node.lineno)
    try:
        return _env.from_string(tree)
    except TemplateError as e:
        raise TemplateProblem(f"invalid template {source!r}: {e}") from None


def render_marked(source: str, scope: Mapping[str, Any], classify: Classify,
                  mark: Mark) -> Any:
    """Render a template whose every output (`{{ … }}`) that derives from a source
    `classify` names (through filters, slices, loops and `set` variables too) goes through
    `mark(value, sources)`: how a prompt delimits untrusted content wherever it lands.

    A template that is exactly one `{{ expr }}` keeps the expression's native type when it
    derives from no source, as `render` does.

    Raises:
        TemplateProblem: the template does not parse or does not render.
    """
    if not is_template(source):
        return source
    if _SINGLE.match(source):
        found = derived(source, classify, expression=True)
        value = evaluate(source, scope)
        return mark(value, tuple(sorted(found))) if found else value
    classes = tuple((r, s) for r in _candidates(source) if (s := classify(r)))
    if not classes:
        return render(source, scope)
    template = _marked(source, classes)
    try:
        return template.render(**scope, **{_MARK: mark})
    except TemplateProblem:
        raise
    except Exception as e:
        raise TemplateProblem(f"{source!r}: {e}") from None


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
