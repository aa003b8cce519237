"""Templates and conditions: native types, interpolation, strictness, the sandbox, references."""

from __future__ import annotations

import json
from typing import Any

import pytest

from podium.core.templates import (
    Reference,
    TemplateProblem,
    evaluate,
    is_template,
    references,
    render,
    template_strings,
)

SCOPE: dict[str, Any] = {
    "inputs": {"month": "2024-05", "n": 4, "rate": 0.25, "flag": True, "tags": ["a", "b"]},
    "outputs": {"extract": {"rows": [{"id": 1}, {"id": 2}], "total": 10}},
}


# -- rendering ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ inputs.n }}", 4),
        ("{{ inputs.rate }}", 0.25),
        ("{{ inputs.flag }}", True),
        ("{{ inputs.tags }}", ["a", "b"]),
        ("{{ outputs.extract }}", {"rows": [{"id": 1}, {"id": 2}], "total": 10}),
        ("{{ outputs.extract.rows[1].id }}", 2),
        ("{{ none }}", None),
        ("{{ inputs.n * 2 + 1 }}", 9),
        ("  {{ inputs.n }}  ", 4),
    ],
)
def test_a_single_expression_keeps_its_native_type(template: str, expected: Any) -> None:
    result = render(template, SCOPE)

    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("report for {{ inputs.month }}", "report for 2024-05"),
        ("{{ inputs.n }} items", "4 items"),
        ("{{ inputs.n }}{{ inputs.n }}", "44"),
        ("{{ inputs.n }} and {{ inputs.flag }}", "4 and True"),
        ("{% for t in inputs.tags %}[{{ t }}]{% endfor %}", "[a][b]"),
        ("{% if inputs.flag %}on{% else %}off{% endif %}", "on"),
    ],
)
def test_text_around_or_between_expressions_renders_a_string(template: str,
                                                             expected: str) -> None:
    assert render(template, SCOPE) == expected


def test_strings_without_template_syntax_are_returned_untouched() -> None:
    value = "plain text with { braces } and 100% sure"

    assert render(value, SCOPE) is value
    assert not is_template(value)
    assert is_template("{{ x }}")
    assert is_template("{% if x %}{% endif %}")


def test_templates_nested_in_lists_and_dicts_are_rendered_and_other_values_kept() -> None:
    args = {
        "n": "{{ inputs.n }}",
        "label": "month {{ inputs.month }}",
        "nested": {"ids": ["{{ outputs.extract.rows[0].id }}", "{{ inputs.rate }}"]},
        "number": 7,
        "nothing": None,
        "tuple": ("{{ inputs.flag }}",),
    }

    assert render(args, SCOPE) == {
        "n": 4,
        "label": "month 2024-05",
        "nested": {"ids": [1, 0.25]},
        "number": 7,
        "nothing": None,
        "tuple": [True],
    }


def test_template_strings_finds_every_template_inside_a_value() -> None:
    value = {"a": "{{ x }}", "b": ["plain", "n={{ y }}"],
             "c": {"d": 1, "e": "{% if z %}{% endif %}"}}

    assert sorted(template_strings(value)) == ["n={{ y }}", "{% if z %}{% endif %}", "{{ x }}"]


# -- tojson -------------------------------------------------------------------------------


def test_tojson_gives_json_text_keeping_unicode() -> None:
    scope = {"inputs": {"city": "Tromsø", "data": {"rows": [1, 2], "ok": True, "none": None}}}

    text = render("payload: {{ inputs.data | tojson }}", scope)
    city = render("{{ inputs.city | tojson }}", scope)

    assert text == 'payload: {"rows": [1, 2], "ok": true, "none": null}'
    assert json.loads(text.removeprefix("payload: ")) == scope["inputs"]["data"]
    assert city == '"Tromsø"'


def test_tojson_does_not_html_escape() -> None:
    text = render("{{ inputs.s | tojson }}", {"inputs": {"s": "<a href='x'>&</a>"}})

    assert json.loads(text) == "<a href='x'>&</a>"
    assert "&lt;" not in text and "\\u003c" not in text


# -- strict undefined -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "value: {{ missing }}",
        "value: {{ inputs.nope }}",
        "value: {{ outputs.extract.nope }}",
        "{% if missing %}x{% endif %}",
    ],
)
def test_undefined_names_in_text_are_errors_not_empty_strings(template: str) -> None:
    with pytest.raises(TemplateProblem, match=r"missing|nope"):
        render(template, SCOPE)


@pytest.mark.parametrize("template", ["{{ missing }}", "{{ inputs.nope }}"])
def test_undefined_names_in_a_single_expression_are_errors(template: str) -> None:
    with pytest.raises(TemplateProblem, match=r"missing|nope"):
        render(template, SCOPE)


def test_an_undefined_condition_is_a_template_problem() -> None:
    with pytest.raises(TemplateProblem, match="missing"):
        bool(evaluate("missing", {}))


def test_an_undefined_name_inside_a_larger_condition_is_a_template_problem() -> None:
    with pytest.raises(TemplateProblem, match="'missing' is undefined"):
        evaluate("missing > 1", {})


