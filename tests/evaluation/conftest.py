"""Fixtures of the evaluation tests."""

from __future__ import annotations

import pytest

from tests.evaluation.cohorts import simulate


@pytest.fixture(scope="module")
def cohort():
    return simulate(4000, seed=3)
