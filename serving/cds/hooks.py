"""CDS Hooks 2.0 on the prediction service: discovery, the ``patient-view`` service, feedback,
and ``POST /fhir/RiskAssessment``.

- ``GET /cds-services``: the service, its hook and its prefetch templates (from the mapping
  table, :mod:`features.fhir`). Open: it holds no patient data.
- ``POST /cds-services/bone-metastasis-risk``: the hook call. The EHR's JWT is checked
  (:mod:`serving.cds.trust`, 401); each prefetch key the EHR did not fill is fetched from
  ``fhirServer`` with ``fhirAuthorization``'s bearer token; when a key can be had neither way the
  answer is 412. The resources become a contract record (:func:`features.fhir.map_patient`), the
  record is scored by the service's own ``/predict`` path (the ``predict`` callable given by
  :mod:`serving.service`), and the answer is one card: summary in the clinician page's words,
  detail with every horizon, the competing death, missing fields, warnings and treatment benefit,
  source the model card, links to the clinician page prefilled (and a SMART app when one is
  configured), and a suggestion that creates the FHIR RiskAssessment.
- ``POST /cds-services/bone-metastasis-risk/feedback``: counted by outcome (``accepted`` /
  ``overridden``) in ``/metrics``; nothing else of it is kept.
- ``POST /fhir/RiskAssessment``: the same request body without the hook fields, answered with the
  RiskAssessment itself; behind the service's bearer token like ``/predict`` (the gateway).

Nothing of the EHR's data (ids, names, values) is logged or put in a metric: the record sent to
the model carries a pseudonym (a keyed hash of the FHIR server and Patient id, keyed per process)
as ``patient_id``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from features.fhir import FhirMapping, load_mapping, map_patient
from features.fhir.mapping import as_list
from features.schema import HEADLINE_HORIZON_MONTHS
from serving.cds.risk_assessment import risk_assessment
from serving.cds.trust import CdsTrust, TrustError
from serving.clinician import LABELS

__all__ = ["HOOK", "SERVICE_ID", "CdsConfig", "cds_routes", "discovery"]

SERVICE_ID = "bone-metastasis-risk"
HOOK = "patient-view"
#: Horizons of the card's detail (months); the summary gives HEADLINE_HORIZON_MONTHS.
CARD_HORIZONS = [12.0, 24.0, 36.0, 60.0]
SUMMARY_LIMIT = 140
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
MAX_PAGES = 5
FHIR_TIMEOUT_SECONDS = 10.0
FEEDBACK_OUTCOMES = ("accepted", "overridden")
#: (patients, horizons) -> (the answer of POST /predict as JSON, or None; its violations).
Predict = Callable[[list[dict[str, Any]], list[float]], tuple[dict[str, Any] | None, list]]


class NeedData(Exception):
    """The FHIR data the service needs could not be had (HTTP 412)."""


class BadRequest(Exception):
    """The hook request breaks CDS Hooks 2.0 (HTTP 400)."""


@dataclass
class CdsConfig:
    """What the CDS routes need: the mapping table, the trusted EHRs, the public address."""

    mapping: FhirMapping
    trust: CdsTrust
    public_url: str | None = None
    smart_launch_url: str | None = None
    pseudonym_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @classmethod
    def from_settings(cls, settings: Any) -> CdsConfig:
        """From :class:`serving.settings.ServingSettings` (the files are read and checked)."""
        return cls(
            mapping=load_mapping(settings.fhir_mapping_file),
            trust=CdsTrust.from_file(settings.cds_trust_file),
            public_url=settings.public_url,
            smart_launch_url=settings.smart_launch_url,
        )


def discovery(mapping: FhirMapping) -> dict[str, Any]:
    """The body of ``GET /cds-services``."""
    return {
        "services": [
            {
                "hook": HOOK,
                "id": SERVICE_ID,
                "title": "Bone metastasis risk (breast cancer)",
                "description": (
                    "Cumulative incidence of a first bone metastasis by 1, 2, 3 and 5 years, "
                    "with death before bone metastasis as a competing event, from the patient's "
                    "record and circulating osteocalcin-positive cells (local code system "
                    "urn:bonemet:codesystem:lab, code oc-positive-pbmc-percent: no LOINC code "
                    "exists). Research software, not a medical device."
                ),
                "prefetch": mapping.prefetch_templates(),
                "usageRequirements": (
                    "The EHR's JWT issuer and keys must be registered with the service "
                    "(docs/ehr.md)."
                ),
            }
        ]
    }


# -- gathering the data ---------------------------------------------------------------------


def _entries(key: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, Mapping) or "resourceType" not in value:
        raise BadRequest(f"prefetch.{key} must be a FHIR resource or Bundle, or null")
    if value["resourceType"] == "Bundle":
        return [
            e["resource"]
            for e in as_list(value.get("entry"))
            if isinstance(e, Mapping) and isinstance(e.get("resource"), Mapping)
        ]
    if value["resourceType"] == "OperationOutcome":
        return []
    return [dict(value)]


def _check_request(body: Any, hook: bool) -> tuple[str, str | None, str | None, dict[str, Any]]:
    """(patientId, fhirServer, access token, prefetch) of a request, or BadRequest."""
    if not isinstance(body, Mapping):
        raise BadRequest("the body must be a JSON object")
    if hook:
        if body.get("hook") != HOOK:
            raise BadRequest(f"hook must be {HOOK!r}")
        if not isinstance(body.get("hookInstance"), str) or not body["hookInstance"]:
            raise BadRequest("hookInstance must be a non-empty string")
    context = body.get("context")
    patient = context.get("patientId") if isinstance(context, Mapping) else None
    if not isinstance(patient, str) or not FHIR_ID.match(patient):
        raise BadRequest("context.patientId must be a FHIR id (1-64 of A-Z a-z 0-9 - .)")
    server = body.get("fhirServer")
    if server is not None and (
        not isinstance(server, str) or not server.startswith(("https://", "http://"))
    ):
        raise BadRequest("fhirServer must be an http(s) URL")
    auth = body.get("fhirAuthorization")
    token = None
    if auth is not None:
        if not isinstance(auth, Mapping) or not isinstance(auth.get("access_token"), str):
            raise BadRequest("fhirAuthorization must carry an access_token string")
        if server is None:
            raise BadRequest("fhirAuthorization is given without fhirServer")
        token = auth["access_token"]
    prefetch = body.get("prefetch") or {}
    if not isinstance(prefetch, Mapping):
        raise BadRequest("prefetch must be an object")
    return patient, server, token, dict(prefetch)


async def gather(
    mapping: FhirMapping,
    patient: str,
    server: str | None,
    token: str | None,
    prefetch: Mapping[str, Any],
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """Each prefetch key's resources, from the prefetch or else from the FHIR server.

    Returns the resources by key and, by key, where they came from (``prefetch`` /
    ``server``). Raises :class:`NeedData` naming every key that could be had neither way.
    """
    import anyio
    import httpx

    resources: dict[str, list[dict[str, Any]]] = {}
    origin: dict[str, str] = {}
    wanted = []
    for key in mapping.prefetch_templates():
        value = prefetch.get(key)
        if value is None:
            wanted.append(key)
        else:
            resources[key] = _entries(key, value)
            origin[key] = "prefetch"
    if not wanted:
        return resources, origin
    if server is None:
        raise NeedData(
            f"not prefetched and no fhirServer to fetch them from: {', '.join(wanted)}"
        )
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    failures: list[str] = []
    base = server.rstrip("/")

    async def fetch(client: httpx.AsyncClient, key: str) -> None:
        url: str | None = f"{base}/{mapping.query(key, patient)}"
        found: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            try:
                answer = await client.get(url, headers=headers)
            except httpx.HTTPError as err:
                failures.append(f"{key}: FHIR server not reachable ({type(err).__name__})")
                return
            if answer.status_code != 200:
                failures.append(f"{key}: FHIR server answered HTTP {answer.status_code}")
                return
            try:
                page = answer.json()
                found += _entries(key, page)
            except (ValueError, BadRequest):
                failures.append(f"{key}: FHIR server's answer is not a FHIR resource")
                return
            url = next(
                (
                    link.get("url")
                    for link in as_list(page.get("link"))
                    if isinstance(link, Mapping) and link.get("relation") == "next"
                ),
                None,
            )
            if not url or not url.startswith(base):
                break
        resources[key] = found
        origin[key] = "server"

    async with httpx.AsyncClient(timeout=FHIR_TIMEOUT_SECONDS) as client:
        async with anyio.create_task_group() as group:
            for key in wanted:
                group.start_soon(fetch, client, key)
    if failures:
        raise NeedData("; ".join(sorted(failures)))
    return resources, origin


# -- the card -------------------------------------------------------------------------------


def _round(x: float) -> int:
    """Half up, as the clinician page's Math.round."""
    return int(math.floor(100 * x + 0.5))


