"""`podium agents`: the registry as a user lists it, as JSON and as a table, and its
mistakes named by file and line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PODIUM = Path(sys.executable).with_name("podium")

REGISTRY = """\
agents:
  summariser:
    function: "string:capwords"
    description: Condenses long documents into a short abstract.
    skills: [summarise]
    output: {type: string}
    cost: 0.002
    latency: 2.5
  translator:
    function: "string:capwords"
    description: Turns text from one language into another.
    skills: [translate]
"""


def podium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODIUM_HOME": str(cwd / "home")}
    return subprocess.run([str(PODIUM), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_agents_json_lists_the_agents_folder(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "text.yaml").write_text(REGISTRY, encoding="utf-8")

    done = podium("agents", "--json", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [a["name"] for a in listed["agents"]] == ["summariser", "translator"]
    summariser = listed["agents"][0]
    assert summariser["skills"] == ["summarise"]
    assert (summariser["cost"], summariser["latency"]) == (0.002, 2.5)
    assert summariser["output_schema"] == {"type": "string"}
    assert summariser["declared"] == f"{Path('agents') / 'text.yaml'}:2"
    assert listed["skills"] == {"summarise": ["summariser"], "translate": ["translator"]}


def test_agents_of_a_workflow_and_as_a_table(tmp_path: Path) -> None:
    (tmp_path / "shared.yaml").write_text(REGISTRY, encoding="utf-8")
    (tmp_path / "wf.yaml").write_text(textwrap.dedent("""\
        name: w
        registry: shared.yaml
        agents:
          shouter: {function: "string:capwords", description: Shouts., skills: [shout]}
        tasks:
          t: {skill: translate}
    """), encoding="utf-8")

    done = podium("agents", "--json", "wf.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    names = {a["name"]: a["declared"] for a in json.loads(done.stdout)["agents"]}
    assert names == {"shouter": "wf.yaml:4", "summariser": "shared.yaml:2",
                     "translator": "shared.yaml:9"}

    table = podium("agents", "wf.yaml", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "summariser" in table.stdout and "2.5s" in table.stdout


def test_agents_names_problems_by_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(REGISTRY + "  summariser: {function: x:y}\n",
                                       encoding="utf-8")

    done = podium("agents", "--json", "bad.yaml", cwd=tmp_path)

    assert done.returncode == 2 and done.stdout == ""
    assert "bad.yaml:13: agents.summariser" in done.stderr

    missing = podium("agents", cwd=tmp_path)
    assert missing.returncode == 2 and "no agents/ folder here" in missing.stderr


def test_brackets_in_names_and_descriptions_are_printed_as_written(tmp_path: Path) -> None:
    """Rich markup in user text must not crash the CLI nor eat the text it names."""
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "a.yaml").write_text(textwrap.dedent("""\
        agents:
          beta:
            function: "string:capwords"
            description: "Translates [bold] text [/x]"
        """), encoding="utf-8")
    (tmp_path / "wf.yaml").write_text(textwrap.dedent("""\
        name: w
        registry: bad/
        tasks:
          a: {description: x}
        """), encoding="utf-8")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "b.yaml").write_text(textwrap.dedent("""\
        agents:
          beta:
            function: "string:capwords"
            "[/x]": 1
        """), encoding="utf-8")

    listed = podium("agents", cwd=tmp_path)
    agents = podium("agents", "bad", cwd=tmp_path)
    checked = podium("validate", "wf.yaml", cwd=tmp_path)

    assert listed.returncode == 0, listed.stderr
    assert "[bold]" in listed.stdout and "[/x]" in listed.stdout  # the table may wrap
    for done in (agents, checked):
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert f"{Path('bad') / 'b.yaml'}:4: agents.beta.[/x]: unknown field '[/x]'" \
            in done.stderr, done.stderr


def test_a_routed_decision_is_journaled_and_shown(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "text.yaml").write_text(REGISTRY, encoding="utf-8")
    (tmp_path / "wf.yaml").write_text(textwrap.dedent("""\
        name: routed
        registry: agents/
        tasks:
          gist:
            skill: summarise
            description: Boil the annual letter down to three sentences.
            with: {s: "the annual letter"}
          french:
            description: Render the greeting in French.
            with: {s: "good morning"}
    """), encoding="utf-8")

    done = podium("run", "wf.yaml", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    tasks = {t["id"]: t for t in record["tasks"]}
    assert tasks["gist"]["agent"] == "summariser"
    assert tasks["gist"]["routing"]["filtered"] == [
        {"agent": "translator", "reason": "lacks skill 'summarise'",
         "score": tasks["gist"]["routing"]["filtered"][0]["score"]}]
    assert tasks["french"]["agent"] == "translator"
    assert tasks["french"]["routing"]["by"] == "score"

    shown = podium("runs", "show", record["run_id"], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "gist · routed → summariser by score: 'summariser' is the closest in meaning" in \
        shown.stdout
    assert "gist · routed left out: translator (lacks skill 'summarise')" in shown.stdout
    assert "french · routed candidates: translator 0." in shown.stdout

    progress = podium("run", "wf.yaml", cwd=tmp_path)
    assert "⇢ french → translator by score" in progress.stderr
