"""The planner's part in a drive of a run: plan before anything runs, wait for the plan's
approval, replan after a failure, add the subtasks a task returns. Everything it decides is
journaled first (`plan_invalid`, `plan_created`, `plan_extended`, and the `plan` step's
own task events), so a resumed run uses the journaled plan and never asks again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from pydantic import ValidationError

from podium.core.events import (
    ModelCalled,
    NewEvent,
    PlanCreated,
    PlanExtended,
    PlanInvalid,
    RunFailed,
    RunWaiting,
    TaskCompleted,
    TaskFailed,
    TaskWaiting,
    split_key,
)
from podium.core.plan import PLAN_KEY, SUBTASKS_KEY, goal_scope
from podium.core.state import RunState
from podium.core.templates import TemplateProblem, render
from podium.core.workflow import HUMAN, Workflow
from podium.engine.planner import (
    PlannedTask,
    Planner,
    PlanOutcome,
    plan_problems,
    planned_workflow,
)
from podium.models.base import Model, ModelResponse
from podium.models.pricing import cost

Journal = Callable[..., Awaitable[None]]
Growth = Literal["none", "grown", "rejected"]
MAX_SUBTASKS = 100
"""The most tasks subtasks may add to a run whose workflow has no planner settings."""


class RunPlanning:
    """Plans for one drive of one run; the runtime asks it at three points."""

    def __init__(self, workflow: Workflow, state: Callable[[], RunState], journal: Journal,
                 reload: Callable[[], Awaitable[None]]) -> None:
        self.base, self.state, self.journal, self.reload = workflow, state, journal, reload
        self.config = workflow.planner
        self.planner = (Planner(workflow) if workflow.goal is not None
                        and workflow.planner is not None else None)

    def workflow(self) -> Workflow:
        """The workflow the run executes: its own tasks and the plan in effect."""
        plan = self.state().plan
        return self.base if plan is None else planned_workflow(self.base, plan["tasks"])

    # -- before anything runs -------------------------------------------------------------

    async def prepare(self) -> bool:
        """Make sure the run has a plan that may run; False when the run now waits for the
        plan's approval or has failed (both journaled)."""
        if self.planner is None:
            return True
        from podium.store.base import Conflict

        while True:
            try:
                return await self._prepare()
            except Conflict:  # an approval came in while we were saying that we wait
                await self.reload()

    async def _prepare(self) -> bool:
        assert self.config is not None
        if self.state().plan is None and not await self._first_plan():
            return False
        state = self.state()
        ts = state.tasks.get(PLAN_KEY)
        status = ts.status if ts is not None else "pending"
        plan = state.plan or {}
        if status == "completed":
            return True
        if not self.config.approve_plan:
            await self.journal(NewEvent.of(TaskCompleted(
                output={"version": plan.get("version"),
                        "tasks": [t["id"] for t in plan.get("tasks", [])]},
                agent="planner"), task=PLAN_KEY))
            return True
        if status == "failed":
            return await self._fail("plan_rejected", ts.error if ts else None)
        if status != "waiting":
            await self.journal(NewEvent.of(TaskWaiting(
                prompt=_approval_prompt(plan), reason="plan", error=""), task=PLAN_KEY))
            ts = self.state().tasks[PLAN_KEY]
        assert ts is not None
        if ts.approval is None:
            state = self.state()
            await self.journal(NewEvent.of(RunWaiting(
                tasks=[t.key for t in state.waiting()])),
                expect_last=state.last_seq, release=True)
            return False
        by = ts.approval.get("by")
        if ts.approval.get("approved"):
            await self.journal(NewEvent.of(TaskCompleted(
                output={"approved": True, "version": plan.get("version"), "by": by},
                agent=HUMAN), task=PLAN_KEY))
            return True
        error = f"plan rejected by {by or 'a human'}"
        if ts.approval.get("reason"):
            error += f": {ts.approval['reason']}"
        await self.journal(NewEvent.of(TaskFailed(
            error=error, error_type="Rejected"), task=PLAN_KEY))
        return await self._fail("plan_rejected", error)

    async def _fail(self, reason: str, error: str | None) -> bool:
        await self.journal(NewEvent.of(RunFailed(reason=reason,
                                                 error=error)), release=True)
        return False

    async def _first_plan(self) -> bool:
        try:
            goal = self._goal()
        except TemplateProblem as e:
            return await self._fail("plan_invalid", f"the goal does not render: {e}")
        outcome = await self._ask("goal", self.base)
        if outcome.tasks is None:
            listed = "\n".join(f"  - {p}" for p in outcome.problems)
            return await self._fail("plan_invalid", (
                f"no plan passed its check in {outcome.attempts} attempt(s) "
                f"(max_repairs={self.config.max_repairs if self.config else 0}); the last "
                f"one failed because:\n{listed}"))
        await self.journal(NewEvent.of(PlanCreated(
            version=1, reason="goal", goal=goal,
            tasks=[t.to_json() for t in outcome.tasks], attempts=outcome.attempts)))
        return True

    def _goal(self) -> str:
        assert self.base.goal is not None
        return str(render(self.base.goal, goal_scope(self.state().inputs)))

    async def _ask(self, reason: str, kept: Workflow, *, planned_before: int = 0,
                   completed: Mapping[str, Any] | None = None,
                   failed: Mapping[str, str] | None = None) -> PlanOutcome:
        assert self.planner is not None

        async def on_reply(attempt: int, model: Model, reply: ModelResponse, ms: float
                           ) -> None:
            usage = reply.usage
            usd = cost(reply.model or model.name, usage.input_tokens, usage.output_tokens)
            await self.journal(NewEvent.of(ModelCalled(
                model=reply.model or model.name, input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens, cost_usd=usd, latency_ms=ms,
                repair=attempt - 1 if attempt > 1 else None), task=PLAN_KEY))

        async def on_invalid(attempt: int, problems: list[str], text: str) -> None:
            await self.journal(NewEvent.of(PlanInvalid(
                attempt=attempt, reason=reason, problems=problems,
                reply=text[:4000])))

        return await self.planner.plan(
            self._goal(), inputs=self.state().inputs, kept=kept,
            planned_before=planned_before, completed=completed, failed=failed,
            on_reply=on_reply, on_invalid=on_invalid)

    # -- after a failure ------------------------------------------------------------------

    async def replan(self, failed: list[str]) -> bool:
        """Ask for a new plan for what remains after planned tasks failed; True when one
        was journaled (the run goes on with it), False when the run should fail."""
        state = self.state()
        if self.planner is None or self.config is None or state.plan is None:
            return False
        replans = sum(1 for h in state.plan_history if h.get("reason") == "replan"
                      and "version" in h)
        planned = {t["id"]: t for t in state.plan["tasks"]}
        if replans >= self.config.max_replans or any(
                split_key(k)[0] not in planned for k in failed):
            return False
        done = [tid for tid in planned if (ts := state.tasks.get(tid)) is not None
                and ts.status in ("completed", "skipped")]
        kept = planned_workflow(self.base, [planned[tid] for tid in done])
        completed = {tid: ts.output for tid in kept.tasks
                     if (ts := state.tasks.get(tid)) is not None and ts.status == "completed"}
        errors = {k: state.task(k).error or "failed" for k in failed}
        outcome = await self._ask("replan", kept, planned_before=len(done),
                                  completed=completed, failed=errors)
        if outcome.tasks is None:
            return False
        await self.journal(NewEvent.of(PlanCreated(
            version=state.plan["version"] + 1, reason="replan", goal=self._goal(),
            tasks=[*(planned[tid] for tid in done), *(t.to_json() for t in outcome.tasks)],
            dropped=sorted(set(planned) - set(done)), failed=errors,
            attempts=outcome.attempts)))
        return True

    # -- subtasks -------------------------------------------------------------------------

    async def grow(self, task_id: str) -> Growth:
        """Add the subtasks a completed task returned, once they pass the check; a task
        whose subtasks fail it fails, naming every problem."""
        state = self.state()
        ts = state.tasks.get(task_id)
        output = ts.output if ts is not None else None
        if not (isinstance(output, dict) and SUBTASKS_KEY in output) or any(
                h.get("by") == task_id for h in state.plan_history):
            return "none"
        raw = output[SUBTASKS_KEY]
        tasks: list[PlannedTask] = []
        problems: list[str] = []
        for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
            try:
                tasks.append(PlannedTask.model_validate(item))
            except ValidationError as e:
                reasons = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}"
                                    for err in e.errors()[:5])
                problems.append(f"subtask {i}: {reasons}")
        before = len(state.plan["tasks"]) if state.plan else 0
        if not problems:
            limit = self.config.max_tasks if self.config else MAX_SUBTASKS
            problems = plan_problems(self.workflow(), tasks, max_tasks=limit,
                                     planned_before=before)
        if problems:
            await self.journal(NewEvent.of(TaskFailed(
                error="its subtasks fail their check: " + "; ".join(problems),
                error_type="SubtasksInvalid"), task=task_id))
            return "rejected"
        version = state.plan["version"] + 1 if state.plan else 1
        await self.journal(NewEvent.of(PlanExtended(
            version=version, tasks=[t.to_json() for t in tasks]), task=task_id))
        return "grown"

    async def catch_up(self) -> bool:
        """Add subtasks that completed tasks returned before a crash cut the run short.
        Returns whether the workflow changed."""
        changed = False
        for task_id, ts in list(self.state().tasks.items()):
            if ts.status == "completed" and isinstance(ts.output, dict) and (
                    SUBTASKS_KEY in ts.output):
                changed = await self.grow(task_id) != "none" or changed
        return changed


def _approval_prompt(plan: Mapping[str, Any]) -> str:
    lines = [f"Approve plan v{plan.get('version')} for: {plan.get('goal')}"]
    for i, task in enumerate(plan.get("tasks", []), start=1):
        needs = f" after {', '.join(task.get('needs', []))}" if task.get("needs") else ""
        lines.append(f"  {i}. {task['id']} [{task['skill']}]{needs}")
    return "\n".join(lines)
