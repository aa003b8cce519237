"""The agents of the clinical-notes example: document a visit, code it, check it, remember it.

Every transcript, name and number here is synthetic; the example ships no patient data.

- `transcribe` reads one visit from `visits.jsonl`.
- `document` turns the transcript into a structured note: vitals, allergies, medications
  (drug, dose, frequency, action), assessments and the follow-up; it merges what long-term
  memory recalls about the patient (allergies, conditions, medications, earlier vitals),
  so a second visit's note carries the first visit's facts and the change in each vital.
- `code` gives each assessment an ICD-10 code from the example's table (`icd10.csv`): by
  meaning, with the local embedding model, each assessment against each code's
  description, keeping the best code above `MIN_SIMILARITY`; an allergy adds its Z88 code.
- `check` applies compliance rules: allergies documented, every medication with a dose and
  a frequency, every assessment coded, no drug that the patient's recorded allergies forbid,
  no other patient's name in the note.
- `facts` turns a checked note into the memories kept for the next visit.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from podium.core.agent import TaskContext
from podium.memory.trust import RuleValidator

HERE = Path(__file__).parent
VISITS = HERE / "visits.jsonl"
ICD10 = HERE / "icd10.csv"
MIN_SIMILARITY = 0.45
"""An assessment is left uncoded when no code's description is this close in meaning."""

Json = dict[str, Any]

# Drug -> the allergy classes it belongs to (a patient allergic to one must not get it).
DRUG_CLASSES: dict[str, tuple[str, ...]] = {
    "amoxicillin": ("penicillin",), "penicillin": ("penicillin",),
    "ibuprofen": ("nsaid", "aspirin"), "aspirin": ("nsaid", "aspirin"),
    "metformin": (), "lisinopril": ("ace inhibitor",), "albuterol": (), "budesonide": (),
    "prednisolone": (), "paracetamol": (), "sertraline": ("ssri",),
}
_FREQUENCIES = ("once daily", "twice daily", "three times daily", "four times daily",
                "up to four times daily", "as needed")
_DRUG = re.compile(r"\b(" + "|".join(DRUG_CLASSES) + r")\b", re.IGNORECASE)
_DOSE = re.compile(r"^(?: inhaler)? (\d+(?:\.\d+)? ?(?:mg|mcg|g|puffs?))\b", re.IGNORECASE)
_ACTION = re.compile(r"\b(start(?:ing)?|continue|prescribe|take|use|stop)\b", re.IGNORECASE)
_ASSESSMENT = re.compile(
    r"(?:this is (?:an? )?|that confirms |fits |looks like (?:an? )?|your "
    r"(?=[a-z0-9 ]+ is (?:improving|responding)))"
    r"(?P<what>[a-z0-9 ,()-]+?)(?: is (?:improving|responding well)|[.,]| triggered| which)",
    re.IGNORECASE)
_VITALS = {
    "bp": re.compile(r"blood pressure(?: today)?(?: is)? (\d+) over (\d+)", re.IGNORECASE),
    "weight_kg": re.compile(r"weight(?: is)? (\d+(?:\.\d+)?) kg", re.IGNORECASE),
    "temperature_c": re.compile(r"temperature is (\d+(?:\.\d+)?)", re.IGNORECASE),
    "hba1c_pct": re.compile(r"hba1c (?:came back at|is down to|is) (\d+(?:\.\d+)?)",
                            re.IGNORECASE),
    "peak_flow_pct": re.compile(r"peak flow is (\d+) percent", re.IGNORECASE),
    "phq9": re.compile(r"phq-9 score is (\d+)", re.IGNORECASE),
}


