"""bonemet cytometry: FCS files written here with FlowIO, GatingML 2.0 gated by FlowKit.

The files hold events placed at known positions, so every gate count is known in advance; the
tests check bonemet's counts against those and against FlowKit's own gate counts, every
quality-control rule with its exact message, and the provenance table.
"""

from __future__ import annotations

import hashlib

import flowkit as fk
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.contract import check_measurements
from features.cytometry import CytometryError, compare_counts, gate_batch, write_result
from features.cytometry.gating import KEPT_KEYWORDS
from features.cytometry.simulate_fcs import draw_events, write_fcs_draws
from features.cytometry.strategy import resolve_gate
from tests.features.cytometry.batch import (
    DRAWS,
    HEADER,
    IDENTIFYING,
    make_events,
    problems_of,
    rewrite_manifest,
    run,
    write_fcs,
)
from training.cli import app


def test_counts_are_the_designed_ones_and_flowkits_own(batch):
    result = run(batch)
    out = result.measurements
    assert out["pbmc_events"].tolist() == [d[4] + d[5] for d in DRAWS]
    assert out["oc_positive_events"].tolist() == [d[5] for d in DRAWS]
    assert out["oc_positive_percent"].tolist() == pytest.approx(
        [100 * d[5] / (d[4] + d[5]) for d in DRAWS], rel=1e-12
    )
    assert out["alkaline_phosphatase_u_per_l"].tolist()[0] == 80.5
    assert np.isnan(out["alkaline_phosphatase_u_per_l"].iloc[1])
    strategy = fk.parse_gating_xml(str(batch / "gating.xml"))
    for (pid, day, *_), row in zip(DRAWS, out.itertuples(), strict=True):
        with open(batch / f"fcs/{pid}_{day}.fcs", "rb") as fh:
            res = strategy.gate_sample(fk.Sample(fh, sample_id="s"))
        assert row.pbmc_events == res.get_gate_count("Lymph", ("root", "Cells"))
        assert row.oc_positive_events == res.get_gate_count("OCpos", ("root", "Cells", "Lymph"))
    assert str(result.pbmc_gate) == "Cells/Lymph" and str(result.oc_gate) == "Cells/Lymph/OCpos"
    assert result.total_events == sum(sum(d[2:]) for d in DRAWS)


def test_output_is_a_valid_contract_table(batch, tmp_path):
    paths = write_result(run(batch), tmp_path / "out" / "oc.csv")
    raw = pd.read_csv(paths["oc_measurements"], dtype=str, keep_default_na=False)
    assert list(raw.columns) == [
        "patient_id",
        "day",
        "oc_positive_percent",
        "oc_positive_events",
        "pbmc_events",
        "alkaline_phosphatase_u_per_l",
        "instrument_id",
    ]
    _, violations = check_measurements(raw, {"P1", "P2"})
    assert violations == []
    assert raw["pbmc_events"].tolist() == ["1540", "2207", "1300"]


def test_gate_paths_and_parallel_workers_agree(batch):
    serial = run(batch)
    by_path = run(batch, pbmc="Cells/Lymph", oc="Cells/Lymph/OCpos")
    parallel = run(batch, workers=2)
    assert parallel.workers == 2
    pd.testing.assert_frame_equal(serial.measurements, by_path.measurements)
    pd.testing.assert_frame_equal(serial.measurements, parallel.measurements)
    pd.testing.assert_frame_equal(serial.provenance, parallel.provenance)


def test_provenance_content(batch):
    result = run(batch)
    prov = result.provenance
    gating_digest = hashlib.sha256((batch / "gating.xml").read_bytes()).hexdigest()
    for (pid, day, *counts), row in zip(DRAWS, prov.itertuples(), strict=True):
        data = (batch / f"fcs/{pid}_{day}.fcs").read_bytes()
        assert row.fcs_sha256 == hashlib.sha256(data).hexdigest()
        assert row.fcs_file == f"fcs/{pid}_{day}.fcs"
        assert row.event_count == sum(counts) and row.total_events == str(sum(counts))
    assert set(prov["instrument"]) == {"TestCytometer 3000"}
    assert set(prov["instrument_serial"]) == {"SN-42"}
    assert set(prov["acquisition_date"]) == {"12-MAR-2025"}
    assert set(prov["gating_sha256"]) == {gating_digest}
    assert set(prov["pbmc_gate_path"]) == {"Cells/Lymph"}
    assert set(prov["oc_gate_path"]) == {"Cells/Lymph/OCpos"}
    assert set(prov["flowkit_version"]) == {fk.__version__}
    assert set(prov["channels"]) == {"FSC-H;SSC-H;FL1-H;Time"}
    text = prov.to_csv()
    for value in IDENTIFYING.values():
        assert value not in text
    assert set(KEPT_KEYWORDS) == {"cyt", "cytsn", "date", "tot"}


