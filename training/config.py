"""One typed configuration for training, read from YAML with environment overrides.

Nothing here runs at import time: callers build a :class:`TrainConfig` (``load_config``) and a
:class:`Settings` (``Settings.from_env``) and pass them explicitly.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from features.schema import DEFAULT_HORIZONS_MONTHS, HEADLINE_HORIZON_MONTHS
from features.vocabulary import MAX_HORIZON_MONTHS, MIN_HORIZON_MONTHS, horizons_in_range
from features.vocabulary import MODEL_NAME as MODEL_NAME
from training.evaluation.names import SELECTION, metric_of
from training.models.names import DEFAULT_FAMILIES, FAMILY_NAMES
from training.models.names import OPTIONAL_FAMILIES as OPTIONAL_FAMILIES  # for the command line

#: Lower is better. Nested-CV mean IPCW Brier score of the served probability at 12, 24 and 36
#: months (a proper scoring rule of what the clinician reads, not a ranking alone), over the
#: outer folds of every repeat; the challenger is chosen on it by the one-standard-error rule of
#: :func:`training.registry.selection.select` (paired per-patient differences).
SELECTION_METRIC = SELECTION
#: Smallest bound of the search subsample and of the bootstrap resamples: fewer patients hold
#: too few events for a stratified inner fold or a stable interval.
MIN_BOUNDED_PATIENTS = 200


class ConfigError(ValueError):
    """A configuration value that cannot be used, named with the reason."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run; logged with it.

    Parameters
    ----------
    experiment : str
        MLflow experiment name.
    seed : int
        Seed of the split and of every stochastic estimator.
    holdout : float
        0 (default): no held-out split; every eligible patient trains the registered model and
        its performance is estimated on the out-of-fold predictions of the nested
        cross-validation (``docs/modeling.md``, "Design"). Otherwise the share of patients
        held out for a test split (0.05-0.5, stratified by outcome) that only evaluates.
    families : tuple of str
        Candidate model families, each registered as a version.
    horizons_months : tuple of int
        Horizons at which probabilities are reported and stored with the model.
    outer_folds, inner_folds : int
        Nested cross-validation on the training patients: outer folds estimate performance
        (their out-of-fold predictions), inner folds rank the hyperparameter configurations.
    cv_repeats : int
        Repeats of the outer cross-validation with new fold assignments (1-10): each adds
        ``outer_folds`` nested searches; the paired differences the selection rests on are
        averaged over the repeats (more repeats, smaller standard errors, longer training).
    max_grid : int
        At most this many configurations of each family's grid are searched (1 = defaults).
    n_bootstrap : int
        Bootstrap resamples for the 95 % intervals of the evaluation (held-out split, or the
        out-of-fold predictions of every patient) and of the gates (0 = none).
    search_max_patients : int
        Large cohorts: the hyperparameter search (inner cross-validation) ranks the
        configurations on a stratified random subsample of at most this many patients of its
        training rows (0 = all); every model is then fitted on all of them. See
        ``docs/modeling.md``, "Large cohorts".
    bootstrap_max_patients : int
        Large test splits: each bootstrap resample draws this many patients and the interval is
        rescaled (the m-out-of-n bootstrap, :mod:`training.evaluation.bootstrap`; 0 = every
        resample has all test patients).
    n_jobs : int
        Families trained in parallel worker processes (1 = in process, with per-fit progress).
    include_marker : bool
        False trains the clinical-only feature set.
    selection_metric : str
        Metric that picks the ``challenger`` among this run's candidates (lower is better for
        Brier scores and ICI, higher otherwise:
        :func:`training.evaluation.names.lower_is_better`).
    landmark_days : tuple of float
        Empty (default): models predict from enrollment. Otherwise a landmark *supermodel*:
        each patient still at risk at each landmark (days since enrollment, the first 0)
        contributes a row with the draws known by then (latest marker, change and slope since
        enrollment) and the residual time; the served model then predicts from any
        ``prediction_day`` (see ``docs/modeling.md``). Needs the ``oc_measurements`` table to
        add anything beyond the enrollment draw.
    """

    experiment: str = "bone-metastasis"
    seed: int = 42
    holdout: float = 0.0
    families: tuple[str, ...] = DEFAULT_FAMILIES
    horizons_months: tuple[int, ...] = DEFAULT_HORIZONS_MONTHS
    outer_folds: int = 3
    inner_folds: int = 3
    cv_repeats: int = 1
    max_grid: int = 4
    n_bootstrap: int = 200
    search_max_patients: int = 3000
    bootstrap_max_patients: int = 2000
    n_jobs: int = 2
    include_marker: bool = True
    selection_metric: str = SELECTION_METRIC
    landmark_days: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        unknown = [f for f in self.families if f not in FAMILY_NAMES]
        if unknown or not self.families:
            raise ConfigError(
                f"families must be a non-empty subset of {', '.join(FAMILY_NAMES)}; got "
                f"{', '.join(self.families) or 'none'}"
            )
        if not (self.holdout == 0 or 0.05 <= self.holdout <= 0.5):
            raise ConfigError(f"holdout must be 0 (none) or 0.05-0.5, got {self.holdout}")
        if not 1 <= self.cv_repeats <= 10:
            raise ConfigError(f"cv_repeats must be 1-10, got {self.cv_repeats}")
        if not horizons_in_range(self.horizons_months):
            raise ConfigError(
                f"horizons_months must be {MIN_HORIZON_MONTHS}-{MAX_HORIZON_MONTHS} months each"
            )
        if HEADLINE_HORIZON_MONTHS not in self.horizons_months:
            raise ConfigError(
                f"horizons_months must include {HEADLINE_HORIZON_MONTHS} (the classifiers' risk "
                "score)"
            )
        for name in ("outer_folds", "inner_folds"):
            if not 2 <= getattr(self, name) <= 10:
                raise ConfigError(f"{name} must be 2-10, got {getattr(self, name)}")
        if not 1 <= self.max_grid <= 20:
            raise ConfigError(f"max_grid must be 1-20, got {self.max_grid}")
        if not 1 <= self.n_jobs <= 16:
            raise ConfigError(f"n_jobs must be 1-16, got {self.n_jobs}")
        try:
            metric_of(self.selection_metric)
        except ValueError as err:
            raise ConfigError(f"selection_metric: {err}") from None
        if not (self.n_bootstrap == 0 or 20 <= self.n_bootstrap <= 5000):
            raise ConfigError(f"n_bootstrap must be 0 or 20-5000, got {self.n_bootstrap}")
        for name in ("search_max_patients", "bootstrap_max_patients"):
            value = getattr(self, name)
            if not (value == 0 or MIN_BOUNDED_PATIENTS <= value <= 10_000_000):
                raise ConfigError(
                    f"{name} must be 0 (no bound) or {MIN_BOUNDED_PATIENTS}-10000000, got {value}"
                )
        days = self.landmark_days
        if days and (
            days[0] != 0
            or any(not 0 <= d <= 3650 for d in days)
            or any(b <= a for a, b in zip(days, days[1:], strict=False))
        ):
            raise ConfigError(
                "landmark_days must be increasing days in 0-3650 starting with 0, got "
                + ", ".join(f"{d:g}" for d in days)
            )

    def to_params(self) -> dict[str, Any]:
        """Flat parameters for MLflow."""
        out = asdict(self)
        out["families"] = ",".join(self.families)
        out["horizons_months"] = ",".join(str(h) for h in self.horizons_months)
        out["landmark_days"] = ",".join(f"{d:g}" for d in self.landmark_days) or "none"
        return out


def load_config(path: str | os.PathLike | None = None, **overrides: Any) -> TrainConfig:
    """Read a :class:`TrainConfig` from YAML, then apply ``BONEMET_<FIELD>`` and keyword overrides.

    Keyword overrides (the command line) win over the environment, which wins over the file.
    """
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        loaded = yaml.safe_load(p.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping of field: value")
        values.update(loaded)
    known = {f.name: f for f in fields(TrainConfig)}
    for name in known:
        env = os.environ.get(f"BONEMET_{name.upper()}")
        if env is not None:
            values[name] = yaml.safe_load(env)
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
    for name in ("families", "horizons_months", "landmark_days"):
        if name in values and isinstance(values[name], str):
            values[name] = [v.strip() for v in values[name].split(",") if v.strip()]
        if name in values:
            values[name] = tuple(values[name]) if values[name] is not None else ()
    try:
        if "horizons_months" in values:
            values["horizons_months"] = tuple(int(h) for h in values["horizons_months"])
        if "landmark_days" in values:
            values["landmark_days"] = tuple(float(d) for d in values["landmark_days"])
    except (TypeError, ValueError) as err:
        raise ConfigError(f"horizons_months and landmark_days must be numbers: {err}") from err
    try:
        return replace(TrainConfig(), **values)
    except TypeError as err:
        raise ConfigError(str(err)) from err


@dataclass(frozen=True)
class Settings:
    """Where the MLflow store lives.

    The default is an SQLite file ``<data_dir>/mlflow.db`` with artifacts in
    ``<data_dir>/mlartifacts``; ``data_dir`` is ``$BONEMET_DATA_DIR`` or ``./data``.
    ``$MLFLOW_TRACKING_URI`` overrides the tracking (and registry) store.
    """

    data_dir: Path = field(default_factory=lambda: Path("data"))
    tracking_uri_override: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("BONEMET_DATA_DIR", "data")).resolve()
        return cls(data_dir=data_dir, tracking_uri_override=os.environ.get("MLFLOW_TRACKING_URI"))

    @property
    def tracking_uri(self) -> str:
        if self.tracking_uri_override:
            return self.tracking_uri_override
        return f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        return (self.data_dir / "mlartifacts").resolve()
