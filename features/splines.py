"""Restricted cubic splines and the marker's pre-specified interactions (flexible families).

:class:`FlexibleFeatures` adds the non-linear terms to the linear features of
:mod:`features.transformers` (which re-exports everything here, the path models logged by
0.1.0 pickled).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from features.marker import MARKER_COLUMNS, PERCENT_FLOOR, rows_log2_percent
from features.typed_rows import Rows, equals, numeric, require_columns, require_fitted

__all__ = [
    "FlexibleFeatures",
    "HARRELL_KNOT_QUANTILES",
    "INTERACTIONS",
    "SPLINE_INPUTS",
    "harrell_knots",
    "rcs_basis",
]


#: Knot positions (quantiles) of a restricted cubic spline by number of knots (Harrell,
#: Regression Modeling Strategies, 2nd ed., section 2.4.6).
HARRELL_KNOT_QUANTILES: dict[int, tuple[float, ...]] = {
    3: (0.10, 0.50, 0.90),
    4: (0.05, 0.35, 0.65, 0.95),
    5: (0.05, 0.275, 0.50, 0.725, 0.95),
}

#: Continuous inputs given a restricted cubic spline, in order of priority when the degrees of
#: freedom are short: the marker (the question of the study), then age, ALP, Ki-67, size.
SPLINE_INPUTS: tuple[str, ...] = (
    "oc_log2_percent",
    "age_years",
    "log_alp",
    "ki67_percent",
    "log_tumor_size_mm",
)

#: Pre-specified interactions of the marker: (name, clinical reason). Each adds one degree of
#: freedom: the marker (centred at its training median) times the modifier.
INTERACTIONS: tuple[tuple[str, str], ...] = (
    (
        "metastatic",
        "the marker's signal may differ once disease has spread (the study's published hazard "
        "ratio is from metastatic disease; early disease has no figure)",
    ),
    (
        "bone_targeted_therapy",
        "bone-targeted agents suppress bone turnover, which lowers the marker, and act on the "
        "bone niche itself; domain.md: therapy is an effect modifier, not a plain covariate",
    ),
)


def harrell_knots(values: np.ndarray, n_knots: int) -> np.ndarray:
    """Knots at Harrell's quantiles of the non-missing ``values`` (fewer if values tie).

    Parameters
    ----------
    values : numpy.ndarray
    n_knots : {3, 4, 5}

    Returns
    -------
    numpy.ndarray
        Strictly increasing knots; fewer than 3 when the values do not support a spline.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(finite, HARRELL_KNOT_QUANTILES[n_knots]))


