"""A batch of FCS files with events at known positions (FlowIO) and its GatingML 2.0 file:
the helpers of the cytometry tests (the ``batch`` fixture is in ``conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import flowio
import numpy as np
import pandas as pd
import pytest

from features.cytometry import CytometryError, gate_batch

# GatingML 2.0 in the form of FlowKit's reference files (data/gate_ref/gml): a polygon on the
# scatter channels, a rectangle nested in it, and within that a range on a logicle-transformed
# fluorescence channel.
GATING_XML = """<?xml version="1.0" encoding="UTF-8"?>
<gating:Gating-ML
    xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
    xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
    <transforms:transformation transforms:id="Logicle_262144_0.5_4.5_0">
        <transforms:logicle transforms:T="262144" transforms:W="0.5" transforms:M="4.5"
            transforms:A="0" />
    </transforms:transformation>
    <gating:PolygonGate gating:id="Cells">
        <gating:dimension gating:compensation-ref="uncompensated">
            <data-type:fcs-dimension data-type:name="FSC-H" />
        </gating:dimension>
        <gating:dimension gating:compensation-ref="uncompensated">
            <data-type:fcs-dimension data-type:name="SSC-H" />
        </gating:dimension>
        <gating:vertex><gating:coordinate data-type:value="1000" />
            <gating:coordinate data-type:value="1000" /></gating:vertex>
        <gating:vertex><gating:coordinate data-type:value="9000" />
            <gating:coordinate data-type:value="1000" /></gating:vertex>
        <gating:vertex><gating:coordinate data-type:value="5000" />
            <gating:coordinate data-type:value="9000" /></gating:vertex>
    </gating:PolygonGate>
    <gating:RectangleGate gating:id="Lymph" gating:parent_id="Cells">
        <gating:dimension gating:compensation-ref="uncompensated"
            gating:min="3000" gating:max="7000">
            <data-type:fcs-dimension data-type:name="FSC-H" />
        </gating:dimension>
        <gating:dimension gating:compensation-ref="uncompensated"
            gating:min="1500" gating:max="4000">
            <data-type:fcs-dimension data-type:name="SSC-H" />
        </gating:dimension>
    </gating:RectangleGate>
    <gating:RectangleGate gating:id="OCpos" gating:parent_id="Lymph">
        <gating:dimension gating:compensation-ref="uncompensated"
            gating:transformation-ref="Logicle_262144_0.5_4.5_0" gating:min="0.5">
            <data-type:fcs-dimension data-type:name="FL1-H" />
        </gating:dimension>
    </gating:RectangleGate>
</gating:Gating-ML>
"""
CHANNELS = ["FSC-H", "SSC-H", "FL1-H", "Time"]
# Identifying free text a lab may leave in a header: none of it may reach any output.
IDENTIFYING = {"$SRC": "Jane Doe blood", "$FIL": "jane_doe_1962.fcs", "$OP": "Dr Who"}
HEADER = {"$CYT": "TestCytometer 3000", "$CYTSN": "SN-42", "$DATE": "12-MAR-2025", **IDENTIFYING}


def make_events(debris: int, cells_only: int, lymph_neg: int, lymph_pos: int) -> np.ndarray:
    """Events at known places: outside Cells, in Cells not Lymph, in Lymph OC- and OC+.

    Logicle(T=262144, W=0.5, M=4.5) of 100 is about 0.27 and of 20,000 about 0.75, on either side
    of the OC gate's 0.5; FSC/SSC positions sit well inside or outside the polygon and rectangle.
    """
    rng = np.random.default_rng(0)
    blocks = [
        (debris, (200, 500), (200, 500), (100, 100)),
        (cells_only, (4700, 5300), (5000, 6000), (20000, 20000)),
        (lymph_neg, (4000, 6000), (2000, 3500), (50, 150)),
        (lymph_pos, (4000, 6000), (2000, 3500), (15000, 25000)),
    ]
    rows = []
    for n, (f0, f1), (s0, s1), (o0, o1) in blocks:
        rows.append(
            np.column_stack(
                [rng.uniform(f0, f1, n), rng.uniform(s0, s1, n), rng.uniform(o0, o1, n)]
            )
        )
    ev = np.vstack(rows)
    ev = ev[rng.permutation(len(ev))]
    return np.column_stack([ev, np.arange(len(ev), dtype=float)])


def write_fcs(path: Path, events: np.ndarray, channels=CHANNELS, header=HEADER) -> Path:
    with open(path, "wb") as fh:
        flowio.create_fcs(
            fh, events.astype(np.float32).ravel(), channel_names=channels, metadata_dict=header
        )
    return path


# (patient, day, debris, cells_only, lymph_neg, lymph_pos)
DRAWS = [("P1", 0, 300, 200, 1500, 40), ("P1", 90, 100, 50, 2200, 7), ("P2", 0, 0, 10, 1300, 0)]


def run(folder: Path, manifest: str = "manifest.csv", **kw):
    kw.setdefault("min_pbmc_events", 1000)
    kw.setdefault("workers", 1)
    return gate_batch(
        folder / manifest,
        folder / "gating.xml",
        kw.pop("pbmc", "Lymph"),
        kw.pop("oc", "OCpos"),
        **kw,
    )


def problems_of(folder: Path, **kw) -> list[str]:
    with pytest.raises(CytometryError) as info:
        run(folder, **kw)
    return [str(p) for p in info.value.problems]


def rewrite_manifest(folder: Path, edit) -> None:
    m = pd.read_csv(folder / "manifest.csv", dtype=str, keep_default_na=False)
    edit(m)
    m.to_csv(folder / "manifest.csv", index=False)
