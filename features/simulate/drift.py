"""Monitoring scenarios on a simulated cohort, where every alarm's answer is known.

:func:`monitoring_scenario` gives a simulated cohort (:func:`~features.simulate.simulate_cohort`)
a calendar: enrollment dates spread over the accrual, a data cut after it (follow-up and draws
end there), sites, their labs and instruments, and antibody lots that change every
``lot_days`` in each lab. On that:

* :func:`shift_marker` makes one lab (or one of its lots) read the marker ``factor`` times
  higher (or lower) from a given day: positive events re-drawn so the counting noise stays
  Poisson (``events + Poisson((factor - 1) events)``; binomial thinning when ``factor < 1``),
  the percent recomputed from the counts;
* :func:`change_hazard` multiplies every patient's cause-specific hazard of bone metastasis by
  ``ratio`` from a calendar date on: by superposition, an independent extra bone-metastasis time
  with hazard ``(ratio - 1) lambda_i(t)`` after the date, where ``lambda_i`` is the patient's
  true hazard given the latent marker (the truth's oracle incidences read as a cause-specific
  hazard, :mod:`features.incidence`); whichever comes first ends follow-up;
* :func:`qc_results` writes the control-material results the labs ran (the ``qc`` table,
  :data:`features.monitor_schema.QC_COLUMNS`), on which the same shifts act.

This module adds to the simulator without changing it (``docs/simulator.md``,
``docs/monitoring.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from features.incidence import cause_specific_cumhaz, cumhaz_at
from features.monitor_schema import ENROLLMENT_DATE
from features.simulate.cohort import simulate_cohort
from features.simulate.config import HORIZONS_MONTHS
from features.vocabulary import DAYS_PER_MONTH, probability_column

__all__ = [
    "Shift",
    "MonitoringScenario",
    "monitoring_scenario",
    "shift_marker",
    "change_hazard",
    "qc_results",
    "split_at",
]


@dataclass(frozen=True)
class Shift:
    """The marker of ``lab_id`` (only lot ``reagent_lot`` when given) reads ``factor`` times
    the truth from ``from_date`` on."""

    lab_id: str
    factor: float
    from_date: str
    reagent_lot: str | None = None


@dataclass(frozen=True, eq=False)
class MonitoringScenario:
    """A simulated cohort with a calendar: ``patients`` has :data:`ENROLLMENT_DATE` (ISO text),
    ``site_id``, ``lab_id``, ``instrument_id`` and ``reagent_lot``; ``measurements`` the last
    three; ``shifts`` those applied; ``cut`` the data cut (ISO date)."""

    patients: pd.DataFrame
    measurements: pd.DataFrame
    truth: pd.DataFrame
    start: str
    cut: str
    labs: tuple[str, ...]
    lot_days: int
    shifts: tuple[Shift, ...] = ()
    seed: int = 0

    def lot(self, lab_index: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The lot in use in each lab on each calendar day (days since ``start``)."""
        offset = (np.asarray(lab_index) * self.lot_days) // max(len(self.labs), 1)
        k = (np.asarray(day, dtype=float) + offset) // self.lot_days + 1
        labs = np.asarray(self.labs, dtype=object)[lab_index]
        return np.asarray(
            [f"{lab}-LOT{int(i):02d}" for lab, i in zip(labs, k, strict=True)], dtype=object
        )

    def contract_patients(self) -> pd.DataFrame:
        """``patients`` without the monitor's :data:`ENROLLMENT_DATE` (for ``validate``)."""
        return self.patients.drop(columns=[ENROLLMENT_DATE])


def _days(frame: pd.DataFrame, start: str) -> np.ndarray:
    return (frame[ENROLLMENT_DATE].to_numpy(dtype="datetime64[D]") - np.datetime64(start)).astype(
        float
    )


