"""The security layer's costs; prints one JSON object.

- `encryption`: what encryption at rest adds per journaled event. The same chain workloads
  run against two SQLite journals (WAL), one without a master key and one with; each run's
  wall time is divided by the events it journaled. `noop` tasks journal small payloads;
  `2kb_outputs` tasks return 2 KB each. `fold` is the time to read back and fold a run's
  journal (`engine.state`, which decrypts every payload), per event. `seal_us` is one
  AES-256-GCM seal and unseal of a 2 KB payload alone.
- `masking`: `Masker.mask` throughput over realistic text without and with personal data;
  the time to mask one 2 KB prompt; detector recall per type on generated values; and the
  overhead masking adds to a model call: a chain of LLM tasks calling a scripted external
  model with a 2 KB prompt holding personal data (a new value in each, so the run's vault
  grows and is kept in the journal every call), with and without a masking policy.
- `audit`: the audit log's durable append rate and its verification rate.
- `access_matrix`: the size of the command x role matrix of
  `tests/e2e/test_access_matrix.py` (every `podium` command, and its variants that need
  another permission, as every role of its policy); the full run also walks it through
  the real command and reports the cells whose outcome was not the expected one (must be
  0) and the time taken.
- `runs_show_json`: `podium runs show RUN --json` on a run with a `for_each` of 10,000 and
  100,000 items: the command's wall time, CPU time and peak resident memory (`os.wait4`'s
  `ru_utime + ru_stime` and `ru_maxrss` for that child alone), and the bytes it printed
  (checked to parse, with one record per item). The runs are made first, in-process, and
  not timed.
- `audit_tamper`: every way of tampering with the audit log in `_audit_tamper.py` (edit,
  delete, reorder, insert, cut with heads, empty, rewrite with the keys, replace the file),
  each on a fresh log with its witness: how many `verify()` detects, out of those tried,
  plus the documented limit (a tail after the last signed head), tried and reported apart.
- `journal_checksum`: what the per-event checksum (`podium/store/_sums.py`) costs: events
  appended one per call and read back and folded (`RunState.of(store.events())`) with the
  checksum on and off (off: computing and checking skipped), interleaved, on a journal
  without and with a master key; and the checksum function alone per event.
- `injection_matrix`: the size and result of the injection matrix
  (`tests/integration/_taint_matrix.py`, also run as a test): every route from an
  untrusted source into a prompt or a tool argument, times two high-risk tools acting on
  real loopback servers (SMTP, HTTP), with a scripted model that obeys the planted order.
  `hostile.forbidden_executed` must be 0 (and `held` equal to `attempts`); the trusted
  control runs the same routes from trusted sources, where every call must run unheld.

Medians and minima of several runs after a warm-up, interleaved so that load drift falls
on both sides alike.

    python benchmarks/security.py            # the full benchmark (about a minute)
    python benchmarks/security.py --quick    # small sizes: a smoke test
    python benchmarks/security.py --only runs_show_json   # one section
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from _audit_tamper import EXPECTED, TAMPERS, UNDETECTABLE, cut_after_the_last_head, make_log
from _bench import async_noop, chain, environment, repeat_interleaved, run_main, summary
from _masking_samples import GENERATORS, PII, recall, text, time_calls

from podium import Engine, LLMAgent, RunState, SQLiteStore, Workflow
from podium.core.events import NewEvent
from podium.core.workflow import InputSpec
from podium.models.base import Message
from podium.security import AuditLog, Masker, MaskingPolicy
from podium.security.crypto import DataKey, Keyring, MasterKey, new_data_key, seal, unseal
from podium.store import _sums as _journal_sums
from podium.store import keys as _journal_keys
from podium.store import new_owner
from podium.store._common import dumps as _dumps
from podium.store._sums import event_sum
from podium.testing import ScriptedModel

ROOT = str(Path(__file__).resolve().parents[1])
SYNCHRONOUS: tuple[Literal["NORMAL", "FULL"], ...] = ("NORMAL", "FULL")


# -- encryption at rest ---------------------------------------------------------------------


def _store(folder: str, name: str, encrypted: bool) -> SQLiteStore:
    keys = Keyring(keys=(MasterKey.generate(),)) if encrypted else None
    return SQLiteStore(Path(folder) / f"{name}.sqlite", keys=keys)


def _outputs_2kb(n: int) -> Workflow:
    payload = text(2048, with_pii=False)
    wf = Workflow("bench-2kb")

    async def write() -> str:
        return payload

    wf.add_agent("writer", write)
    for i in range(n):
        wf.add_task(f"t{i}", agent="writer", needs=[f"t{i - 1}"] if i else [])
    return wf


async def encryption(folder: str, tasks: int, repeat: int) -> dict[str, Any]:
    """Per-event wall time of chains with and without a master key, and of folding them."""
    workloads = {"noop": chain(tasks, async_noop), "2kb_outputs": _outputs_2kb(tasks)}
    result: dict[str, Any] = {"tasks_per_run": tasks}
    for name, wf in workloads.items():
        stores = {side: _store(folder, f"{name}-{side}", side == "encrypted")
                  for side in ("clear", "encrypted")}
        try:
            engines = {side: Engine(store) for side, store in stores.items()}

            def runner(engine: Engine, wf: Workflow = wf) -> Any:
                async def run() -> None:
                    state = await engine.start(wf)
                    assert state.status == "completed", state.error
                return run

            walls = await repeat_interleaved({s: runner(e) for s, e in engines.items()}, repeat)
            events = {side: (await store.runs(limit=1))[0].events
                      for side, store in stores.items()}
            run_ids = {side: (await store.runs(limit=1))[0].run_id
                       for side, store in stores.items()}
            folds = await repeat_interleaved(
                {side: functools.partial(engines[side].state, run_ids[side])
                 for side in stores}, repeat)
        finally:
            for store in stores.values():
                await store.close()
        per_event = {side: [w / events[side] * 1e6 for w in walls[side]] for side in stores}
        fold = {side: [w / events[side] * 1e6 for w in folds[side]] for side in stores}
        result[name] = {
            "events_per_run": events["clear"],
            "journal_us_per_event": {side: summary(v) for side, v in per_event.items()},
            "overhead_us_per_event": round(statistics.median(per_event["encrypted"])
                                           - statistics.median(per_event["clear"]), 1),
            "fold_us_per_event": {side: summary(v, 2) for side, v in fold.items()},
            "fold_overhead_us_per_event": round(statistics.median(fold["encrypted"])
                                                - statistics.median(fold["clear"]), 2),
        }
    key = DataKey.of(1, new_data_key())
    plain = text(2048, with_pii=False).encode()
    walls = time_calls(lambda: unseal(key, seal(key, plain, b"where"), b"where", what="x"),
                       2000)
    result["seal_and_unseal_2kb_us"] = round(statistics.median(walls) * 1e6, 2)
    return result


# -- masking ---------------------------------------------------------------------------------


def _echo(messages: Sequence[Message], schema: object) -> str:
    return "Noted: " + messages[-1].content[-200:]


def _llm_chain(n: int, masked: bool) -> Workflow:
    model = ScriptedModel(_echo, external=True)
    wf = Workflow("bench-masking")
    wf.add_agent("writer", LLMAgent(model, name="writer",
                                    masking=MaskingPolicy() if masked else None))
    prompt = text(2048 - len(PII) - 40, with_pii=False) + PII
    for i in range(n):
        wf.add_task(f"t{i}", agent="writer", needs=[f"t{i - 1}"] if i else [],
                    prompt=f"{prompt} Also reach customer{i}@example.com.")
    return wf


async def masking_per_call(folder: str, calls: int, repeat: int) -> dict[str, Any]:
    """Wall time per model call of a chain of LLM tasks, with and without masking."""
    stores = {side: _store(folder, f"masking-{side}", False) for side in ("plain", "masked")}
    try:
        runs = {}
        for side, store in stores.items():
            wf, engine = _llm_chain(calls, side == "masked"), Engine(store)

            async def run(engine: Engine = engine, wf: Workflow = wf) -> None:
                state = await engine.start(wf)
                assert state.status == "completed", state.error
            runs[side] = run
        walls = await repeat_interleaved(runs, repeat)
    finally:
        for store in stores.values():
            await store.close()
    per_call = {side: [w / calls * 1e6 for w in v] for side, v in walls.items()}
    return {"model_calls_per_run": calls, "prompt_bytes": 2048,
            "us_per_call": {side: summary(v) for side, v in per_call.items()},
            "overhead_us_per_call": round(statistics.median(per_call["masked"])
                                          - statistics.median(per_call["plain"]), 1)}


def masking(size: int, repeat: int, samples: int) -> dict[str, Any]:
    masker = Masker(run_id="bench")
    throughput: dict[str, int] = {}
    findings: dict[str, int] = {}
    for name, with_pii in (("no_pii", False), ("with_pii", True)):
        sample = text(size, with_pii)
        findings[name] = len(Masker(run_id="count").mask(sample).findings)
        walls = time_calls(functools.partial(masker.mask, sample), repeat)
        throughput[name] = round(len(sample) / 1024 / statistics.median(walls))
    prompt = text(2048 - len(PII), False) + PII
    prompt_walls = time_calls(lambda: masker.mask(prompt), repeat * 20)
    recalls = {label: round(recall(label, samples)[0], 4) for label in GENERATORS}
    return {"text_bytes": size, "throughput_kb_s": throughput, "findings": findings,
            "prompt_2kb_us": {"bytes": len(prompt),
                              "median": round(statistics.median(prompt_walls) * 1e6, 1),
                              "min": round(min(prompt_walls) * 1e6, 1)},
            "recall": {"samples_per_type": samples, "per_type": recalls}}


# -- audit -----------------------------------------------------------------------------------


def audit(folder: Path, records: int, synchronous: Literal["NORMAL", "FULL"]) -> dict[str, Any]:
    """Durable appends (each its own transaction, a head signed every 100) and a full
    verification (every MAC and every signed head)."""
    db = folder / f"audit-{synchronous.lower()}.db"
    with AuditLog(db, synchronous=synchronous, sign_every=100) as log:
        start = time.perf_counter()
        for i in range(records):
            log.append(actor="svc:bench", action="tool.call", subject=f"run-{i // 50}/t{i}",
                       outcome="ok", data_classes=("EMAIL",))
        append_s = time.perf_counter() - start
    with AuditLog(db, sign_on_close=False) as log:
        start = time.perf_counter()
        report = log.verify()
        verify_s = time.perf_counter() - start
    assert report.ok, report
    return {"synchronous": synchronous, "records": records,
            "append_records_per_s": round(records / append_s),
            "append_us_per_record": round(append_s / records * 1e6, 1),
            "verify_records_per_s": round(records / verify_s),
            "verify_s": round(verify_s, 3),
            "heads": report.heads_checked,
            "db_bytes": db.stat().st_size + sum(
                p.stat().st_size for p in folder.glob(f"{db.name}-*"))}


def access_matrix(walk: bool) -> dict[str, Any]:
    """The command x role matrix's size; walked through the real command if `walk`."""
    root = Path(__file__).resolve().parents[1]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from tests.e2e import test_access_matrix as matrix

    size: dict[str, Any] = matrix.matrix_size()
    if not walk:
        return size
    saved, cwd = dict(os.environ), Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        home = matrix.make_home(Path(tmp))
        for name in matrix.UNSET:
            os.environ.pop(name, None)
        os.environ["PODIUM_HOME"] = str(home.home)
        os.chdir(tmp)
        try:
            started = time.perf_counter()
            cells = matrix.walk(home)
            took = time.perf_counter() - started
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(saved)
    return {**size, "walked": len(cells),
            "refused": sum(1 for c in cells if c.role not in matrix.MAY[c.row][0]),
            "mismatches": len(matrix.mismatches(cells)), "seconds": round(took, 2),
            "ms_per_cell": round(took / len(cells) * 1000, 1)}