def test_missing_file(batch):
    (batch / "fcs/P1_90.fcs").unlink()
    assert problems_of(batch) == [
        f"manifest row 2, patient_id P1, file fcs/P1_90.fcs: file not found: {batch}/fcs/P1_90.fcs"
    ]


def test_directory_instead_of_file(batch):
    rewrite_manifest(batch, lambda m: m.__setitem__("fcs_file", ["fcs", *m["fcs_file"][1:]]))
    assert problems_of(batch) == [
        "manifest row 1, patient_id P1, file fcs: cannot read file: is a directory"
    ]


def test_not_an_fcs_file(batch):
    (batch / "fcs/P2_0.fcs").write_text("patient_id,day\nP2,0\n")
    assert problems_of(batch) == [
        "manifest row 3, patient_id P2, file fcs/P2_0.fcs: not an FCS file: it does not start "
        "with an FCS version header (FCS2.0, 3.0, 3.1 or 3.2)"
    ]


def test_truncated_fcs_file(batch):
    path = batch / "fcs/P1_0.fcs"
    path.write_bytes(path.read_bytes()[:5000])
    assert problems_of(batch) == [
        "manifest row 1, patient_id P1, file fcs/P1_0.fcs: truncated or corrupt FCS file: "
        "FCSParsingError: FCS file indicates data section greater than file size"
    ]


def test_channel_missing(batch):
    events = make_events(0, 0, 1500, 3)[:, [0, 1, 3]]
    write_fcs(batch / "fcs/P1_90.fcs", events, channels=["FSC-H", "SSC-H", "Time"])
    assert problems_of(batch) == [
        "manifest row 2, patient_id P1, file fcs/P1_90.fcs: channel(s) the gating needs are "
        "missing: FL1-H (file has: FSC-H, SSC-H, Time)"
    ]


def test_unknown_gate_ids(batch):
    known = "Cells, Cells/Lymph, Cells/Lymph/OCpos"
    assert problems_of(batch, pbmc="PBMC", oc="Lymph/OCpos") == [
        f"gate id 'PBMC' (--pbmc-gate) is not in the gating strategy (gates: {known})",
        f"gate id 'Lymph/OCpos' (--oc-gate) is not in the gating strategy (gates: {known})",
    ]


def test_oc_gate_outside_pbmc_gate(batch):
    assert problems_of(batch, pbmc="Lymph", oc="Cells") == [
        "the OC gate Cells does not lie within the PBMC gate Cells/Lymph"
    ]
    assert problems_of(batch, pbmc="OCpos", oc="OCpos") == [
        "the OC gate Cells/Lymph/OCpos does not lie within the PBMC gate Cells/Lymph/OCpos"
    ]


def test_ambiguous_gate_id_needs_a_path():
    strategy = fk.GatingStrategy()
    dim = [fk.Dimension("FSC-H", range_min=1)]
    for parent in ("A", "B"):
        strategy.add_gate(fk.gates.RectangleGate(parent, dim), ("root",))
        strategy.add_gate(fk.gates.RectangleGate("X", dim), ("root", parent))
    with pytest.raises(CytometryError) as info:
        resolve_gate(strategy, "X", "oc-gate")
    assert [str(p) for p in info.value.problems] == [
        "gate id 'X' (--oc-gate) occurs at several paths: give one of A/X, B/X"
    ]
    assert resolve_gate(strategy, "B/X", "oc-gate").full_path == ("root", "B", "X")


def test_too_few_pbmc_events(batch):
    assert problems_of(batch, min_pbmc_events=1400) == [
        "manifest row 3, patient_id P2, file fcs/P2_0.fcs: too few events in the PBMC gate "
        "Cells/Lymph: 1300 < 1400 (--min-pbmc-events)"
    ]


