"""Request and response models of the prediction API (data contract v1).

The patient record's fields are generated from :mod:`features.schema`, so the API and the file
contract cannot drift apart: same names, kinds, bounds and allowed values, with units in the
field descriptions of the OpenAPI schema.

BentoML publishes the models' JSON schemas in an OpenAPI **3.0** document (``/docs.json``), whose
schema dialect is JSON Schema draft 4 with OpenAPI's extensions, while pydantic writes draft
2020-12. :func:`openapi30_schema` rewrites the two constructs that differ (an exclusive bound as
a number, ``{"type": "null"}`` in an ``anyOf``) into their OpenAPI 3.0 spelling; validation is
unchanged. Without it, ``"exclusiveMinimum": 0`` is an invalid draft-4 schema, which tools that
read the document as OpenAPI 3.0 reject (schemathesis: ``UnsupportedSchema``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from features.schema import (
    DEFAULT_HORIZONS_MONTHS,
    MEASUREMENT_COLUMNS,
    OUTCOME_COLUMNS,
    PATIENT_COLUMNS,
    PATIENT_ID_PATTERN,
    ColumnSpec,
    integer_value,
)

MAX_PATIENTS = 1000
MAX_MEASUREMENTS = 500
MAX_PREDICTION_DAY = 36500  # days: a century, explicit or by default (the latest draw)
DEFAULT_HORIZONS = [float(h) for h in DEFAULT_HORIZONS_MONTHS]


def openapi30_schema(schema: dict[str, Any]) -> None:
    """Rewrite a model's JSON schema (pydantic, draft 2020-12) into OpenAPI 3.0 in place.

    Used as ``json_schema_extra`` of every model here. Two rewrites, each with the same meaning:

    - ``"exclusiveMinimum": x`` (``exclusiveMaximum`` alike) becomes ``"minimum": x,
      "exclusiveMinimum": true``, the draft-4 form OpenAPI 3.0 uses;
    - ``"anyOf": [S, {"type": "null"}]`` (an optional field) becomes ``S`` with
      ``"nullable": true`` (``"type": "null"`` does not exist in OpenAPI 3.0); an ``enum`` also
      lists ``null``, as OpenAPI 3.0.3 requires for a nullable enum; a ``$ref`` is wrapped in
      ``allOf``, since keywords beside a ``$ref`` are ignored.

    Parameters
    ----------
    schema : dict
        The JSON schema of one model; its nested subschemas are rewritten too.
    """
    if isinstance(schema, list):
        for item in schema:
            openapi30_schema(item)
        return
    if not isinstance(schema, dict):
        return  # ``additionalProperties: false``
    options = schema.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        (other,) = [o for o in options if o != {"type": "null"}]
        del schema["anyOf"]
        if "$ref" in other:
            schema["allOf"] = [other]
        else:
            schema.update(other)
            if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
                schema["enum"] = [*schema["enum"], None]
        schema["nullable"] = True
    for side in ("Minimum", "Maximum"):
        bound = schema.get(f"exclusive{side}")
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            schema[side.lower()] = bound
            schema[f"exclusive{side}"] = True
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "$defs", "definitions"):
            for subschema in value.values():
                openapi30_schema(subschema)
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            openapi30_schema(value)


_STRICT = ConfigDict(extra="forbid", strict=True, json_schema_extra=openapi30_schema)
_OPENAPI30 = ConfigDict(json_schema_extra=openapi30_schema)


class _ResponseModel(BaseModel):
    """Base of the response models: their schemas in OpenAPI 3.0 form."""

    model_config = _OPENAPI30


def _field(spec: ColumnSpec) -> tuple[Any, Any]:
    description = spec.description + (f" ({spec.unit})" if spec.unit else "")
    bounds: dict[str, Any] = {}
    if spec.kind in ("number", "integer"):
        if spec.minimum is not None:
            bounds["gt" if spec.exclusive_minimum else "ge"] = spec.minimum
        if spec.upper is not None:
            bounds["le"] = spec.upper
    if spec.kind == "number":
        typ: Any = float
        bounds["allow_inf_nan"] = False
    elif spec.kind == "integer":
        # The contract's integer rule (features.schema.integer_value): 2.0 is the integer 2, as
        # in a file, 2.5 is no integer; published as what is accepted, a number that is a
        # multiple of 1. The bounds are checked on the int, after the conversion.
        typ = Annotated[
            int,
            Field(**bounds),
            BeforeValidator(integer_value),
            Field(json_schema_extra={"type": "number", "multipleOf": 1}),
        ]
        bounds = {}
    elif spec.kind == "boolean":
        typ = bool
    elif spec.kind == "category":
        typ = Literal[spec.allowed]  # type: ignore[valid-type]
    else:
        typ = str
        # Every string column is an identifier (patient_id; since 1.2 site_id, lab_id, ...).
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
            le=MAX_PREDICTION_DAY,
            allow_inf_nan=False,
            description="days since enrollment at which the prediction is made (default: "
            "the day of the latest draw given, or 0)",
        ),
    ),
)


class ProbabilityAt(_ResponseModel):
    """Cumulative incidence of an event by a horizon, the other event competing."""

    months: float = Field(..., description="horizon in months from prediction_day")
    probability: float = Field(..., ge=0, le=1)


class Contribution(_ResponseModel):
    """One input's contribution to the risk score (occlusion against the training reference)."""

    input: str
    value: str = Field(..., description="the patient's value with its unit")
    contribution: float = Field(..., description="change of the risk score due to this input")
    scale: Literal["log hazard", "log odds"]
    text: str


