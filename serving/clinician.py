"""The clinician's risk page, served by the prediction service itself (``GET /clinician``).

Plain HTML, CSS and one script from ``serving/clinician_static/``: no build step and nothing
fetched from elsewhere (hospital networks are closed). The form's fields are generated from
the data contract (:mod:`features.schema`: names, kinds, bounds, allowed values, units), with
the clinical label of each field kept here; the page embeds them as JSON and its script builds
the form, reads every field from the URL (contract names, plus ``horizon_months``), and asks
``POST /explain`` and ``GET /model`` for the numbers, as any client does.

Routes (added beside ``GET /model`` by :mod:`serving.service`):

- ``GET /clinician``: the page;
- ``GET /clinician/static/{name}``: its stylesheet and script (only those two names);
- ``GET /model/card``: the served version's model card, with the served version, contract
  version and intended use (:func:`training.artifact.card.served_card`): an HTML page when the
  ``Accept`` header prefers ``text/html`` (a browser), Markdown (``text/markdown``) otherwise;
  behind the bearer token like ``/model``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from features.schema import (
    MEASUREMENT_COLUMNS,
    OUTCOME_COLUMNS,
    PATIENT_COLUMNS,
    PROVENANCE_COLUMNS,
    ColumnSpec,
)

STATIC_DIR = Path(__file__).with_name("clinician_static")
#: The files the page loads, with their content types; nothing else is served from the folder.
STATIC_FILES = {
    "clinician.css": "text/css; charset=utf-8",
    "clinician.js": "text/javascript; charset=utf-8",
}
#: Horizons the page offers, in months (1 to 5 years).
HORIZONS_MONTHS = (12, 24, 36, 48, 60)
#: The page's own resources only; inline SVG and data: URLs for the pictures.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)

#: Clinical label of every contract field the page asks for.
LABELS = {
    "patient_id": "Study ID (pseudonymous)",
    "age_years": "Age",
    "menopausal_status": "Menopausal status",
    "er_status": "Oestrogen receptor (ER)",
    "pr_status": "Progesterone receptor (PR)",
    "her2_status": "HER2",
    "ki67_percent": "Ki-67 index",
    "histologic_grade": "Histologic grade",
    "tumor_size_mm": "Tumour size (largest diameter)",
    "positive_lymph_nodes": "Involved axillary lymph nodes",
    "disease_setting": "Disease setting",
    "visceral_metastasis": "Visceral metastasis (lung, liver, brain)",
    "bone_metastasis_at_enrollment": "Bone metastasis already present",
    "bone_targeted_therapy": "Bone-targeted therapy",
    "endocrine_therapy": "Endocrine therapy",
    "chemotherapy": "Chemotherapy",
    "alkaline_phosphatase_u_per_l": "Alkaline phosphatase (serum)",
    "oc_positive_percent": "Osteocalcin-positive cells",
    "oc_positive_events": "Osteocalcin-positive events counted",
    "pbmc_events": "PBMC events gated",
    "day": "Day of the draw",
}
#: Clinical wording of allowed values where the contract's value is not already plain.
VALUE_LABELS = {
    "menopausal_status": {
        "pre": "Premenopausal",
        "peri": "Perimenopausal",
        "post": "Postmenopausal",
    },
    "disease_setting": {
        "early": "Early (stage I-III, no distant disease)",
        "metastatic": "Metastatic (distant disease at enrollment)",
    },
    "bone_targeted_therapy": {
        "none": "None",
        "bisphosphonate": "Bisphosphonate",
        "denosumab": "Denosumab",
    },
}
#: Fields shown in the "clinical" part of the form; the marker fields of the enrollment draw
#: come in their own group.
MARKER_FIELDS = ("oc_positive_percent", "oc_positive_events", "pbmc_events")


def field_spec(spec: ColumnSpec) -> dict[str, Any]:
    """What the page needs to build one field and check it before sending.

    Parameters
    ----------
    spec : features.schema.ColumnSpec
        The contract column.

    Returns
    -------
    dict
        ``name``, ``label``, ``kind``, ``required``, ``allowed`` (``[value, label]`` pairs),
        ``minimum``, ``maximum``, ``exclusive_minimum``, ``unit``, ``range`` (the contract's
        wording of the allowed values) and ``help`` (the contract's meaning).
    """
    values = VALUE_LABELS.get(spec.name, {})
    return {
        "name": spec.name,
        "label": LABELS.get(spec.name, spec.name.replace("_", " ")),
        "kind": spec.kind,
        "required": spec.required,
        "allowed": [[v, values.get(v, v[:1].upper() + v[1:])] for v in spec.allowed],
        "minimum": spec.minimum,
        "maximum": spec.maximum,
        "exclusive_minimum": spec.exclusive_minimum,
        "unit": spec.unit,
        "range": spec.range_text(),
        "help": spec.description,
    }


def page_fields() -> dict[str, Any]:
    """The form's fields: every patient field of the contract and every draw field, but the
    outcome and where the patient and the draw come from (contract 1.2 provenance: never a
    predictor, nothing a clinician needs to type)."""
    left_out = {*OUTCOME_COLUMNS, *PROVENANCE_COLUMNS}
    patient = [field_spec(c) for c in PATIENT_COLUMNS if c.name not in left_out]
    draw = [
        field_spec(c)
        for c in MEASUREMENT_COLUMNS
        if c.name != "patient_id" and c.name not in left_out
    ]
    return {
        "patient": [f for f in patient if f["name"] not in MARKER_FIELDS],
        "marker": [f for f in patient if f["name"] in MARKER_FIELDS],
        "draw": draw,
        "horizons_months": list(HORIZONS_MONTHS),
    }


#: The card page: its own inline style, nothing else (no script at all).
CARD_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
}


def render_page() -> str:
    """The page's HTML with the field specifications embedded as JSON."""
    template = (STATIC_DIR / "clinician.html").read_text(encoding="utf-8")
    # Script contents are raw text: "<" as its JSON escape so nothing can end the element.
    fields = json.dumps(page_fields()).replace("<", "\\u003c")
    return template.replace("{{FIELDS_JSON}}", fields)


def _prefers_html(accept: str) -> bool:
    """Whether an Accept header ranks ``text/html`` above Markdown and plain text (a browser)."""
    best: dict[str, float] = {}
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        quality = 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    quality = float(f[2:])
                except ValueError:
                    quality = 0.0
        best[fields[0].lower()] = max(best.get(fields[0].lower(), 0.0), quality)
    html_q = best.get("text/html", 0.0)
    other = max(best.get("text/markdown", 0.0), best.get("text/plain", 0.0))
    return html_q > 0 and html_q > other


def clinician_routes() -> list:
    """Starlette routes of the page, its two static files and the model card."""
    from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    # Rendered at the first request, not when the service is imported; once: the contract does
    # not change while the service runs.
    page = functools.cache(render_page)
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",  # the URL may carry patient fields
        "Cache-Control": "no-store",
    }

    async def clinician(request):
        return HTMLResponse(page(), headers=headers)

    async def static(request):
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            return JSONResponse({"error": f"no such file: {name}"}, status_code=404)
        body = (STATIC_DIR / name).read_bytes()
        return Response(body, media_type=STATIC_FILES[name], headers=headers)

    async def model_card(request):
        import bentoml

        state = bentoml.get_current_service().state
        card = getattr(state.model.unwrap_python_model(), "model_card", None)
        if not card:
            return JSONResponse(
                {"error": f"model version {state.info.version} was logged without a model card"},
                status_code=404,
            )
        from features.schema import CONTRACT_REVISION
        from training.artifact.card import card_html, served_card

        landmark = bool(state.risk_model.landmark_days)
        card = served_card(card, state.info.version, CONTRACT_REVISION, landmark)
        if _prefers_html(request.headers.get("accept", "")):
            title = f"Model card: {state.info.name} version {state.info.version}"
            return HTMLResponse(card_html(card, title), headers={**headers, **CARD_HEADERS})
        return PlainTextResponse(
            card, media_type="text/markdown", headers={"X-Content-Type-Options": "nosniff"}
        )

    return [
        Route("/clinician", clinician, methods=["GET"]),
        Route("/clinician/static/{name}", static, methods=["GET"]),
        Route("/model/card", model_card, methods=["GET"]),
    ]
