"""Once outcomes arrive: observed/expected incidence and calibration in windows of enrollment.

* Observed/expected at a horizon: the Aalen-Johansen incidence of bone metastasis with death
  competing (:func:`training.evaluation.incidence.aalen_johansen_ci`, log-log interval) over
  the mean predicted incidence; the interval is the observed one's divided by the (fixed)
  expectation.
* Calibration in windows: patients enrolled in ``[start, start + width)`` days, windows every
  ``step`` days; in each, the calibration slope and intercept
  (:func:`training.evaluation.calibration.calibration_slope_intercept`: IPCW logistic
  recalibration) at the horizon, with bootstrap standard errors (patients resampled).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from training.evaluation.calibration import calibration_slope_intercept
from training.evaluation.incidence import aalen_johansen_ci
from training.models.competing import BONE_METASTASIS, DAYS_PER_MONTH

__all__ = ["observed_expected", "calibration_windows"]


def observed_expected(y: np.ndarray, p: np.ndarray, months: float, conf_level: float) -> dict:
    """Observed (Aalen-Johansen) over expected (mean prediction) incidence by ``months``.

    Returns
    -------
    dict
        ``months, n, events, observed, observed_lo, observed_hi, expected, ratio, ratio_lo,
        ratio_hi, conf_level, followed`` (patients followed beyond the horizon); ``ratio`` is
        None when nobody is followed that long or nothing is expected.
    """
    h = months * DAYS_PER_MONTH
    followed = int(np.sum(y["time"] >= h))
    row = {
        "months": months,
        "n": int(y.shape[0]),
        "conf_level": conf_level,
        "followed": followed,
        "events": int(np.sum((y["cause"] == BONE_METASTASIS) & (y["time"] <= h))),
        "expected": float(np.mean(p)),
    }
    if followed == 0 or row["expected"] <= 0:
        row.update(
            observed=None,
            observed_lo=None,
            observed_hi=None,
            ratio=None,
            ratio_lo=None,
            ratio_hi=None,
        )
        return row
    ci = aalen_johansen_ci(y, [h], conf_level).iloc[0]
    e = row["expected"]
    row.update(
        observed=float(ci["cif"]),
        observed_lo=float(ci["lo"]),
        observed_hi=float(ci["hi"]),
        ratio=float(ci["cif"]) / e,
        ratio_lo=float(ci["lo"]) / e,
        ratio_hi=float(ci["hi"]) / e,
    )
    return row


def calibration_windows(
    y: np.ndarray,
    p: np.ndarray,
    enroll_day: np.ndarray,
    months: float,
    width_days: float,
    step_days: float,
    min_events: int,
    n_boot: int,
    seed: int,
) -> list[dict]:
    """Calibration slope and intercept with bootstrap standard errors in sliding windows.

    A window is computed when it holds at least ``min_events`` bone metastases by the horizon
    and the fit converges; otherwise it is listed with a ``note``.

    Returns
    -------
    list of dict
        ``start, end`` (days), ``n, events, slope, slope_se, intercept, intercept_se`` or
        ``note``.
    """
    rng = np.random.default_rng(seed)
    h = months * DAYS_PER_MONTH
    first, last = float(np.min(enroll_day)), float(np.max(enroll_day))
    out = []
    start = first
    while start <= last:
        end = start + width_days
        member = (enroll_day >= start) & (enroll_day < end)
        yw, pw = y[member], p[member]
        events = int(np.sum((yw["cause"] == BONE_METASTASIS) & (yw["time"] <= h)))
        row = {"start": start, "end": end, "n": int(member.sum()), "events": events}
        if events < min_events:
            row["note"] = f"{events} bone metastases by {months:g} months (fewer than {min_events})"
            out.append(row)
            start += step_days
            continue
        try:
            fit = calibration_slope_intercept(yw, pw, months)
        except ValueError as err:
            row["note"] = f"not estimable: {err}"
            out.append(row)
            start += step_days
            continue
        boots = []
        for _ in range(n_boot):
            idx = rng.integers(0, yw.shape[0], yw.shape[0])
            try:
                boots.append(tuple(calibration_slope_intercept(yw[idx], pw[idx], months)))
            except ValueError:
                continue
        boots_arr = np.asarray(boots) if boots else np.empty((0, 2))
        row.update(
            slope=fit.slope,
            intercept=fit.intercept,
            slope_se=float(np.std(boots_arr[:, 0], ddof=1)) if len(boots) > 1 else None,
            intercept_se=float(np.std(boots_arr[:, 1], ddof=1)) if len(boots) > 1 else None,
            n_boot_used=len(boots),
        )
        out.append(row)
        start += step_days
    return out


def window_alarms(windows: list[dict], alpha: float) -> None:
    """Mark each computed window ``alarm`` when its Bonferroni interval at level
    ``1 - alpha / (2 w)`` excludes slope 1 or intercept 0 (``w`` computed windows); add the
    bounds."""
    done = [w for w in windows if w.get("slope_se")]
    if not done:
        return
    z = float(norm.ppf(1 - alpha / (2 * 2 * len(done))))
    for w in done:
        w["slope_lo"], w["slope_hi"] = (
            w["slope"] - z * w["slope_se"],
            w["slope"] + z * w["slope_se"],
        )
        w["intercept_lo"] = w["intercept"] - z * w["intercept_se"]
        w["intercept_hi"] = w["intercept"] + z * w["intercept_se"]
        w["alarm"] = bool(
            not (w["slope_lo"] <= 1.0 <= w["slope_hi"])
            or not (w["intercept_lo"] <= 0.0 <= w["intercept_hi"])
        )


__all__.append("window_alarms")
