"""The agent registry: agents declared in shared YAML files or folders, in a workflow, or in
Python; tasks that name a skill or a description instead of an agent; every mistake named
by file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from podium import (
    FunctionAgent,
    Problem,
    Registry,
    RouterPolicy,
    Workflow,
    WorkflowError,
    load_registry,
    load_workflow,
    parse_workflow,
)

TEXT_AGENTS = """\
agents:
  summariser:
    function: "string:capwords"
    description: Condenses long documents into a short abstract.
    skills: [summarise]
    input: {type: object, properties: {text: {type: string}}, required: [text]}
    output: {type: string}
    cost: 0.002
    latency: 2.5
  translator:
    function: "string:capwords"
    description: Turns text from one language into another.
    skills: [translate, summarise]
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(call: object) -> list[Problem]:
    assert callable(call)
    with pytest.raises(WorkflowError) as raised:
        call()
    return raised.value.problems


# -- loading --------------------------------------------------------------------------------


def test_a_registry_file_gives_agents_with_skills_schemas_and_hints(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, "text.yaml", TEXT_AGENTS))

    assert list(registry) == ["summariser", "translator"]
    assert registry.skills() == {"summarise": ["summariser", "translator"],
                                 "translate": ["translator"]}
    assert registry.with_skill("translate") == ["translator"]
    card = registry.card("summariser")
    assert card["skills"] == ["summarise"] and card["kind"] == "FunctionAgent"
    assert card["input_schema"] == {"type": "object", "properties": {"text": {"type": "string"}},
                                    "required": ["text"]}
    assert card["output_schema"] == {"type": "string"}
    assert (card["cost"], card["latency"]) == (0.002, 2.5)
    assert card["declared"] == f"{tmp_path / 'text.yaml'}:2"
    assert registry.card("translator")["cost"] is None


def test_a_registry_folder_reads_every_yaml_file_in_order(tmp_path: Path) -> None:
    write(tmp_path / "agents", "a.yaml", TEXT_AGENTS)
    write(tmp_path / "agents", "b.yml", """
        agents:
          coder: {function: "string:capwords", skills: [code], description: Writes code.}
    """)
    write(tmp_path / "agents", "notes.txt", "not yaml, not read")

    assert list(load_registry(tmp_path / "agents")) == ["summariser", "translator", "coder"]


def test_a_workflow_takes_agents_from_a_registry_and_tasks_name_skills(tmp_path: Path) -> None:
    write(tmp_path / "agents", "text.yaml", TEXT_AGENTS)
    wf = load_workflow(write(tmp_path, "wf.yaml", """
        name: w
        registry: agents/
        router: {model: "openai:gpt-4o-mini", top: 2}
        agents:
          shouter: {function: "string:capwords", description: Shouts.}
        tasks:
          digest:
            skill: summarise
            description: Give me the gist of the quarterly letter.
            with: {text: hello}
          anything:
            description: Make it loud.
            router: {epsilon: 0.1}
          fixed:
            agent: shouter
            with: {s: x}
    """))

    assert set(wf.agents) == {"summariser", "translator", "shouter"}
    assert wf.declared["summariser"].file == str(tmp_path / "agents" / "text.yaml")
    digest = wf.tasks["digest"]
    assert digest.routed and digest.skill == "summarise" and digest.agent == ""
    assert wf.tasks["anything"].router == RouterPolicy(epsilon=0.1)
    assert not wf.tasks["fixed"].routed
    assert wf.router == RouterPolicy(model="openai:gpt-4o-mini", top=2)


def test_agents_may_be_a_path_to_a_registry(tmp_path: Path) -> None:
    write(tmp_path, "shared.yaml", TEXT_AGENTS)
    wf = load_workflow(write(tmp_path, "wf.yaml", """
        name: w
        agents: shared.yaml
        tasks:
          t: {skill: translate}
    """))

    assert set(wf.agents) == {"summariser", "translator"}


