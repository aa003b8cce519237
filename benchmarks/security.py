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
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from _bench import async_noop, chain, environment, repeat_interleaved, run_main, summary
from _masking_samples import GENERATORS, PII, recall, text, time_calls

from podium import Engine, LLMAgent, SQLiteStore, Workflow
from podium.models.base import Message
from podium.security import AuditLog, Masker, MaskingPolicy
from podium.security.crypto import DataKey, Keyring, MasterKey, new_data_key, seal, unseal
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


# -- injection matrix ------------------------------------------------------------------------


async def injection_matrix(folder: Path) -> dict[str, Any]:
    """Run the injection matrix once; its counts, and how long it took."""
    # The matrix is test code, shared with tests/integration/test_taint_matrix.py.
    sys.path.insert(0, ROOT)
    from tests.integration._taint_matrix import run_matrix

    start = time.perf_counter()
    figures = await run_matrix(folder)
    return {**figures, "wall_s": round(time.perf_counter() - start, 2)}


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    args = parser.parse_args()
    quick = args.quick
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PODIUM_HOME"] = str(Path(tmp) / "home")
        for name in ("PODIUM_AUDIT_KEY", "PODIUM_MASTER_KEY", "PODIUM_MASTER_KEY_FILE"):
            os.environ.pop(name, None)
        repeat = 2 if quick else 7
        return {
            "benchmark": "security",
            "environment": environment(),
            "encryption": await encryption(tmp, 20 if quick else 200, repeat),
            "masking": {**masking(20_000 if quick else 200_000, 3 if quick else 15,
                                  50 if quick else 300),
                        "model_call": await masking_per_call(tmp, 10 if quick else 100,
                                                             repeat)},
            "audit": [audit(Path(tmp), 500 if quick else 10_000, s) for s in SYNCHRONOUS],
            "injection_matrix": await injection_matrix(Path(tmp) / "matrix"),
        }


if __name__ == "__main__":
    run_main(main)
