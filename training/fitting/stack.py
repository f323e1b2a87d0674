"""The run's stack: the fitted families combined on their out-of-fold predictions, no new fit.

After every family of a ``bonemet train`` run is fitted, their out-of-fold predicted
cumulative incidences of bone metastasis at 12, 24 and 36 months (as each version serves
them: cross-fitted recalibrated where the version is recalibrated) are combined with simplex
weights (non-negative, summing to 1) minimising the IPCW Brier score summed over those
horizons (:func:`training.models.ensemble.brier_weights`; van der Laan, Polley and Hubbard
2007, "Super learner").

**Honest out-of-fold predictions (cross-fitted).** The stack's prediction for the patients of
outer fold ``k`` uses weights fitted on the other folds' out-of-fold rows only (their
predictions, outcomes and censoring weights), in the same folds as the families: its per-patient
losses pair with theirs, and the selection compares them like any family's. A fold's outcomes
never enter its own weights. (The members' out-of-fold predictions of the other folds come
from fold models that saw fold ``k``; that second-order reuse, through a handful of weights,
is the usual cross-fitted stacking and is not removed.)

**The registered version** (:class:`training.artifact.stacked.StackedRiskModel`) combines the
members' registered (all-patient) models with the weights fitted on every out-of-fold row of
every repeat. It is evaluated with the same suite, intervals and gates as any family (on its
cross-fitted out-of-fold predictions; on the held-out split when there is one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.schema import HEADLINE_HORIZON_MONTHS
from training.artifact.stacked import stacked_risk_model
from training.evaluation.recalibration import brier_terms
from training.evaluation.suite import cv_summary, evaluate_split, point_metrics
from training.fitting.data import TrainingData
from training.fitting.family_run import FamilyOutcome, FamilySkipped, tertile_groups
from training.models.competing import DAYS_PER_MONTH
from training.models.ensemble import brier_weights
from training.models.names import STACK_FAMILY

__all__ = ["cross_fitted_stack", "stack_or_skip", "stack_outcome", "stack_weights"]


def stack_weights(cif: np.ndarray, y: np.ndarray, months: Sequence[float]) -> np.ndarray:
    """Simplex weights of ``(n, members, months)`` incidences on outcomes ``y`` (censoring
    weights estimated on ``y``)."""
    return brier_weights(cif, y, [float(m) * DAYS_PER_MONTH for m in months])


def cross_fitted_stack(
    cif: np.ndarray, fold: np.ndarray, y: np.ndarray, months: Sequence[float],
    extra: np.ndarray | None = None,
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray | None]:  # fmt: skip
    """The stack's cross-fitted out-of-fold incidences of one repeat.

    ``cif``: ``(n, members, months)`` the members' out-of-fold incidences; ``fold``: ``(n,)``
    outer-fold index. For each fold ``k`` the weights are fitted on the rows of the other
    folds only and applied to fold ``k``'s rows. ``extra``: ``(n, members, horizons)`` other
    incidences of the same rows combined with the same fold weights (every training
    horizon).

    Returns
    -------
    stacked : numpy.ndarray
        ``(n, months)``.
    weights : list of numpy.ndarray
        The weights of each fold, in the order of ``numpy.unique(fold)``.
    stacked_extra : numpy.ndarray or None
        ``(n, horizons)`` when ``extra`` is given.
    """
    cif = np.asarray(cif, dtype=float)
    fold = np.asarray(fold)
    out = np.full((cif.shape[0], cif.shape[2]), np.nan)
    more = None if extra is None else np.full((cif.shape[0], extra.shape[2]), np.nan)
    weights = []
    for k in np.unique(fold[fold >= 0]):
        scored, others = fold == k, (fold >= 0) & (fold != k)
        w = stack_weights(cif[others], y[others], months)
        weights.append(w)
        out[scored] = np.einsum("nmh,m->nh", cif[scored], w)
        if extra is not None:
            more[scored] = np.einsum("nmh,m->nh", extra[scored], w)
    return np.clip(out, 0.0, 1.0), weights, None if more is None else np.clip(more, 0.0, 1.0)


def _importance(members: Sequence[FamilyOutcome], weights: np.ndarray) -> pd.Series:
    """Each engineered feature's share of importance, averaged over the members with the
    stack's weights (each member's absolute importances normalised to sum 1 first: their
    scales differ)."""
    total = pd.Series(dtype=float)
    for o, w in zip(members, weights, strict=True):
        imp = o.importance.abs().astype(float)
        if imp.sum() > 0:
            total = total.add(w * imp / imp.sum(), fill_value=0.0)
    return total.sort_values(ascending=False).rename("weighted share")


def stack_outcome(
    outcomes: Sequence[FamilyOutcome], data: TrainingData, min_weight: float = 1e-3
) -> FamilyOutcome | None:
    """The run's stack as a candidate like any family (module docstring); None with fewer
    than two families that have out-of-fold predictions.

    Its ``oof_loss`` are the per-row Brier losses of its cross-fitted out-of-fold
    predictions at 12, 24 and 36 months, averaged over the repeats (paired with the
    families'); ``cv`` holds its fold metrics' means and sds and ``stack_weight_<family>``
    for every family; ``test`` the evaluation suite on its cross-fitted out-of-fold predictions
    (first repeat) or on the held-out split.
    """
    members = [o for o in outcomes if o.oof is not None]
    if len(members) < 2:
        return None
    config = data.config
    y = data.y_train
    first = members[0].oof
    months, horizons = first.months, first.horizons
    fold = first.fold
    if any(not np.array_equal(o.oof.fold, fold) for o in members):
        raise ValueError("the families' out-of-fold predictions are not in the same folds")
    # (repeats, n, members, months) and the first repeat at every horizon.
    served = np.stack([o.oof.served for o in members], axis=2)
    every = np.stack([o.oof.cif for o in members], axis=1)
    repeats = served.shape[0]
    head = list(horizons).index(HEADLINE_HORIZON_MONTHS)
    losses = np.zeros(len(y))
    fold_metrics = []
    oof_cif = None
    for r in range(repeats):
        stacked, _, more = cross_fitted_stack(
            served[r], fold[r], y, months, extra=every if r == 0 else None
        )
        if r == 0:
            oof_cif = more
        for k in np.unique(fold[r][fold[r] >= 0]):
            te, tr = fold[r] == k, (fold[r] >= 0) & (fold[r] != k)
            losses[te] += brier_terms(y[te], stacked[te], months)
            cif = (
                {h: more[te, j] for j, h in enumerate(horizons)}
                if r == 0
                else {h: stacked[te, j] for j, h in enumerate(months)}
            )
            fold_metrics.append(point_metrics(y[tr], y[te], cif[HEADLINE_HORIZON_MONTHS], cif))
    losses /= repeats
    pooled_y = np.concatenate([y] * repeats)
    weights = stack_weights(served.reshape(-1, *served.shape[2:]), pooled_y, months)
    model = stacked_risk_model([o.model for o in members], weights, data.X_train, min_weight)
    X_eval, y_eval = data.evaluation_rows()
    if data.held_out:
        risk, cif_eval = model.predict_arrays(X_eval, horizons)
        cif = {h: cif_eval[:, j] for j, h in enumerate(horizons)}
        groups = model.risk_group(risk)
    else:
        risk = oof_cif[:, head]
        cif = {h: oof_cif[:, j] for j, h in enumerate(horizons)}
        groups = tertile_groups(risk)
    test = evaluate_split(
        y, y_eval, risk, cif, X_eval, n_boot=config.n_bootstrap, seed=config.seed,
        max_resample=config.bootstrap_max_patients or None,
    )  # fmt: skip
    cv = cv_summary(fold_metrics)
    cv.update({f"stack_weight_{o.family}": float(w) for o, w in zip(members, weights, strict=True)})
    cv["recalibration_applied"] = 0.0
    return FamilyOutcome(
        family=STACK_FAMILY,
        model=model,
        params={
            "members": ",".join(model.member_families),
            "weights": ",".join(f"{w:.4f}" for w in model.weights),
        },  # fmt: skip
        cv=cv,
        fold_metrics=fold_metrics,
        trials=(),
        test=test,
        clinical_test={},
        increments={},
        clinical_auc=None,
        importance=_importance(members, weights),
        test_risk=risk,
        oof_loss=losses,
        test_groups=groups,
    )


def stack_or_skip(
    outcomes: Sequence[FamilyOutcome], data: TrainingData
) -> FamilyOutcome | FamilySkipped | None:
    """:func:`stack_outcome`, or why the stack could not be built (the families stand)."""
    try:
        return stack_outcome(outcomes, data)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as err:
        return FamilySkipped(STACK_FAMILY, f"{type(err).__name__}: {err}".strip())
