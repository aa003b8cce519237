"""Podium: orchestrate AI agents, models and tools into workflows that survive failure."""

from podium.agents.context import ContextOptions
from podium.agents.function import FunctionAgent
from podium.agents.llm import LLMAgent
from podium.core.agent import Agent, TaskContext, TaskInput
from podium.core.events import Event
from podium.core.faithful import Faithful
from podium.core.plan import PlannerConfig
from podium.core.policy import Budget, CircuitPolicy, RetryPolicy, TaskPolicy
from podium.core.principal import Principal
from podium.core.registry import Registry, RouterPolicy
from podium.core.state import RunState, TaskState
from podium.core.workflow import HUMAN, InputSpec, Task, Workflow
from podium.engine.loader import load_workflow, parse_workflow
from podium.engine.planner import PlannedTask, Planner, subtasks
from podium.engine.registry import load_registry
from podium.engine.runtime import Engine
from podium.errors import (
    ApprovalRequired,
    BudgetExceeded,
    CircuitOpen,
    ContextTooLarge,
    Escalate,
    JournalDamaged,
    JournalError,
    JournalUnavailable,
    ModelError,
    NotWaiting,
    OutputInvalid,
    PermissionDenied,
    PodiumError,
    PolicyFileError,
    Problem,
    Retry,
    RunBusy,
    RunEnded,
    RunError,
    RunTimeout,
    TaskFailed,
    TaskTimeout,
    Unfaithful,
    UnknownRun,
    UserError,
    WorkflowError,
)
from podium.memory import Memory, MemoryQuery, MemoryStore, SQLiteMemoryStore, erase_subject
from podium.models import Message, Model, ModelResponse, Usage, resolve_model
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
from podium.secrets import Secret
from podium.security.rbac import Decision, Policy, load_policy, parse_policy
from podium.store import PostgresStore, SQLiteStore, Store, open_store
from podium.tools import Tool, tool
from podium.tools.mediation import ToolPolicy

__all__ = [
    "HUMAN",
    "Agent",
    "ApprovalRequired",
    "Budget",
    "BudgetExceeded",
    "CircuitOpen",
    "CircuitPolicy",
    "ContextOptions",
    "ContextTooLarge",
    "Decision",
    "Discussion",
    "Engine",
    "Escalate",
    "Event",
    "Faithful",
    "FunctionAgent",
    "Handoff",
    "InputSpec",
    "JournalDamaged",
    "JournalError",
    "JournalUnavailable",
    "LLMAgent",
    "Memory",
    "MemoryQuery",
    "MemoryStore",
    "Message",
    "Model",
    "ModelError",
    "ModelResponse",
    "NotWaiting",
    "OutputInvalid",
    "PermissionDenied",
    "PlannedTask",
    "Planner",
    "PlannerConfig",
    "PodiumError",
    "Policy",
    "PolicyFileError",
    "PostgresStore",
    "Principal",
    "Problem",
    "Refine",
    "Registry",
    "Retry",
    "RetryPolicy",
    "RouterPolicy",
    "RunBusy",
    "RunEnded",
    "RunError",
    "RunState",
    "RunTimeout",
    "SQLiteMemoryStore",
    "SQLiteStore",
    "Secret",
    "Store",
    "Supervisor",
    "Task",
    "TaskContext",
    "TaskFailed",
    "TaskInput",
    "TaskPolicy",
    "TaskState",
    "TaskTimeout",
    "Tool",
    "ToolPolicy",
    "Unfaithful",
    "UnknownRun",
    "Usage",
    "UserError",
    "Vote",
    "Workflow",
    "WorkflowError",
    "chain",
    "erase_subject",
    "load_policy",
    "load_registry",
    "load_workflow",
    "open_store",
    "orchestrate",
    "parallel",
    "parse_policy",
    "parse_workflow",
    "resolve_model",
    "route",
    "subtasks",
    "tool",
]
