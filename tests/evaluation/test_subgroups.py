"""Metrics within subgroup levels.

Each test names its reference: a hand calculation worked out in the comment, scikit-survival,
scikit-learn or scipy, or a simulation whose true cumulative incidence is analytic.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.evaluation.cohorts import simulate
from training.evaluation.accuracy import brier_score
from training.evaluation.concordance import fast_harrell_c, harrell_c
from training.evaluation.subgroups import subgroup_metrics


def test_subgroup_metrics_long_format_and_too_few_events():
    x, y, true_cif = simulate(600, seed=8)
    p = {12: true_cif(12), 24: true_cif(24)}
    arm = np.where(np.arange(600) % 2 == 0, "even", "odd")
    few = np.where(np.arange(600) < 8, "rare", "common").astype(object)
    few[y["cause"] == 1] = np.where(np.arange(np.sum(y["cause"] == 1)) < 3, "rare", "common")
    out = subgroup_metrics(y, x, p, {"arm": arm, "few": few})
    assert list(out.columns) == ["variable", "level", "n", "events", "metric", "value", "note"]
    even = out[(out["variable"] == "arm") & (out["level"] == "even")].set_index("metric")
    mask = arm == "even"
    assert even.loc["harrell_c", "value"] == pytest.approx(fast_harrell_c(y[mask], x[mask]))
    assert even.loc["brier_24m", "value"] == pytest.approx(brier_score(y[mask], p[24][mask], 24))
    assert even.loc["harrell_c", "n"] == 300
    rare = out[(out["variable"] == "few") & (out["level"] == "rare")]
    assert rare["events"].iloc[0] == 3 and rare["value"].isna().all()
    assert (rare["note"] == "fewer than 5 bone metastasis events").all()
    overall = out[out["variable"] == "all"].set_index("metric")
    assert overall.loc["harrell_c", "value"] == pytest.approx(harrell_c(y, x))
