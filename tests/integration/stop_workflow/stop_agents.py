"""Sync function agents for test_stopping.py: each logs what it does, with its process id,
to the effects file, one JSON line per step."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def _log(effects: str, *entry: Any) -> None:
    with open(effects, "a", encoding="utf-8") as f:
        f.write(json.dumps([*entry, os.getpid()]) + "\n")


def sleeper(ctx: Any, effects: str, seconds: float = 30.0) -> str:
    """Sleeps far past any timeout the tests set; logs its start and (never) its end."""
    _log(effects, "start", ctx.attempt, ctx.idempotency_key)
    time.sleep(seconds)
    _log(effects, "end", ctx.attempt, ctx.idempotency_key)
    return "slept"


def hang_until(effects: str, gate: str) -> str:
    """Never returns while the `gate` file does not exist (a hung library call)."""
    _log(effects, "start")
    while not Path(gate).exists():
        time.sleep(0.05)
    _log(effects, "end")
    return "through"


def echo(value: str = "done") -> str:
    return value
