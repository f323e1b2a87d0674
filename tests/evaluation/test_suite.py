"""What a split's evaluation computes: names, and one definition of the observed incidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.evaluation.cohorts import simulate
from training.evaluation.incidence import aalen_johansen
from training.evaluation.suite import HEADLINE, evaluate_split, point_metrics
from training.models.competing import DAYS_PER_MONTH


@pytest.fixture(scope="module")
def split():
    x_train, y_train, _ = simulate(500, seed=11)
    x, y, true_cif = simulate(400, seed=12)
    return y_train, y, x, {h: true_cif(h) for h in (12, 24, 36)}


def test_observed_incidence_is_aalen_johansen_in_the_metrics_and_the_subgroups(split):
    # One definition: observed_incidence_<h>m is the Aalen-Johansen estimate wherever it is
    # logged, and calibration-in-the-large is the mean prediction minus it (scikit-survival's
    # curve as the reference; observed_incidence sums the same terms directly: to rounding).
    y_train, y, x, cif = split
    rows = pd.DataFrame(
        {
            "disease_setting": np.where(x > 0, "metastatic", "early"),
            "menopausal_status": "post",
            "er_status": "positive",
        }
    )
    evaluation = evaluate_split(y_train, y, x, cif, rows, n_boot=0, seed=0)
    overall = evaluation.subgroups.query("variable == 'all'").set_index("metric")["value"]
    for h in cif:
        aj = aalen_johansen(y, h * DAYS_PER_MONTH)[0][0]
        assert evaluation.metrics[f"observed_incidence_{h}m"] == pytest.approx(aj, rel=1e-12)
        assert overall[f"observed_incidence_{h}m"] == pytest.approx(aj, rel=1e-12)
        assert evaluation.metrics[f"calibration_in_the_large_{h}m"] == pytest.approx(
            np.mean(cif[h]) - aj, abs=1e-14
        )


def test_point_metrics_names_every_headline_metric(split):
    y_train, y, x, cif = split
    names = set(point_metrics(y_train, y, x, cif))
    assert set(HEADLINE) <= names
    assert {"integrated_brier", "brier_headline", "ici_24m", "scaled_brier_36m"} <= names
