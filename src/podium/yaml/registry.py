"""Agent registries in YAML: agents that many workflows share, declared once.

A registry file holds an `agents:` mapping written exactly as in a workflow, plus what
routing and planning read: `description`, `skills`, `input` and `output` JSON schemas,
`provides` (the name its output goes by, which the planner binds later tasks'
parameters of that name to), and `cost` and `latency` hints::

    # agents/text.yaml
    agents:
      summariser:
        model: local
        description: Condenses long documents into a short abstract.
        skills: [summarise]
        input: {type: object, properties: {text: {type: string}}, required: [text]}
        cost: 0.001       # per task, in USD (or any unit all agents share)
        latency: 2.5      # seconds per task

A workflow takes them in with `registry: agents/` (a folder: every `*.yaml` and `*.yml` in
it, sorted) or `registry: agents/text.yaml` (a file, or a list of files and folders), or
`agents: agents/text.yaml` in place of the mapping. Paths are relative to the workflow's
folder. An agent declared twice, across files or in the workflow too, is an error naming
both places.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from podium.core.check import as_agent
from podium.core.policy import Budget
from podium.core.registry import Declared, Registry
from podium.core.workflow import Workflow
from podium.errors import Problem, UserError, WorkflowError
from podium.yaml.agents import AgentDoc, apply_hints, build_agent
from podium.yaml.code import importable
from podium.yaml.document import compose_document, validation_problems
from podium.yaml.source import YAMLSyntaxError, read_text

_SUFFIXES = (".yaml", ".yml")


class _RegistryDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agents: dict[str, dict[str, Any]] = {}


def registry_files(ref: str | Path, base: Path | None = None) -> list[Path]:
    """The YAML files a registry reference names: a file, or a folder's YAML files sorted.

    Raises:
        UserError: nothing is there, or the folder holds no YAML file.
    """
    path = Path(ref)
    if not path.is_absolute() and base is not None:
        path = base / path
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
        if not files:
            raise UserError(f"registry folder {str(path)!r} holds no .yaml file")
        return files
    if not path.is_file():
        raise UserError(f"no registry file or folder at {str(path)!r}")
    return [path]


def _load_file(file: Path, workflow: Workflow, taken: Collection[str]) -> list[Problem]:
    """Build the agents of one registry file into `workflow` (skipping names in `taken`,
    reported as duplicates)."""
    source = str(file)
    try:
        text = read_text(file)
    except OSError as e:
        return [Problem(message=f"cannot read registry: {e.strerror}", file=source)]
    except YAMLSyntaxError as e:
        return [Problem(message=e.problem, file=source, line=e.line)]
    data, lines = compose_document(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return [Problem(message="a registry file is a mapping with `agents:`", file=source,
                        line=1)]
    try:
        doc = _RegistryDoc.model_validate(data)
    except ValidationError as e:
        return validation_problems(e, "", lines, source)
    scratch = Workflow(workflow.name, source=source)
    scratch.lines = lines
    scratch.mcp_servers = workflow.mcp_servers
    problems: list[Problem] = []
    with importable(file.resolve().parent):
        for name, raw in doc.agents.items():
            line = lines.get(f"agents.{name}")
            if name in taken or name in workflow.agents:
                first = workflow.declared.get(name) or Declared(file=workflow.source,
                                                                line=workflow.lines.get(
                                                                    f"agents.{name}"))
                problems.append(Problem(
                    message=f"duplicate agent {name!r}: also declared at {first}; give one "
                            "of them another name", file=source, line=line,
                    field=f"agents.{name}"))
                continue
            try:
                agent_doc = AgentDoc.model_validate(raw)
            except ValidationError as e:
                problems += validation_problems(e, f"agents.{name}", lines, source)
                continue
            count = len(problems)
            build_agent(name, agent_doc, scratch, problems)
            problems += apply_hints(name, agent_doc, scratch)
            if len(problems) > count or name not in scratch.agents:
                continue
            workflow.add_agent(name, scratch.agents[name])
            workflow.declared[name] = Declared(file=source, line=line)
            if agent_doc.budget is not None:
                workflow.agent_budgets[name] = Budget(**agent_doc.budget.model_dump())
    return problems


def add_registry(workflow: Workflow, refs: Iterable[tuple[str, str]], base: Path | None,
                 own: Collection[str] = ()) -> list[Problem]:
    """Load registries into `workflow`: each ref is `(path, dotted field it was given at)`.
    Agents named in `own` (declared in the workflow itself) are duplicates there."""
    problems: list[Problem] = []
    if workflow.source and base and Path(workflow.source).resolve().parent == base.resolve():
        base = Path(workflow.source).parent  # so messages name files as the user wrote them
    for ref, field in refs:
        try:
            files = registry_files(ref, base)
        except UserError as e:
            problems.append(workflow.problem(field, str(e)))
            continue
        for file in files:
            problems += _load_file(file, workflow, own)
    return problems


def workflow_registry(workflow: Workflow) -> Registry:
    """The workflow's agents as a registry, each with where it was declared.

    Raises:
        UserError: an agent is neither an Agent nor callable.
    """
    registry = Registry()
    for name, ref in workflow.agents.items():
        where = workflow.declared.get(name)
        if where is None and workflow.source is not None:
            where = Declared(file=workflow.source, line=workflow.lines.get(f"agents.{name}"))
        where = where or Declared()
        registry.add(as_agent(name, ref), name=name, file=where.file, line=where.line)
    return registry


def load_registry(*refs: str | Path) -> Registry:
    """The agents of registry files and folders, outside any workflow.

    Raises:
        WorkflowError: every problem found, each naming the file and line.
        UserError: a path names nothing.
    """
    scratch = Workflow("registry")
    problems: list[Problem] = []
    for ref in refs:
        for file in registry_files(ref):
            problems += _load_file(file, scratch, ())
    if problems:
        raise WorkflowError(problems)
    return workflow_registry(scratch)
