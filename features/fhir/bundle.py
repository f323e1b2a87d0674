"""Contract rows as FHIR R4 resources: a patient's record as a transaction Bundle.

The reverse of :func:`features.fhir.mapping.map_patient`, written with the same table, so that
simulated cohorts (``bonemet simulate``) can be loaded into a FHIR server and read back: every
value is coded with the first code of its row (a category with its first answer code); where a
row's codes are groups (ATC, ICD-10 prefixes), :data:`EXAMPLE_CODES` gives one member.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from features.fhir.mapping import DAYS_PER_YEAR, Code, FhirMapping, FieldRule

__all__ = ["EXAMPLE_CODES", "fhir_id", "patient_bundle", "patient_resources", "write_bundles"]

#: One concrete code for a row whose codes are groups: (field, value) -> (system, code, display).
EXAMPLE_CODES = {
    ("bone_targeted_therapy", "bisphosphonate"): (
        "http://www.whocc.no/atc",
        "M05BA08",
        "zoledronic acid",
    ),
    ("endocrine_therapy", True): ("http://www.whocc.no/atc", "L02BA01", "tamoxifen"),
    ("chemotherapy", True): ("http://www.whocc.no/atc", "L01CD01", "paclitaxel"),
}


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return isinstance(value, float) and math.isnan(value) or value is _NA
    except TypeError:
        return False


try:  # pandas' missing value, when rows come from a DataFrame
    from pandas import NA as _NA
except ImportError:  # pragma: no cover - pandas is a dependency
    _NA = object()


def _coding(code: Code, display: str | None = None) -> dict[str, Any]:
    coding = {"system": code.system, "code": code.code}
    if display:
        coding["display"] = display
    return coding


def _concept(rule: FieldRule, value: Any) -> dict[str, Any]:
    """The CodeableConcept of ``value`` for a Condition or Medication row."""
    if (rule.field, value) in EXAMPLE_CODES:
        system, code, display = EXAMPLE_CODES[(rule.field, value)]
        return {"coding": [{"system": system, "code": code, "display": display}]}
    codes = rule.codes if rule.value == "present" else dict(rule.values)[value]
    exact = [c for c in codes if not c.prefix]
    if not exact:
        raise ValueError(f"no exact code for {rule.field}={value!r}: add one to EXAMPLE_CODES")
    return {"coding": [_coding(exact[0])]}


def _time(t0: datetime, day: float) -> str:
    return (t0 + timedelta(seconds=round(day * 86400))).isoformat()


def patient_resources(
    row: Mapping[str, Any],
    draws: Sequence[Mapping[str, Any]],
    mapping: FhirMapping,
    fhir_id: str,
    enrollment: datetime,
) -> list[dict[str, Any]]:
    """One patient's FHIR R4 resources from a contract ``patients`` row and its draws.

    Parameters
    ----------
    row : mapping
        A patients row (missing values as None or NaN).
    draws : sequence of mapping
        Its ``oc_measurements`` rows (``day`` since enrollment); empty: the enrollment marker of
        ``row`` becomes a draw at day 0.
    mapping : FhirMapping
        The table the resources are coded with.
    fhir_id : str
        The Patient's id; other resources get ``{fhir_id}-{n}``.
    enrollment : datetime
        Day 0 (timezone-aware); ``age_years`` is counted to the date of the latest draw.

    Returns
    -------
    list of dict
        Patient, Observations, Conditions, MedicationStatements.
    """
    draws = [dict(d) for d in draws]
    if not draws and any(not _missing(row.get(c)) for c in ("oc_positive_percent", "pbmc_events")):
        draws = [{"day": 0.0, **{k: row.get(k) for k in ("oc_positive_percent",
                                                       "oc_positive_events", "pbmc_events")}}]
    latest = max((float(d["day"]) for d in draws), default=0.0)
    at = enrollment + timedelta(seconds=round(latest * 86400))
    born = at.date() - timedelta(days=round(float(row["age_years"]) * DAYS_PER_YEAR))
    subject = {"reference": f"Patient/{fhir_id}"}
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": fhir_id, "birthDate": born.isoformat(),
         "gender": "female"}
    ]
    n = 0

    def add(resource: dict[str, Any]) -> None:
        nonlocal n
        n += 1
        resources.append({"id": f"{fhir_id}-{n}", **resource})

    def observation(rule: FieldRule, when: str, value: dict[str, Any], **extra: Any) -> None:
        add({"resourceType": "Observation", "status": "final",
             "code": {"coding": [_coding(rule.codes[0])]}, "subject": subject,
             "effectiveDateTime": when, **value, **extra})

    t0 = enrollment.isoformat()
    for rule in mapping.rules:
        value = row.get(rule.field)
        if rule.source == "Observation" and rule.value != "marker" and not _missing(value):
            if rule.value == "coded":
                code = dict(rule.values)[value][0]
                observation(rule, t0, {"valueCodeableConcept": {"coding": [_coding(code)]}})
            elif rule.value == "integer":
                observation(rule, t0, {"valueInteger": int(value)})
            else:
                unit = next(u for u, f in rule.units if f == 1.0)
                observation(rule, t0, {"valueQuantity": {
                    "value": float(value), "unit": unit, "system": "http://unitsofmeasure.org",
                    "code": unit}})
        elif rule.value == "marker":
            for d in draws:
                components = [
                    {"code": {"coding": [_coding(code)]}, "valueInteger": int(d[column])}
                    for column, code in rule.components
                    if not _missing(d.get(column))
                ]
                value_part = {}
                if not _missing(d.get("oc_positive_percent")):
                    unit = next(u for u, f in rule.units if f == 1.0)
                    value_part = {"valueQuantity": {
                        "value": float(d["oc_positive_percent"]), "unit": unit,
                        "system": "http://unitsofmeasure.org", "code": unit}}
                if value_part or components:
                    observation(rule, _time(enrollment, float(d["day"])), value_part,
                                **({"component": components} if components else {}))
    alp = mapping.rule("alkaline_phosphatase_u_per_l")
    for d in draws:
        if not _missing(d.get("alkaline_phosphatase_u_per_l")) and float(d["day"]) > 0:
            observation(alp, _time(enrollment, float(d["day"])), {"valueQuantity": {
                "value": float(d["alkaline_phosphatase_u_per_l"]), "unit": "U/L",
                "system": "http://unitsofmeasure.org", "code": "U/L"}})
    active = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                          "code": "active"}]}
    setting = mapping.rule("disease_setting")
    conditions = [_concept(setting, "early")]  # the breast cancer itself
    for name in ("bone_metastasis_at_enrollment", "visceral_metastasis"):
        value = row.get(name)
        if not _missing(value) and str(value).lower() in ("true", "1"):
            conditions.append(_concept(mapping.rule(name), True))
    if row.get("disease_setting") == "metastatic" and len(conditions) == 1:
        conditions.append(_concept(setting, "metastatic"))
    for concept in conditions:
        add({"resourceType": "Condition", "clinicalStatus": active, "code": concept,
             "subject": subject})
    for rule in mapping.rules:
        value = row.get(rule.field)
        if rule.source != "Medication" or _missing(value) or value in (False, rule.absent):
            continue
        add({"resourceType": "MedicationStatement", "status": "active",
             "medicationCodeableConcept": _concept(rule, value), "subject": subject})
    return resources


def patient_bundle(
    row: Mapping[str, Any],
    draws: Sequence[Mapping[str, Any]],
    mapping: FhirMapping,
    fhir_id: str,
    enrollment: datetime,
) -> dict[str, Any]:
    """:func:`patient_resources` as a FHIR transaction Bundle (PUT by id: loading it twice
    changes nothing)."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in patient_resources(row, draws, mapping, fhir_id, enrollment)
        ],
    }


