"""Pattern blocks in workflow YAML.

A task with `chain:`, `route:`, `parallel:` or `orchestrate:` instead of `agent:` expands
into ordinary tasks before the workflow is read (`split_patterns`); an agent with `vote:`,
`refine:`, `supervisor:` or `discussion:` is a composite agent, built once every other
agent is (`build_pattern_agents`). Problems name the file, the line and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from podium.core.agent import Agent
from podium.core.workflow import HUMAN, Workflow
from podium.errors import Problem, UserError
from podium.patterns.dag import (
    COLLECT,
    Collect,
    Planned,
    Step,
    plan_chain,
    plan_orchestrate,
    plan_parallel,
    plan_route,
)
from podium.patterns.discussion import ROUND_ROBIN, Discussion
from podium.patterns.refine import Refine
from podium.patterns.supervisor import Supervisor
from podium.patterns.vote import Rule, Vote
from podium.yaml.agents import Unbuilt
from podium.yaml.document import DOC_CONFIG, listify, validation_problems

TASK_PATTERNS = ("chain", "route", "parallel", "orchestrate")
AGENT_PATTERNS = ("vote", "refine", "supervisor", "discussion")


class _Doc(BaseModel):
    model_config = DOC_CONFIG


class StepDoc(BaseModel):
    """A step written as a mapping: its agent, its task id, and any other task field."""

    model_config = ConfigDict(extra="allow")
    agent: str
    id: str | None = None

    def step(self) -> Step:
        return Step(agent=self.agent, id=self.id, options=dict(self.model_extra or {}))


StepField = str | StepDoc


def _step(value: StepField | None) -> Step | None:
    if value is None:
        return None
    return Step(agent=value) if isinstance(value, str) else value.step()


class _Block(_Doc):
    with_: dict[str, Any] = Field({}, alias="with")
    prompt: str | None = None
    needs: list[str] = []
    description: str = ""

    _split = field_validator("needs", mode="before")(listify)


class ChainBlock(_Block):
    chain: list[StepField] = Field(min_length=1)


class RouteDoc(_Doc):
    classifier: StepField
    branches: dict[str, StepField] = Field(min_length=1)


class RouteBlock(_Block):
    route: RouteDoc


class ParallelBlock(_Block):
    parallel: dict[str, StepField] = Field(min_length=1)
    combine: StepField | None = None


class OrchestrateDoc(_Doc):
    planner: StepField
    worker: StepField
    synthesizer: StepField | None = None
    concurrency: int | None = Field(None, ge=1)
    max_items: int | None = Field(None, ge=1)


class OrchestrateBlock(_Block):
    orchestrate: OrchestrateDoc


class VoteDoc(_Doc):
    agents: list[str] = Field(min_length=2)
    rule: Rule = "majority"
    judge: str | None = None
    key: str | None = None


class RefineDoc(_Doc):
    generator: str
    evaluator: str
    max_rounds: int = Field(3, ge=1)


class SupervisorDoc(_Doc):
    lead: str
    agents: list[str] = Field(min_length=1)
    max_handoffs: int = Field(5, ge=1)


class DiscussionDoc(_Doc):
    members: list[str] = Field(min_length=2)
    speaker: str = ROUND_ROBIN
    max_turns: int = Field(6, ge=1)
    until: str | None = None


class PatternAgentDoc(_Doc):
    vote: VoteDoc | None = None
    refine: RefineDoc | None = None
    supervisor: SupervisorDoc | None = None
    discussion: DiscussionDoc | None = None
    description: str = ""
    skills: list[str] = []


_BLOCKS: dict[str, type[_Block]] = {"chain": ChainBlock, "route": RouteBlock,
                                    "parallel": ParallelBlock, "orchestrate": OrchestrateBlock}


@dataclass(kw_only=True)
class PatternSplit:
    """A workflow document's agents and tasks with the patterns taken out."""

    agents: dict[str, Any] = field(default_factory=dict)
    """Agents that are not patterns, as written."""
    tasks: dict[str, Any] = field(default_factory=dict)
    """Tasks, pattern blocks replaced by the tasks they expand to."""
    pattern_agents: dict[str, PatternAgentDoc | None] = field(default_factory=dict)
    """Composite agents, None for one whose document has problems (already reported)."""
    problems: list[Problem] = field(default_factory=list)
    collect: bool = False
    """Whether an expanded task uses the built-in join agent."""


