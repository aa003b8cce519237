"""Which Python modules a workflow file may name: the access policy's `functions: {allow:
[...]}`, in force while a workflow is loaded (`podium validate`, `run`, `resume`, `agents`,
`mcp serve`).

A file names Python code in `function:`, `tools:`, `output:` and a planner's `model:`;
loading it imports the module, which runs the module's code, so the check comes before the
import. Podium's own built-in agents are not named by the file and are not checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from podium.core.workflow import Workflow
from podium.errors import UserError, WorkflowError
from podium.security.rbac import Policy

_POLICY: ContextVar[Policy | None] = ContextVar("podium_functions_policy", default=None)


@contextmanager
def functions_allowed(policy: Policy | None) -> Iterator[None]:
    """Within the block, workflow files may name code only from the modules `policy`'s
    `functions.allow` matches (None, or a policy without `functions:`: any module)."""
    token = _POLICY.set(policy)
    try:
        yield
    finally:
        _POLICY.reset(token)


def check_module(ref: str, module: str) -> None:
    """Raise unless the policy in force lets a workflow file name code from `module`.

    Raises:
        UserError: it does not; the message names the policy's allow list.
    """
    policy = _POLICY.get()
    if policy is None or policy.function_allowed(module):
        return
    allowed = ", ".join(map(repr, policy.functions or ())) or "none"
    raise UserError(f"{ref!r}: module {module!r} is not allowed by the access policy "
                    f"{policy.source!r} (functions.allow: {allowed}); name code from an "
                    "allowed module, or ask the policy's administrator to allow it")


def module_of(ref: str) -> str:
    """The module of `module:name` (or `module.name`)."""
    module, sep, _ = ref.partition(":")
    return module if sep else ref.rpartition(".")[0]


def check_code(workflow: Workflow, policy: Policy | None) -> None:
    """At a run's start or resumption: the code the workflow's file named (`Workflow.code`)
    must come from modules the policy allows, even if it was loaded without the policy.

    Raises:
        WorkflowError: every field naming code from another module, with file and line.
    """
    if policy is None or policy.functions is None:
        return
    problems = []
    for field, ref in workflow.code.items():
        try:
            with functions_allowed(policy):
                check_module(ref, module_of(ref))
        except UserError as e:
            problems.append(workflow.problem(field, str(e)))
    if problems:
        raise WorkflowError(problems)
