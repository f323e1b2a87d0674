"""The evaluation suite of one fitted model on one split: metrics, intervals, tables, figures.

Metric names are the same for every family and every run (``test_uno_c``, ``cv_uno_c_mean``,
``test_calibration_slope_24m``, ...), so the MLflow UI compares versions directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features import vocabulary
from features.schema import HEADLINE_HORIZON_MONTHS
from training.evaluation import names
from training.evaluation.accuracy import (
    brier_score,
    cumulative_dynamic_auc,
    decision_curve,
    integrated_brier_score,
    ipcw_auc,
    ipcw_brier,
    scaled_brier,
)
from training.evaluation.bootstrap import Interval, bootstrap_ci, joint_bootstrap
from training.evaluation.calibration import (
    calibration_slope,
    calibration_slope_intercept,
    calibration_table,
    ici,
)
from training.evaluation.concordance import (
    censoring_estimator,
    concordance_pair,
    fast_harrell_c,
    harrell_c,
    uno_c,
)
from training.evaluation.incidence import observed_incidence
from training.evaluation.names import key
from training.evaluation.subgroups import subgroup_metrics
from training.models.competing import DAYS_PER_MONTH

_H = HEADLINE_HORIZON_MONTHS
#: Headline metrics that get bootstrap confidence intervals.
HEADLINE = names.HEADLINE
SUBGROUP_VARIABLES = ("disease_setting", "menopausal_status", "er_status")
#: Headline horizons (months) of the selection score ``brier_headline``: the probabilities a
#: clinician reads and the truth benchmark scores (60 months sits at the edge of follow-up).
SELECTION_HORIZONS_MONTHS = vocabulary.SELECTION_HORIZONS_MONTHS
AUC_CURVE_MONTHS = (6, 12, 18, 24, 30, 36, 42, 48, 54, 60)


def point_metrics(
    y_train: np.ndarray,
    y_eval: np.ndarray,
    risk: np.ndarray,
    cif: Mapping[int, np.ndarray],
    tau_months: float = 60,
) -> dict[str, float]:
    """Discrimination, calibration and overall accuracy at every horizon (no prefix).

    Parameters
    ----------
    y_train, y_eval : numpy.ndarray
        Structured targets; the training one estimates censoring for Uno's C and the
        time-dependent AUC.
    risk : numpy.ndarray
        Risk scores of the evaluated patients.
    cif : mapping of int to numpy.ndarray
        Predicted cumulative incidence of bone metastasis by horizon (months).
    tau_months : float, default=60
        Truncation of Uno's C.

    Returns
    -------
    dict of str to float
        ``harrell_c``, ``uno_c`` and per horizon ``td_auc`` (where the split has follow-up),
        ``ipcw_auc``, ``brier``, ``observed_incidence`` (Aalen-Johansen), ``mean_predicted``,
        ``calibration_in_the_large`` (mean predicted minus observed), ``calibration_slope``,
        ``calibration_intercept``, ``ici``, ``scaled_brier``; ``integrated_brier`` and
        ``brier_headline``.
    """
    censoring = censoring_estimator(y_train)
    out = {
        key("harrell_c"): harrell_c(y_eval, risk),
        key("uno_c"): uno_c(y_train, y_eval, risk, tau_months * DAYS_PER_MONTH, censoring),
    }
    horizons = sorted(cif)
    for h in horizons:
        p = np.asarray(cif[h], dtype=float)
        if h <= float(y_eval["time"].max()) / DAYS_PER_MONTH:
            auc = cumulative_dynamic_auc(y_train, y_eval, risk, h, censoring)
            out[key("td_auc", horizon=h)] = auc
        out[key("ipcw_auc", horizon=h)] = ipcw_auc(y_eval, p, h)
        out[key("brier", horizon=h)] = ipcw_brier(y_eval, p, h)
        observed = observed_incidence(y_eval, h)
        out[key("observed_incidence", horizon=h)] = observed
        out[key("mean_predicted", horizon=h)] = float(np.mean(p))
        out[key("calibration_in_the_large", horizon=h)] = float(np.mean(p)) - observed
    for h in horizons:
        p = np.asarray(cif[h], dtype=float)
        try:
            fit = calibration_slope_intercept(y_eval, p, h)
            out[key("calibration_slope", horizon=h)] = fit.slope
            out[key("calibration_intercept", horizon=h)] = fit.intercept
            out[key("ici", horizon=h)] = ici(y_eval, p, h)
        except ValueError:
            out[key("calibration_slope", horizon=h)] = float("nan")
        try:
            out[key("scaled_brier", horizon=h)] = scaled_brier(y_eval, p, h)
        except ValueError:
            out[key("scaled_brier", horizon=h)] = float("nan")
    if len(horizons) > 1:
        matrix = np.column_stack([cif[h] for h in horizons])
        out[key("integrated_brier")] = integrated_brier_score(y_eval, matrix, horizons)
    out[key("brier_headline")] = mean_brier(y_eval, cif)
    return out


def mean_brier(y_eval: np.ndarray, cif: Mapping[int, np.ndarray]) -> float:
    """Mean IPCW Brier score at the headline horizons: the selection score (lower is better).

    The horizons of :data:`SELECTION_HORIZONS_MONTHS` among those of ``cif`` (all of ``cif``'s
    when none is); NaN when a horizon's score is undefined (nobody known at it).

    Parameters
    ----------
    y_eval : numpy.ndarray
        Structured target of the scored patients.
    cif : mapping of int to numpy.ndarray
        Predicted cumulative incidence of bone metastasis by horizon (months).

    Returns
    -------
    float
    """
    months = [h for h in cif if h in SELECTION_HORIZONS_MONTHS] or list(cif)
    try:
        return float(np.mean([brier_score(y_eval, cif[h], h) for h in months]))
    except ValueError:
        return float("nan")


def _headline_fn(name: str, y_train: np.ndarray, tau_days: float):
    """A function (y, risk, p at the headline horizon) -> metric for the bootstrap (the
    censoring distribution of ``y_train`` fitted once, not on every resample)."""
    cens = censoring_estimator(y_train)
    fns = {
        "harrell_c": lambda y, r, p: fast_harrell_c(y, r),
        "uno_c": lambda y, r, p: uno_c(y_train, y, r, tau_days, cens),
        f"td_auc_{_H}m": lambda y, r, p: cumulative_dynamic_auc(y_train, y, r, _H, cens),
        f"ipcw_auc_{_H}m": lambda y, r, p: ipcw_auc(y, p, _H),
        f"brier_{_H}m": lambda y, r, p: brier_score(y, p, _H),
        f"calibration_slope_{_H}m": lambda y, r, p: calibration_slope(y, p, _H),
        f"calibration_in_the_large_{_H}m": (
            lambda y, r, p: float(np.mean(p)) - observed_incidence(y, _H)
        ),
    }
    if name not in fns:
        raise ValueError(f"no bootstrap function for {name}")
    return fns[name]


def bootstrap_intervals(
    y_train: np.ndarray,
    y_eval: np.ndarray,
    risk: np.ndarray,
    p24: np.ndarray,
    n_boot: int,
    seed: int,
    names: Sequence[str] = HEADLINE,
    tau_months: float = 60,
    max_resample: int | None = None,
) -> dict[str, Interval]:
    """Percentile bootstrap 95 % intervals of the headline metrics (patients resampled).

    ``max_resample``: at most this many patients per resample, the m-out-of-n bootstrap on
    larger splits (:mod:`training.evaluation.bootstrap`).
    """
    out = {}
    for name in names:
        fn = _headline_fn(name, y_train, tau_months * DAYS_PER_MONTH)
        out[name] = bootstrap_ci(
            fn, y_eval, risk, p24, n_boot=n_boot, seed=seed, max_resample=max_resample
        )
    return out


def calibration_intervals(
    y_eval: np.ndarray,
    cif: Mapping[int, np.ndarray],
    n_boot: int,
    seed: int,
    max_resample: int | None = None,
    horizons: Sequence[int] = SELECTION_HORIZONS_MONTHS,
) -> dict[str, Interval]:
    """Bootstrap 95 % intervals of the calibration slope and calibration-in-the-large at the
    gates' horizons other than the headline one (which :func:`bootstrap_intervals` covers).

    Patients are resampled as in :func:`bootstrap_intervals`; a horizon beyond the evaluated
    follow-up (no interval can be fitted) is left out.
    """
    out = {}
    for h in horizons:
        if h == _H or h not in cif:
            continue
        p = np.asarray(cif[h], dtype=float)
        for name, fn in _calibration_fns(h).items():
            try:
                out[name] = bootstrap_ci(
                    fn, y_eval, p, n_boot=n_boot, seed=seed, max_resample=max_resample
                )
            except ValueError:
                continue
    return out


#: The marker's increments (:func:`joint_intervals`): marker model minus clinical-only model.
INCREMENTS = ("harrell_c", "uno_c", f"td_auc_{_H}m")


def _nan_if_undefined(fn, *args) -> float:
    try:
        value = float(fn(*args))
    except ValueError:
        return float("nan")
    return value if np.isfinite(value) else float("nan")


def joint_intervals(
    y_train: np.ndarray,
    y_eval: np.ndarray,
    risk: np.ndarray,
    cif: Mapping[int, np.ndarray],
    n_boot: int,
    seed: int,
    *,
    reference_risk: np.ndarray | None = None,
    max_resample: int | None = None,
    tau_months: float = 60,
) -> tuple[dict[str, Interval], dict[str, Interval]]:
    """:func:`bootstrap_intervals` (the headline metrics), :func:`calibration_intervals` and,
    with ``reference_risk``, the paired increments of :data:`INCREMENTS` (``risk``'s
    statistic minus ``reference_risk``'s, :func:`~training.evaluation.bootstrap.
    paired_bootstrap_difference`), from one set of resamples.

    The same intervals as those functions called one by one with the same ``seed`` and
    ``max_resample`` (their resamples depend on the number of patients and the seed only),
    with each statistic computed once per resample (the increments' first terms are the
    headline concordances) and Harrell's and Uno's C from one count of pairs
    (:func:`~training.evaluation.concordance.concordance_pair`): about a third of the work
    (``tests/evaluation/test_suite.py`` checks equality). The time-dependent AUC's increment is
    left out when the headline horizon is beyond the follow-up; with ``n_boot`` = 0 the
    increments have no bounds and there are no intervals.

    Returns
    -------
    intervals, increments : dict of str to Interval
    """
    tau_days = tau_months * DAYS_PER_MONTH
    cens = censoring_estimator(y_train)
    p24 = np.asarray(cif[_H], dtype=float)
    extra = {
        h: np.asarray(cif[h], dtype=float)
        for h in SELECTION_HORIZONS_MONTHS
        if h != _H and h in cif
    }
    paired = reference_risk is not None
    increments = [
        n
        for n in INCREMENTS
        if n != f"td_auc_{_H}m" or _H < float(y_eval["time"].max()) / DAYS_PER_MONTH
    ]
    increment_fns = {
        "harrell_c": lambda yy, r: fast_harrell_c(yy, r),
        "uno_c": lambda yy, r: uno_c(y_train, yy, r, tau_days, cens),
        f"td_auc_{_H}m": lambda yy, r: cumulative_dynamic_auc(y_train, yy, r, _H, cens),
    }
    # Estimates on every patient, as the one-by-one functions compute (and fail) them.
    names, estimates = [], []
    for name in HEADLINE if n_boot else ():
        names.append(name)
        estimates.append(float(_headline_fn(name, y_train, tau_days)(y_eval, risk, p24)))
    for h, p in extra.items() if n_boot else ():
        for name, fn in _calibration_fns(h).items():
            try:
                estimate = float(fn(y_eval, p))
            except ValueError:
                continue  # as calibration_intervals: no interval at this horizon
            names.append(name)
            estimates.append(estimate)
    if paired:
        ref = np.asarray(reference_risk, dtype=float)
        for name in increments:
            fn = increment_fns[name]
            names.append(f"increment:{name}")
            estimates.append(float(fn(y_eval, risk)) - float(fn(y_eval, ref)))
    if not n_boot:
        nan = float("nan")
        return {}, {
            n.split(":", 1)[1]: Interval(e, nan, nan, 0)
            for n, e in zip(names, estimates, strict=True)
            if n.startswith("increment:")
        }

    def statistic(idx: np.ndarray) -> list[float]:
        y, r, p = y_eval[idx], risk[idx], p24[idx]
        harrell, uno = concordance_pair(y_train, y, r, tau_days, cens)
        found = {
            "harrell_c": harrell,
            "uno_c": uno,
            f"td_auc_{_H}m": _nan_if_undefined(cumulative_dynamic_auc, y_train, y, r, _H, cens),
            f"ipcw_auc_{_H}m": _nan_if_undefined(ipcw_auc, y, p, _H),
            f"brier_{_H}m": _nan_if_undefined(brier_score, y, p, _H),
            f"calibration_slope_{_H}m": _nan_if_undefined(calibration_slope, y, p, _H),
            f"calibration_in_the_large_{_H}m": _nan_if_undefined(
                lambda: float(np.mean(p)) - observed_incidence(y, _H)
            ),
        }
        for h, ph in extra.items():
            for name, fn in _calibration_fns(h).items():
                if name in names:
                    found[name] = _nan_if_undefined(fn, y, ph[idx])
        if paired:
            rr = ref[idx]
            ref_harrell, ref_uno = concordance_pair(y_train, y, rr, tau_days, cens)
            reference = {"harrell_c": ref_harrell, "uno_c": ref_uno}
            if f"td_auc_{_H}m" in increments:
                reference[f"td_auc_{_H}m"] = _nan_if_undefined(
                    cumulative_dynamic_auc, y_train, y, rr, _H, cens
                )
            for name in increments:
                found[f"increment:{name}"] = found[name] - reference[name]
        return [found[name] for name in names]

    found = joint_bootstrap(
        statistic, estimates, len(y_eval), n_boot=n_boot, seed=seed, max_resample=max_resample
    )
    intervals, paired_out = {}, {}
    for name, interval in zip(names, found, strict=True):
        if name.startswith("increment:"):
            paired_out[name.split(":", 1)[1]] = interval
        else:
            intervals[name] = interval
    return intervals, paired_out


def _calibration_fns(h: int) -> dict:
    """The calibration statistics of :func:`calibration_intervals` at horizon ``h``."""
    return {
        f"calibration_slope_{h}m": lambda y, q: calibration_slope(y, q, h),
        f"calibration_in_the_large_{h}m": lambda y, q: float(np.mean(q)) - observed_incidence(y, h),
    }


def auc_curve(y_train: np.ndarray, y_eval: np.ndarray, risk: np.ndarray) -> tuple[list, list]:
    """Time-dependent AUC at 6-60 months (where the split has follow-up)."""
    months, values = [], []
    max_months = float(y_eval["time"].max()) / DAYS_PER_MONTH
    censoring = censoring_estimator(y_train)
    for mo in AUC_CURVE_MONTHS:
        if mo >= max_months:
            break
        try:
            values.append(cumulative_dynamic_auc(y_train, y_eval, risk, mo, censoring))
            months.append(mo)
        except ValueError:
            continue
    return months, values


@dataclass
class SplitEvaluation:
    """Everything measured on one split for one model."""

    metrics: dict[str, float]
    intervals: dict[str, Interval] = field(default_factory=dict)
    calibration: dict[int, pd.DataFrame] = field(default_factory=dict)
    decision_curve: pd.DataFrame | None = None
    subgroups: pd.DataFrame | None = None
    auc_months: list = field(default_factory=list)
    auc_values: list = field(default_factory=list)
    increments: dict[str, Interval] = field(default_factory=dict)

    def flat(self, prefix: str) -> dict[str, float]:
        """Metrics and interval bounds as finite MLflow metrics with ``prefix``."""
        out = {f"{prefix}{k}": v for k, v in self.metrics.items()}
        for k, iv in self.intervals.items():
            out[f"{prefix}{k}_lo"] = iv.lo
            out[f"{prefix}{k}_hi"] = iv.hi
        return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}


def evaluate_split(
    y_train: np.ndarray,
    y_eval: np.ndarray,
    risk: np.ndarray,
    cif: Mapping[int, np.ndarray],
    rows: pd.DataFrame,
    *,
    n_boot: int,
    seed: int,
    max_resample: int | None = None,
    reference_risk: np.ndarray | None = None,
) -> SplitEvaluation:
    """The full suite on a held-out split: metrics, intervals (the headline ones and the
    calibration at every gated horizon), calibration, DCA, subgroups; with ``reference_risk``
    (the clinical-only model's risk of the same patients) the marker's paired increments.

    ``max_resample`` bounds the patients of each bootstrap resample (:func:`bootstrap_intervals`);
    the intervals and increments come from one set of resamples (:func:`joint_intervals`).
    """
    point = point_metrics(y_train, y_eval, risk, cif)
    p24 = np.asarray(cif[_H], dtype=float)
    intervals, increments = joint_intervals(
        y_train, y_eval, risk, cif, n_boot, seed,
        reference_risk=reference_risk, max_resample=max_resample,
    )  # fmt: skip
    tables = {}
    for h, p in sorted(cif.items()):
        try:
            tables[h] = calibration_table(y_eval, np.asarray(p, dtype=float), h)
        except ValueError:
            continue
    groups = {}
    for var in SUBGROUP_VARIABLES:
        labels = rows[var].astype(object).where(rows[var].notna(), "missing").to_numpy()
        groups[var] = labels
    subgroups = subgroup_metrics(y_eval, risk, dict(cif), groups)
    months, values = auc_curve(y_train, y_eval, risk)
    return SplitEvaluation(
        metrics=point,
        intervals=intervals,
        calibration=tables,
        decision_curve=decision_curve(y_eval, p24, _H),
        subgroups=subgroups,
        auc_months=months,
        auc_values=values,
        increments=increments,
    )


def cv_summary(fold_metrics: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean and SD over outer folds: ``cv_<metric>_mean``, ``cv_<metric>_sd``."""
    keys = sorted({k for fm in fold_metrics for k in fm})
    out = {}
    for k in keys:
        vals = np.array([fm.get(k, np.nan) for fm in fold_metrics], dtype=float)
        vals = vals[np.isfinite(vals)]
        if vals.size:
            out[f"cv_{k}_mean"] = float(vals.mean())
            if vals.size > 1:
                out[f"cv_{k}_sd"] = float(vals.std(ddof=1))
    return out
