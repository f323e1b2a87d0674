"""Overall accuracy and net benefit of predicted incidence of bone metastasis, death competing.

IPCW time-dependent AUC and Brier score at a horizon (death before the horizon is *no* bone
metastasis by it, the competing-risks definition matching the served cumulative incidence;
known statuses weighted by :func:`training.evaluation.ipcw.ipcw_status`), integrated and scaled
Brier scores, scikit-survival's cumulative/dynamic AUC of a risk score (death censored) and the
decision curve.

References
----------
Graf E, Schmoor C, Sauerbrei W, Schumacher M (1999). Assessment and comparison of prognostic
classification schemes for survival data. Stat Med 18:2529-2545.
Kattan MW, Gerds TA (2018). The index of prediction accuracy. Diagn Progn Res 2:7.
Vickers AJ, Elkin EB (2006). Decision curve analysis. Med Decis Making 26:565-574.
Vickers AJ, Cronin AM, Elkin EB, Gonen M (2008). Extensions to decision curve analysis.
BMC Med Inform Decis Mak 8:53.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from training.evaluation.concordance import censoring_estimator
from training.evaluation.incidence import aalen_johansen, observed_incidence
from training.evaluation.inputs import check_months, check_prob, check_y
from training.evaluation.ipcw import ipcw_status
from training.models.competing import BONE_METASTASIS, DAYS_PER_MONTH

__all__ = [
    "ipcw_auc",
    "ipcw_brier",
    "weighted_auc",
    "cumulative_dynamic_auc",
    "brier_score",
    "integrated_brier_score",
    "scaled_brier",
    "decision_curve",
]


def ipcw_auc(y: np.ndarray, prob: np.ndarray, months: float) -> float:
    """ROC AUC for bone metastasis by ``months``, death competing, censoring by IPCW.

    NaN when the patients of known status are all cases or all controls.
    """
    label, weight = ipcw_status(y, months)
    known = weight > 0
    if np.unique(label[known]).size < 2:
        return float("nan")
    return weighted_auc(label[known], prob[known], weight[known])


def weighted_auc(label: np.ndarray, score: np.ndarray, weight: np.ndarray) -> float:
    """Weighted ROC AUC: scikit-learn's ``roc_auc_score(label, score, sample_weight=weight)``.

    The probability that a case outranks a control, each pair weighted by the product of their
    weights and tied scores counting one half (the trapezoidal area under the ROC curve whose
    thresholds are the distinct scores, as scikit-learn computes it); by sums over the distinct
    scores, without scikit-learn's per-call input validation (the bootstrap calls it on every
    resample). Tested equal to scikit-learn's to 1e-12.
    """
    values, group = np.unique(np.asarray(score, dtype=float), return_inverse=True)
    case = np.asarray(label) == 1
    w = np.asarray(weight, dtype=float)
    cases = np.bincount(group, weights=np.where(case, w, 0.0), minlength=values.size)
    controls = np.bincount(group, weights=np.where(case, 0.0, w), minlength=values.size)
    below = np.cumsum(controls) - controls  # control weight with a lower score
    return float(np.sum(cases * (below + 0.5 * controls)) / (cases.sum() * controls.sum()))


def ipcw_brier(y: np.ndarray, prob: np.ndarray, months: float) -> float:
    """Brier score for bone metastasis by ``months``, death competing, censoring by IPCW.

    Unchecked arguments: :func:`brier_score` checks them, then calls this.
    """
    label, weight = ipcw_status(y, months)
    return float(np.sum(weight * (label - prob) ** 2) / y.shape[0])


def cumulative_dynamic_auc(
    y_train: np.ndarray,
    y_test: np.ndarray,
    risk: np.ndarray,
    months: float,
    censoring=None,
    tied_tol: float = 1e-8,
) -> float:
    """scikit-survival's cumulative/dynamic AUC at ``months`` (death censored).

    Cases: bone metastasis by the horizon, each weighted by ``1 / G(T_i)`` (the censoring
    survival of ``y_train``); controls: event-free beyond it. The ROC curve over the descending
    risk scores (tied scores one threshold) is integrated by the trapezoidal rule, as
    scikit-survival's ``cumulative_dynamic_auc`` does at one time point (Uno et al. 2007; tested
    equal to it to 1e-12). Written out so that ``censoring``
    (:func:`training.evaluation.concordance.censoring_estimator` of ``y_train``) is fitted once
    by a bootstrap instead of on every resample.

    Raises
    ------
    ValueError
        The horizon outside the test split's follow-up, or a censoring survival of zero at a
        case's time.
    """
    time = np.asarray(y_test["time"], dtype=float)
    risk = np.asarray(risk, dtype=float)
    if risk.shape != time.shape or not np.all(np.isfinite(risk)):
        raise ValueError(f"risk must be finite with one value per patient: shape {risk.shape}")
    t = float(months) * DAYS_PER_MONTH
    if t >= time.max() or t < time.min():
        raise ValueError(
            f"all times must be within follow-up time of test data: [{time.min()}; {time.max()}["
        )
    censoring = censoring_estimator(y_train) if censoring is None else censoring
    event = np.asarray(y_test["cause"]) == BONE_METASTASIS
    weight = np.zeros(time.size)
    if event.any():
        g = censoring.predict_proba(time[event])
        if np.any(g == 0.0):
            raise ValueError("censoring survival function is zero at one or more time points")
        weight[event] = 1.0 / g
    order = np.argsort(-risk, kind="quicksort")
    time, event, weight, score = time[order], event[order], weight[order], risk[order]
    is_case = (time <= t) & event
    is_control = time > t
    tied = np.abs(np.diff(np.r_[np.inf, score])) <= tied_tol
    cumsum_tp = np.cumsum(is_case * weight)
    cumsum_fp = np.cumsum(is_control)
    with np.errstate(invalid="ignore", divide="ignore"):
        tp = cumsum_tp / cumsum_tp[-1]
        fp = cumsum_fp / is_control.sum()
    drop = np.flatnonzero(tied) - 1  # only the last of tied scores is a threshold
    tp, fp = np.delete(tp, drop), np.delete(fp, drop)
    return float(np.trapezoid(np.r_[0, tp], np.r_[0, fp]))


def brier_score(y: np.ndarray, p: np.ndarray, months: float) -> float:
    """IPCW Brier score for bone metastasis by the horizon, death competing.

        BS(h) = (1 / n) sum_i w_i (Y_i - p_i)^2

    with ``Y_i`` the status "bone metastasis by h" (death before h = 0) and ``w_i`` the inverse
    probability of censoring weight (``1 / G(T_i-)`` for an event by h, ``1 / G(h)`` beyond h,
    0 when censored before h; Graf et al. 1999, extended to competing risks). Identical to
    :func:`ipcw_brier`, which it calls.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    p : numpy.ndarray
        Predicted cumulative incidence of bone metastasis by ``months``.
    months : float
        Horizon (months).

    Returns
    -------
    float
    """
    y = check_y(y)
    p = check_prob(p, y.shape[0])
    return ipcw_brier(y, p, check_months(months))


def integrated_brier_score(
    y: np.ndarray, cif_matrix: np.ndarray, times_months: Sequence[float] | np.ndarray
) -> float:
    """Brier score integrated over horizons by the trapezoid rule, per unit time.

        IBS = [1 / (t_K - t_1)] * integral_{t_1}^{t_K} BS(t) dt

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    cif_matrix : numpy.ndarray
        ``(n, K)`` predicted cumulative incidences of bone metastasis at ``times_months``.
    times_months : array-like
        ``K >= 2`` strictly increasing horizons (months).

    Returns
    -------
    float
    """
    y = check_y(y)
    times = np.asarray(times_months, dtype=float)
    cif = np.asarray(cif_matrix, dtype=float)
    if times.ndim != 1 or times.size < 2 or np.any(np.diff(times) <= 0):
        raise ValueError("times_months must hold at least 2 strictly increasing horizons")
    if cif.shape != (y.shape[0], times.size):
        raise ValueError(
            f"cif_matrix must have shape (n, len(times_months)) = {(y.shape[0], times.size)}, "
            f"got {cif.shape}"
        )
    scores = np.array([brier_score(y, cif[:, k], t) for k, t in enumerate(times)])
    return float(np.trapezoid(scores, times) / (times[-1] - times[0]))


def scaled_brier(y: np.ndarray, p: np.ndarray, months: float) -> float:
    """Scaled Brier score (index of prediction accuracy): 1 - BS(model) / BS(null).

    The null model predicts, for everyone, the Aalen-Johansen incidence of bone metastasis by
    the horizon in the same data (Kattan & Gerds 2018, "The index of prediction accuracy",
    Diagn Progn Res 2:7). 1 is perfect, 0 no better than the overall incidence, < 0 worse.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    p : numpy.ndarray
        Predicted cumulative incidence of bone metastasis by ``months``.
    months : float
        Horizon (months).

    Returns
    -------
    float
    """
    y = check_y(y)
    months = check_months(months)
    incidence = observed_incidence(y, months)
    null = brier_score(y, np.full(y.shape[0], incidence), months)
    if null <= 0:
        raise ValueError(f"horizon {months:g} months: the null model's Brier score is 0")
    return 1.0 - brier_score(y, p, months) / null


# --------------------------------------------------------------------------------------------
# Decision curve
# --------------------------------------------------------------------------------------------


def decision_curve(
    y: np.ndarray,
    p: np.ndarray,
    months: float,
    thresholds: Sequence[float] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Net benefit of treating patients whose predicted incidence reaches a threshold.

    For threshold probability ``t`` (Vickers & Elkin 2006), with ``n`` patients,

        NB(t) = TP / n - FP / n * t / (1 - t).

    With censoring and death competing (Vickers et al. 2008, censored-data extension), the
    true/false positive rates are estimated with the Aalen-Johansen incidence ``F_+(h)`` of
    bone metastasis by h among the patients with ``p >= t``, whose share is ``s``:

        TP / n = F_+(h) * s,     FP / n = (1 - F_+(h)) * s.

    Treat-all uses the overall incidence ``F(h)``: ``F(h) - (1 - F(h)) t / (1 - t)``;
    treat-none is 0.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    p : numpy.ndarray
        Predicted cumulative incidence of bone metastasis by ``months``.
    months : float
        Horizon (months).
    thresholds : array-like, optional
        Threshold probabilities in [0, 1); default 0.01, 0.02, ..., 0.50.

    Returns
    -------
    pandas.DataFrame
        Columns ``threshold, net_benefit_model, net_benefit_all, net_benefit_none``.
    """
    y = check_y(y)
    p = check_prob(p, y.shape[0])
    h = check_months(months) * DAYS_PER_MONTH
    if thresholds is None:
        thresholds = np.round(np.linspace(0.01, 0.50, 50), 2)
    thr = np.atleast_1d(np.asarray(thresholds, dtype=float))
    if np.any(~np.isfinite(thr) | (thr < 0) | (thr >= 1)):
        raise ValueError("thresholds must be probabilities in [0, 1)")
    incidence = float(aalen_johansen(y, h)[0][0])
    odds = thr / (1.0 - thr)
    nb_model = np.empty(thr.size)
    for k, t in enumerate(thr):
        treated = p >= t
        share = float(np.mean(treated))
        f_treated = float(aalen_johansen(y[treated], h)[0][0]) if share > 0 else 0.0
        nb_model[k] = f_treated * share - (1.0 - f_treated) * share * odds[k]
    return pd.DataFrame(
        {
            "threshold": thr,
            "net_benefit_model": nb_model,
            "net_benefit_all": incidence - (1.0 - incidence) * odds,
            "net_benefit_none": np.zeros(thr.size),
        }
    )
