"""The references of simple templates (`{{ outputs.x }}`), read without Jinja's parser, are
the ones Jinja's parse gives, in the same order; anything else is parsed."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from podium.core.templates import (
    Reference,
    TemplateProblem,
    _parse,
    _references,
    _shadowed,
    _simple_references,
    references,
)


def parsed(source: str, expression: bool) -> list[Reference] | None:
    try:
        tree = _parse(source, expression)
    except TemplateProblem:
        return None
    return list(_references(tree, _shadowed(tree)))


PIECES = ["{{ ", "{{", " }}", "}}", "{", "}", "{%", "%}", "{#", "#}", "outputs", "inputs",
          "item", ".", "a", "b_1", "items", "true", "none", "if", " ", "\n", "x", "0", "-",
          "'", "(", ")", "|", "+"]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=14).map("".join), st.booleans())
@example("x {{ a }} y {{ b.c }} z {{ d.e.f }}", False)
@example("{{ outputs.t1 }}", True)
@example(" inputs.items ", True)
@example("{{{ a }}", False)
def test_simple_templates_read_as_jinja_parses_them(source: str, expression: bool) -> None:
    simple = _simple_references(source, expression)
    if simple is not None:
        assert simple == parsed(source, expression)


def test_the_fast_reading_covers_the_usual_templates() -> None:
    assert _simple_references("{{ outputs.fetch.rows }} for {{ item }}", False) == [
        Reference("outputs", "fetch"), Reference("item", None)]
    assert _simple_references("{{ inputs.n > 3 }}", False) is None
    assert _simple_references("{% for x in inputs.xs %}{{ x }}{% endfor %}", False) is None
    assert list(references("{{ outputs.a }}", expression=True)) == [Reference("outputs", "a")]


def test_a_dotted_name_evaluates_as_jinja_evaluates_it() -> None:
    from podium.core.templates import _compile_expression, evaluate

    scope = {"inputs": {"n": 3, "rows": [1, 2]}, "outputs": {"fetch": {"rows": [4]},
                                                            "items": "task"},
             "item": {"a": None}}
    for source in ("inputs.n", "{{ outputs.fetch.rows }}", " item.a ", "{{ outputs.items }}",
                   "inputs", "item"):
        inner = source.strip().removeprefix("{{").removesuffix("}}").strip()
        assert evaluate(source, scope) == _compile_expression(inner)(**scope)
    with pytest.raises(TemplateProblem, match="has no attribute 'missing'"):
        evaluate("{{ inputs.missing }}", scope)
    with pytest.raises(TemplateProblem, match="'nowhere' is undefined"):
        evaluate("nowhere.x", scope)