def monitoring_scenario(
    n_patients: int,
    seed: int,
    *,
    n_labs: int = 3,
    start: str = "2024-01-01",
    accrual_days: int = 1095,
    follow_up_days: int = 730,
    lot_days: int = 180,
    world: str = "baseline",
) -> MonitoringScenario:
    """A simulated cohort on a calendar, one site per lab, lots changing every ``lot_days``.

    Patients are enrolled in ``patient_id`` order on days spread uniformly over
    ``accrual_days`` from ``start``; the data cut is ``accrual_days + follow_up_days`` after
    ``start``: a longer follow-up is censored there and later draws are dropped. Site ``Sk``
    sends its draws to lab ``Lk`` (one instrument, ``Lk-CYT1``); patients are spread over the
    sites at random.
    """
    if n_labs < 1:
        raise ValueError(f"n_labs must be >= 1, got {n_labs}")
    cohort = simulate_cohort(n_patients, seed, world=world)
    rng = np.random.default_rng([int(seed), 26])
    n = n_patients
    enrol = np.sort(np.floor(rng.uniform(0, accrual_days, n)))
    lab_index = rng.integers(0, n_labs, n)
    labs = tuple(f"L{k + 1}" for k in range(n_labs))
    cut_day = accrual_days + follow_up_days
    p = cohort.patients.copy()
    m = cohort.measurements.copy()
    left = cut_day - enrol  # days each patient can be followed until the cut
    has_outcome = p["time_days"].notna().to_numpy()
    over = has_outcome & (p["time_days"].to_numpy(dtype=float) > left)
    p.loc[over, "time_days"] = np.maximum(np.round(left[over], 1), 0.1)
    p.loc[over, "event"] = "censored"
    row = pd.Series(np.arange(n), index=p["patient_id"].to_numpy(dtype=object))
    mrow = row.loc[m["patient_id"].to_numpy(dtype=object)].to_numpy()
    m = m.loc[m["day"].to_numpy(dtype=float) <= left[mrow]].reset_index(drop=True)
    mrow = row.loc[m["patient_id"].to_numpy(dtype=object)].to_numpy()
    scn = MonitoringScenario(p, m, cohort.truth, start, "", labs, lot_days, (), seed)
    dates = np.datetime64(start) + enrol.astype("timedelta64[D]")
    p.insert(1, ENROLLMENT_DATE, dates.astype(str))
    p["site_id"] = [f"S{k + 1}" for k in lab_index]
    p["lab_id"] = np.asarray(labs, dtype=object)[lab_index]
    p["instrument_id"] = [f"{lab}-CYT1" for lab in p["lab_id"]]
    p["reagent_lot"] = scn.lot(lab_index, enrol)
    m["lab_id"] = np.asarray(labs, dtype=object)[lab_index[mrow]]
    m["instrument_id"] = [f"{lab}-CYT1" for lab in m["lab_id"]]
    m["reagent_lot"] = scn.lot(
        lab_index[mrow], enrol[mrow] + np.round(m["day"].to_numpy(dtype=float))
    )
    cut = str(np.datetime64(start) + np.timedelta64(cut_day, "D"))
    return replace(scn, patients=p, measurements=m, cut=cut)


def _shift_counts(rng, events, pbmc, percent, factor):
    """Marker values of shifted draws: counts re-drawn, percent from counts (or scaled)."""
    events = np.asarray(events, dtype=float)
    counted = ~np.isnan(events)
    new_events = events.copy()
    e = events[counted].astype(np.int64)
    if factor >= 1:
        new_events[counted] = e + rng.poisson((factor - 1.0) * e)
    else:
        new_events[counted] = rng.binomial(e, factor)
    pbmc = np.asarray(pbmc, dtype=float)
    new_events = np.where(counted, np.minimum(new_events, pbmc), np.nan)
    new_percent = np.where(
        counted & (pbmc > 0),
        100.0 * new_events / np.where(pbmc > 0, pbmc, 1.0),
        np.asarray(percent, dtype=float) * factor,
    )
    return new_events, np.minimum(_round6(new_percent), 100.0)