def _alias(lines: dict[str, int], source: str, target: str) -> None:
    """Lines of `target`'s fields are those of `source`'s: a generated task's problems
    point at the pattern step it came from."""
    for key in [k for k in lines if k == source or k.startswith(source + ".")]:
        lines[target + key[len(source):]] = lines[key]


def _plan(block: Any, task_id: str) -> Planned:
    common = {"args": block.with_, "prompt": block.prompt, "needs": block.needs}
    if isinstance(block, ChainBlock):
        return plan_chain(task_id, [s for s in map(_step, block.chain) if s], **common)
    if isinstance(block, RouteBlock):
        classifier = _step(block.route.classifier)
        assert classifier is not None
        return plan_route(task_id, classifier,
                          {k: Step(agent=v) if isinstance(v, str) else v.step()
                           for k, v in block.route.branches.items()}, **common)
    if isinstance(block, ParallelBlock):
        return plan_parallel(task_id, {k: Step(agent=v) if isinstance(v, str) else v.step()
                                       for k, v in block.parallel.items()},
                             combine=_step(block.combine), **common)
    assert isinstance(block, OrchestrateBlock)
    doc = block.orchestrate
    planner, worker = _step(doc.planner), _step(doc.worker)
    assert planner is not None and worker is not None
    return plan_orchestrate(task_id, planner, worker, _step(doc.synthesizer), **common,
                            concurrency=doc.concurrency, max_items=doc.max_items)


def _expand_task(task_id: str, raw: dict[str, Any], kinds: list[str], split: PatternSplit,
                 written: Mapping[str, Any], lines: dict[str, int], source: str) -> None:
    at = f"tasks.{task_id}"
    if len(kinds) != 1:
        split.problems.append(Problem(
            message=f"give one pattern, not {' and '.join(map(repr, kinds))}",
            file=source, line=lines.get(at), field=at))
        split.tasks[task_id] = {"agent": HUMAN}
        return
    try:
        block = _BLOCKS[kinds[0]].model_validate(raw)
    except ValidationError as e:
        split.problems += validation_problems(e, at, lines, source)
        # A stand-in (a human task adds no problems of its own), so that the tasks that
        # need this one are still checked.
        needs = listify(raw.get("needs", []))
        split.tasks[task_id] = {"agent": HUMAN, "needs": [
            n for n in needs if isinstance(n, str)] if isinstance(needs, list) else []}
        return
    for new_id, spec, step_at in _plan(block, task_id):
        if new_id != task_id and (new_id in written or new_id in split.tasks):
            split.problems.append(Problem(
                message=f"pattern {task_id!r} makes a task {new_id!r}, but there is already "
                        f"one of that id; give the step an `id:`",
                file=source, line=lines.get(f"{at}.{step_at}" if step_at else at), field=at))
            continue
        _alias(lines, at, f"tasks.{new_id}")
        if step_at:
            _alias(lines, f"{at}.{step_at}", f"tasks.{new_id}")
        split.collect |= spec.get("agent") == COLLECT
        split.tasks[new_id] = spec


def split_patterns(agents: Mapping[str, Any], tasks: Mapping[str, Any], lines: dict[str, int],
                   source: str) -> PatternSplit:
    """Take the patterns out of a workflow document's `agents:` and `tasks:`.

    Pattern tasks are replaced by the tasks they expand to (whose fields get the lines
    of the steps they came from); pattern agents are checked and kept for
    `build_pattern_agents`. Every problem found is kept in `.problems`.
    """
    split = PatternSplit()
    for name, raw in agents.items():
        if not (isinstance(raw, dict) and any(k in raw for k in AGENT_PATTERNS)):
            split.agents[name] = raw
            continue
        try:
            split.pattern_agents[name] = PatternAgentDoc.model_validate(raw)
        except ValidationError as e:
            split.problems += validation_problems(e, f"agents.{name}", lines, source)
            split.pattern_agents[name] = None
    for task_id, raw in tasks.items():
        kinds = [k for k in TASK_PATTERNS if isinstance(raw, dict) and k in raw]
        if kinds:
            _expand_task(task_id, raw, kinds, split, tasks, lines, source)
        else:
            split.tasks[task_id] = raw
    return split


