"""Running the `podium` command the way a user does, for the end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PODIUM = Path(sys.executable).with_name("podium")


def podium_json(*args: str, home: Path) -> tuple[int, dict[str, Any]]:
    """Run `podium ARGS` from the repository root with `PODIUM_HOME=home`; its exit code
    and the JSON it printed (the test fails, showing both streams, if it printed none)."""
    env = {**os.environ, "PODIUM_HOME": str(home)}
    done = subprocess.run(
        [str(PODIUM), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    try:
        record = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"podium {' '.join(args)} printed no JSON (exit {done.returncode}):\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
    return done.returncode, record
