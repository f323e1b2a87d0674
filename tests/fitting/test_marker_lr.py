"""The marker's likelihood-ratio test: unpenalised nested Cox fits (issue 21, item 5)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from features.contract import validate_cohort
from features.simulate import simulate_cohort
from features.transformers import make_feature_pipeline
from training.config import TrainConfig
from training.fitting.data import prepare_training_data
from training.fitting.marker import MIN_PATIENTS_PER_LEVEL, marker_lr_test


def _training_rows(n: int, seed: int):
    sim = simulate_cohort(n, seed)
    data = prepare_training_data(validate_cohort(sim.patients, sim.measurements), TrainConfig())
    return data.X_train, data.y_train


def test_the_statistic_is_the_one_of_statsmodels_unpenalised_nested_fits():
    from statsmodels.duration.hazard_regression import PHReg
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    X, y = _training_rows(600, 7)  # the session's small cohort: a rare level to leave out
    event = y["cause"] == 1
    full = make_feature_pipeline(include_marker=True).fit(X)
    names = list(full.get_feature_names_out())
    clinical = set(make_feature_pipeline(include_marker=False).fit(X).get_feature_names_out())
    Xt = full.transform(X)

    def usable(col):  # the documented rule: binary levels need 5 patients and an event each
        levels = np.unique(col)
        return levels.size != 2 or all(
            (col == v).sum() >= MIN_PATIENTS_PER_LEVEL and event[col == v].any() for v in levels
        )

    keep = [j for j in range(Xt.shape[1]) if usable(Xt[:, j])]
    assert len(keep) < Xt.shape[1]  # this cohort has a level too rare to estimate

    def llf(columns):
        model = PHReg(y["time"], Xt[:, columns], status=event.astype(float), ties="breslow")
        with warnings.catch_warnings():
            # The subtype columns are nearly collinear with the receptor statuses: the
            # likelihood is flat along that direction and statsmodels' step criterion
            # complains; the score below says the maximum is reached.
            warnings.simplefilter("ignore", ConvergenceWarning)
            fit = model.fit(maxiter=200)
        assert np.abs(model.score(fit.params)).max() < 1e-6
        return fit.llf

    ll_full = llf(keep)
    ll_clinical = llf([j for j in keep if names[j] in clinical])
    df = len(keep) - len([j for j in keep if names[j] in clinical])
    got = marker_lr_test(X, y)
    assert got["marker_lr_df"] == df == 2
    assert got["marker_lr_statistic"] == pytest.approx(2 * (ll_full - ll_clinical), rel=1e-6)
    assert got["marker_lr_p_value"] == pytest.approx(
        stats.chi2.sf(got["marker_lr_statistic"], df), rel=1e-6
    )

