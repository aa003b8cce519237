"""The access policy's `functions: {allow: [...]}`: a workflow file may name Python code
only from the modules it allows, checked before the import when the file is loaded with
the policy, and again when an engine with the policy starts or resumes a run of it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium import Engine, SQLiteStore, WorkflowError, parse_policy
from podium.yaml import load_workflow

POLICY = parse_policy("""\
roles:
  all: {workflows: {"*": [run]}, agents: ["*"]}
everyone: [all]
functions:
  allow: ["fnpolicy_steps", "pkg.*"]
""", "policy.yaml")
FLOW = """\
name: flow
agents:
  ok: {function: "fnpolicy_steps:hello"}
  bad:
    function: "fnpolicy_evil:boom"
tasks:
  hi: {agent: ok}
  later:
    agent: ok
    output: "fnpolicy_evil:Schema"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "flow.yaml").write_text(FLOW, encoding="utf-8")
    (tmp_path / "fnpolicy_steps.py").write_text("def hello() -> str:\n    return 'hi'\n",
                                                encoding="utf-8")
    # Importing it leaves a mark: a refused module must not even be imported.
    (tmp_path / "fnpolicy_evil.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('imported').touch()\n"
        "Schema = {'type': 'string'}\n"
        "def boom() -> str:\n    return 'boom'\n", encoding="utf-8")
    yield tmp_path
    for name in ("fnpolicy_steps", "fnpolicy_evil"):
        sys.modules.pop(name, None)


def test_parent_packages_and_globs() -> None:
    assert POLICY.function_allowed("fnpolicy_steps")
    assert POLICY.function_allowed("pkg.sub.mod")
    assert not POLICY.function_allowed("pkg")  # `pkg.*` is what is under pkg
    assert not POLICY.function_allowed("os")
    assert parse_policy("roles: {}").function_allowed("os")  # no `functions:`: any


def test_loading_with_the_policy_refuses_before_importing(folder: Path) -> None:
    with pytest.raises(WorkflowError) as caught:
        load_workflow(folder / "flow.yaml", policy=POLICY)

    shown = [str(p) for p in caught.value.problems]
    assert [s.split(": '")[0] for s in shown] == [
        f"{folder / 'flow.yaml'}:5: agents.bad.function",
        f"{folder / 'flow.yaml'}:10: tasks.later.output"]
    assert "module 'fnpolicy_evil' is not allowed by the access policy 'policy.yaml' " \
           "(functions.allow: 'fnpolicy_steps', 'pkg.*')" in shown[0]
    assert not (folder / "imported").exists()


async def test_an_engine_with_the_policy_refuses_a_workflow_loaded_without_it(
        folder: Path) -> None:
    workflow = load_workflow(folder / "flow.yaml")  # no policy: it loads, and imports
    store = SQLiteStore(folder / "journal.db", keys=None)
    try:
        with pytest.raises(WorkflowError) as caught:
            await Engine(store, policy=POLICY).start(workflow)
        assert [p.field for p in caught.value.problems] == ["agents.bad.function",
                                                            "tasks.later.output"]
        assert caught.value.problems[0].line == 5
        assert await store.runs(10, None) == []  # nothing journaled
        # Without `functions:` in the policy, the same workflow runs.
        state = await Engine(store, policy=parse_policy(
            "roles: {all: {workflows: {'*': [run]}, agents: ['*']}}\neveryone: [all]\n")
            ).start(workflow)
        assert state.status == "completed"
    finally:
        await store.close()