def test_duplicate_draw_and_bad_patient_id(batch):
    rewrite_manifest(batch, lambda m: m.__setitem__("patient_id", ["P1", "P1 x", "P1"]))
    rewrite_manifest(batch, lambda m: m.__setitem__("day", ["0", "90", "0"]))
    assert problems_of(batch) == [
        "manifest row 2, column patient_id, value 'P1 x': must be 1-64 characters of A-Z a-z "
        "0-9 _ -, not beginning with - (a spreadsheet reads it as a formula)",
        "manifest row 3 (patient_id P1), column day, value '0': (patient_id, day) must be "
        "unique, already in row 1",
    ]


def test_manifest_columns(batch):
    def edit(m):
        m["oc_positive_percent"] = "0.1"
        m.loc[1, "fcs_file"] = ""

    rewrite_manifest(batch, edit)
    assert problems_of(batch) == [
        "column oc_positive_percent: unknown manifest column: expected patient_id, day, "
        "fcs_file and optionally alkaline_phosphatase_u_per_l, lab_id, instrument_id, "
        "reagent_lot (counts come from the FCS files)",
        "manifest row 2, patient_id P1: required value missing: a path to the draw's FCS file",
    ]


def test_draw_provenance_from_the_manifest_and_the_files(batch):
    """(1.2) Lab and lot come from the manifest; the instrument from $CYTSN, else $CYT (made an
    identifier), else the manifest; a manifest instrument the file contradicts is a problem."""
    write_fcs(batch / "fcs/P1_90.fcs", make_events(100, 50, 2200, 7), header=IDENTIFYING)
    no_serial = {k: v for k, v in HEADER.items() if k != "$CYTSN"}
    write_fcs(batch / "fcs/P2_0.fcs", make_events(0, 10, 1300, 0), header=no_serial)

    def edit(m):
        m["lab_id"] = ["LAB_1", "LAB_1", ""]
        m["reagent_lot"] = ["LOT-7", "LOT-8", "LOT-7"]
        m["instrument_id"] = ["", "Canto_2", ""]

    rewrite_manifest(batch, edit)
    out = run(batch).measurements
    assert out["lab_id"].tolist() == ["LAB_1", "LAB_1", None]
    assert out["reagent_lot"].tolist() == ["LOT-7", "LOT-8", "LOT-7"]
    assert out["instrument_id"].tolist() == ["SN-42", "Canto_2", "TestCytometer_3000"]
    rewrite_manifest(batch, lambda m: m.__setitem__("instrument_id", ["SN-41", "", "x y"]))
    assert problems_of(batch) == [
        "manifest row 3 (patient_id P2), column instrument_id, value 'x y': must be 1-64 "
        "characters of A-Z a-z 0-9 _ -, not beginning with - (a spreadsheet reads it as a "
        "formula)",
    ]
    rewrite_manifest(batch, lambda m: m.__setitem__("instrument_id", ["SN-41", "", ""]))
    assert problems_of(batch) == [
        "manifest row 1, patient_id P1, file fcs/P1_0.fcs: instrument_id 'SN-41' in the "
        "manifest, but the FCS file names instrument 'SN-42' ($CYTSN, else $CYT)",
    ]


def test_unreadable_gating_file(batch):
    (batch / "gating.xml").write_text("<not-gatingml")
    (problem,) = problems_of(batch)
    assert problem.startswith(f"cannot read the GatingML 2.0 file: {batch}/gating.xml: ")


def test_file_problems_are_reported_with_a_broken_strategy(batch):
    (batch / "fcs/P1_90.fcs").unlink()
    assert problems_of(batch, pbmc="PBMC") == [
        "gate id 'PBMC' (--pbmc-gate) is not in the gating strategy (gates: Cells, Cells/Lymph, "
        "Cells/Lymph/OCpos)",
        f"manifest row 2, patient_id P1, file fcs/P1_90.fcs: file not found: {batch}/fcs/P1_90.fcs",
    ]


