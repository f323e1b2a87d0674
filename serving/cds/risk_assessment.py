"""A prediction of the service as an HL7 FHIR R4 ``RiskAssessment``.

Built as a dict and checked with the R4 models of ``fhir.resources`` (its ``R4B`` package: the
package's default models are R5, whose RiskAssessment differs). One ``prediction`` per horizon for
bone metastasis (SNOMED CT 94222008, secondary malignant neoplasm of bone) and one per horizon for
death before bone metastasis (SNOMED CT 419620001, death), ``whenRange.high`` the horizon in months
(UCUM ``mo``) from the prediction time, ``probabilityDecimal`` the service's probability unchanged.
An interval of contract 1.2 (``low``, ``high``, ``interval_level``), when the answer carries one,
goes in the extension :data:`INTERVAL_EXTENSION` (R4's ``probabilityRange`` would replace the
number itself).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

__all__ = ["INTERVAL_EXTENSION", "MODEL_SYSTEM", "risk_assessment"]

UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
#: The interval of a probability (contract 1.2): sub-extensions ``low``, ``high``, ``level``.
INTERVAL_EXTENSION = "urn:bonemet:fhir:extension:probability-interval"
#: The model that made the prediction: code ``name:version``.
MODEL_SYSTEM = "urn:bonemet:model"
OUTCOMES = {
    "bone_metastasis_probability": (
        "94222008",
        "Secondary malignant neoplasm of bone",
        "Bone metastasis (first), death before it competing",
    ),
    "death_probability": ("419620001", "Death", "Death before any bone metastasis, any cause"),
}


class RiskAssessmentError(ValueError):
    """The resource built does not validate against the R4 model (a bug, never user input)."""


def _prediction(kind: str, entry: dict[str, Any], level: float | None) -> dict[str, Any]:
    code, display, text = OUTCOMES[kind]
    out: dict[str, Any] = {
        "outcome": {"coding": [{"system": SNOMED, "code": code, "display": display}],
                    "text": text},
        "probabilityDecimal": entry["probability"],
        "whenRange": {"high": {"value": entry["months"], "unit": "months", "system": UCUM,
                               "code": "mo"}},
    }
    if entry.get("low") is not None and entry.get("high") is not None:
        parts = [{"url": "low", "valueDecimal": entry["low"]},
                 {"url": "high", "valueDecimal": entry["high"]}]
        if level is not None:
            parts.append({"url": "level", "valueDecimal": level})
        out["extension"] = [{"url": INTERVAL_EXTENSION, "extension": parts}]
    return out


def risk_assessment(
    prediction: dict[str, Any],
    model: dict[str, Any],
    patient_reference: str,
    basis: Sequence[str],
    when: datetime,
    interval_level: float | None = None,
) -> dict[str, Any]:
    """An R4 RiskAssessment (JSON) of one patient's answer from ``POST /predict``.

    Parameters
    ----------
    prediction : dict
        One entry of the answer's ``predictions`` (with probabilities).
    model : dict
        The answer's ``model`` (name, version, alias, run_id).
    patient_reference : str
        ``Patient/<id>`` of the EHR's FHIR server.
    basis : sequence of str
        References of the resources the record was read from.
    when : datetime
        The prediction time.
    interval_level : float, optional
        The answer's ``interval_level`` (contract 1.2).

    Returns
    -------
    dict
        The resource, validated by ``fhir.resources.R4B``.
    """
    from fhir.resources.R4B.riskassessment import RiskAssessment
    from pydantic import ValidationError

    name, version = model.get("name", ""), model.get("version", "")
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "status": "final",
        "subject": {"reference": patient_reference},
        "occurrenceDateTime": when.isoformat(timespec="seconds"),
        "method": {
            "coding": [{"system": MODEL_SYSTEM, "code": f"{name}:{version}"}],
            "text": f"bonemet {name} version {version} (research use only, not a medical device)",
        },
        "basis": [{"reference": ref} for ref in dict.fromkeys(basis)],
        "prediction": [
            _prediction(kind, entry, interval_level)
            for kind in OUTCOMES
            for entry in prediction.get(kind) or ()
        ],
    }
    if prediction.get("warnings"):
        resource["note"] = [{"text": w} for w in prediction["warnings"]]
    if not resource["basis"]:
        del resource["basis"]
    try:
        model_ = RiskAssessment.model_validate(resource)
    except ValidationError as err:
        raise RiskAssessmentError(f"RiskAssessment does not validate: {err}") from None
    return json.loads(model_.model_dump_json(exclude_none=True))
