"""The router: a task that names a skill or only a description finds its agent.

For such a task, when it first starts, the router

1. keeps the agents that have the task's skill (every agent, for a task without one) and
   whose circuit is not open;
2. ranks them by meaning: the cosine similarity of the task's text (its description and
   rendered prompt) with each agent's description, embedded by the local embedding model
   (`podium.memory.embeddings.default_embedder`); agents' vectors are computed once per
   process;
3. optionally lets a model choose among the best few (`router: {model: ...}`), with
   structured output; a choice outside the candidates, or a failed call, is rejected and
   the best score wins instead;
4. between agents whose scores tie (within `epsilon`), prefers the cheaper, then the
   faster, by their `cost` and `latency` hints.

The decision (a `RoutingDecision`) and its reasons are journaled by the task runner as a
`task_routed` event before the task starts, so a resumed run uses the same agent without
asking again. When nothing fits, the decision names the nearest agents and the task fails
through its policy (escalate, default or fail).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from podium.core.agent import Agent
from podium.core.events import ModelCalled
from podium.core.registry import RouterPolicy
from podium.core.workflow import Task
from podium.errors import ModelError, UserError

if TYPE_CHECKING:
    from podium.memory.embeddings import Embedder
    from podium.models.base import Model

IsOpen = Callable[[str], Awaitable[bool]]
"""Whether the circuit of the agent of that name is open."""

_SHOWN = 10
"""At most this many candidates and filtered agents are journaled (the best-scored)."""
_QUERY_CHARS = 300
_MATRICES = 64


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """An agent the router weighed, with its score."""

    agent: str
    score: float | None
    """Cosine similarity of the task's text with the agent's description (-1..1), or None
    when there was nothing to compare (no embedder)."""
    cost: float | None = None
    latency: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"agent": self.agent,
                "score": None if self.score is None else round(self.score, 4),
                "cost": self.cost, "latency": self.latency}


@dataclass(frozen=True, kw_only=True)
class LeftOut:
    """An agent the router did not weigh, and why."""

    agent: str
    reason: str
    """`lacks skill …`, `circuit open` or `score below min_score …`."""
    score: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"agent": self.agent, "reason": self.reason, "score": _round(self.score)}


RoutedBy = Literal["score", "tie-break", "hints", "model", "none"]
"""What decided: the best score, a tie broken by cost and latency, the hints alone (no
scores), the router's model, or nothing (no agent fits)."""


@dataclass(frozen=True, kw_only=True)
class RoutingDecision:
    """The router's choice of an agent for one task, with its reasons. The task runner
    journals it (`to_json`, the data of a `task_routed` event) before the task starts."""

    skill: str | None
    """The skill the task asks for, if any."""
    query: str
    """The task's text the agents were compared with (its first 300 characters)."""
    agent: str | None = None
    """The agent chosen; None when nothing fits (`error` says why)."""
    by: RoutedBy = "none"
    why: str = ""
    """The reason, in words."""
    candidates: tuple[Candidate, ...] = ()
    """The agents weighed, best first (at most ten)."""
    filtered: tuple[LeftOut, ...] = ()
    """The agents left out, nearest in meaning first (at most ten)."""
    model: Mapping[str, Any] | None = None
    """The router's model's choice (`name`, `choice`, `reason`, `valid`, `error`), when
    it was asked."""
    embeddings: str | None = None
    """Why agents were ranked without their meaning, when the embedder failed."""
    error: str | None = None
    """Why no agent fits."""

    def to_json(self) -> dict[str, Any]:
        """The decision as journaled: a `task_routed` event's data, `TaskState.routing`."""
        data: dict[str, Any] = {"skill": self.skill, "query": self.query}
        if self.embeddings is not None:
            data["embeddings"] = self.embeddings
        data["filtered"] = [f.to_json() for f in self.filtered]
        data["candidates"] = [c.to_json() for c in self.candidates]
        if self.model is not None:
            data["model"] = dict(self.model)
        data.update(agent=self.agent, by=self.by, why=self.why)
        if self.error is not None:
            data["error"] = self.error
        return data


