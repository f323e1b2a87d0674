"""Many sites and labs (contract 1.2): a cohort whose centres and laboratories differ.

A **site** enrols patients: it has its own case mix (share of metastatic disease, age), its own
baseline hazards of bone metastasis and of death (multipliers of the Weibull rates, so a
proportional-hazards shift of every patient there) and its own follow-up (minimum follow-up after
the end of accrual). A **lab** measures the draws: every draw it measures with a given reagent
**lot** reads ``lab.marker_ratio * lot.marker_ratio`` times the true osteocalcin-positive
fraction (a calibration bias of the assay; the latent marker, and so the risk, is unchanged).

:func:`simulate_sites` draws each (site, lab, lot) block with :func:`simulate_cohort` under the
block's :class:`SimulationConfig` and joins them: patient ids are renumbered over the whole
cohort, the provenance columns say where each patient and draw come from, and the truth of each
patient is that of its own site and lab (the truth knows the lab's bias). A patient's draws are
all measured by one lab with one lot, assigned at random within the site (``Site.labs``).

:func:`random_sites` and :func:`random_labs` draw sites and labs whose effects are random, with
the spreads of :data:`SITE_SPREAD` and :data:`LAB_SPREAD` (``bonemet simulate --sites K --labs L
--lots J``); the table of what was drawn (:attr:`MultiSiteCohort.sites`, ``sites.csv``) is the
truth per site. ``docs/simulator.md`` (Sites and labs) documents every figure.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.schema import PATIENT_ID_PATTERN
from features.simulate.cohort import SimulatedCohort, simulate_cohort, write_cohort
from features.simulate.config import STR_DTYPE, SimulationConfig
from features.simulate.tables import DRAW_PROVENANCE, patient_ids

SITES_FILE = "sites.csv"
LABS_FILE = "labs.csv"

#: Spread of random sites (:func:`random_sites`), each a standard deviation: of the log hazard
#: ratio of bone metastasis and of death, of the logit of the metastatic share, of the age shift
#: (years); and the range of the minimum follow-up (years). Assumptions, not domain figures:
#: between-centre variation of the baseline risk of this size is what multi-centre validations
#: of breast-cancer models report (a centre at twice or half the baseline risk is an outlier).
SITE_SPREAD = {
    "sd_log_hr_bone_metastasis": 0.25,
    "sd_log_hr_death": 0.20,
    "sd_logit_metastatic_share": 0.40,
    "sd_age_shift_years": 3.0,
    "min_follow_up_years": (1.5, 4.0),
}
#: Spread of random labs and lots (:func:`random_labs`): standard deviation of the log of the
#: lab's and of the lot's marker ratio (assumption: inter-lab CVs of 10-20 % are usual for flow
#: cytometric rare-event counts).
LAB_SPREAD = {"sd_log_lab_ratio": 0.15, "sd_log_lot_ratio": 0.08}


@dataclass(frozen=True)
class Lot:
    """A reagent lot: its id and the ratio of what it reads to the lab's reading."""

    reagent_lot: str
    marker_ratio: float = 1.0


@dataclass(frozen=True)
class Lab:
    """A laboratory: its id, its cytometer, its marker ratio and its reagent lots."""

    lab_id: str
    marker_ratio: float = 1.0
    lots: tuple[Lot, ...] = (Lot("LOT1"),)
    instrument_id: str = ""

    @property
    def instrument(self) -> str:
        """The cytometer's id (``<lab_id>-CYT`` unless given)."""
        return self.instrument_id or f"{self.lab_id}-CYT"


@dataclass(frozen=True)
class Site:
    """A centre: its id, its share of the patients and how it differs from the reference.

    ``metastatic_share`` and ``min_follow_up_years`` replace the config's values (None: the
    config's); ``age_shift_years`` moves both age means; ``hr_bone_metastasis`` and
    ``hr_death`` multiply the baseline Weibull rates (every patient's cause-specific hazard);
    ``labs`` names the labs measuring its draws (empty: all labs).
    """

    site_id: str
    share: float = 1.0
    metastatic_share: float | None = None
    age_shift_years: float = 0.0
    hr_bone_metastasis: float = 1.0
    hr_death: float = 1.0
    min_follow_up_years: float | None = None
    labs: tuple[str, ...] = ()

    def config(self, base: SimulationConfig) -> SimulationConfig:
        """The site's generative parameters: ``base`` with its differences."""
        return dataclasses.replace(
            base,
            metastatic_share=(
                base.metastatic_share if self.metastatic_share is None else self.metastatic_share
            ),
            age_mean_early=base.age_mean_early + self.age_shift_years,
            age_mean_metastatic=base.age_mean_metastatic + self.age_shift_years,
            bm_rate_early=base.bm_rate_early * self.hr_bone_metastasis,
            bm_rate_metastatic=base.bm_rate_metastatic * self.hr_bone_metastasis,
            death_rate_early=base.death_rate_early * self.hr_death,
            death_rate_metastatic=base.death_rate_metastatic * self.hr_death,
            min_follow_up_years=(
                base.min_follow_up_years
                if self.min_follow_up_years is None
                else self.min_follow_up_years
            ),
        )


