"""Every generative parameter of the simulator (:class:`SimulationConfig`) and its constants."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from features.vocabulary import DAYS_PER_YEAR as DAYS_PER_YEAR
from features.vocabulary import DEFAULT_HORIZONS_MONTHS

#: Horizons of the truth table, months from enrollment (one month = 1/12 year).
HORIZONS_MONTHS = DEFAULT_HORIZONS_MONTHS  # of the truth file
#: Published cut-off of the study (domain.md: "a cut-off of about 0.045 %").
MARKER_CUTOFF_PERCENT = 0.045
#: Reference age for every age term (years); close to the cohort mean.
REFERENCE_AGE = 57.0

PATIENTS_FILE = "patients.csv"
MEASUREMENTS_FILE = "oc_measurements.csv"
TRUTH_FILE = "truth.csv"

# Integer codes shared by the simulator's modules (menopause, bone-targeted therapy, how the
# enrollment draw was observed); the outcome uses the cause codes of features.vocabulary.
PRE, PERI, POST = 0, 1, 2
BTT_NONE, BTT_BISPHOSPHONATE, BTT_DENOSUMAB = 0, 1, 2
OBS_NONE, OBS_COUNTS, OBS_PERCENT = 0, 1, 2


# pandas 3's default "str" dtype, spelled out: on pandas 2.3 (the range FlowKit supports) "str"
# is a NumPy object array that turns a missing value into the text "None".
STR_DTYPE = pd.StringDtype(na_value=np.nan)


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
    # (contract 1.2) the measuring lab and reagent lot: the measured fraction is the true one
    # times this ratio (a calibration bias of the assay; 1 = unbiased). features.simulate.sites
    # sets it per lab and lot; the truth knows it (docs/simulator.md, Sites and labs).
    marker_measurement_ratio: float = 1.0
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