def test_agents_declared_in_python_form_a_registry() -> None:
    registry = Registry()
    agent = FunctionAgent(str.upper, name="upper", description="Upper-cases text.",
                          skills=["shout"])
    agent.cost = 0.5
    registry.add(agent)

    assert registry.card("upper")["declared"] == "Python"
    assert registry.card("upper")["cost"] == 0.5
    with pytest.raises(WorkflowError, match="duplicate agent 'upper': already declared at "
                                            "Python"):
        registry.add(agent, file="x.yaml", line=4)


def test_a_python_workflow_task_may_ask_for_a_skill() -> None:
    wf = Workflow("w")
    wf.add_agent("upper", FunctionAgent(str.upper, name="upper", skills=["shout"]))
    task = wf.add_task("loud", skill="shout")

    assert task.routed
    wf.check()


# -- mistakes, named by file and line ---------------------------------------------------------


def test_an_unknown_skill_is_named_with_the_known_ones(tmp_path: Path) -> None:
    write(tmp_path, "shared.yaml", TEXT_AGENTS)
    (problem,) = problems_of(lambda: parse_workflow(textwrap.dedent("""
        name: w
        registry: shared.yaml
        tasks:
          t:
            skill: juggle
    """).lstrip(), "wf.yaml", base=tmp_path))

    assert (problem.file, problem.line, problem.field) == ("wf.yaml", 5, "tasks.t.skill")
    assert problem.message == ("unknown skill 'juggle': no agent has it; known skills: "
                               "'summarise', 'translate'")


def test_a_task_with_neither_agent_nor_skill_nor_description_is_an_error() -> None:
    (problem,) = problems_of(lambda: parse_workflow(textwrap.dedent("""
        name: w
        agents:
          cap: {function: "string:capwords"}
        tasks:
          t:
            with: {s: x}
    """).lstrip(), "wf.yaml"))

    assert (problem.line, problem.field) == (5, "tasks.t")
    assert "give agent:, or skill: and/or description:" in problem.message


def test_skill_beside_an_agent_is_an_error() -> None:
    (problem,) = problems_of(lambda: parse_workflow(textwrap.dedent("""
        name: w
        agents:
          cap: {function: "string:capwords", skills: [caps]}
        tasks:
          t: {agent: cap, skill: caps, with: {s: x}}
    """).lstrip(), "wf.yaml"))

    assert (problem.line, problem.field) == (5, "tasks.t.skill")


def test_a_router_model_that_names_no_model_is_named_at_the_check() -> None:
    """Else the router would reject every choice at run time and quietly rank by score."""
    problems = problems_of(lambda: parse_workflow(textwrap.dedent("""
        name: w
        router: {model: gtp-4o}
        agents:
          cap: {function: "string:capwords", skills: [caps]}
        tasks:
          t:
            skill: caps
            with: {s: x}
            router: {model: "openai:"}
          u: {skill: caps, with: {s: y}, router: {model: "anthropic:claude-3-5-haiku-latest"}}
    """).lstrip(), "wf.yaml"))

    assert [(p.line, p.field, p.message) for p in problems] == [
        (2, "router.model", "unknown model 'gtp-4o': use 'local' or 'openai:NAME' or "
                            "'anthropic:NAME' (provider:model)"),
        (9, "tasks.t.router.model", "model 'openai:' names no model: use 'openai:NAME'"),
    ]


def test_a_model_s_name_alone_is_short_for_router_model() -> None:
    text = textwrap.dedent("""
        name: w
        router: local
        agents:
          cap: {function: "string:capwords", skills: [caps]}
        tasks:
          t: {skill: caps, with: {s: x}, router: "openai:gpt-4o"}
    """).lstrip()

    workflow = parse_workflow(text, "wf.yaml")
    (problem,) = problems_of(lambda: parse_workflow(
        text.replace("router: local", "router: model"), "wf.yaml"))

    assert workflow.router.model == "local"
    assert workflow.tasks["t"].router is not None
    assert workflow.tasks["t"].router.model == "openai:gpt-4o"
    assert (problem.line, problem.field) == (2, "router.model")
    assert problem.message.startswith("unknown model 'model': use 'local' or")


