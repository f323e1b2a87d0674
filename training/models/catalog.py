"""The family registry: each family's name, how to build its estimator and what to search.

:data:`FAMILIES` maps each family name (the names are defined in :mod:`training.models.names`)
to a :class:`Family`: how to build its estimator from a parameter dict and a small
hyperparameter grid sized for nested cross-validation on about 2,000 patients on two cores (fit
times in the comment above :data:`FAMILIES`).

Two kinds of family:

- ``survival``: :class:`training.models.cause_specific.CauseSpecificHazards` on a base of
  :mod:`training.models.bases` (``coxph``, ``coxnet``, ``gbsa``, ``xgb_cox``, ``rsf``), and the
  stacked ensemble (:class:`training.models.ensemble.StackedEnsemble`);
- ``classifier``: one binary classifier per horizon with inverse probability of censoring
  weights (:mod:`training.models.ipcw`): logistic regression or XGBoost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sklearn.base import BaseEstimator

from training.models.cause_specific import CauseSpecificHazards
from training.models.ensemble import StackedEnsemble
from training.models.ipcw import IPCWHorizonClassifier, XGBIPCWClassifier
from training.models.names import SIMPLEST_FIRST

__all__ = ["Family", "FAMILIES", "ENSEMBLE_MEMBERS"]


@dataclass(frozen=True)
class Family:
    """A model family: how to build its estimator and which configurations to search.

    Parameters
    ----------
    name : str
        Registry key (also the ``family`` tag of registered versions).
    kind : {"survival", "classifier"}
        ``survival``: cause-specific hazards combined (any time); ``classifier``: one IPCW
        classifier per horizon (interpolated between horizons).
    make : callable
        ``make(params) -> estimator``: an unfitted estimator for one configuration; ``{}``
        gives the defaults.
    grid : tuple of dict
        Configurations to search (at most four), each a ``params`` for ``make``; the most
        plausible first, so that a search truncating the grid keeps it.
    description : str
        One line for reports.
    flexible : bool, default=False
        Fitted on flexible features: restricted cubic splines and the pre-specified marker
        interactions (:class:`features.transformers.FlexibleFeatures`), degrees of freedom
        bounded by the events (:func:`training.fitting.search.flexible_df`).
    is_cox : bool, default=False
        A linear cause-specific Cox model on the standard features: its run also reports the
        marker's likelihood-ratio test (:func:`training.fitting.marker.marker_lr_test`).
    slow : bool, default=False
        Its run takes longest on large cohorts (gradient boosting's O(n^2) loss, the forests):
        handed to the worker processes first (longest-processing-time-first scheduling).
    ensemble_member : bool, default=False
        A member of the stacked ensemble (:data:`ENSEMBLE_MEMBERS`), with its grid's first
        configuration.
    """

    name: str
    kind: Literal["survival", "classifier"]
    make: Callable[[Mapping[str, Any]], BaseEstimator]
    grid: tuple[dict[str, Any], ...]
    description: str
    flexible: bool = False
    is_cox: bool = False
    slow: bool = False
    ensemble_member: bool = False


_WRAPPER_KEYS = ("time_grid_days", "score_horizon_months")


def _survival_maker(base: str) -> Callable[[Mapping[str, Any]], CauseSpecificHazards]:
    def make(params: Mapping[str, Any]) -> CauseSpecificHazards:
        params = dict(params)
        wrapper = {k: params.pop(k) for k in _WRAPPER_KEYS if k in params}
        return CauseSpecificHazards(base=base, params=params, **wrapper)

    make.__doc__ = f"CauseSpecificHazards(base={base!r}) from a parameter dict."
    return make


def _make_logistic_ipcw(params: Mapping[str, Any]) -> IPCWHorizonClassifier:
    return IPCWHorizonClassifier(**params)


def _make_xgb_ipcw(params: Mapping[str, Any]) -> XGBIPCWClassifier:
    return XGBIPCWClassifier(**params)


# Grids are sized for nested cross-validation on ~2,000 patients on two cores. Fit + predict per
# configuration on the 1,227-row, 36-feature training split of simulate_cohort(2000, 42), one
# BLAS thread: cox_ridge 0.37-0.46 s, cox_elasticnet 0.10-0.13 s, rsf 0.36-0.61 s (3-6 MB),
# gbsa 1.2 s, xgb_cox 0.09-0.15 s, logistic_ipcw 0.02-0.04 s, xgb_ipcw 0.12-0.19 s. All 7
# families in 3 x 3 nested CV (264 fits) took 40 s on two workers, 5 x 5 (710 fits) 154 s.
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            name="cox_ridge",
            kind="survival",
            make=_survival_maker("coxph"),
            grid=tuple({"alpha": a} for a in (1.0, 5.0, 25.0, 100.0)),
            description="cause-specific Cox models, ridge penalty (sksurv CoxPHSurvivalAnalysis)",
            is_cox=True,
            ensemble_member=True,
        ),
        Family(
            name="cox_elasticnet",
            kind="survival",
            make=_survival_maker("coxnet"),
            grid=(
                {"alpha": 0.01, "l1_ratio": 0.5},
                {"alpha": 0.03, "l1_ratio": 0.5},
                {"alpha": 0.003, "l1_ratio": 0.5},
                {"alpha": 0.01, "l1_ratio": 0.9},
            ),
            description="cause-specific Cox models, elastic net (sksurv CoxnetSurvivalAnalysis)",
            is_cox=True,
        ),
        Family(
            name="rsf",
            kind="survival",
            make=_survival_maker("rsf"),
            grid=(
                {"min_samples_leaf": 20, "max_features": "sqrt"},
                {"min_samples_leaf": 40, "max_features": "sqrt"},
                {"min_samples_leaf": 20, "max_features": 0.33},
                {"min_samples_leaf": 40, "max_features": 0.33},
            ),
            description="cause-specific random survival forests on a monthly time grid, bounded",
            slow=True,
            ensemble_member=True,
        ),
        Family(
            name="gbsa",
            kind="survival",
            make=_survival_maker("gbsa"),
            grid=(
                {"learning_rate": 0.1, "max_depth": 2},
                {"learning_rate": 0.2, "max_depth": 2},
                {"learning_rate": 0.2, "max_depth": 3},
            ),
            description="cause-specific gradient-boosted Cox models (sksurv, loss='coxph')",
            slow=True,
        ),
        Family(
            name="xgb_cox",
            kind="survival",
            make=_survival_maker("xgb_cox"),
            grid=(
                {"n_estimators": 200, "learning_rate": 0.03, "max_depth": 2},
                {"n_estimators": 200, "learning_rate": 0.05, "max_depth": 2},
                {"n_estimators": 200, "learning_rate": 0.03, "max_depth": 3},
                {"n_estimators": 200, "learning_rate": 0.05, "max_depth": 1},
            ),
            description="cause-specific XGBoost Cox models (survival:cox) with Breslow baselines",
            ensemble_member=True,
        ),
        Family(
            name="logistic_ipcw",
            kind="classifier",
            make=_make_logistic_ipcw,
            grid=tuple({"C": c} for c in (1.0, 0.1, 0.01, 10.0)),
            description="IPCW logistic regression per horizon, death before h = no event",
            ensemble_member=True,
        ),
        Family(
            name="xgb_ipcw",
            kind="classifier",
            make=_make_xgb_ipcw,
            grid=(
                {"n_estimators": 150, "learning_rate": 0.03, "max_depth": 2},
                {"n_estimators": 150, "learning_rate": 0.05, "max_depth": 2},
                {"n_estimators": 150, "learning_rate": 0.03, "max_depth": 3},
                {"n_estimators": 150, "learning_rate": 0.05, "max_depth": 1},
            ),
            description="IPCW XGBoost classifiers per horizon, death before h = no event",
        ),
    )
}


def _flexible_variant(base: str, name: str, description: str) -> Family:
    """The family ``base`` (same estimator and grid) fitted on flexible features."""
    fam = FAMILIES[base]
    return Family(name, fam.kind, fam.make, fam.grid, description, flexible=True)


#: Members of the stacked ensemble (``ensemble_member``): a linear PH model, a direct per-horizon
#: model and two tree ensembles (one PH, one not), each with its family's first (most plausible)
#: configuration, from the simplest to the most complex.
ENSEMBLE_MEMBERS = tuple(
    n for n in SIMPLEST_FIRST if n in FAMILIES and FAMILIES[n].ensemble_member
)


def _make_stacked_ensemble(params: Mapping[str, Any]) -> StackedEnsemble:
    """The stacked ensemble whose members are families named in ``params["members"]`` (default
    :data:`ENSEMBLE_MEMBERS`), each with its grid's first configuration."""
    params = dict(params)
    names = params.pop("members", ENSEMBLE_MEMBERS)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown member famil(ies): {', '.join(unknown)}")
    members = tuple((n, FAMILIES[n].make(FAMILIES[n].grid[0])) for n in names)
    return StackedEnsemble(members=members, **params)


FAMILIES.update(
    (f.name, f)
    for f in (
        Family(
            name="stacked_ensemble",
            kind="survival",
            make=_make_stacked_ensemble,
            grid=({},),
            description="super learner: out-of-fold incidences of cox_ridge, logistic_ipcw, "
            "xgb_cox and rsf (flexible features) weighted to minimise the IPCW Brier score",
            flexible=True,
            slow=True,
        ),
        _flexible_variant(
            "cox_ridge",
            "cox_spline",
            "cause-specific ridge Cox models with restricted cubic splines and marker interactions",
        ),
        _flexible_variant(
            "logistic_ipcw",
            "logistic_ipcw_spline",
            "IPCW logistic regression per horizon (effects free to change over follow-up) "
            "with restricted cubic splines and marker interactions",
        ),
    )
)