class _Choice(BaseModel):
    agent: str
    reason: str = ""


def _hint(value: float | None) -> float:
    return math.inf if value is None else value


def _text(name: str, agent: Agent) -> str:
    """What an agent is compared by: its description, else its name and skills."""
    if agent.description.strip():
        return agent.description.strip()
    skills = f" ({', '.join(agent.skills)})" if agent.skills else ""
    return name.replace("_", " ") + skills


def query_text(task: Task, prompt: str | None) -> str:
    """What a task is compared by: its description and rendered prompt, else its skill."""
    parts = [p.strip() for p in (task.description, prompt or "") if p and p.strip()]
    return "\n".join(parts) or (task.skill or task.id).replace("_", " ")


def _tie_key(c: Candidate) -> tuple[float, float, float]:
    return _hint(c.cost), _hint(c.latency), -(c.score or 0.0)


def _why_tie(winner: Candidate, best: Candidate, epsilon: float) -> str:
    if winner.cost != best.cost:
        edge = f"cheaper (cost {winner.cost:g} vs {_fmt(best.cost)})"
    else:
        edge = f"faster (latency {_fmt(winner.latency)} vs {_fmt(best.latency)})"
    return (f"{winner.agent!r} ties with {best.agent!r} (scores within {epsilon:g}) and is "
            f"{edge}")


def _fmt(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g}"


