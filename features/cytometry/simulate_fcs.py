"""Simulated FCS files whose gates reproduce a simulated cohort's counts.

For a draw with ``pbmc_events`` N and ``oc_positive_events`` K the file holds N events inside the
PBMC scatter gate (K of them osteocalcin-positive) and a share of debris outside it. Events are
drawn from clouds kept clear of every gate boundary, so FlowKit's gate counts equal N and K
exactly. FlowIO writes the files; the GatingML 2.0 document is built as a FlowKit
``GatingStrategy`` and exported by FlowKit, so neither format is written by hand here.

Layout written by :func:`write_fcs_draws` into its folder: ``gating.xml``, ``manifest.csv``
(``patient_id``, ``day``, ``fcs_file``, ``alkaline_phosphatase_u_per_l``) and
``files/<patient_id>_day<day>.fcs``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd

# Channels of the simulated files ($PnN) with their stain ($PnS).
CHANNELS = ("FSC-A", "SSC-A", "OC-FITC-A", "Time")
STAINS = ("", "", "Osteocalcin", "")
PBMC_GATE = "PBMC"
OC_GATE = "OC_pos"
# The mononuclear-cell polygon on FSC-A x SSC-A (linear scale) and the box the PBMC events are
# drawn in: the box lies inside the polygon with a margin on every side.
PBMC_POLYGON = ((30000, 5000), (110000, 5000), (130000, 60000), (60000, 80000), (30000, 40000))
_PBMC_BOX = ((45000.0, 100000.0), (10000.0, 45000.0))
# Debris sits left of the polygon (FSC-A below its smallest vertex).
_DEBRIS_FSC_MAX = 20000.0
# Osteocalcin: logicle scale (FlowKit's LogicleTransform, T=262144, W=0.5, M=4.5, A=0); the gate
# starts at the logicle value of 2,000 raw units, negatives stay below 1,000 and positives above
# 4,000 raw units.
LOGICLE = {"param_t": 262144.0, "param_w": 0.5, "param_m": 4.5, "param_a": 0.0}
_OC_THRESHOLD_RAW = 2000.0
_NEG_MAX, _POS_MIN = 1000.0, 4000.0
DEBRIS_SHARE = 0.25
_BASE_DATE = dt.date(2025, 1, 6)


def gating_strategy():
    """The simulator's strategy: PBMC polygon, then a logicle-scaled OC+ range gate within it."""
    import flowkit as fk

    strategy = fk.GatingStrategy()
    logicle = fk.transforms.LogicleTransform(**LOGICLE)
    strategy.add_transform("logicle_oc", logicle)
    scatter = [fk.Dimension(c, compensation_ref="uncompensated") for c in CHANNELS[:2]]
    pbmc = fk.gates.PolygonGate(PBMC_GATE, scatter, [list(v) for v in PBMC_POLYGON])
    strategy.add_gate(pbmc, ("root",))
    threshold = float(logicle.apply(np.array([[_OC_THRESHOLD_RAW]]))[0, 0])
    oc_dim = fk.Dimension(
        CHANNELS[2],
        compensation_ref="uncompensated",
        transformation_ref="logicle_oc",
        range_min=round(threshold, 6),
    )
    strategy.add_gate(fk.gates.RectangleGate(OC_GATE, [oc_dim]), ("root", PBMC_GATE))
    return strategy


def write_gatingml(path: str | os.PathLike[str]) -> Path:
    """Export :func:`gating_strategy` as GatingML 2.0 (FlowKit's writer)."""
    import flowkit as fk

    path = Path(path)
    with open(path, "wb") as fh:
        fk.export_gatingml(gating_strategy(), fh)
    return path


def draw_events(rng: np.random.Generator, pbmc_events: int, oc_positive_events: int) -> np.ndarray:
    """Events (rows) by ``CHANNELS`` with exactly the given counts in the two gates."""
    if not 0 <= oc_positive_events <= pbmc_events:
        raise ValueError(
            f"oc_positive_events {oc_positive_events} must be within 0..pbmc_events {pbmc_events}"
        )
    n, k = int(pbmc_events), int(oc_positive_events)
    debris = int(round(DEBRIS_SHARE * n))
    (fx0, fx1), (sy0, sy1) = _PBMC_BOX
    fsc = np.clip(rng.normal(72000, 9000, n), fx0, fx1)
    ssc = np.clip(rng.normal(24000, 6000, n), sy0, sy1)
    oc = np.empty(n)
    oc[:k] = np.clip(rng.lognormal(np.log(15000), 0.5, k), _POS_MIN, 250000)
    oc[k:] = np.clip(rng.normal(300, 200, n - k), -200, _NEG_MAX)
    d_fsc = rng.uniform(0, _DEBRIS_FSC_MAX, debris)
    d_ssc = rng.uniform(0, 60000, debris)
    d_oc = rng.normal(600, 800, debris)
    events = np.column_stack(
        [
            np.concatenate([fsc, d_fsc]),
            np.concatenate([ssc, d_ssc]),
            np.concatenate([oc, d_oc]),
        ]
    )
    events = events[rng.permutation(len(events))]
    time_ch = np.sort(rng.uniform(0, 600, len(events)))
    return np.column_stack([events, time_ch]).astype(np.float32)


