"""Assisted electronic medical record from a copilot answer, as Markdown and as a FHIR R4 Bundle.

The fields are the EEG Emotion Copilot's record: basic information, medical history, physical
examination, diagnosis, treatment plan, laboratory results, follow-up and expenses. The system
fills only what it knows — the EEG finding, its probabilities, the copilot's assessment and
suggestion, and the age and sex it was given; every other field stays explicitly blank for the
clinician. Nothing is invented. The FHIR Bundle (Patient, an Observation per EEG finding and a
DiagnosticReport, all ``preliminary``) is validated with ``fhir.resources`` (its R4B models, the
R4 line) before it is written.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from eegpt.copilot import knowledge as kb
from eegpt.errors import EEGInputError, atomic_write

BLANK = "_(to be completed by the clinician)_"
FIELDS = ("Basic information", "Medical history", "Physical examination", "Diagnosis", "Treatment plan",
          "Laboratory results", "Follow-up", "Expenses")


@dataclass
class Record:
    task: str
    label: str
    probs: dict[str, float]
    answer: str
    age: int | None = None
    sex: str | None = None
    recording: str = ""
    windows: int = 0
    extra_findings: list[str] = field(default_factory=list)   # e.g. the night's report
    trained_on: str = ""                                       # which data trained the model
    withheld: str = ""  # why no finding is recorded: UNFAMILIAR or UNCERTAIN ("": a finding is recorded)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))


UNFAMILIAR = "the recording is unlike the model's training data"
UNCERTAIN = "the reading is uncertain (below the confidence the model was reliable at on validation subjects)"


def _finding(r: Record) -> str:
    if r.withheld:
        return f"{kb.TASK_NAMES[r.task].capitalize()}: not determined ({r.withheld})"
    name = kb.classes_of(r.task)[r.label].name
    return f"{kb.TASK_NAMES[r.task].capitalize()}: {name} (probability {100 * r.probs[r.label]:.0f}%)"


def markdown(r: Record) -> str:
    """The record as a Markdown EMR: basic information, history, diagnosis, treatment plan."""
    sex = {"F": "female", "M": "male"}.get((r.sex or "").upper()[:1])
    basic = ", ".join(x for x in [f"age {r.age}" if r.age is not None else "", sex or ""] if x)
    probs = ", ".join(f"{kb.classes_of(r.task)[k].name} {100 * v:.0f}%"
                      for k, v in sorted(r.probs.items(), key=lambda kv: -kv[1]))
    sections = {
        "Basic information": (basic + "; name and identifiers " + BLANK) if basic else BLANK,
        "Medical history": BLANK,
        "Physical examination": BLANK,
        "Diagnosis": (f"EEG-assisted finding (preliminary, for clinical review): {_finding(r)}.\n\n"
                      f"Class probabilities: {probs}.\n\n" + "".join(f"{x}\n\n" for x in r.extra_findings)
                      + f"Copilot assessment: {r.answer}"),
        "Treatment plan": BLANK + " (the copilot's suggestion above is advisory)",
        "Laboratory results": BLANK,
        "Follow-up": BLANK,
        "Expenses": BLANK,
    }
    head = (f"# Assisted EEG record\n\nGenerated {r.created} by EEGPT from `{Path(r.recording).name or 'a recording'}`"
            f"{f' ({r.windows} windows)' if r.windows else ''}. Preliminary: to be reviewed and signed by a clinician.\n"
            + (f"\nModel provenance: {r.trained_on}\n" if r.trained_on else ""))
    return head + "".join(f"\n## {k}\n\n{sections[k]}\n" for k in FIELDS)


def fhir_bundle(r: Record) -> dict:
    """A FHIR R4 ``collection`` Bundle, validated by ``fhir.resources``; returns plain JSON data."""
    from fhir.resources.R4B.bundle import Bundle

    pid, oid, rid = (str(uuid.uuid4()) for _ in range(3))
    patient = {"resourceType": "Patient", "id": pid}
    gender = {"F": "female", "M": "male"}.get((r.sex or "").upper()[:1])
    if gender:
        patient["gender"] = gender
    names = kb.classes_of(r.task)
    observation = {
        "resourceType": "Observation", "id": oid, "status": "preliminary",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "exam", "display": "Exam"}]}],
        "code": {"text": f"EEG-derived {kb.TASK_NAMES[r.task]} (EEGPT)"},
        "subject": {"reference": f"urn:uuid:{pid}"},
        "effectiveDateTime": r.created,
        "valueCodeableConcept": {"text": f"not determined: {r.withheld}" if r.withheld else names[r.label].name},
        "component": [{"code": {"text": f"probability of {names[k].name}"},
                       "valueQuantity": {"value": round(float(v), 4), "unit": "1"}} for k, v in r.probs.items()],
    }
    if r.trained_on:
        observation["note"] = [{"text": f"Model provenance: {r.trained_on}"}]
    observations = [observation]
    if r.age is not None:
        observations.append({"resourceType": "Observation", "id": str(uuid.uuid4()), "status": "final",
                             "code": {"coding": [{"system": "http://loinc.org", "code": "30525-0", "display": "Age"}]},
                             "subject": {"reference": f"urn:uuid:{pid}"},
                             "valueQuantity": {"value": r.age, "unit": "a", "system": "http://unitsofmeasure.org",
                                               "code": "a"}})
    report = {"resourceType": "DiagnosticReport", "id": rid, "status": "preliminary",
              "code": {"text": "EEG assisted interpretation (EEGPT copilot)"},
              "subject": {"reference": f"urn:uuid:{pid}"}, "effectiveDateTime": r.created, "issued": r.created,
              "result": [{"reference": f"urn:uuid:{oid}"}],
              "conclusion": " ".join([*r.extra_findings, r.answer])}
    resources = [patient, *observations, report]
    bundle = {"resourceType": "Bundle", "type": "collection", "timestamp": r.created,
              "entry": [{"fullUrl": f"urn:uuid:{res['id']}", "resource": res} for res in resources]}
    Bundle.model_validate(bundle)  # raises on anything FHIR R4 does not allow
    return bundle


def write(r: Record, path) -> Path:
    """``.json``: the FHIR Bundle; ``.md``: the Markdown record."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        text = json.dumps(fhir_bundle(r), indent=2) + "\n"
    elif path.suffix.lower() in (".md", ".markdown"):
        text = markdown(r)
    else:
        raise EEGInputError(f"{path}: an EMR is written as .md (Markdown) or .json (FHIR Bundle)")
    atomic_write(path, lambda t: t.write_text(text))
    return path