def counts(p_bm: float, p_death: float | None) -> tuple[int, int, int]:
    """Women out of 100 (bone metastasis, death first, neither), as the clinician page."""
    bm = _round(p_bm)
    death = 0 if p_death is None else min(_round(p_death), 100 - bm)
    return bm, death, 100 - bm - death


def _years(months: float) -> str:
    y = months / 12
    text = f"{y:g}"
    return f"{text} year" if y == 1 else f"{text} years"


def _at(curve: list[dict[str, Any]], months: float) -> dict[str, Any] | None:
    return next((e for e in curve if e["months"] == months), None)


def _range(entry: dict[str, Any]) -> str:
    """The interval in the clinician page's words (contract 1.2), or nothing without one."""
    if entry.get("low") is None or entry.get("high") is None:
        return ""
    return f", likely between {_round(entry['low'])} and {_round(entry['high'])}"


def summary(prediction: dict[str, Any]) -> str:
    """The card's summary: the headline horizon in the clinician page's words."""
    entry = _at(prediction["bone_metastasis_probability"], HEADLINE_HORIZON_MONTHS)
    death = _at(prediction.get("death_probability") or [], HEADLINE_HORIZON_MONTHS)
    bm, _, _ = counts(entry["probability"], death["probability"] if death else None)
    return (
        f"{bm} out of 100 women like this develop bone metastasis within "
        f"{_years(HEADLINE_HORIZON_MONTHS)}{_range(entry)}."
    )