# -- runs show --json on a large fan-out -------------------------------------------------


async def _fan_out_run(db: Path, items: int) -> str:
    wf = Workflow("bench-json", inputs={"items": InputSpec()})

    async def echo(item: int) -> dict[str, Any]:
        return {"item": item, "label": f"item {item}"}

    wf.add_agent("echo", echo)
    wf.add_task("each", agent="echo", for_each="{{ inputs.items }}",
                args={"item": "{{ item }}"}, concurrency=64)
    store = SQLiteStore(db)
    try:
        state = await Engine(store).start(wf, {"items": list(range(items))})
    finally:
        await store.close()
    assert state.status == "completed", state.error
    return state.run_id


def _runs_show_json(folder: Path, db: Path, run_id: str, items: int) -> dict[str, Any]:
    """One `podium runs show --json` in its own process: wall time, peak RSS, output."""
    printed, errors = folder / "show.json", folder / "show.err"
    with printed.open("wb") as out, errors.open("wb") as err:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "podium", "runs", "show", run_id,
                                  "--json", "--db", str(db)], stdout=out, stderr=err)
        # wait4 gives this child's own peak RSS (RUSAGE_CHILDREN is the max of all).
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0, errors.read_text()
    record = json.loads(printed.read_text(encoding="utf-8"))
    assert len(record["tasks"]) == items + 1  # the items and their fan-out task
    return {"items": items, "seconds": round(seconds, 2),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "printed_mb": round(printed.stat().st_size / 1e6, 1)}


