"""BentoML service answering ``POST /predict`` with the registry's model (data contract v1).

Start it with ``bonemet serve`` (which imports the registered version into the BentoML store
and sets ``BONEMET_BENTO_MODEL``), or directly with
``bentoml serve serving.service:BoneMetastasisService`` once a model is in the store.

Every request is checked in two layers: pydantic (types, bounds, allowed values, unknown fields,
1-1,000 patients) and the data contract's own validator (:mod:`features.contract`, the rules
across fields). Both answer HTTP 400 with every violation as ``{"error": ..., "detail":
[{"loc": [...], "msg": ...}]}``; when pydantic rejects a body, the contract's rules are run on
its raw records too and added, so every violation comes in one answer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import bentoml
from bentoml.exceptions import BentoMLException
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from features.schema import CONTRACT_VERSION
from features.vocabulary import MAX_HORIZON_MONTHS, MIN_HORIZON_MONTHS, MODEL_NAME
from serving.gateway import GatewayMiddleware
from serving.openapi import EXAMPLE_REQUEST, api_routes
from serving.schemas import (
    DEFAULT_HORIZONS,
    MAX_PATIENTS,
    MAX_PREDICTION_DAY,
    ExplainedPrediction,
    ExplanationResponse,
    ModelInfo,
    PatientRecord,
    Prediction,
    PredictionResponse,
)
from serving.settings import ServingSettings

with bentoml.importing():
    import numpy as np
    from _bentoml_sdk.io_models import IODescriptor
    from starlette.responses import JSONResponse
    from threadpoolctl import threadpool_limits

    from features.contract import check_measurement_records
    from features.draws import DRAW_FIELDS, MARKER_FIELDS, draws_at
    from features.landmark import TRAJECTORY_FEATURES
    from training.artifact.inputs import check_prediction_rows, refusals, rule_at
    from training.artifact.intervals import INTERVAL_LEVEL
    from training.artifact.served import ServedModel
    from training.artifact.smoke import smoke_check
    from training.artifact.treatment import applicable, benefit

logger = logging.getLogger("bonemet.service")
# One BLAS thread per API worker: a request's matrices are small (a 1,000-patient batch's
# interval terms are 1,000 x p by p x p), a second BLAS thread only competes with the event loop
# and the other worker for the two cores, and OpenBLAS's idle threads spin after each call.
threadpool_limits(limits=1, user_api="blas")
#: The environment, read once when BentoML imports this module to start the service: the model
#: reference (``bentoml.models.BentoModel``, so the model travels with a built Bento) and the
#: CORS policy are part of the class definition below, evaluated at import. The service and the
#: gateway take their settings from this object; nothing else reads the environment.
SETTINGS = ServingSettings.from_env()
_NOT_COLUMNS = ("oc_measurements", "prediction_day")  # request fields beside the contract row
INLINE_PATIENTS = 20  # requests up to this size are answered on the event loop (see predict)
#: A version that failed to load is tried again after this long (a damaged artifact stays
#: damaged; a transient download failure does not).
RETRY_FAILED_SECONDS = 60.0
#: Paths BentoML's tracing middleware skips (a regular expression): all of them.
UNTRACED = ".*"
RULE_DEFAULT_PREDICTION_DAY = (
    f"must be 0-{MAX_PREDICTION_DAY}: not given, it defaults to the latest draw's day "
    "({day:g}), which is out of that range"
)


class PredictRequest(IODescriptor):
    """Body of ``POST /predict``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    patients: list[PatientRecord] = Field(  # type: ignore[valid-type]
        ...,
        min_length=1,
        max_length=MAX_PATIENTS,
        description=f"1-{MAX_PATIENTS} patient records",
    )
    horizons_months: list[
        Annotated[float, Field(ge=MIN_HORIZON_MONTHS, le=MAX_HORIZON_MONTHS, allow_inf_nan=False)]
    ] = Field(
        default_factory=lambda: list(DEFAULT_HORIZONS),
        min_length=1,
        max_length=20,
        description=(
            f"horizons in months from prediction_day, each {MIN_HORIZON_MONTHS}-"
            f"{MAX_HORIZON_MONTHS}"
        ),
    )

    @model_validator(mode="wrap")
    @classmethod
    def _every_violation(cls, data: Any, handler: Any) -> Any:
        try:
            return handler(data)
        except ValidationError as err:
            raise _with_contract_violations(err, data) from None


