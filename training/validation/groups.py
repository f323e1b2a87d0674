"""Performance of one model in each group of patients (site, lab, ...): one row per group.

Every number comes from :mod:`training.evaluation` (nothing is re-implemented here): Harrell's C
of the risk score (death censored, :func:`~training.evaluation.concordance.harrell_c`) with its
percentile bootstrap interval (:func:`~training.evaluation.bootstrap.bootstrap_ci`); at each
horizon the observed incidence of bone metastasis (Aalen-Johansen, death competing:
:func:`~training.evaluation.incidence.observed_incidence`), the mean predicted incidence, their
ratio O/E, the calibration slope and intercept
(:func:`~training.evaluation.calibration.calibration_slope_intercept`, the slope with a bootstrap
interval), the ICI, the IPCW AUC and Brier score (:mod:`training.evaluation.accuracy`).

The O/E interval is a percentile bootstrap interval of O/E (patients resampled, O and E
recomputed together: the case mix of a resample moves both, and a good model's E follows its O),
and the variance of log O/E for pooling is read from it, ``((log hi - log lo) / (2 z))^2``, as
the C-index's variance on the logit scale is read from its bootstrap interval,
``((logit hi - logit lo) / (2 z))^2`` (Debray et al. 2019). (Taking E as known and using the
Aalen-Johansen variance of O alone overstates the variance of log O/E, so much that REML then
finds no heterogeneity where there is: benchmarks/bench_pooling.py.)

A group is **flagged** when the O/E interval at the headline horizon excludes 1, or when the
calibration slope's interval lies wholly outside the promotion band (0.8-1.2 by default:
``training.registry.gates.PromotionPolicy.slope_band``). What cannot be measured in a group (no bone
metastasis, one patient, follow-up shorter than the horizon) is NaN with a ``note`` saying why,
never a dropped row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from features.schema import HEADLINE_HORIZON_MONTHS, PATIENT_COLUMNS, PATIENT_SPECS
from features.vocabulary import SELECTION_HORIZONS_MONTHS
from training.evaluation.accuracy import ipcw_auc, ipcw_brier
from training.evaluation.bootstrap import bootstrap_ci
from training.evaluation.calibration import calibration_slope_intercept, ici
from training.evaluation.concordance import harrell_c
from training.evaluation.incidence import observed_incidence
from training.models.competing import BONE_METASTASIS, DAYS_PER_MONTH, DEATH

__all__ = [
    "VALIDATION_HORIZONS",
    "check_group_column",
    "group_file_name",
    "group_metrics",
    "log_ratio_variance",
    "logit_c_variance",
]

#: Kinds of contract column whose values name groups of patients.
_GROUPING_KINDS = ("string", "category", "boolean")

#: Horizons (months) of the per-group calibration: 12, 24 and 36 where follow-up allows.
VALIDATION_HORIZONS: tuple[int, ...] = SELECTION_HORIZONS_MONTHS


def check_group_column(by: str) -> None:
    """Refuse a ``--by`` column that does not group patients, saying which ones do.

    Any column of the contract's ``patients`` table that is an identifier, a category or a
    boolean groups patients (``site_id``, ``lab_id``, ``reagent_lot``, ``er_status``...),
    except ``patient_id`` (one patient per group) and the outcome ``event``.

    Raises
    ------
    ValueError
        ``by`` is not a patients column, or is a number, ``patient_id`` or ``event``.
    """
    allowed = [
        c.name
        for c in PATIENT_COLUMNS
        if c.kind in _GROUPING_KINDS and c.name not in ("patient_id", "event")
    ]
    if by in allowed:
        return
    if by in PATIENT_SPECS:
        why = {
            "patient_id": "each patient would be a group of one",
            "event": "it is the outcome",
        }.get(by, f"it is a {PATIENT_SPECS[by].kind}, not a grouping")
        raise ValueError(f"--by {by}: cannot group by {by}: {why}; use one of {', '.join(allowed)}")
    raise ValueError(
        f"--by {by}: not a column of the data contract's patients table; use one of "
        f"{', '.join(allowed)}"
    )


def group_file_name(by: str) -> str:
    """``by_site.csv`` for ``site_id``, ``by_lab.csv`` for ``lab_id``, ``by_<column>.csv`` else."""
    return f"by_{by.removesuffix('_id')}.csv"


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def logit_c_variance(c: float, lo: float, hi: float, level: float = 0.95) -> float:
    """Variance of logit(C) from an interval of C: ``((logit hi - logit lo) / (2 z))^2``.

    NaN when the interval is missing or touches 0 or 1 (no finite logit)."""
    if not all(np.isfinite([c, lo, hi])) or not (0 < lo <= hi < 1):
        return math.nan
    width = math.log(hi / (1 - hi)) - math.log(lo / (1 - lo))
    return (width / (2 * _z(level))) ** 2 if width > 0 else math.nan


def log_ratio_variance(lo: float, hi: float, level: float = 0.95) -> float:
    """Variance of log(O/E) from an interval of O/E: ``((log hi - log lo) / (2 z))^2``.

    NaN when the interval is missing or its lower bound is 0 (no finite logarithm)."""
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        return math.nan
    return ((math.log(hi) - math.log(lo)) / (2 * _z(level))) ** 2


def _oe(y: np.ndarray, p: np.ndarray, months: float) -> float:
    """Observed (Aalen-Johansen) over expected (mean predicted) incidence by ``months``."""
    return observed_incidence(y, months) / float(np.mean(p))


def _defined(fn, *args) -> float:
    try:
        value = float(fn(*args))
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def _at(name: str, h: int) -> str:
    """``oe_ratio_low`` at 24 months is ``oe_ratio_24m_low`` (the horizon before the bound)."""
    for end in ("_low", "_high", "_var"):
        if name.endswith(end):
            return f"{name.removesuffix(end)}_{h}m{end}"
    return f"{name}_{h}m"


def _slope(y: np.ndarray, p: np.ndarray, months: float) -> float:
    return calibration_slope_intercept(y, p, months).slope


def _one_group(
    y: np.ndarray,
    risk: np.ndarray,
    cif: Mapping[int, np.ndarray],
    horizons: Sequence[int],
    headline: int,
    slope_band: tuple[float, float],
    n_boot: int,
    seed: int,
    level: float,
) -> dict[str, object]:
    n = int(y.shape[0])
    row: dict[str, object] = {
        "n_patients": n,
        "n_bone_metastasis": int(np.sum(y["cause"] == BONE_METASTASIS)),
        "n_death": int(np.sum(y["cause"] == DEATH)),
        "max_follow_up_months": float(y["time"].max() / DAYS_PER_MONTH) if n else math.nan,
    }
    notes: list[str] = []
    alpha = 1 - level
    if row["n_bone_metastasis"] == 0:
        notes.append("no bone metastasis: C-index and calibration undefined")
    if n < 2:
        notes.append("a single patient: no interval")
    c = _defined(harrell_c, y, risk) if n >= 2 else math.nan
    lo = hi = math.nan
    if math.isfinite(c):
        ci = bootstrap_ci(harrell_c, y, risk, n_boot=n_boot, seed=seed, alpha=alpha)
        lo, hi = ci.lo, ci.hi
    row.update(c_index=c, c_index_low=lo, c_index_high=hi)
    row["logit_c_index"] = math.log(c / (1 - c)) if 0 < c < 1 else math.nan
    row["logit_c_index_var"] = logit_c_variance(c, lo, hi, level)
    flagged = False
    for h in horizons:
        p = np.asarray(cif[h], dtype=float)
        values = dict.fromkeys(
            (
                "observed", "expected", "oe_ratio", "oe_ratio_low", "oe_ratio_high",
                "log_oe_ratio", "log_oe_ratio_var", "calibration_slope", "calibration_slope_low",
                "calibration_slope_high", "calibration_intercept", "ici", "auc", "brier",
            ),
            math.nan,
        )
        if n == 0 or row["max_follow_up_months"] < h:
            notes.append(f"follow-up shorter than {h} months: no {h}-month calibration")
            row.update({_at(k, h): v for k, v in values.items()})
            continue
        e = float(np.mean(p))
        o = observed_incidence(y, h)
        values.update(observed=o, expected=e, oe_ratio=o / e)
        if o > 0 and n >= 2:
            ci = bootstrap_ci(
                lambda a, b: _oe(a, b, h), y, p, n_boot=n_boot, seed=seed, alpha=alpha
            )
            values.update(oe_ratio_low=ci.lo, oe_ratio_high=ci.hi)
            values["log_oe_ratio"] = math.log(o / e)
            values["log_oe_ratio_var"] = log_ratio_variance(ci.lo, ci.hi, level)
        elif o == 0:
            notes.append(f"no bone metastasis by {h} months: O/E is 0, without an interval")
        slope = _defined(_slope, y, p, h)
        if math.isfinite(slope):
            ci = bootstrap_ci(
                lambda a, b: _slope(a, b, h), y, p, n_boot=n_boot, seed=seed, alpha=alpha
            )
            values.update(calibration_slope=slope, calibration_slope_low=ci.lo,
                          calibration_slope_high=ci.hi)
            values["calibration_intercept"] = _defined(
                lambda a, b: calibration_slope_intercept(a, b, h).intercept, y, p
            )
            values["ici"] = _defined(ici, y, p, h)
        values["auc"] = _defined(ipcw_auc, y, p, h)
        values["brier"] = _defined(ipcw_brier, y, p, h) if n else math.nan
        if h == headline:
            oe_lo, oe_hi = values["oe_ratio_low"], values["oe_ratio_high"]
            s_lo, s_hi = values["calibration_slope_low"], values["calibration_slope_high"]
            oe_off = math.isfinite(oe_lo) and (oe_lo > 1 or oe_hi < 1)
            slope_off = math.isfinite(s_lo) and (s_lo > slope_band[1] or s_hi < slope_band[0])
            flagged = bool(oe_off or slope_off)
        row.update({_at(k, h): v for k, v in values.items()})
    row["flagged"] = flagged
    row["note"] = "; ".join(dict.fromkeys(notes))
    return row


def group_metrics(
    y: np.ndarray,
    risk: np.ndarray,
    cif: Mapping[int, np.ndarray],
    groups: Sequence[object] | np.ndarray,
    *,
    by: str = "site_id",
    horizons: Sequence[int] = VALIDATION_HORIZONS,
    headline: int = HEADLINE_HORIZON_MONTHS,
    slope_band: tuple[float, float] = (0.8, 1.2),
    n_boot: int = 200,
    seed: int = 42,
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per group: counts, C-index, and per horizon O/E, calibration, ICI, AUC, Brier.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target (``cause``, ``time`` in days) of every patient.
    risk : numpy.ndarray
        Risk scores (higher: bone metastasis sooner).
    cif : mapping of int to numpy.ndarray
        Predicted incidence of bone metastasis by each horizon in ``horizons`` (months).
    groups : array-like
        Group label of each patient; a missing label (None/NaN) is its own group, shown as
        ``"(missing)"``.
    by : str
        Name of the grouping column (the first column of the table).
    horizons, headline : months
        Horizons reported; the one whose O/E and slope decide ``flagged``.
    slope_band : (float, float)
        Calibration slopes accepted (the promotion gate's band).
    n_boot, seed, level
        Bootstrap resamples, seed and the level of every interval.

    Returns
    -------
    pandas.DataFrame
        ``by``, ``n_patients``, ``n_bone_metastasis``, ``n_death``, ``max_follow_up_months``,
        ``c_index`` (+``_low``/``_high``), ``logit_c_index`` (+``_var``), per horizon
        ``observed``, ``expected``, ``oe_ratio`` (+``_low``/``_high``), ``log_oe_ratio``
        (+``_var``), ``calibration_slope`` (+``_low``/``_high``), ``calibration_intercept``,
        ``ici``, ``auc``, ``brier`` (each with ``_<h>m`` before any ``_low``/``_high``/``_var``:
        ``oe_ratio_24m_low``), ``flagged`` and ``note``. Groups
        in order of first appearance.
    """
    if headline not in horizons:
        raise ValueError(f"the headline horizon {headline} must be one of {list(horizons)}")
    labels = pd.Series(np.asarray(groups, dtype=object)).where(lambda s: s.notna(), "(missing)")
    if len(labels) != y.shape[0]:
        raise ValueError("groups must have one label per patient")
    rows = []
    for i, (label, idx) in enumerate(labels.groupby(labels, sort=False).indices.items()):
        sub = {h: np.asarray(cif[h], dtype=float)[idx] for h in horizons}
        row = _one_group(
            y[idx], np.asarray(risk)[idx], sub, horizons, headline, slope_band, n_boot,
            seed + i, level,
        )
        rows.append({by: str(label), **row})
    return pd.DataFrame(rows)
