"""Synthetic cohort generator: patients, repeated osteocalcin draws and the true risk.

The generator draws a cohort that satisfies data contract v1.2 (``shared/data-contract.md``) and
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

Where each part lives: :mod:`~features.simulate.config` (every parameter,
:class:`SimulationConfig`), :mod:`~features.simulate.covariates` (patients' covariates and
missingness), :mod:`~features.simulate.hazards` (the marker's mean, the Weibull hazards, event
times and censoring), :mod:`~features.simulate.marker_draws` (counts and repeated draws),
:mod:`~features.simulate.truth` (the true incidences), :mod:`~features.simulate.tables` (frames
and CSV text) and :mod:`~features.simulate.cohort` (:func:`simulate_cohort`, :func:`write_cohort`).
Import from here.
"""

from features.simulate.cohort import SimulatedCohort, simulate_cohort, write_cohort
from features.simulate.config import (
    DAYS_PER_YEAR,
    HORIZONS_MONTHS,
    MARKER_CUTOFF_PERCENT,
    MEASUREMENTS_FILE,
    PATIENTS_FILE,
    REFERENCE_AGE,
    TRUTH_FILE,
    SimulationConfig,
)
from features.simulate.truth import truth_columns

__all__ = [
    "DAYS_PER_YEAR",
    "HORIZONS_MONTHS",
    "MARKER_CUTOFF_PERCENT",
    "MEASUREMENTS_FILE",
    "PATIENTS_FILE",
    "REFERENCE_AGE",
    "TRUTH_FILE",
    "SimulatedCohort",
    "SimulationConfig",
    "simulate_cohort",
    "truth_columns",
    "write_cohort",
]
