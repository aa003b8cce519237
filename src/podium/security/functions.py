"""Which Python modules a workflow may name: the access policy's `functions: {allow:
[...]}`, checked while a workflow file is loaded (`podium.yaml`) and again when a run starts
or resumes.

A file names Python code in `function:`, `tools:`, `output:` and a planner's `model:`;
loading it imports the module, which runs the module's code, so the check comes before the
import. Podium's own built-in agents are not named by the file and are not checked.
"""

from __future__ import annotations

from podium.core.workflow import Workflow
from podium.errors import UserError, WorkflowError
from podium.security.rbac import AccessPolicy


def check_module(policy: AccessPolicy | None, ref: str, module: str) -> None:
    """Raise unless `policy` lets a workflow file name code (`ref`) from `module`.

    Raises:
        UserError: it does not; the message names the policy's allow list.
    """
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


def check_code(workflow: Workflow, policy: AccessPolicy | None) -> None:
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
            check_module(policy, ref, module_of(ref))
        except UserError as e:
            problems.append(workflow.problem(field, str(e)))
    if problems:
        raise WorkflowError(problems)
