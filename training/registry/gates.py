"""Promotion gates (a policy: it decides, it moves nothing): the written policy and each gate's
verdict with its interval.

:class:`PromotionPolicy` states the gates (discrimination against the champion, calibration
slope and calibration-in-the-large at the headline horizons); :func:`check_gates` evaluates them
on a version's values and intervals (:func:`gate_values`; the challenger is chosen among the
candidates they do not refuse by :mod:`training.registry.selection`). Moving ``champion`` is
:func:`training.registry.promotion.promote`'s, which asks these gates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from features.vocabulary import SELECTION_HORIZONS_MONTHS
from training.config import MODEL_NAME
from training.evaluation.names import METRICS, key, parse
from training.registry.versions import (
    CHAMPION,
    RegistryError,
    alias_version,
    mlflow_client,
    run_metrics,
    version_facts,
)


@dataclass(frozen=True)
class PromotionPolicy:
    """Written gates a version must pass to become ``champion`` (docs/modeling.md).

    Parameters
    ----------
    discrimination_metric : str
        Version tag compared with the champion's (higher is better).
    discrimination_margin : float
        The candidate may be worse than the champion by at most this much.
    slope_metric : str
        Version tag of the calibration slope on the test split, ``{h}`` standing for a horizon.
    slope_band : tuple of float
        Inclusive band the calibration slope must lie in at every horizon.
    citl_metric : str
        Version tag of calibration-in-the-large (predicted minus observed), ``{h}`` a horizon.
    citl_max : float
        Largest allowed absolute calibration-in-the-large at every horizon.
    horizons_months : tuple of int
        Headline horizons whose probability must be calibrated (12, 24 and 36 months).
    selection_discrimination_metric : str
        Candidate metric of the discrimination gate of :func:`choose_challenger`.
    """

    discrimination_metric: str = key("uno_c", "test_")
    discrimination_margin: float = 0.01
    slope_metric: str = key("calibration_slope", "test_") + "_{h}m"
    slope_band: tuple[float, float] = (0.8, 1.2)
    citl_metric: str = key("calibration_in_the_large", "test_") + "_{h}m"
    citl_max: float = 0.05
    horizons_months: tuple[int, ...] = SELECTION_HORIZONS_MONTHS
    selection_discrimination_metric: str = key("uno_c", "cv_", statistic="_mean")


@dataclass(frozen=True)
class Gate:
    """One gate's verdict: its name, whether it passed, why, the metric it read, and the
    estimate with its 95 % interval (None where not recorded)."""

    name: str
    passed: bool
    detail: str
    metric: str = ""
    estimate: float | None = None
    lo: float | None = None
    hi: float | None = None


def tag_float(tags: dict[str, str], name: str) -> float | None:
    """The finite number recorded under ``name`` (tags and run metrics are strings), or None."""
    try:
        value = float(tags[name])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def interval_of(values: dict[str, str], metric: str, estimate: float) -> tuple | None:
    """The recorded 95 % interval ``(lo, hi)`` of ``metric`` (``<metric>_lo``/``_hi``), or
    None when absent or when it does not contain the estimate (then it is not this
    estimate's interval: a value changed by hand, and the gate reads the point alone)."""
    lo, hi = tag_float(values, f"{metric}_lo"), tag_float(values, f"{metric}_hi")
    if lo is None or hi is None or not lo - 1e-9 <= estimate <= hi + 1e-9:
        return None
    return lo, hi


def _judged_gate(
    values: dict[str, str], name: str, metric: str, band: tuple[float, float], ideal: float
) -> Gate:
    """A calibration gate judged on the evidence (:func:`check_gates`).

    With an interval: refused only when the estimate is outside ``band`` *and* the 95 %
    interval excludes the ``ideal`` value (the miscalibration is both beyond the tolerance and
    more than the sample's noise). Without one: the point estimate must lie in ``band``.
    Absent (too few events to fit it): refused.
    """
    value = tag_float(values, metric)
    if value is None:
        return Gate(name, False, f"{metric} is not recorded on the version", metric)
    low, high = band
    inside = low <= value <= high
    if (parsed := parse(metric)) is not None and parsed.metric.name == "calibration_in_the_large":
        point = f"{value:+.3f}"
        band_text = f"+/-{high:g}"
        verdict = "within" if inside else "beyond"
    else:
        point = f"{value:.3f}"
        band_text = f"[{low:g}, {high:g}]"
        verdict = "within" if inside else "outside"
    interval = interval_of(values, metric, value)
    if interval is None:
        return Gate(name, inside, f"{metric} {point} {verdict} {band_text}", metric, value)
    lo, hi = interval
    excludes = not lo <= ideal <= hi
    passed = inside or not excludes
    detail = f"{metric} {point} (95 % CI {lo:.3f} to {hi:.3f}) {verdict} {band_text}"
    if not inside:
        detail += (
            f"; the interval excludes {ideal:g}: miscalibrated beyond the sample's noise"
            if excludes
            else f"; the interval includes {ideal:g}: not evidence of miscalibration"
        )
    return Gate(name, passed, detail, metric, value, lo, hi)


def _half_width(values: dict[str, str], metric: str, estimate: float) -> float | None:
    """Half the 95 % interval of ``metric`` (an approximate 1.96 standard errors), or None."""
    interval = interval_of(values, metric, estimate)
    return None if interval is None else (interval[1] - interval[0]) / 2


#: A training run's out-of-fold 24-month risk of every training row (in the order of
#: :func:`training.fitting.data.prepare_training_data`), logged with each family's run of the
#: out-of-fold design: what a later version trained on the same cohort is paired with.
OOF_RISK_ARTIFACT = "oof_risk_24m.json"
#: The candidate's discrimination minus the champion's on the same patients (paired), its
#: 95 % interval (``_lo``, ``_hi``) and the champion version it was measured against.
PAIRED_DELTA = "paired_delta_{metric}_vs_champion"
PAIRED_VERSION = "paired_champion_version"


def champion_pairing(dataset_digest: str, design: str, n_rows: int):
    """``(version, out-of-fold risk)`` of the current champion when it can be paired with this
    training's versions: trained on the same cohort (``dataset_digest``), evaluated out of fold
    (as this training, ``design``), with its out-of-fold risk logged for the same ``n_rows``
    rows. None otherwise (no champion, another cohort or design, an older version without the
    artifact, the store unreachable): the gate then combines the two intervals unpaired."""
    import mlflow
    import numpy as np
    from mlflow.exceptions import MlflowException

    if design != "nested_cv_oof":
        return None
    try:
        version = alias_version(CHAMPION)
        if version is None:
            return None
        champion = mlflow_client().get_model_version(MODEL_NAME, version)
        digest = version_facts(champion.tags or {}).get("dataset_digest")
        if digest != dataset_digest or not champion.run_id:
            return None
        risk = mlflow.artifacts.load_dict(f"runs:/{champion.run_id}/{OOF_RISK_ARTIFACT}")
    except (MlflowException, OSError, ValueError, RegistryError):
        return None
    risk = np.asarray(risk.get("risk_24m", []), dtype=float)
    return (str(version), risk) if risk.shape == (n_rows,) else None


def paired_discrimination(
    pairing, y, risk, n_boot: int, seed: int, max_resample: int | None = None
) -> dict[str, float]:
    """The metrics of :data:`PAIRED_DELTA`: Uno's C (tau 60 months, as ``test_uno_c``) of the
    out-of-fold ``risk`` minus the champion's (``pairing``, :func:`champion_pairing`) on the same
    rows ``y``, with the paired bootstrap interval (same resamples for both)."""
    import numpy as np

    from training.evaluation.bootstrap import paired_bootstrap_difference
    from training.evaluation.concordance import censoring_estimator, uno_c
    from training.models.competing import DAYS_PER_MONTH

    version, champion_risk = pairing
    cens = censoring_estimator(y)
    tau = 60 * DAYS_PER_MONTH

    def fn(yy, r):
        return uno_c(y, yy, r, tau, cens)

    if n_boot:
        iv = paired_bootstrap_difference(
            fn, y, risk, champion_risk, n_boot=n_boot, seed=seed, max_resample=max_resample
        )
        estimate, lo, hi = iv.estimate, iv.lo, iv.hi
    else:
        estimate, lo, hi = fn(y, risk) - fn(y, champion_risk), float("nan"), float("nan")
    name = PAIRED_DELTA.format(metric="test_uno_c")
    out = {name: estimate, f"{name}_lo": lo, f"{name}_hi": hi, PAIRED_VERSION: float(version)}
    return {k: float(v) for k, v in out.items() if np.isfinite(v)}


def gate_values(version) -> dict[str, str]:
    """What the gates and ``compare`` read of a version: its training run's metrics (every
    horizon, intervals: :func:`training.registry.versions.run_metrics`) under the headline
    values it was registered with (:func:`training.registry.versions.version_facts`)."""
    facts = version_facts(version.tags or {})
    run_id = version.run_id or facts.get("run_id")
    values = run_metrics(run_id) if run_id else {}
    return {
        **{k: str(x) for k, x in {**values, **facts["metrics"]}.items()},
        "model_version": str(version.version),
    }


def _discrimination_gate(
    candidate: dict[str, str],
    champion: dict[str, str],
    cand: float,
    champ: float,
    policy: PromotionPolicy,
) -> Gate:
    """Candidate against champion: refused only when it is worse by more than the margin and
    the 95 % interval of the difference excludes 0 (without intervals: the margin alone).

    The interval of the difference combines the two recorded intervals as independent
    (``sqrt(a^2 + b^2)`` of their half-widths; the champion's alone counts 0 when absent):
    versions trained on different cohorts or folds are not paired, and treating them as
    independent is conservative for the candidate.
    """
    metric = policy.discrimination_metric
    margin = policy.discrimination_margin
    paired = _paired(candidate, champion, metric)
    if paired is not None:
        diff, lo, hi = paired
        beyond, excludes = diff < -margin, hi < 0
        text = (
            f"{metric} {cand:.4f} vs champion {champ:.4f}: difference on the same patients "
            f"{diff:+.4f} (95 % CI {lo:+.4f} to {hi:+.4f}, paired: both versions' out-of-fold "
            f"predictions, same bootstrap resamples; allowed margin {margin:g})"
        )
        if beyond:
            text += (
                ": worse beyond the margin and beyond the noise"
                if excludes
                else ": below the margin but the interval includes 0: not evidence it is worse"
            )
        return Gate("discrimination", not (beyond and excludes), text, metric, diff, lo, hi)
    diff = cand - champ
    beyond = cand < champ - margin
    text = f"{metric} {cand:.4f} vs champion {champ:.4f} (allowed margin {margin:g})"
    a = _half_width(candidate, metric, cand)
    if a is None:
        return Gate(
            "discrimination",
            not beyond,
            text + ("" if not beyond else ": worse beyond the margin"),
            metric,
            cand,
        )
    b = _half_width(champion, metric, champ) or 0.0
    half = float((a**2 + b**2) ** 0.5)
    lo, hi = diff - half, diff + half
    excludes = hi < 0
    passed = not (beyond and excludes)
    text = (
        f"{metric} {cand:.4f} vs champion {champ:.4f}: difference {diff:+.4f} (95 % CI "
        f"{lo:+.4f} to {hi:+.4f}, unpaired: the two versions' intervals combined as "
        f"independent, conservative; allowed margin {margin:g})"
    )
    if beyond:
        text += (
            ": worse beyond the margin and beyond the noise"
            if excludes
            else ": below the margin but the interval includes 0: not evidence it is worse"
        )
    return Gate("discrimination", passed, text, metric, diff, lo, hi)


def _paired(candidate: dict[str, str], champion: dict[str, str], metric: str):
    """``(difference, lo, hi)`` measured on the same patients against this champion version
    (:func:`paired_discrimination`), or None."""
    name = PAIRED_DELTA.format(metric=metric)
    values = [tag_float(candidate, k) for k in (name, f"{name}_lo", f"{name}_hi")]
    against = tag_float(candidate, PAIRED_VERSION)
    version = tag_float(champion, "model_version")
    if any(v is None for v in values) or against is None or against != version:
        return None
    diff, lo, hi = values
    return (diff, lo, hi) if lo <= diff <= hi else None


def check_gates(
    candidate: dict[str, str], champion: dict[str, str] | None, policy: PromotionPolicy
) -> list[Gate]:
    """Evaluate the promotion gates on a version's values (:func:`gate_values`; the champion's
    may be None).

    Each gate reads the estimate and, when recorded, its 95 % interval (``<metric>_lo``,
    ``<metric>_hi``: the bootstrap of the out-of-fold or held-out predictions): a version is
    refused when the evidence puts it outside the bounds (estimate beyond the tolerance *and*
    interval excluding the ideal), not when a small sample wobbles. Without an interval the
    point estimate is judged against the bounds.
    """
    gates = []
    metric = policy.discrimination_metric
    cand = tag_float(candidate, metric)
    champ = tag_float(champion, metric) if champion is not None else None
    if cand is None:
        gates.append(
            Gate("discrimination", False, f"{metric} is not recorded on the version", metric)
        )
    elif champion is None:
        gates.append(
            Gate("discrimination", True, f"{metric} {cand:.4f}; no champion yet", metric, cand)
        )
    elif champ is None:
        gates.append(
            Gate(
                "discrimination",
                True,
                f"{metric} {cand:.4f}; the champion has no {metric} to compare",
                metric,
                cand,
            )
        )
    else:
        gates.append(_discrimination_gate(candidate, champion, cand, champ, policy))
    for h in policy.horizons_months:
        gates.append(
            _judged_gate(
                candidate,
                key("calibration_slope", horizon=h),
                policy.slope_metric.format(h=h),
                policy.slope_band,
                METRICS["calibration_slope"].ideal,
            )
        )
        gates.append(
            _judged_gate(
                candidate,
                key("calibration_in_the_large", horizon=h),
                policy.citl_metric.format(h=h),
                (-policy.citl_max, policy.citl_max),
                METRICS["calibration_in_the_large"].ideal,
            )
        )
    return gates
