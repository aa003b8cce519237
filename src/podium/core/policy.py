"""What happens around a task: retry, timeout, fallback, circuit breaking, escalation, default."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

from podium.errors import Retry

OnFailure = Literal["fail", "escalate"]


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often, and how patiently, an agent is tried again after a failed attempt."""

    attempts: int = 1
    """Attempts per agent, the first included. 1 means no retry."""
    backoff: float = 0.0
    """Delay in seconds before the first retry; doubles (times `multiplier`) each retry."""
    multiplier: float = 2.0
    """Growth factor of the delay between retries."""
    max_delay: float = 60.0
    """Upper bound of one delay, in seconds."""
    jitter: float = 0.1
    """Fraction of each delay drawn at random (0.1 means ±10%), so retries do not align."""
    retry_on: tuple[str, ...] = ()
    """Names of exception classes that retry (their subclasses too); empty means all.
    `Retry` always retries; `OutputInvalid` and timeouts count as ordinary failures."""
    no_retry_on: tuple[str, ...] = ()
    """Names of exception classes that never retry, checked before `retry_on`."""

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        if self.backoff <= 0:
            return 0.0
        base = min(self.max_delay, self.backoff * self.multiplier ** (retry - 1))
        spread = base * self.jitter
        return max(0.0, base + (rng or random).uniform(-spread, spread))

    def retries(self, error: BaseException) -> bool:
        """Whether this error may be retried at all (attempts aside): the one place the
        task runner asks. `Retry`, an agent asking in so many words, always may. Otherwise
        the error's `retryable` decides (`podium.errors.PodiumError.retryable`; an
        exception that does not say is retryable): one that says False (a model's HTTP
        400, say) is not retried unless `retry_on` names its class."""
        if isinstance(error, Retry):
            return True
        names = {cls.__name__ for cls in type(error).__mro__}
        if names & set(self.no_retry_on):
            return False
        if getattr(error, "retryable", True) is False:
            return bool(names & set(self.retry_on))
        return not self.retry_on or bool(names & set(self.retry_on))


@dataclass(frozen=True, kw_only=True)
class CircuitPolicy:
    """A circuit breaker per agent: after `threshold` consecutive failures the agent is
    skipped (its task goes to a fallback) until `cooldown` seconds pass; then one attempt
    is let through (half-open), and its result closes or re-opens the circuit."""

    threshold: int = 5
    """Consecutive failures that open the circuit. 0 disables the breaker."""
    cooldown: float = 30.0
    """Seconds an open circuit stays open before it half-opens."""


@dataclass(frozen=True, kw_only=True)
class TaskPolicy:
    """Everything that decides what happens around one task's attempts."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None
    """Seconds one attempt may take; None for no limit."""
    fallback: tuple[str, ...] = ()
    """Agents tried in turn when the task's own agent fails for good."""
    on_failure: OnFailure = "fail"
    """`escalate` hands a task that failed for good to a human before any `default`."""
    default: Any = None
    """A safe output used when everything else failed; marked as such in the record."""
    has_default: bool = False
    """Whether `default` was given (None is a valid default)."""


@dataclass(frozen=True, kw_only=True)
class Budget:
    """Limits on what a run (or one agent within it) may consume. A run that reaches one
    stops at once with status `failed` and reason `budget_exceeded`, naming the budget."""

    tokens: int | None = None
    """Model tokens, input and output together."""
    cost_usd: float | None = None
    """Model cost in USD, where prices are known."""
    model_calls: int | None = None
    tool_calls: int | None = None
    seconds: float | None = None
    """Execution time of the run (not for an agent); time waiting for a human is free."""

    def exceeded(self, spent: Spent) -> str | None:
        """Which limit `spent` is over, in words; None when it is within all of them."""
        for name in ("tokens", "cost_usd", "model_calls", "tool_calls"):
            limit = getattr(self, name)
            used = getattr(spent, name)
            if limit is not None and used > limit:
                shown = f"{used:.4f}" if isinstance(used, float) else str(used)
                return f"{name} budget of {limit} exceeded ({shown} used)"
        return None


@dataclass(kw_only=True)
class Spent:
    """What has been consumed so far."""

    tokens: int = 0
    cost_usd: float = 0.0
    model_calls: int = 0
    tool_calls: int = 0
