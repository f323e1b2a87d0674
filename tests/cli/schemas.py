"""The documented JSON schemas of the commands' ``--json`` output (``docs/schemas/``)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def assert_schema(document: dict, command: str) -> None:
    """``document`` is valid under ``docs/schemas/<command>.schema.json``."""
    schema = json.loads((SCHEMAS / f"{command}.schema.json").read_text())
    validator = jsonschema_rs.Draft7Validator(schema)
    errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == [], errors
