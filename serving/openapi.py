"""The published API document (``GET /docs.json``) and the API page (``GET /``).

The page is the project's own (``serving/api_static/``): Swagger UI from the files BentoML's
package ships (``/static_content/``), started by a script of ours, with a strict
Content-Security-Policy; nothing is fetched from any other host (BentoML's own page loads
Google Tag Manager). Both routes are mounted by :mod:`serving.service` before BentoML's.

BentoML 1.4 generates the OpenAPI document from the service: its title is the service name,
its version ``"None"`` outside a Bento and its description BentoML's own README; the 400 answer
is documented as BentoML's ``InvalidArgument`` (the service answers a list of violations), the
request has no example (Swagger UI then builds one from the schema, which breaks the contract's
rules across fields), and the routes mounted beside the APIs (``GET /model``) are missing.
:func:`complete` fills these in; the gateway (:mod:`serving.gateway`) applies it to the
document BentoML answers, so the schemas themselves stay generated from the code.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from features.schema import CONTRACT_REVISION, CONTRACT_VERSION
from serving.gateway import is_public
from serving.schemas import ModelDetails

STATIC_DIR = Path(__file__).with_name("api_static")
#: The files of the page under ``/api/static/``, with their content types.
STATIC_FILES = {
    "api.js": "text/javascript; charset=utf-8",
    "api.css": "text/css; charset=utf-8",
}
#: The page's policy: its own scripts only (no inline script), Swagger UI's inline styles.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)

#: The contract's example patient (``shared/data-contract.md``): the published request example.
EXAMPLE_REQUEST = {
    "patients": [
        {
            "patient_id": "P0001",
            "age_years": 54,
            "disease_setting": "metastatic",
            "bone_metastasis_at_enrollment": False,
            "er_status": "positive",
            "oc_positive_percent": 0.061,
            "oc_measurements": [
                {"day": 0, "oc_positive_percent": 0.061},
                {"day": 90, "oc_positive_percent": 0.074},
            ],
        }
    ],
    "horizons_months": [12, 24, 36, 60],
}
DESCRIPTION = f"""Risk of a first bone metastasis in breast cancer, with death as a competing
event, from clinical covariates and circulating osteocalcin-positive cells (data contract
v{CONTRACT_VERSION}).

`POST /predict` answers the cumulative incidence of bone metastasis by each horizon for each
patient; `POST /explain` adds each patient's largest contributions to the risk score;
`GET /model` describes the version answering. Every answer names the registered version that
produced it (`model`, header `X-Model-Version`) and carries an `X-Request-ID`.

Bodies are `application/json` (415 otherwise). A request that breaks the contract is answered
400 with every violation found: `{{"error": ..., "detail": [{{"loc": [...], "msg": ...}}]}}`.
Each item names the `field`, the offending `value`, the `rule` broken and, for an unknown
field name, a `suggestion`. When the service runs with a token, every route but health,
readiness, this document and the clinician page needs `Authorization: Bearer <token>`
("Authorize" above).

For clinicians: [the risk page](./clinician). The served version's
[model card](./model/card) (Markdown).