async def runs_show_json(folder: Path, sizes: Sequence[int]) -> list[dict[str, Any]]:
    """`runs show --json` time and peak memory on fan-outs of each size."""
    results = []
    for items in sizes:
        db = folder / f"fan-out-{items}.db"
        run_id = await _fan_out_run(db, items)
        results.append(_runs_show_json(folder, db, run_id, items))
    return results
# -- audit tampering -----------------------------------------------------------------------


def audit_tamper(folder: Path) -> dict[str, Any]:
    """Each tamper on a fresh log (130 records, witnessed heads at 50, 100, 130)."""
    found: dict[str, list[str]] = {}
    for name, tamper in [*TAMPERS.items(), (UNDETECTABLE, cut_after_the_last_head)]:
        db = folder / "tamper" / f"{name}.db"
        make_log(db, sign_on_close=name != UNDETECTABLE)
        tamper(db)
        with AuditLog(db, sign_on_close=False) as log:
            found[name] = sorted({f.kind for f in log.verify().findings})
    detected = [n for n in TAMPERS if EXPECTED[n] in found[n]]
    return {"tried": len(TAMPERS), "detected": len(detected),
            "missed": sorted(set(TAMPERS) - set(detected)), "findings": found,
            "limit": {"tamper": UNDETECTABLE, "detected": bool(found[UNDETECTABLE])}}


