"""The published API document (``GET /docs.json``): BentoML's generated spec, completed.

BentoML 1.4 generates the OpenAPI document from the service: its title is the service name,
its version ``"None"`` outside a Bento and its description BentoML's own README; the 400 answer
is documented as BentoML's ``InvalidArgument`` (the service answers a list of violations), the
request has no example (Swagger UI then builds one from the schema, which breaks the contract's
rules across fields), and the routes mounted beside the APIs (``GET /model``) are missing.
:func:`complete` fills these in; the gateway (:mod:`serving.gateway`) applies it to the
document BentoML answers, so the schemas themselves stay generated from the code.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from features.schema import CONTRACT_VERSION
from serving.schemas import ModelDetails

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
When the service runs with a token, `/predict`, `/explain` and `/model` need
`Authorization: Bearer <token>`.
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
                    "msg": {"type": "string", "description": "the rule broken"},
                    "type": {"type": "string", "description": "kind of violation"},
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


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    """Complete BentoML's OpenAPI document of the service (in place); return it.

    Parameters
    ----------
    spec : dict
        The document BentoML generated (``/docs.json``).

    Returns
    -------
    dict
        The same document with the project's title, version and description, the request
        example, the 400 answer as the service gives it (a list of violations), the gateway's
        answers (401, 408, 413, 415) and ``GET /model``.
    """
    spec["info"] = {
        "title": "bonemet: bone metastasis risk",
        "version": _version(),
        "description": DESCRIPTION,
    }
    errors = {
        "400": _json("the body breaks the data contract", {"$ref": _ref("ContractViolations")}),
        "401": _json("missing or invalid bearer token (when a token is set)", _ref_error()),
        "408": _json("the body did not arrive in time", _ref_error()),
        "413": _json("the body is too large", _ref_error()),
        "415": _json("the body is not application/json", _ref_error()),
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
    spec.setdefault("paths", {})["/model"] = {
        "get": {
            "tags": ["Service APIs"],
            "operationId": "bonemet__model",
            "description": "The registered version answering now: registry facts, training "
            "data digest, headline metrics, inputs and features, and (while the registry alias "
            "names a version that could not be loaded) that version and why.",
            "responses": {
                "200": _json("the version answering", {"$ref": _ref("ModelDetails")}),
                "401": errors["401"],
            },
        }
    }
    return spec


def _ref(name: str) -> str:
    return f"#/components/schemas/{name}"


def _ref_error() -> dict[str, str]:
    return {"$ref": _ref("Error")}
