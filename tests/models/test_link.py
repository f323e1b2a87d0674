"""The one logit (training.models.link): scipy.special.logit of the clipped probability."""

from __future__ import annotations

import numpy as np

from training.models.link import P_EPS, logit


def test_logit_gives_the_numbers_of_the_three_copies_it_replaced():
    # Reference: the formula the three hand-written copies used before issue 21
    # (evaluation.inputs, models.cause_specific, artifact.intervals).
    p = np.concatenate([[0.0, 1e-9, P_EPS, 0.5, 1 - P_EPS, 1.0], np.linspace(0.001, 0.999, 997)])
    q = np.clip(p, P_EPS, 1 - P_EPS)
    np.testing.assert_allclose(logit(p), np.log(q) - np.log1p(-q), rtol=1e-12, atol=1e-15)
    assert logit(0.0) == logit(P_EPS) and logit(1.0) == logit(1 - P_EPS)
    assert np.isfinite(logit(1.0)) and np.isnan(logit(np.nan))


def test_every_module_uses_the_one_logit():
    from training.artifact import intervals
    from training.evaluation import calibration, inputs
    from training.models import cause_specific

    for module in (intervals, calibration, inputs, cause_specific):
        assert module.logit is logit, module.__name__
