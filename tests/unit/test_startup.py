"""Starting cheaply: `import podium` imports none of Podium's code, and `podium --help`
none beyond the command line's own, so neither pays for the engine, the stores, the models
or the YAML loader (nor httpx, pydantic, jinja2, cryptography, asyncio) until a command or a
name needs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import podium

SRC = str(Path(podium.__file__).parent.parent)

HEAVY = ("asyncio", "cryptography", "httpx", "jinja2", "jsonschema", "pydantic", "sqlite3",
         "yaml", "ruamel")


def _modules_after(code: str) -> list[str]:
    """The modules a fresh interpreter holds after running `code`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [SRC, *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys\n"
         "print(json.dumps(sorted(sys.modules)), file=sys.stderr)"],
        env=env, capture_output=True, text=True, timeout=60, check=True)
    modules: list[str] = json.loads(done.stderr.splitlines()[-1])
    return modules


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.partition(".")[0] in HEAVY]


def test_import_podium_imports_no_podium_module() -> None:
    modules = _modules_after("import podium")

    assert [m for m in modules if m.startswith("podium.")] == []
    assert _heavy(modules) == []


def test_a_public_name_is_imported_on_first_use() -> None:
    modules = _modules_after("import podium\nassert podium.Workflow.__name__ == 'Workflow'")

    assert "podium.core.workflow" in modules
    assert "podium.engine.runtime" not in modules


def test_help_imports_only_the_command_line() -> None:
    modules = _modules_after(
        "import contextlib, io, sys\nsys.argv = ['podium', '--help']\n"
        "from podium.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main()")

    assert [m for m in modules if m.startswith("podium.")
            and not m.startswith("podium.cli") and m != "podium.config"] == []
    assert _heavy(modules) == []
