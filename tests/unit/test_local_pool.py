"""How the local model's supervisor names a worker's end, and reads its pool size."""

from __future__ import annotations

import pytest

from podium.errors import UserError
from podium.models._local_pool import describe_exit
from podium.models.local import WORKERS_ENV, default_workers


@pytest.mark.parametrize(("code", "words"), [
    (-11, "was killed by signal SIGSEGV (11): a crash inside llama.cpp"),
    (-9, "was killed by signal SIGKILL (9): killed from outside, e.g. by the out-of-memory"),
    (-4, "was killed by signal SIGILL (4): an instruction this CPU lacks"),
    (1, "exited with code 1"),
])
def test_a_workers_end_is_named(code: int, words: str) -> None:
    assert describe_exit(code).startswith(words)


def test_the_pool_size_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKERS_ENV, "3")
    assert default_workers() == 3
    monkeypatch.delenv(WORKERS_ENV)
    assert 1 <= default_workers() <= 4
    for bad in ("0", "two"):
        monkeypatch.setenv(WORKERS_ENV, bad)
        with pytest.raises(UserError, match=rf"\$PODIUM_LOCAL_WORKERS must be .* got {bad!r}"):
            default_workers()