def test_every_problem_of_the_batch_at_once_and_nothing_written(batch):
    (batch / "fcs/P1_90.fcs").unlink()
    (batch / "fcs/P2_0.fcs").write_text("x")
    out = batch / "out.csv"
    res = CliRunner().invoke(
        app,
        [
            "cytometry",
            "--manifest",
            str(batch / "manifest.csv"),
            "--gating",
            str(batch / "gating.xml"),
            "--pbmc-gate",
            "Lymph",
            "--oc-gate",
            "OCpos",
            "--out",
            str(out),
            "--min-pbmc-events",
            "1600",
            "--workers",
            "1",
        ],
    )
    assert res.exit_code == 2
    assert "cytometry quality control failed (3 problem(s)); nothing written:" in res.output
    assert "file fcs/P1_0.fcs: too few events in the PBMC gate Cells/Lymph: 1540 < 1600" in (
        res.output
    )
    assert "file fcs/P1_90.fcs: file not found" in res.output
    assert "file fcs/P2_0.fcs: not an FCS file" in res.output
    assert sorted(p.name for p in batch.iterdir()) == ["fcs", "gating.xml", "manifest.csv"]


def test_simulated_files_reproduce_the_counts(tmp_path):
    draws = pd.DataFrame(
        {
            "patient_id": ["P000002", "P000001", "P000001", "P000003"],
            "day": [0.0, 0.0, 91.5, 0.0],
            "oc_positive_percent": [np.nan] * 4,
            "oc_positive_events": pd.array([5, 0, 1200, None], dtype="Int64"),
            "pbmc_events": pd.array([11000, 10500, 1200, None], dtype="Int64"),
            "alkaline_phosphatase_u_per_l": [70.0, np.nan, 91.0, 60.0],
        }
    )
    paths = write_fcs_draws(draws, tmp_path / "fcs", n_patients=5, seed=1)
    manifest = pd.read_csv(paths["manifest"], dtype=str, keep_default_na=False)
    # P000003's draw has no counts (a percent-only draw): no file for it.
    assert manifest["fcs_file"].tolist() == [
        "files/P000001_day0.fcs",
        "files/P000001_day91.5.fcs",
        "files/P000002_day0.fcs",
    ]
    result = gate_batch(paths["manifest"], paths["gating"], "PBMC", "OC_pos", min_pbmc_events=1)
    assert compare_counts(result.measurements, draws).empty
    assert result.measurements["oc_positive_events"].tolist() == [0, 1200, 5]
    text = result.provenance.to_csv()
    assert "peripheral blood" not in text and "P000001_day0.fcs," not in text.replace(
        "files/P000001_day0.fcs,", ""
    )


def test_compare_counts_names_differences():
    a = pd.DataFrame(
        {
            "patient_id": ["P1", "P2"],
            "day": [0.0, 0.0],
            "pbmc_events": [100, 200],
            "oc_positive_events": [1, 2],
        }
    )
    b = a.assign(oc_positive_events=[1, 3])
    differ = compare_counts(a, b)
    assert differ[
        ["patient_id", "oc_positive_events", "oc_positive_events_expected"]
    ].values.tolist() == [["P2", 2, 3]]


def test_draw_events_rejects_impossible_counts():
    with pytest.raises(ValueError, match="oc_positive_events 11 must be within 0..pbmc_events 10"):
        draw_events(np.random.default_rng(0), 10, 11)


# Compensation named by the GatingML: a spillover matrix (rows: fluorochromes, columns:
# detectors) and a gate on the compensated FITC signal named by its fluorochrome.
COMP_XML = """<?xml version="1.0" encoding="UTF-8"?>
<gating:Gating-ML
    xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
    xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
    <transforms:spectrumMatrix transforms:id="Spill">
        <transforms:fluorochromes>
            <data-type:fcs-dimension data-type:name="FITC" />
            <data-type:fcs-dimension data-type:name="PE" />
        </transforms:fluorochromes>
        <transforms:detectors>
            <data-type:fcs-dimension data-type:name="FL1-H" />
            <data-type:fcs-dimension data-type:name="FL2-H" />
        </transforms:detectors>
        <transforms:spectrum>
            <transforms:coefficient transforms:value="1" />
            <transforms:coefficient transforms:value="0.2" />
        </transforms:spectrum>
        <transforms:spectrum>
            <transforms:coefficient transforms:value="0.1" />
            <transforms:coefficient transforms:value="1" />
        </transforms:spectrum>
    </transforms:spectrumMatrix>
    <gating:RectangleGate gating:id="Cells">
        <gating:dimension gating:compensation-ref="uncompensated" gating:min="3000">
            <data-type:fcs-dimension data-type:name="FSC-H" />
        </gating:dimension>
    </gating:RectangleGate>
    <gating:RectangleGate gating:id="OCpos" gating:parent_id="Cells">
        <gating:dimension gating:compensation-ref="Spill" gating:min="1000">
            <data-type:fcs-dimension data-type:name="FITC" />
        </gating:dimension>
    </gating:RectangleGate>
</gating:Gating-ML>
"""


