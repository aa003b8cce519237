"""Podium's exceptions: every error Podium raises is defined here.

The tree::

    PodiumError                   the root; `.retryable` says whether trying again may help
    ├── UserError                 a mistake in a workflow, a policy or a call; names the place
    │   │                         (never retryable)
    │   ├── WorkflowError         an invalid workflow; carries every problem found (`.problems`)
    │   ├── UnknownRun            no run with that id
    │   ├── NotWaiting            approve/reject on a task that is not waiting for a human
    │   ├── RunBusy               the run is being executed by another live process
    │   ├── RunEnded              cancel on a run that already completed, failed or was cancelled
    │   ├── PermissionDenied      the policy does not let the principal do that (`.decision`)
    │   ├── PolicyFileError       an invalid access policy file; carries every problem found
    │   ├── PolicyError           an invalid masking policy; names the field
    │   ├── VaultError            a masking vault cannot be decrypted: wrong key, run id, altered
    │   ├── KeyConfigError        a master key is missing, malformed, or not the journal's
    │   ├── AuditKeyMismatch      the HMAC key at hand is not the audit log's
    │   ├── UntrustedSource       a memory write asked to store untrusted content as trusted
    │   └── JournalError          a database file cannot be used: read-only, full, unopenable
    │       └── JournalDamaged    damaged or truncated: SQLite says so, or an event's checksum
    └── RunError                  a run, a task within it, or an operation on its data failed
        ├── TaskFailed            a task failed after its whole policy
        ├── TaskTimeout           an attempt exceeded its timeout
        ├── OutputInvalid         an output did not validate against its schema
        │   └── Unfaithful        an output states figures, dates or names not in its data
        ├── CircuitOpen           the agent's circuit breaker is open
        ├── RunTimeout            the run exceeded its own timeout
        ├── BudgetExceeded        the run or an agent reached a budget
        ├── ContextTooLarge       an agent's instructions and task alone exceed its context
        │                         budget (not retryable)
        ├── ModelError            a model provider failed or replied with something unusable;
        │   │                     retryable by its HTTP status
        │   └── ReplyTooLarge     a reply passed its byte limit (not retryable)
        ├── ToolFailed            a tool raised, or took longer than its timeout
        ├── ToolArgumentsInvalid  a model called a tool with arguments outside its schema
        ├── MCPUnavailable        an MCP server could not be started or reached
        ├── HTTPError             an HTTP agent's request failed (`.status`, `.retryable`)
        ├── SQLError              a SQL agent's database refused or was unreachable
        ├── EmailError            an e-mail agent's SMTP server refused or was unreachable
        ├── UnmaskError           strict unmasking met unknown or mangled placeholders
        ├── DecryptError          a ciphertext does not decrypt: moved, altered, wrong key
        ├── StoreLocked           a database stayed locked by another writer too long
        ├── LeaseLost             another process took the run over; this one stops writing
        ├── Conflict              the run's journal grew since the caller read it
        └── JournalUnavailable    the journal cannot be written (disk full, …); the run stopped,
                                  resumable

Retry behaviour rides on the error: `PodiumError.retryable` is a class default that an
instance may override (a `ModelError` by its status, an `HTTPError` by what failed), and
`RetryPolicy.retries` reads it, nothing else. Exceptions that are not Podium's (a
`ValueError` in a function agent) are retryable unless they carry `retryable = False`.

Signals raised on purpose inside an agent are not errors of Podium's and live apart:
`Retry` asks for another attempt (always granted while attempts last), `Escalate` hands
the task to a human, and its kind `ApprovalRequired` suspends the task until a person
approves or rejects one tool call.

Cancellation derives from `BaseException` (as `asyncio.CancelledError` does), so an
agent's `except Exception` cannot swallow it.

Defined elsewhere, and why:

- `podium.yaml.source.YAMLSyntaxError` and `podium.core.templates.TemplateProblem` are
  `ValueError`s of the YAML reader and the template engine; the loaders turn them into a
  `Problem` of a `WorkflowError` (or a failed task) that names the place.
- `podium.store.postgres.JournalUnavailable` (a `PodiumError`: the PostgreSQL server of
  the journal cannot be reached) shares its name with `JournalUnavailable` above and
  awaits a name of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class PodiumError(Exception):
    """The root of every error Podium raises."""

    retryable: bool = True
    """Whether trying again may help. Retry policies read it (`RetryPolicy.retries`): an
    error saying False is not retried unless the policy's `retry_on` names its class. A
    class sets its default; an instance may say otherwise (`ModelError` by its HTTP status,
    `HTTPError`, `SQLError` and `EmailError` by what failed)."""


class UserError(PodiumError):
    """A mistake in a workflow, a policy or a call. The message names the place."""

    retryable = False
    """Trying again cannot fix a mistake; retry policies leave it alone."""


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One problem found in a workflow definition."""

    message: str
    """What is wrong and what to do about it."""
    file: str | None = None
    """The workflow file, when the workflow came from one."""
    line: int | None = None
    """1-based line in `file`."""
    field: str | None = None
    """Dotted path of the offending field, e.g. `tasks.extract.needs`."""

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line:
                where += f":{self.line}"
        if self.field:
            where = f"{where}: {self.field}" if where else self.field
        return f"{where}: {self.message}" if where else self.message