def _round6(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        digits = np.where(x > 0, 5 - np.floor(np.log10(np.abs(np.where(x > 0, x, 1.0)))), 0)
    return np.asarray(
        [round(v, int(d)) if np.isfinite(v) else v for v, d in zip(x, digits, strict=True)]
    )


def shift_marker(
    scn: MonitoringScenario,
    factor: float,
    from_date: str,
    lab_id: str,
    reagent_lot: str | None = None,
) -> MonitoringScenario:
    """The scenario with the draws of ``lab_id`` (and lot ``reagent_lot``) measured on or after
    ``from_date`` reading ``factor`` times the marker (counts re-drawn, seeded)."""
    if not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor}")
    rng = np.random.default_rng([scn.seed, 26, len(scn.shifts) + 1])
    p, m = scn.patients.copy(), scn.measurements.copy()
    since = np.datetime64(from_date)
    enrol = p[ENROLLMENT_DATE].to_numpy(dtype="datetime64[D]")
    row = pd.Series(np.arange(len(p)), index=p["patient_id"].to_numpy(dtype=object))
    mrow = row.loc[m["patient_id"].to_numpy(dtype=object)].to_numpy()
    m_date = enrol[mrow] + np.round(m["day"].to_numpy(dtype=float)).astype("timedelta64[D]")

    def hit(frame, dates):
        mask = (frame["lab_id"].to_numpy(dtype=object) == lab_id) & (dates >= since)
        if reagent_lot is not None:
            mask &= frame["reagent_lot"].to_numpy(dtype=object) == reagent_lot
        return mask

    mh = hit(m, m_date)
    if mh.any():
        ev, pc = _shift_counts(
            rng,
            m.loc[mh, "oc_positive_events"].to_numpy(dtype=float),
            m.loc[mh, "pbmc_events"].to_numpy(dtype=float),
            m.loc[mh, "oc_positive_percent"].to_numpy(dtype=float),
            factor,
        )
        m.loc[mh, "oc_positive_events"] = (
            pd.array(np.where(np.isnan(ev), pd.NA, ev), dtype="Int64")
            if np.isnan(ev).any()
            else ev.astype(np.int64)
        )
        m.loc[mh, "oc_positive_percent"] = pc
    ph = hit(p, enrol)
    day0 = m.loc[m["day"] == 0.0].set_index("patient_id")
    for i in np.flatnonzero(ph):
        pid = p.at[i, "patient_id"]
        if pid in day0.index:  # the enrollment draw is also the day-0 measurement: the same
            for c in ("oc_positive_percent", "oc_positive_events", "pbmc_events"):
                p.at[i, c] = day0.at[pid, c]
    alone = ph & ~p["patient_id"].isin(day0.index).to_numpy()
    if alone.any():
        ev, pc = _shift_counts(
            rng,
            p.loc[alone, "oc_positive_events"].to_numpy(dtype=float),
            p.loc[alone, "pbmc_events"].to_numpy(dtype=float),
            p.loc[alone, "oc_positive_percent"].to_numpy(dtype=float),
            factor,
        )
        p.loc[alone, "oc_positive_events"] = pd.array(
            [pd.NA if np.isnan(v) else int(v) for v in ev], dtype="Int64"
        )
        p.loc[alone, "oc_positive_percent"] = pc
    shift = Shift(lab_id, float(factor), from_date, reagent_lot)
    return replace(scn, patients=p, measurements=m, shifts=(*scn.shifts, shift))


def change_hazard(scn: MonitoringScenario, ratio: float, from_date: str) -> MonitoringScenario:
    """The scenario with every patient's hazard of bone metastasis multiplied by ``ratio``
    (> 1) from calendar date ``from_date`` on (module docstring); draws after a new bone
    metastasis are dropped."""
    if not ratio > 1.0:
        raise ValueError(f"ratio must be > 1, got {ratio}")
    rng = np.random.default_rng([scn.seed, 26, 99])
    p, m = scn.patients.copy(), scn.measurements.copy()
    truth = scn.truth.set_index("patient_id").reindex(p["patient_id"])
    months = [float(h) for h in HORIZONS_MONTHS]
    f1 = truth[[f"oracle_cif_bm_{h:g}m" for h in months]].to_numpy(dtype=float)
    f2 = truth[[f"oracle_cif_death_{h:g}m" for h in months]].to_numpy(dtype=float)
    grid = np.concatenate([[0.0], np.asarray(months) * DAYS_PER_MONTH])
    cumhaz = cause_specific_cumhaz(f1, f2)
    s = np.maximum(
        (np.datetime64(from_date) - p[ENROLLMENT_DATE].to_numpy(dtype="datetime64[D]")).astype(
            float
        ),
        0.0,
    )
    time = p["time_days"].to_numpy(dtype=float)
    at_risk = np.isfinite(time) & (time > s) & np.isfinite(cumhaz).all(axis=1)
    target = cumhaz_at(grid, cumhaz, s) + rng.standard_exponential(len(p)) / (ratio - 1.0)
    extra = _invert(grid, cumhaz, target)
    new = at_risk & (extra < time)
    p.loc[new, "time_days"] = np.maximum(np.round(extra[new], 1), 0.1)
    p.loc[new, "event"] = "bone_metastasis"
    end = pd.Series(
        p["time_days"].to_numpy(dtype=float), index=p["patient_id"].to_numpy(dtype=object)
    )
    ends = end.reindex(m["patient_id"].to_numpy(dtype=object)).to_numpy()
    changed = set(p.loc[new, "patient_id"])
    keep = ~(m["patient_id"].isin(changed).to_numpy() & (m["day"].to_numpy(dtype=float) > ends))
    return replace(scn, patients=p, measurements=m.loc[keep].reset_index(drop=True))


