"""Crash recovery through the `podium` command: SIGKILL at random moments, resume, repeat.

`crash_workflow/crash.yaml` (22 tasks: chains, a diamond, parallel branches, two fan-outs)
is started with `podium run`, killed with SIGKILL once its effects file has grown by a
random number of lines (so every kill lands mid-run, while tasks are in flight), and
resumed with `podium resume`, killed again, and so on until a resume exits 0. Then the
effects file, the journal (read straight from SQLite) and the run record must show that:

- every attempt at a task carried the one idempotency key `f"{run_id}:{task_key}"`;
- no task or fan-out item started after the journal recorded it completed, and every
  side effect was announced by a `task_started` event before it happened;
- each task and item completed exactly once;
- the outputs equal a plain-Python computation of the same graph;
- the database passes `PRAGMA integrity_check` and the run is `completed`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
from collections import Counter, defaultdict
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from podium import Engine, SQLiteStore, Workflow
from podium.core.events import Event
from podium.security.crypto import MasterKey, load_keyring

HERE = Path(__file__).resolve().parent
WORKFLOW_DIR = HERE / "crash_workflow"
WORKFLOW = WORKFLOW_DIR / "crash.yaml"
PODIUM = Path(sys.executable).with_name("podium")
MODULUS = 1_000_003
PROCESS_DEADLINE_S = 60.0


# -- the expected outputs, computed without Podium ----------------------------------------


def _fold(value: Any) -> int:
    return _mix(len(value), value) if isinstance(value, list) else int(value)


def _mix(salt: int, values: list[Any]) -> int:
    # The same arithmetic as crash_workflow/agents.py, written out again on purpose.
    acc = salt % MODULUS
    for value in values:
        acc = (acc * 31 + _fold(value)) % MODULUS
    return acc


def _resolve(value: Any, inputs: dict[str, Any], outputs: dict[str, Any]) -> Any:
    if isinstance(value, str):
        match = re.fullmatch(r"\{\{\s*(inputs|outputs)\.(\w+)\s*\}\}", value)
        assert match, f"the expectation does not understand {value!r}"
        return (inputs if match[1] == "inputs" else outputs)[match[2]]
    return value


def expected_outputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """Every task's output, by walking crash.yaml's graph in plain Python."""
    doc = yaml.safe_load(WORKFLOW.read_text())
    kind = {name: a["function"].rpartition(":")[2] for name, a in doc["agents"].items()}
    tasks: dict[str, dict[str, Any]] = doc["tasks"]
    out: dict[str, Any] = {}
    while len(out) < len(tasks):
        ready = [t for t in tasks if t not in out
                 and all(n in out for n in tasks[t].get("needs", []))]
        assert ready, "crash.yaml has a cycle"
        for tid in ready:
            task, agent = tasks[tid], kind[tasks[tid]["agent"]]
            args, needs = task.get("with", {}), task.get("needs", [])
            salt = args["salt"]
            if "for_each" in task:
                items = _resolve(task["for_each"], inputs, out)
                out[tid] = [_mix(salt, [item, i]) for i, item in enumerate(items)]
            elif agent == "seed":
                out[tid] = _mix(salt, [inputs["base"]])
            elif agent in ("step", "astep"):
                out[tid] = _mix(salt, [out[s] for s in args["sources"]])
            elif agent == "join":
                out[tid] = _mix(salt, [out[n] for n in needs])
            elif agent == "total":
                (upstream,) = needs
                out[tid] = _mix(salt, out[upstream])
            elif agent == "spread":
                base = _mix(salt, [out[s] for s in args["sources"]])
                count = _resolve(args["count"], inputs, out)
                out[tid] = [(base + 97 * k) % MODULUS for k in range(count)]
            else:
                raise AssertionError(f"the expectation does not know agent {agent!r}")
    return out


def expected_keys(inputs: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Every task key that must complete (task ids, and `id[i]` for fan-out items), and
    the fan-out tasks among them, which run no agent of their own."""
    outputs = expected_outputs(inputs)
    tasks = yaml.safe_load(WORKFLOW.read_text())["tasks"]
    keys, fan_outs = set(tasks), set()
    for tid, task in tasks.items():
        if "for_each" in task:
            fan_outs.add(tid)
            keys |= {f"{tid}[{i}]" for i in range(len(outputs[tid]))}
    return keys, fan_outs