def transcribe(patient: str, visit: str, visits: str = str(VISITS)) -> Json:
    """The visit `visit` of patient `patient`, from the JSON-lines file `visits`."""
    with open(visits, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{visits}:{number}: not JSON: {error.msg}") from None
            if record.get("patient") == patient and record.get("visit") == visit:
                return dict(record)
    raise LookupError(f"no visit {visit!r} of patient {patient!r} in {visits}")


def _vitals(text: str) -> Json:
    found: Json = {}
    for name, pattern in _VITALS.items():
        match = pattern.search(text)
        if match is None:
            continue
        if name == "bp":
            found[name] = f"{match.group(1)}/{match.group(2)}"
        else:
            found[name] = float(match.group(1))
    return found


def _allergies(text: str) -> list[str] | None:
    lowered = text.lower()
    if "no known drug allergies" in lowered or "none that i know of" in lowered:
        return []
    found = re.findall(r"allergic to (\w+)", lowered)
    return sorted(set(found)) if found else None


def _medications(doctor_lines: Sequence[str]) -> list[Json]:
    meds: dict[str, Json] = {}
    for line in doctor_lines:
        mentions = list(_DRUG.finditer(line))
        for number, match in enumerate(mentions):
            before = line[mentions[number - 1].end() if number else 0:match.start()]
            after = line[match.end():mentions[number + 1].start()
                         if number + 1 < len(mentions) else len(line)].lower()
            actions = _ACTION.findall(before)
            action = actions[-1].lower() if actions else ""
            dose = _DOSE.match(after)
            frequency = next((f for f in sorted(_FREQUENCIES, key=len, reverse=True)
                              if f in after), None)
            drug = match.group(1).lower()
            if drug in meds and dose is None and action != "stop":
                continue  # a later mention without a dose ("if you need the albuterol")
            meds[drug] = {
                "drug": drug, "dose": dose.group(1) if dose else None, "frequency": frequency,
                "action": "stop" if action == "stop" else
                          "continue" if action == "continue" else "start",
            }
    return list(meds.values())


def _assessments(doctor_lines: Sequence[str]) -> list[str]:
    found: list[str] = []
    for line in doctor_lines:
        for match in _ASSESSMENT.finditer(line):
            what = match.group("what").strip(" ,").lower()
            if what.startswith(("blood pressure", "peak flow", "temperature", "hba1c",
                                "kidney", "throat", "phq-9", "readings", "lumbar")):
                continue
            if what and what not in found:
                found.append(what)
    return found


def document(visit: Mapping[str, Any], memories: Sequence[Any] = ()) -> Json:
    """A structured note of the visit, merged with what is remembered of the patient.

    `memories` holds what the task's declared retrieval found (`Memory` objects, or dicts
    with `metadata`); only facts recorded in a memory's `metadata["fact"]` are merged.
    """
    history = memories
    text = visit["transcript"]
    doctor = [line.split(":", 1)[1].strip() for line in text.splitlines()
              if line.startswith("Doctor:")]
    remembered = [_fact(item) for item in history]
    known_allergies = sorted({f["value"] for f in remembered if f and f["kind"] == "allergy"})
    earlier_vitals = [f for f in remembered if f and f["kind"] == "vitals"]
    allergies = _allergies(text)
    nkda = any(f and f["kind"] == "allergy_status" for f in remembered)
    conditions = sorted({f["value"] for f in remembered if f and f["kind"] == "condition"})
    note: Json = {
        "patient": visit["patient"], "visit": visit["visit"], "date": visit["date"],
        "vitals": _vitals(text),
        "allergies": sorted(set(allergies or []) | set(known_allergies)),
        "allergies_documented": allergies is not None or bool(known_allergies) or nkda,
        "medications": _medications(doctor),
        "assessments": [_known_as(a, conditions) for a in _assessments(doctor)],
        "follow_up": next((s for s in doctor if "come back" in s.lower()
                           or "see you" in s.lower()), None),
        "history": {
            "allergies": known_allergies,
            "conditions": conditions,
            "medications": sorted({f["value"] for f in remembered
                                   if f and f["kind"] == "medication"}),
        },
        "changes": {},
    }
    if earlier_vitals:
        last = max(earlier_vitals, key=lambda f: f["date"])
        note["changes"] = {
            name: {"before": last["value"][name], "now": value, "since": last["date"]}
            for name, value in note["vitals"].items() if name in last["value"]
        }
    return note


def _known_as(assessment: str, conditions: Sequence[str]) -> str:
    """The remembered condition an assessment names more briefly ("diabetes" for "type 2
    diabetes mellitus"), else the assessment itself."""
    words = set(assessment.split())
    for condition in conditions:
        if words <= set(condition.split()):
            return condition
    return assessment


def _fact(item: Any) -> Json | None:
    metadata = item.get("metadata") if isinstance(item, Mapping) else getattr(
        item, "metadata", None)
    fact = metadata.get("fact") if isinstance(metadata, Mapping) else None
    if isinstance(fact, str):
        try:
            fact = json.loads(fact)
        except json.JSONDecodeError:
            return None
    return fact if isinstance(fact, dict) and "kind" in fact else None


def _table(path: str) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return [(row["code"], row["description"]) for row in csv.DictReader(handle)]


async def code(document: Mapping[str, Any], table: str = str(ICD10)) -> Json:
    """ICD-10 codes for the note's assessments (by meaning) and its allergies."""
    from podium.memory.embeddings import default_embedder

    codes = _table(table)
    embedder = default_embedder()
    assessments = list(document["assessments"])
    coded: list[Json] = []
    uncoded: list[str] = []
    if assessments:
        vectors = await embedder.embed(assessments)
        references = await embedder.embed([description for _, description in codes])
        scores = vectors @ references.T
        for row, assessment in enumerate(assessments):
            best = int(scores[row].argmax())
            similarity = float(scores[row][best])
            if similarity < MIN_SIMILARITY:
                uncoded.append(assessment)
                continue
            coded.append({"code": codes[best][0], "description": codes[best][1],
                          "for": assessment, "similarity": round(similarity, 3)})
    for allergy in document["allergies"]:
        status = {"penicillin": "Z88.0", "aspirin": "Z88.6"}.get(allergy)
        if status:
            coded.append({"code": status, "description": dict(codes)[status],
                          "for": f"allergy to {allergy}", "similarity": 1.0})
    return {"codes": coded, "uncoded": uncoded}


def check(document: Mapping[str, Any], code: Mapping[str, Any],
          others: Sequence[str] = ()) -> Json:
    """Compliance findings; `passed` is true when none is an error."""
    findings: list[Json] = []

    def finding(severity: str, rule: str, message: str) -> None:
        findings.append({"severity": severity, "rule": rule, "message": message})

    if not document["allergies_documented"]:
        finding("error", "allergies", "allergies are not documented")
    for med in document["medications"]:
        if med["action"] != "stop" and not (med["dose"] and med["frequency"]):
            finding("error", "dosing", f"{med['drug']} lacks a dose or a frequency")
        for allergy in document["allergies"]:
            if allergy in DRUG_CLASSES.get(med["drug"], ()) and med["action"] != "stop":
                finding("error", "allergy_conflict",
                        f"{med['drug']} ordered for a patient allergic to {allergy}")
    for assessment in code["uncoded"]:
        finding("warning", "coding", f"no ICD-10 code for {assessment!r}")
    rendered = json.dumps(document).lower()
    for name in others:
        if name.lower() in rendered:
            finding("error", "privacy", "the note names another patient")
    return {"passed": not any(f["severity"] == "error" for f in findings),
            "findings": findings}


def others(patient: str, visits: str = str(VISITS)) -> list[str]:
    """The names of every other patient in the visits file (for the privacy rule)."""
    with open(visits, encoding="utf-8") as lines:
        names = {json.loads(line)["name"] for line in lines
                 if line.strip() and json.loads(line)["patient"] != patient}
    return sorted(names)


def check_note(document: Mapping[str, Any], codes: Mapping[str, Any], patient: str,
               visits: str = str(VISITS)) -> Json:
    """`check`, with the other patients read from the visits file."""
    return check(document, codes, others(patient, visits))


async def remember(document: Mapping[str, Any], check: Mapping[str, Any], ctx: TaskContext,
                   review: Any = None) -> Json:
    """Keep the note's facts in the patient's memory, then promote them to trusted when the
    compliance check passed or a clinician approved the note (the validation step: what an
    agent writes is stored untrusted). Each fact is one durable step, so a re-run after a
    crash does not write it twice."""
    if ctx.memory is None:
        raise RuntimeError("the remember task must declare memory: (the patient's namespace)")
    memory = ctx.memory
    approved = bool(check.get("passed")) or (
        isinstance(review, Mapping) and review.get("approved") is True)
    rule = RuleValidator("compliance-or-clinician", lambda _: (
        approved, "the note passed compliance or a clinician approved it" if approved
        else "the note failed compliance and was not approved"))
    kept = []
    for number, item in enumerate(facts(document)):
        async def write(item: Json = item) -> Json:
            stored = await memory.remember(item["text"], metadata={"fact": item["fact"]})
            verdict = await memory.promote(stored.id, rule)
            return {"id": stored.id, "trusted": verdict.accepted}
        kept.append(await ctx.step("memory", f"remember {number}", write))
    return {"namespace": memory.namespace, "kept": kept,
            "trusted": sum(1 for k in kept if k["trusted"])}


def facts(document: Mapping[str, Any]) -> list[Json]:
    """What to remember of a checked note: one memory per fact, each with its JSON."""
    out: list[Json] = []

    def keep(kind: str, value: Any, text: str) -> None:
        fact = {"kind": kind, "value": value, "date": document["date"]}
        out.append({"text": text, "fact": fact})

    for allergy in document["allergies"]:
        keep("allergy", allergy, f"Allergic to {allergy}.")
    if document["allergies_documented"] and not document["allergies"]:
        keep("allergy_status", "none known", "No known drug allergies.")
    for assessment in document["assessments"]:
        keep("condition", assessment, f"Diagnosed with {assessment} on {document['date']}.")
    for med in document["medications"]:
        if med["action"] != "stop":
            value = " ".join(str(p) for p in (med["drug"], med["dose"], med["frequency"]) if p)
            keep("medication", value, f"Takes {value} (from {document['date']}).")
    if document["vitals"]:
        readings = ", ".join(f"{k} {v}" for k, v in document["vitals"].items())
        keep("vitals", dict(document["vitals"]), f"Vitals on {document['date']}: {readings}.")
    return out
