"""The run's stack (issue 19, item 2): simplex weights on the families' out-of-fold predictions,
cross-fitted so that a fold's outcomes never enter its own predictions."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models.data import known_cohort
from training.fitting.stack import cross_fitted_stack, stack_weights
from training.models.competing import make_target

MONTHS = (12, 24, 36)


def members_of(seed: int = 0, n: int = 1500):
    """Outcomes with a known incidence, a good member (the truth) and two poor ones."""
    y, truth = known_cohort(n, seed)
    rng = np.random.default_rng(seed)
    good = np.column_stack([truth[h] for h in MONTHS])
    flat = np.broadcast_to(good.mean(axis=0), good.shape)  # no ranking at all
    noisy = np.clip(good * np.exp(rng.normal(0.0, 0.8, good.shape)), 1e-4, 0.999)
    cif = np.stack([flat, good, noisy], axis=1)  # (n, members, months)
    fold = np.arange(n) % 3
    rng.shuffle(fold)
    return cif, y, fold


def test_weights_are_on_the_simplex_and_favour_the_member_closest_to_the_truth():
    cif, y, _ = members_of()
    w = stack_weights(cif, y, MONTHS)
    assert w.shape == (3,)
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-9)
    assert int(np.argmax(w)) == 1 and w[1] > 0.6  # the true incidence carries the stack


def test_a_folds_stacked_predictions_do_not_change_with_its_own_outcomes():
    """Known answer: fold 0's outcomes rewritten (every patient a bone metastasis at day 30),
    fold 0's stacked predictions are the same to the last bit; the other folds' change
    (their weights were fitted on fold 0's rows, among others): the check can fail."""
    cif, y, fold = members_of(seed=3)
    before, weights_before, _ = cross_fitted_stack(cif, fold, y, MONTHS)
    changed = y.copy()
    rows = fold == 0
    changed[rows] = make_target(
        np.array(["bone_metastasis"] * int(rows.sum()), dtype=object), np.full(rows.sum(), 30.0)
    )
    after, weights_after, _ = cross_fitted_stack(cif, fold, changed, MONTHS)
    np.testing.assert_array_equal(after[rows], before[rows])
    np.testing.assert_array_equal(weights_after[0], weights_before[0])
    assert not np.allclose(weights_after[1], weights_before[1])
    assert not np.allclose(after[fold == 1], before[fold == 1])


def test_each_fold_is_the_weighted_sum_of_the_members_with_its_own_weights():
    cif, y, fold = members_of(seed=5)
    extra = cif[:, :, [1]] * 0.5  # any other horizon of the same rows
    stacked, weights, more = cross_fitted_stack(cif, fold, y, MONTHS, extra=extra)
    for k, w in enumerate(weights):
        assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-9)
        np.testing.assert_allclose(
            w, stack_weights(cif[fold != k], y[fold != k], MONTHS), rtol=0, atol=0
        )
        rows = fold == k
        np.testing.assert_allclose(stacked[rows], np.einsum("nmh,m->nh", cif[rows], w))
        np.testing.assert_allclose(more[rows], np.einsum("nmh,m->nh", extra[rows], w))