@dataclass(frozen=True, eq=False)
class MultiSiteCohort(SimulatedCohort):
    """A :class:`SimulatedCohort` of many sites and labs, with what each site and lab is.

    ``sites``: one row per site (``site_id``, ``n_patients``, its :class:`Site` fields, and the
    true mean 12/24/36-month incidence of bone metastasis of its patients free of it at
    enrollment, ``true_cif_bm_<h>m``). ``labs``: one row per (lab, lot) with both ratios and
    their product ``marker_ratio``.
    """

    sites: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    labs: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)


def _check_id(kind: str, value: str) -> None:
    if not isinstance(value, str) or re.fullmatch(PATIENT_ID_PATTERN, value) is None:
        raise ValueError(f"{kind} {value!r} must be 1-64 characters of A-Z a-z 0-9 _ -")


def _check(sites: Sequence[Site], labs: Sequence[Lab]) -> None:
    if not sites:
        raise ValueError("at least one site is needed")
    if not labs:
        raise ValueError("at least one lab is needed")
    site_ids, lab_ids = [s.site_id for s in sites], [b.lab_id for b in labs]
    for kind, ids in (("site_id", site_ids), ("lab_id", lab_ids)):
        if len(set(ids)) != len(ids):
            raise ValueError(f"{kind}s must be unique, got {ids}")
        for value in ids:
            _check_id(kind, value)
    known = {b.lab_id for b in labs}
    for site in sites:
        for name in ("share", "hr_bone_metastasis", "hr_death"):
            value = getattr(site, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"site {site.site_id}: {name} must be > 0, got {value!r}")
        unknown = [b for b in site.labs if b not in known]
        if unknown:
            raise ValueError(f"site {site.site_id}: unknown lab(s) {unknown}")
    for lab in labs:
        _check_id("instrument_id", lab.instrument)
        if not lab.lots:
            raise ValueError(f"lab {lab.lab_id}: at least one reagent lot is needed")
        for ratio in (lab.marker_ratio, *(lot.marker_ratio for lot in lab.lots)):
            if not (math.isfinite(ratio) and ratio > 0):
                raise ValueError(f"lab {lab.lab_id}: marker ratios must be > 0, got {ratio!r}")
        for lot in lab.lots:
            _check_id("reagent_lot", lot.reagent_lot)


