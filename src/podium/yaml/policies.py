"""The documents of what happens around a task or an agent: `retry:`, `circuit:`,
`budget:`, `checks:` (with `faithful:`) and `router:`, and the core policies they make."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from podium.core.faithful import KINDS, SOURCE_ROOTS, Faithful, Kind
from podium.core.registry import RouterPolicy
from podium.core.workflow import Workflow
from podium.errors import Problem
from podium.yaml.document import DOC_CONFIG


class _Doc(BaseModel):
    model_config = DOC_CONFIG


class RetryDoc(_Doc):
    attempts: int = Field(1, ge=1)
    backoff: float = Field(0.0, ge=0)
    multiplier: float = Field(2.0, ge=1)
    max_delay: float = Field(60.0, ge=0)
    jitter: float = Field(0.1, ge=0, le=1)
    retry_on: list[str] = []
    no_retry_on: list[str] = []


class CircuitDoc(_Doc):
    threshold: int = Field(5, ge=0)
    cooldown: float = Field(30.0, ge=0)


class AgentBudgetDoc(_Doc):
    tokens: int | None = Field(None, ge=0)
    cost_usd: float | None = Field(None, ge=0)
    model_calls: int | None = Field(None, ge=0)
    tool_calls: int | None = Field(None, ge=0)


class BudgetDoc(AgentBudgetDoc):
    seconds: float | None = Field(None, gt=0)


class FaithfulDoc(_Doc):
    kinds: list[Kind] = Field(default_factory=lambda: list(KINDS), min_length=1)
    sources: list[str] = Field(["prompt", "with"], min_length=1)
    """`prompt`, `with`, `inputs`, `inputs.NAME`, `outputs`, `outputs.TASK`."""
    tolerance: float = Field(0.0, ge=0, lt=1)
    allow: list[str | int | float] = []
    small_numbers: int = Field(10, ge=-1)
    max_listed: int = Field(10, ge=1)
    min_figures: int = Field(0, ge=0)

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        for source in value:
            root, dot, name = source.partition(".")
            if root not in SOURCE_ROOTS or (dot and (not name or root in ("prompt", "with"))):
                raise ValueError(f"{source!r} is not a source; use 'prompt', 'with', 'inputs', "
                                 "'inputs.NAME', 'outputs' or 'outputs.TASK'")
        return value

    def build(self) -> Faithful:
        return Faithful(**{**self.model_dump(), "kinds": tuple(self.kinds),
                           "sources": tuple(self.sources), "allow": tuple(self.allow)})


class ChecksDoc(_Doc):
    faithful: FaithfulDoc | None = None
    """Every number, date and name of the output must appear in the task's data
    (`podium.core.faithful`); `true` for the defaults."""

    @field_validator("faithful", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        return {} if value is True else None if value is False else value

    def build(self) -> tuple[Faithful, ...]:
        return (self.faithful.build(),) if self.faithful is not None else ()


class RouterDoc(_Doc):
    model: str | None = None
    top: int = Field(3, ge=1)
    epsilon: float = Field(0.02, ge=0)
    min_score: float | None = Field(None, ge=-1, le=1)

    @model_validator(mode="before")
    @classmethod
    def _model_alone(cls, data: Any) -> Any:
        # `router: local` (a model's name alone) is short for `router: {model: local}`.
        return {"model": data} if isinstance(data, str) else data


def router_policy(doc: RouterDoc | None) -> RouterPolicy | None:
    """A RouterPolicy from a `router:` document, or None."""
    if doc is None:
        return None
    return RouterPolicy(model=doc.model, top=doc.top, epsilon=doc.epsilon,
                        min_score=doc.min_score)


def router_model_problems(workflow: Workflow, doc: RouterDoc | None, field: str
                          ) -> list[Problem]:
    """The problem with the model a `router:` document (at `field`) names, if it names one
    that does not exist: at run time the router would reject every choice and fall back to
    the best score without a word at the check."""
    from podium.models import model_spec_problem

    spec = getattr(doc, "model", None)
    problem = model_spec_problem(spec) if isinstance(spec, str) else None
    return [] if problem is None else [workflow.problem(f"{field}.model", problem)]