class WorkflowError(UserError):
    """An invalid workflow. `problems` lists every problem found, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"invalid workflow, {len(problems)} {noun}:\n{lines}")


class UnknownRun(UserError):
    """No run with that id exists in the journal."""


class NotWaiting(UserError):
    """An approval or rejection named a task that is not waiting for a human."""


class RunBusy(UserError):
    """The run is being executed by another live process."""


class RunEnded(UserError):
    """The run already ended (completed, failed or cancelled): there is nothing to cancel."""


class PermissionDenied(UserError):
    """The access policy does not let the principal do what was asked.

    `principal`, `action` and `resource` say what was refused; `reason` says why, and which
    roles would have allowed it.
    """

    def __init__(self, reason: str, *, principal: str = "", action: str = "",
                 resource: str = "") -> None:
        self.reason, self.principal = reason, principal
        self.action, self.resource = action, resource
        super().__init__(reason)


class PolicyFileError(UserError):
    """An invalid access policy file. `problems` lists every problem found, each naming the
    file, the line and the field."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"invalid access policy, {len(problems)} {noun}:\n{lines}")


class PolicyError(UserError):
    """An invalid masking policy. The message names the field."""


class VaultError(UserError):
    """A vault could not be decrypted: wrong key, wrong run id, or altered data."""


class KeyConfigError(UserError):
    """A master key is missing, malformed, or not one the journal's data keys are under."""


class AuditKeyMismatch(UserError):
    """The HMAC key at hand is not the key the audit log was written with."""


class UntrustedSource(UserError):
    """A write asked to store content from an untrusted source as trusted."""


class JournalError(UserError):
    """The journal (or another of Podium's database files) cannot be used: it is read-only,
    its disk is full, it cannot be opened. The message names the file and what to do;
    nothing already journaled is lost."""


class JournalDamaged(JournalError):
    """A database file is damaged: SQLite finds it malformed or truncated, or an event's
    checksum fails, or events a run counts are missing. The message names the file, and the
    run and event when one is concerned."""


class RunError(PodiumError):
    """A run, a task within it, or an operation on its data failed."""


class TaskFailed(RunError):
    """A task failed after its whole policy (retries, fallbacks, escalation, default)."""


class TaskTimeout(RunError):
    """An attempt exceeded the task's timeout."""


class OutputInvalid(RunError):
    """An agent's output did not validate against the task's output schema."""


class Unfaithful(OutputInvalid):
    """An output failed a faithfulness check (`podium.core.faithful.Faithful`): it states
    numbers, dates or names that the task's data does not hold. `claims` lists each one as
    `{"kind", "text", "where"}` (and `reason` when it can never be supported)."""

    def __init__(self, message: str, *, claims: list[dict[str, str]] | None = None) -> None:
        self.claims = list(claims or [])
        super().__init__(message)


class CircuitOpen(RunError):
    """The agent's circuit breaker is open; the agent was skipped."""


class RunTimeout(RunError):
    """The run exceeded its own timeout."""


class BudgetExceeded(RunError):
    """The run, or an agent within it, reached one of its budgets."""


class ContextTooLarge(RunError):
    """An LLM agent's instructions and task alone take more tokens than its context budget;
    the message names the agent and the numbers. Trying again cannot help."""

    retryable = False


