"""Fixtures of the model tests."""

from __future__ import annotations

import pytest

from tests.models.data import competing_data


@pytest.fixture(scope="module")
def data():
    """1,500 simulated patients (seed 0): x0 drives bone metastasis, x1 death, x2 nothing."""
    return competing_data(1500, seed=0)
