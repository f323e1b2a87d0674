"""The study report's choices (seed, resamples, landmarks, horizons), logged with the run."""

from __future__ import annotations

from dataclasses import dataclass

from features.vocabulary import MAX_HORIZON_MONTHS, MIN_HORIZON_MONTHS, horizons_in_range
from training.models.competing import DAYS_PER_MONTH

__all__ = ["StudyConfig"]


@dataclass(frozen=True)
class StudyConfig:
    """Choices of the study report (logged with the run).

    Parameters
    ----------
    seed : int
        Seed of the bootstrap and permutation resampling.
    n_boot : int
        Bootstrap resamples of the cut-off interval.
    n_perm : int
        Permutations of each Gray-score test.
    landmarks_months : tuple of int
        Landmarks in months of 365.25 / 12 days, rounded to whole days (3, 6, 12 -> 91, 183,
        365).
    horizons_months : tuple of int
        Horizons of the cumulative incidence tables.
    rise_log2 : float
        A marker counts as rising at a landmark when its change from baseline is at least this
        (log2; 0.5 = +41 %). Fixed in advance, not optimised on the data.
    experiment : str
        MLflow experiment of the run.
    """

    seed: int = 42
    n_boot: int = 500
    n_perm: int = 2000
    landmarks_months: tuple[int, ...] = (3, 6, 12)
    horizons_months: tuple[int, ...] = (12, 24, 36)
    rise_log2: float = 0.5
    experiment: str = "bone-metastasis-study"

    def __post_init__(self) -> None:
        if not 20 <= self.n_boot <= 10000:
            raise ValueError(f"n_boot must be 20-10000, got {self.n_boot}")
        if not 99 <= self.n_perm <= 100000:
            raise ValueError(f"n_perm must be 99-100000, got {self.n_perm}")
        if not self.landmarks_months or any(not 1 <= m <= 60 for m in self.landmarks_months):
            raise ValueError("landmarks_months must be 1-60 months each")
        if not horizons_in_range(self.horizons_months):
            raise ValueError(
                f"horizons_months must be {MIN_HORIZON_MONTHS}-{MAX_HORIZON_MONTHS} months each"
            )

    @property
    def landmark_days(self) -> tuple[float, ...]:
        return tuple(float(round(m * DAYS_PER_MONTH)) for m in self.landmarks_months)
