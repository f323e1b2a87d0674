"""Bounded hyperparameter search nested inside cross-validation.

Folds are stratified by outcome (bone metastasis, death, censored) and disease setting. The
feature pipeline is fitted inside every fold, so imputation medians and scaling never see the
fold's test patients. Configurations are ranked by the mean IPCW Brier score of the served
probability at 12, 24 and 36 months (:func:`training.evaluation.suite.mean_brier`; lower is
better), averaged
over the inner folds; ties go to the first configuration of the grid (the simplest, by the grids'
convention).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from features.transformers import make_feature_pipeline, transform_rows
from training.artifact.risk_model import predict_features
from training.evaluation.suite import SELECTION_HORIZONS_MONTHS, mean_brier
from training.models.competing import BONE_METASTASIS

#: Called once per fitted model with a short description (for progress bars).
Tick = Callable[[str], None]

#: Inner-CV score of a configuration (lower is better); logged as ``inner_cv_brier_headline_mean``.
SEARCH_METRIC = "brier_headline"
#: Events of bone metastasis per added degree of freedom of a flexible family's splines and
#: interactions (Harrell's rule of thumb of 10-20 events per parameter; the middle).
EVENTS_PER_DF = 15


def _noop(_: str) -> None:
    return None


def strata(rows: pd.DataFrame, min_count: int = 6) -> np.ndarray:
    """Outcome-by-setting strata; strata under ``min_count`` rows pooled so each can be split."""
    s = rows["event"].astype(str) + "|" + rows["disease_setting"].astype(str)
    counts = s.value_counts()
    return s.where(s.map(counts) >= min_count, "other").to_numpy()


def folds(rows: pd.DataFrame, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified K-fold indices (train, test) over ``rows``.

    Rows of one patient (a landmark dataset has one per landmark) always fall in the same
    fold (stratified group K-fold by ``patient_id``), so no patient is on both sides.
    """
    if k < 2:
        raise ValueError(f"need at least 2 folds, got {k}")
    ids = rows["patient_id"] if "patient_id" in rows.columns else None
    grouped = ids is not None and ids.duplicated().any()
    labels = strata(rows)
    groups = ids.to_numpy() if grouped else None
    # Every family of a run splits the same rows with the same seeds, and scikit-learn's
    # stratified group split is a Python loop over the patients (0.3 s per call on the
    # demo's landmark rows): the splits are remembered by what determines them.
    key = (k, seed, len(rows), _digest(labels), None if groups is None else _digest(groups))
    found = _FOLDS.get(key)
    if found is None:
        if grouped:
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
            found = list(splitter.split(np.zeros(len(rows)), labels, groups=groups))
        else:
            splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
            found = list(splitter.split(np.zeros(len(rows)), labels))
        if len(_FOLDS) >= _FOLDS_KEPT:
            _FOLDS.pop(next(iter(_FOLDS)))
        _FOLDS[key] = found
    return [(train.copy(), test.copy()) for train, test in found]


#: Splits of :func:`folds` already made in this process (oldest dropped first).
_FOLDS: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = {}
_FOLDS_KEPT = 64