def test_expectation_covers_the_graph() -> None:
    tasks = yaml.safe_load(WORKFLOW.read_text())["tasks"]
    inputs = {"base": 7, "width": 8}
    assert len(tasks) >= 20
    assert set(expected_outputs(inputs)) == set(tasks)
    keys, fan_outs = expected_keys(inputs)
    assert len(keys) == len(tasks) + 8 + 6
    assert fan_outs == {"fan", "squares"}


# -- observing the run from outside --------------------------------------------------------


@dataclass(frozen=True)
class Effect:
    key: str
    idempotency_key: str
    time_ns: int
    pid: int


def read_effects(path: Path, kills: int = 0) -> list[Effect]:
    """The effect lines. A write that SIGKILL cut short (the kernel may stop a write to a
    regular file part-way for a fatal signal) leaves a fragment that the next effect
    continues on the same line: at most `kills` such fragments are passed over."""
    if not path.exists():
        return []
    text = path.read_text()
    effects, torn = [], []
    for line in text.splitlines():
        start = 0
        while True:
            try:
                effects.append(Effect(*json.loads(line[start:])))
                break
            except json.JSONDecodeError:
                start = line.find('["', start + 1)
                if start < 0:
                    raise
        if start:
            torn.append(line[:start])
    assert not text or text.endswith("\n"), "an effect line was cut short"
    assert len(torn) <= kills, f"{len(torn)} effect lines cut short, {kills} kills: {torn}"
    return effects


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@dataclass(frozen=True)
class JournalEvent:
    seq: int
    type: str
    task: str | None
    data: dict[str, Any]
    ts: float


def read_journal(db: Path, run_id: str) -> list[JournalEvent]:
    """The run's journal, decrypted with the master key in the journal's folder if any."""
    async def read() -> list[Event]:
        store = SQLiteStore(db, keys=load_keyring({"PODIUM_HOME": str(db.parent)}))
        try:
            return await store.events(run_id)
        finally:
            await store.close()

    return [JournalEvent(e.seq, e.type, e.task, e.data, e.ts) for e in asyncio.run(read())]


def run_status(db: Path, run_id: str) -> str:
    with closing(sqlite3.connect(db)) as conn:
        (status,) = conn.execute("SELECT status FROM runs WHERE run_id = ?",
                                 (run_id,)).fetchone()
    return str(status)


def podium(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PODIUM), *args], cwd=WORKFLOW_DIR, capture_output=True,
                          text=True, env={**os.environ, "PODIUM_HOME": str(home)},
                          timeout=PROCESS_DEADLINE_S)


def find_run(home: Path) -> str | None:
    """The run's id from `podium runs list --json`; None if no run was created yet."""
    done = podium("runs", "list", "--json", home=home)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert len(rows) <= 1, rows
    return rows[0]["run_id"] if rows else None


# -- the crash loop -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    seed: int
    sleep_ms: int
    width: int
    kills: int
    """SIGKILLs to land mid-run before the run is let finish."""
    linger: float
    """Chance that a kill waits a further random fraction of `sleep_ms` after that."""
    encrypted: bool = False
    """Whether the journal is encrypted at rest (a master key in `$PODIUM_HOME`)."""


@dataclass
class CrashLog:
    run_id: str | None = None
    pids: list[int] = field(default_factory=list)
    startup_kills: int = 0
    before_the_run: int = 0
    """Start-up kills that landed before the run was in the journal."""
    mid_run_kills: int = 0
    launches: int = 0
    final: dict[str, Any] = field(default_factory=dict)


def _launch(cmd: list[str], home: Path, log_dir: Path, n: int) -> subprocess.Popen[bytes]:
    # Files, not pipes: a child never blocks on a full pipe nobody reads.
    with (log_dir / f"{n}.out").open("wb") as out, (log_dir / f"{n}.err").open("wb") as err:
        return subprocess.Popen(cmd, cwd=WORKFLOW_DIR, stdout=out, stderr=err,
                                env={**os.environ, "PODIUM_HOME": str(home)})


