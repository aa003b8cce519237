"""libyaml's fast path (`podium.yaml._events`) reads every text it takes exactly as the
pure-Python loader does (data and lines), and leaves the rest to it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from podium.core.inputs import MAX_DEPTH
from podium.yaml import source as _yaml
from podium.yaml._events import libyaml_compose
from podium.yaml.source import YAMLSyntaxError, compose


def pure(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, int]] | str:
    with monkeypatch.context() as patch:
        patch.setattr(_yaml, "libyaml_compose", lambda text, depth: None)
        try:
            return compose(text)
        except YAMLSyntaxError as e:
            return f"error at {e.line}: {e.problem}"


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=8), st.sampled_from(["yes", "1.5e3", "0x1f", "~", "null",
                                                          "2024-01-02", "'q'", "a: b", "- x"]))
data = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(data, st.sampled_from([None, True, False]))
def test_dumped_data_reads_the_same(value: Any, flow: bool | None) -> None:
    text = yaml.safe_dump({"root": value}, default_flow_style=flow, allow_unicode=True)
    with pytest.MonkeyPatch.context() as patch:
        assert libyaml_compose(text, MAX_DEPTH) == pure(text, patch)


PIECES = ["a", "b: ", "- ", "\n", "  ", "{", "}", "[", "]", ", ", ": ", "'x'", '"y"', "1",
          "true", "&a ", "*a", "? ", "---\n", "#c", "\t", "|\n  t", "!!str ", "<<: "]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=16).map("".join))
@example("name: x\ntasks:\n  t0: {agent: step, with: {n: 0}}\n")
@example("a: &x {b: 1}\nc: *x\n")
@example("a: 1\na: 2\n")
@example("---\na: 1\n---\nb: 2\n")
def test_any_text_it_takes_reads_the_same(text: str) -> None:
    fast = libyaml_compose(text, MAX_DEPTH)
    if fast is not None:
        with pytest.MonkeyPatch.context() as patch:
            assert fast == pure(text, patch)


def test_deep_nesting_is_left_to_the_pure_loader() -> None:
    deep = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
    assert libyaml_compose(deep, MAX_DEPTH) is None
    with pytest.raises(YAMLSyntaxError, match=f"nested more than {MAX_DEPTH} levels deep"):
        compose(deep)
    assert libyaml_compose("[" * 50 + "]" * 50, MAX_DEPTH) is not None


def test_a_big_file_keeps_its_lines() -> None:
    text = "tasks:\n" + "".join(f"  t{i}: {{agent: a, needs: [t{i - 1}]}}\n"
                                for i in range(1, 2000))
    data, lines = compose(text)
    assert data["tasks"]["t1999"] == {"agent": "a", "needs": ["t1998"]}
    assert lines["tasks.t1999.needs.0"] == 2000 and lines["tasks"] == 1
