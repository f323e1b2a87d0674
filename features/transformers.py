"""Feature builders: scikit-learn transformers from typed contract rows to model features.

Input to every builder is a *typed* patients frame as returned by
:func:`features.contract.check_patients` (numbers and booleans as float with NaN for missing,
categories as ``str`` or ``None``). The fitted builders travel inside the logged model, so
training and serving run the same object.

Pipeline (see :func:`make_feature_pipeline`)::

    FeatureUnion(MarkerFeatures, ClinicalFeatures)   # raw engineered columns, NaN where missing
      (each builder adds a missing-value indicator per input that was missing in training)
      -> SimpleImputer(median)                         # learned on training data
      -> StandardScaler                                # so penalties treat features alike
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from features.marker import PERCENT_FLOOR, log2_percent, marker_percent

__all__ = [
    "MarkerFeatures",
    "ClinicalFeatures",
    "FlexibleFeatures",
    "HARRELL_KNOT_QUANTILES",
    "INTERACTIONS",
    "SPLINE_INPUTS",
    "rcs_basis",
    "harrell_knots",
    "TrajectoryFeatures",
    "make_feature_pipeline",
    "raw_missing",
    "marker_percent",
    "PERCENT_FLOOR",
    "log2_percent",
]


#: Typed contract rows: a DataFrame, or a mapping of column name to a 1-D array (numbers and
#: booleans float with NaN, categories object with None), the cheaper form for a few rows.
Rows = pd.DataFrame | Mapping[str, np.ndarray]


def _require_columns(X: Rows, columns: Sequence[str], who: str) -> None:
    if not isinstance(X, pd.DataFrame | Mapping):
        raise TypeError(
            f"{who} expects a pandas DataFrame or a mapping of column arrays of contract rows, "
            f"got {type(X).__name__}"
        )
    missing = [c for c in columns if c not in X]
    if missing:
        raise KeyError(f"{who}: input lacks contract column(s): {', '.join(missing)}")


def _num(X: Rows, column: str) -> np.ndarray:
    values = X[column]
    if isinstance(values, pd.Series):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.asarray(values, dtype=float)


def is_missing(values: pd.Series | np.ndarray) -> np.ndarray:
    """Boolean mask of missing values (NaN, None, NA) of one column."""
    if isinstance(values, pd.Series):
        return values.isna().to_numpy()
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return np.isnan(values)
    return pd.isna(values)


def _is(X: Rows, column: str, value: str) -> np.ndarray:
    """1.0 where ``column == value``, 0.0 where another value, NaN where missing."""
    col = X[column]
    missing = is_missing(col)
    out = (np.asarray(col, dtype=object) == value).astype(float)
    out[missing] = np.nan
    return out


def raw_missing(X: Rows) -> dict[str, np.ndarray]:
    """Missingness of each clinical input; visceral status is known (absent) in early disease."""
    out = {c: is_missing(X[c]) for c in ClinicalFeatures.columns_in}
    out["visceral_metastasis"] = out["visceral_metastasis"] & (
        np.asarray(X["disease_setting"], dtype=object) == "metastatic"
    )
    return out


class MarkerFeatures(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Osteocalcin-positive fraction on a log2 scale.

    A coefficient on ``oc_log2_percent`` is an effect per doubling of the marker, the scale the
    study reports on. Percents below ``floor_percent`` (a reported zero) are raised to it
    before the logarithm (:func:`log2_percent`).

    Parameters
    ----------
    floor_percent : float, default=PERCENT_FLOOR (1e-4)
        Smallest percent taken at face value. Stored with the fitted model: models logged by
        0.1.0 keep the 0.0005 (half an event in 100,000 PBMC events) they were trained with.
    """

    columns_in = ("oc_positive_percent", "oc_positive_events", "pbmc_events")

    def __init__(self, floor_percent: float = PERCENT_FLOOR) -> None:
        self.floor_percent = floor_percent

    def fit(self, X: Rows, y: object = None) -> MarkerFeatures:
        _require_columns(X, self.columns_in, type(self).__name__)
        if not self.floor_percent > 0:
            raise ValueError(f"floor_percent must be > 0, got {self.floor_percent!r}")
        self.n_features_in_ = len(self.columns_in)
        self.indicator_ = bool(np.isnan(self._log_percent(X)).any())
        names = ["oc_log2_percent"] + (["missing_oc_positive_percent"] if self.indicator_ else [])
        self.feature_names_out_ = np.array(names, dtype=object)
        return self

    def _log_percent(self, X: Rows) -> np.ndarray:
        p = marker_percent(
            _num(X, "oc_positive_percent"), _num(X, "oc_positive_events"), _num(X, "pbmc_events")
        )
        return log2_percent(p, self.floor_percent)

    def transform(self, X: Rows) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        _require_columns(X, self.columns_in, type(self).__name__)
        out = self._log_percent(X).reshape(-1, 1)
        if self.indicator_:
            out = np.column_stack([out, np.isnan(out[:, 0]).astype(float)])
        return out

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()