def _pause_or_exit(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """Wait up to `seconds` for the process to exit; returns whether it did."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def _wait_for_lines(proc: subprocess.Popen[bytes], effects: Path, target: int) -> bool:
    """Poll until the effects file has `target` lines; False if the process exited first."""
    deadline = os.times().elapsed + PROCESS_DEADLINE_S
    while count_lines(effects) < target:
        # Waiting on the process is the pause between polls, and notices it exiting.
        if _pause_or_exit(proc, 0.001):
            return count_lines(effects) >= target
        assert os.times().elapsed < deadline, f"no effect line {target} within the deadline"
    return True


def _kill(proc: subprocess.Popen[bytes]) -> int:
    os.kill(proc.pid, signal.SIGKILL)
    return proc.wait()


def _startup_kill(proc: subprocess.Popen[bytes], effects: Path, rng: random.Random) -> None:
    """Kill at a random moment of start-up: mostly before the run exists, sometimes after.

    Not a wait for anything: the random pause only picks the moment (and an effect line
    cuts it short, so the kill still lands before the run gets far).
    """
    until = os.times().elapsed + rng.uniform(0.0, 0.6)
    while count_lines(effects) == 0 and os.times().elapsed < until:
        if _pause_or_exit(proc, 0.002):
            pytest.fail(f"podium exited {proc.returncode} before it was killed")
    assert _kill(proc) == -signal.SIGKILL


def _growth(db: Path, run_id: str | None, units: int, kills_left: int,
            rng: random.Random) -> int:
    """How many more effect lines to let through before the next kill: at random, from
    one (the kill catches the first task re-run) to the re-runs plus a fair share of the
    work left, so that the kills spread over the whole run and it never ends before the
    last one."""
    journal = read_journal(db, run_id) if run_id else []
    started = {e.task for e in journal if e.type == "task_started"}
    completed = {e.task for e in journal if e.type == "task_completed"}
    in_flight = len(started - completed)
    left = units - len(started & completed)
    return rng.randint(1, in_flight + max(1, left // (kills_left + 2)))


def _mid_run_kill(proc: subprocess.Popen[bytes], effects: Path, growth: int,
                  rng: random.Random, scenario: Scenario) -> bool:
    """Kill once the effects file grew by `growth` lines, or a little later; False if the
    process ended by itself first."""
    target = count_lines(effects) + growth
    if not _wait_for_lines(proc, effects, target):
        return False
    if rng.random() < scenario.linger:
        # Not waiting for anything: this only moves the kill to a random later moment.
        if _pause_or_exit(proc, rng.uniform(0, scenario.sleep_ms / 1000)):
            return False
    return _kill(proc) == -signal.SIGKILL


def crash_until_done(scenario: Scenario, tmp_path: Path) -> CrashLog:
    """Start the workflow, kill it, resume it, kill it... until a resume exits 0."""
    rng = random.Random(scenario.seed)
    home, effects, logs = tmp_path / "home", tmp_path / "effects.log", tmp_path / "logs"
    logs.mkdir()
    db = home / "podium.db"
    if scenario.encrypted:
        home.mkdir()
        (home / "master.key").write_text(MasterKey.generate().text())
    run_cmd = [str(PODIUM), "run", str(WORKFLOW), "--json", "--no-input",
               "-i", f"effects={effects}", "-i", f"sleep_ms={scenario.sleep_ms}",
               "-i", f"width={scenario.width}"]
    keys, fan_outs = expected_keys({"base": 7, "width": scenario.width})
    units = len(keys - fan_outs)
    log = CrashLog()
    while True:
        cmd = run_cmd if log.run_id is None else [str(PODIUM), "resume", log.run_id, "--json"]
        proc = _launch(cmd, home, logs, log.launches)
        log.launches += 1
        log.pids.append(proc.pid)
        if log.launches == 1:
            _startup_kill(proc, effects, rng)
            log.startup_kills += 1
            log.run_id = find_run(home)
            log.before_the_run += log.run_id is None
        elif log.mid_run_kills < scenario.kills:
            growth = _growth(db, log.run_id, units, scenario.kills - log.mid_run_kills, rng)
            if not _mid_run_kill(proc, effects, growth, rng, scenario):
                break
            log.run_id = log.run_id or find_run(home)
            assert log.run_id is not None, "effects were written, so the run exists"
            if run_status(db, log.run_id) == "completed":
                # On a loaded machine the kill can land after the run journaled its end
                # but before the process exited: not a mid-run kill. The next resume finds
                # the run completed and exits at once.
                continue
            log.mid_run_kills += 1
        else:
            if _pause_or_exit(proc, PROCESS_DEADLINE_S):
                break
            _kill(proc)
            pytest.fail(f"the last resume did not finish within {PROCESS_DEADLINE_S}s")
    last = log.launches - 1
    assert proc.returncode == 0, (
        f"the last process exited {proc.returncode}:\n{(logs / f'{last}.err').read_text()}")
    assert log.run_id is not None
    assert run_status(db, log.run_id) == "completed"
    log.final = json.loads((logs / f"{last}.out").read_text())
    return log


# -- the checks ------------------------------------------------------------------------------


def check_recovered_run(log: CrashLog, tmp_path: Path, inputs: dict[str, Any]) -> None:
    run_id = log.run_id
    assert run_id is not None
    db = tmp_path / "home" / "podium.db"
    effects = read_effects(tmp_path / "effects.log", log.startup_kills + log.mid_run_kills)
    journal = read_journal(db, run_id)
    keys, fan_outs = expected_keys(inputs)

    by_key: dict[str, list[Effect]] = defaultdict(list)
    for effect in effects:
        by_key[effect.key].append(effect)
    assert set(by_key) == keys - fan_outs, "every task and item ran, and nothing else"
    for key, lines in by_key.items():
        assert {e.idempotency_key for e in lines} == {f"{run_id}:{key}"}, key
        # No retries are configured, so a task runs at most once per process: a second
        # line must come from the process that took over after a crash.
        assert len({e.pid for e in lines}) == len(lines), (key, lines)
    assert {e.pid for e in effects} <= set(log.pids)

    completed = Counter(e.task for e in journal if e.type == "task_completed")
    assert completed == Counter(dict.fromkeys(keys, 1)), "each task completed exactly once"
    done_at = {e.task: e.ts for e in journal if e.type == "task_completed"}
    late = [e for e in effects if e.time_ns >= done_at[e.key] * 1e9]
    assert not late, f"started after the journal recorded them completed: {late}"

    started: Counter[str | None] = Counter()
    finished: set[str | None] = set()
    for event in journal:
        if event.type == "task_started":
            assert event.task not in finished, f"{event.task} started again after completing"
            assert event.data["idempotency_key"] == f"{run_id}:{event.task}"
            started[event.task] += 1
        elif event.type == "task_completed":
            finished.add(event.task)
    unannounced = {k: (len(v), started[k]) for k, v in by_key.items() if len(v) > started[k]}
    assert not unannounced, f"side effects without a task_started before them: {unannounced}"

    expected = expected_outputs(inputs)
    assert log.final["status"] == "completed"
    assert log.final["outputs"] == expected
    shown = podium("runs", "show", run_id, "--json", home=tmp_path / "home")
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["status"] == "completed"
    assert record["outputs"] == expected
    assert {t["id"] for t in record["tasks"] if t["status"] == "completed"} == keys
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    resumes = sum(e.type == "run_resumed" for e in journal)
    # At most one mid-run kill hit `podium run`; every other one, and the last process,
    # had journaled its takeover.
    assert resumes >= log.mid_run_kills
    reruns = sorted(k for k, v in by_key.items() if len(v) > 1)
    assert reruns, "no kill caught a task in flight"
    print(f"\nrun {run_id}: {log.launches} processes, {log.startup_kills} start-up kill(s) "
          f"({log.before_the_run} before the run existed), "
          f"{log.mid_run_kills} mid-run kills, {resumes} resumes, {len(effects)} effects for "
          f"{len(keys)} task keys, re-run in flight: {', '.join(reruns)}")


SCENARIOS = [
    Scenario(seed=101, sleep_ms=6, width=8, kills=8, linger=0.0),
    Scenario(seed=202, sleep_ms=12, width=8, kills=8, linger=0.5, encrypted=True),
    Scenario(seed=303, sleep_ms=20, width=12, kills=9, linger=1.0),
]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS,
                         ids=lambda s: f"seed{s.seed}{'-encrypted' if s.encrypted else ''}")
def test_sigkill_and_resume_until_done(scenario: Scenario, tmp_path: Path) -> None:
    log = crash_until_done(scenario, tmp_path)
    assert log.mid_run_kills >= 7, f"only {log.mid_run_kills} kills landed mid-run"
    check_recovered_run(log, tmp_path, {"base": 7, "width": scenario.width})


# -- found along the way -----------------------------------------------------------------


async def test_a_task_named_items_reads_as_outputs_items(tmp_path: Path) -> None:
    workflow = Workflow("named-items")

    @workflow.task()
    def items() -> list[int]:
        return [1, 2, 3]

    def double(item: int) -> int:
        return item * 2

    workflow.add_task("double", agent=double, needs=["items"],
                      for_each="{{ outputs.items }}")
    store = SQLiteStore(tmp_path / "podium.db")
    try:
        state = await Engine(store).start(workflow)
    finally:
        await store.close()
    assert state.error is None
    assert state.outputs()["double"] == [2, 4, 6]
