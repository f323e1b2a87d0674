"""Cohorts without competing deaths or without the marker, and families that cannot be fitted
(issue 9, point 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import Cohort
from training.fitting.data import TrainingData, competing_deaths
from training.fitting.family_run import FamilySkipped, SilentProgress, run_family_or_skip
from training.fitting.marker import has_marker_values
from training.models.bases import RSF_LIMITS
from training.models.catalog import FAMILIES
from training.models.cause_specific import CauseSpecificHazards
from training.models.competing import make_target


def _one_cause(n: int = 600, seed: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    t_event = rng.exponential(900 * np.exp(-0.7 * x[:, 0]))
    t_cens = rng.uniform(100, 2000, size=n)
    time = np.minimum(t_event, t_cens)
    event = np.where(time == t_event, "bone_metastasis", "censored")
    return x, make_target(event, time)


@pytest.mark.parametrize("base", ["coxph", "xgb_cox", "rsf"])
def test_without_deaths_the_incidence_is_one_minus_survival(base):
    X, y = _one_cause()
    model = CauseSpecificHazards(base=base, params={"n_estimators": 30} if base == "rsf" else {})
    model.fit(X, y)
    assert set(model.models_) == {1}  # no death model: its hazard is zero
    times = np.array([180.0, 365.0, 730.0])
    a_bm, a_death = model.cumulative_hazards(X[:5])
    assert np.all(a_death == 0)
    cif = model.predict_cumulative_incidence(X[:5], times)
    idx = np.searchsorted(model.grid_days_, times, side="right") - 1
    np.testing.assert_allclose(cif, 1 - np.exp(-a_bm[:, idx]), rtol=1e-10, atol=1e-12)


def test_few_deaths_are_censored_and_said():
    y = make_target(
        np.array(["death"] * 3 + ["bone_metastasis"] * 10 + ["censored"] * 7, dtype=object),
        np.arange(1.0, 21.0),
    )
    y_train, y_test, note = competing_deaths(y, y.copy())
    assert note is not None and "death hazard is taken as zero" in note and "1 - S(t)" in note
    assert not np.any(y_train["cause"] == 2) and not np.any(y_test["cause"] == 2)
    assert int(np.sum(y_train["cause"] == 0)) == 10  # the 3 deaths now count as censoring
    many = y.copy()
    many["cause"][:6] = 2
    same_train, same_test, none = competing_deaths(many, many)
    assert none is None and same_train is many


def test_a_cohort_without_any_marker_value():
    patients = pd.DataFrame(
        {"patient_id": ["a", "b"], "oc_positive_percent": [np.nan, np.nan]}
        | {c: [np.nan, np.nan] for c in ("oc_positive_events", "pbmc_events")}
    )
    assert not has_marker_values(Cohort(patients, None))
    draws = pd.DataFrame(
        {
            "patient_id": ["a"],
            "day": [90.0],
            "oc_positive_percent": [0.04],
            "oc_positive_events": [np.nan],
            "pbmc_events": [np.nan],
        }
    )
    assert has_marker_values(Cohort(patients, draws))


def test_a_family_that_cannot_be_fitted_is_skipped_with_its_reason(monkeypatch):
    from tests.models.data import training_rows
    from training.config import TrainConfig

    X, y, _ = training_rows(300, seed=4)
    # The forest's size bound is a real refusal of the family: make it refuse these data.
    monkeypatch.setitem(RSF_LIMITS, "max_bytes_per_cause", 1.0)
    config = TrainConfig(families=("rsf",), outer_folds=2, inner_folds=2, max_grid=1)
    half = len(X) // 2
    data = TrainingData(config, X.iloc[:half], X.iloc[half:], y[:half], y[half:], {}, 0)
    out = run_family_or_skip("rsf", data, SilentProgress())
    assert isinstance(out, FamilySkipped) and out.family == "rsf"
    assert "ValueError" in out.reason and "rsf" in out.reason
    assert "rsf" in FAMILIES  # nothing else changed
