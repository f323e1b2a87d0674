"""The data a training run fits on: eligible rows, the optional held-out split, event checks and
the competing death, gathered by :func:`prepare_training_data` (no MLflow here).

By default every eligible patient trains (``TrainConfig.holdout`` = 0): the performance of the
registered model is then estimated on the out-of-fold predictions of the nested
cross-validation (:mod:`training.fitting.family_run`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from features.contract import Cohort
from features.draws import enrollment_view
from features.vocabulary import BONE_METASTASIS, CENSORED, DEATH
from training.config import TrainConfig
from training.fitting.landmarks import landmark_rows
from training.fitting.marker import has_marker_values
from training.fitting.search import strata as search_strata
from training.models.competing import make_target

#: Fewer competing deaths than this in the training split: the death hazard is taken as zero.
MIN_COMPETING_DEATHS = 5


class TrainingDataError(ValueError):
    """The cohort is valid but cannot train a model (no outcomes, too few events)."""


def time_to_event_rows(cohort: Cohort) -> tuple[pd.DataFrame, int]:
    """Rows eligible for time-to-event models: free of bone metastasis at enrollment."""
    if not cohort.has_outcome:
        raise TrainingDataError(
            "the cohort has no outcomes (time_days, event): it can be scored, not trained on"
        )
    p = enrollment_view(cohort.patients, cohort.measurements)
    eligible = p["bone_metastasis_at_enrollment"].to_numpy(dtype=float) != 1.0
    return p.loc[eligible].reset_index(drop=True), int((~eligible).sum())


def split(
    rows: pd.DataFrame, config: TrainConfig
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """Held-out test split of ``config.holdout`` of the patients, stratified by outcome and
    disease setting (``config.holdout`` must be positive)."""
    if not 0 < config.holdout < 1:
        raise ValueError(f"a held-out split needs 0 < holdout < 1, got {config.holdout}")
    y = make_target(rows["event"].to_numpy(dtype=object), rows["time_days"].to_numpy(dtype=float))
    strata = search_strata(rows, min_count=2)
    idx = np.arange(len(rows))
    i_train, i_test = train_test_split(
        idx, test_size=config.holdout, random_state=config.seed, stratify=strata
    )
    i_train, i_test = np.sort(i_train), np.sort(i_test)
    return (
        rows.iloc[i_train].reset_index(drop=True),
        rows.iloc[i_test].reset_index(drop=True),
        y[i_train],
        y[i_test],
    )


def check_events(y: np.ndarray, where: str, minimum: int = 5) -> None:
    """Refuse to train on too few bone metastasis events (deaths: :func:`competing_deaths`)."""
    n = int(np.sum(y["cause"] == BONE_METASTASIS))
    if n < minimum:
        raise TrainingDataError(
            f"{where}: only {n} bone_metastasis event(s); at least {minimum} are needed to fit "
            "and evaluate the models"
        )


def competing_deaths(
    y_train: np.ndarray, y_test: np.ndarray | None, minimum: int = MIN_COMPETING_DEATHS
) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """Targets with the competing death modelled, or with its hazard taken as zero.

    Public cohorts often record one event type only. With fewer than ``minimum`` deaths in
    the training split a death hazard cannot be estimated: deaths (if any) are then treated
    as censoring in both splits, the families fit no death model (zero death hazard) and the
    predicted incidence of bone metastasis is ``1 - S(t)``.

    Returns
    -------
    y_train, y_test : numpy.ndarray
        Unchanged, or with cause 2 recoded to 0.
    note : str or None
        None when deaths are modelled; else the sentence the run, the card and the CLI show.
    """
    n = int(np.sum(y_train["cause"] == DEATH))
    if n >= minimum:
        return y_train, y_test, None
    note = (
        f"no competing death modelled: {n} death(s) without bone metastasis in the training "
        f"split (fewer than {minimum}); the death hazard is taken as zero, so the predicted "
        "incidence of bone metastasis is 1 - S(t)"
        + (" and the recorded deaths count as censoring" if n else "")
    )
    return censor_deaths(y_train), None if y_test is None else censor_deaths(y_test), note


def censor_deaths(y: np.ndarray) -> np.ndarray:
    """A copy of the target with every death (cause 2) recoded as censoring (cause 0)."""
    y = y.copy()
    y["cause"][y["cause"] == DEATH] = CENSORED
    return y


@dataclass(frozen=True)
class TrainingData:
    """What every family of a training run is fitted and tested on.

    ``X_*``/``y_*`` are the rows models see (a landmark model's stacked landmark rows);
    ``X_test``/``y_test`` are None without a held-out split (the default: every eligible
    patient trains, :attr:`design`). ``patients_y`` holds one target per patient and split
    (``train``, and ``test`` when held out), the counts people read. ``config`` is the run's
    configuration as applied (clinical-only when the
    cohort has no marker value); ``notes`` say how the cohort was modelled when it departs
    from the default, ``death_note`` is the one about the competing death.
    """

    config: TrainConfig
    X_train: pd.DataFrame
    X_test: pd.DataFrame | None
    y_train: np.ndarray
    y_test: np.ndarray | None
    patients_y: dict[str, np.ndarray]
    n_excluded: int
    notes: tuple[str, ...] = ()
    death_note: str | None = None

    @property
    def held_out(self) -> bool:
        """Whether a test split was held out (``config.holdout`` > 0)."""
        return self.X_test is not None

    @property
    def design(self) -> str:
        """What the ``test_*`` metrics are measured on: ``nested_cv_oof`` (the out-of-fold
        predictions of every patient) or ``holdout``."""
        return "holdout" if self.held_out else "nested_cv_oof"

    def evaluation_rows(self) -> tuple[pd.DataFrame, np.ndarray]:
        """The rows the ``test_*`` metrics are measured on: the held-out split, or every
        training row (scored by its out-of-fold prediction)."""
        if self.X_test is not None and self.y_test is not None:
            return self.X_test, self.y_test
        return self.X_train, self.y_train


def bounded_work_notes(config: TrainConfig, n_train_patients: int, n_test_rows: int) -> list[str]:
    """What a large cohort bounds (``search_max_patients``, ``bootstrap_max_patients``), said."""
    notes = []
    bound = config.search_max_patients
    if bound and n_train_patients > bound:
        notes.append(
            f"large cohort ({n_train_patients:,} training patients): a hyperparameter search "
            f"on more than {bound:,} patients ranks its configurations by inner "
            f"cross-validation on a stratified random subsample of {bound:,} of them; the "
            "outer folds, the final model and the clinical-only model are fitted on all "
            "their patients"
        )
    bound = config.bootstrap_max_patients
    if config.n_bootstrap and bound and n_test_rows > bound:
        notes.append(
            f"large evaluation: the {config.n_bootstrap} bootstrap resamples of the 95 % "
            f"intervals draw {bound:,} of the {n_test_rows:,} evaluated rows each and are "
            f"rescaled by sqrt({bound:,} / {n_test_rows:,}) (the m-out-of-n bootstrap); point "
            "estimates use every evaluated row"
        )
    return notes


def prepare_training_data(cohort: Cohort, config: TrainConfig) -> TrainingData:
    """Eligible rows, the held-out split (by patient) when ``config.holdout`` > 0, landmark
    rows and the event checks.

    Raises
    ------
    TrainingDataError
        No outcomes, or too few bone metastasis events in a split.
    """
    notes = []
    if config.include_marker and not has_marker_values(cohort):
        config = replace(config, include_marker=False)
        notes.append(
            "clinical-only model: the cohort has no osteocalcin marker value (no marker column "
            "or all missing), so the marker features, the marker's incremental value and its "
            "likelihood-ratio test are left out"
        )
    rows, n_excluded = time_to_event_rows(cohort)
    X_test: pd.DataFrame | None = None
    y_test: np.ndarray | None = None
    if config.holdout:
        X_train, X_test, y_train, y_test = split(rows, config)
        patients_y = {"train": y_train, "test": y_test}
    else:
        X_train = rows
        y_train = make_target(
            rows["event"].to_numpy(dtype=object), rows["time_days"].to_numpy(dtype=float)
        )
        patients_y = {"train": y_train}
    if config.landmark_days:
        # Split by patient first, then stack: a patient's landmark rows stay on one side.
        X_train, y_train = landmark_rows(X_train, cohort.measurements, config.landmark_days)
        if X_test is not None:
            X_test, y_test = landmark_rows(X_test, cohort.measurements, config.landmark_days)
    check_events(y_train, "training split" if y_test is not None else "training cohort")
    if y_test is not None:
        check_events(y_test, "test split", minimum=2)
    n_evaluated = len(y_test) if y_test is not None else len(y_train)
    notes.extend(bounded_work_notes(config, len(patients_y["train"]), n_evaluated))
    # Deaths are counted per patient (a landmark model stacks a patient's rows).
    _, _, death_note = competing_deaths(patients_y["train"], None)
    if death_note:
        notes.append(death_note)
        y_train = censor_deaths(y_train)
        y_test = None if y_test is None else censor_deaths(y_test)
        patients_y = {k: censor_deaths(v) for k, v in patients_y.items()}
    return TrainingData(
        config=config,
        X_train=X_train,
        X_test=X_test,
        y_train=y_train,
        y_test=y_test,
        patients_y=patients_y,
        n_excluded=n_excluded,
        notes=tuple(notes),
        death_note=death_note,
    )
