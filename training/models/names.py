"""The names of the model families: the one list, importable without any estimator.

:mod:`training.config` (and through it the command line's help) reads the names from here, so
that listing the families does not import scikit-learn, scikit-survival or XGBoost.
:data:`training.models.catalog.FAMILIES` defines one estimator per name (tested equal).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_FAMILIES",
    "OPTIONAL_FAMILIES",
    "FAMILY_NAMES",
    "SIMPLEST_FIRST",
    "STACK_FAMILY",
]

#: Families trained when none are named.
DEFAULT_FAMILIES: tuple[str, ...] = (
    "cox_ridge",
    "cox_elasticnet",
    "rsf",
    "gbsa",
    "xgb_cox",
    "logistic_ipcw",
    "xgb_ipcw",
    "cox_spline",
    "logistic_ipcw_spline",
)
#: Families trained only when named (``--families ...,stacked_ensemble``): a fit is 16 member fits.
OPTIONAL_FAMILIES: tuple[str, ...] = ("stacked_ensemble",)
#: Every family name (the keys of :data:`training.models.catalog.FAMILIES`).
FAMILY_NAMES: tuple[str, ...] = DEFAULT_FAMILIES + OPTIONAL_FAMILIES
#: The version every ``bonemet train`` run adds when it fitted two families or more: the run's
#: families combined with simplex weights fitted on their out-of-fold predictions
#: (:mod:`training.fitting.stack`). Not a family one names: it is built from the others, without
#: a fit of its own.
STACK_FAMILY = "stacked_oof"
#: Every family from the simplest to the most complex (linear, then splines and interactions,
#: then tree ensembles, then the stacked ensembles of families): the selection's one-standard-error
#: rule takes the first of those within noise of the lowest score.
SIMPLEST_FIRST: tuple[str, ...] = (
    "cox_ridge",
    "cox_elasticnet",
    "logistic_ipcw",
    "cox_spline",
    "logistic_ipcw_spline",
    "xgb_cox",
    "gbsa",
    "rsf",
    "xgb_ipcw",
    "stacked_ensemble",
    STACK_FAMILY,
)