class ClinicalFeatures(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Clinical covariates as numeric model features (NaN where the input is missing).

    - age in years; Ki-67 percent; histologic grade; log tumor size and a >20 mm flag;
    - receptors: ER, PR, HER2 positive; the ER+/PR- pattern; subtype (luminal = ER+ or PR+ and
      HER2-; HER2-positive; triple negative);
    - nodal categories 1-3 and 4 or more involved nodes (0 is the reference);
    - metastatic setting, visceral metastasis (absent by definition in early disease);
    - log alkaline phosphatase; endocrine therapy; chemotherapy;
    - bone-targeted therapy split by menopausal status: adjuvant bisphosphonates lower bone
      recurrence after menopause, not before (domain brief), so the effect is modelled as an
      interaction, not a plain covariate.

    Parameters
    ----------
    large_tumor_mm : float, default=20
        Size above which a tumor counts as large (T2+: more than 2 cm).
    many_nodes : int, default=4
        Smallest number of involved nodes of the high nodal category.
    """

    columns_in = (
        "age_years",
        "menopausal_status",
        "er_status",
        "pr_status",
        "her2_status",
        "ki67_percent",
        "histologic_grade",
        "tumor_size_mm",
        "positive_lymph_nodes",
        "disease_setting",
        "visceral_metastasis",
        "bone_targeted_therapy",
        "endocrine_therapy",
        "chemotherapy",
        "alkaline_phosphatase_u_per_l",
    )
    _names = (
        "age_years",
        "ki67_percent",
        "histologic_grade",
        "log_tumor_size_mm",
        "tumor_gt_20mm",
        "er_positive",
        "pr_positive",
        "her2_positive",
        "er_pos_pr_neg",
        "subtype_luminal",
        "subtype_triple_negative",
        "nodes_1_3",
        "nodes_4_plus",
        "metastatic",
        "visceral",
        "log_alp",
        "endocrine_therapy",
        "chemotherapy",
        "postmenopausal",
        "btt_postmenopausal",
        "btt_premenopausal",
    )

    def __init__(self, large_tumor_mm: float = 20.0, many_nodes: int = 4) -> None:
        self.large_tumor_mm = large_tumor_mm
        self.many_nodes = many_nodes

    def fit(self, X: Rows, y: object = None) -> ClinicalFeatures:
        _require_columns(X, self.columns_in, type(self).__name__)
        if not self.many_nodes >= 2:
            raise ValueError(f"many_nodes must be >= 2, got {self.many_nodes!r}")
        self.n_features_in_ = len(self.columns_in)
        missing = raw_missing(X)
        # One indicator per raw input that was missing in training (not per derived feature:
        # the three subtype features share the receptors' missingness).
        self.indicator_inputs_ = tuple(c for c in self.columns_in if missing[c].any())
        self.feature_names_out_ = np.array(
            self._names + tuple(f"missing_{c}" for c in self.indicator_inputs_), dtype=object
        )
        return self

    def transform(self, X: Rows) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        _require_columns(X, self.columns_in, type(self).__name__)
        size = _num(X, "tumor_size_mm")
        nodes = _num(X, "positive_lymph_nodes")
        er = _is(X, "er_status", "positive")
        pr = _is(X, "pr_status", "positive")
        her2 = _is(X, "her2_status", "positive")
        metastatic = _is(X, "disease_setting", "metastatic")
        visceral = _num(X, "visceral_metastasis")
        # Visceral disease cannot exist in early disease: known, not missing.
        visceral = np.where(metastatic == 0.0, 0.0, visceral)
        post = _is(X, "menopausal_status", "post")
        btt = 1.0 - _is(X, "bone_targeted_therapy", "none")
        with np.errstate(invalid="ignore", divide="ignore"):
            hormone = np.fmax(er, pr)  # 1 if either positive; NaN only if both unknown
            hormone = np.where((er == 1) | (pr == 1), 1.0, hormone)
            cols = [
                _num(X, "age_years"),
                _num(X, "ki67_percent"),
                _num(X, "histologic_grade"),
                np.log(size),
                np.where(np.isnan(size), np.nan, (size > self.large_tumor_mm).astype(float)),
                er,
                pr,
                her2,
                er * (1.0 - pr),
                hormone * (1.0 - her2),
                (1.0 - er) * (1.0 - pr) * (1.0 - her2),
                np.where(np.isnan(nodes), np.nan, ((nodes >= 1) & (nodes < self.many_nodes))),
                np.where(np.isnan(nodes), np.nan, (nodes >= self.many_nodes)),
                metastatic,
                visceral,
                np.log(_num(X, "alkaline_phosphatase_u_per_l")),
                _num(X, "endocrine_therapy"),
                _num(X, "chemotherapy"),
                post,
                btt * post,
                btt * (1.0 - post),
            ]
        missing = raw_missing(X)
        cols += [missing[c].astype(float) for c in self.indicator_inputs_]
        return np.column_stack([np.asarray(c, dtype=float) for c in cols])

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()


class TrajectoryFeatures(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """How the marker moved up to the prediction time (landmark models).

    Reads the landmark day and the trajectory columns of :mod:`features.landmark` (built only
    from draws on or before the landmark) and returns:

    - ``landmark_years``: the prediction time in years since enrollment;
    - ``oc_change_log2``: latest minus first draw on the log2 scale (doublings);
    - ``oc_slope_log2_per_year``: least-squares slope of the log2 marker, clipped to
      +-``max_slope`` (two draws days apart can give an extreme slope);

    NaN where undefined (no draw; one draw for the slope), with a missing-value indicator per
    column that was missing in training, imputed downstream.

    Parameters
    ----------
    max_slope : float, default=8
        Largest absolute slope taken at face value, doublings per year.
    """

    columns_in = ("landmark_day", "oc_change_log2", "oc_slope_log2_per_year")
    _names = ("landmark_years", "oc_change_log2", "oc_slope_log2_per_year")

    def __init__(self, max_slope: float = 8.0) -> None:
        self.max_slope = max_slope

    def _values(self, X: Rows) -> np.ndarray:
        days = _num(X, "landmark_day")
        slope = np.clip(_num(X, "oc_slope_log2_per_year"), -self.max_slope, self.max_slope)
        return np.column_stack([days / 365.25, _num(X, "oc_change_log2"), slope])

    def fit(self, X: Rows, y: object = None) -> TrajectoryFeatures:
        _require_columns(X, self.columns_in, type(self).__name__)
        if not self.max_slope > 0:
            raise ValueError(f"max_slope must be > 0, got {self.max_slope!r}")
        self.n_features_in_ = len(self.columns_in)
        missing = np.isnan(self._values(X)).any(axis=0)
        self.indicators_ = tuple(int(j) for j in np.flatnonzero(missing))
        self.feature_names_out_ = np.array(
            self._names + tuple(f"missing_{self._names[j]}" for j in self.indicators_),
            dtype=object,
        )
        return self

    def transform(self, X: Rows) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        _require_columns(X, self.columns_in, type(self).__name__)
        out = self._values(X)
        if self.indicators_:
            flags = np.isnan(out[:, list(self.indicators_)]).astype(float)
            out = np.column_stack([out, flags])
        return out

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()


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

    Adds columns to the linear features of :class:`MarkerFeatures` and :class:`ClinicalFeatures`
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
        Floor of the marker before its log2, as :class:`MarkerFeatures`. Models logged by 0.1.0
        (before this was a parameter) keep the 0.0005 they were trained with.
    """

    columns_in = MarkerFeatures.columns_in + (
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
                "age_years": _num(X, "age_years"),
                "log_alp": np.log(_num(X, "alkaline_phosphatase_u_per_l")),
                "ki67_percent": _num(X, "ki67_percent"),
                "log_tumor_size_mm": np.log(_num(X, "tumor_size_mm")),
            }
        if self.include_marker:
            values["oc_log2_percent"] = MarkerFeatures(self.floor_percent)._log_percent(X)
        return values

    @staticmethod
    def _modifiers(X: Rows) -> dict[str, np.ndarray]:
        btt = 1.0 - _is(X, "bone_targeted_therapy", "none")
        return {
            "metastatic": np.nan_to_num(_is(X, "disease_setting", "metastatic")),
            "bone_targeted_therapy": np.nan_to_num(btt),
        }

    def fit(self, X: Rows, y: object = None) -> FlexibleFeatures:
        columns = self.columns_in if self.include_marker else self.columns_in[3:]
        _require_columns(X, columns, type(self).__name__)
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
        check_is_fitted(self, "feature_names_out_")
        columns = self.columns_in if self.include_marker else self.columns_in[3:]
        _require_columns(X, columns, type(self).__name__)
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
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()


def make_feature_pipeline(
    include_marker: bool = True, include_trajectory: bool = False, flexible_df: int | None = None
) -> Pipeline:
    """The unfitted feature pipeline used by every model family.

    Parameters
    ----------
    include_marker : bool, default=True
        False builds the clinical-only feature set (to measure what the marker adds).
    include_trajectory : bool, default=False
        Add :class:`TrajectoryFeatures` (landmark models; only with the marker).
    flexible_df : int, optional
        Add :class:`FlexibleFeatures` (splines and interactions) with at most this many added
        degrees of freedom; None (default) keeps every effect linear.

    Returns
    -------
    sklearn.pipeline.Pipeline
        ``union -> impute (median, with missing-value indicators) -> scale``.
    """
    parts = [("clinical", ClinicalFeatures())]
    if include_marker:
        parts.insert(0, ("marker", MarkerFeatures()))
        if include_trajectory:
            parts.insert(1, ("trajectory", TrajectoryFeatures()))
    if flexible_df is not None:
        parts.append(("flexible", FlexibleFeatures(flexible_df, include_marker)))
    return Pipeline(
        [
            ("union", FeatureUnion(parts, verbose_feature_names_out=False)),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]
    )


def transform_rows(pipeline: Pipeline, X: Rows) -> np.ndarray:
    """The fitted feature pipeline of :func:`make_feature_pipeline` applied to typed rows.

    The same arithmetic as ``pipeline.transform(X)`` (builders, then the fitted imputer's
    medians, then the fitted scaler) without scikit-learn's per-call input validation and
    dispatch, which cost milliseconds for a single patient: the serving hot path. Any other
    pipeline shape is transformed by scikit-learn.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Fitted ``union -> impute -> scale`` (as built by :func:`make_feature_pipeline`).
    X : pandas.DataFrame or mapping of column arrays
        Typed contract rows.

    Returns
    -------
    numpy.ndarray
        ``(n_rows, n_features)`` standardised features.
    """
    if len(pipeline.steps) == 1 and isinstance(pipeline.steps[0][1], Pipeline):
        return transform_rows(pipeline.steps[0][1], X)  # e.g. ``risk_pipeline[:-1]``
    steps = dict(pipeline.steps)
    union, impute, scale = steps.get("union"), steps.get("impute"), steps.get("scale")
    if (
        list(steps) != ["union", "impute", "scale"]
        or not isinstance(union, FeatureUnion)
        or union.transformer_weights is not None
        or any(isinstance(t, str) for _, t in union.transformer_list)
        or not isinstance(impute, SimpleImputer)
        or impute.add_indicator
        or not isinstance(scale, StandardScaler)
    ):
        return pipeline.transform(X if isinstance(X, pd.DataFrame) else pd.DataFrame(X))
    parts = [t.transform(X) for _, t in union.transformer_list]
    out = np.hstack(parts) if len(parts) > 1 else np.asarray(parts[0], dtype=float)
    missing = np.isnan(out)
    if missing.any():
        out = np.where(missing, impute.statistics_[None, :], out)
    if scale.with_mean:
        out = out - scale.mean_
    if scale.with_std:
        out = out / scale.scale_
    return out