def _label(name: str) -> str:
    return f"{LABELS.get(name, name)} (`{name}`)"


def detail(
    prediction: dict[str, Any],
    model: dict[str, Any],
    missing: list[str],
    origin: dict[str, str],
    level: float | None,
) -> str:
    """The card's detail (GitHub-flavoured Markdown)."""
    lines = []
    bm_curve = prediction.get("bone_metastasis_probability") or []
    death_curve = prediction.get("death_probability") or []
    if bm_curve:
        interval = any(e.get("low") is not None for e in bm_curve)
        lines += [
            "Out of 100 women like this, from today:",
            "",
            "| within | develop bone metastasis | die first, without bone metastasis (any cause)"
            " | neither |",
            "|---|---|---|---|",
        ]
        for entry in bm_curve:
            death = _at(death_curve, entry["months"])
            p_death = death["probability"] if death else None
            bm, dead, neither = counts(entry["probability"], p_death)
            dead_text = f"{dead}{_range(death)}" if death else "not estimated"
            lines.append(f"| {_years(entry['months'])} | {bm}{_range(entry)} | {dead_text} | "
                         f"{neither} |")
        lines += [
            "",
            "Death before any bone metastasis, from any cause (breast cancer or another), is a "
            "competing event: a woman who dies first cannot develop bone metastasis, so the two "
            "are counted apart.",
        ]
        if interval and level is not None:
            lines.append(
                f"\"Likely between\": the {level:.0%} interval of the number itself (the model's "
                "estimation uncertainty and the marker's counting noise), not of the event."
            )
    if missing:
        lines += ["", "**Not found in the record** (the model imputes them or goes without): "
                  + ", ".join(_label(m) for m in missing) + "."]
    if prediction.get("warnings"):
        lines += ["", "**Warnings**:"] + [f"- {w}" for w in prediction["warnings"]]
    if "treatment_benefit" in prediction and bm_curve:
        benefit = prediction["treatment_benefit"] or []
        if not benefit:
            note = prediction.get("treatment_benefit_note") or "none applies to this patient"
            lines += ["", f"**Treatment benefit**: none from the trials is shown: {note}."]
        untreated = _at(bm_curve, HEADLINE_HORIZON_MONTHS)
        for t in benefit:
            at = _at(t.get("bone_metastasis_probability") or [], HEADLINE_HORIZON_MONTHS)
            if at is None or untreated is None:
                continue
            lines += [
                "",
                f"**Treatment benefit**: with {t['treatment'].replace('_', ' ')}, "
                f"{_round(at['probability'])} out of 100 within "
                f"{_years(HEADLINE_HORIZON_MONTHS)}{_range(at)}, instead of "
                f"{_round(untreated['probability'])} without it. From the trials, not from this "
                f"model: the bone-metastasis rate is multiplied by {t['relative_risk']:g} (95% CI "
                f"{t['relative_risk_low']:g}-{t['relative_risk_high']:g}). Source: "
                f"{t['source']}.",
            ]
    fetched = sorted(k for k, v in origin.items() if v == "server")
    lines += [
        "",
        f"Model {model.get('name')} version {model.get('version')}; data "
        + ("prefetched by the EHR" if not fetched else "fetched from the FHIR server for: "
           + ", ".join(fetched))
        + ". Accepting the suggestion records this as a FHIR RiskAssessment "
        "(`POST /fhir/RiskAssessment` returns the same resource). Research use only: not a "
        "medical device.",
    ]
    return "\n".join(lines)


