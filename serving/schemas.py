"""Request and response models of the prediction API (data contract v1).

The patient record's fields are generated from :mod:`features.schema`, so the API and the file
contract cannot drift apart: same names, kinds, bounds and allowed values, with units in the
field descriptions of the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from features.schema import (
    MEASUREMENT_COLUMNS,
    OUTCOME_COLUMNS,
    PATIENT_COLUMNS,
    PATIENT_ID_PATTERN,
    ColumnSpec,
)

MAX_PATIENTS = 1000
MAX_MEASUREMENTS = 500
DEFAULT_HORIZONS = [12.0, 24.0, 36.0, 60.0]

_STRICT = ConfigDict(extra="forbid", strict=True)


def _field(spec: ColumnSpec) -> tuple[Any, Any]:
    description = spec.description + (f" ({spec.unit})" if spec.unit else "")
    bounds: dict[str, Any] = {}
    if spec.kind in ("number", "integer"):
        if spec.minimum is not None:
            bounds["gt" if spec.exclusive_minimum else "ge"] = spec.minimum
        if spec.maximum is not None:
            bounds["le"] = spec.maximum
    if spec.kind == "number":
        typ: Any = float
        bounds["allow_inf_nan"] = False
    elif spec.kind == "integer":
        typ = int
    elif spec.kind == "boolean":
        typ = bool
    elif spec.kind == "category":
        typ = Literal[spec.allowed]  # type: ignore[valid-type]
    else:
        typ = str
        if spec.name == "patient_id":
            bounds["pattern"] = PATIENT_ID_PATTERN
    if spec.required:
        return typ, Field(..., description=description, **bounds)
    return typ | None, Field(None, description=description, **bounds)


MeasurementRecord = create_model(
    "MeasurementRecord",
    __config__=_STRICT,
    __doc__="One blood draw (an oc_measurements row without patient_id).",
    **{c.name: _field(c) for c in MEASUREMENT_COLUMNS if c.name != "patient_id"},
)

PatientRecord = create_model(
    "PatientRecord",
    __config__=_STRICT,
    __doc__="A patients row without outcome, plus optional draws and prediction day.",
    **{c.name: _field(c) for c in PATIENT_COLUMNS if c.name not in OUTCOME_COLUMNS},
    oc_measurements=(
        list[MeasurementRecord] | None,  # type: ignore[valid-type]
        Field(None, max_length=MAX_MEASUREMENTS, description="repeated blood draws"),
    ),
    prediction_day=(
        float | None,
        Field(
            None,
            ge=0,
            le=36500,
            allow_inf_nan=False,
            description="days since enrollment at which the prediction is made (default: "
            "the day of the latest draw given, or 0)",
        ),
    ),
)


class ProbabilityAt(BaseModel):
    """Cumulative incidence of bone metastasis by a horizon, death competing."""

    months: float = Field(..., description="horizon in months from prediction_day")
    probability: float = Field(..., ge=0, le=1)


class Contribution(BaseModel):
    """One input's contribution to the risk score (occlusion against the training reference)."""

    input: str
    value: str = Field(..., description="the patient's value with its unit")
    contribution: float = Field(..., description="change of the risk score due to this input")
    scale: Literal["log hazard", "log odds"]
    text: str


class Prediction(BaseModel):
    """One patient's answer."""

    patient_id: str
    risk_score: float | None = Field(
        None, description="higher means bone metastasis is expected sooner"
    )
    risk_group: Literal["low", "intermediate", "high"] | None = None
    bone_metastasis_probability: list[ProbabilityAt] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class ExplainedPrediction(Prediction):
    """One patient's answer with the largest contributions to the risk score."""

    explanation: list[Contribution] = Field(default_factory=list)


class ModelInfo(BaseModel):
    """The registered version that produced the answer."""

    name: str
    version: str
    alias: str | None = None
    run_id: str


class PredictionResponse(BaseModel):
    """Body of a successful ``POST /predict``."""

    model: ModelInfo
    predictions: list[Prediction]

    model_config = ConfigDict(protected_namespaces=())


class ExplanationResponse(BaseModel):
    """Body of a successful ``POST /explain``."""

    model: ModelInfo
    predictions: list[ExplainedPrediction]

    model_config = ConfigDict(protected_namespaces=())
