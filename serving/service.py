"""BentoML service answering ``POST /predict`` with the registry's model (data contract v1).

Start it with ``bonemet serve`` (which imports the registered version into the BentoML store
and sets ``BONEMET_BENTO_MODEL``), or directly with
``bentoml serve serving.service:BoneMetastasisService`` once a model is in the store.

Every request is checked in two layers: pydantic (types, bounds, allowed values, unknown fields,
1-1,000 patients) and the data contract's cross-field rules (:mod:`features.contract`). Both
answer HTTP 400 with every violation as ``{"error": ..., "detail": [{"loc": [...], "msg": ...}]}``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any

import bentoml
from pydantic import ConfigDict, Field

from serving.gateway import GatewayMiddleware
from serving.schemas import (
    DEFAULT_HORIZONS,
    MAX_PATIENTS,
    ExplainedPrediction,
    ExplanationResponse,
    ModelInfo,
    PatientRecord,
    Prediction,
    PredictionResponse,
    ProbabilityAt,
)

with bentoml.importing():
    import pandas as pd
    from _bentoml_sdk.io_models import IODescriptor
    from starlette.responses import JSONResponse

    from features.contract import check_measurements, check_patients
    from features.draws import MARKER_FIELDS

logger = logging.getLogger("bonemet.service")
MODEL_TAG = os.environ.get("BONEMET_BENTO_MODEL", "bone-metastasis-risk:latest")
MEASUREMENT_VALUE_FIELDS = MARKER_FIELDS + ("alkaline_phosphatase_u_per_l",)


class PredictRequest(IODescriptor):
    """Body of ``POST /predict``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    patients: list[PatientRecord] = Field(  # type: ignore[valid-type]
        ...,
        min_length=1,
        max_length=MAX_PATIENTS,
        description=f"1-{MAX_PATIENTS} patient records",
    )
    horizons_months: list[Annotated[float, Field(ge=1, le=120, allow_inf_nan=False)]] = Field(
        default_factory=lambda: list(DEFAULT_HORIZONS),
        min_length=1,
        max_length=20,
        description="horizons in months from prediction_day, each 1-120",
    )


