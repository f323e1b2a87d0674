"""Simulate a whole cohort: :func:`simulate_cohort` and what it returns."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.schema import MEASUREMENT_COLUMNS
from features.simulate.config import (
    MEASUREMENTS_FILE,
    OBS_COUNTS,
    OBS_NONE,
    OBS_PERCENT,
    PATIENTS_FILE,
    STR_DTYPE,
    TRUTH_FILE,
    SimulationConfig,
)
from features.simulate.covariates import (
    draw_covariates,
    draw_missingness,
)
from features.simulate.hazards import (
    bm_log_rate,
    death_log_rate,
    draw_outcomes,
    marker_log_hazard,
    marker_mean,
    weibull_shapes,
)
from features.simulate.marker_draws import (
    draw_measurements,
    draw_pbmc,
    percent_of,
    positive_fraction,
)
from features.simulate.tables import (
    DRAW_PROVENANCE,
    patient_ids,
    patients_frame,
    provenance_columns,
    write_csv,
)
from features.simulate.truth import (
    truth_frame,
)
from features.worlds import draw_bm_years, get_world


@dataclass(frozen=True, eq=False)
class SimulatedCohort:
    """A simulated cohort and its truth.

    Parameters
    ----------
    patients : pandas.DataFrame
        The contract ``patients`` table, every column in contract order. Numbers are float64,
        integers nullable ``Int64``, booleans nullable ``boolean``, categories ``str``; missing
        values are NA.
    measurements : pandas.DataFrame
        The contract ``oc_measurements`` table, sorted by patient and day.
    truth : pandas.DataFrame
        ``patient_id``, ``cif_bm_{12,24,36,60}m`` (true cumulative incidence of bone metastasis
        given the true covariates and the observed enrollment draw) and
        ``oracle_cif_bm_{12,24,36,60}m`` (given the true latent marker), then the same for
        death without bone metastasis (``cif_death_*``, ``oracle_cif_death_*``). Empty (NaN)
        for patients with bone metastasis at enrollment.
    """

    patients: pd.DataFrame
    measurements: pd.DataFrame
    truth: pd.DataFrame


def simulate_cohort(
    n_patients: int, seed: int, config: SimulationConfig | None = None, world: str = "baseline"
) -> SimulatedCohort:
    """Simulate a cohort that satisfies data contract v1.2, with its true risks.

    Parameters
    ----------
    n_patients : int
        Number of patients (>= 1).
    seed : int
        Seed of :func:`numpy.random.default_rng`; the same seed and config give identical
        frames.
    config : SimulationConfig, optional
        Generative parameters; the documented defaults when omitted.
    world : str, default "baseline"
        Generative structure of the bone-metastasis hazard (:data:`features.worlds.WORLDS`,
        ``docs/simulator.md`` section Worlds). ``"baseline"`` is the original structure; every
        world draws the same covariates and enrollment draws for the same seed.

    Returns
    -------
    SimulatedCohort
        ``patients``, ``measurements`` and ``truth`` frames.

    Raises
    ------
    ValueError
        When ``n_patients`` < 1, ``seed`` is negative or ``world`` is unknown.
    """
    if isinstance(n_patients, bool) or not isinstance(n_patients, int | np.integer):
        raise ValueError(f"n_patients must be an integer >= 1, got {n_patients!r}")
    if n_patients < 1:
        raise ValueError(f"n_patients must be an integer >= 1, got {n_patients!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    wld = get_world(world)
    cfg = config if config is not None else SimulationConfig()
    n = int(n_patients)
    rng = np.random.default_rng(int(seed))

    cov = draw_covariates(rng, n, cfg)
    a = marker_mean(cov, cfg)
    log_r0 = bm_log_rate(cov, cfg)
    log_q = death_log_rate(cov, cfg)

    # Latent signal and the enrollment draw.
    eps = rng.standard_normal(n)
    w0 = rng.standard_normal(n) * cfg.marker_within_sdlog
    log_m0 = a + cfg.marker_between_sdlog * eps + w0
    pbmc0 = draw_pbmc(rng, n, cfg)
    # What the lab measures: the true level times its calibration ratio (1: unbiased).
    shift = math.log(cfg.marker_measurement_ratio)
    a_measured = a + shift
    events0 = rng.binomial(pbmc0, positive_fraction(log_m0 + shift))

    beta = marker_log_hazard(cov["met"], cfg)
    bm_years = None
    if wld.name != "baseline":
        # Latent states come from a stream of their own, so the shared stream (covariates,
        # draws, censoring) is drawn exactly as in the baseline world.
        state_u = np.random.default_rng([int(seed), 12]).random(n)
        shape_bm = weibull_shapes(cov["met"], cfg)[0]

        def bm_years(unit: np.ndarray) -> np.ndarray:
            return draw_bm_years(wld, cov, log_r0, eps, shape_bm, beta, unit, state_u)

    out = draw_outcomes(rng, cov, log_r0 + beta * eps, log_q, cfg, bm_years)

    # Missingness masks (MCAR), drawn in a fixed order.
    miss = draw_missingness(rng, cov, cfg)
    measured0 = ~miss["marker"]
    counts_kept0 = measured0 & ~miss["counts"]
    percent0 = np.where(measured0, percent_of(events0, pbmc0), np.nan)

    measurements = draw_measurements(
        rng,
        cov,
        out,
        a_measured,
        eps,
        pbmc0,
        events0,
        percent0,
        measured0,
        counts_kept0,
        miss["alp"],
        cfg,
    )
    ids = patient_ids(n)
    patients = patients_frame(ids, cov, miss, percent0, events0, pbmc0, counts_kept0, out)
    row = measurements.pop("_row").to_numpy()
    measurements.insert(0, "patient_id", pd.array(ids[row], dtype=STR_DTYPE))
    for name, column in provenance_columns(len(measurements), DRAW_PROVENANCE).items():
        measurements[name] = column.to_numpy()
    measurements = measurements[[c.name for c in MEASUREMENT_COLUMNS]]

    obs_kind = np.where(~measured0, OBS_NONE, np.where(counts_kept0, OBS_COUNTS, OBS_PERCENT))
    truth = truth_frame(
        ids, cov, a_measured, log_r0, log_q, eps, obs_kind, events0, pbmc0, percent0, cfg, wld
    )
    return SimulatedCohort(patients=patients, measurements=measurements, truth=truth)


def write_cohort(cohort: SimulatedCohort, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the three tables as CSV files (UTF-8, ``\\n`` line ends, fixed number formats).

    Booleans are written ``true``/``false``, missing values as empty cells, numbers of the
    patients and measurement tables with at most 6 significant digits (values are already
    rounded: ages and days to 0.1, percents to 6 significant digits), truth probabilities with
    6 decimals. The same cohort gives byte-identical files.

    Parameters
    ----------
    cohort : SimulatedCohort
        As returned by :func:`simulate_cohort`.
    out_dir : str or os.PathLike
        Directory, created when absent; existing files of the same names are replaced.

    Returns
    -------
    dict of str to pathlib.Path
        Keys ``"patients"``, ``"oc_measurements"``, ``"truth"``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "patients": out / PATIENTS_FILE,
        "oc_measurements": out / MEASUREMENTS_FILE,
        "truth": out / TRUTH_FILE,
    }
    write_csv(cohort.patients, paths["patients"], "%.6g")
    write_csv(cohort.measurements, paths["oc_measurements"], "%.6g")
    write_csv(cohort.truth, paths["truth"], "%.6f")
    return paths
