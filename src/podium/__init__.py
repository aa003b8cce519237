"""Podium: orchestrate AI agents, models and tools into workflows that survive failure.

The public API, grouped by concept; `__all__` keeps the same groups, each sorted. Each name
is imported when first used (PEP 562), so `import podium` (and the `podium` command) does
not pay for the engine, the models or the stores until they are needed.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # -- workflow building: tasks, their inputs and policies, in Python or from YAML-------
    from podium.core.faithful import Faithful
    from podium.core.policy import Budget, CircuitPolicy, RetryPolicy, TaskPolicy
    from podium.core.workflow import HUMAN, InputSpec, Task, Workflow
    from podium.yaml import load_workflow, parse_workflow

    # isort: split
    # -- planning: a goal becomes a plan of tasks------------------------------------------
    from podium.core.plan import PlannerConfig
    from podium.engine.planner import PlannedTask, Planner, subtasks

    # isort: split
    # -- running: the engine and what the journal tells of a run---------------------------
    from podium.core.events import Event
    from podium.core.state import RunState, TaskState
    from podium.engine.runtime import Engine

    # isort: split
    # -- agents: the protocol, the built-in kinds, and choosing one for a task-------------
    from podium.agents.context import ContextOptions
    from podium.agents.llm import LLMAgent
    from podium.core.agent import Agent, TaskContext, TaskInput
    from podium.core.function import FunctionAgent
    from podium.core.registry import Registry, RouterPolicy
    from podium.yaml import load_registry

    # isort: split
    # -- models: chat-model providers behind one interface---------------------------------
    from podium.models import Message, Model, ModelResponse, Usage, resolve_model

    # isort: split
    # -- tools: typed functions a model may call, and who may call them--------------------
    from podium.tools import Tool, tool
    from podium.tools.mediation import ToolPolicy

    # isort: split
    # -- memory: long-term memories, searched by meaning, erasable per subject-------------
    from podium.memory import Memory, MemoryQuery, MemoryStore, SQLiteMemoryStore, erase_subject

    # isort: split
    # -- patterns: ready-made shapes of multi-agent work-----------------------------------
    from podium.patterns import (
        Discussion,
        Handoff,
        Refine,
        Supervisor,
        Vote,
        chain,
        orchestrate,
        parallel,
        route,
    )

    # isort: split
    # -- security: who asks, what the access policy lets them do, secrets------------------
    from podium.core.principal import Principal
    from podium.secrets import Secret
    from podium.security.rbac import AccessDecision, AccessPolicy
    from podium.yaml import load_policy, parse_policy

    # isort: split
    # -- storage: the journal of runs------------------------------------------------------
    from podium.store import PostgresStore, SQLiteStore, Store, open_store

    # isort: split
    # -- errors (their tree is drawn in `podium.errors`), and signals an agent raises------
    from podium.errors import (
        ApprovalRequired,
        AuditKeyMismatch,
        BudgetExceeded,
        CircuitOpen,
        Conflict,
        ContextTooLarge,
        DecryptError,
        EmailError,
        Escalate,
        HTTPError,
        JournalDamaged,
        JournalError,
        JournalUnavailable,
        KeyConfigError,
        LeaseLost,
        MCPUnavailable,
        ModelError,
        NotWaiting,
        OutputInvalid,
        PermissionDenied,
        PodiumError,
        PolicyError,
        PolicyFileError,
        Problem,
        ReplyTooLarge,
        Retry,
        RunBusy,
        RunEnded,
        RunError,
        RunTimeout,
        SQLError,
        StoreLocked,
        TaskFailed,
        TaskTimeout,
        ToolArgumentsInvalid,
        ToolFailed,
        Unfaithful,
        UnknownRun,
        UnmaskError,
        UntrustedSource,
        UserError,
        VaultError,
        WorkflowError,
    )

__all__ = [  # noqa: RUF022 - grouped by concept, sorted within each group (tests check)
    # -- workflow building
    "HUMAN",  # the agent name of a task done by a person
    "Budget",  # limits on tokens, cost, model calls of a run or an agent
    "CircuitPolicy",  # when an agent's circuit breaker opens and for how long
    "Faithful",  # output check: every figure, date and name is in the sources
    "InputSpec",  # one input a run takes
    "RetryPolicy",  # how often and how patiently a task is tried again
    "Task",  # one unit of work in a workflow
    "TaskPolicy",  # retry, timeout, fallback, escalation and default of a task
    "Workflow",  # a named definition of tasks, built in Python
    "load_workflow",  # a Workflow from a YAML file
    "parse_workflow",  # a Workflow from YAML text
    # -- planning
    "PlannedTask",  # one task of a plan, as a planner writes it
    "Planner",  # asks a model for a plan and checks it
    "PlannerConfig",  # how a workflow's goal becomes a plan
    "subtasks",  # an agent's output that adds tasks to the run
    # -- running
    "Engine",  # starts, resumes, approves and cancels runs
    "Event",  # one event of a run's journal
    "RunState",  # a run as its journal tells it
    "TaskState",  # one task as the journal tells it
    # -- agents
    "Agent",  # the protocol every agent follows
    "ContextOptions",  # what an LLM agent's prompt includes besides its task
    "FunctionAgent",  # a Python function as an agent
    "LLMAgent",  # an agent that asks a model, with tools
    "Registry",  # agents by name, with where each was declared
    "RouterPolicy",  # how a task naming a skill gets its agent
    "TaskContext",  # what an agent's attempt can reach (memory, journal, principal)
    "TaskInput",  # what an agent is given for one attempt
    "load_registry",  # the agents of registry files, outside any workflow
    # -- models
    "Message",  # one chat message to a model
    "Model",  # the interface of a chat-model provider
    "ModelResponse",  # a model's reply, with its usage
    "Usage",  # tokens a model call took
    "resolve_model",  # a Model from a name such as 'openai:gpt-4o'
    # -- tools
    "Tool",  # a function a model may call, with its JSON schema
    "ToolPolicy",  # which tools an agent may call, and which wait for a person
    "tool",  # decorator: a typed function becomes a Tool
    # -- memory
    "Memory",  # one long-term memory
    "MemoryQuery",  # a task's retrieval of memories by meaning
    "MemoryStore",  # the interface of a memory store
    "SQLiteMemoryStore",  # memories in a SQLite file
    "erase_subject",  # erase everything about one person
    # -- patterns
    "Discussion",  # agents take turns on one thread
    "Handoff",  # an agent's reply handing the conversation to another
    "Refine",  # generator and evaluator loop until accepted
    "Supervisor",  # a lead agent delegates to others
    "Vote",  # several voters answer, their answers combined
    "chain",  # tasks in sequence
    "orchestrate",  # a planner fans out to workers, a synthesiser combines
    "parallel",  # sections that run at once
    "route",  # a classifier picks the one branch that runs
    # -- security
    "AccessDecision",  # access control: whether a principal may act, and why
    "AccessPolicy",  # access control: which roles may do what (an access policy file)
    "Principal",  # who asks: a user or service with roles
    "Secret",  # a string that never shows itself
    "load_policy",  # an AccessPolicy from a file
    "parse_policy",  # an AccessPolicy from YAML text
    # -- storage
    "PostgresStore",  # the journal in PostgreSQL
    "SQLiteStore",  # the journal in a SQLite file (the default)
    "Store",  # the interface of a journal of runs
    "open_store",  # the journal at a path or a postgresql:// URL
    # -- errors: the root, and mistakes in what was asked
    "AuditKeyMismatch",  # the HMAC key is not the audit log's
    "JournalDamaged",  # a database file is damaged or truncated
    "JournalError",  # a database file cannot be used
    "KeyConfigError",  # a master key is missing, malformed or not the journal's
    "NotWaiting",  # approve/reject of a task not waiting for a person
    "PermissionDenied",  # the access policy refuses the principal
    "PodiumError",  # the root of every error Podium raises
    "PolicyError",  # an invalid masking policy
    "PolicyFileError",  # an invalid access policy file
    "Problem",  # one problem found in a workflow (not an exception)
    "RunBusy",  # the run is executed by another live process
    "RunEnded",  # the run already ended
    "UnknownRun",  # no run with that id
    "UntrustedSource",  # untrusted content written to memory as trusted
    "UserError",  # a mistake in a workflow, a policy or a call
    "VaultError",  # a masking vault cannot be decrypted
    "WorkflowError",  # an invalid workflow, with every Problem found
    # -- errors: a run or an operation failed
    "BudgetExceeded",  # a run or an agent reached a budget
    "CircuitOpen",  # the agent's circuit breaker is open
    "Conflict",  # the run's journal grew since it was read
    "ContextTooLarge",  # instructions and task exceed an agent's context budget
    "DecryptError",  # a ciphertext does not decrypt
    "EmailError",  # an e-mail agent's SMTP server refused or was unreachable
    "HTTPError",  # an HTTP agent's request failed
    "JournalUnavailable",  # the journal cannot be written; the run stopped, resumable
    "LeaseLost",  # another process took the run over
    "MCPUnavailable",  # an MCP server could not be started or reached
    "ModelError",  # a model provider failed or replied unusably
    "OutputInvalid",  # an output did not validate against its schema
    "ReplyTooLarge",  # a model's reply passed its byte limit
    "RunError",  # a run, a task, or an operation on its data failed
    "RunTimeout",  # the run exceeded its timeout
    "SQLError",  # a SQL agent's database refused or was unreachable
    "StoreLocked",  # a database stayed locked too long
    "TaskFailed",  # a task failed after its whole policy
    "TaskTimeout",  # an attempt exceeded its timeout
    "ToolArgumentsInvalid",  # a model called a tool with arguments outside its schema
    "ToolFailed",  # a tool raised or timed out
    "Unfaithful",  # an output states figures, dates or names not in its data
    "UnmaskError",  # strict unmasking met placeholders it could not restore
    # -- signals an agent raises on purpose
    "ApprovalRequired",  # a tool call waits for a person's approval
    "Escalate",  # hand the task to a person
    "Retry",  # ask for another attempt
]

_WHERE: dict[str, str] = {name: module for module, names in (
    # workflow building
    ("podium.core.faithful", "Faithful"),
    ("podium.core.policy", "Budget CircuitPolicy RetryPolicy TaskPolicy"),
    ("podium.core.workflow", "HUMAN InputSpec Task Workflow"),
    ("podium.yaml", "load_workflow parse_workflow"),
    # planning
    ("podium.core.plan", "PlannerConfig"),
    ("podium.engine.planner", "PlannedTask Planner subtasks"),
    # running
    ("podium.core.events", "Event"),
    ("podium.core.state", "RunState TaskState"),
    ("podium.engine.runtime", "Engine"),
    # agents
    ("podium.agents.context", "ContextOptions"),
    ("podium.agents.llm", "LLMAgent"),
    ("podium.core.agent", "Agent TaskContext TaskInput"),
    ("podium.core.function", "FunctionAgent"),
    ("podium.core.registry", "Registry RouterPolicy"),
    ("podium.yaml", "load_registry"),
    # models
    ("podium.models", "Message Model ModelResponse Usage resolve_model"),
    # tools
    ("podium.tools", "Tool tool"),
    ("podium.tools.mediation", "ToolPolicy"),
    # memory
    ("podium.memory", "Memory MemoryQuery MemoryStore SQLiteMemoryStore erase_subject"),
    # patterns
    ("podium.patterns", "Discussion Handoff Refine Supervisor Vote chain orchestrate parallel "
     "route"),
    # security
    ("podium.core.principal", "Principal"),
    ("podium.secrets", "Secret"),
    ("podium.security.rbac", "AccessDecision AccessPolicy"),
    ("podium.yaml", "load_policy parse_policy"),
    # storage
    ("podium.store", "PostgresStore SQLiteStore Store open_store"),
    # errors
    ("podium.errors",
     "ApprovalRequired AuditKeyMismatch BudgetExceeded CircuitOpen Conflict "
     "ContextTooLarge DecryptError EmailError Escalate HTTPError JournalDamaged "
     "JournalError JournalUnavailable KeyConfigError LeaseLost MCPUnavailable "
     "ModelError NotWaiting OutputInvalid PermissionDenied PodiumError PolicyError "
     "PolicyFileError Problem ReplyTooLarge Retry RunBusy RunEnded RunError "
     "RunTimeout SQLError StoreLocked TaskFailed TaskTimeout ToolArgumentsInvalid "
     "ToolFailed Unfaithful UnknownRun UnmaskError UntrustedSource UserError "
     "VaultError WorkflowError"),
) for name in names.split()}
"""The module each public name is imported from on first use; the same as the imports
above, which type checkers read (a test holds them equal)."""

if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """A public name, imported on first use (PEP 562): `import podium` stays cheap, and
        `podium.Engine` (or `from podium import Engine`) imports only what Engine needs."""
        from importlib import import_module

        module = _WHERE.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
