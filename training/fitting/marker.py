"""The osteocalcin marker in a training cohort: whether it is there, and its likelihood-ratio
test in a cause-specific Cox model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import Cohort
from features.vocabulary import BONE_METASTASIS


def has_marker_values(cohort: Cohort) -> bool:
    """Whether any patients row or draw carries an osteocalcin marker value."""
    from features.draws import MARKER_FIELDS

    for table in (cohort.patients, cohort.measurements):
        if table is not None and len(table):
            if any(table[f].notna().any() for f in MARKER_FIELDS if f in table.columns):
                return True
    return False


def marker_lr_test(X: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    """Likelihood-ratio test of the osteocalcin features in a cause-specific Cox model.

    Lightly ridge-penalised Cox models (``alpha`` 0.5, to keep the fit finite when a missing
    indicator or a rare category separates events) for bone metastasis (death censored), with
    and without the marker features, on the same training rows; the statistic is twice the
    difference of the (unpenalised) partial log-likelihoods at the fitted coefficients (Breslow
    ties), chi-squared with as many degrees of freedom as marker features. Returns NaNs when a
    fit fails.
    """
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    from features.transformers import make_feature_pipeline
    from training.evaluation.likelihood import cox_partial_loglik, likelihood_ratio_test

    event = y["cause"] == BONE_METASTASIS
    lls, widths = [], []
    for marker in (True, False):
        Xt = make_feature_pipeline(include_marker=marker).fit_transform(X)
        cox = CoxPHSurvivalAnalysis(alpha=0.5, ties="breslow", n_iter=200)
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                cox.fit(Xt, Surv.from_arrays(event, y["time"]))
        except ValueError:
            nan = float("nan")
            return {"marker_lr_statistic": nan, "marker_lr_df": nan, "marker_lr_p_value": nan}
        lls.append(cox_partial_loglik(Xt, y["time"], event, cox.coef_))
        widths.append(Xt.shape[1])
    df = widths[0] - widths[1]
    test = likelihood_ratio_test(lls[0], lls[1], df)
    return {
        "marker_lr_statistic": float(test.statistic),
        "marker_lr_df": float(df),
        "marker_lr_p_value": float(test.p_value),
    }