def test_duplicate_names_across_registry_files_name_both_places(tmp_path: Path) -> None:
    write(tmp_path / "agents", "a.yaml", TEXT_AGENTS)
    write(tmp_path / "agents", "b.yaml", """
        agents:
          coder: {function: "string:capwords"}
          translator: {function: "string:capwords"}
    """)
    (problem,) = problems_of(lambda: load_registry(tmp_path / "agents"))

    assert (problem.file, problem.line) == (str(tmp_path / "agents" / "b.yaml"), 4)
    assert problem.message == (f"duplicate agent 'translator': also declared at "
                               f"{tmp_path / 'agents' / 'a.yaml'}:10; give one of them "
                               "another name")


def test_an_agent_in_both_the_workflow_and_its_registry_is_a_duplicate(tmp_path: Path) -> None:
    write(tmp_path, "shared.yaml", TEXT_AGENTS)
    (problem,) = problems_of(lambda: load_workflow(write(tmp_path, "wf.yaml", """
        name: w
        registry: shared.yaml
        agents:
          summariser: {function: "string:capwords"}
        tasks:
          t: {skill: summarise}
    """)))

    assert (problem.file, problem.line) == (str(tmp_path / "shared.yaml"), 2)
    assert f"also declared at {tmp_path / 'wf.yaml'}:5" in problem.message


def test_schema_errors_name_the_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", """
        agents:
          ok: {function: "string:capwords"}
          broken:
            function: "string:capwords"
            input: {type: objekt}
            output: {type: object, required: yes}
            cost: -1
            skils: [typo]
    """)
    problems = problems_of(lambda: load_registry(path))

    found = {(p.line, p.field): p.message for p in problems}
    assert found[(8, "agents.broken.cost")] == "Input should be greater than or equal to 0"
    assert found[(9, "agents.broken.skils")] == "unknown field 'skils'"
    assert len(problems) == 2  # pydantic stops the agent before its schemas are read

    path.write_text(textwrap.dedent("""
        agents:
          broken:
            function: "string:capwords"
            input: {type: objekt}
            output: {type: object, required: yes}
    """), encoding="utf-8")
    problems = problems_of(lambda: load_registry(path))
    assert [(p.file, p.line, p.field) for p in problems] == [
        (str(path), 5, "agents.broken.input.type"),
        (str(path), 6, "agents.broken.output.required")]
    assert all(p.message.startswith("not a valid JSON schema: ") for p in problems)


def test_a_registry_with_other_keys_or_a_bad_path_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", """
        agents: {}
        tasks: {}
    """)
    (problem,) = problems_of(lambda: load_registry(path))
    assert (problem.line, problem.field, problem.message) == (3, "tasks", "unknown field 'tasks'")

    write(tmp_path, "r.yaml", TEXT_AGENTS)
    (problem,) = problems_of(lambda: load_workflow(write(tmp_path, "wf.yaml", """
        name: w
        registry: [r.yaml, missing/]
        tasks:
          t: {description: anything}
    """)))
    assert (problem.line, problem.field) == (3, "registry.1")
    assert "no registry file or folder at" in problem.message and "missing" in problem.message


def test_a_registry_agent_that_cannot_be_built_is_named_in_its_file(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", """
        agents:
          ghost: {function: "no_such_module_here:fn"}
    """)
    (problem,) = problems_of(lambda: load_registry(path))

    assert (problem.file, problem.line, problem.field) == (str(path), 3,
                                                           "agents.ghost.function")
    assert "cannot import 'no_such_module_here:fn'" in problem.message
