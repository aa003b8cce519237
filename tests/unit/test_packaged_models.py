"""Packaged local models chosen by name (`local:NAME`): the spec is checked when a
workflow is read, with the known names listed, and a missing package is named with the
pip command that installs it."""

from __future__ import annotations

import pytest

from podium import UserError, WorkflowError, parse_workflow
from podium.models import model_spec_problem, resolve_model
from podium.models.packaged import PACKAGED, PackagedModel, packaged_model_path

KNOWN = "the packaged models are 'local:smollm2-135m', 'local:gemma3-270m'"
BASE = """\
name: named
inputs:
  month: {type: string}
agents:
  fetcher: {function: "tests.unit.test_planner:fetch", skills: [fetch_rows]}
"""


def test_a_packaged_name_is_a_model_spec_and_an_unknown_one_lists_the_known() -> None:
    assert model_spec_problem("local:gemma3-270m") is None
    assert model_spec_problem("local:smollm2-135m") is None
    assert model_spec_problem("local:llama-70b") == (
        f"unknown local model 'local:llama-70b': {KNOWN}")
    with pytest.raises(UserError, match="unknown local model 'local:llama-70b'"):
        resolve_model("local:llama-70b")


@pytest.mark.parametrize(("yaml", "expected"), [
    ('goal: "report"\nplanner: {model: "local:gemma3-207m"}\n',
     f"<string>:7: planner.model: unknown local model 'local:gemma3-207m': {KNOWN}"),
    ('goal: "report"\nplanner: {model: local, form: grammar}\n',
     "<string>:7: planner.form: Input should be 'auto', 'constructed' or 'free'"),
])
def test_a_planner_s_mistakes_are_named_with_their_line(yaml: str, expected: str) -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(BASE + yaml)

    assert any(str(p).startswith(expected) for p in caught.value.problems), [
        str(p) for p in caught.value.problems]


def test_a_model_agent_naming_an_unknown_packaged_model_is_named() -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(BASE + "  writer: {model: 'local:tiny'}\ntasks:\n"
                              "  w: {agent: writer, prompt: hi}\n")

    assert [str(p) for p in caught.value.problems] == [
        f"<string>:6: agents.writer.model: unknown local model 'local:tiny': {KNOWN}"]


def test_a_packaged_planner_model_is_read_and_built_on_first_use() -> None:
    wf = parse_workflow(BASE + 'goal: "report"\n'
                               'planner: {model: "local:smollm2-135m", form: constructed}\n')

    assert wf.planner is not None and wf.planner.form == "constructed"
    assert callable(wf.planner.model)


def test_a_missing_package_is_named_with_its_pip_command(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ghost = PackagedModel(name="ghost-1m", package="ghost-1m-gguf",
                          module="podium_ghost_1m_gguf_absent", file="ghost.gguf")
    monkeypatch.setitem(PACKAGED, "ghost-1m", ghost)

    with pytest.raises(UserError) as caught:
        packaged_model_path("ghost-1m")

    assert str(caught.value) == ("model 'local:ghost-1m' needs the package "
                                 "'ghost-1m-gguf': pip install ghost-1m-gguf")
