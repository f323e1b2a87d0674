"""The survival bases of the cause-specific families: their defaults, construction and bounds.

:class:`training.models.cause_specific.CauseSpecificHazards` fits one base estimator per cause.
The bases with proportional hazards (:data:`PH_BASES`) give a log relative hazard (their
baseline is Breslow's); ``rsf``, a random survival forest, gives one cumulative hazard curve per
patient.

Resource rules baked in: XGBoost always runs with one thread (two threads on a two-core machine
were erratically 10-100x slower), random survival forests are bounded (:data:`RSF_LIMITS`)
because every tree node stores a curve over the distinct training times.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "PH_BASES",
    "BASES",
    "BASE_DEFAULTS",
    "RSF_LIMITS",
    "base_params",
    "check_rsf_bounds",
    "check_rsf_size",
    "make_base_estimator",
    "rsf_size_bound",
]

#: Bases with proportional hazards: a log relative hazard plus a Breslow baseline.
PH_BASES: tuple[str, ...] = ("coxph", "coxnet", "gbsa", "xgb_cox")
#: Every survival base of :class:`CauseSpecificHazards`.
BASES: tuple[str, ...] = PH_BASES + ("rsf",)

#: Parameters of each base when not given (merged under the caller's ``params``).
BASE_DEFAULTS: dict[str, dict[str, Any]] = {
    "coxph": {"alpha": 1.0},
    "coxnet": {"alpha": 0.01, "l1_ratio": 0.5},
    "gbsa": {
        # sksurv's Cox loss and gradient are O(n^2) per stage: few, subsampled stages.
        "n_estimators": 40,
        "learning_rate": 0.15,
        "max_depth": 2,
        "min_samples_leaf": 10,
        "subsample": 0.5,
        "random_state": 0,
        # Bound: each cause's boosting is fitted on at most this many patients (a seeded
        # random subset); the Breslow baseline still uses every patient. At 6,000 rows
        # a fit took 33 s (O(n^2) loss per stage; docs/benchmarks.md).
        "max_fit_rows": 5000,
    },
    "xgb_cox": {
        "n_estimators": 200,
        "learning_rate": 0.05,
        "max_depth": 2,
        "min_child_weight": 1.0,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "random_state": 0,
    },
    "rsf": {
        "n_estimators": 50,
        "min_samples_leaf": 20,
        "max_samples": 2000,
        "max_features": "sqrt",
        "random_state": 0,
    },
}

#: Bounds on random survival forests. Each tree node stores its cumulative hazard and survival
#: curves over the distinct training times (float64, ``2 * n_times`` values), so a forest holds
#: at most about :func:`rsf_size_bound` bytes per cause, whatever the cohort size: trees see a
#: bootstrap sample of at most ``max_samples`` patients, leaves hold at least
#: ``min_samples_leaf`` of them and times are coarsened to a grid (one month by default) of at
#: most ``max_times`` distinct times. A configuration whose bound exceeds ``max_bytes_per_cause``
#: is refused before fitting. Measured with the defaults at 100,000 patients (72 monthly
#: times): 7 MB pickled and 1.0 s per cause, peak RSS 259 MB for both causes (217 MB with the
#: data loaded); the largest allowed kind of forest (200 trees, 5,000 draws, leaves of 10)
#: pickled to 116 MB per cause with peak RSS 466 MB.
RSF_LIMITS: dict[str, float] = {
    "min_samples_leaf": 10,  # at least
    "max_samples": 5000,  # at most (an absolute count of bootstrap draws per tree)
    "n_estimators": 300,  # at most
    "max_times": 240,  # at most: distinct grid times (20 years of follow-up on a monthly grid)
    "max_bytes_per_cause": 256e6,  # at most: rsf_size_bound of one cause's forest
}


def rsf_size_bound(
    n_estimators: int, max_samples: int, min_samples_leaf: int, n_times: int
) -> float:
    """Upper bound (bytes) on the node curves of one random survival forest.

    A tree grown on at most ``max_samples`` distinct patients with leaves of at least
    ``min_samples_leaf`` has at most ``2 * max_samples / min_samples_leaf`` nodes, each storing
    ``2 * n_times`` float64 values (cumulative hazard and survival).

    Parameters
    ----------
    n_estimators, max_samples, min_samples_leaf, n_times : int
        Trees, bootstrap draws per tree, minimum leaf size and distinct training times.

    Returns
    -------
    float
        Bytes.
    """
    nodes = 2.0 * max_samples / min_samples_leaf
    return float(n_estimators) * nodes * n_times * 2 * 8


#: Coxnet is fitted along alphas from this multiple of the target alpha down to it.

COXNET_PATH_RATIO = 30.0


def base_params(base: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters of a base: ``params`` merged over :data:`BASE_DEFAULTS`, checked.

    Raises
    ------
    ValueError
        An unknown base, a thread count other than 1, or rsf settings beyond
        :data:`RSF_LIMITS`.
    """
    if base not in BASES:
        raise ValueError(f"unknown base {base!r}: expected one of {', '.join(BASES)}")
    merged = {**BASE_DEFAULTS[base], **dict(params or {})}
    for key in ("n_jobs", "nthread"):
        if key in merged and merged[key] != 1:
            raise ValueError(
                f"{base}: {key}={merged[key]!r} is not allowed; the families run "
                "single-threaded (parallelism belongs to the cross-validation loop)"
            )
        merged.pop(key, None)
    if base == "rsf":
        check_rsf_bounds(merged)
    return merged


