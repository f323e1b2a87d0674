"""Simulated competing-risks data and references shared by the model tests."""

from __future__ import annotations

import io

import joblib
import numpy as np

from features.contract import validate_cohort
from features.draws import enrollment_view
from features.schema import PREDICTOR_COLUMNS
from features.simulate import simulate_cohort
from training.models.competing import make_target


def competing_data(
    n: int = 1500, seed: int = 0, n_features: int = 3, effects: tuple[float, float] = (0.8, 0.6)
):
    """Exponential cause-specific hazards: x0 drives bone metastasis, x1 death, others nothing.

    Log hazard ratios ``effects`` (bone metastasis, death) per standard deviation; independent
    uniform censoring between 200 and 2,500 days (under 7 years).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_features))
    t_bm = rng.exponential(1000 * np.exp(-effects[0] * x[:, 0]))
    t_death = rng.exponential(1500 * np.exp(-effects[1] * x[:, 1]))
    t_cens = rng.uniform(200, 2500, size=n)
    time = np.minimum.reduce([t_bm, t_death, t_cens])
    event = np.where(time == t_cens, "censored", np.where(time == t_bm, "bone_metastasis", "death"))
    return x, make_target(event, time)


def aalen_johansen(y: np.ndarray, t_days: np.ndarray) -> np.ndarray:
    """Reference: scikit-survival's nonparametric cumulative incidence (Aalen-Johansen)."""
    from sksurv.nonparametric import cumulative_incidence_competing_risks

    times, cif = cumulative_incidence_competing_risks(y["cause"].astype(int), y["time"])
    idx = np.searchsorted(times, t_days, side="right") - 1
    return np.where(idx >= 0, cif[1][np.clip(idx, 0, None)], 0.0)


def pickled(obj) -> bytes:
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return buf.getvalue()


def training_rows(n: int, seed: int, world: str = "baseline", with_truth: bool = False):
    """Rows free of bone metastasis at enrollment, their target, all predictor rows (and truth)."""
    sim = simulate_cohort(n, seed=seed, world=world)
    cohort = validate_cohort(sim.patients, sim.measurements)
    rows = enrollment_view(cohort.patients, cohort.measurements)
    free = rows["bone_metastasis_at_enrollment"].to_numpy(dtype=float) == 0
    X = rows.loc[free].reset_index(drop=True)
    y = make_target(X["event"].to_numpy(dtype=object), X["time_days"].to_numpy(dtype=float))
    if with_truth:
        truth = sim.truth.set_index("patient_id").loc[X["patient_id"].astype(str)]
        return X, y, rows[list(PREDICTOR_COLUMNS)], truth.reset_index(drop=True)
    return X, y, rows[list(PREDICTOR_COLUMNS)]


def known_cohort(n: int, seed: int):
    """Competing risks with known incidence: bone metastasis hazard 0.01 * exp(0.8 x) and death
    0.004 per month, administrative censoring at 12-60 months; the true incidence by horizon."""
    from training.models.competing import DAYS_PER_MONTH, make_target

    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    lam, mu = 0.01 * np.exp(0.8 * x), 0.004
    event_time = rng.exponential(1 / (lam + mu))
    cause = np.where(rng.uniform(size=n) < lam / (lam + mu), "bone_metastasis", "death")
    censor = rng.uniform(12, 60, n)
    event = np.where(event_time <= censor, cause, "censored")
    months = np.minimum(event_time, censor)
    y = make_target(event, months * DAYS_PER_MONTH)
    truth = {h: lam / (lam + mu) * (1 - np.exp(-(lam + mu) * h)) for h in (12, 24, 36, 60)}
    return y, truth