def _references(doc: PatternAgentDoc) -> tuple[str, list[tuple[str, str]]]:
    """The pattern's kind, and the agents it names with the field naming each."""
    if doc.vote is not None:
        refs = [(f"agents.{i}", a) for i, a in enumerate(doc.vote.agents)]
        return "vote", refs + ([("judge", doc.vote.judge)] if doc.vote.judge else [])
    if doc.refine is not None:
        return "refine", [("generator", doc.refine.generator),
                          ("evaluator", doc.refine.evaluator)]
    if doc.supervisor is not None:
        return "supervisor", [("lead", doc.supervisor.lead)] + [
            (f"agents.{i}", a) for i, a in enumerate(doc.supervisor.agents)]
    assert doc.discussion is not None
    speaker = doc.discussion.speaker
    return "discussion", [(f"members.{i}", a) for i, a in enumerate(doc.discussion.members)
                          ] + ([("speaker", speaker)] if speaker != ROUND_ROBIN else [])


def _construct(name: str, doc: PatternAgentDoc, workflow: Workflow) -> Agent:
    common: dict[str, Any] = {"name": name, "registry": workflow.agents,
                              "description": doc.description, "skills": doc.skills}
    if doc.vote is not None:
        v = doc.vote
        return Vote(v.agents, rule=v.rule, judge=v.judge, key=v.key, **common)
    if doc.refine is not None:
        r = doc.refine
        return Refine(r.generator, r.evaluator, max_rounds=r.max_rounds, **common)
    if doc.supervisor is not None:
        s = doc.supervisor
        return Supervisor(s.lead, s.agents, max_handoffs=s.max_handoffs, **common)
    assert doc.discussion is not None
    d = doc.discussion
    return Discussion(d.members, speaker=d.speaker, max_turns=d.max_turns, until=d.until,
                      **common)


def _build_one(name: str, doc: PatternAgentDoc, known: set[str], workflow: Workflow
               ) -> list[Problem]:
    at = f"agents.{name}"
    kinds = [k for k in AGENT_PATTERNS if getattr(doc, k) is not None]
    if len(kinds) != 1:
        return [workflow.problem(at, "give exactly one of `vote:`, `refine:`, "
                                     "`supervisor:` or `discussion:`")]
    kind, refs = _references(doc)
    problems = []
    for where, ref in refs:
        if ref == name:
            problems.append(workflow.problem(f"{at}.{kind}.{where}",
                                             f"agent {name!r} cannot call itself"))
        elif ref == HUMAN or ref not in known:
            listed = ", ".join(map(repr, sorted(known - {name}))) or "none"
            problems.append(workflow.problem(
                f"{at}.{kind}.{where}", f"unknown agent {ref!r}; known agents: {listed}"))
    if problems:
        return problems
    try:
        workflow.add_agent(name, _construct(name, doc, workflow))
    except UserError as e:
        return [workflow.problem(f"{at}.{kind}", str(e))]
    return []


def build_pattern_agents(split: PatternSplit, workflow: Workflow) -> list[Problem]:
    """Build the composite agents (their sub-agents are looked up in the workflow when a
    run calls them) and the join agent expanded tasks use. Returns the problems found."""
    if split.collect and COLLECT not in workflow.agents:
        workflow.add_agent(COLLECT, Collect())
    known = set(workflow.agents) | set(split.pattern_agents)
    problems: list[Problem] = []
    for name, doc in split.pattern_agents.items():
        found = [] if doc is None else _build_one(name, doc, known, workflow)
        if doc is None or found:
            workflow.add_agent(name, Unbuilt(name))
        problems += found
    return problems
