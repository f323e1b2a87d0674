"""Families in worker processes: slow ones dispatched first, results in the configured order,
the same as in one process."""

from __future__ import annotations

import numpy as np
import pytest

from features.contract import validate_cohort
from features.simulate import simulate_cohort
from training.config import TrainConfig
from training.fitting.data import prepare_training_data
from training.fitting.family_run import SilentProgress, family_outcomes


@pytest.mark.slow
# A fold's clinical-only Cox fit (700 patients, 2 x 2 folds) may stop at sksurv's iteration
# limit; this test is about order and equality of the parallel run, not convergence.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_parallel_families_come_in_config_order_and_equal_the_serial_run():
    sim = simulate_cohort(700, seed=5)
    cohort = validate_cohort(sim.patients, sim.measurements)
    families = ("cox_ridge", "rsf", "logistic_ipcw")  # rsf is dispatched first
    common = dict(families=families, max_grid=1, n_bootstrap=0, outer_folds=2, inner_folds=2)
    serial = list(
        family_outcomes(
            prepare_training_data(cohort, TrainConfig(n_jobs=1, **common)), SilentProgress()
        )
    )
    parallel = list(
        family_outcomes(
            prepare_training_data(cohort, TrainConfig(n_jobs=2, **common)), SilentProgress()
        )
    )
    assert [o.family for o in parallel] == list(families)
    for a, b in zip(serial, parallel, strict=True):
        assert a.family == b.family
        assert a.test.metrics.keys() == b.test.metrics.keys()
        for k, v in a.test.metrics.items():
            assert np.isclose(v, b.test.metrics[k], rtol=0, atol=1e-9, equal_nan=True), k