def clinician_link(base: str, record: dict[str, Any]) -> str:
    """The clinician page prefilled with the record (contract names) at the headline horizon."""
    params = {
        k: json.dumps(v) if k == "oc_measurements" else (str(v).lower() if isinstance(v, bool)
                                                         else str(v))
        for k, v in record.items()
        if v is not None
    }
    params["horizon_months"] = str(HEADLINE_HORIZON_MONTHS)
    return f"{base}/clinician?{urlencode(params)}"


# -- the routes -----------------------------------------------------------------------------


def _public_base(config: CdsConfig, request: Any) -> str:
    if config.public_url:
        return config.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def _pseudonym(config: CdsConfig, patient: str) -> str:
    digest = hmac.new(config.pseudonym_key, patient.encode(), hashlib.sha256)
    return "fhir-" + digest.hexdigest()[:20]


@dataclass
class Assessment:
    """One hook call's outcome, before it is worded as a card or a resource."""

    patient: str
    record: dict[str, Any]
    missing: list[str]
    basis: list[str]
    origin: dict[str, str]
    answer: dict[str, Any] | None
    violations: list[dict[str, Any]]
    now: datetime


async def assess(config: CdsConfig, predict: Predict, body: Any, hook: bool) -> Assessment:
    """Check the request, gather the data, map it and score it (BadRequest, NeedData)."""
    patient, server, token, prefetch = _check_request(body, hook)
    resources, origin = await gather(config.mapping, patient, server, token, prefetch)
    now = datetime.now(UTC)
    mapped = map_patient(
        resources, config.mapping, patient, now, _pseudonym(config, patient)
    )
    if not any(
        r.get("resourceType") == "Patient" and r.get("id") == patient
        for key in config.mapping.rule("age_years").prefetch
        for r in resources.get(key, [])
    ):
        keys = ", ".join(config.mapping.rule("age_years").prefetch)
        raise NeedData(f"the Patient resource ({keys}) is empty")
    answer, violations = predict([mapped.record], CARD_HORIZONS)
    return Assessment(
        patient, mapped.record, mapped.missing, mapped.basis, origin, answer, violations, now
    )


def card(config: CdsConfig, base: str, a: Assessment) -> dict[str, Any]:
    """The CDS Hooks card of an assessment."""
    model = (a.answer or {}).get("model") or {}
    source = {
        "label": "bonemet bone metastasis model (research use only)",
        "url": f"{base}/model/card",
        "topic": {"system": "urn:bonemet:cds", "code": "bone-metastasis-risk",
                  "display": "Bone metastasis risk"},
    }
    links = []
    if a.answer is None:
        first = a.violations[0] if a.violations else {"loc": [], "msg": "unknown"}
        field_name = next((str(x) for x in reversed(first.get("loc", [])) if isinstance(x, str)),
                          "record")
        text = f"No bone-metastasis risk: the record's {field_name} cannot be used."
        body = "\n".join(
            ["The record read from the EHR breaks the data contract:", ""]
            + [f"- `{'.'.join(str(x) for x in v['loc'][2:]) or 'record'}`: {v['msg']}"
               for v in a.violations]
            + (["", "**Not found in the record**: " + ", ".join(_label(m) for m in a.missing)]
               if a.missing else [])
        )
        return {"uuid": str(uuid.uuid4()), "summary": text[:SUMMARY_LIMIT - 1],
                "indicator": "info", "detail": body, "source": source}
    (prediction,) = a.answer["predictions"]
    level = a.answer.get("interval_level")
    result: dict[str, Any] = {"uuid": str(uuid.uuid4()), "indicator": "info", "source": source,
                              "detail": detail(prediction, model, a.missing, a.origin, level)}
    if prediction["bone_metastasis_probability"]:
        result["summary"] = summary(prediction)
        links.append({"label": "Open in the bonemet clinician page", "type": "absolute",
                      "url": clinician_link(base, a.record)})
        resource = risk_assessment(prediction, model, f"Patient/{a.patient}", a.basis, a.now,
                                   level)
        result["suggestions"] = [{
            "label": "Record this risk assessment in the chart",
            "uuid": str(uuid.uuid4()),
            "actions": [{"type": "create", "description": "Create a RiskAssessment",
                         "resource": resource}],
        }]
        result["selectionBehavior"] = "at-most-one"
    else:
        # The model's own reason (after the notes on draws and prediction_day).
        reason = next((w for w in reversed(prediction["warnings"]) if "bone metastasis" in w),
                      "no risk to predict")
        result["summary"] = f"No bone-metastasis risk given: {reason}."[:SUMMARY_LIMIT - 1]
    if config.smart_launch_url:
        links.append({"label": "Open the bonemet SMART app", "type": "smart",
                      "url": config.smart_launch_url})
    if links:
        result["links"] = links
    return result