def _bad_request(detail: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(
        {
            "error": f"{len(detail)} violation(s) of data contract v{CONTRACT_VERSION}",
            "detail": detail,
        },
        status_code=400,
    )


def _check_request(
    patients: Sequence[Any], validated: bool = False
) -> tuple[dict[str, Any], dict[str, Any], list[int], list[dict[str, Any]]]:
    """The data contract's own rules on a request's patient records (no pandas).

    Parameters
    ----------
    patients : sequence of mapping
        Patient records as JSON gives them (``oc_measurements`` a list of draw records,
        ``prediction_day``); a record that is not a mapping is skipped (pydantic reports it).
    validated : bool, default False
        True when pydantic accepted the records (every field passed its own rules, generated
        from the same specs): only the contract's rules across fields run.

    Returns
    -------
    typed, draws : dict of numpy.ndarray
        Validated patients and draws columns (:func:`features.contract.check_patient_records`).
    owner : list of int
        The patient of each draw row.
    violations : list of dict
        ``{"loc": [...], "msg": ...}`` per violation, locations in the request.
    """
    records, draw_rows, owner, where = [], [], [], []
    for i, p in enumerate(patients):
        p = p if isinstance(p, Mapping) else {}
        records.append({k: v for k, v in p.items() if k not in _NOT_COLUMNS})
        draws = p.get("oc_measurements")
        for j, d in enumerate(draws if isinstance(draws, list) else ()):
            if isinstance(d, Mapping):
                draw_rows.append({**d, "patient_id": p.get("patient_id")})
                owner.append(i)
                where.append((i, j))
    # The pyfunc's check too (training.artifact.inputs): the same rules, the same words.
    typed, found = check_prediction_rows(records, validated=validated)
    bad = refusals(found)
    draws: dict[str, Any] = {}
    if draw_rows:
        ids = {r.get("patient_id") for r in records}
        draws, found = check_measurement_records(
            draw_rows, ids, table="request", validated=validated
        )
        for v in found:
            i, j = where[v.row - 1] if v.row else (None, None)
            loc = ["patients", i, "oc_measurements", j] + ([v.column] if v.column else [])
            bad.append({"loc": loc, "msg": rule_at(v.rule)})
        bad += _default_day_violations(patients, draws["day"], owner)
    return typed, draws, owner, bad


def _default_day_violations(
    patients: Sequence[Any], days: Any, owner: list[int]
) -> list[dict[str, Any]]:
    """A ``prediction_day`` left to its default (the latest draw) is bounded as a given one."""
    latest: dict[int, float] = {}
    for day, i in zip(days.tolist(), owner, strict=True):
        if not math.isnan(day):
            latest[i] = max(latest.get(i, day), day)
    return [
        {
            "loc": ["patients", i, "prediction_day"],
            "msg": RULE_DEFAULT_PREDICTION_DAY.format(day=day),
        }
        for i, day in sorted(latest.items())
        if day > MAX_PREDICTION_DAY and patients[i].get("prediction_day") is None
    ]


def _with_contract_violations(err: ValidationError, data: Any) -> ValidationError:
    """Field errors plus the contract's rules across fields, in one answer.

    Called when pydantic rejects a body: the contract's checks run on the raw records too, and
    each violation at a location pydantic did not already reject is added, so a client learns
    every violation in one round.
    """
    patients = data.get("patients") if isinstance(data, Mapping) else None
    if not isinstance(patients, list) or not patients or len(patients) > MAX_PATIENTS:
        return err
    lines = [
        {"type": e["type"], "loc": e["loc"], "input": e["input"]}
        | ({"ctx": e["ctx"]} if "ctx" in e else {})
        for e in err.errors(include_url=False)
    ]
    rejected = [tuple(e["loc"]) for e in lines]
    _, _, _, bad = _check_request(patients)
    for v in bad:
        loc = tuple(v["loc"])
        if None in loc or any(loc[: len(r)] == r for r in rejected):
            continue  # a table-level rule, or a value pydantic already rejected
        rule = PydanticCustomError("contract_rule", "{rule}", {"rule": v["msg"]})
        lines.append({"type": rule, "loc": loc, "input": None})
    if len(lines) == len(rejected):
        return err
    return ValidationError.from_exception_data(err.title, lines)


def _apply_draws(
    typed: dict[str, Any],
    draws: dict[str, Any],
    owner: list[int],
    patients: list[Any],
    risk_model: ServedModel,
    memo: bool = True,
) -> list[list[str]]:
    """Bring each patient's rows to ``prediction_day`` with the draws known by then.

    ``typed`` holds the validated patients columns and ``draws`` the validated draws (column
    arrays from :func:`features.contract.check_patient_records` /
    :func:`~features.contract.check_measurement_records`, percent derived from the counts
    where missing); ``typed`` is updated in place. ``prediction_day`` defaults to the latest
    draw, or 0; what is used at that day is the rule of batch scoring
    (:func:`features.draws.draws_at`): the marker columns take the latest usable draw, a
    landmark model (``risk_model.landmark_days``) also gets ``landmark_day`` and the trajectory
    columns, a model trained at enrollment answers with the latest marker and says so, a
    clinical-only model ignores the draws and says so.

    A patient without draws gets what :func:`~features.draws.draws_at` answers for no draws at
    that day, which for a model without the trajectory depends on nothing else: with ``memo``
    (the default) it is computed once per day and reused (``memo=False``, the reference path,
    calls it for every patient; the answers are the same).

    Returns the per-patient notes (warnings).
    """
    notes: list[list[str]] = []
    no_draws: dict[float, Any] = {}  # day -> draws_at(no draws), models without trajectory
    landmark = bool(risk_model.landmark_days)
    uses_marker = bool(risk_model.include_marker)
    if landmark:
        n = len(patients)
        typed["landmark_day"] = np.zeros(n)
        for name in TRAJECTORY_FEATURES:
            typed[name] = np.full(n, np.nan)
    by_patient: dict[int, list[int]] = {}
    for k, i in enumerate(owner):
        by_patient.setdefault(i, []).append(k)
    empty = {f: np.empty(0) for f in DRAW_FIELDS}
    for i, p in enumerate(patients):
        rows = by_patient.get(i)
        day = p.prediction_day
        if rows is None and memo and not landmark:
            day = 0.0 if day is None else day
            used = no_draws.get(day)
            if used is None:
                used = no_draws[day] = draws_at(
                    (math.nan,) * len(MARKER_FIELDS), empty, day, landmark=False,
                    uses_marker=uses_marker,
                )  # fmt: skip
            notes.append(list(used.notes))
            continue  # no trajectory, and no draw to take the marker from (latest is -1)
        mine = {f: draws[f][rows] for f in DRAW_FIELDS} if rows else empty
        if day is None:
            day = float(mine["day"].max()) if rows else 0.0
        enrollment = tuple(float(typed[f][i]) for f in MARKER_FIELDS)
        used = draws_at(enrollment, mine, day, landmark=landmark, uses_marker=uses_marker)
        notes.append(used.notes)
        if landmark:
            typed["landmark_day"][i] = day
            for name, value in zip(TRAJECTORY_FEATURES, used.trajectory, strict=True):
                typed[name][i] = value
        if used.latest >= 0:
            for field in MARKER_FIELDS:
                typed[field][i] = mine[field][used.latest]
    return notes


def _rows(table: Any) -> list[list[float]] | None:
    """An ``(n, horizons)`` table as Python rows (the same floats), or None."""
    return None if table is None else table.tolist()


def _probabilities(
    horizons: list, table: Any, k: int, low: Any = None, high: Any = None
) -> list[dict[str, Any]]:
    """Row ``k`` of an ``(n, horizons)`` probability table with its interval bounds (``low``,
    ``high``: tables alike, None when the version has no interval data); empty where there is
    none (no table, or NaN: bone metastasis at enrollment). The tables are numpy arrays or
    their rows as lists (:func:`_rows`: no numpy scalar per value, the same floats)."""
    if table is None:
        return []
    row = table[k]
    if any(v != v for v in row):  # NaN
        return []
    bounded = low is not None and high is not None
    lo, hi = (low[k], high[k]) if bounded else ((None,) * len(horizons),) * 2
    # Plain dicts, validated as ProbabilityAt (its bounds included) by the answer's model in
    # one pass, rather than one model construction per value.
    return [
        {
            "months": h,
            "probability": float(row[j]),
            "low": None if lo[j] is None else float(lo[j]),
            "high": None if hi[j] is None else float(hi[j]),
        }
        for j, h in enumerate(horizons)
    ]


def _treatment_benefits(
    typed: dict[str, Any], batch: Any, horizons: list
) -> list[tuple[list[dict[str, Any]], str | None]]:
    """Each patient's trial-based treatment benefit (:mod:`training.artifact.treatment`) and,
    when none applies, why. The patients an effect applies to are computed together (one
    :func:`~training.artifact.treatment.benefit` call per effect, not per patient)."""
    fields = (
        "disease_setting",
        "menopausal_status",
        "bone_targeted_therapy",
        "bone_metastasis_at_enrollment",
    )
    n = len(batch.patient_id)
    found: list[tuple[list[Any], list[Any], str | None]] = []  # effects, benefits, reason
    rows: dict[Any, list[int]] = {}  # effect -> patients it applies to
    unknown = np.isnan(batch.probability).any(axis=1).tolist()
    for k in range(n):
        effects, reason = applicable({name: typed[name][k] for name in fields})
        if effects and unknown[k]:
            effects = []
        found.append((effects, [None] * len(effects), reason))
        for effect in effects:
            rows.setdefault(effect, []).append(k)

    def part(table: Any, at: list[int]) -> Any:
        return None if table is None else table[at]

    for effect, at in rows.items():
        treated = benefit(
            effect,
            batch.probability[at],
            part(batch.low, at),
            part(batch.high, at),
            part(batch.death_probability, at),
            horizons,
        )
        tables = [_rows(treated[name]) for name in ("probability", "low", "high")]
        for j, k in enumerate(at):
            effects, slots, _ = found[k]
            slots[effects.index(effect)] = dict(  # validated as TreatmentBenefit
                treatment=effect.treatment,
                relative_risk=effect.relative_risk,
                relative_risk_low=effect.relative_risk_low,
                relative_risk_high=effect.relative_risk_high,
                source=effect.source,
                bone_metastasis_probability=_probabilities(horizons, tables[0], j, *tables[1:]),
            )
    return [(benefits, None if benefits else reason) for _, benefits, reason in found]


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
    def risk_model(self) -> ServedModel:
        """The fitted RiskModel inside the MLflow pyfunc; serving reads only its
        :class:`~training.artifact.served.ServedModel` members."""
        return self.model.unwrap_python_model().risk_model

    def diverged(
        self, target: str | None, error: str | None, alias: Any = dataclasses.MISSING
    ) -> ModelState:
        """This state, reporting that the alias names ``target``, which failed with ``error``.

        ``None`` for both: the alias names the version served again. ``alias``, when given,
        replaces the alias the version is served as (None: it is no longer the alias's).
        """
        facts: dict[str, Any] = {"alias_target": target, "alias_error": error}
        if alias is not dataclasses.MISSING:
            facts["alias"] = alias
        return dataclasses.replace(
            self, info=self.info.model_copy(update=facts), details={**self.details, **facts}
        )


def _details(model: Any, info: ModelInfo, tags: dict[str, str]) -> dict[str, Any]:
    from features.schema import CONTRACT_REVISION

    risk_model: ServedModel = model.unwrap_python_model().risk_model
    metrics, digest = version_record(tags)
    return {
        **info.model_dump(),
        "family": risk_model.family,
        "training_data_digest": digest,
        "headline_metrics": metrics,
        "features": [str(f) for f in risk_model.pipeline[0].get_feature_names_out()],
        "inputs": list(risk_model.inputs),
        "horizons_months": list(risk_model.horizons_months),
        "risk_cutoffs": list(risk_model.risk_cutoffs),
        "max_follow_up_months": risk_model.max_follow_up_months,
        # Empty: predicts from enrollment; else a landmark model using the draws known by
        # prediction_day (days after the last landmark are predicted as at the last).
        "landmark_days": list(risk_model.landmark_days),
        "contract_version": CONTRACT_REVISION,
        # When the MLflow model was logged: the end of its training run (UTC).
        "trained_at": getattr(model.metadata, "utc_time_created", None),
        "model_card_url": "/model/card",
        "competing_risk": risk_model.competing_risk,
        "performance": _performance(getattr(risk_model, "performance", None)),
        "development": getattr(risk_model, "development", None),
    }


#: The held-out metrics the page shows, with their intervals (names of
#: ``training.evaluation.names.HEADLINE``).
PAGE_METRICS = ("uno_c", "td_auc_24m", "calibration_slope_24m", "calibration_in_the_large_24m")


def _performance(metrics: dict[str, float] | None) -> dict[str, dict[str, float]]:
    """``{metric: {"estimate", "low", "high"}}`` of :data:`PAGE_METRICS` recorded with the
    version (empty when it recorded none)."""
    out = {}
    for name in PAGE_METRICS:
        if metrics and name in metrics:
            out[name] = {
                "estimate": metrics[name],
                "low": metrics.get(f"{name}_lo"),
                "high": metrics.get(f"{name}_hi"),
            }
    return out


def version_record(tags: dict[str, str]) -> tuple[dict[str, float], str | None]:
    """The headline metrics and the training data's digest recorded on a registered version.

    From its ``facts`` tag (one JSON object, bonemet 0.2 on), else from a tag per fact (the
    versions of earlier releases); written by ``training.registry.versions.version_tags``.
    """
    try:
        facts = json.loads(tags["facts"]) if "facts" in tags else None
    except ValueError:
        facts = None
    facts = facts if isinstance(facts, dict) else {}
    recorded = facts.get("metrics") if isinstance(facts.get("metrics"), dict) else tags
    if "facts" in tags and not isinstance(facts.get("metrics"), dict):
        recorded = {}
    metrics = {
        k: float(v)
        for k, v in recorded.items()
        if k.startswith(("test_", "cv_", "delta_")) and _is_float(v) and math.isfinite(float(v))
    }
    return metrics, facts.get("dataset_digest", tags.get("dataset_digest"))


def _is_float(value: str) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _model_app():
    """Routes mounted beside the BentoML APIs: ``GET /model``, the clinician's page, the API
    page and document (``GET /``, ``GET /docs.json``: ours, matched before BentoML's)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    async def model_endpoint(request):
        service = bentoml.get_current_service()
        return JSONResponse(service.state.details)

    from serving.cds.hooks import CdsConfig, cds_routes
    from serving.clinician import clinician_routes

    routes = [
        Route("/model", model_endpoint, methods=["GET"]),
        *clinician_routes(),
        *api_routes(
            lambda: BoneMetastasisService.openapi_spec.asdict(),
            _examples,
            secured=SETTINGS.api_token is not None,
        ),
    ]
    routes += cds_routes(CdsConfig.from_settings(SETTINGS), predict_records)
    return Starlette(routes=routes)


def predict_records(
    patients: list[dict[str, Any]], horizons_months: list[float]
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """``POST /predict``'s answer for patient records as JSON gives them (the CDS Hooks path).

    The records go through the same request model (parsed from the same JSON), contract rules
    and :func:`_predictions` as a ``/predict`` request, with the model state of the moment.

    Returns
    -------
    answer : dict or None
        The answer's JSON, None when the records break the contract.
    violations : list of dict
        ``{"loc": [...], "msg": ...}`` per violation (empty with an answer).
    """
    body = json.dumps({"patients": patients, "horizons_months": horizons_months})
    try:
        request = PredictRequest.model_validate_json(body)
    except ValidationError as err:
        return None, [{"loc": list(e["loc"]), "msg": e["msg"]} for e in err.errors()]
    state = bentoml.get_current_service().state
    answer = _predictions(state, request.patients, request.horizons_months, False)
    if isinstance(answer, JSONResponse):
        return None, json.loads(answer.body)["detail"]
    response = PredictionResponse(
        model=state.info, interval_level=INTERVAL_LEVEL, predictions=answer
    )
    return json.loads(response.model_dump_json()), []


_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {}


def _examples() -> dict[str, Any]:
    """The served model's real answers to the document's example request (once per version)."""
    state = bentoml.get_current_service().state
    key = (state.info.version, state.info.run_id)
    if key not in _EXAMPLES:
        patients = [
            PatientRecord.model_validate_json(json.dumps(p)) for p in EXAMPLE_REQUEST["patients"]
        ]
        horizons = list(EXAMPLE_REQUEST["horizons_months"])
        answers = {}
        for route, explain, kind in (
            ("/predict", False, PredictionResponse),
            ("/explain", True, ExplanationResponse),
        ):
            found = _predictions(state, patients, horizons, explain)
            if isinstance(found, list):
                answers[route] = kind(model=state.info, predictions=found).model_dump(mode="json")
        answers["/model"] = state.details
        _EXAMPLES.clear()
        _EXAMPLES[key] = answers
    return _EXAMPLES[key]


def _cors_policy(origins: Sequence[str]) -> dict[str, Any]:
    """BentoML's CORS settings: none unless ``BONEMET_CORS_ORIGINS`` lists allowed origins.

    The API is for servers and the clinician page, which is same-origin; a browser on another
    origin may call it only when an operator names that origin (comma-separated list), and then
    only ``GET``/``POST`` with ``Authorization`` and ``Content-Type`` headers, no cookies.
    """
    if not origins:
        return {"enabled": False}
    return {
        "enabled": True,
        "access_control_allow_origins": list(origins),
        "access_control_allow_methods": ["GET", "POST"],
        "access_control_allow_headers": ["Authorization", "Content-Type"],
        "access_control_allow_credentials": False,
        "access_control_expose_headers": ["X-Model-Version", "X-Request-ID"],
        "access_control_max_age": 600,
    }


def _current_service() -> BoneMetastasisService | None:
    """The running service, or None before it exists (the gateway is built first)."""
    try:
        return bentoml.get_current_service()
    except BentoMLException:
        return None


def _readiness() -> dict[str, Any] | None:
    """The running service's readiness report (None before the service exists)."""
    service = _current_service()
    return None if service is None else service.readiness()


def _failure(err: BaseException) -> str:
    """Why a version failed, for the log: the exception type and the first line of its message
    (server paths included)."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__


def _public_failure(err: BaseException) -> str:
    """Why a version failed, for answers and the public ``/readyz``: the exception type only
    (its message may name server paths); the log has the message."""
    return f"{type(err).__name__} while loading (details in the server log)"


# BentoML's own access log is off: the gateway's audit line records every request (with the
# model version and request id, and nothing of the patient), at less cost per request. The
# workers (``BONEMET_WORKERS``, set by ``bonemet serve --workers``) are processes sharing the
# listening socket, each running ``__init__``: its own model and its own alias follower.
# BentoML's OpenTelemetry middleware is told every path is excluded (:data:`UNTRACED`): no
# tracing exporter is configured, so its spans went nowhere, and building them (five per
# request) cost more than the gateway.
@bentoml.service(
    name="bonemet",
    workers=SETTINGS.workers,
    traffic={"timeout": 60},
    logging={"access": {"enabled": False}},
    tracing={"excluded_urls": UNTRACED},
    http={"cors": _cors_policy(SETTINGS.cors_origins)},
)
class BoneMetastasisService:
    """Bone metastasis risk from contract patient records."""

    model_ref = bentoml.models.BentoModel(SETTINGS.model_tag)

    def __init__(self) -> None:
        self.settings = SETTINGS
        meta = self.model_ref.info.metadata
        info = ModelInfo(
            name=str(meta.get("name", MODEL_NAME)),
            version=str(meta.get("version", "")),
            alias=str(meta.get("alias")) or None,
            run_id=str(meta.get("run_id", "")),
        )
        model = bentoml.mlflow.load_model(self.model_ref)
        tags = json.loads(meta.get("tags") or "{}")
        self.state = ModelState(model, info, _details(model, info, tags))
        self._follow = None
        alias = self.settings.follow_alias or info.alias
        if alias and self.settings.tracking_uri:
            self._follow = threading.Thread(
                target=self._follow_alias,
                args=(info.name, alias),
                daemon=True,
                name="bonemet-alias-follower",
            )
            self._follow.start()

    def readiness(self) -> dict[str, Any]:
        """What ``GET /readyz`` reports: the version served and the alias it follows.

        ``alias_target`` and ``alias_error`` are set while the alias names a version that could
        not be loaded (the service answers with ``version`` meanwhile); ``following`` says
        whether the alias is followed and the follower is running.
        """
        info = self.state.info
        return {
            "name": info.name,
            "version": info.version,
            "alias": info.alias,
            "alias_target": info.alias_target,
            "alias_error": info.alias_error,
            "following": self._follow is not None and self._follow.is_alive(),
        }

    def _follow_alias(self, name: str, alias: str) -> None:
        """Poll the registry; load and swap in the version the alias points to when it moves."""
        import mlflow

        interval = self.settings.reload_seconds
        client = mlflow.MlflowClient()
        failed: dict[str, float] = {}  # version -> when it last failed to load
        while True:
            time.sleep(interval)
            try:
                self._follow_once(client, name, alias, failed)
            except Exception:  # noqa: BLE001 - the follower outlives anything one poll raises
                logger.exception(
                    "alias follower: poll failed; still serving version %s",
                    self.state.info.version,
                )

    def _follow_once(self, client: Any, name: str, alias: str, failed: dict[str, float]) -> None:
        """One poll: look the alias up; when it names another version, try to serve that."""
        from mlflow.exceptions import MlflowException

        try:
            mv = client.get_model_version_by_alias(name, alias)
        except (MlflowException, OSError) as err:
            if self._alias_gone(client, name, alias):
                return
            logger.warning(
                "alias follower: alias lookup failed (registry unreachable), "
                "keeping version %s (%s)",
                self.state.info.version,
                type(err).__name__,
            )
            return
        target = str(mv.version)
        current = self.state
        # The same number is the same model only with the same run: a new registry numbers
        # its versions from 1 again.
        if target == current.info.version and (mv.run_id or "") == current.info.run_id:
            if current.info.alias_target is not None or current.info.alias != alias:
                self.state = current.diverged(None, None, alias=alias)
                logger.info("%s@%s names version %s again, as served", name, alias, target)
            return
        last = failed.get(target)
        if last is not None and time.monotonic() - last < RETRY_FAILED_SECONDS:
            return
        try:
            state = self._load_version(name, alias, mv)
        except Exception as err:  # noqa: BLE001 - see below
            # Loading a version unpickles its artifact and runs its code: a damaged artifact
            # fails with whatever that raises (IndexError, EOFError, KeyError, AttributeError,
            # ...). None of it may stop the follower or the service; nor is it swallowed:
            # GET /model, every answer and /readyz name the target and why, and the log does.
            failed[target] = time.monotonic()
            reason = _failure(err)
            self.state = self.state.diverged(target, _public_failure(err))
            logger.error(
                "alias follower: %s@%s names version %s, which cannot be served (%s); "
                "still serving version %s",
                name,
                alias,
                target,
                reason,
                self.state.info.version,
            )
            return
        failed.pop(target, None)
        self.state = state
        logger.info("now serving %s version %s (%s)", name, target, alias)

    def _alias_gone(self, client: Any, name: str, alias: str) -> bool:
        """After a failed lookup: True (and the state says so) when the registry answers and
        the model has no such alias any more (deleted), False when the registry cannot say.

        The version served keeps answering, but no longer under the alias's name: answers
        carry ``alias: null`` and ``/readyz`` says the alias names no version.
        """
        try:
            aliases = client.get_registered_model(name).aliases or {}
        except Exception:  # noqa: BLE001 - unreachable registry: the caller logs it
            return False
        if alias in aliases:
            return False
        current = self.state
        reason = f"the registry's alias {alias} names no version now"
        if current.info.alias is not None or current.info.alias_error != reason:
            self.state = current.diverged(None, reason, alias=None)
            logger.warning(
                "alias follower: %s@%s was deleted; still serving version %s, not as %s",
                name,
                alias,
                current.info.version,
                alias,
            )
        return True

    def _load_version(self, name: str, alias: str, mv: Any) -> ModelState:
        """Load a registry version and check it answers the synthetic patients (the smoke
        check of promotion and ``bonemet serve``); its state."""
        import mlflow

        model = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}")
        smoke_check(model)  # a SmokeCheckError (ValueError) says what failed
        info = ModelInfo(name=name, version=str(mv.version), alias=alias, run_id=mv.run_id or "")
        state = ModelState(model, info, _details(model, info, dict(mv.tags or {})))
        return state

    # The handlers are coroutines: a small request is answered on the event loop (about a
    # millisecond of work, less than handing it to a worker thread and back); a large batch
    # goes to a worker thread so health checks and small requests are not held up by it.
    @bentoml.api(route="/predict", input_spec=PredictRequest)
    async def predict(
        self, patients: list, horizons_months: list, ctx: bentoml.Context
    ) -> PredictionResponse:
        """Cumulative incidence of bone metastasis by each horizon, per patient."""
        return await self._dispatch(patients, horizons_months, ctx, explain=False)

    @bentoml.api(route="/explain", input_spec=PredictRequest)
    async def explain(
        self, patients: list, horizons_months: list, ctx: bentoml.Context
    ) -> ExplanationResponse:
        """As ``/predict``, plus each patient's largest contributions to the risk score."""
        return await self._dispatch(patients, horizons_months, ctx, explain=True)

    async def _dispatch(self, patients: list, horizons_months: list, ctx, explain: bool):
        if len(patients) <= INLINE_PATIENTS and not explain:
            return self._answer(patients, horizons_months, ctx, explain)
        return await anyio.to_thread.run_sync(self._answer, patients, horizons_months, ctx, explain)

    def _answer(self, patients: list, horizons_months: list, ctx: bentoml.Context, explain: bool):
        headers, answer = self._respond(patients, horizons_months, explain)
        ctx.response.headers.update(headers)
        if isinstance(answer, JSONResponse):
            ctx.response.status_code = 400  # BentoML applies the context's status to responses
            answer.headers.update(headers)
        return answer

    def _respond(
        self, patients: list, horizons_months: list, explain: bool
    ) -> tuple[dict[str, str], Any]:
        """The answer's headers and the answer: the response model, or the contract's 400
        (the work of both routes, :meth:`_answer` and :func:`answer_predict`)."""
        state = self.state  # one model for the whole request, even if the alias moves now
        headers = {"X-Model-Version": state.info.version, "X-Patients": str(len(patients))}
        if state.info.alias_target is not None:
            headers["X-Model-Alias-Target"] = state.info.alias_target
        answer = _predictions(state, patients, horizons_months, explain)
        if isinstance(answer, JSONResponse):
            return headers, answer
        kind = ExplanationResponse if explain else PredictionResponse
        return headers, kind(model=state.info, interval_level=INTERVAL_LEVEL, predictions=answer)


def _predictions(
    state: ModelState, patients: list, horizons_months: list, explain: bool
) -> list[Prediction] | JSONResponse:
    """Each patient's answer from ``state``'s model, or the 400 of the contract's rules."""
    # The contract's own rules, on the records (no pandas: this is the hot path).
    typed, draws, owner, bad = _check_request([p.model_dump() for p in patients], validated=True)
    if bad:
        return _bad_request(bad)
    notes = _apply_draws(typed, draws, owner, patients, state.risk_model)
    # The rows are validated: call the logged model's RiskModel directly (the same object
    # the pyfunc wraps) instead of paying MLflow's schema enforcement and a second
    # contract check per request.
    batch = state.risk_model.predict_batch(typed, horizons_months, explain=explain)
    predictions = []
    treatment = _treatment_benefits(typed, batch, horizons_months)
    bone = [_rows(t) for t in (batch.probability, batch.low, batch.high)]
    death = [_rows(t) for t in (batch.death_probability, batch.death_low, batch.death_high)]
    scores = batch.risk_score.tolist()
    for k in range(len(patients)):
        score = scores[k]
        has_probs = score == score  # NaN for bone metastasis at enrollment
        benefits, why_not = treatment[k]
        answer = dict(
            patient_id=batch.patient_id[k],
            risk_score=score if has_probs else None,
            risk_group=batch.risk_group[k] if has_probs else None,
            bone_metastasis_probability=_probabilities(horizons_months, bone[0], k, *bone[1:]),
            death_probability=_probabilities(horizons_months, death[0], k, *death[1:]),
            treatment_benefit=benefits,
            treatment_benefit_note=why_not,
            warnings=notes[k] + batch.warnings[k],
        )
        if explain:
            answer.update(
                explanation=batch.explanation[k],
                missing_inputs=batch.missing[k]["ranges"] if batch.missing else [],
                too_uncertain=batch.missing[k]["too_uncertain"] if batch.missing else False,
            )
        predictions.append(answer)
    # Every answer validated against its model (bounds included) in one call.
    return (_EXPLAINED if explain else _PREDICTIONS).validate_python(predictions)


_PREDICTIONS = TypeAdapter(list[Prediction])
_EXPLAINED = TypeAdapter(list[ExplainedPrediction])


#: The ``Server`` header BentoML puts on every answer of an API (``_add_response_headers``).
SERVER_HEADER = (b"server", f"BentoML Service/{BoneMetastasisService.name}".encode())
#: The logger and words of BentoML's line for a request its handler failed
#: (``bentoml._internal.server.http_app.log_exception``), redacted by :mod:`serving.logs`.
_BENTOML_HTTP_LOGGER = logging.getLogger("bentoml._internal.server.http_app")
#: BentoML's 500 body (``api_endpoint_wrapper``).
UNEXPECTED_ERROR = "An unexpected error has occurred, please check the server log."


async def answer_predict(body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """``POST /predict`` answered without BentoML's dispatch: status, headers, body.

    Called by the gateway (:class:`serving.gateway.GatewayMiddleware`) after every check it
    makes of a request (token, media type, size, deadline, duplicate keys); its answer then
    goes through the same wording of a 400 and the same audit line. It does what BentoML does
    for this route (``_bentoml_impl.server.app.ServiceApp.api_endpoint``, bentoml 1.4) with
    the same objects: the body parsed by the same request model
    (``PredictRequest.model_validate_json``), a rejected one answered with BentoML's 400 and
    logged with BentoML's line, the same :meth:`BoneMetastasisService._respond` (on the event
    loop up to :data:`INLINE_PATIENTS` patients, else in a worker thread), the answer
    serialised by the same ``model_dump_json`` with the same headers in the same order. What
    it skips is BentoML's generic machinery around that: the request object and context,
    binding the API method's signature, the IO descriptor's lookups, the background tasks.
    ``tests/serving/test_direct_route.py`` sends a corpus of valid and invalid bodies to both
    routes and compares status, headers and bytes. None (the gateway then hands the request
    to BentoML) before the service exists.
    """
    service = _current_service()
    if service is None:
        return None
    try:
        request = PredictRequest.model_validate_json(body or b"{}")
    except ValidationError as exc:
        _BENTOML_HTTP_LOGGER.error("Exception on %s [%s]", "/predict", "POST", exc_info=True)
        data = {
            "error": f"{exc.error_count()} validation error for {exc.title}",
            "detail": exc.errors(include_context=False, include_input=False),
        }
        return _raw(JSONResponse(data, status_code=400), {})
    patients, horizons = request.patients, request.horizons_months
    try:
        if len(patients) <= INLINE_PATIENTS:
            headers, answer = service._respond(patients, horizons, False)
        else:
            headers, answer = await anyio.to_thread.run_sync(
                service._respond, patients, horizons, False
            )
        if isinstance(answer, JSONResponse):
            return _raw(answer, headers)
        payload = answer.model_dump_json().encode("utf-8")
    except Exception:  # noqa: BLE001 - BentoML's answer to a failing handler: logged, a 500
        _BENTOML_HTTP_LOGGER.error("Exception on %s [%s]", "/predict", "POST", exc_info=True)
        return _raw(JSONResponse({"error": UNEXPECTED_ERROR}, status_code=500), {})
    raw = [(b"content-length", str(len(payload)).encode()), (b"content-type", b"application/json")]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append(SERVER_HEADER)
    return 200, raw, payload


def _raw(
    response: JSONResponse, headers: dict[str, str]
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """A JSON response with ``headers`` and BentoML's ``Server`` header, as ASGI parts."""
    response.headers.update(headers)
    response.headers.update({SERVER_HEADER[0].decode(): SERVER_HEADER[1].decode()})
    return response.status_code, response.raw_headers, response.body


BoneMetastasisService.mount_asgi_app(_model_app(), path="/")
BoneMetastasisService.add_asgi_middleware(
    GatewayMiddleware,
    readiness=_readiness,
    settings=SETTINGS,
    direct={"/predict": answer_predict} if SETTINGS.direct_predict else {},
)