class Router:
    """Chooses agents for tasks; keeps agents' description vectors between decisions.

    Args:
        embedder: what turns texts into vectors (default: the process-wide local model,
            loaded at the first decision).
    """

    def __init__(self, embedder: Embedder | None = None) -> None:
        self._embedder = embedder
        self._vectors: dict[str, Any] = {}
        """Agents' description vectors, by description."""
        self._matrices: dict[tuple[str, ...], Any] = {}
        """The vectors of a set of agents stacked, by their descriptions in order."""
        self._models: dict[str, Model] = {}
        self._lock = threading.Lock()

    def _embedder_or_default(self) -> Embedder:
        if self._embedder is None:
            from podium.memory.embeddings import default_embedder

            self._embedder = default_embedder()
        return self._embedder

    async def scores(self, query: str, agents: Mapping[str, Agent]) -> dict[str, float]:
        """The similarity of `query` with each agent's description, by agent name.

        Raises:
            UserError: the embedding model is not installed.
            ModelError: a remote embedder failed.
        """
        import numpy as np

        embedder = self._embedder_or_default()
        texts = tuple(_text(name, agent) for name, agent in agents.items())
        if not texts:
            return {}
        matrix = self._matrices.get(texts)
        if matrix is None:
            missing = sorted({t for t in texts if t not in self._vectors})
            if missing:
                vectors = await embedder.embed(missing)
                with self._lock:
                    self._vectors.update(zip(missing, vectors, strict=True))
            matrix = np.stack([self._vectors[t] for t in texts])
            with self._lock:
                if len(self._matrices) >= _MATRICES:
                    self._matrices.clear()
                self._matrices[texts] = matrix
        wanted = await embedder.embed_one(query)
        scores: list[float] = (matrix @ wanted).tolist()
        return dict(zip(agents, scores, strict=True))

    def model(self, spec: Any) -> Model:
        """The model a `router: {model: ...}` names (resolved once per name)."""
        if not isinstance(spec, str):
            found: Model = spec
            return found
        with self._lock:
            if spec not in self._models:
                from podium.models import resolve_model

                self._models[spec] = resolve_model(spec)
            return self._models[spec]

    async def decide(self, task: Task, *, prompt: str | None, agents: Mapping[str, Agent],
                     is_open: IsOpen, policy: RouterPolicy,
                     record: Callable[[ModelCalled], Awaitable[None]] | None = None
                     ) -> RoutingDecision:
        """Choose an agent for `task` among `agents`, with the reasons. `record` journals
        the choosing model's call."""
        query = query_text(task, prompt)
        decision = RoutingDecision(skill=task.skill, query=query[:_QUERY_CHARS])
        filtered: list[tuple[str, str]] = []
        eligible: dict[str, Agent] = {}
        for name, agent in agents.items():
            if task.skill is not None and task.skill not in agent.skills:
                filtered.append((name, f"lacks skill {task.skill!r}"))
            elif await is_open(name):
                filtered.append((name, "circuit open"))
            else:
                eligible[name] = agent
        try:
            scores: dict[str, float | None] = dict(await self.scores(query, agents))
        except (UserError, ModelError) as e:
            if task.skill is None:
                return replace(decision, error=f"cannot rank agents by meaning: {e}")
            decision = replace(decision,
                               embeddings=f"unavailable ({e}); ranked by cost and latency")
            scores = dict.fromkeys(agents)
        ranked = sorted((Candidate(agent=n, score=scores[n], cost=a.cost, latency=a.latency)
                         for n, a in eligible.items()), key=lambda c: -(c.score or 0.0))
        if policy.min_score is not None:
            low = [c for c in ranked if c.score is not None and c.score < policy.min_score]
            # The score is listed beside the reason already (journal and error alike).
            filtered += [(c.agent, f"score below min_score {policy.min_score:g}")
                         for c in low]
            ranked = [c for c in ranked if c not in low]
        decision = replace(decision, filtered=tuple(
            LeftOut(agent=n, reason=r, score=scores.get(n))
            for n, r in sorted(filtered, key=lambda f: -(scores.get(f[0]) or 0.0)))[:_SHOWN])
        if not ranked:
            return replace(decision, error=self._nothing_fits(task, filtered, scores))
        ranked = self._tie_ordered(ranked, policy.epsilon)
        decision = replace(decision, candidates=tuple(ranked[:_SHOWN]))
        winner, by, why = self._by_score(ranked, policy.epsilon)
        if policy.model is not None and len(ranked) > 1:
            winner, by, why, asked = await self._ask_model(
                task, query, ranked[:policy.top], agents, policy, record, (winner, by, why))
            decision = replace(decision, model=asked)
        return replace(decision, agent=winner.agent, by=by, why=why)

    @staticmethod
    def _tie_ordered(ranked: list[Candidate], epsilon: float) -> list[Candidate]:
        """Candidates by score, each group tied with the best left first ordered by hints."""
        best = ranked[0].score
        if best is None:
            return sorted(ranked, key=lambda c: (_hint(c.cost), _hint(c.latency)))
        tied = [c for c in ranked if c.score is not None and best - c.score <= epsilon]
        return [*sorted(tied, key=_tie_key), *ranked[len(tied):]]

    @staticmethod
    def _by_score(ranked: list[Candidate], epsilon: float) -> tuple[Candidate, RoutedBy, str]:
        winner = ranked[0]
        best = max(ranked, key=lambda c: c.score if c.score is not None else -math.inf)
        if winner.score is None:
            return winner, "hints", (f"{winner.agent!r} is the cheapest, then fastest, of the "
                                     "agents with the skill")
        if winner is not best:
            return winner, "tie-break", _why_tie(winner, best, epsilon)
        rival = ranked[1] if len(ranked) > 1 else None
        if rival is not None and rival.score is not None and (
                winner.score - rival.score < 1e-6 and (rival.cost, rival.latency) != (
                    winner.cost, winner.latency)):
            return winner, "tie-break", _why_tie(winner, rival, epsilon)
        runner_up = f", next {ranked[1].agent!r} at {ranked[1].score:.3f}" if (
            len(ranked) > 1 and ranked[1].score is not None) else ""
        return winner, "score", (f"{winner.agent!r} is the closest in meaning "
                                 f"({winner.score:.3f}{runner_up})")

    @staticmethod
    def _nothing_fits(task: Task, filtered: list[tuple[str, str]],
                      scores: Mapping[str, float | None]) -> str:
        wanted = f" with skill {task.skill!r}" if task.skill else ""
        nearest = sorted(filtered, key=lambda f: -(scores.get(f[0]) or 0.0))[:3]
        listed = "; ".join(
            f"{n!r} ({'' if scores.get(n) is None else f'score {scores[n]:.3f}, '}{r})"
            for n, r in nearest) or "none declared"
        return (f"no agent fits task {task.id!r}: none{wanted} is available; nearest: "
                f"{listed}")

    async def _ask_model(
        self, task: Task, query: str, top: list[Candidate], agents: Mapping[str, Agent],
        policy: RouterPolicy, record: Callable[[ModelCalled], Awaitable[None]] | None,
        fallback: tuple[Candidate, RoutedBy, str],
    ) -> tuple[Candidate, RoutedBy, str, dict[str, Any]]:
        from podium.models.base import Message

        names = [c.agent for c in top]
        listing = "\n".join(f"- {c.agent}: {_text(c.agent, agents[c.agent])}" for c in top)
        schema = {"type": "object", "required": ["agent"], "additionalProperties": False,
                  "properties": {"agent": {"type": "string", "enum": names},
                                 "reason": {"type": "string"}}}
        messages = [
            Message(role="system", content="You assign a task to the one agent best able to "
                    "do it. Answer with JSON: {\"agent\": NAME, \"reason\": WHY}, NAME being "
                    "one of the agents listed."),
            Message(role="user", content=f"Task: {query}\n\nAgents:\n{listing}")]
        asked: dict[str, Any] = {}
        try:
            model = self.model(policy.model)
            asked["name"] = model.name
            started = time.perf_counter()
            reply = await model.complete(messages, output_schema=schema, temperature=0.0)
            if record is not None:
                from podium.models.pricing import cost

                await record(ModelCalled(model=reply.model or model.name,
                                         input_tokens=reply.usage.input_tokens,
                                         output_tokens=reply.usage.output_tokens,
                                         cost_usd=cost(reply.model or model.name,
                                                       reply.usage.input_tokens,
                                                       reply.usage.output_tokens),
                                         latency_ms=round((time.perf_counter() - started) * 1e3,
                                                          3),
                                         purpose="routing"))
            choice = _Choice.model_validate(json.loads(reply.text))
        except (ModelError, UserError, ValueError, ValidationError) as e:
            error = (str(e) if not isinstance(e, ValidationError)
                     else "reply does not fit {agent, reason}")
            asked.update(valid=False, error=f"{type(e).__name__}: {error}"[:300])
            winner, by, why = fallback
            return winner, by, f"{why}; the model's choice was rejected", asked
        asked.update(choice=choice.agent, reason=choice.reason[:300])
        if choice.agent not in names:
            asked.update(valid=False, error=f"{choice.agent!r} is not one of the candidates "
                                            f"{names}")
            winner, by, why = fallback
            return winner, by, f"{why}; the model's choice was rejected", asked
        asked["valid"] = True
        chosen = top[names.index(choice.agent)]
        why = f"the model chose {chosen.agent!r} among {names}" + (
            f": {choice.reason[:200]}" if choice.reason else "")
        return chosen, "model", why, asked


def _round(score: float | None) -> float | None:
    return None if score is None else round(score, 4)


_default: Router | None = None
_default_lock = threading.Lock()


def default_router() -> Router:
    """The process-wide router, so agents' vectors are computed once per process."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Router()
        return _default


def describe_routing(decision: Mapping[str, Any]) -> list[str]:
    """A routing decision as lines for people: the winner and why, then the candidates
    and the agents left out."""
    if decision.get("agent") is None:
        lines = [f"no agent: {decision.get('error')}"]
    else:
        lines = [f"→ {decision['agent']} by {decision.get('by')}: {decision.get('why')}"]
    model = decision.get("model")
    if model and not model.get("valid"):
        lines.append(f"model {model.get('name')!r} rejected: {model.get('error')}")
    scored = ", ".join(f"{c['agent']} {'-' if c['score'] is None else format(c['score'], '.3f')}"
                       for c in decision.get("candidates", []))
    if scored:
        lines.append(f"candidates: {scored}")
    left = ", ".join(f"{f['agent']} ({f['reason']})" for f in decision.get("filtered", []))
    if left:
        lines.append(f"left out: {left}")
    return lines
