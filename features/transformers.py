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

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

from features.marker import (
    MARKER_COLUMNS,
    PERCENT_FLOOR,
    log2_percent,
    marker_percent,
    rows_log2_percent,
)
from features.splines import (
    HARRELL_KNOT_QUANTILES,
    INTERACTIONS,
    SPLINE_INPUTS,
    FlexibleFeatures,
    harrell_knots,
    rcs_basis,
)
from features.typed_rows import (
    Rows,
    equals,
    is_missing,
    numeric,
    require_columns,
    require_fitted,
)

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
    "Rows",
    "is_missing",
    "transform_rows",
]


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

    columns_in = MARKER_COLUMNS

    def __init__(self, floor_percent: float = PERCENT_FLOOR) -> None:
        self.floor_percent = floor_percent

    def fit(self, X: Rows, y: object = None) -> MarkerFeatures:
        require_columns(X, self.columns_in, type(self).__name__)
        if not self.floor_percent > 0:
            raise ValueError(f"floor_percent must be > 0, got {self.floor_percent!r}")
        self.n_features_in_ = len(self.columns_in)
        self.indicator_ = bool(np.isnan(self._log_percent(X)).any())
        names = ["oc_log2_percent"] + (["missing_oc_positive_percent"] if self.indicator_ else [])
        self.feature_names_out_ = np.array(names, dtype=object)
        return self

    def _log_percent(self, X: Rows) -> np.ndarray:
        return rows_log2_percent(X, self.floor_percent)

    def transform(self, X: Rows) -> np.ndarray:
        require_fitted(self)
        require_columns(X, self.columns_in, type(self).__name__)
        out = self._log_percent(X).reshape(-1, 1)
        if self.indicator_:
            out = np.column_stack([out, np.isnan(out[:, 0]).astype(float)])
        return out

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        require_fitted(self)
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
        require_columns(X, self.columns_in, type(self).__name__)
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
        require_fitted(self)
        require_columns(X, self.columns_in, type(self).__name__)
        # Each input's missingness once: the indicators and the categories' NaN share it.
        missing = raw_missing(X)
        size = numeric(X, "tumor_size_mm")
        nodes = numeric(X, "positive_lymph_nodes")
        er = equals(X, "er_status", "positive", missing["er_status"])
        pr = equals(X, "pr_status", "positive", missing["pr_status"])
        her2 = equals(X, "her2_status", "positive", missing["her2_status"])
        metastatic = equals(X, "disease_setting", "metastatic", missing["disease_setting"])
        visceral = numeric(X, "visceral_metastasis")
        # Visceral disease cannot exist in early disease: known, not missing.
        visceral = np.where(metastatic == 0.0, 0.0, visceral)
        post = equals(X, "menopausal_status", "post", missing["menopausal_status"])
        btt = 1.0 - equals(X, "bone_targeted_therapy", "none", missing["bone_targeted_therapy"])
        with np.errstate(invalid="ignore", divide="ignore"):
            hormone = np.fmax(er, pr)  # 1 if either positive; NaN only if both unknown
            hormone = np.where((er == 1) | (pr == 1), 1.0, hormone)
            cols = [
                numeric(X, "age_years"),
                numeric(X, "ki67_percent"),
                numeric(X, "histologic_grade"),
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
                np.log(numeric(X, "alkaline_phosphatase_u_per_l")),
                numeric(X, "endocrine_therapy"),
                numeric(X, "chemotherapy"),
                post,
                btt * post,
                btt * (1.0 - post),
            ]
        cols += [missing[c].astype(float) for c in self.indicator_inputs_]
        # np.column_stack's values and C order, in one call rather than one per column.
        return np.array(cols, dtype=float).T.copy()

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        require_fitted(self)
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
        days = numeric(X, "landmark_day")
        slope = np.clip(numeric(X, "oc_slope_log2_per_year"), -self.max_slope, self.max_slope)
        return np.column_stack([days / 365.25, numeric(X, "oc_change_log2"), slope])

    def fit(self, X: Rows, y: object = None) -> TrajectoryFeatures:
        require_columns(X, self.columns_in, type(self).__name__)
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
        require_fitted(self)
        require_columns(X, self.columns_in, type(self).__name__)
        out = self._values(X)
        if self.indicators_:
            flags = np.isnan(out[:, list(self.indicators_)]).astype(float)
            out = np.column_stack([out, flags])
        return out

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        require_fitted(self)
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