def test_compensation_named_by_the_gatingml_is_applied(tmp_path):
    spill = np.array([[1.0, 0.2], [0.1, 1.0]])
    # Compensated (true) FITC, PE per event: 30 FITC+; 50 PE-bright that spill 2,000 units into
    # FL1-H (above the gate uncompensated, below it compensated); 900 negatives; 100 debris.
    true = np.vstack(
        [
            np.tile([5000.0, 100.0], (30, 1)),
            np.tile([100.0, 20000.0], (50, 1)),
            np.tile([100.0, 100.0], (1000, 1)),
        ]
    )
    raw = true @ spill  # what the detectors FL1-H, FL2-H record
    fsc = np.r_[np.full(980, 5000.0), np.full(100, 500.0)]
    events = np.column_stack([fsc, np.full(1080, 1000.0), raw, np.arange(1080.0)])
    write_fcs(tmp_path / "a.fcs", events, channels=["FSC-H", "SSC-H", "FL1-H", "FL2-H", "Time"])
    (tmp_path / "gating.xml").write_text(COMP_XML)
    pd.DataFrame({"patient_id": ["P1"], "day": [0], "fcs_file": ["a.fcs"]}).to_csv(
        tmp_path / "manifest.csv", index=False
    )
    result = run(tmp_path, pbmc="Cells", oc="OCpos", min_pbmc_events=1)
    assert result.measurements["pbmc_events"].tolist() == [980]
    assert result.measurements["oc_positive_events"].tolist() == [30]


def test_qc_figure_draws_both_gates(batch):
    from features.cytometry.figures import gate_figure
    from features.cytometry.strategy import resolve_gates

    strategy = fk.parse_gating_xml(str(batch / "gating.xml"))
    pbmc, oc = resolve_gates(strategy, "Lymph", "OCpos")
    fig = gate_figure(batch / "fcs/P1_0.fcs", strategy, pbmc, oc, "patient P1, day 0")
    left, right = fig.axes
    assert left.get_title() == "Cells/Lymph: 1,540 of 2,040 events"
    assert right.get_title() == "Cells/Lymph/OCpos: 40 of 1,540 events"
    assert right.get_xlabel() == "FL1-H (Logicle_262144_0.5_4.5_0)"
    assert fig._suptitle.get_text() == "patient P1, day 0"
    # Every event is drawn, those the gates leave out too, and the axes hold them all.
    assert left.get_legend_handles_labels()[1] == ["outside: 500", "inside: 1,540"]
    assert right.get_legend_handles_labels()[1] == ["outside: 1,500", "inside: 40"]
    (outside, _inside) = left.collections[:2]
    points = outside.get_offsets()
    (x0, x1), (y0, y1) = left.get_xlim(), left.get_ylim()
    assert len(points) == 500
    assert (points[:, 0] >= x0).all() and (points[:, 0] <= x1).all()
    assert (points[:, 1] >= y0).all() and (points[:, 1] <= y1).all()


def test_qc_scatter_subsample_keeps_both_sides_of_a_gate():
    from features.cytometry.figures import MAX_QC_POINTS, subsample_both_sides

    rng = np.random.default_rng(0)
    shown = np.arange(100_000)
    for n_in in (90_000, 30):  # a wide gate (few left out), a rare positive gate
        inside = shown < n_in
        kept = subsample_both_sides(shown, inside, rng)
        assert len(kept) == MAX_QC_POINTS and len(np.unique(kept)) == len(kept)
        rare = min(n_in, len(shown) - n_in)
        assert min(int(inside[kept].sum()), int((~inside[kept]).sum())) >= min(
            rare, MAX_QC_POINTS // 2
        )