def write_fcs(
    path: str | os.PathLike[str], events: np.ndarray, metadata: dict[str, str] | None = None
) -> Path:
    """Write ``events`` (rows by ``CHANNELS``) as an FCS 3.1 file with FlowIO."""
    import flowio

    path = Path(path)
    with open(path, "wb") as fh:
        flowio.create_fcs(
            fh,
            np.asarray(events, dtype=np.float32).ravel(),
            channel_names=list(CHANNELS),
            opt_channel_names=list(STAINS),
            metadata_dict=metadata or {},
        )
    return path


def _text(value: object, default: str) -> str:
    """A provenance value as text; ``default`` when missing."""
    return default if value is None or pd.isna(value) else str(value)


def draws_for_fcs(measurements: pd.DataFrame, n_patients: int) -> pd.DataFrame:
    """The draws of the first ``n_patients`` patients (by id) that carry both counts."""
    counted = measurements.dropna(subset=["pbmc_events", "oc_positive_events"])
    ids = sorted(counted["patient_id"].astype(str).unique())[:n_patients]
    chosen = counted[counted["patient_id"].astype(str).isin(ids)]
    return chosen.sort_values(["patient_id", "day"]).reset_index(drop=True)


def write_fcs_draws(
    measurements: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    n_patients: int,
    seed: int,
) -> dict[str, Path]:
    """Write FCS files, the GatingML strategy and a manifest for ``n_patients`` patients.

    Parameters
    ----------
    measurements : pandas.DataFrame
        A simulated ``oc_measurements`` table; draws without both counts are skipped (the
        simulator drops counts for some draws, as labs report only a percent).
    out_dir : path
        Folder to write into (created).
    n_patients : int
        Patients whose draws get files (the first by id among those with counted draws).
    seed : int
        Seed of the event clouds.

    Returns
    -------
    dict
        ``gating``, ``manifest`` and ``files`` (the folder of FCS files).
    """
    out = Path(out_dir)
    files = out / "files"
    files.mkdir(parents=True, exist_ok=True)
    draws = draws_for_fcs(measurements, n_patients)
    rng = np.random.default_rng(seed)
    rows = []
    for draw in draws.itertuples(index=False):
        day = float(draw.day)
        name = f"{draw.patient_id}_day{day:g}.fcs"
        events = draw_events(rng, int(draw.pbmc_events), int(draw.oc_positive_events))
        date = _BASE_DATE + dt.timedelta(days=int(day))
        write_fcs(
            files / name,
            events,
            {
                "$CYT": _text(getattr(draw, "instrument_id", None), "bonemet simulated cytometer"),
                "$DATE": date.strftime("%d-%b-%Y").upper(),
                # What a real file often carries and bonemet must never copy.
                "$FIL": name,
                "$SRC": f"peripheral blood of simulated patient {draw.patient_id}",
            },
        )
        alp = draw.alkaline_phosphatase_u_per_l
        rows.append(
            {
                "patient_id": draw.patient_id,
                "day": f"{day:g}",
                "fcs_file": f"files/{name}",
                "alkaline_phosphatase_u_per_l": "" if pd.isna(alp) else f"{float(alp):g}",
                # (1.2) the lab and lot come with the manifest, the instrument with the file.
                "lab_id": _text(getattr(draw, "lab_id", None), ""),
                "reagent_lot": _text(getattr(draw, "reagent_lot", None), ""),
            }
        )
    manifest = out / "manifest.csv"
    columns = ["patient_id", "day", "fcs_file", "alkaline_phosphatase_u_per_l"]
    frame = pd.DataFrame(rows, columns=[*columns, "lab_id", "reagent_lot"])
    # Provenance columns only when the cohort has any (a cohort of one unnamed lab has none).
    frame = frame.drop(columns=[c for c in ("lab_id", "reagent_lot") if not (frame[c] != "").any()])
    frame.to_csv(manifest, index=False, lineterminator="\n")
    gating = write_gatingml(out / "gating.xml")
    return {"gating": gating, "manifest": manifest, "files": files}
