"""Every eligible patient trains the registered model (issue 19): the final fit sees them all,
each patient is evaluated by an out-of-fold prediction, and a held-out split is an option."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from features.contract import validate_cohort
from features.simulate import simulate_cohort
from training.config import ConfigError, TrainConfig, load_config
from training.fitting import family_run
from training.fitting.data import prepare_training_data, time_to_event_rows


@pytest.fixture(scope="module")
def cohort():
    sim = simulate_cohort(400, seed=11)
    return validate_cohort(sim.patients, sim.measurements)


def test_the_registered_model_is_fitted_on_every_eligible_patient(cohort, monkeypatch):
    rows, _ = time_to_event_rows(cohort)
    config = TrainConfig(
        families=("cox_ridge",), max_grid=1, outer_folds=2, inner_folds=2, n_bootstrap=0, n_jobs=1
    )
    data = prepare_training_data(cohort, config)
    assert data.design == "nested_cv_oof" and data.X_test is None and data.y_test is None
    assert len(data.X_train) == len(rows) and set(data.patients_y) == {"train"}
    fitted: list[tuple[int, bool]] = []
    deaths: list[bool] = []
    real = family_run.fit_pipeline

    def spy(make, params, X, y, include_marker, *, flexible=False, death=True):
        fitted.append((len(X), include_marker))
        deaths.append(death)
        return real(make, params, X, y, include_marker, flexible=flexible, death=death)

    monkeypatch.setattr(family_run, "fit_pipeline", spy)
    out = family_run.run_family("cox_ridge", data, family_run.SilentProgress())
    # Two outer folds (with the marker and clinical-only) on part of the patients, then the
    # registered model on all of them.
    assert fitted[-1] == (len(rows), True)
    assert len(fitted) == 5 and all(n < len(rows) for n, _ in fitted[:-1])
    # The folds' fits are read for bone metastasis only; the registered model answers death too.
    assert deaths == [False, False, False, False, True]
    # Every patient is evaluated once, out of fold; the selection's losses cover them all.
    assert out.test_risk.shape == (len(rows),) and np.isfinite(out.test_risk).all()
    assert out.oof_loss.shape == (len(rows),) and np.isfinite(out.oof_loss).all()
    assert np.mean(out.oof_loss) == pytest.approx(out.cv["cv_brier_headline_mean"], abs=1e-3)
    assert set(out.increments) >= {"harrell_c", "uno_c"}  # paired on the out-of-fold rows


def test_a_held_out_split_is_an_option(cohort):
    rows, _ = time_to_event_rows(cohort)
    held = prepare_training_data(cohort, TrainConfig(holdout=0.25))
    assert held.design == "holdout"
    assert len(held.X_train) + len(held.X_test) == len(rows)
    assert abs(len(held.X_test) - 0.25 * len(rows)) <= 1
    assert load_config(holdout=0.3).holdout == 0.3
    for bad in (0.7, 0.01, -0.1):
        with pytest.raises(ConfigError, match="holdout must be 0"):
            replace(TrainConfig(), holdout=bad)
    with pytest.raises(ConfigError, match="cv_repeats must be 1-10"):
        load_config(cv_repeats=0)
