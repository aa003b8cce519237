"""A task's long-term memory: the retrieval it declares (`memory:`), journaled by id, and
the namespace-bound handle its memory tools use (`ctx.memory`).

The namespace comes from the task's template, never from a model: the tools take only a
text, a query or an id. Every access asks `podium.memory.access.authorize` first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from podium.core.agent import TaskContext, TaskInput
from podium.core.events import MemoryRecalled
from podium.core.memory import Memory, MemoryQuery, check_namespace
from podium.core.templates import TemplateProblem, render
from podium.core.workflow import Task, Workflow
from podium.errors import UserError
from podium.memory.access import authorize

if TYPE_CHECKING:
    from podium.memory.store import MemoryStore
    from podium.memory.trust import Validator, Verdict


class BoundMemory:
    """Memory bound to one namespace for one task attempt (`MemoryAccess`).

    Writes are stored untrusted, from source `agent:WORKFLOW/TASK`: what a model writes
    may echo a poisoned tool result, so only a validator can promote it.
    """

    def __init__(self, store: MemoryStore, namespace: str, *, subject: str | None,
                 source: str) -> None:
        self.store, self.namespace, self.subject, self.source = store, namespace, subject, source
        self.ctx: TaskContext | None = None

    async def remember(self, text: str, *, subject: str | None = None,
                       metadata: Mapping[str, Any] | None = None) -> Memory:
        await authorize(self.ctx, "memory:write", self.namespace)
        return await self.store.add(self.namespace, text, source=self.source,
                                    subject=subject or self.subject, trust="untrusted",
                                    metadata=metadata)

    async def recall(self, query: str, *, top_k: int = 5,
                     trusted_only: bool = False) -> list[Memory]:
        await authorize(self.ctx, "memory:read", self.namespace)
        return await self.store.search(self.namespace, query, top_k=top_k,
                                       trusted_only=trusted_only)

    async def forget(self, id: str) -> bool:
        await authorize(self.ctx, "memory:forget", self.namespace)
        return await self.store.forget(self.namespace, id)

    async def promote(self, id: str, validator: Validator) -> Verdict:
        await authorize(self.ctx, "memory:write", self.namespace)
        return await self.store.promote(self.namespace, id, validator)


def needs_memory(workflow: Workflow, store: MemoryStore | None) -> None:
    """Check, before a run starts, that the engine has the memory its tasks declare.

    Raises:
        UserError: a task declares `memory:` and the engine has no memory store.
    """
    if store is None:
        for task in workflow.tasks.values():
            if task.memory is not None:
                raise UserError(
                    f"task {task.id!r} of workflow {workflow.name!r} declares memory: but the "
                    "engine has no memory store; pass Engine(store, memory=SQLiteMemoryStore("
                    "...)) (the podium command uses $PODIUM_HOME/memory.db)")


def bind(task: Task, store: MemoryStore | None, scope: Mapping[str, Any],
         subjects: Sequence[str], workflow: str) -> BoundMemory | None:
    """The task's memory handle, its namespace rendered; None when it declares no memory.

    Raises:
        TemplateProblem: the namespace or subject template failed, or gave no namespace.
        UserError: the task declares memory but the engine has no memory store.
    """
    spec: MemoryQuery | None = task.memory
    if spec is None:
        return None
    if store is None:
        raise UserError(f"task {task.id!r} declares memory: but the engine has no memory "
                        "store; pass Engine(store, memory=SQLiteMemoryStore(...))")
    rendered = render(spec.namespace, scope)
    try:
        namespace = check_namespace(str(rendered).strip())
    except ValueError as e:
        raise TemplateProblem(f"memory.namespace: {e}") from None
    subject = str(render(spec.subject, scope)).strip() if spec.subject else None
    if subject is None and len(subjects) == 1:
        subject = subjects[0]
    return BoundMemory(store, namespace, subject=subject or None,
                       source=f"agent:{workflow}/{task.id}")


async def recalled(task: Task, request: TaskInput, bound: BoundMemory | None,
                   scope: Mapping[str, Any], ctx: TaskContext) -> TaskInput:
    """`request` with the memories the task's `memory.query` finds, journaled by id as a
    `memory_recalled` observation (ids and scores only: texts stay in the memory store)."""
    spec = task.memory
    if bound is None or spec is None or not spec.query:
        return request
    query = str(render(spec.query, scope))
    await authorize(ctx, "memory:read", bound.namespace)
    found = await bound.store.search(bound.namespace, query, top_k=spec.top_k,
                                     trusted_only=spec.trusted_only, min_score=spec.min_score)
    await ctx.record(MemoryRecalled(
        namespace=bound.namespace, ids=[m.id for m in found],
        scores=[m.score for m in found], trust=[m.trust for m in found],
        top_k=spec.top_k, trusted_only=spec.trusted_only))
    if any(m.trust != "trusted" for m in found):
        ctx.mark_untrusted("memory")
    return replace(request, memories=tuple(found))
