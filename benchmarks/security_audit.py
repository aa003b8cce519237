"""The audit log's throughput: durable appends and verification, on 10,000 records.

Each append is its own `BEGIN IMMEDIATE` transaction, committed before `append` returns
(chain MAC computed, a head signed with Ed25519 every 100 records). Verification reads every
record, checks every MAC and every signed head.

    python benchmarks/security_audit.py [--records N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from _bench import environment

from podium.security import AuditLog

SYNCHRONOUS: tuple[Literal["NORMAL", "FULL"], ...] = ("NORMAL", "FULL")


def measure(folder: Path, records: int,
            synchronous: Literal["NORMAL", "FULL"]) -> dict[str, Any]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="500 records, a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.records = 500
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PODIUM_HOME"] = str(Path(tmp) / "home")
        os.environ.pop("PODIUM_AUDIT_KEY", None)
        results = [measure(Path(tmp), args.records, s) for s in SYNCHRONOUS]
    print(json.dumps({"benchmark": "security_audit", "environment": environment(),
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