# -- journal checksums ---------------------------------------------------------------------


@contextmanager
def _checksums(on: bool) -> Iterator[None]:
    """The journal with its per-event checksum computed and checked, or skipped."""
    saved = (_journal_keys.event_sum, _journal_keys.check_event, _journal_sums.check_event)
    if not on:
        _journal_keys.event_sum = lambda *args, **kwargs: b""  # type: ignore[assignment]
        _journal_keys.check_event = lambda *args, **kwargs: None  # type: ignore[assignment]
        # Clear rows are checked inside _sums.clear_payload.
        _journal_sums.check_event = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        yield
    finally:
        _journal_keys.event_sum, _journal_keys.check_event, _journal_sums.check_event = saved


async def _append_and_fold(folder: str, name: str, encrypted: bool, events: int
                           ) -> tuple[float, float]:
    """µs per event appended one per call, and per event read back and folded."""
    store = _store(folder, name, encrypted)
    owner = new_owner()
    event = NewEvent(type="task_completed", task="t", data={
        "output": {"text": "a reply of some words", "tokens": [12, 34]}, "attempt": 1})
    try:
        await store.create_run("r", "bench", NewEvent(type="run_started", data={
            "workflow": "bench", "inputs": {}}), owner)
        start = time.perf_counter()
        for _ in range(events):
            await store.append("r", [event], owner)
        append_us = (time.perf_counter() - start) / events * 1e6
        start = time.perf_counter()
        RunState.of("r", await store.events("r"))
        fold_us = (time.perf_counter() - start) / (events + 1) * 1e6
    finally:
        await store.close()
    return append_us, fold_us


