"""Workflow and input validation: every problem named by file, line and field, all at once,
through `parse_workflow`, `Engine.start` and the `podium` command."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from podium import Engine, InputSpec, Problem, SQLiteStore, Workflow, WorkflowError, parse_workflow

PODIUM = str(Path(sys.executable).with_name("podium"))


def problems_of(yaml_text: str) -> list[Problem]:
    with pytest.raises(WorkflowError) as raised:
        parse_workflow(textwrap.dedent(yaml_text).lstrip(), source="wf.yaml")
    assert raised.value.problems, "a WorkflowError without problems"
    return raised.value.problems


def only_problem(yaml_text: str) -> Problem:
    problems = problems_of(yaml_text)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


# -- one problem each -----------------------------------------------------------------------


def test_a_valid_workflow_parses() -> None:
    wf = parse_workflow(textwrap.dedent("""
        name: ok
        inputs:
          month: string
          n: {type: integer, default: 3}
        agents:
          cap: {function: "string:capwords"}
        tasks:
          title:
            agent: cap
            with: {s: "report for {{ inputs.month }}"}
            retry: {attempts: 3, backoff: 0.5}
            timeout: 10
          review:
            agent: human
            needs: title
            prompt: "Publish {{ outputs.title }}?"
    """), source="wf.yaml")

    assert wf.name == "ok" and wf.source == "wf.yaml"
    assert list(wf.tasks) == ["title", "review"]
    assert wf.tasks["review"].needs == ("title",)
    assert wf.tasks["title"].policy.retry.attempts == 3
    assert wf.inputs["n"] == InputSpec(type="integer", default=3, required=False)


def test_an_unknown_agent_is_named_with_the_known_ones() -> None:
    problem = only_problem("""
        name: w
        agents:
          cap: {function: "string:capwords"}
        tasks:
          a:
            agent: ghost
    """)

    assert (problem.file, problem.line, problem.field) == ("wf.yaml", 6, "tasks.a.agent")
    assert "unknown agent 'ghost'" in problem.message and "'cap'" in problem.message


def test_an_unknown_fallback_agent_is_named() -> None:
    problem = only_problem("""
        name: w
        agents:
          cap: {function: "string:capwords"}
        tasks:
          a:
            agent: cap
            with: {s: x}
            fallback: [spare]
    """)

    assert (problem.line, problem.field) == (8, "tasks.a.fallback")
    assert "unknown agent 'spare'" in problem.message


def test_an_unknown_task_in_needs() -> None:
    problem = only_problem("""
        name: w
        agents:
          cap: {function: "string:capwords"}
        tasks:
          a:
            agent: cap
            with: {s: x}
            needs: [extract]
    """)

    assert (problem.file, problem.line, problem.field) == ("wf.yaml", 8, "tasks.a.needs")
    assert problem.message == "unknown task 'extract' in needs"


def test_a_cycle_is_named_along_its_tasks() -> None:
    problem = only_problem("""
        name: w
        agents:
          cap: {function: "string:capwords"}
        tasks:
          a:
            agent: cap
            with: {s: x}
            needs: [c]
          b:
            agent: cap
            with: {s: x}
            needs: [a]
          c:
            agent: cap
            with: {s: x}
            needs: [b]
    """)

    assert (problem.file, problem.line, problem.field) == ("wf.yaml", 8, "tasks.a.needs")
    assert problem.message == "cycle: 'a' → 'c' → 'b' → 'a'"


def test_a_template_naming_an_undeclared_input() -> None:
    problem = only_problem("""
        name: w
        inputs:
          month: string
        agents:
          cap: {function: "string:capwords"}
        tasks:
          a:
            agent: cap
            with:
              s: "report for {{ inputs.year }}"
    """)

    assert (problem.file, problem.line, problem.field) == ("wf.yaml", 9, "tasks.a.with")
    assert problem.message == "unknown input 'year'; declared inputs: 'month'"


def test_a_template_naming_the_output_of_a_task_that_is_not_upstream() -> None:
    problem = only_problem("""
        name: w
        agents:
          cap: {function: "string:capwords"}
        tasks:
          a:
            agent: cap
            with: {s: x}
          b:
            agent: cap
            prompt: "Improve {{ outputs.a }}"
            with: {s: x}
    """)

    assert (problem.line, problem.field) == (10, "tasks.b.prompt")
    assert "outputs.a is not upstream of task 'b'" in problem.message
    assert "add 'a' to its needs" in problem.message


def test_a_condition_naming_an_unknown_name() -> None:
    problem = only_problem("""
        name: w
        agents:
          cap: {function: "string:capwords"}
        tasks:
          a:
            agent: cap
            with: {s: x}
            when: "secrets.token"
    """)

    assert (problem.line, problem.field) == (8, "tasks.a.when")
    assert "unknown name 'secrets'" in problem.message


def test_a_callable_that_cannot_be_imported() -> None:
    problem = only_problem("""
        name: w
        agents:
          f: {function: "nosuchmodule:fn"}
        tasks:
          a:
            agent: f
    """)

    assert (problem.file, problem.line, problem.field) == ("wf.yaml", 3, "agents.f.function")
    assert "cannot import 'nosuchmodule:fn'" in problem.message
    assert "No module named 'nosuchmodule'" in problem.message


def test_a_missing_attribute_of_a_module() -> None:
    problem = only_problem("""
        name: w
        agents:
          f: {function: "string:nosuchfunction"}
        tasks:
          a:
            agent: f
    """)

    assert (problem.line, problem.field) == (3, "agents.f.function")
    assert "has no 'nosuchfunction'" in problem.message


def test_a_function_that_is_not_callable() -> None:
    problem = only_problem("""
        name: w
        agents:
          f: {function: "math:pi"}
        tasks:
          a:
            agent: f
    """)

    assert (problem.line, problem.field) == (3, "agents.f.function")
    assert problem.message == "'math:pi' is neither callable nor an Agent"


def test_a_callable_without_a_readable_signature_is_a_problem() -> None:
    problem = only_problem("""
        name: w
        agents:
          f: {function: "builtins:dict"}
        tasks:
          a:
            agent: f
    """)

    assert problem.field == "agents.f.function"


@pytest.mark.parametrize(
    ("task_lines", "line", "field", "message"),
    [
        ('retry: {attempts: "three"}', 7, "tasks.a.retry.attempts", "valid integer"),
        ("retry: {attempts: 0}", 7, "tasks.a.retry.attempts", "greater than or equal to 1"),
        ("retry: {jitter: 2}", 7, "tasks.a.retry.jitter", "less than or equal to 1"),
        ("timeout: -1", 7, "tasks.a.timeout", "positive"),
        ("timeout: soon", 7, "tasks.a.timeout", "valid number"),
        ("on_failure: panic", 7, "tasks.a.on_failure", "'fail' or 'escalate'"),
        ("concurrency: 2", 7, "tasks.a.concurrency", "only applies with for_each"),
        ("needs: {a: b}", 7, "tasks.a.needs", "valid list"),
    ],
)
def test_a_field_of_the_wrong_type_or_range(task_lines: str, line: int, field: str,
                                            message: str) -> None:
    problem = only_problem(f"""
        name: w
        agents:
          cap: {{function: "string:capwords"}}
        tasks:
          a:
            agent: cap
            {task_lines}
            with: {{s: x}}
    """)

    assert (problem.file, problem.line, problem.field) == ("wf.yaml", line, field)
    assert message in problem.message


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("name: w\nagents:\n  f: {function: 'string:capwords'}\ntasks:\n"
         "  a:\n    agent: f\n    with: {s: x}\n    retries: 3\n", 8, "tasks.a.retries"),
        ("name: w\ntriggers: []\ntasks:\n  a:\n    agent: human\n", 2, "triggers"),
        ("name: w\nagents:\n  f: {function: 'string:capwords', modle: local}\n"
         "tasks:\n  a:\n    agent: f\n    with: {s: x}\n", 3, "agents.f.modle"),
    ],
)
def test_an_unknown_field_is_named(text: str, line: int, field: str) -> None:
    problem = only_problem(text)

    assert (problem.file, problem.line, problem.field) == ("wf.yaml", line, field)
    assert problem.message == f"unknown field {field.rpartition('.')[2]!r}"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("name: w\ntasks:\n  a:\n    agent: f: g\n", 4),
        ("name: w\ntasks:\n  a:\n    agent: human\n   needs: [x]\n", 5),
        ("name: w\ntasks:\n  a: {agent: human\n", 4),
    ],
)
def test_invalid_yaml_names_the_line(text: str, line: int) -> None:
    problem = only_problem(text)

    assert (problem.file, problem.line) == ("wf.yaml", line)
    assert problem.message.startswith("not valid YAML:")
    assert str(problem).startswith(f"wf.yaml:{line}: ")


def test_a_file_that_is_not_a_mapping() -> None:
    problem = only_problem("- just\n- a list\n")

    assert (problem.file, problem.line) == ("wf.yaml", 1)


def test_a_function_agent_whose_required_parameter_nothing_supplies() -> None:
    problem = only_problem("""
        name: w
        inputs:
          text: string
        agents:
          indent: {function: "textwrap:indent"}
        tasks:
          a:
            agent: indent
            with: {predicate: null}
    """)

    assert (problem.file, problem.line, problem.field) == ("wf.yaml", 9, "tasks.a.with")
    assert "agent 'indent' (textwrap:indent) needs 'prefix'" in problem.message
    assert "add `prefix:` under with:" in problem.message


def test_parameters_supplied_by_upstream_tasks_and_inputs_are_fine() -> None:
    wf = parse_workflow(textwrap.dedent("""
        name: w
        inputs:
          text: string
        agents:
          cap: {function: "string:capwords"}
          indent: {function: "textwrap:indent"}
        tasks:
          prefix:
            agent: cap
            with: {s: "> "}
          a:
            agent: indent
            needs: [prefix]
    """), source="wf.yaml")

    assert wf.tasks["a"].needs == ("prefix",)


# -- all problems at once ---------------------------------------------------------------------


SEVERAL = """\
name: w
inputs:
  month: string
