"""Synthetic cohort generator: patients, repeated osteocalcin draws and the true risk.

The generator draws a cohort that satisfies data contract v1 (``shared/data-contract.md``) and
knows, for every patient, the true cumulative incidence of bone metastasis (death competing) at
12, 24, 36 and 60 months. It serves tests, demos and scaling benchmarks; the model, every
parameter and the figure of ``shared/domain.md`` it comes from are described in
``docs/simulator.md``.

In short, for patient *i* with covariates *x*:

* marker: ``log m0 = a(x) + sigma_b * eps + w0`` (``m0`` in percent of PBMC events,
  ``eps ~ N(0, 1)`` the latent micrometastatic signal, ``w0 ~ N(0, sigma_w^2)`` visit noise),
  observed through ``oc_positive_events ~ Binomial(pbmc_events, m0 / 100)``;
* cause-specific Weibull hazards ``h_bm(t) = r * k_bm * t^(k_bm - 1)`` with
  ``log r = b(x) + beta * eps`` and ``h_death(t) = q * k_d * t^(k_d - 1)`` (t in years);
* censoring from staggered accrual, an administrative end of study and loss to follow-up.

Everything is vectorised: 100,000 patients take about 7 s to simulate and 3 s to write (plus
about 1.5 s once per process to tabulate the truth integrals). The same seed gives the same frames
and byte-identical files.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit

from features.schema import DEFAULT_HORIZONS_MONTHS, MEASUREMENT_COLUMNS, PATIENT_COLUMNS
from features.worlds import World, draw_bm_years, get_world, world_cif

__all__ = [
    "HORIZONS_MONTHS",
    "MARKER_CUTOFF_PERCENT",
    "SimulatedCohort",
    "SimulationConfig",
    "simulate_cohort",
    "truth_columns",
    "write_cohort",
]

DAYS_PER_YEAR = 365.25
#: Horizons of the truth table, months from enrollment (one month = 1/12 year).
HORIZONS_MONTHS = DEFAULT_HORIZONS_MONTHS  # of the truth file
#: Published cut-off of the study (domain.md: "a cut-off of about 0.045 %").
MARKER_CUTOFF_PERCENT = 0.045
#: Reference age for every age term (years); close to the cohort mean.
REFERENCE_AGE = 57.0

PATIENTS_FILE = "patients.csv"
MEASUREMENTS_FILE = "oc_measurements.csv"
TRUTH_FILE = "truth.csv"

# Integer codes used internally.
_PRE, _PERI, _POST = 0, 1, 2
_BTT_NONE, _BTT_BISPHOSPHONATE, _BTT_DENOSUMAB = 0, 1, 2
_EV_BM, _EV_DEATH, _EV_CENSORED = 0, 1, 2
_OBS_NONE, _OBS_COUNTS, _OBS_PERCENT = 0, 1, 2


# pandas 3's default "str" dtype, spelled out: on pandas 2.3 (the range FlowKit supports) "str"
# is a NumPy object array that turns a missing value into the text "None".
_STR = pd.StringDtype(na_value=np.nan)


def truth_columns(prefix: str = "", event: str = "bm") -> list[str]:
    """Names of the cumulative-incidence columns of the truth table.

    Parameters
    ----------
    prefix : str, default ""
        ``""`` for the columns given the observed enrollment draw, ``"oracle_"`` for the columns
        given the true latent marker.
    event : {"bm", "death"}, default "bm"
        Bone metastasis, or death without bone metastasis (the competing event).

    Returns
    -------
    list of str
        E.g. ``["cif_bm_12m", "cif_bm_24m", "cif_bm_36m", "cif_bm_60m"]``.
    """
    return [f"{prefix}cif_{event}_{h}m" for h in HORIZONS_MONTHS]


@dataclass(frozen=True)
class SimulationConfig:
    """Every generative parameter of the synthetic cohort.

    Defaults are the documented values (``docs/simulator.md``, parameter table); each field's
    comment names the ``shared/domain.md`` figure it comes from, or says that domain.md has no
    figure for it and the value is a stated assumption. Hazard ratios (``hr_*``) multiply a
    cause-specific hazard; ratios (``*_ratio``) multiply a marker or ALP level.

    Raises
    ------
    ValueError
        From ``__post_init__`` when a probability lies outside [0, 1] or a ratio, rate, shape or
        scale is not positive.
    """

    # --- design ------------------------------------------------------------------------------
    # domain: the study is in metastatic disease, the model serves both settings (design choice).
    metastatic_share: float = 0.35
    # domain: horizons 1, 2, 3, 5 years -> accrual 3 y + 3 y minimum follow-up = 6 y maximum.
    accrual_years: float = 3.0
    min_follow_up_years: float = 3.0
    # no domain figure: random loss to follow-up, 3 %/year (assumption).
    loss_rate_per_year: float = 0.03

    # --- demographics (no domain figure: typical breast-cancer cohort, assumption) -----------
    age_mean_early: float = 57.0
    age_mean_metastatic: float = 60.0
    age_sd: float = 12.0
    age_min: float = 25.0
    age_max: float = 90.0
    # menopause at N(51, 3.5^2) years; "peri" within +-1 year of it (assumption).
    menopause_age_mean: float = 51.0
    menopause_age_sd: float = 3.5
    perimenopause_half_width_years: float = 1.0

    # --- receptors: luminal majority; checked against domain "68 % luminal, 20 % HER2-positive,
    # 7 % basal, 6 % normal-like" of bone metastases (docs/simulator.md, sanity numbers) -----
    p_er_positive: float = 0.75
    p_pr_positive_if_er_positive: float = 0.80
    p_pr_positive_if_er_negative: float = 0.05
    p_her2_positive_if_er_positive: float = 0.12
    p_her2_positive_if_er_negative: float = 0.35

    # --- grade, Ki-67, size, nodes (no domain figure; assumption) ----------------------------
    # P(grade 1, 2, 3) by subtype.
    grade_probs_er_negative: tuple[float, float, float] = (0.05, 0.25, 0.70)
    grade_probs_er_positive_her2_positive: tuple[float, float, float] = (0.10, 0.45, 0.45)
    grade_probs_er_positive_her2_negative: tuple[float, float, float] = (0.25, 0.55, 0.20)
    # Ki-67 log-normal: median by grade 1, 2, 3 (percent), log-sd.
    ki67_median_by_grade: tuple[float, float, float] = (8.0, 15.0, 35.0)
    ki67_sdlog: float = 0.5
    # tumor size log-normal: median (mm) by setting, log-sd.
    tumor_median_mm_early: float = 20.0
    tumor_median_mm_metastatic: float = 30.0
    tumor_sdlog: float = 0.55
    # P(node-positive) at a 20 mm tumor; odds ratio per doubling of size.
    p_node_positive_early: float = 0.38
    p_node_positive_metastatic: float = 0.65
    or_node_positive_per_size_doubling: float = 1.6
    # node-positive count = 1 + NegBin(mean, dispersion); gives ~11 % of early with > 4 nodes.
    extra_nodes_mean_early: float = 3.0
    extra_nodes_mean_metastatic: float = 4.0
    extra_nodes_dispersion: float = 0.8

    # --- metastatic sites --------------------------------------------------------------------
    # domain: "about half of metastatic patients have bone involvement".
    p_bone_metastasis_if_metastatic: float = 0.50
    # domain: "ER-positive tumors are about twice as likely to metastasize to bone" (odds ratio).
    or_bone_metastasis_er_positive: float = 2.0
    # no domain figure: visceral in 45 % of metastatic ER-positive, odds ratio 1.8 if ER-negative.
    p_visceral_if_metastatic: float = 0.45
    or_visceral_er_negative: float = 1.8

    # --- treatment at enrollment --------------------------------------------------------------
    # domain (seed 004): bone-targeted agents are routine once bone metastasis is found.
    p_btt_if_bone_metastasis: float = 0.85
    # domain: adjuvant bisphosphonates help postmenopausal women -> used there (assumption: 25 %).
    p_btt_if_early_post: float = 0.25
    p_btt_if_early_pre: float = 0.03
    # domain: no prevention benefit without bone involvement (RR 0.99) -> rarely used.
    p_btt_if_metastatic_no_bone: float = 0.05
    # share of denosumab among bone-targeted therapy, by group (assumption).
    denosumab_share_if_bone_metastasis: float = 0.50
    denosumab_share_otherwise: float = 0.15
    # endocrine therapy only for ER-positive (assumption: 90 % early, 75 % metastatic).
    p_endocrine_if_er_positive_early: float = 0.90
    p_endocrine_if_er_positive_metastatic: float = 0.75
    # chemotherapy: base probability, odds ratios (assumption).
    p_chemo_early: float = 0.30
    p_chemo_metastatic: float = 0.45
    or_chemo_er_negative: float = 3.0
    or_chemo_her2_positive: float = 2.2
    or_chemo_grade3: float = 2.0
    or_chemo_node_positive: float = 2.2
    or_chemo_visceral: float = 2.0

    # --- alkaline phosphatase (U/L), log-normal ----------------------------------------------
    # no domain figure for the level: median 75 U/L (normal range 40-130), log-sd 0.3.
    alp_median: float = 75.0
    alp_sdlog: float = 0.30
    # domain: bone turnover markers reflect bone involvement -> 1.6x with bone metastasis.
    alp_bone_metastasis_ratio: float = 1.6
    # no domain figure: liver involvement raises ALP.
    alp_visceral_ratio: float = 1.25
    # domain: ALP "prognostic ... but weak alone (C-index about 0.57)" -> HR per doubling,
    # calibrated to C ~0.56 in early disease.
    hr_bm_alp_per_doubling: float = 2.0
    # no domain figure: visit-to-visit log-sd of ALP and its rise before bone metastasis.
    alp_within_sdlog: float = 0.10
    alp_rise_ratio: float = 1.3

    # --- marker: true osteocalcin-positive percent -------------------------------------------
    # domain: cut-off ~0.045 %, "tens of positive events" per 100,000 -> median 0.03 %.
    marker_median_percent: float = 0.03
    # between-patient log-sd of the latent signal (sigma_b): with sigma_w, ~28 % of patients
    # free of bone metastasis draw above 0.045 %.
    marker_between_sdlog: float = 0.60
    # visit-to-visit biological log-sd (sigma_w); domain: the fraction "tracks bone turnover".
    marker_within_sdlog: float = 0.20
    # domain: "in adults it rises with age" -> x1.10 per decade (magnitude assumed).
    marker_ratio_per_decade: float = 1.10
    # domain study question 1 (bone vs no bone metastasis differ) -> x1.8 (magnitude assumed).
    marker_bone_metastasis_ratio: float = 1.8
    # seed 004: denosumab suppresses bone turnover more than bisphosphonates (71 % vs 29 %).
    marker_bisphosphonate_ratio: float = 0.75
    marker_denosumab_ratio: float = 0.60
    # domain hypothesis: the fraction rises as micrometastasis grows -> x2 at bone metastasis,
    # approached with time constant tau (days).
    marker_rise_ratio: float = 2.0
    marker_rise_tau_days: float = 120.0
    # domain: "a draw of 100,000 PBMC events" -> log-normal, median 120,000, 30,000-400,000.
    pbmc_median: float = 120_000.0
    pbmc_sdlog: float = 0.35
    pbmc_min: int = 30_000
    pbmc_max: int = 400_000

    # --- bone-metastasis cause-specific hazard: Weibull, t in years --------------------------
    # Calibrated by simulation: early 5-year cumulative incidence 12.4 % (domain "about 12 %");
    # metastatic without bone involvement 21 % at 2 years (domain: "3 of 33 ... in about 18
    # months" in a small cohort, "about half of metastatic patients have bone involvement").
    bm_rate_early: float = 0.0029
    bm_shape_early: float = 1.10
    bm_rate_metastatic: float = 0.0130
    bm_shape_metastatic: float = 1.0
    # domain: node-positive odds ratio ~2.6; > 4 nodes ~15 % at 2 years (early).
    hr_bm_nodes_1_4: float = 2.0
    hr_bm_nodes_over_4: float = 6.0
    # domain: tumor larger than 2 cm (magnitude assumed).
    hr_bm_tumor_over_20mm: float = 1.5
    # domain: "ER-positive tumors are about twice as likely" to metastasize to bone.
    hr_bm_er_positive: float = 2.0
    # domain: PR-positive odds ratio ~0.80 (so ER+/PR- carries more risk than ER+/PR+).
    hr_bm_pr_positive: float = 0.80
    # domain: HER2-positive odds ratio ~1.35.
    hr_bm_her2_positive: float = 1.35
    # domain: "younger age" (magnitude assumed).
    hr_bm_per_decade_younger: float = 1.2
    # no domain figure: visceral disease (higher burden) raises the bone hazard (assumption).
    hr_bm_visceral: float = 1.3
    # domain: adjuvant bisphosphonates HR ~0.62-0.75 in postmenopausal women, none in
    # premenopausal women, RR 0.99 in metastatic disease without bone involvement. The
    # conditional 0.62 gives a crude (marginal) HR of ~0.68-0.71 in the cohort: the latent marker
    # term is a frailty that pulls marginal hazard ratios towards 1.
    hr_bm_btt_early_post: float = 0.62
    hr_bm_btt_early_pre: float = 1.0
    hr_bm_btt_metastatic: float = 0.99
    # domain: above vs below 0.045 % HR ~4.8 (95 % CI 2.2-10.6) in metastatic disease:
    # log-hazard per SD of the latent signal eps, calibrated by simulation (crude Cox HR 4.83).
    marker_log_hazard_per_sd_metastatic: float = 1.65
    # no domain figure for early disease: the metastatic value is carried over (assumption).
    marker_log_hazard_per_sd_early: float = 1.65

    # --- death without bone metastasis: Weibull, t in years ----------------------------------
    # no domain figure for early disease: ~5 % die without bone metastasis within 5 years.
    death_rate_early: float = 0.0055
    death_shape_early: float = 1.20
    # domain: median survival 2-3 years, visceral worse -> median ~3 y without, ~1.5 y with.
    death_rate_metastatic: float = 0.17
    death_shape_metastatic: float = 1.10
    hr_death_visceral: float = 2.0
    hr_death_per_decade_older_early: float = 1.8
    hr_death_per_decade_older_metastatic: float = 1.2
    hr_death_er_negative: float = 1.5
    hr_death_nodes_over_4_early: float = 2.0

    # --- repeated draws (no domain figure: schedule of a monitoring study, assumption) -------
    p_repeated_draws: float = 0.60
    draw_interval_days: float = 90.0
    draw_jitter_days: float = 14.0
    # a confirmatory draw on the day of bone metastasis or up to 14 days after.
    p_draw_at_bone_metastasis: float = 0.30
    post_event_draw_max_days: float = 14.0
    p_alp_at_later_draw: float = 0.50

    # --- missingness, MCAR (no domain figure; typical registry shares, assumption) ------------
    p_missing_menopausal: float = 0.05
    p_missing_er: float = 0.02
    p_missing_pr: float = 0.05
    p_missing_her2: float = 0.05
    p_missing_ki67: float = 0.20
    p_missing_grade: float = 0.10
    p_missing_tumor_size: float = 0.05
    p_missing_nodes: float = 0.05
    p_missing_visceral_metastatic: float = 0.02
    p_missing_btt: float = 0.03
    p_missing_endocrine: float = 0.03
    p_missing_chemo: float = 0.03
    p_missing_alp: float = 0.30
    p_marker_not_measured: float = 0.10
    # among measured draws: percent reported, counts not.
    p_counts_missing: float = 0.10

    # --- numerical truth (not generative: quadrature and time grid, docs/simulator.md) ------
    truth_v_nodes: int = 320
    truth_eps_nodes: int = 64
    truth_grid_sds: float = 7.0
    truth_steps_per_year: int = 120
    truth_chunk: int = 2048

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            name = f.name
            if name.startswith("p_") or "_share" in name:
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"SimulationConfig.{name} must be in [0, 1], got {value!r}")
            elif isinstance(value, tuple):
                if any(v < 0 for v in value) or (
                    name.startswith("grade_probs") and not math.isclose(sum(value), 1.0)
                ):
                    raise ValueError(
                        f"SimulationConfig.{name} must be non-negative"
                        f"{' and sum to 1' if name.startswith('grade_probs') else ''},"
                        f" got {value!r}"
                    )
            elif name in (
                "marker_within_sdlog",
                "alp_within_sdlog",
                "draw_jitter_days",
                "loss_rate_per_year",
                "post_event_draw_max_days",
            ):
                if value < 0:
                    raise ValueError(f"SimulationConfig.{name} must be >= 0, got {value!r}")
            elif value <= 0:
                raise ValueError(f"SimulationConfig.{name} must be > 0, got {value!r}")
        if self.draw_jitter_days >= self.draw_interval_days:
            raise ValueError("SimulationConfig.draw_jitter_days must be < draw_interval_days")
        if not 18 <= self.age_min < self.age_max <= 100:
            raise ValueError("SimulationConfig.age_min/age_max must satisfy 18 <= min < max <= 100")
        if self.pbmc_min > self.pbmc_max:
            raise ValueError("SimulationConfig.pbmc_min must be <= pbmc_max")

    @property
    def max_follow_up_years(self) -> float:
        """Longest possible follow-up: accrual plus minimum follow-up."""
        return self.accrual_years + self.min_follow_up_years


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


# ---------------------------------------------------------------------------------------------
# Public functions


def simulate_cohort(
    n_patients: int, seed: int, config: SimulationConfig | None = None, world: str = "baseline"
) -> SimulatedCohort:
    """Simulate a cohort that satisfies data contract v1, with its true risks.

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

    cov = _draw_covariates(rng, n, cfg)
    a = _marker_mean(cov, cfg)
    log_r0 = _bm_log_rate(cov, cfg)
    log_q = _death_log_rate(cov, cfg)

    # Latent signal and the enrollment draw.
    eps = rng.standard_normal(n)
    w0 = rng.standard_normal(n) * cfg.marker_within_sdlog
    log_m0 = a + cfg.marker_between_sdlog * eps + w0
    pbmc0 = _draw_pbmc(rng, n, cfg)
    events0 = rng.binomial(pbmc0, _fraction(log_m0))

    beta = _marker_log_hazard(cov["met"], cfg)
    bm_years = None
    if wld.name != "baseline":
        # Latent states come from a stream of their own, so the shared stream (covariates,
        # draws, censoring) is drawn exactly as in the baseline world.
        state_u = np.random.default_rng([int(seed), 12]).random(n)
        shape_bm = _shapes(cov["met"], cfg)[0]

        def bm_years(unit: np.ndarray) -> np.ndarray:
            return draw_bm_years(wld, cov, log_r0, eps, shape_bm, beta, unit, state_u)

    out = _draw_outcomes(rng, cov, log_r0 + beta * eps, log_q, cfg, bm_years)

    # Missingness masks (MCAR), drawn in a fixed order.
    miss = _draw_missingness(rng, cov, cfg)
    measured0 = ~miss["marker"]
    counts_kept0 = measured0 & ~miss["counts"]
    percent0 = np.where(measured0, _percent(events0, pbmc0), np.nan)

    measurements = _draw_measurements(
        rng,
        cov,
        out,
        a,
        eps,
        pbmc0,
        events0,
        percent0,
        measured0,
        counts_kept0,
        miss["alp"],
        cfg,
    )
    ids = _patient_ids(n)
    patients = _patients_frame(ids, cov, miss, percent0, events0, pbmc0, counts_kept0, out)
    row = measurements.pop("_row").to_numpy()
    measurements.insert(0, "patient_id", pd.array(ids[row], dtype=_STR))
    measurements = measurements[[c.name for c in MEASUREMENT_COLUMNS]]

    obs_kind = np.where(~measured0, _OBS_NONE, np.where(counts_kept0, _OBS_COUNTS, _OBS_PERCENT))
    truth = _truth_frame(
        ids, cov, a, log_r0, log_q, eps, obs_kind, events0, pbmc0, percent0, cfg, wld
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
    _write_csv(cohort.patients, paths["patients"], "%.6g")
    _write_csv(cohort.measurements, paths["oc_measurements"], "%.6g")
    _write_csv(cohort.truth, paths["truth"], "%.6f")
    return paths


# ---------------------------------------------------------------------------------------------
# Covariates


def _categorical(u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Index of the category for uniforms ``u`` (n,) and row probabilities ``probs`` (n, k)."""
    cum = np.cumsum(probs, axis=1)
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1)


def _odds_intercepts(p_marginal: float, odds_ratio: float, share_exposed: float) -> float:
    """Logit of the unexposed group so that the marginal probability is ``p_marginal``."""
    if p_marginal <= 0.0 or p_marginal >= 1.0 or share_exposed in (0.0, 1.0):
        return float(logit(min(max(p_marginal, 1e-12), 1 - 1e-12)))
    lor = math.log(odds_ratio)

    def gap(b: float) -> float:
        return share_exposed * expit(b + lor) + (1 - share_exposed) * expit(b) - p_marginal

    return float(brentq(gap, -40.0, 40.0, xtol=1e-12))


def _draw_covariates(
    rng: np.random.Generator, n: int, cfg: SimulationConfig
) -> dict[str, np.ndarray]:
    """True covariate values, rounded as they are written (so truth and file agree)."""
    met = rng.random(n) < cfg.metastatic_share
    age = rng.normal(np.where(met, cfg.age_mean_metastatic, cfg.age_mean_early), cfg.age_sd)
    age = np.round(np.clip(age, cfg.age_min, cfg.age_max), 1)

    meno_age = rng.normal(cfg.menopause_age_mean, cfg.menopause_age_sd, n)
    half = cfg.perimenopause_half_width_years
    meno = np.where(age < meno_age - half, _PRE, np.where(age < meno_age + half, _PERI, _POST))

    er = rng.random(n) < cfg.p_er_positive
    pr = rng.random(n) < np.where(
        er, cfg.p_pr_positive_if_er_positive, cfg.p_pr_positive_if_er_negative
    )
    her2 = rng.random(n) < np.where(
        er, cfg.p_her2_positive_if_er_positive, cfg.p_her2_positive_if_er_negative
    )

    gp = np.where(
        (~er)[:, None],
        np.asarray(cfg.grade_probs_er_negative)[None, :],
        np.where(
            her2[:, None],
            np.asarray(cfg.grade_probs_er_positive_her2_positive)[None, :],
            np.asarray(cfg.grade_probs_er_positive_her2_negative)[None, :],
        ),
    )
    grade = _categorical(rng.random(n), gp) + 1
    ki67_med = np.asarray(cfg.ki67_median_by_grade)[grade - 1]
    ki67 = np.round(np.clip(ki67_med * np.exp(cfg.ki67_sdlog * rng.standard_normal(n)), 1, 95))

    size_med = np.where(met, cfg.tumor_median_mm_metastatic, cfg.tumor_median_mm_early)
    size = np.round(np.clip(size_med * np.exp(cfg.tumor_sdlog * rng.standard_normal(n)), 1, 250))

    p_np = np.where(met, cfg.p_node_positive_metastatic, cfg.p_node_positive_early)
    lp_np = logit(p_np) + math.log(cfg.or_node_positive_per_size_doubling) * np.log2(size / 20.0)
    node_pos = rng.random(n) < expit(lp_np)
    extra_mean = np.where(met, cfg.extra_nodes_mean_metastatic, cfg.extra_nodes_mean_early)
    k = cfg.extra_nodes_dispersion
    extra = rng.negative_binomial(k, k / (k + extra_mean))
    nodes = np.where(node_pos, np.minimum(1 + extra, 80), 0)

    b_bone = _odds_intercepts(
        cfg.p_bone_metastasis_if_metastatic, cfg.or_bone_metastasis_er_positive, cfg.p_er_positive
    )
    p_bone = expit(b_bone + math.log(cfg.or_bone_metastasis_er_positive) * er)
    bone = met & (rng.random(n) < p_bone)
    p_visc = expit(
        logit(cfg.p_visceral_if_metastatic) + math.log(cfg.or_visceral_er_negative) * ~er
    )
    visceral = met & (rng.random(n) < p_visc)

    post = meno == _POST
    p_btt = np.where(
        bone,
        cfg.p_btt_if_bone_metastasis,
        np.where(
            met,
            cfg.p_btt_if_metastatic_no_bone,
            np.where(post, cfg.p_btt_if_early_post, cfg.p_btt_if_early_pre),
        ),
    )
    on_btt = rng.random(n) < p_btt
    p_deno = np.where(bone, cfg.denosumab_share_if_bone_metastasis, cfg.denosumab_share_otherwise)
    deno = rng.random(n) < p_deno
    btt = np.where(on_btt, np.where(deno, _BTT_DENOSUMAB, _BTT_BISPHOSPHONATE), _BTT_NONE)

    p_endo = np.where(
        met, cfg.p_endocrine_if_er_positive_metastatic, cfg.p_endocrine_if_er_positive_early
    )
    endocrine = er & (rng.random(n) < p_endo)
    lp_chemo = (
        logit(np.where(met, cfg.p_chemo_metastatic, cfg.p_chemo_early))
        + math.log(cfg.or_chemo_er_negative) * ~er
        + math.log(cfg.or_chemo_her2_positive) * her2
        + math.log(cfg.or_chemo_grade3) * (grade == 3)
        + math.log(cfg.or_chemo_node_positive) * (nodes > 0)
        + math.log(cfg.or_chemo_visceral) * visceral
    )
    chemo = rng.random(n) < expit(lp_chemo)

    log_alp = (
        math.log(cfg.alp_median)
        + math.log(cfg.alp_bone_metastasis_ratio) * bone
        + math.log(cfg.alp_visceral_ratio) * visceral
        + cfg.alp_sdlog * rng.standard_normal(n)
    )
    alp = np.round(np.clip(np.exp(log_alp), 5.0, 5000.0), 1)

    return {
        "met": met,
        "age": age,
        "meno": meno,
        "er": er,
        "pr": pr,
        "her2": her2,
        "grade": grade,
        "ki67": ki67,
        "size": size,
        "nodes": nodes,
        "bone": bone,
        "visceral": visceral,
        "btt": btt,
        "endocrine": endocrine,
        "chemo": chemo,
        "alp": alp,
    }


# ---------------------------------------------------------------------------------------------
# Marker and hazards


def _marker_mean(cov: dict[str, np.ndarray], cfg: SimulationConfig) -> np.ndarray:
    """a(x): mean log true marker (log percent) given the covariates."""
    return (
        math.log(cfg.marker_median_percent)
        + math.log(cfg.marker_ratio_per_decade) * (cov["age"] - REFERENCE_AGE) / 10.0
        + math.log(cfg.marker_bone_metastasis_ratio) * cov["bone"]
        + math.log(cfg.marker_bisphosphonate_ratio) * (cov["btt"] == _BTT_BISPHOSPHONATE)
        + math.log(cfg.marker_denosumab_ratio) * (cov["btt"] == _BTT_DENOSUMAB)
    )


def _bm_log_rate(cov: dict[str, np.ndarray], cfg: SimulationConfig) -> np.ndarray:
    """log r without the marker term: Weibull rate of bone metastasis (per year^shape)."""
    met = cov["met"]
    nodes = cov["nodes"]
    on_btt = cov["btt"] != _BTT_NONE
    btt_hr = np.where(
        met,
        cfg.hr_bm_btt_metastatic,
        np.where(cov["meno"] == _POST, cfg.hr_bm_btt_early_post, cfg.hr_bm_btt_early_pre),
    )
    return (
        np.log(np.where(met, cfg.bm_rate_metastatic, cfg.bm_rate_early))
        + math.log(cfg.hr_bm_nodes_1_4) * ((nodes >= 1) & (nodes <= 4))
        + math.log(cfg.hr_bm_nodes_over_4) * (nodes > 4)
        + math.log(cfg.hr_bm_tumor_over_20mm) * (cov["size"] > 20)
        + math.log(cfg.hr_bm_er_positive) * cov["er"]
        + math.log(cfg.hr_bm_pr_positive) * cov["pr"]
        + math.log(cfg.hr_bm_her2_positive) * cov["her2"]
        + math.log(cfg.hr_bm_per_decade_younger) * (REFERENCE_AGE - cov["age"]) / 10.0
        + math.log(cfg.hr_bm_visceral) * cov["visceral"]
        + math.log(cfg.hr_bm_alp_per_doubling) * np.log2(cov["alp"] / cfg.alp_median)
        + np.log(btt_hr) * on_btt
    )


def _death_log_rate(cov: dict[str, np.ndarray], cfg: SimulationConfig) -> np.ndarray:
    """log q: Weibull rate of death without bone metastasis (per year^shape)."""
    met = cov["met"]
    per_decade = np.where(
        met, cfg.hr_death_per_decade_older_metastatic, cfg.hr_death_per_decade_older_early
    )
    return (
        np.log(np.where(met, cfg.death_rate_metastatic, cfg.death_rate_early))
        + np.log(per_decade) * (cov["age"] - REFERENCE_AGE) / 10.0
        + math.log(cfg.hr_death_visceral) * cov["visceral"]
        + math.log(cfg.hr_death_er_negative) * ~cov["er"]
        + math.log(cfg.hr_death_nodes_over_4_early) * (~met & (cov["nodes"] > 4))
    )


def _marker_log_hazard(met: np.ndarray, cfg: SimulationConfig) -> np.ndarray:
    """beta: log hazard ratio of bone metastasis per SD of the latent marker signal."""
    return np.where(
        met, cfg.marker_log_hazard_per_sd_metastatic, cfg.marker_log_hazard_per_sd_early
    )


def _shapes(met: np.ndarray, cfg: SimulationConfig) -> tuple[np.ndarray, np.ndarray]:
    kb = np.where(met, cfg.bm_shape_metastatic, cfg.bm_shape_early)
    kd = np.where(met, cfg.death_shape_metastatic, cfg.death_shape_early)
    return kb, kd


def _fraction(log_m: np.ndarray) -> np.ndarray:
    """Probability of a positive event from a log percent (capped below 1)."""
    return np.minimum(np.exp(log_m) / 100.0, 1.0 - 1e-9)


def _draw_pbmc(rng: np.random.Generator, size: int, cfg: SimulationConfig) -> np.ndarray:
    raw = cfg.pbmc_median * np.exp(cfg.pbmc_sdlog * rng.standard_normal(size))
    return np.clip(np.round(raw), cfg.pbmc_min, cfg.pbmc_max).astype(np.int64)


def _round_sig(x: np.ndarray, digits: int = 6) -> np.ndarray:
    """Round to ``digits`` significant digits (0 and NaN unchanged)."""
    x = np.asarray(x, dtype=float)
    out = x.copy()
    ok = np.isfinite(x) & (x != 0)
    mag = np.floor(np.log10(np.abs(x[ok])))
    scale = 10.0 ** (digits - 1 - mag)
    out[ok] = np.round(x[ok] * scale) / scale
    return out


def _percent(events: np.ndarray, pbmc: np.ndarray) -> np.ndarray:
    return _round_sig(100.0 * events / pbmc, 6)


# ---------------------------------------------------------------------------------------------
# Outcomes


def _draw_outcomes(
    rng: np.random.Generator,
    cov: dict[str, np.ndarray],
    log_r: np.ndarray,
    log_q: np.ndarray,
    cfg: SimulationConfig,
    bm_years: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Latent event times, censoring and the observed outcome (days).

    ``bm_years`` maps Exp(1) draws to times of bone metastasis for a non-baseline world; when
    None, the Weibull of rate ``exp(log_r)``.
    """
    n = len(log_r)
    kb, kd = _shapes(cov["met"], cfg)
    # Inversion of H(t) = rate * t^shape for each cause; independent latent times give exactly
    # the cause-specific hazards.
    unit_bm = rng.standard_exponential(n)
    t_bm = (unit_bm / np.exp(log_r)) ** (1.0 / kb) if bm_years is None else bm_years(unit_bm)
    t_death = (rng.standard_exponential(n) / np.exp(log_q)) ** (1.0 / kd)
    entry = rng.uniform(0.0, cfg.accrual_years, n)
    admin = cfg.max_follow_up_years - entry
    unit = rng.standard_exponential(n)
    rate = cfg.loss_rate_per_year
    loss = unit / rate if rate > 0 else np.full(n, np.inf)
    censor = np.minimum(admin, loss)

    bone = cov["bone"]
    t_end = np.minimum(np.minimum(t_bm, t_death), censor)
    event = np.where(t_end == t_bm, _EV_BM, np.where(t_end == t_death, _EV_DEATH, _EV_CENSORED))
    time_days = np.maximum(np.round(t_end * DAYS_PER_YEAR, 1), 0.1)
    # Patients with bone metastasis at enrollment have no outcome; their draws still stop at
    # death or censoring (hidden).
    hidden_end = np.maximum(np.round(np.minimum(t_death, censor) * DAYS_PER_YEAR, 1), 0.1)
    return {
        "time_days": np.where(bone, np.nan, time_days),
        "event": np.where(bone, -1, event),
        "draw_end_days": np.where(bone, hidden_end, time_days),
        "t_bm_days": np.where(bone, np.inf, t_bm * DAYS_PER_YEAR),
    }


# ---------------------------------------------------------------------------------------------
# Missingness and repeated draws


def _draw_missingness(
    rng: np.random.Generator, cov: dict[str, np.ndarray], cfg: SimulationConfig
) -> dict[str, np.ndarray]:
    n = len(cov["age"])
    names = {
        "meno": cfg.p_missing_menopausal,
        "er": cfg.p_missing_er,
        "pr": cfg.p_missing_pr,
        "her2": cfg.p_missing_her2,
        "ki67": cfg.p_missing_ki67,
        "grade": cfg.p_missing_grade,
        "size": cfg.p_missing_tumor_size,
        "nodes": cfg.p_missing_nodes,
        "visceral": cfg.p_missing_visceral_metastatic,
        "btt": cfg.p_missing_btt,
        "endocrine": cfg.p_missing_endocrine,
        "chemo": cfg.p_missing_chemo,
        "alp": cfg.p_missing_alp,
        "marker": cfg.p_marker_not_measured,
        "counts": cfg.p_counts_missing,
    }
    miss = {key: rng.random(n) < p for key, p in names.items()}
    # Early disease has no visceral metastasis by definition: always known (false).
    miss["visceral"] &= cov["met"]
    return miss


def _rise(day: np.ndarray, t_bm: np.ndarray, tau: float) -> np.ndarray:
    """Share (0-1) of the pre-metastatic rise reached at ``day``.

    ``expm1(day/tau) / expm1(T/tau)``: 0 at enrollment (so the enrollment draw carries only the
    baseline level and the truth stays exact), ~``exp(-(T - day)/tau)`` long after it, 1 at
    and after bone metastasis; 0 when it never comes (``T`` infinite).
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        share = np.exp(-(t_bm - day) / tau) * (-np.expm1(-day / tau)) / (-np.expm1(-t_bm / tau))
    share = np.where(day >= t_bm, 1.0, share)
    return np.where(np.isfinite(share), np.clip(share, 0.0, 1.0), 0.0)


def _draw_measurements(
    rng: np.random.Generator,
    cov: dict[str, np.ndarray],
    out: dict[str, np.ndarray],
    a: np.ndarray,
    eps: np.ndarray,
    pbmc0: np.ndarray,
    events0: np.ndarray,
    percent0: np.ndarray,
    measured0: np.ndarray,
    counts_kept0: np.ndarray,
    alp_missing0: np.ndarray,
    cfg: SimulationConfig,
) -> pd.DataFrame:
    """The ``oc_measurements`` table (with a private ``_row`` column: the patient's row)."""
    n = len(a)
    repeated = measured0 & (rng.random(n) < cfg.p_repeated_draws)
    rows = np.flatnonzero(repeated)
    n_rep = len(rows)
    span = cfg.max_follow_up_years * DAYS_PER_YEAR + cfg.post_event_draw_max_days
    n_slots = int(math.ceil(span / (cfg.draw_interval_days - cfg.draw_jitter_days))) + 1

    steps = cfg.draw_interval_days + rng.uniform(
        -cfg.draw_jitter_days, cfg.draw_jitter_days, (n_rep, n_slots - 1)
    )
    days = np.round(np.concatenate([np.zeros((n_rep, 1)), np.cumsum(steps, axis=1)], axis=1), 1)
    end = out["draw_end_days"][rows]
    keep = days < end[:, None]
    keep[:, 0] = True

    # Confirmatory draw on the day of bone metastasis or shortly after.
    extra = (out["event"][rows] == _EV_BM) & (rng.random(n_rep) < cfg.p_draw_at_bone_metastasis)
    extra_day = np.round(end + rng.uniform(0.0, cfg.post_event_draw_max_days, n_rep), 1)
    days = np.concatenate([days, extra_day[:, None]], axis=1)
    keep = np.concatenate([keep, extra[:, None]], axis=1)

    slot = np.broadcast_to(np.arange(n_slots + 1), days.shape)[keep]
    row = np.broadcast_to(rows[:, None], days.shape)[keep]
    day = days[keep]
    later = slot > 0
    m = int(later.sum())
    r_later = row[later]
    d_later = day[later]

    # Later draws: baseline level, fresh visit noise, the pre-metastatic rise, fresh counting.
    share = _rise(d_later, out["t_bm_days"][r_later], cfg.marker_rise_tau_days)
    log_m = (
        a[r_later]
        + cfg.marker_between_sdlog * eps[r_later]
        + cfg.marker_within_sdlog * rng.standard_normal(m)
        + math.log(cfg.marker_rise_ratio) * share
    )
    pbmc_l = _draw_pbmc(rng, m, cfg)
    events_l = rng.binomial(pbmc_l, _fraction(log_m))
    counts_l = ~(rng.random(m) < cfg.p_counts_missing)
    alp_l_present = rng.random(m) < cfg.p_alp_at_later_draw
    log_alp = (
        np.log(cov["alp"][r_later])
        + cfg.alp_within_sdlog * rng.standard_normal(m)
        + math.log(cfg.alp_rise_ratio) * share
    )
    alp_l = np.round(np.clip(np.exp(log_alp), 5.0, 5000.0), 1)

    total = len(row)
    pct = np.empty(total)
    ev = np.empty(total, dtype=np.int64)
    pb = np.empty(total, dtype=np.int64)
    has_counts = np.empty(total, dtype=bool)
    alp = np.empty(total)
    first = ~later
    r0 = row[first]
    pct[first] = percent0[r0]
    ev[first] = events0[r0]
    pb[first] = pbmc0[r0]
    has_counts[first] = counts_kept0[r0]
    alp[first] = np.where(alp_missing0[r0], np.nan, cov["alp"][r0])
    pct[later] = _percent(events_l, pbmc_l)
    ev[later] = events_l
    pb[later] = pbmc_l
    has_counts[later] = counts_l
    alp[later] = np.where(alp_l_present, alp_l, np.nan)

    return pd.DataFrame(
        {
            "_row": row,
            "day": day,
            "oc_positive_percent": pct,
            "oc_positive_events": _int_column(ev, ~has_counts),
            "pbmc_events": _int_column(pb, ~has_counts),
            "alkaline_phosphatase_u_per_l": alp,
        }
    )


# ---------------------------------------------------------------------------------------------
# Frames and CSV


def _patient_ids(n: int) -> np.ndarray:
    width = max(6, len(str(n)))
    return np.array([f"P{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _str_column(values: np.ndarray, labels: tuple[str, ...], missing: np.ndarray) -> pd.Series:
    text = np.asarray(labels, dtype=object)[values]
    text[missing] = None
    return pd.Series(pd.array(text, dtype=_STR))


def _bool_column(values: np.ndarray, missing: np.ndarray) -> pd.Series:
    arr = pd.array(values.astype(bool), dtype="boolean")
    arr[missing] = pd.NA
    return pd.Series(arr)


def _int_column(values: np.ndarray, missing: np.ndarray) -> pd.Series:
    arr = pd.array(values.astype(np.int64), dtype="Int64")
    arr[missing] = pd.NA
    return pd.Series(arr)


def _patients_frame(
    ids: np.ndarray,
    cov: dict[str, np.ndarray],
    miss: dict[str, np.ndarray],
    percent0: np.ndarray,
    events0: np.ndarray,
    pbmc0: np.ndarray,
    counts_kept0: np.ndarray,
    out: dict[str, np.ndarray],
) -> pd.DataFrame:
    n = len(ids)
    none = np.zeros(n, dtype=bool)
    pos_neg = ("negative", "positive")
    event_missing = out["event"] < 0
    data = {
        "patient_id": pd.Series(pd.array(ids, dtype=_STR)),
        "age_years": pd.Series(cov["age"]),
        "menopausal_status": _str_column(cov["meno"], ("pre", "peri", "post"), miss["meno"]),
        "er_status": _str_column(cov["er"].astype(int), pos_neg, miss["er"]),
        "pr_status": _str_column(cov["pr"].astype(int), pos_neg, miss["pr"]),
        "her2_status": _str_column(cov["her2"].astype(int), pos_neg, miss["her2"]),
        "ki67_percent": pd.Series(np.where(miss["ki67"], np.nan, cov["ki67"])),
        "histologic_grade": _int_column(cov["grade"], miss["grade"]),
        "tumor_size_mm": pd.Series(np.where(miss["size"], np.nan, cov["size"])),
        "positive_lymph_nodes": _int_column(cov["nodes"], miss["nodes"]),
        "disease_setting": _str_column(cov["met"].astype(int), ("early", "metastatic"), none),
        "visceral_metastasis": _bool_column(cov["visceral"], miss["visceral"]),
        "bone_metastasis_at_enrollment": _bool_column(cov["bone"], none),
        "bone_targeted_therapy": _str_column(
            cov["btt"], ("none", "bisphosphonate", "denosumab"), miss["btt"]
        ),
        "endocrine_therapy": _bool_column(cov["endocrine"], miss["endocrine"]),
        "chemotherapy": _bool_column(cov["chemo"], miss["chemo"]),
        "alkaline_phosphatase_u_per_l": pd.Series(np.where(miss["alp"], np.nan, cov["alp"])),
        "oc_positive_percent": pd.Series(percent0),
        "oc_positive_events": _int_column(events0, ~counts_kept0),
        "pbmc_events": _int_column(pbmc0, ~counts_kept0),
        "time_days": pd.Series(out["time_days"]),
        "event": _str_column(
            np.maximum(out["event"], 0), ("bone_metastasis", "death", "censored"), event_missing
        ),
    }
    frame = pd.DataFrame(data)
    return frame[[c.name for c in PATIENT_COLUMNS]]


def _text(column: pd.Series, float_format: str) -> list[str]:
    """Cells of one column as CSV text: booleans ``true``/``false``, missing values empty."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        values = column.to_numpy(dtype=object, na_value=None).tolist()
        return ["" if v is None else ("true" if v else "false") for v in values]
    if pd.api.types.is_float_dtype(dtype):
        numbers = column.to_numpy(dtype=float, na_value=np.nan).tolist()
        return ["" if v != v else float_format % v for v in numbers]
    if pd.api.types.is_integer_dtype(dtype):
        missing = column.isna().to_numpy().tolist()
        ints = column.to_numpy(dtype=np.int64, na_value=0).tolist()
        return ["" if na else str(v) for na, v in zip(missing, ints, strict=True)]
    return ["" if v is None else str(v) for v in column.to_numpy(dtype=object, na_value=None)]


def _write_csv(frame: pd.DataFrame, path: Path, float_format: str, block: int = 16384) -> None:
    """Write ``frame`` as CSV with a fixed float format (no quoting: no value holds a comma).

    Formatting is done here rather than by :meth:`pandas.DataFrame.to_csv` so that booleans are
    written ``true``/``false`` and the output does not depend on pandas' float printing. Rows are
    written in blocks to keep memory bounded.
    """
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(",".join(str(c) for c in frame.columns) + "\n")
        for start in range(0, len(frame), block):
            part = frame.iloc[start : start + block]
            cells = [_text(part[name], float_format) for name in part.columns]
            fh.write("\n".join(",".join(row) for row in zip(*cells, strict=True)))
            fh.write("\n")


# ---------------------------------------------------------------------------------------------
# Truth: cumulative incidence by numerical integration


def _cif_direct(
    log_r: np.ndarray,
    log_q: np.ndarray,
    shape_bm: float,
    shape_death: float,
    horizons_years: tuple[float, ...],
    steps_per_year: int,
    death: bool = False,
) -> np.ndarray:
    """CIF of bone metastasis at each horizon for Weibull cause-specific hazards.

    ``F(t) = int_0^t h_bm(u) S(u) du`` with ``S = exp(-H_bm - H_death)``, integrated on a grid
    of ``1/steps_per_year`` years. Cumulative hazards are exact on each interval; only the split
    of the interval's events between the causes assumes a constant hazard ratio within it.
    With ``death`` the CIF of death without bone metastasis, ``int_0^t h_death(u) S(u) du``,
    follows the horizons of bone metastasis on the last axis (the interval's other share).

    Returns
    -------
    numpy.ndarray
        Shape ``log_r.shape + (len(horizons_years),)``, ``(2 * len(horizons_years),)`` with
        ``death``.
    """
    r = np.exp(np.asarray(log_r, dtype=float))
    q = np.exp(np.asarray(log_q, dtype=float))
    shape = np.broadcast_shapes(r.shape, q.shape)
    n_steps = int(round(max(horizons_years) * steps_per_year))
    t = np.arange(n_steps + 1) / steps_per_year
    d_bm = np.diff(t**shape_bm)
    d_death = np.diff(t**shape_death)
    stop = {int(round(h * steps_per_year)): k for k, h in enumerate(horizons_years)}
    surv = np.ones(shape)
    cif = np.zeros(shape)
    tot = np.empty(shape)
    decay = np.empty(shape)
    gain = np.empty(shape)
    n_h = len(horizons_years)
    out = np.zeros(shape + ((2 if death else 1) * n_h,))
    # Per interval: dA = r dLambda_bm, dB = q dLambda_death (both > 0),
    # F += S * dA / (dA + dB) * (1 - exp(-(dA + dB))), S *= exp(-(dA + dB)). In place: this
    # loop builds the truth table and dominates its cost.
    for s in range(n_steps):
        da = r * d_bm[s]
        np.multiply(q, d_death[s], out=tot)
        tot += da
        np.negative(tot, out=decay)
        np.expm1(decay, out=decay)  # exp(-tot) - 1, in (-1, 0]
        np.multiply(surv, da, out=gain)
        gain *= decay
        gain /= tot
        cif -= gain
        decay *= surv
        surv += decay
        if s + 1 in stop:
            out[..., stop[s + 1]] = cif
            if death:
                # Everything that left the event-free state and is not bone metastasis.
                out[..., n_h + stop[s + 1]] = 1.0 - surv - cif
    return out


_LOG_R_RANGE = (-18.0, 7.0, 0.05)
_LOG_Q_RANGE = (-12.0, 5.0, 0.1)


@lru_cache(maxsize=8)
def _cif_table(
    shape_bm: float, shape_death: float, steps_per_year: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tabulated CIFs on a (log r, log q) grid, bone metastasis then death on the last axis
    (:func:`_cif_direct` with ``death``); cached per process (never built at import)."""
    lr = np.arange(_LOG_R_RANGE[0], _LOG_R_RANGE[1] + 1e-9, _LOG_R_RANGE[2])
    lq = np.arange(_LOG_Q_RANGE[0], _LOG_Q_RANGE[1] + 1e-9, _LOG_Q_RANGE[2])
    horizons = tuple(h / 12.0 for h in HORIZONS_MONTHS)
    table = _cif_direct(
        lr[:, None], lq[None, :], shape_bm, shape_death, horizons, steps_per_year, death=True
    )
    table.setflags(write=False)
    return lr, lq, table


def _interp_cif(
    lr: np.ndarray, lq: np.ndarray, table: np.ndarray, log_r: np.ndarray, log_q: np.ndarray
) -> np.ndarray:
    """Bilinear interpolation of the table (values outside the grid are clamped)."""
    fr = (np.clip(log_r, lr[0], lr[-1]) - lr[0]) / (lr[1] - lr[0])
    fq = (np.clip(log_q, lq[0], lq[-1]) - lq[0]) / (lq[1] - lq[0])
    i = np.minimum(fr.astype(np.int64), len(lr) - 2)
    j = np.minimum(fq.astype(np.int64), len(lq) - 2)
    tr = (fr - i)[..., None]
    tq = (fq - j)[..., None]
    return (
        (1 - tr) * (1 - tq) * table[i, j]
        + tr * (1 - tq) * table[i + 1, j]
        + (1 - tr) * tq * table[i, j + 1]
        + tr * tq * table[i + 1, j + 1]
    )


def _truth_frame(
    ids: np.ndarray,
    cov: dict[str, np.ndarray],
    a: np.ndarray,
    log_r0: np.ndarray,
    log_q: np.ndarray,
    eps: np.ndarray,
    obs_kind: np.ndarray,
    events0: np.ndarray,
    pbmc0: np.ndarray,
    percent0: np.ndarray,
    cfg: SimulationConfig,
    world: World,
) -> pd.DataFrame:
    """True CIFs given the observed enrollment draw, and given the latent marker (oracle)."""
    n = len(ids)
    n_h = 2 * len(HORIZONS_MONTHS)  # bone metastasis, then death (the table's last axis)
    observed = np.full((n, n_h), np.nan)
    oracle = np.full((n, n_h), np.nan)
    sb, sw = cfg.marker_between_sdlog, cfg.marker_within_sdlog
    sv = math.hypot(sb, sw)

    # Grid of the enrollment deviation v = sb*eps + w0 (prior N(0, sv^2)) and of eps | v.
    v = np.linspace(-cfg.truth_grid_sds * sv, cfg.truth_grid_sds * sv, cfg.truth_v_nodes)
    log_prior_v = -0.5 * (v / sv) ** 2
    if sw > 0:
        e = np.linspace(-cfg.truth_grid_sds - 1, cfg.truth_grid_sds + 1, cfg.truth_eps_nodes)
        mu = sb * v / sv**2
        tau = sw / sv
        kernel = np.exp(-0.5 * ((e[None, :] - mu[:, None]) / tau) ** 2)
        kernel /= kernel.sum(axis=1, keepdims=True)
    else:
        e = v / sb
        kernel = np.eye(len(v))

    met = cov["met"]
    todo = ~cov["bone"]
    for is_met in (False, True):
        kb = cfg.bm_shape_metastatic if is_met else cfg.bm_shape_early
        kd = cfg.death_shape_metastatic if is_met else cfg.death_shape_early
        beta = (
            cfg.marker_log_hazard_per_sd_metastatic
            if is_met
            else cfg.marker_log_hazard_per_sd_early
        )
        if world.name == "baseline":
            lr, lq, table = _cif_table(float(kb), float(kd), int(cfg.truth_steps_per_year))
        idx = np.flatnonzero(todo & (met == is_met))
        shapes = (float(kb), float(kd), float(beta))

        def world_truth(rows: np.ndarray, latent: np.ndarray, shapes=shapes) -> np.ndarray:
            # latent: eps per row (n,) or on the nodes (n, nodes); covariates shaped to match.
            at = (slice(None),) + (None,) * (latent.ndim - 1)
            sub = {key: col[rows][at] for key, col in cov.items()}
            horizons = tuple(h / 12.0 for h in HORIZONS_MONTHS)
            return world_cif(
                world,
                sub,
                log_r0[rows][at],
                log_q[rows][at],
                latent,
                *shapes,
                horizons,
                int(cfg.truth_steps_per_year),
                death=True,
            )

        for start in range(0, len(idx), cfg.truth_chunk):
            rows = idx[start : start + cfg.truth_chunk]
            if world.name == "baseline":
                oracle[rows] = _interp_cif(
                    lr, lq, table, log_r0[rows] + beta * eps[rows], log_q[rows]
                )
            else:
                oracle[rows] = world_truth(rows, eps[rows])

            # Posterior over v given the observed enrollment draw.
            kind = obs_kind[rows]
            k = np.where(kind == _OBS_COUNTS, events0[rows], 0.0).astype(float)
            trials = np.where(kind == _OBS_COUNTS, pbmc0[rows], 0).astype(float)
            pct_only = kind == _OBS_PERCENT
            trials[pct_only] = cfg.pbmc_median
            k[pct_only] = percent0[rows][pct_only] / 100.0 * cfg.pbmc_median
            log_p = np.minimum(a[rows][:, None] + v[None, :] - math.log(100.0), -1e-9)
            loglik = k[:, None] * log_p + (trials - k)[:, None] * np.log1p(-np.exp(log_p))
            logw = log_prior_v[None, :] + loglik
            logw -= logw.max(axis=1, keepdims=True)
            w = np.exp(logw)
            w /= w.sum(axis=1, keepdims=True)
            w_eps = w @ kernel  # posterior weights of eps on its grid

            if world.name == "baseline":
                cif_nodes = _interp_cif(
                    lr,
                    lq,
                    table,
                    log_r0[rows][:, None] + beta * e[None, :],
                    np.broadcast_to(log_q[rows][:, None], (len(rows), len(e))),
                )
            else:
                cif_nodes = world_truth(rows, np.broadcast_to(e[None, :], (len(rows), len(e))))
            observed[rows] = np.einsum("pg,pgh->ph", w_eps, cif_nodes)

    data: dict[str, object] = {"patient_id": pd.array(ids, dtype=_STR)}
    for h, name in enumerate(truth_columns("")):
        data[name] = np.clip(observed[:, h], 0.0, 1.0)
    for h, name in enumerate(truth_columns("oracle_")):
        data[name] = np.clip(oracle[:, h], 0.0, 1.0)
    k = len(HORIZONS_MONTHS)
    for h, name in enumerate(truth_columns("", "death")):
        data[name] = np.clip(observed[:, k + h], 0.0, 1.0)
    for h, name in enumerate(truth_columns("oracle_", "death")):
        data[name] = np.clip(oracle[:, k + h], 0.0, 1.0)
    return pd.DataFrame(data)
