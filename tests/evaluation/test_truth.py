"""Agreement of predictions with a known true risk.

Each test names its reference: a hand calculation worked out in the comment, scikit-survival,
scikit-learn or scipy, or a simulation whose true cumulative incidence is analytic.
"""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation.truth import truth_agreement


def test_truth_agreement_known_answers():
    from scipy.special import expit, logit

    truth = np.linspace(0.01, 0.6, 400)
    perfect = truth_agreement(truth, truth)
    assert perfect["mae"] == 0.0
    assert perfect["calibration_slope"] == pytest.approx(1.0, abs=1e-8)
    assert perfect["calibration_intercept"] == pytest.approx(0.0, abs=1e-8)
    # Predictions twice as spread on the logit scale: slope 1/2; shifted: intercept -0.3.
    spread = expit(2.0 * logit(truth) + 0.6)
    got = truth_agreement(spread, truth)
    assert got["calibration_slope"] == pytest.approx(0.5, abs=1e-8)
    assert got["calibration_intercept"] == pytest.approx(-0.3, abs=1e-8)
    assert got["mae"] == pytest.approx(np.mean(np.abs(spread - truth)))
    with pytest.raises(ValueError, match="truth must be probabilities in \\[0, 1\\]"):
        truth_agreement(truth, truth + 1.0)
    with pytest.raises(ValueError, match="needs predictions that vary"):
        truth_agreement(np.full(400, 0.1), truth)