class ModelError(RunError):
    """A model provider failed, or replied with something that cannot be used.

    `status` is the provider's HTTP status when there was one; `retryable` says whether
    trying again can help (rate limits, server errors, timeouts: yes; a bad request, a
    missing key, an unknown model: no). Retry policies honour it.
    """

    def __init__(self, message: str, *, status: int | None = None,
                 retryable: bool | None = None, partial: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.partial = partial
        """What the call produced before it failed, when it produced anything: a
        `podium.models.ModelResponse` with the text received so far and the usage the
        provider reported. The caller counts its tokens, since they were spent."""
        self.retryable = retryable if retryable is not None else (
            status is None or status in (408, 409, 429) or status >= 500)


class ReplyTooLarge(ModelError):
    """A model's reply passed its byte limit; it was cut off while being read and refused.
    Not retryable: the same request gets the same kind of reply."""

    def __init__(self, message: str, *, partial: object = None) -> None:
        super().__init__(message, retryable=False, partial=partial)


class ToolFailed(RunError):
    """A tool raised, or took longer than its timeout."""


class ToolArgumentsInvalid(RunError):
    """A model called a tool with arguments that do not fit its schema; the message says
    which, in words a model can act on."""


class MCPUnavailable(RunError):
    """An MCP server could not be started or reached, exited, or answered nothing usable."""


class HTTPError(RunError):
    """A request failed: an error status, or no answer at all.

    Attributes:
        status: the HTTP status, or None when the service could not be reached.
        retryable: whether trying again later may succeed (408, 429, 5xx, network
            errors); retry policies honour it.
        retry_after: seconds the service asked to wait, when it said.
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class SQLError(RunError):
    """The database refused a query, or could not be reached. The message names the agent
    and the database (password hidden) and never holds a secret.

    Attributes:
        retryable: whether trying again may succeed (a lost or refused connection, a
            locked database: yes; a syntax error, a constraint violation: no). Retry
            policies honour it.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class EmailError(RunError):
    """The SMTP server refused the message, or could not be reached.

    Attributes:
        code: the SMTP reply code, when the server gave one.
        retryable: whether trying again later may succeed.
    """

    def __init__(self, message: str, *, code: int | None = None,
                 retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class _Unrestored(Protocol):
    """What `UnmaskError` reads of a `podium.security.masking.UnmaskResult`."""

    @property
    def unknown(self) -> tuple[str, ...]: ...

    @property
    def mangled(self) -> tuple[str, ...]: ...


class UnmaskError(RunError):
    """Strict unmasking met placeholders it could not restore. `result` is the
    `podium.security.masking.UnmaskResult`, with the `unknown` and `mangled` ones."""

    def __init__(self, result: _Unrestored) -> None:
        self.result = result
        parts = []
        if result.unknown:
            parts.append(f"unknown placeholders {list(result.unknown)!r}")
        if result.mangled:
            parts.append(f"mangled placeholders {list(result.mangled)!r}")
        super().__init__(
            "cannot restore the reply: " + " and ".join(parts)
            + "; ask the model again, quoting placeholders exactly as given"
        )


class DecryptError(RunError):
    """A ciphertext does not decrypt: it was moved to another row, altered, or the key is not
    the one it was written with."""


class StoreLocked(RunError):
    """The database stayed locked by another writer for longer than we wait."""


class LeaseLost(RunError):
    """Another process took the run over; this one must stop writing to it."""


class Conflict(RunError):
    """The run's journal grew since the caller last read it (`expect_last` did not hold)."""


class JournalUnavailable(RunError):
    """The run's journal could not be written (a full disk, a database gone read-only or
    unreachable). The run stopped where it stood: everything journaled before is kept, and
    `resume` continues it once the journal can be written again. Not an agent's failure:
    no attempt is counted, no default used."""

    def __init__(self, message: str, *, run_id: str = "") -> None:
        super().__init__(message)
        self.run_id = run_id


class Retry(Exception):
    """Raise inside an agent to ask for another attempt (counted against `retry.attempts`)."""


class Escalate(Exception):
    """Raise inside an agent to hand the task to a human, with `reason` shown to them."""

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        super().__init__(reason)


class ApprovalRequired(Escalate):
    """Raised by an agent's tool mediation: a high-risk tool call waits for a person.

    The engine suspends the task (status `waiting`, reason `tool_approval`) keeping its
    journaled steps; after `approve` the task resumes and runs exactly `tool_call` once,
    after `reject` the call is refused and the model told so. A runner that does not know
    this signal treats it as an escalation, which never runs the call.
    """

    def __init__(self, reason: str, tool_call: dict[str, object]) -> None:
        super().__init__(reason)
        self.tool_call = tool_call