Research software, not a medical device.
"""
VIOLATIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "ContractViolations",
    "description": "Every violation found in the request, each with its place in the body.",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "summary, e.g. '2 violation(s) ...'"},
        "detail": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {
                        "type": "array",
                        "description": "path in the body: keys and 0-based positions, e.g. "
                        '["patients", 0, "age_years"]',
                        "items": {
                            "anyOf": [{"type": "string"}, {"type": "integer"}],
                            "nullable": True,
                        },
                    },
                    "field": {
                        "type": "string",
                        "nullable": True,
                        "description": "the field (last name in loc)",
                    },
                    "value": {"description": "the offending value as sent (long ones cut)"},
                    "rule": {"type": "string", "description": "the rule broken"},
                    "msg": {"type": "string", "description": "the rule broken (as rule)"},
                    "suggestion": {
                        "type": "string",
                        "description": "for an unknown field name: the closest field",
                    },
                },
            },
        },
    },
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _version() -> str:
    try:
        return metadata.version("bonemet")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def complete(
    spec: dict[str, Any], examples: dict[str, Any] | None = None, secured: bool = False
) -> dict[str, Any]:
    """Complete BentoML's OpenAPI document of the service (in place); return it.

    Parameters
    ----------
    spec : dict
        The document BentoML generated.
    examples : dict, optional
        Real answers of the served model: ``"/predict"`` and ``"/explain"`` to
        :data:`EXAMPLE_REQUEST`, ``"/model"`` its ``GET /model``; each becomes its 200's
        example.
    secured : bool, default False
        Whether the service has a token: then every route that is not public is documented
        with the bearer scheme and its 401 (without a token nothing asks for one).

    Returns
    -------
    dict
        The same document with the project's title, version and description, the request
        example, the 400 answer as the service gives it (a list of violations), the gateway's
        answers (401 with a token, 408, 413, 415), ``GET /model``, the bearer scheme on every
        route that needs it, and no 500 (the service answers none by design).
    """
    examples = examples or {}
    spec["info"] = {
        "title": "bonemet: bone metastasis risk",
        "version": _version(),
        "description": DESCRIPTION,
    }
    unauthorized = _json("missing or invalid bearer token", _ref_error())
    errors = {
        "400": _json(
            f"the body breaks data contract v{CONTRACT_REVISION}",
            {"$ref": _ref("ContractViolations")},
        ),
        "408": _json("the body did not arrive in time", _ref_error()),
        "413": _json("the body is too large", _ref_error()),
        "415": _json("the body is not application/json, or is compressed", _ref_error()),
    }
    for route in ("/predict", "/explain"):
        operation = spec.get("paths", {}).get(route, {}).get("post")
        if operation is None:
            continue
        operation["responses"].pop("404", None)
        operation["responses"].update(errors)
        media = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if media is not None:
            media["example"] = EXAMPLE_REQUEST
            operation["requestBody"]["required"] = True
    details = ModelDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    components.update(details.pop("$defs", {}))
    components["ModelDetails"] = details
    components["ContractViolations"] = VIOLATIONS_SCHEMA
    components["Error"] = ERROR_SCHEMA
    if secured:
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    spec.setdefault("paths", {})["/model"] = {
        "get": {
            "tags": ["Service APIs"],
            "operationId": "bonemet__model",
            "description": "The registered version answering now: registry facts, training "
            "data digest, headline metrics, inputs and features, and (while the registry alias "
            "names a version that could not be loaded) that version and why.",
            "responses": {
                "200": _json("the version answering", {"$ref": _ref("ModelDetails")}),
            },
        }
    }
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code in [c for c in operation["responses"] if str(c).startswith("5")]:
                del operation["responses"][code]
            if secured and not is_public(path):
                operation["security"] = [{"bearer": []}]
                operation["responses"]["401"] = unauthorized
            example = examples.get(path)
            ok = operation["responses"].get("200", {}).get("content", {}).get("application/json")
            if example is not None and ok is not None and method in ("get", "post"):
                ok["example"] = example
    return spec


def api_routes(
    generated: Callable[[], dict[str, Any]],
    examples: Callable[[], dict[str, Any]],
    secured: bool = False,
) -> list[Any]:
    """The routes of the API page: ``GET /``, ``GET /docs.json``, ``GET /api/static/{name}``.

    Parameters
    ----------
    generated : callable
        BentoML's generated document of the service (read once per process).
    examples : callable
        The served model's real answers (:func:`complete`'s ``examples``), asked at each
        ``GET /docs.json``.
    secured : bool, default False
        Whether the service has a token (:func:`complete`).
    """
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    @functools.lru_cache(maxsize=1)
    def base() -> dict[str, Any]:  # as BentoML would answer it: JSON keys are strings
        return json.loads(json.dumps(generated()))

    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse(
            _page(), headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY}
        )

    async def document(request: Any) -> JSONResponse:
        return JSONResponse(complete(copy.deepcopy(base()), examples(), secured))

    async def static(request: Any) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(_static(name), media_type=STATIC_FILES[name])

    return [
        Route("/", page, methods=["GET"]),
        Route("/docs.json", document, methods=["GET"]),
        Route("/api/static/{name}", static, methods=["GET"]),
    ]


@functools.cache
def _page() -> str:
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")


@functools.cache
def _static(name: str) -> bytes:
    return (STATIC_DIR / name).read_bytes()


def _ref(name: str) -> str:
    return f"#/components/schemas/{name}"


def _ref_error() -> dict[str, str]:
    return {"$ref": _ref("Error")}
