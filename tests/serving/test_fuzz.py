"""Fuzz the service's own OpenAPI schema: no generated request may produce a server error.

Schemathesis generates requests from ``/docs.json`` of a real ``bonemet serve`` on loopback:
bodies that break the schema in every way it can derive (negative mode: wrong types, missing
and unknown fields, out-of-range values), a bounded number of cases per operation,
derandomized so a failure reproduces. Every answer must be below 500.

Positive mode (bodies that follow the schema) currently stops with schemathesis'
``UnsupportedSchema`` on this schema inside ``@given``; schema-valid bodies are covered by the
hand-written cases of test_service.py until that is resolved (noted on issue 4).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.slow
CASES = 60


@pytest.mark.parametrize("path", ["/predict", "/explain"])
@pytest.mark.parametrize("mode", ["negative"])
def test_no_generated_request_gets_a_server_error(server, path, mode):
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{server}/docs.json")
    operation = schema[path]["POST"]
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
    @settings(
        max_examples=CASES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:
        response = case.call(base_url=server, timeout=30)
        statuses.append(response.status_code)
        assert response.status_code < 500, (case.body, response.text[:500])

    run()
    assert statuses, "no case was generated"
    assert max(statuses) < 500