def rcs_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Non-linear terms of a restricted cubic (natural) spline, Harrell's parametrisation.

    With knots ``t_1 < ... < t_k`` the spline is ``b0 x + sum_j b_j f_j(x)``, linear beyond the
    outer knots, with for ``j = 1 .. k - 2``::

        f_j(x) = [(x - t_j)+^3 - (x - t_{k-1})+^3 (t_k - t_j) / (t_k - t_{k-1})
                  + (x - t_k)+^3 (t_{k-1} - t_j) / (t_k - t_{k-1})] / (t_k - t_1)^2

    (the division makes the terms the scale of ``x``). NaN stays NaN.

    Returns
    -------
    numpy.ndarray
        ``(n, k - 2)``.
    """
    t = np.asarray(knots, dtype=float)
    k = len(t)
    x = np.asarray(x, dtype=float)[:, None]
    tj = t[None, : k - 2]
    span = t[-1] - t[-2]

    def cube(u: np.ndarray) -> np.ndarray:
        return np.maximum(u, 0.0) ** 3

    terms = (
        cube(x - tj) - cube(x - t[-2]) * (t[-1] - tj) / span + cube(x - t[-1]) * (t[-2] - tj) / span
    )
    return terms / (t[-1] - t[0]) ** 2


class FlexibleFeatures(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Restricted cubic splines and pre-specified marker interactions (flexible families).

    Adds columns to the linear features of :class:`~features.transformers.MarkerFeatures` and
    :class:`~features.transformers.ClinicalFeatures`
    (which keep the linear term of each input): the non-linear terms of a restricted cubic
    spline (:func:`rcs_basis`, knots at Harrell's quantiles of the training values) of each
    input of :data:`SPLINE_INPUTS`, and the marker's interactions of :data:`INTERACTIONS`.

    The added degrees of freedom are bounded by ``max_df``, which training sets from the events
    (``events // 15``: Harrell's rule of about 15 events per parameter, applied to the added
    terms because the linear base model is penalised). They are spent in order of priority: the
    marker's spline (4 knots, 2 df; 3 knots, 1 df when only one is left), the marker x setting
    and marker x bone-targeted-therapy interactions (1 df each), then 3-knot splines (1 df) of
    age, log ALP, Ki-67, log tumor size; what does not fit is left linear.

    Missing inputs are imputed at their training median *before* the basis (so a missing value
    gets the spline's value at the median, as its linear term gets the median downstream); a
    missing bone-targeted therapy counts as none in the interaction (the imputer would choose
    the same: most patients are untreated), the missing-value indicator of the clinical
    builder carries the rest.

    Parameters
    ----------
    max_df : int, default=8
        Largest number of added columns (degrees of freedom).
    include_marker : bool, default=True
        False: no marker terms (the clinical-only model).
    floor_percent : float, default=PERCENT_FLOOR (1e-4)
        Floor of the marker before its log2, as :class:`~features.transformers.MarkerFeatures`.
        Models logged by 0.1.0 (before this was a parameter) keep the 0.0005 they were trained
        with.
    """

    columns_in = MARKER_COLUMNS + (
        "age_years",
        "alkaline_phosphatase_u_per_l",
        "ki67_percent",
        "tumor_size_mm",
        "disease_setting",
        "bone_targeted_therapy",
    )

    def __init__(
        self, max_df: int = 8, include_marker: bool = True, floor_percent: float = PERCENT_FLOOR
    ) -> None:
        self.max_df = max_df
        self.include_marker = include_marker
        self.floor_percent = floor_percent

    def __setstate__(self, state: dict) -> None:
        # Pickled by 0.1.0, whose marker floor was MarkerFeatures' default then: 0.0005 %.
        state.setdefault("floor_percent", 0.0005)
        super().__setstate__(state)

    def _inputs(self, X: Rows) -> dict[str, np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = {
                "age_years": numeric(X, "age_years"),
                "log_alp": np.log(numeric(X, "alkaline_phosphatase_u_per_l")),
                "ki67_percent": numeric(X, "ki67_percent"),
                "log_tumor_size_mm": np.log(numeric(X, "tumor_size_mm")),
            }
        if self.include_marker:
            values["oc_log2_percent"] = rows_log2_percent(X, self.floor_percent)
        return values

    @staticmethod
    def _modifiers(X: Rows) -> dict[str, np.ndarray]:
        btt = 1.0 - equals(X, "bone_targeted_therapy", "none")
        return {
            "metastatic": np.nan_to_num(equals(X, "disease_setting", "metastatic")),
            "bone_targeted_therapy": np.nan_to_num(btt),
        }

    def fit(self, X: Rows, y: object = None) -> FlexibleFeatures:
        columns = self.columns_in if self.include_marker else self.columns_in[3:]
        require_columns(X, columns, type(self).__name__)
        if isinstance(self.max_df, bool) or not isinstance(self.max_df, int | np.integer):
            raise ValueError(f"max_df must be an integer >= 0, got {self.max_df!r}")
        if self.max_df < 0:
            raise ValueError(f"max_df must be an integer >= 0, got {self.max_df!r}")
        self.n_features_in_ = len(columns)
        values = self._inputs(X)
        self.medians_ = {
            name: float(np.nanmedian(v)) if np.isfinite(v).any() else 0.0
            for name, v in values.items()
        }
        budget = int(self.max_df)
        knots: dict[str, np.ndarray] = {}
        interactions: list[str] = []

        def spline(name: str, n_knots: int) -> None:
            nonlocal budget
            if name not in values:
                return
            t = harrell_knots(values[name], n_knots)
            if len(t) >= 3 and len(t) - 2 <= budget:
                knots[name] = t
                budget -= len(t) - 2

        if self.include_marker:
            spline("oc_log2_percent", 4 if budget >= 2 else 3)
            for name, _ in INTERACTIONS:
                if budget >= 1:
                    interactions.append(name)
                    budget -= 1
        for name in SPLINE_INPUTS[1:]:
            spline(name, 3)
        self.knots_ = knots
        self.interactions_ = tuple(interactions)
        names = [f"{n}:rcs{j + 1}" for n, t in knots.items() for j in range(len(t) - 2)]
        names += [f"oc_log2_percent:x_{m}" for m in self.interactions_]
        self.feature_names_out_ = np.array(names, dtype=object)
        return self

    def transform(self, X: Rows) -> np.ndarray:
        require_fitted(self)
        columns = self.columns_in if self.include_marker else self.columns_in[3:]
        require_columns(X, columns, type(self).__name__)
        values = self._inputs(X)
        filled = {name: np.where(np.isnan(v), self.medians_[name], v) for name, v in values.items()}
        n = len(next(iter(values.values())))
        parts = [rcs_basis(filled[name], t) for name, t in self.knots_.items()]
        if self.interactions_:
            centred = filled["oc_log2_percent"] - self.medians_["oc_log2_percent"]
            modifiers = self._modifiers(X)
            parts += [(centred * modifiers[m])[:, None] for m in self.interactions_]
        return np.hstack(parts) if parts else np.empty((n, 0))

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        require_fitted(self)
        return self.feature_names_out_.copy()