def _bad_request(detail: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(
        {"error": f"{len(detail)} violation(s) of data contract v1", "detail": detail},
        status_code=400,
    )


def _apply_draws(typed: pd.DataFrame, patients: list[Any]) -> list[list[str]]:
    """Use the latest draw on or before ``prediction_day`` for each patient's marker.

    ``typed`` is the validated patients frame (numbers as float); it is updated in place. The
    served models predict from enrollment; a later draw is used as the current marker value,
    with a warning saying so.
    """
    notes: list[list[str]] = [[] for _ in patients]
    for i, p in enumerate(patients):
        draws = p.oc_measurements or []
        day = p.prediction_day
        if day is None:
            day = max((d.day for d in draws), default=0.0)
        usable = sorted((d for d in draws if d.day <= day), key=lambda d: d.day)
        ignored = len(draws) - len(usable)
        if ignored:
            notes[i].append(f"{ignored} draw(s) after prediction_day {day:g} ignored")
        with_marker = [
            d
            for d in usable
            if d.oc_positive_percent is not None
            or (d.oc_positive_events is not None and d.pbmc_events is not None)
        ]
        if with_marker:
            latest = with_marker[-1]
            values = {f: getattr(latest, f) for f in MARKER_FIELDS}
            if values["oc_positive_percent"] is None:
                # Derived from the counts, as the contract derives it for a file row.
                values["oc_positive_percent"] = (
                    100.0 * values["oc_positive_events"] / values["pbmc_events"]
                )
            for field, value in values.items():
                typed.at[i, field] = float("nan") if value is None else float(value)
            if latest.alkaline_phosphatase_u_per_l is not None:
                typed.at[i, "alkaline_phosphatase_u_per_l"] = float(
                    latest.alkaline_phosphatase_u_per_l
                )
            if latest.day > 0:
                notes[i].append(
                    f"marker from the draw of day {latest.day:g} used as the current value"
                )
        if day > 0:
            notes[i].append(
                f"prediction_day {day:g}: this model was trained at enrollment; horizons are "
                "counted from enrollment-style risk with the latest marker value"
            )
    return notes


def _measurement_violations(patients: list[Any]) -> list[dict[str, Any]]:
    rows, where = [], []
    for i, p in enumerate(patients):
        for j, d in enumerate(p.oc_measurements or []):
            rows.append({"patient_id": p.patient_id, **d.model_dump()})
            where.append((i, j))
    if not rows:
        return []
    _, violations = check_measurements(
        pd.DataFrame(rows), {p.patient_id for p in patients}, table="request"
    )
    out = []
    for v in violations:
        i, j = where[v.row - 1] if v.row else (None, None)
        loc = ["patients", i, "oc_measurements", j] + ([v.column] if v.column else [])
        out.append({"loc": loc, "msg": v.rule})
    return out


@dataclass(frozen=True)
class ModelState:
    """The model answering now, with what ``GET /model`` and every prediction report.

    Swapped as one reference when the registry alias moves: a request that already holds a
    state finishes with it, the next one gets the new state.
    """

    model: Any
    info: ModelInfo
    details: dict[str, Any]

    @property
    def risk_model(self) -> Any:
        """The fitted RiskModel inside the MLflow pyfunc."""
        return self.model.unwrap_python_model().risk_model


def _details(model: Any, info: ModelInfo, tags: dict[str, str]) -> dict[str, Any]:
    from features.schema import CONTRACT_VERSION

    risk_model = model.unwrap_python_model().risk_model
    metrics = {
        k: float(v)
        for k, v in tags.items()
        if k.startswith(("test_", "cv_", "delta_")) and _is_float(v)
    }
    return {
        **info.model_dump(),
        "family": risk_model.family,
        "training_data_digest": tags.get("dataset_digest"),
        "headline_metrics": metrics,
        "features": [str(f) for f in risk_model.pipeline[0].get_feature_names_out()],
        "inputs": list(risk_model.inputs),
        "horizons_months": list(risk_model.horizons_months),
        "risk_cutoffs": list(risk_model.risk_cutoffs),
        "max_follow_up_months": risk_model.max_follow_up_months,
        "contract_version": CONTRACT_VERSION,
    }


def _is_float(value: str) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _model_app():
    """Routes mounted beside the BentoML APIs: ``GET /model``."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    async def model_endpoint(request):
        service = bentoml.get_current_service()
        return JSONResponse(service.state.details)

    return Starlette(routes=[Route("/model", model_endpoint, methods=["GET"])])


@bentoml.service(name="bonemet", traffic={"timeout": 60})
class BoneMetastasisService:
    """Bone metastasis risk from contract patient records."""

    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        meta = self.model_ref.info.metadata
        info = ModelInfo(
            name=str(meta.get("name", "bone-metastasis-risk")),
            version=str(meta.get("version", "")),
            alias=str(meta.get("alias")) or None,
            run_id=str(meta.get("run_id", "")),
        )
        model = bentoml.mlflow.load_model(self.model_ref)
        tags = json.loads(meta.get("tags") or "{}")
        self.state = ModelState(model, info, _details(model, info, tags))
        self._follow = None
        alias = os.environ.get("BONEMET_FOLLOW_ALIAS") or info.alias
        if alias and os.environ.get("MLFLOW_TRACKING_URI"):
            self._follow = threading.Thread(
                target=self._follow_alias,
                args=(info.name, alias),
                daemon=True,
                name="bonemet-alias-follower",
            )
            self._follow.start()

    def _follow_alias(self, name: str, alias: str) -> None:
        """Poll the registry; load and swap in the version the alias points to when it moves."""
        import mlflow
        from mlflow.exceptions import MlflowException

        interval = float(os.environ.get("BONEMET_RELOAD_SECONDS", "10"))
        client = mlflow.MlflowClient()
        while True:
            time.sleep(interval)
            try:
                mv = client.get_model_version_by_alias(name, alias)
                if str(mv.version) == self.state.info.version:
                    continue
                model = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}")
                info = ModelInfo(
                    name=name, version=str(mv.version), alias=alias, run_id=mv.run_id or ""
                )
                state = ModelState(model, info, _details(model, info, dict(mv.tags or {})))
            except (MlflowException, OSError) as err:
                logger.warning(
                    "alias follower: keeping version %s (%s)",
                    self.state.info.version,
                    type(err).__name__,
                )
                continue
            self.state = state
            logger.info("now serving %s version %s (%s)", name, info.version, alias)

    @bentoml.api(route="/predict", input_spec=PredictRequest)
    def predict(
        self, patients: list, horizons_months: list, ctx: bentoml.Context
    ) -> PredictionResponse:
        """Cumulative incidence of bone metastasis by each horizon, per patient."""
        return self._answer(patients, horizons_months, ctx, explain=False)

    @bentoml.api(route="/explain", input_spec=PredictRequest)
    def explain(
        self, patients: list, horizons_months: list, ctx: bentoml.Context
    ) -> ExplanationResponse:
        """As ``/predict``, plus each patient's largest contributions to the risk score."""
        return self._answer(patients, horizons_months, ctx, explain=True)

    def _answer(self, patients: list, horizons_months: list, ctx: bentoml.Context, explain: bool):
        state = self.state  # one model for the whole request, even if the alias moves now
        ctx.response.headers["X-Model-Version"] = state.info.version
        ctx.response.headers["X-Patients"] = str(len(patients))
        bad: list[dict[str, Any]] = []
        ids = [p.patient_id for p in patients]
        seen: set[str] = set()
        for i, pid in enumerate(ids):
            if pid in seen:
                bad.append({"loc": ["patients", i, "patient_id"], "msg": "duplicate patient_id"})
            seen.add(pid)
        bad += _measurement_violations(patients)
        records = [p.model_dump(exclude={"oc_measurements", "prediction_day"}) for p in patients]
        typed, violations = check_patients(
            pd.DataFrame.from_records(records), table="request", allow_outcome=False
        )
        for v in violations:
            if v.rule.startswith("must be unique"):
                continue  # reported above with its path
            loc = ["patients", (v.row - 1) if v.row else None] + ([v.column] if v.column else [])
            bad.append({"loc": loc, "msg": v.rule})
        if bad:
            ctx.response.status_code = 400  # BentoML applies the context's status to responses
            response = _bad_request(bad)
            response.headers["X-Model-Version"] = state.info.version
            response.headers["X-Patients"] = str(len(patients))
            return response
        notes = _apply_draws(typed, patients)
        # The rows are validated: call the logged model's RiskModel directly (the same object
        # the pyfunc wraps) instead of paying MLflow's schema enforcement and a second
        # contract check per request.
        frame = state.risk_model.predict_frame(typed, horizons_months, explain=explain)
        columns = [c for c in frame.columns if c.startswith("p_bone_met_")]
        predictions = []
        for k, row in enumerate(frame.itertuples(index=False)):
            r = row._asdict()
            has_probs = r["risk_score"] == r["risk_score"]  # NaN for bone mets at enrollment
            answer = dict(
                patient_id=r["patient_id"],
                risk_score=float(r["risk_score"]) if has_probs else None,
                risk_group=r["risk_group"] if has_probs else None,
                bone_metastasis_probability=[
                    ProbabilityAt(months=h, probability=float(r[c]))
                    for h, c in zip(horizons_months, columns, strict=True)
                ]
                if has_probs
                else [],
                warnings=notes[k] + json.loads(r["warnings"]),
            )
            if explain:
                predictions.append(
                    ExplainedPrediction(**answer, explanation=json.loads(r["explanation"]))
                )
            else:
                predictions.append(Prediction(**answer))
        if explain:
            return ExplanationResponse(model=state.info, predictions=predictions)
        return PredictionResponse(model=state.info, predictions=predictions)


BoneMetastasisService.mount_asgi_app(_model_app(), path="/")
BoneMetastasisService.add_asgi_middleware(GatewayMiddleware)
