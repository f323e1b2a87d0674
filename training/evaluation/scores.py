"""Discrimination and calibration metrics for bone metastasis with death competing.

Conventions (stated in docs/modeling.md):
- Harrell's and Uno's C rank patients by risk score for *bone metastasis*; death before bone
  metastasis counts as censoring (cause-specific concordance). Uno's C is truncated at
  ``tau`` = 60 months (or the last follow-up time of the test split if shorter).
- Time-dependent AUC at t months is sksurv's cumulative/dynamic AUC (cases: bone metastasis by
  t; controls: event-free beyond t; death before t is censored).
- The IPCW AUC and Brier score at t months treat death before t as *no* bone metastasis by t
  (the competing-risks definition matching the served cumulative incidence) and weight known
  statuses by inverse probability of censoring.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from training.models.competing import (
    BONE_METASTASIS,
    DAYS_PER_MONTH,
    censoring_survival,
    ipcw_labels,
)


def _surv(y: np.ndarray):
    from sksurv.util import Surv

    return Surv.from_arrays(y["cause"] == BONE_METASTASIS, y["time"])


def harrell_c(y: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's concordance index for bone metastasis (death censored).

    Computed by :func:`training.evaluation.metrics.fast_harrell_c` (n log^2 n, equal to
    scikit-survival's
    ``concordance_index_censored`` to 1e-12, tested).
    """
    from training.evaluation.metrics import (
        fast_harrell_c,  # metrics imports this module: import lazily
    )

    return fast_harrell_c(y, risk)


def uno_c(y_train: np.ndarray, y_test: np.ndarray, risk: np.ndarray, tau_days: float) -> float:
    """Uno's IPCW concordance index truncated at ``tau_days`` (censoring from the training set)."""
    from sksurv.metrics import concordance_index_ipcw

    tau = min(tau_days, float(y_test["time"].max()), float(y_train["time"].max()))
    tau = np.nextafter(tau, 0)
    return float(concordance_index_ipcw(_surv(y_train), _surv(y_test), risk, tau=tau)[0])


def cumulative_dynamic_auc(
    y_train: np.ndarray, y_test: np.ndarray, risk: np.ndarray, months: float
) -> float:
    """sksurv's cumulative/dynamic AUC at ``months`` (death censored)."""
    from sksurv.metrics import cumulative_dynamic_auc as cd_auc

    auc, _ = cd_auc(_surv(y_train), _surv(y_test), risk, [months * DAYS_PER_MONTH])
    return float(auc[0])


def ipcw_auc(y: np.ndarray, prob: np.ndarray, months: float) -> float:
    """ROC AUC for bone metastasis by ``months``, death competing, censoring by IPCW."""
    g_times, g_surv = censoring_survival(y)
    label, weight = ipcw_labels(y, months * DAYS_PER_MONTH, g_times, g_surv)
    known = weight > 0
    if np.unique(label[known]).size < 2:
        return float("nan")
    return float(roc_auc_score(label[known], prob[known], sample_weight=weight[known]))


def ipcw_brier(y: np.ndarray, prob: np.ndarray, months: float) -> float:
    """Brier score for bone metastasis by ``months``, death competing, censoring by IPCW."""
    g_times, g_surv = censoring_survival(y)
    label, weight = ipcw_labels(y, months * DAYS_PER_MONTH, g_times, g_surv)
    return float(np.sum(weight * (label - prob) ** 2) / y.shape[0])


def observed_incidence(y: np.ndarray, months: float) -> float:
    """IPCW estimate of the cumulative incidence of bone metastasis by ``months``.

    Equal to the Aalen-Johansen estimate up to the handling of ties; used for
    calibration-in-the-large.
    """
    g_times, g_surv = censoring_survival(y)
    label, weight = ipcw_labels(y, months * DAYS_PER_MONTH, g_times, g_surv)
    return float(np.sum(weight * label) / y.shape[0])


def evaluate(
    y_train: np.ndarray,
    y_test: np.ndarray,
    risk: np.ndarray,
    cif: dict[int, np.ndarray],
    prefix: str = "test_",
    tau_months: float = 60,
) -> dict[str, float]:
    """Headline metrics of one model on one split.

    Parameters
    ----------
    y_train, y_test : structured arrays
        Targets (``training.models.competing.make_target``); the training one estimates censoring.
    risk : array
        Risk scores on the test split.
    cif : dict
        Predicted cumulative incidence on the test split by horizon in months.
    prefix : str
        Prepended to every metric name (``test_``, ``train_``).
    """
    out = {
        "harrell_c": harrell_c(y_test, risk),
        "uno_c": uno_c(y_train, y_test, risk, tau_months * DAYS_PER_MONTH),
    }
    for months, prob in sorted(cif.items()):
        if months <= float(y_test["time"].max()) / DAYS_PER_MONTH:
            out[f"td_auc_{months}m"] = cumulative_dynamic_auc(y_train, y_test, risk, months)
        out[f"ipcw_auc_{months}m"] = ipcw_auc(y_test, prob, months)
        out[f"brier_{months}m"] = ipcw_brier(y_test, prob, months)
        observed = observed_incidence(y_test, months)
        out[f"observed_incidence_{months}m"] = observed
        out[f"mean_predicted_{months}m"] = float(np.mean(prob))
        out[f"calibration_in_the_large_{months}m"] = float(np.mean(prob)) - observed
    return {prefix + k: v for k, v in out.items()}