def cds_routes(config: CdsConfig, predict: Predict) -> list:
    """Starlette routes: discovery, the service, its feedback, ``POST /fhir/RiskAssessment``."""
    import anyio
    import bentoml
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    feedback_total = bentoml.metrics.Counter(
        name="bonemet_cds_feedback_total",
        documentation="CDS Hooks card feedback by outcome (no patient data)",
        labelnames=["outcome"],
    )
    service_path = f"/cds-services/{SERVICE_ID}"

    def error(status: int, message: str, extra: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=extra)

    async def authenticate(request: Any) -> tuple[Any, JSONResponse | None]:
        """(the trusted client, None), or (None, the 401 answer)."""
        base = _public_base(config, request)
        audiences = {f"{base}{service_path}", f"{base}{request.url.path}",
                     f"{base}/cds-services"}
        try:
            client, _ = await anyio.to_thread.run_sync(
                config.trust.verify, request.headers.get("authorization"), audiences
            )
        except TrustError as err:
            return None, error(401, str(err), {"WWW-Authenticate": 'Bearer realm="bonemet-cds"'})
        return client, None

    async def json_body(request: Any) -> Any:
        try:
            return json.loads(await request.body())
        except ValueError:
            raise BadRequest("the body is not JSON") from None

    async def discover(request: Any) -> JSONResponse:
        return JSONResponse(discovery(config.mapping))

    async def service(request: Any) -> JSONResponse:
        client, refused = await authenticate(request)
        if refused is not None:
            return refused
        try:
            body = await json_body(request)
            server = body.get("fhirServer") if isinstance(body, Mapping) else None
            if isinstance(server, str) and not client.allows_fhir_server(server):
                return error(403, "fhirServer is not one this EHR is registered with "
                             "(fhir_servers in the trust file)")
            a = await assess(config, predict, body, hook=True)
        except BadRequest as err:
            return error(400, str(err))
        except NeedData as err:
            return error(412, f"the FHIR data needed could not be had: {err}")
        return JSONResponse({"cards": [card(config, _public_base(config, request), a)]})

    async def feedback(request: Any) -> JSONResponse:
        _, refused = await authenticate(request)
        if refused is not None:
            return refused
        try:
            body = await json_body(request)
        except BadRequest as err:
            return error(400, str(err))
        items = body.get("feedback") if isinstance(body, Mapping) else None
        if not isinstance(items, list) or not items or not all(
            isinstance(f, Mapping) and f.get("outcome") in FEEDBACK_OUTCOMES for f in items
        ):
            return error(400, "feedback must be a non-empty list of items whose outcome is "
                         + " or ".join(FEEDBACK_OUTCOMES))
        for f in items:
            feedback_total.labels(outcome=f["outcome"]).inc()
        return JSONResponse({})

    async def fhir_risk_assessment(request: Any) -> JSONResponse:
        try:
            a = await assess(config, predict, await json_body(request), hook=False)
        except BadRequest as err:
            return _outcome(400, "invalid", str(err))
        except NeedData as err:
            return _outcome(412, "not-found", f"the FHIR data needed could not be had: {err}")
        if a.answer is None:
            return _outcome(422, "business-rule", "; ".join(
                f"{'.'.join(str(x) for x in v['loc'][2:]) or 'record'}: {v['msg']}"
                for v in a.violations))
        (prediction,) = a.answer["predictions"]
        if not prediction["bone_metastasis_probability"]:
            return _outcome(422, "business-rule", "; ".join(prediction["warnings"])
                            or "no risk to predict")
        resource = risk_assessment(prediction, a.answer["model"], f"Patient/{a.patient}",
                                   a.basis, a.now, a.answer.get("interval_level"))
        return JSONResponse(resource, media_type="application/fhir+json")

    return [
        Route("/cds-services", discover, methods=["GET"]),
        Route(service_path, service, methods=["POST"]),
        Route(f"{service_path}/feedback", feedback, methods=["POST"]),
        Route("/fhir/RiskAssessment", fhir_risk_assessment, methods=["POST"]),
    ]


def _outcome(status: int, code: str, text: str) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse(
        {"resourceType": "OperationOutcome",
         "issue": [{"severity": "error", "code": code, "diagnostics": text}]},
        status_code=status,
        media_type="application/fhir+json",
    )