async def journal_checksum(folder: str, events: int, repeat: int) -> dict[str, Any]:
    result: dict[str, Any] = {"events_per_run": events}
    for encrypted in (False, True):
        samples: dict[str, dict[str, list[float]]] = {
            side: {"append": [], "fold": []} for side in ("off", "on")}
        for r in range(repeat + 1):
            for side in ("off", "on"):
                with _checksums(side == "on"):
                    append_us, fold_us = await _append_and_fold(
                        folder, f"sums-{encrypted}-{side}-{r}", encrypted, events)
                if r:  # the first round warms caches up
                    samples[side]["append"].append(append_us)
                    samples[side]["fold"].append(fold_us)
        result["encrypted" if encrypted else "clear"] = {
            f"{what}_us_per_event": {side: summary(samples[side][what], 2)
                                     for side in ("off", "on")}
            | {"added_median": round(statistics.median(samples["on"][what])
                                     - statistics.median(samples["off"][what]), 2)}
            for what in ("append", "fold")}
    text = _dumps({"output": {"text": "a reply of some words", "tokens": [12, 34]}})
    blob = os.urandom(len(text) + 40)
    key = os.urandom(32)
    for label, data, mac in (("clear", text, None), ("keyed", blob, key)):
        n, rounds = 20_000, []
        for _ in range(repeat):
            start = time.perf_counter()
            for i in range(n):
                event_sum("run-id", i, "task_completed", "t", data, 1.5e9, mac)
            rounds.append((time.perf_counter() - start) / n * 1e6)
        result[f"sum_alone_us_{label}"] = summary(rounds, 3)
    return result
# -- injection matrix ------------------------------------------------------------------------


async def injection_matrix(folder: Path) -> dict[str, Any]:
    """Run the injection matrix once; its counts, and how long it took."""
    # The matrix is test code, shared with tests/integration/test_taint_matrix.py.
    sys.path.insert(0, ROOT)
    from tests.integration._taint_matrix import run_matrix

    start = time.perf_counter()
    figures = await run_matrix(folder)
    return {**figures, "wall_s": round(time.perf_counter() - start, 2)}


SECTIONS = ("encryption", "masking", "audit", "access_matrix", "runs_show_json",
            "audit_tamper", "journal_checksum", "injection_matrix")


async def section(name: str, tmp: str, quick: bool) -> Any:
    """One section's figures."""
    repeat = 2 if quick else 7
    if name == "encryption":
        return await encryption(tmp, 20 if quick else 200, repeat)
    if name == "masking":
        return {**masking(20_000 if quick else 200_000, 3 if quick else 15,
                          50 if quick else 300),
                "model_call": await masking_per_call(tmp, 10 if quick else 100, repeat)}
    if name == "audit":
        return [audit(Path(tmp), 500 if quick else 10_000, s) for s in SYNCHRONOUS]
    if name == "access_matrix":
        # In a thread: the commands it runs start event loops of their own.
        return await asyncio.to_thread(access_matrix, not quick)
    if name == "runs_show_json":
        return await runs_show_json(Path(tmp), (100, 1_000) if quick else (10_000, 100_000))
    if name == "audit_tamper":
        return audit_tamper(Path(tmp))
    if name == "journal_checksum":
        return await journal_checksum(tmp, 50 if quick else 2_000, repeat)
    return await injection_matrix(Path(tmp) / "matrix")


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--only", choices=SECTIONS, action="append",
                        help="run this section (repeatable); default: all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PODIUM_HOME"] = str(Path(tmp) / "home")
        for name in ("PODIUM_AUDIT_KEY", "PODIUM_MASTER_KEY", "PODIUM_MASTER_KEY_FILE"):
            os.environ.pop(name, None)
        figures: dict[str, Any] = {"benchmark": "security", "environment": environment()}
        for name in args.only or SECTIONS:
            figures[name] = await section(name, tmp, args.quick)
        return figures


if __name__ == "__main__":
    run_main(main)