agents:
  cap: {function: "string:capwords"}
  broken: {function: "nosuchmodule:fn"}
  flat: {function: "math:pi"}
tasks:
  a:
    agent: ghost
    with: {s: "{{ inputs.year }}"}
  b:
    agent: cap
    needs: [nope]
    with: {s: "{{ outputs.c }}"}
  c:
    agent: broken
    needs: [d]
  d:
    agent: cap
    needs: [c]
    with: {s: x}
"""


def test_one_file_with_several_problems_reports_all_of_them() -> None:
    problems = problems_of(SEVERAL)

    found = {(p.line, p.field) for p in problems}
    assert found == {
        (6, "agents.broken.function"),
        (7, "agents.flat.function"),
        (10, "tasks.a.agent"),
        (11, "tasks.a.with"),
        (14, "tasks.b.needs"),
        (15, "tasks.b.with"),
        (18, "tasks.c.needs"),
    }
    assert all(p.file == "wf.yaml" for p in problems)
    with pytest.raises(WorkflowError) as raised:
        parse_workflow(SEVERAL, source="wf.yaml")
    assert str(raised.value).startswith("invalid workflow, 7 problems:")


def test_schema_and_semantic_problems_are_reported_together() -> None:
    problems = problems_of("""
        name: w
        agents:
          cap: {function: "string:capwords"}
        tasks:
          a:
            agent: ghost
            retry: {attempts: "three"}
            timeout: -1
          b:
            agent: cap
            with: {s: x}
            retries: 3
    """)

    assert {p.field for p in problems} == {
        "tasks.a.agent", "tasks.a.retry.attempts", "tasks.a.timeout", "tasks.b.retries"}


# -- the command line -------------------------------------------------------------------------


def podium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODIUM, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_cli_validate_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SEVERAL, encoding="utf-8")
    expected = problems_of(SEVERAL)

    result = podium("validate", "bad.yaml", cwd=tmp_path)

    assert result.returncode == 2
    stderr = flat(result.stderr)
    for problem in expected:
        line = flat(str(Problem(message=problem.message, file="bad.yaml", line=problem.line,
                                field=problem.field)))
        assert line in stderr
    assert "7 problems in bad.yaml" in stderr
    assert result.stdout == ""


def test_cli_validate_prints_one_problem_per_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SEVERAL, encoding="utf-8")

    result = podium("validate", "bad.yaml", cwd=tmp_path)

    expected = [f"error: {p}".replace("wf.yaml", "bad.yaml") for p in problems_of(SEVERAL)]
    assert result.stderr.splitlines()[:-1] == expected


GOOD = """\
name: good
inputs:
  n: integer