def _digest(values: np.ndarray) -> str:
    """A digest of an array of labels (strings or numbers), equal for equal contents."""
    import hashlib

    text = "\x1f".join(map(str, values.tolist()))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def subsample(
    rows: pd.DataFrame, y: np.ndarray, max_patients: int, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """A stratified random subsample of at most ``max_patients`` patients of ``rows``.

    Patients are drawn without replacement within the outcome-by-setting strata of
    :func:`strata` (proportional allocation, scikit-learn's ``train_test_split``); all the
    rows of a drawn patient are kept (a landmark dataset has one per landmark, the patient's
    first row giving the stratum). Rows stay in their order. With as many patients as the
    bound or fewer, ``rows`` and ``y`` are returned as they are.

    Parameters
    ----------
    rows : pandas.DataFrame
        Typed rows with ``event`` and ``disease_setting`` (and ``patient_id`` when a patient
        has several rows).
    y : numpy.ndarray
        Structured target, one per row.
    max_patients : int
        The bound (at least 2).
    seed : int

    Returns
    -------
    tuple of (pandas.DataFrame, numpy.ndarray)
    """
    from sklearn.model_selection import train_test_split

    if max_patients < 2:
        raise ValueError(f"max_patients must be at least 2, got {max_patients}")
    ids = rows["patient_id"] if "patient_id" in rows.columns else pd.Series(range(len(rows)))
    ids = ids.to_numpy()
    first = ~pd.Series(ids).duplicated().to_numpy()
    if int(first.sum()) <= max_patients:
        return rows, y
    chosen, _ = train_test_split(
        ids[first],
        train_size=max_patients,
        random_state=seed,
        stratify=strata(rows.iloc[np.flatnonzero(first)]),
    )
    keep = pd.Series(ids).isin(chosen).to_numpy()  # hashed: numpy's isin on strings is O(n m)
    return rows.iloc[np.flatnonzero(keep)], y[keep]


def flexible_df(y: np.ndarray) -> int:
    """Degrees of freedom a flexible family may add: bone-metastasis events // 15."""
    return int(np.sum(y["cause"] == BONE_METASTASIS)) // EVENTS_PER_DF


def fit_pipeline(
    make_estimator: Callable[[Mapping[str, Any]], Any],
    params: Mapping[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    include_marker: bool,
    *,
    flexible: bool = False,
    death: bool = True,
) -> Pipeline:
    """Feature pipeline plus estimator, fitted on typed rows ``X``.

    Rows of a landmark dataset (a ``landmark_day`` column) add the marker's trajectory
    features when the marker is included. ``flexible`` adds splines and the pre-specified
    interactions (:class:`features.transformers.FlexibleFeatures`) with at most
    :func:`flexible_df` added degrees of freedom, counted on the rows the pipeline is fitted on.
    ``death=False``: a pipeline read for bone metastasis only (scores, incidences of bone
    metastasis; the folds' fits), whose IPCW classifiers of the competing death are not
    fitted (:meth:`training.models.ipcw.IPCWHorizonBase.fit`); the rest is the same.
    """
    features = feature_pipeline(include_marker, X, y, flexible=flexible)
    estimator = make_estimator(dict(params))
    pipe = Pipeline([*features.steps, ("model", estimator)])
    return pipe.fit(X, y, **{f"model__{k}": v for k, v in _fit_params(estimator, death).items()})


def _fit_params(estimator, death: bool) -> dict[str, Any]:
    """What to pass to ``estimator.fit``: without ``death``, an IPCW family skips its
    competing-death classifiers (fitted apart from the bone-metastasis ones, which are the
    same; nothing scored on bone metastasis reads them). A cause-specific family needs both
    hazards for the incidence: it is fitted whole."""
    from training.models.ipcw import IPCWHorizonBase

    return {} if death or not isinstance(estimator, IPCWHorizonBase) else {"death": False}


def feature_pipeline(
    include_marker: bool, X: pd.DataFrame, y: np.ndarray, *, flexible: bool = False
) -> Pipeline:
    """The unfitted ``features`` step of :func:`fit_pipeline` for rows ``X`` and target ``y``,
    as a one-step pipeline (what ``fit_pipeline(...)[:-1]`` is once fitted)."""
    trajectory = include_marker and "landmark_day" in X.columns
    df = flexible_df(y) if flexible else None
    return Pipeline([("features", make_feature_pipeline(include_marker, trajectory, df))])


@dataclass(frozen=True)
class Trial:
    """One configuration scored by inner cross-validation."""

    params: dict[str, Any]
    scores: tuple[float, ...]

    @property
    def mean(self) -> float:
        finite = [s for s in self.scores if np.isfinite(s)]
        return float(np.mean(finite)) if finite else float("nan")

    @property
    def sd(self) -> float:
        finite = [s for s in self.scores if np.isfinite(s)]
        return float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan")


@dataclass(frozen=True)
class SearchResult:
    """Trials of a search and the selected configuration."""

    trials: tuple[Trial, ...]
    best_params: dict[str, Any] = field(default_factory=dict)

    @property
    def best_score(self) -> float:
        """Inner-CV score of the selected configuration (lowest mean Brier score)."""
        return min((t.mean for t in self.trials if np.isfinite(t.mean)), default=float("nan"))


def search(
    make_estimator: Callable[[Mapping[str, Any]], Any],
    grid: Sequence[Mapping[str, Any]],
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    include_marker: bool,
    n_folds: int,
    seed: int,
    tick: Tick = _noop,
    flexible: bool = False,
    max_patients: int | None = None,
) -> SearchResult:
    """Score every configuration of ``grid`` by inner-CV mean Brier score; pick the lowest.

    A configuration whose fit fails on a fold (``ValueError``, e.g. too few events) scores NaN
    there; a configuration with no finite score is never selected. With ``max_patients`` the
    inner cross-validation runs on a stratified subsample of at most that many patients
    (:func:`subsample`, seeded by ``seed``): on a large cohort the ranking of a few
    configurations needs far fewer patients than the fits it costs.
    """
    if not grid:
        raise ValueError("the hyperparameter grid is empty")
    if max_patients:
        X, y = subsample(X, y, max_patients, seed)
    splits = folds(X, n_folds, seed)
    # The feature pipeline does not depend on the configuration: fitted once per inner fold
    # (the same fit every configuration's pipeline made), then each configuration's estimator
    # on its output.
    scores: list[list[float]] = [[] for _ in grid]
    last_error: ValueError | None = None
    for train_idx, test_idx in splits:
        X_fit, y_fit = X.iloc[train_idx], y[train_idx]
        try:
            features = feature_pipeline(include_marker, X_fit, y_fit, flexible=flexible)
            Xt_fit = features.fit_transform(X_fit, y_fit)
            Xt_test = transform_rows(features, X.iloc[test_idx])
        except ValueError as err:
            last_error, features = err, None
        for scored, params in zip(scores, grid, strict=True):
            try:
                if features is None:
                    raise last_error  # type: ignore[misc]
                model = make_estimator(dict(params))
                model.fit(Xt_fit, y_fit, **_fit_params(model, death=False))  # scored on bone
                _, cif, _ = predict_features(model, Xt_test, SELECTION_HORIZONS_MONTHS, False)
                by_month = {h: cif[:, j] for j, h in enumerate(SELECTION_HORIZONS_MONTHS)}
                scored.append(mean_brier(y[test_idx], by_month))
            except ValueError as err:
                last_error = err
                scored.append(float("nan"))
            tick(f"trial {dict(params)}")
    trials = [Trial(dict(params), tuple(sc)) for params, sc in zip(grid, scores, strict=True)]
    ranked = [t for t in trials if np.isfinite(t.mean)]
    if not ranked:
        raise ValueError(
            "no configuration of the grid could be fitted on the inner folds"
            + (f" (last error: {last_error})" if last_error is not None else "")
        )
    best = min(ranked, key=lambda t: t.mean)  # min keeps the first of equal means
    return SearchResult(tuple(trials), dict(best.params))


def n_fits(grid_size: int, outer: int, inner: int, repeats: int = 1) -> int:
    """Number of model fits of a (repeated) nested cross-validation and the final fit (for
    progress bars)."""
    return repeats * outer * (inner * grid_size + 1) + 1


def search_family(
    name: str, X: pd.DataFrame, y: np.ndarray, *, max_grid: int, n_folds: int, seed: int
) -> SearchResult:
    """:func:`search` over the first ``max_grid`` configurations of a registered family.

    Parameters
    ----------
    name : str
        Key of :data:`training.models.catalog.FAMILIES` (its features: flexible or not).
    X, y : pandas.DataFrame, numpy.ndarray
        Typed rows and target.
    max_grid, n_folds, seed : int

    Returns
    -------
    SearchResult
    """
    from training.models.catalog import FAMILIES

    family = FAMILIES[name]
    return search(
        family.make,
        family.grid[:max_grid],
        X,
        y,
        include_marker=True,
        n_folds=n_folds,
        seed=seed,
        flexible=family.flexible,
    )
