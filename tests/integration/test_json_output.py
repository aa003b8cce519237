"""`--json` output is streamed: the run record is written a task at a time, with exactly
the text `json.dumps(record, indent=2, ensure_ascii=False)` gives."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium import Engine, SQLiteStore, Workflow
from podium.cli._json import write_items
from podium.core.workflow import InputSpec

PODIUM = str(Path(sys.executable).with_name("podium"))


@pytest.mark.parametrize("value", [
    {},
    {"tasks": []},
    {"a": [1, {"x": [1, 2, {"y": "é ✓"}], "e": {}}], "b": {"c": None}, "tasks": [{}]},
    {"run_id": "r", "tasks": [{"h": []}, {"h": [{"k": 1.5, "s": "a\nb"}]}], "z": True},
])
def test_the_text_is_json_dumps_indented(value: dict[str, Any]) -> None:
    out = io.StringIO()
    write_items(((k, iter(v)) if k == "tasks" else (k, v) for k, v in value.items()), out)
    assert out.getvalue() == json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def test_an_array_is_written_as_its_elements_are_made() -> None:
    out = io.StringIO()
    seen: list[int] = []

    def tasks() -> Iterator[dict[str, int]]:
        for i in range(3):
            seen.append(len(out.getvalue()))
            yield {"i": i}

    write_items(iter([("run_id", "r"), ("tasks", tasks())]), out)
    # Each element was written before the next one was asked for.
    assert seen[0] < seen[1] < seen[2]
    assert json.loads(out.getvalue()) == {"run_id": "r", "tasks": [{"i": 0}, {"i": 1}, {"i": 2}]}


async def _fan_out(db: Path, items: int) -> tuple[str, dict[str, Any]]:
    wf = Workflow("fan", inputs={"items": InputSpec()})

    async def echo(item: int) -> dict[str, Any]:
        return {"item": item, "note": "ünïcode ✓"}

    wf.add_agent("echo", echo)
    wf.add_task("each", agent="echo", for_each="{{ inputs.items }}", args={"item": "{{ item }}"})
    store = SQLiteStore(db)
    try:
        state = await Engine(store).start(wf, {"items": list(range(items))})
        record = (await Engine(store).state(state.run_id)).record()
    finally:
        await store.close()
    return state.run_id, record


def test_runs_show_json_prints_the_record_as_before(tmp_path: Path) -> None:
    run_id, record = asyncio.run(_fan_out(tmp_path / "j.db", 50))
    assert len(record["tasks"]) == 51

    done = subprocess.run([PODIUM, "runs", "show", run_id, "--json", "--db", "j.db"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PODIUM_HOME": str(tmp_path)})

    assert done.returncode == 0, done.stderr
    assert done.stdout == json.dumps(record, indent=2, ensure_ascii=False) + "\n"
