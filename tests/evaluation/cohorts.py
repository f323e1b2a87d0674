"""Small seeded cohorts for the evaluation tests: targets and a simulation with a known truth."""

from __future__ import annotations

import numpy as np

from training.models.competing import DAYS_PER_MONTH, make_target

EVENTS = np.array(["censored", "bone_metastasis", "death"])


def target(cause, time) -> np.ndarray:
    return make_target(EVENTS[np.asarray(cause)], np.asarray(time, dtype=float))


def tied_split(seed: int):
    """A random training target (300 patients), a test target (10-199 patients, times on a
    weekly grid: ties of every kind) and tied risk scores of the test patients."""
    rng = np.random.default_rng(seed)
    y_train = target(rng.integers(0, 3, size=300), np.ceil(rng.exponential(400, 300)) + 1)
    n = int(rng.integers(10, 200))
    y_test = target(rng.integers(0, 3, size=n), np.ceil(rng.exponential(400, n) / 7) * 7 + 1)
    risk = np.round(rng.normal(size=n), int(rng.integers(0, 3)))
    return rng, y_train, y_test, risk


def simulate(n: int, seed: int, beta: float = 1.0):
    """Exponential cause-specific hazards with a known cumulative incidence.

    Bone metastasis hazard l1 = 6e-4 exp(beta x) per day, death hazard l2 = 3e-4, independent
    uniform censoring on [300, 3000] days. Given x the incidence of bone metastasis is analytic:
    F1(t | x) = l1 / (l1 + l2) * (1 - exp(-(l1 + l2) t)).

    Returns x, the target and ``true_cif(months) -> array`` of each patient's true F1.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    l1, l2 = 6e-4 * np.exp(beta * x), np.full(n, 3e-4)
    t_bm, t_death = rng.exponential(1 / l1), rng.exponential(1 / l2)
    t_cens = rng.uniform(300, 3000, size=n)
    time = np.minimum.reduce([t_bm, t_death, t_cens])
    cause = np.where(time == t_cens, 0, np.where(time == t_bm, 1, 2))

    def true_cif(months: float) -> np.ndarray:
        h = months * DAYS_PER_MONTH
        return l1 / (l1 + l2) * -np.expm1(-(l1 + l2) * h)

    return x, target(cause, time), true_cif


def risk_group_cohort(horizons: tuple[int, ...]):
    """400 patients with exponential competing hazards; bone metastasis hazard rises with x.

    Returns the target, a predicted incidence by horizon (the true one, so the tables are
    sensible), the risk score x and tertile risk groups.
    """
    rng = np.random.default_rng(11)
    n = 400
    x = rng.normal(size=n)
    l1, l2 = 6e-4 * np.exp(x), np.full(n, 3e-4)
    t_bm, t_death = rng.exponential(1 / l1), rng.exponential(1 / l2)
    t_cens = rng.uniform(300, 2500, size=n)
    time = np.minimum.reduce([t_bm, t_death, t_cens])
    cause = np.where(time == t_cens, 0, np.where(time == t_bm, 1, 2))
    y = make_target(EVENTS[cause], time)
    p = {h: l1 / (l1 + l2) * (1 - np.exp(-(l1 + l2) * h * DAYS_PER_MONTH)) for h in horizons}
    groups = np.array(["low", "intermediate", "high"], dtype=object)[
        np.searchsorted(np.quantile(x, [1 / 3, 2 / 3]), x)
    ]
    return y, p, x, groups