def random_sites(k: int, seed: int, spread: dict | None = None) -> tuple[Site, ...]:
    """``k`` sites ``S01``... with random differences (spreads :data:`SITE_SPREAD`).

    Equal shares; log hazard ratios, logit metastatic share and age shift normal around the
    reference (0, logit 0.35, 0); minimum follow-up uniform over its range. The same ``k`` and
    ``seed`` give the same sites.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"the number of sites must be an integer >= 1, got {k!r}")
    sp = {**SITE_SPREAD, **(spread or {})}
    rng = np.random.default_rng([int(seed), 2501])
    base = SimulationConfig().metastatic_share
    logit = math.log(base / (1 - base)) + sp["sd_logit_metastatic_share"] * rng.standard_normal(k)
    lo, hi = sp["min_follow_up_years"]
    width = max(2, len(str(k)))
    return tuple(
        Site(
            site_id=f"S{i + 1:0{width}d}",
            metastatic_share=float(1 / (1 + math.exp(-logit[i]))),
            age_shift_years=float(sp["sd_age_shift_years"] * rng.standard_normal()),
            hr_bone_metastasis=float(
                math.exp(sp["sd_log_hr_bone_metastasis"] * rng.standard_normal())
            ),
            hr_death=float(math.exp(sp["sd_log_hr_death"] * rng.standard_normal())),
            min_follow_up_years=float(rng.uniform(lo, hi)),
        )
        for i in range(k)
    )


def random_labs(
    n_labs: int, lots_per_lab: int, seed: int, spread: dict | None = None
) -> tuple[Lab, ...]:
    """``n_labs`` labs ``L01``... with ``lots_per_lab`` lots each (``L01-LOT1``...), their marker
    ratios log-normal around 1 (spreads :data:`LAB_SPREAD`)."""
    for name, value in (("labs", n_labs), ("lots per lab", lots_per_lab)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"the number of {name} must be an integer >= 1, got {value!r}")
    sp = {**LAB_SPREAD, **(spread or {})}
    rng = np.random.default_rng([int(seed), 2502])
    width = max(2, len(str(n_labs)))
    labs = []
    for i in range(n_labs):
        lab_id = f"L{i + 1:0{width}d}"
        ratio = float(math.exp(sp["sd_log_lab_ratio"] * rng.standard_normal()))
        lots = tuple(
            Lot(
                f"{lab_id}-LOT{j + 1}",
                float(math.exp(sp["sd_log_lot_ratio"] * rng.standard_normal())),
            )
            for j in range(lots_per_lab)
        )
        labs.append(Lab(lab_id, ratio, lots))
    return tuple(labs)


def _sizes(n: int, shares: np.ndarray) -> np.ndarray:
    """Largest-remainder allocation of ``n`` patients to the shares (deterministic)."""
    exact = n * shares / shares.sum()
    sizes = np.floor(exact).astype(int)
    order = np.argsort(-(exact - sizes), kind="stable")
    sizes[order[: n - sizes.sum()]] += 1
    return sizes


def simulate_sites(
    n_patients: int,
    seed: int,
    sites: int | Sequence[Site] = 3,
    labs: int | Sequence[Lab] = 1,
    *,
    lots_per_lab: int = 1,
    config: SimulationConfig | None = None,
    world: str = "baseline",
) -> MultiSiteCohort:
    """Simulate a cohort enrolled at several sites, its draws measured by several labs.

    Parameters
    ----------
    n_patients : int
        Patients in all (>= 1), shared out by the sites' ``share`` (largest remainder).
    seed : int
        Seed of everything: the same arguments give the same cohort.
    sites : int or sequence of Site, default 3
        The sites, or their number (:func:`random_sites` with ``seed``).
    labs : int or sequence of Lab, default 1
        The labs, or their number (:func:`random_labs` with ``lots_per_lab`` and ``seed``).
    lots_per_lab : int, default 1
        Lots of each random lab (only when ``labs`` is a number).
    config : SimulationConfig, optional
        The reference parameters every site departs from.
    world : str, default "baseline"
        As in :func:`simulate_cohort`.

    Returns
    -------
    MultiSiteCohort

    Raises
    ------
    ValueError
        For a bad count, seed, site or lab (non-unique or ill-formed ids, non-positive ratios,
        a site naming an unknown lab).
    """
    if (
        isinstance(n_patients, bool)
        or not isinstance(n_patients, int | np.integer)
        or n_patients < 1
    ):
        raise ValueError(f"n_patients must be an integer >= 1, got {n_patients!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    site_list = random_sites(sites, seed) if isinstance(sites, int | np.integer) else tuple(sites)
    lab_list = (
        random_labs(labs, lots_per_lab, seed) if isinstance(labs, int | np.integer) else tuple(labs)
    )
    _check(site_list, lab_list)
    base = config if config is not None else SimulationConfig()
    by_lab = {lab.lab_id: lab for lab in lab_list}
    rng = np.random.default_rng([int(seed), 2503])
    sizes = _sizes(int(n_patients), np.array([s.share for s in site_list], dtype=float))

    patients, draws, truths = [], [], []
    block = 0
    for site, n_site in zip(site_list, sizes, strict=True):
        if n_site == 0:
            continue
        site_cfg = site.config(base)
        # Each patient's lab and lot, uniformly among the site's labs and the lab's lots.
        labs_here = [by_lab[b] for b in (site.labs or tuple(by_lab))]
        lab_of = rng.integers(0, len(labs_here), n_site)
        lot_of = np.array([rng.integers(0, len(labs_here[i].lots)) for i in lab_of], dtype=int)
        for lab_i, lab in enumerate(labs_here):
            for lot_i, lot in enumerate(lab.lots):
                n_block = int(np.sum((lab_of == lab_i) & (lot_of == lot_i)))
                if n_block == 0:
                    continue
                cfg = dataclasses.replace(
                    site_cfg, marker_measurement_ratio=lab.marker_ratio * lot.marker_ratio
                )
                block_seed = int(np.random.default_rng([int(seed), 2504, block]).integers(2**31))
                block += 1
                sim = simulate_cohort(n_block, block_seed, cfg, world)
                provenance = {
                    "lab_id": lab.lab_id,
                    "instrument_id": lab.instrument,
                    "reagent_lot": lot.reagent_lot,
                }
                p = sim.patients.copy()
                p["site_id"] = pd.array([site.site_id] * n_block, dtype=STR_DTYPE)
                for name, value in provenance.items():
                    p[name] = pd.array([value] * n_block, dtype=STR_DTYPE)
                m = sim.measurements.copy()
                for name in DRAW_PROVENANCE:
                    m[name] = pd.array([provenance[name]] * len(m), dtype=STR_DTYPE)
                t = sim.truth.copy()
                t.insert(1, "site_id", pd.array([site.site_id] * n_block, dtype=STR_DTYPE))
                patients.append(p)
                draws.append(m)
                truths.append(t)

    patients_all = pd.concat(patients, ignore_index=True)
    draws_all = pd.concat(draws, ignore_index=True)
    truth_all = pd.concat(truths, ignore_index=True)
    # One id per patient over the whole cohort (each block numbered its own from P000001).
    block_of_patient = np.repeat(np.arange(len(patients)), [len(p) for p in patients])
    new_ids = patient_ids(len(patients_all))
    key = pd.MultiIndex.from_arrays(
        [block_of_patient, patients_all["patient_id"].to_numpy(dtype=object)]
    )
    mapping = pd.Series(new_ids, index=key)
    block_of_draw = np.repeat(np.arange(len(draws)), [len(m) for m in draws])
    draw_key = pd.MultiIndex.from_arrays(
        [block_of_draw, draws_all["patient_id"].to_numpy(dtype=object)]
    )
    patients_all["patient_id"] = pd.array(new_ids, dtype=STR_DTYPE)
    truth_all["patient_id"] = pd.array(new_ids, dtype=STR_DTYPE)
    draws_all["patient_id"] = pd.array(mapping.reindex(draw_key).to_numpy(), dtype=STR_DTYPE)
    draws_all = draws_all.sort_values(["patient_id", "day"], kind="mergesort").reset_index(
        drop=True
    )
    return MultiSiteCohort(
        patients=patients_all,
        measurements=draws_all,
        truth=truth_all,
        sites=_site_table(site_list, sizes, patients_all, truth_all),
        labs=_lab_table(lab_list),
    )


def _site_table(
    sites: Sequence[Site], sizes: np.ndarray, patients: pd.DataFrame, truth: pd.DataFrame
) -> pd.DataFrame:
    rows = []
    free = ~patients["bone_metastasis_at_enrollment"].to_numpy(dtype=bool)
    for site, n in zip(sites, sizes, strict=True):
        here = (patients["site_id"].to_numpy(dtype=object) == site.site_id) & free
        row = {"site_id": site.site_id, "n_patients": int(n)}
        row.update({f.name: getattr(site, f.name) for f in dataclasses.fields(Site)})
        row["labs"] = ";".join(site.labs)
        for h in (12, 24, 36):
            values = truth[f"cif_bm_{h}m"].to_numpy(dtype=float)[here]
            row[f"true_cif_bm_{h}m"] = float(values.mean()) if len(values) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _lab_table(labs: Sequence[Lab]) -> pd.DataFrame:
    rows = [
        {
            "lab_id": lab.lab_id,
            "instrument_id": lab.instrument,
            "reagent_lot": lot.reagent_lot,
            "lab_marker_ratio": lab.marker_ratio,
            "lot_marker_ratio": lot.marker_ratio,
            "marker_ratio": lab.marker_ratio * lot.marker_ratio,
        }
        for lab in labs
        for lot in lab.lots
    ]
    return pd.DataFrame(rows)


def write_sites(cohort: MultiSiteCohort, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """:func:`write_cohort` plus ``sites.csv`` and ``labs.csv`` (the truth per site and lab)."""
    paths = write_cohort(cohort, out_dir)
    out = Path(out_dir)
    paths["sites"] = out / SITES_FILE
    paths["labs"] = out / LABS_FILE
    cohort.sites.to_csv(paths["sites"], index=False, lineterminator="\n", float_format="%.6g")
    cohort.labs.to_csv(paths["labs"], index=False, lineterminator="\n", float_format="%.6g")
    return paths


__all__ = [
    "LAB_SPREAD",
    "LABS_FILE",
    "SITE_SPREAD",
    "SITES_FILE",
    "Lab",
    "Lot",
    "MultiSiteCohort",
    "Site",
    "random_labs",
    "random_sites",
    "simulate_sites",
    "write_sites",
]