class Prediction(_ResponseModel):
    """One patient's answer."""

    patient_id: str
    risk_score: float | None = Field(
        None, description="higher means bone metastasis is expected sooner"
    )
    risk_group: Literal["low", "intermediate", "high"] | None = None
    bone_metastasis_probability: list[ProbabilityAt] = Field(default_factory=list)
    death_probability: list[ProbabilityAt] = Field(
        default_factory=list,
        description="cumulative incidence of death without bone metastasis by each horizon "
        "(the competing event; contract 1.1); bone metastasis plus death is at most 1",
    )
    warnings: list[str] = Field(default_factory=list)


class ExplainedPrediction(Prediction):
    """One patient's answer with the largest contributions to the risk score."""

    explanation: list[Contribution] = Field(default_factory=list)


class ModelInfo(_ResponseModel):
    """The registered version that produced the answer."""

    name: str
    version: str
    alias: str | None = None
    run_id: str
    alias_target: str | None = Field(
        None,
        description="set when the alias now names another version that could not be loaded: "
        "that version; the answer still comes from `version`",
    )
    alias_error: str | None = Field(
        None, description="why `alias_target` could not be loaded (set with it)"
    )


class PredictionResponse(_ResponseModel):
    """Body of a successful ``POST /predict``."""

    model: ModelInfo
    predictions: list[Prediction]

    model_config = ConfigDict(protected_namespaces=())


class ExplanationResponse(_ResponseModel):
    """Body of a successful ``POST /explain``."""

    model: ModelInfo
    predictions: list[ExplainedPrediction]

    model_config = ConfigDict(protected_namespaces=())


class ModelDetails(ModelInfo):
    """Body of ``GET /model``: the version answering, and what it was trained on and with."""

    family: str = Field(..., description="model family")
    training_data_digest: str | None = Field(None, description="digest of the training cohort")
    headline_metrics: dict[str, float] = Field(
        default_factory=dict, description="held-out and cross-validated metrics of the run"
    )
    features: list[str] = Field(default_factory=list, description="model features")
    inputs: list[str] = Field(default_factory=list, description="contract fields the model reads")
    horizons_months: list[float] = Field(default_factory=list)
    risk_cutoffs: list[float] = Field(default_factory=list)
    max_follow_up_months: float | None = None
    landmark_days: list[float] = Field(
        default_factory=list,
        description="empty: predicts from enrollment; else a landmark model using the draws "
        "known by prediction_day",
    )
    contract_version: int | str = Field(
        ..., description='data contract version of requests and answers ("1.1")'
    )
    competing_risk: str | None = Field(
        None,
        description="how death without bone metastasis is handled, in words: a competing "
        "event, or a death hazard taken as zero (incidence 1 - S(t))",
    )
    trained_at: str | None = Field(
        None, description="when the MLflow model was logged (UTC, end of its training run)"
    )
    model_card_url: str | None = Field(
        None, description="path of the served version's model card (GET /model/card)"
    )
