"""Where Podium keeps its data."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir


def home() -> Path:
    """`$PODIUM_HOME`, else the per-user data folder."""
    configured = os.environ.get("PODIUM_HOME")
    return Path(configured) if configured else Path(user_data_dir("podium", appauthor=False))


def database_path() -> Path:
    """The default journal database."""
    return home() / "podium.db"
