"""Reading what the service publishes: its OpenAPI schemas as JSON Schema, its metrics' labels."""

from __future__ import annotations

from typing import Any


def as_draft4(schema: Any) -> Any:
    """An OpenAPI 3.0 schema as plain JSON Schema draft 4 (``nullable`` spelled out)."""
    if isinstance(schema, list):
        return [as_draft4(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: as_draft4(v) for k, v in schema.items() if k != "nullable"}
    return {"anyOf": [out, {"type": "null"}]} if schema.get("nullable") else out


def endpoint_labels(text: str) -> set[str]:
    return {
        part.split('"')[1]
        for line in text.splitlines()
        if not line.startswith("#")
        for part in line.split("endpoint=")[1:]
    }
