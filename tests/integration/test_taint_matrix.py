"""Untrusted content cannot reach a high-risk tool without a person's approval, whichever
way it travels: the injection matrix of `_taint_matrix` (every route from an untrusted
source into a prompt or a tool argument, times two high-risk tools that act for real on
loopback servers), and its trusted control (no false positives). Real SQLite journals;
the scripted model obeys any order it reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration._taint_matrix import OPS, ROUTES, TOOLS, Sinks, delegate, run_case, sinks


@pytest.fixture(scope="module")
def where() -> Iterator[Sinks]:
    with sinks() as found:
        yield found


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("route", list(ROUTES))
async def test_an_order_in_untrusted_content_is_held_for_a_person(
        route: str, tool: str, tmp_path: Path, where: Sinks) -> None:
    outcome = await run_case(route, tool, False, tmp_path, where)

    assert outcome.attempts == 1, outcome  # the model read the order and tried
    assert outcome.executed == [], outcome  # nothing reached the SMTP or HTTP server
    assert (outcome.status, outcome.held) == ("waiting", 1), outcome
    assert outcome.noticed, outcome
    if ROUTES[route] is not delegate:  # a delegate's prompt is its function's words
        assert outcome.delimited, outcome


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("route", list(ROUTES))
async def test_the_same_route_from_a_trusted_source_is_not_held(
        route: str, tool: str, tmp_path: Path, where: Sinks) -> None:
    outcome = await run_case(route, tool, True, tmp_path, where)

    assert outcome.status == "completed", outcome
    assert (outcome.attempts, outcome.held, outcome.executed) == (1, 0, [OPS]), outcome
    assert outcome.blocks == 0 and not outcome.noticed, outcome