agents:
  cap: {function: "string:capwords"}
tasks:
  title:
    agent: cap
    with: {s: "n is {{ inputs.n }}"}
"""


def test_cli_validate_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD, encoding="utf-8")

    result = podium("validate", "good.yaml", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "ok" in result.stderr and "good" in result.stderr


def test_cli_validate_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = podium("validate", str(tmp_path / "nope.yaml"), cwd=tmp_path)

    assert result.returncode == 2
    assert "nope.yaml" in result.stderr


def test_cli_run_with_an_ill_typed_input_exits_2_and_journals_nothing(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD, encoding="utf-8")
    db = tmp_path / "journal.db"

    bad = podium("run", "good.yaml", "-i", "n=abc", "--db", str(db), "--no-input",
                 cwd=tmp_path)

    assert bad.returncode == 2
    assert "good.yaml: inputs.n: expected an integer, got 'abc'" in flat(bad.stderr)
    listed = podium("runs", "list", "--json", "--db", str(db), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "[]"


# -- inputs -----------------------------------------------------------------------------------


def inputs_workflow() -> Workflow:
    wf = Workflow("inputs", inputs={
        "n": InputSpec(type="integer"),
        "label": InputSpec(type="string", default="x", required=False),
    }, source="wf.yaml")
    wf.add_task("t", agent=lambda n, label: f"{label}{n}")
    return wf


@pytest.mark.parametrize(
    ("given", "fields", "message"),
    [
        ({}, ["inputs.n"], "missing required input 'n'"),
        ({"n": "abc"}, ["inputs.n"], "expected an integer, got 'abc'"),
        ({"n": "1.5"}, ["inputs.n"], "expected an integer"),
        ({"n": True}, ["inputs.n"], "expected an integer, got true"),
        ({"n": 1, "colour": "red"}, ["inputs.colour"], "unknown input 'colour'"),
        ({"colour": "red", "label": 3}, ["inputs.colour", "inputs.label", "inputs.n"],
         "expected a string, got 3"),
    ],
)
async def test_bad_inputs_are_named_and_nothing_is_journaled(
        store: SQLiteStore, given: dict[str, Any], fields: list[str], message: str) -> None:
    with pytest.raises(WorkflowError) as raised:
        await Engine(store).start(inputs_workflow(), given)

    problems = raised.value.problems
    assert sorted(p.field or "" for p in problems) == fields
    assert all(p.file == "wf.yaml" for p in problems)
    assert message in str(raised.value)
    assert await store.runs() == []


async def test_inputs_from_the_command_line_are_converted(store: SQLiteStore) -> None:
    state = await Engine(store).start(inputs_workflow(), {"n": "42"})

    assert state.status == "completed"
    assert state.inputs == {"n": 42, "label": "x"}
    assert state.outputs() == {"t": "x42"}


async def test_an_invalid_workflow_is_refused_before_anything_is_journaled(
        store: SQLiteStore) -> None:
    wf = Workflow("broken")
    wf.add_task("a", agent="ghost", needs=["nowhere"])

    with pytest.raises(WorkflowError) as raised:
        await Engine(store).start(wf, {})

    assert {p.field for p in raised.value.problems} == {"tasks.a.agent", "tasks.a.needs"}
    assert await store.runs() == []
