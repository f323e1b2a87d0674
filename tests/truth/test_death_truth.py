"""Every family's ``death_probability`` against the simulator's true incidence of death.

A 3,000-patient simulated cohort (fixed seed) is split as ``bonemet train`` splits it and each
family is fitted with its default configuration through the real feature pipeline. The
predicted cumulative incidence of death without bone metastasis on the held-out patients is
compared with ``truth.csv``'s ``cif_death_{24,36}m`` (the true incidence given the covariates
and the observed enrollment draw): the mean overall and by disease setting (death competes
most in metastatic disease), and the correlation across patients.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from features.contract import validate_cohort
from features.simulate import simulate_cohort, truth_columns
from features.transformers import make_feature_pipeline
from training.artifact.risk_model import predict_competing
from training.config import TrainConfig
from training.fitting.data import split, time_to_event_rows
from training.models.catalog import FAMILIES

pytestmark = pytest.mark.slow

MONTHS = [24.0, 36.0]


@pytest.fixture(scope="module")
def cohort():
    sim = simulate_cohort(3000, seed=2024)
    rows, _ = time_to_event_rows(validate_cohort(sim.patients, sim.measurements))
    X_train, X_test, y_train, _ = split(rows, TrainConfig(holdout=0.25))
    truth = sim.truth.set_index("patient_id").loc[X_test["patient_id"].astype(str)]
    columns = [c for c in truth_columns("", "death") if int(c.split("_")[-1][:-1]) in MONTHS]
    return {
        "train": (X_train, y_train),
        "test": X_test,
        "truth": truth[columns].to_numpy(),
        "metastatic": (X_test["disease_setting"] == "metastatic").to_numpy(),
    }


@pytest.mark.parametrize("family", list(FAMILIES))
def test_predicted_death_matches_the_simulators_truth(cohort, family):
    X_train, y_train = cohort["train"]
    pipeline = Pipeline(
        [("features", make_feature_pipeline()), ("model", FAMILIES[family].make({}))]
    ).fit(X_train, y_train)
    _, bm, death = predict_competing(pipeline, cohort["test"], MONTHS)
    truth = cohort["truth"]
    assert death is not None and np.all(np.isfinite(truth))
    assert np.all(bm + death <= 1 + 1e-12) and np.all(np.diff(death, axis=1) >= 0)
    met = cohort["metastatic"]
    gap = {
        name: death[rows].mean(axis=0) - truth[rows].mean(axis=0)
        for name, rows in (("all", np.ones_like(met)), ("metastatic", met), ("early", ~met))
    }
    # Measured (24 / 36 months; true mean 0.100 / 0.131 overall, 0.397 / 0.498 in the 136
    # metastatic test patients, 0.019 / 0.030 in early disease): every family within 0.01
    # overall; in metastatic disease Cox, XGBoost Cox and the IPCW classifiers within 0.045,
    # the tree ensembles rsf and gbsa 0.065-0.077 low (their leaves shrink the small
    # metastatic group towards the cohort), and 0.017-0.030 high in early disease.
    trees = family in ("rsf", "gbsa")
    assert np.all(np.abs(gap["all"]) < 0.015), (family, gap)
    assert np.all(np.abs(gap["metastatic"]) < (0.09 if trees else 0.055)), (family, gap)
    assert np.all(np.abs(gap["early"]) < (0.04 if trees else 0.01)), (family, gap)
    # Patient level: the predictions follow the truth across patients (measured 0.945-0.983).
    r = np.corrcoef(death[:, -1], truth[:, -1])[0, 1]
    assert r > 0.9, (family, r)