def write_bundles(
    patients: Any,
    measurements: Any,
    folder: Path,
    now: datetime,
    mapping: FhirMapping | None = None,
) -> Path:
    """Every patient of a cohort as a transaction Bundle file ``folder/<patient_id>.json``.

    Each patient's latest draw is an hour before ``now`` (day 0 moved accordingly), so a
    prediction made now uses all of them; the Patient's id is ``pt-<patient_id in lower case>``.

    Parameters
    ----------
    patients, measurements : pandas.DataFrame
        The cohort's tables (``measurements`` may be None).
    folder : Path
        Created if needed.
    now : datetime
        The reference time (timezone-aware).
    mapping : FhirMapping, optional
        Default: the table shipped with bonemet.

    Returns
    -------
    Path
        ``folder``.
    """
    import json

    from features.fhir.mapping import load_mapping

    mapping = mapping or load_mapping()
    folder.mkdir(parents=True, exist_ok=True)
    by_patient: dict[str, list[dict[str, Any]]] = {}
    if measurements is not None:
        for draw in measurements.to_dict("records"):
            by_patient.setdefault(draw["patient_id"], []).append(draw)
    for row in patients.to_dict("records"):
        draws = by_patient.get(row["patient_id"], [])
        latest = max((float(d["day"]) for d in draws), default=0.0)
        bundle = patient_bundle(row, draws, mapping, fhir_id(row["patient_id"]),
                                now - timedelta(days=latest, hours=1))
        (folder / f"{row['patient_id']}.json").write_text(json.dumps(bundle), encoding="utf-8")
    return folder


def fhir_id(patient_id: str) -> str:
    """The FHIR Patient id of a contract ``patient_id`` in written Bundles."""
    return "pt-" + patient_id.lower()