def make_base_estimator(base: str, params: dict[str, Any], n_samples: int):
    """An unfitted base estimator of one cause.

    Parameters
    ----------
    base : str
        One of :data:`BASES`.
    params : dict
        Its parameters, defaults merged (:func:`base_params`); consumed (``alpha`` of coxnet is
        popped, ``max_samples`` of rsf capped).
    n_samples : int
        Training patients (caps rsf's bootstrap draws).

    Returns
    -------
    estimator
        A scikit-survival estimator, or an ``xgboost.XGBRegressor`` for ``xgb_cox``.
    """
    if base == "coxph":
        # scikit-survival's CoxPHSurvivalAnalysis, its Newton-Raphson steps vectorised.
        from training.models.coxph import FastCoxPH

        return FastCoxPH(**{"ties": "breslow", "n_iter": 200, **params})
    if base == "coxnet":
        from sksurv.linear_model import CoxnetSurvivalAnalysis

        # A short warm-start path down to alpha: a single small alpha fitted from zero can
        # fail ("weights are too large"); predictions use the last (target) alpha. No baseline
        # model: CauseSpecificHazards fits its own Breslow baseline (fitting scikit-survival's
        # for each of the 8 alphas was most of the family's fitting time).
        alphas = float(params.pop("alpha")) * np.geomspace(COXNET_PATH_RATIO, 1.0, 8)
        return CoxnetSurvivalAnalysis(alphas=alphas, fit_baseline_model=False, **params)
    if base == "gbsa":
        # scikit-survival's GradientBoostingSurvivalAnalysis, its Cox loss in O(n log n).
        from training.models.gbsa import FastGBSA

        return FastGBSA(loss="coxph", **params)
    if base == "xgb_cox":
        from xgboost import XGBRegressor

        return XGBRegressor(
            objective="survival:cox", n_jobs=1, tree_method="hist", verbosity=0, **params
        )
    from sksurv.ensemble import RandomSurvivalForest

    params["max_samples"] = min(int(params["max_samples"]), n_samples)
    return RandomSurvivalForest(bootstrap=True, n_jobs=1, low_memory=False, **params)


def check_rsf_bounds(params: Mapping[str, Any]) -> None:
    """Refuse forest settings whose size would grow without bound (see :data:`RSF_LIMITS`)."""
    leaf = params.get("min_samples_leaf")
    if not isinstance(leaf, int | np.integer) or leaf < RSF_LIMITS["min_samples_leaf"]:
        raise ValueError(
            f"rsf: min_samples_leaf must be an integer >= {RSF_LIMITS['min_samples_leaf']:g}, "
            f"got {leaf!r}"
        )
    draws = params.get("max_samples")
    if not isinstance(draws, int | np.integer) or not 1 <= draws <= RSF_LIMITS["max_samples"]:
        raise ValueError(
            "rsf: max_samples must be an integer number of bootstrap draws per tree, at most "
            f"{RSF_LIMITS['max_samples']:g}, got {draws!r}"
        )
    trees = params.get("n_estimators")
    if not isinstance(trees, int | np.integer) or not 1 <= trees <= RSF_LIMITS["n_estimators"]:
        raise ValueError(
            f"rsf: n_estimators must be an integer in [1, {RSF_LIMITS['n_estimators']:g}], "
            f"got {trees!r}"
        )
    for key in ("low_memory", "bootstrap"):
        if key in params:
            raise ValueError(f"rsf: {key} is fixed by the family and cannot be set")


def check_rsf_size(params: Mapping[str, Any], n_samples: int, n_times: int, step: float) -> None:
    """Refuse a forest whose node curves could exceed the memory bound."""
    if n_times > RSF_LIMITS["max_times"]:
        raise ValueError(
            f"rsf: {n_times} distinct times on a {step:g}-day grid exceed "
            f"{RSF_LIMITS['max_times']:g}; raise time_grid_days"
        )
    draws = min(int(params["max_samples"]), n_samples)
    bound = rsf_size_bound(params["n_estimators"], draws, params["min_samples_leaf"], n_times)
    if bound > RSF_LIMITS["max_bytes_per_cause"]:
        raise ValueError(
            f"rsf: up to {bound / 1e6:.0f} MB of node curves per cause exceeds "
            f"{RSF_LIMITS['max_bytes_per_cause'] / 1e6:.0f} MB; lower n_estimators or "
            "max_samples, or raise min_samples_leaf or time_grid_days"
        )
