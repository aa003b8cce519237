"""docs/security.md stays true: its example runs and prints what it shows, every page and
module it names exists, and every risk of the lists it maps has its row."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, re.S)


def test_the_example_runs_and_prints_what_is_shown(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(_blocks("python")[0], encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PODIUM_MASTER_KEY", "PODIUM_AUDIT"))}

    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env={**env, "PODIUM_HOME": str(tmp_path)})

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == _blocks("text")[0].strip()


def test_every_page_linked_and_module_named_exists() -> None:
    pages = set(re.findall(r"\]\(([a-z-]+\.md)(?:#[a-z0-9-]+)?\)", DOC))
    assert {"rbac.md", "masking.md", "encryption.md", "tools-security.md"} <= pages
    for page in pages:
        assert (ROOT / "docs" / page).is_file(), page
    modules = set(re.findall(r"`((?:[a-z_]+/)*[a-z_]+\.py)`", DOC))
    assert len(modules) > 15
    for module in modules:
        assert (ROOT / "src" / "podium" / module).is_file() or (ROOT / module).is_file(), (
            module)


def test_the_anchors_it_links_to_are_headings() -> None:
    for page, anchor in re.findall(r"\]\(([a-z-]+\.md)#([a-z0-9-]+)\)", DOC):
        headings = re.findall(r"^#+ (.+)$", (ROOT / "docs" / page).read_text(), re.M)
        slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
        assert anchor in slugs, (page, anchor)


def test_every_risk_and_requirement_has_a_row() -> None:
    rows = re.findall(r"^\| \*\*([^*]+)\*\* \|", DOC, re.M)
    llm = [r.split()[0] for r in rows if r.startswith("LLM")]
    agentic = [r.split()[0] for r in rows if re.match(r"T\d+ ", r)]
    assert llm == [f"LLM{i:02d}" for i in range(1, 11)]
    assert agentic == [f"T{i}" for i in range(1, 16)]
    for needed in ("Art. 17", "Art. 32", "(a) Access control", "(b) Audit controls",
                   "(c) Integrity", "(d) Person or entity authentication",
                   "(e) Transmission security", "CC6", "CC7"):
        assert any(r.startswith(needed) for r in rows), needed
    for row in DOC.splitlines():
        if row.startswith("| **"):
            assert row.count(" | ") == 2 and row.rstrip().endswith("|"), row
            assert row.rstrip(" |").rsplit(" | ", 1)[1].strip(), f"nothing said missing: {row}"


def test_the_commands_it_names_exist() -> None:
    commands = set(re.findall(r"`podium ([a-z]+(?: [a-z]+)?)", DOC))
    assert {"cancel", "audit verify", "keys rotate", "runs show"} <= commands
    for command in commands:
        done = subprocess.run([str(Path(sys.executable).with_name("podium")),
                               *command.split(), "--help"], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, (command, done.stderr)