def _invert(grid: np.ndarray, cumhaz: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The time at which each row's piecewise-linear cumulative hazard reaches ``target``
    (the last segment extended; inf where it is flat there)."""
    out = np.empty(len(target))
    for i, (row, t) in enumerate(zip(cumhaz, target, strict=True)):
        k = int(np.searchsorted(row, t, side="right")) - 1
        k = min(max(k, 0), grid.size - 2)
        slope = (row[k + 1] - row[k]) / (grid[k + 1] - grid[k])
        out[i] = grid[k] + (t - row[k]) / slope if slope > 0 else np.inf
    return out


def qc_results(
    scn: MonitoringScenario,
    every_days: int = 7,
    levels: tuple[tuple[str, float], ...] = (("low", 0.03), ("high", 0.30)),
    cv: float = 0.06,
    since: str | None = None,
) -> pd.DataFrame:
    """Control-material results of every lab's instrument every ``every_days`` from ``since``
    (default: the scenario's start) to the cut: lognormal around each level's assigned value
    with coefficient of variation ``cv``, times the factor of any shift in force (same lab,
    lot, date); ``target_mean``/``target_sd`` are the assigned values."""
    rng = np.random.default_rng([scn.seed, 26, 7])
    first = np.datetime64(since or scn.start)
    days = np.arange(first, np.datetime64(scn.cut), np.timedelta64(every_days, "D"))
    rows = []
    sdlog = float(np.sqrt(np.log(1 + cv**2)))
    for li, lab in enumerate(scn.labs):
        offsets = (days - np.datetime64(scn.start)).astype(float)
        lots = scn.lot(np.full(days.size, li), offsets)
        for level, value in levels:
            factor = np.ones(days.size)
            for sh in scn.shifts:
                mask = (days >= np.datetime64(sh.from_date)) & (lab == sh.lab_id)
                if sh.reagent_lot is not None:
                    mask &= lots == sh.reagent_lot
                factor[mask] *= sh.factor
            noise = np.exp(rng.normal(-(sdlog**2) / 2, sdlog, days.size))
            rows.append(
                pd.DataFrame(
                    {
                        "lab_id": lab,
                        "instrument_id": f"{lab}-CYT1",
                        "reagent_lot": lots,
                        "date": days.astype(str),
                        "control_level": level,
                        "value": np.round(value * factor * noise, 6),
                        "target_mean": value,
                        "target_sd": round(value * cv, 6),
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def split_at(
    scn: MonitoringScenario, date: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Reference (enrolled before ``date``) and current (on or after) ``patients`` and
    ``oc_measurements`` tables, the monitor's input layout."""
    enrolled = scn.patients[ENROLLMENT_DATE].to_numpy(dtype="datetime64[D]") < np.datetime64(date)
    ids = set(scn.patients.loc[enrolled, "patient_id"])
    in_ref = scn.measurements["patient_id"].isin(ids).to_numpy()
    return (
        scn.patients.loc[enrolled].reset_index(drop=True),
        scn.measurements.loc[in_ref].reset_index(drop=True),
        scn.patients.loc[~enrolled].reset_index(drop=True),
        scn.measurements.loc[~in_ref].reset_index(drop=True),
    )


def write_tables(patients: pd.DataFrame, measurements: pd.DataFrame | None, out_dir) -> dict:
    """Write ``patients.csv`` (and ``oc_measurements.csv``) into ``out_dir`` (created) in the
    simulator's CSV format; returns the paths."""
    from pathlib import Path

    from features.simulate.config import MEASUREMENTS_FILE, PATIENTS_FILE
    from features.simulate.tables import write_csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"patients": out / PATIENTS_FILE}
    write_csv(patients, paths["patients"], "%.6g")
    if measurements is not None:
        paths["oc_measurements"] = out / MEASUREMENTS_FILE
        write_csv(measurements, paths["oc_measurements"], "%.6g")
    return paths


__all__.append("write_tables")


def truth_predictions(scn: MonitoringScenario, patient_ids) -> pd.DataFrame:
    """The truth as a model: each patient's oracle incidences (given the latent marker) in the
    layout of ``bonemet predict`` (``patient_id``, ``p_bone_met_<h>m``, ``p_death_<h>m``), the
    in-control answer for the monitor's outcome checks. Hazards changed by
    :func:`change_hazard` are not in it (that is the point)."""
    truth = scn.truth.set_index("patient_id").reindex(list(patient_ids))
    out = pd.DataFrame({"patient_id": list(patient_ids)})
    for h in HORIZONS_MONTHS:
        for event, oracle in (("bone_met", "bm"), ("death", "death")):
            column = truth[f"oracle_cif_{oracle}_{float(h):g}m"]
            out[probability_column(h, event)] = column.to_numpy(dtype=float)
    return out


__all__.append("truth_predictions")
