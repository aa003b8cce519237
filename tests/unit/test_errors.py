"""Errors as code: every exception lives in `podium.errors`, whose docstring draws them all,
and retry behaviour rides on the error."""

from __future__ import annotations

import ast
import builtins
import inspect
from pathlib import Path

import pytest

import podium
import podium.errors
from podium import (
    ContextTooLarge,
    HTTPError,
    ModelError,
    PodiumError,
    ReplyTooLarge,
    Retry,
    RetryPolicy,
    RunError,
    UserError,
    WorkflowError,
)

SRC = Path(podium.__file__).parent
ELSEWHERE = {
    "YAMLSyntaxError",  # a ValueError of the YAML reader, turned into a Problem
    "TemplateProblem",  # a ValueError of the template engine, turned into a Problem
    "JournalUnavailable",  # the PostgreSQL store's own, awaiting a name of its own
    "_Terminated",  # SIGTERM inside the command line, caught there
}
"""Exception classes defined outside errors.py (by name, wherever their module moves);
errors.py's docstring says why."""


def _exception_classes() -> dict[str, set[str]]:
    """Classes deriving from an exception, by module file, read from the source."""
    errors = {name for name, obj in vars(podium.errors).items()
              if inspect.isclass(obj) and issubclass(obj, BaseException)}
    bases = errors | {name for name, obj in vars(builtins).items()
                      if inspect.isclass(obj) and issubclass(obj, BaseException)}
    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                    ast.unparse(b).rpartition(".")[2] in bases for b in node.bases):
                found.setdefault(path.relative_to(SRC).as_posix(), set()).add(node.name)
    return found


def test_every_exception_is_defined_in_errors_py() -> None:
    found = _exception_classes()
    found.pop("errors.py")

    assert set().union(*found.values()) == ELSEWHERE


def test_the_docstring_tree_names_every_exception() -> None:
    doc = podium.errors.__doc__ or ""
    names = [name for name, obj in vars(podium.errors).items()
             if inspect.isclass(obj) and issubclass(obj, BaseException)
             and obj.__module__ == "podium.errors" and not name.startswith("_")]

    assert [name for name in names if f" {name} " not in doc and f"`{name}`" not in doc] == []
    for name in ELSEWHERE - {"_Terminated"}:
        assert f"`{name}`" in doc or f".{name}`" in doc


@pytest.mark.parametrize(("error", "retryable"), [
    (PodiumError("x"), True),
    (RunError("x"), True),
    (UserError("x"), False),
    (WorkflowError([]), False),
    (ContextTooLarge("x"), False),
    (ModelError("x"), True),
    (ModelError("x", status=429), True),
    (ModelError("x", status=400), False),
    (ModelError("x", status=400, retryable=True), True),
    (ReplyTooLarge("x"), False),
    (HTTPError("x"), False),
    (HTTPError("x", status=503, retryable=True), True),
])
def test_retry_behaviour_rides_on_the_error(error: PodiumError, retryable: bool) -> None:
    assert error.retryable is retryable
    assert RetryPolicy(attempts=3).retries(error) is retryable
    # A policy naming the class retries it all the same; one refusing it never does.
    assert RetryPolicy(attempts=3, retry_on=(type(error).__name__,)).retries(error)
    assert not RetryPolicy(attempts=3, no_retry_on=(type(error).__name__,)).retries(error)


def test_an_agent_s_retry_is_always_granted() -> None:
    assert RetryPolicy(attempts=3, no_retry_on=("Retry", "Exception")).retries(Retry())
    assert RetryPolicy(attempts=3, retry_on=("ModelError",)).retries(Retry())


def test_an_exception_that_is_not_podium_s_says_retryable_by_attribute() -> None:
    class Flaky(Exception):
        retryable = False

    assert RetryPolicy(attempts=3).retries(ValueError("x"))
    assert not RetryPolicy(attempts=3).retries(Flaky())