def test_syntax_errors_are_template_problems_naming_the_source() -> None:
    with pytest.raises(TemplateProblem, match=r"invalid expression '1 \+'"):
        render("{{ 1 + }}", {})
    with pytest.raises(TemplateProblem, match="invalid template"):
        render("a {% if %}", {})
    with pytest.raises(TemplateProblem, match="invalid template"):
        list(references("{{ inputs. }}"))


# -- the sandbox ----------------------------------------------------------------------------


def _private() -> str:
    return "secret"


SANDBOX_SCOPE: dict[str, Any] = {
    "inputs": {"s": "text", "n": 1, "xs": [1, 2]},
    "fn": _private,
    "cls": int,
}


@pytest.mark.parametrize(
    "template",
    [
        "x {{ ''.__class__ }}",
        "x {{ ''.__class__.__mro__ }}",
        "x {{ ''.__class__.__mro__[1].__subclasses__() }}",
        "x {{ (1).__class__.mro() }}",
        "x {{ fn.__globals__ }}",
        "x {{ fn.__code__ }}",
        "x {{ cls.mro() }}",
        "x {{ cls.__subclasses__() }}",
        "x {{ cycler.__init__.__globals__ }}",
        "x {{ inputs.xs.append(3) }}",
        "x {{ inputs.__class__ }}",
    ],
)
def test_the_sandbox_refuses_python_internals_in_text(template: str) -> None:
    with pytest.raises(TemplateProblem, match=r"unsafe|undefined"):
        render(template, SANDBOX_SCOPE)
    assert SANDBOX_SCOPE["inputs"]["xs"] == [1, 2]


@pytest.mark.parametrize(
    "expression",
    [
        "''.__class__.__mro__",
        "''.__class__.__mro__[1].__subclasses__()",
        "(1).__class__.mro()",
        "inputs.xs.append(3)",
    ],
)
def test_the_sandbox_refuses_python_internals_in_conditions(expression: str) -> None:
    with pytest.raises(TemplateProblem, match="unsafe"):
        evaluate(expression, SANDBOX_SCOPE)
    assert SANDBOX_SCOPE["inputs"]["xs"] == [1, 2]


@pytest.mark.parametrize(
    "template", ["{{ ''.__class__ }}", "{{ fn.__globals__ }}", "{{ cls.mro }}"])
def test_the_sandbox_refuses_python_internals_in_a_single_expression(template: str) -> None:
    with pytest.raises(TemplateProblem, match="unsafe"):
        render(template, SANDBOX_SCOPE)


def test_a_single_unsafe_expression_never_leaks_the_internal_object() -> None:
    internals = {"{{ ''.__class__ }}": str, "{{ fn.__globals__ }}": _private.__globals__,
                 "{{ cls.mro }}": int.mro}
    for template, internal in internals.items():
        try:
            result = render(template, SANDBOX_SCOPE)
        except TemplateProblem:
            continue
        assert result is not internal


# -- references -----------------------------------------------------------------------------


def test_references_name_the_roots_and_their_first_attribute() -> None:
    source = "{{ inputs.month }} {{ outputs['extract'].rows }} {{ outputs.load }} {{ item }}"

    assert list(references(source)) == [
        Reference("inputs", "month"),
        Reference("outputs", "extract"),
        Reference("outputs", "load"),
        Reference("item", None),
    ]


def test_references_see_inside_blocks_and_skip_names_the_template_defines() -> None:
    source = ("{% set total = inputs.base %}{% for row in outputs.extract.rows %}"
              "{{ row.id }}{{ total }}{{ loop.index }}{% endfor %}{{ index }}")

    refs = set(references(source))

    assert refs == {Reference("inputs", "base"), Reference("outputs", "extract"),
                    Reference("loop", "index"), Reference("index", None)}


def test_references_of_a_bare_or_braced_expression() -> None:
    expected = [Reference("inputs", "n"), Reference("outputs", "a")]

    assert list(references("inputs.n > 3 and outputs.a", expression=True)) == expected
    assert list(references("{{ inputs.n > 3 and outputs.a }}", expression=True)) == expected


def test_references_of_a_dynamic_subscript_have_no_attribute() -> None:
    refs = list(references("{{ outputs[inputs.which] }}"))

    assert Reference("outputs", None) in refs
    assert Reference("inputs", "which") in refs


# -- conditions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("inputs.n > 3", True),
        ("inputs.n > 10", False),
        ("{{ inputs.n > 3 }}", True),
        ("{{ inputs.flag and inputs.n == 4 }}", True),
        ("'b' in inputs.tags", True),
        ("inputs.tags | length", 2),
        ("outputs.extract.total >= 10", True),
        ("not inputs.flag", False),
        ("true", True),
        ("false", False),
    ],
)
def test_evaluate_gives_native_values_for_conditions(expression: str, expected: Any) -> None:
    result = evaluate(expression, SCOPE)

    assert result == expected
    assert type(result) is type(expected)


def test_evaluate_gives_lists_for_for_each() -> None:
    assert evaluate("outputs.extract.rows", SCOPE) == [{"id": 1}, {"id": 2}]
    assert evaluate("[1, 2, 3]", {}) == [1, 2, 3]
    assert evaluate("range(3) | list", {}) == [0, 1, 2]


def test_evaluate_reports_type_errors_as_template_problems() -> None:
    with pytest.raises(TemplateProblem, match=r"inputs\.month > 3"):
        evaluate("inputs.month > 3", SCOPE)
