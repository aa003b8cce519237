"""The clinical-notes example through the `podium` command: a second visit's note uses
what the first visit taught the patient's memory, and one patient's memory never appears in
another patient's run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e._cli import PODIUM, ROOT, podium_json

WORKFLOW = ROOT / "examples" / "clinical_notes.yaml"


def _visit(home: Path, patient: str, visit: str) -> tuple[int, dict[str, Any]]:
    return podium_json("run", str(WORKFLOW), "-i", f"patient={patient}", "-i", f"visit={visit}",
                       "--json", home=home)


def _memory(home: Path, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run([str(PODIUM), "memory", *args, "--json"], cwd=ROOT,
                          env={**os.environ, "PODIUM_HOME": str(home)},
                          capture_output=True, text=True, timeout=300, check=True)
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def test_a_second_visit_recalls_the_first_and_patients_stay_apart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for patient in ("P001", "P002"):
        code, first = _visit(home, patient, "V1")
        assert code == 0, first
        assert first["outputs"]["check"]["passed"]
        assert first["outputs"]["remember"]["trusted"] == len(first["outputs"]["remember"]["kept"])
    p001 = _memory(home, "list", "--namespace", "patients/P001")
    assert {m["text"] for m in p001} >= {"Allergic to penicillin.",
                                         "Takes metformin 500 mg twice daily (from 2026-09-02)."}
    assert {m["trust"] for m in p001} == {"trusted"}
    assert {m["subject"] for m in p001} == {"P001"}

    # The second visit's transcript never mentions the allergy or the earlier HbA1c.
    transcript = next(json.loads(line) for line in
                      (ROOT / "examples/clinical_notes/visits.jsonl").read_text().splitlines()
                      if '"P001"' in line and '"V2"' in line)["transcript"]
    assert "penicillin" not in transcript and "7.9" not in transcript
    code, second = _visit(home, "P001", "V2")
    assert code == 3, second
    note = second["outputs"]["note"]
    assert note["allergies"] == ["penicillin"]
    assert note["history"]["conditions"] == ["type 2 diabetes mellitus"]
    assert note["changes"]["hba1c_pct"] == {"before": 7.9, "now": 7.1, "since": "2026-09-02"}
    assert "type 2 diabetes mellitus" in note["assessments"]
    assert {c["code"] for c in second["outputs"]["codes"]["codes"]} >= {"E11.9", "J02.0", "Z88.0"}
    findings = second["outputs"]["check"]["findings"]
    assert [f["rule"] for f in findings] == ["allergy_conflict"]
    review = next(t for t in second["tasks"] if t["id"] == "review")
    assert review["status"] == "waiting" and "amoxicillin" in review["prompt"]
    assert "[error]" in review["prompt"]

    code, signed = podium_json("approve", second["run_id"], "review", "--json", home=home)
    assert code == 0, signed
    assert signed["outputs"]["remember"]["trusted"] > 0

    code, other = _visit(home, "P002", "V2")
    assert code == 0, other
    assert other["outputs"]["note"]["changes"]["bp"]["before"] == "152/94"
    assert other["outputs"]["note"]["allergies_documented"]  # "no known allergies", recalled
    record = json.dumps(other).lower()
    for fact in ("penicillin", "metformin", "diabetes", "whitfield", "amoxicillin"):
        assert fact not in record, fact
    for found in _memory(home, "search", "penicillin allergy metformin diabetes",
                         "--namespace", "patients/P002", "--top-k", "50"):
        assert found["namespace"] == "patients/P002" and found["subject"] == "P002"
        assert "penicillin" not in found["text"].lower()
