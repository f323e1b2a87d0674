"""Large cohorts (issue 15.7): the search's stratified subsample and the bounded bootstrap.

The bounds change nothing below them (the demo and every test cohort train as before) and, above
them, keep every metric reported: the search ranks configurations on a subsample, every model
is fitted on all patients, the intervals come from rescaled smaller resamples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import validate_cohort
from features.simulate import simulate_cohort
from training.config import ConfigError, TrainConfig, load_config
from training.fitting.data import prepare_training_data, time_to_event_rows
from training.fitting.family_run import SilentProgress, run_family
from training.fitting.landmarks import landmark_rows
from training.fitting.search import search, strata, subsample
from training.models.catalog import FAMILIES


@pytest.fixture(scope="module")
def cohort():
    sim = simulate_cohort(1300, seed=5)
    return validate_cohort(sim.patients, sim.measurements)


def test_subsample_is_stratified_seeded_and_a_no_op_below_the_bound(cohort):
    rows, _ = time_to_event_rows(cohort)
    y = np.arange(len(rows))  # stands for the target: it must follow its rows
    sub, y_sub = subsample(rows, y, 300, seed=3)
    assert len(sub) == 300 and sub["patient_id"].is_unique
    np.testing.assert_array_equal(rows.index.get_indexer(sub.index), y_sub)
    assert list(y_sub) == sorted(y_sub)  # rows keep their order
    # Proportional allocation: each outcome-by-setting stratum keeps its share (+-1 patient).
    full = pd.Series(strata(rows)).value_counts(normalize=True)
    part = pd.Series(strata(sub)).value_counts()
    for stratum, share in full.items():
        assert abs(part.get(stratum, 0) - share * 300) <= 1.5
    again, _ = subsample(rows, y, 300, seed=3)
    assert again.index.equals(sub.index)
    assert not subsample(rows, y, 300, seed=4)[0].index.equals(sub.index)
    same, y_same = subsample(rows, y, len(rows), seed=3)
    assert same is rows and y_same is y
    with pytest.raises(ValueError, match="at least 2"):
        subsample(rows, y, 1, seed=3)


def test_subsample_of_landmark_rows_keeps_whole_patients(cohort):
    rows, _ = time_to_event_rows(cohort)
    stacked, y = landmark_rows(rows, cohort.measurements, (0.0, 91.0, 183.0))
    sub, y_sub = subsample(stacked, y, 200, seed=1)
    chosen = set(sub["patient_id"])
    assert len(chosen) == 200
    expected = stacked["patient_id"].isin(chosen)
    assert len(sub) == int(expected.sum()) and len(y_sub) == len(sub)


def test_search_with_a_bound_ranks_on_the_subsample_only(cohort):
    data = prepare_training_data(cohort, TrainConfig(families=("cox_ridge",)))
    family = FAMILIES["cox_ridge"]
    X, y = data.X_train, data.y_train
    kwargs = dict(include_marker=True, n_folds=3, seed=5)
    bounded = search(family.make, family.grid[:2], X, y, max_patients=250, **kwargs)
    X_sub, y_sub = subsample(X, y, 250, seed=5)
    direct = search(family.make, family.grid[:2], X_sub, y_sub, **kwargs)
    assert bounded.trials == direct.trials
    unbounded = search(family.make, family.grid[:2], X, y, max_patients=len(X), **kwargs)
    assert unbounded.trials == search(family.make, family.grid[:2], X, y, **kwargs).trials


@pytest.mark.slow
def test_a_family_run_above_the_bounds_reports_every_metric(cohort):
    # Same family and cohort with and without the bounds: the same metrics are reported
    # (intervals included, from 250-row resamples), the final model is fitted on every
    # training patient, and the notes say what was bounded.
    base = TrainConfig(families=("cox_ridge",), max_grid=2, n_bootstrap=40, n_jobs=1)
    bounded_config = TrainConfig(
        families=("cox_ridge",),
        max_grid=2,
        n_bootstrap=40,
        n_jobs=1,
        search_max_patients=300,
        bootstrap_max_patients=200,
    )
    free = run_family("cox_ridge", prepare_training_data(cohort, base), SilentProgress())
    data = prepare_training_data(cohort, bounded_config)
    bounded = run_family("cox_ridge", data, SilentProgress())
    assert set(bounded.test.flat("test_")) == set(free.test.flat("test_"))
    assert set(bounded.cv) == set(free.cv)
    assert set(bounded.increments) == set(free.increments)
    assert all(iv.resample_size == 200 for iv in bounded.test.intervals.values())
    assert all(iv.resample_size is None for iv in free.test.intervals.values())
    # Point estimates on the test split do not depend on the bootstrap.
    assert (
        bounded.increments["harrell_c"].estimate
        == pytest.approx(free.increments["harrell_c"].estimate, abs=1e-12)
        or bounded.params != free.params
    )
    assert bounded.model.pipeline[-1].n_features_in_ > 0
    assert any("stratified random subsample of 300" in n for n in data.notes)
    assert any("draw 200 of the" in n and "m-out-of-n" in n for n in data.notes)
    assert not any(
        "subsample" in n or "m-out-of-n" in n for n in prepare_training_data(cohort, base).notes
    )


def test_bounds_are_checked_and_travel_through_the_config(monkeypatch):
    for name in ("search_max_patients", "bootstrap_max_patients"):
        with pytest.raises(ConfigError, match=f"{name} must be 0 \\(no bound\\) or 200-"):
            TrainConfig(**{name: 50})
        assert getattr(TrainConfig(**{name: 0}), name) == 0
    monkeypatch.setenv("BONEMET_SEARCH_MAX_PATIENTS", "5000")
    config = load_config(bootstrap_max_patients=1000)
    assert (config.search_max_patients, config.bootstrap_max_patients) == (5000, 1000)
    assert config.to_params()["search_max_patients"] == 5000


@pytest.mark.parametrize(("family_name", "landmarks"), [("cox_spline", ()), ("xgb_cox", (0, 183))])
def test_search_fitting_features_once_per_fold_scores_as_whole_pipelines(
    cohort, family_name, landmarks
):
    # Reference: each configuration scored by a whole pipeline fitted on the fold
    # (fit_pipeline, predict_pipeline), as the search did before it fitted the feature
    # pipeline once per fold: the same scores, exactly.
    from training.artifact.risk_model import predict_pipeline
    from training.evaluation.suite import SELECTION_HORIZONS_MONTHS, mean_brier
    from training.fitting.search import fit_pipeline, folds

    data = prepare_training_data(cohort, TrainConfig(landmark_days=landmarks))
    family = FAMILIES[family_name]
    X, y, grid = data.X_train, data.y_train, family.grid[:2]
    found = search(family.make, grid, X, y, include_marker=True, n_folds=3, seed=7,
                   flexible=family.flexible)
    for trial, params in zip(found.trials, grid, strict=True):
        expected = []
        for tr, te in folds(X, 3, 7):
            pipe = fit_pipeline(family.make, params, X.iloc[tr], y[tr], True,
                                flexible=family.flexible)
            _, cif = predict_pipeline(pipe, X.iloc[te], SELECTION_HORIZONS_MONTHS)
            expected.append(mean_brier(y[te], dict(zip(SELECTION_HORIZONS_MONTHS, cif.T))))
        assert trial.scores == tuple(expected)
