"""bonemet cytometry on hostile input (issue 20.7, 20.8): a header that promises more events
than the file holds, manifest paths that leave the manifest's folder, FCS keywords that are
spreadsheet formulas, and a failure after gating: nothing written, no run left behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from features.cytometry.problems import RULE_OUTSIDE_FOLDER
from tests.features.cytometry.batch import (
    CHANNELS,
    HEADER,
    make_events,
    problems_of,
    rewrite_manifest,
    run,
    write_fcs,
)
from training.cli import app


def _cli_args(folder: Path, out: Path, *extra: str) -> list[str]:
    return [
        "cytometry",
        "--manifest",
        str(folder / "manifest.csv"),
        "--gating",
        str(folder / "gating.xml"),
        "--pbmc-gate",
        "Lymph",
        "--oc-gate",
        "OCpos",
        "--out",
        str(out),
        "--min-pbmc-events",
        "1000",
        "--workers",
        "1",
        *extra,
    ]


def test_tot_beyond_the_data_is_a_corrupt_file(batch):
    path = batch / "fcs/P1_0.fcs"
    data = path.read_bytes()
    assert data.count(b"$TOT/2040/") == 1
    path.write_bytes(data.replace(b"$TOT/2040/", b"$TOT/9999/"))  # same length: offsets hold
    assert problems_of(batch) == [
        "manifest row 1, patient_id P1, file fcs/P1_0.fcs: truncated or corrupt FCS file: its "
        "header's $TOT says 9999 events but its data segment holds 2040"
    ]


def test_files_outside_the_manifest_folder_are_not_read(batch, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    outside = write_fcs(elsewhere / "other.fcs", make_events(0, 0, 1500, 40))
    (batch / "fcs" / "link.fcs").symlink_to(outside)
    (batch / "sub").mkdir()
    paths = [os.path.relpath(outside, batch), str(outside), "fcs/link.fcs"]
    rewrite_manifest(batch, lambda m: m.__setitem__("fcs_file", paths))
    rule = RULE_OUTSIDE_FOLDER.format(folder=batch.resolve())
    assert problems_of(batch) == [
        f"manifest row {i}, patient_id {pid}, file {p}: {rule}"
        for i, (pid, p) in enumerate(zip(["P1", "P1", "P2"], paths, strict=True), start=1)
    ]
    # Inside the folder, '..' that comes back in is fine; the explicit option reads the rest.
    rewrite_manifest(
        batch, lambda m: m.__setitem__("fcs_file", ["sub/../fcs/P1_0.fcs", *paths[1:]])
    )
    assert run(batch, allow_outside=True).measurements["pbmc_events"].tolist() == [1540] * 3


def test_fcs_keywords_that_are_formulas_are_neutralised(batch, tmp_path):
    from features.cytometry import write_result

    hostile = {**HEADER, "$CYT": '=HYPERLINK("http://x","y")', "$CYTSN": "@SUM(1)"}
    write_fcs(batch / "fcs/P1_0.fcs", make_events(300, 200, 1500, 40), CHANNELS, hostile)
    paths = write_result(run(batch), tmp_path / "oc.csv")
    prov = pd.read_csv(paths["provenance"], dtype=str, keep_default_na=False)
    assert prov["instrument"].tolist()[0] == "'=HYPERLINK(\"http://x\",\"y\")"
    assert prov["instrument_serial"].tolist()[0] == "'@SUM(1)"
    for path in paths.values():
        cells = pd.read_csv(path, dtype=str, keep_default_na=False).to_numpy().ravel()
        assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)


def test_a_failed_qc_figure_writes_nothing(batch, monkeypatch):
    import features.cytometry.figures as figures

    def broken(*args, **kwargs):
        raise IndexError("index 2040 is out of bounds for axis 0 with size 2040")

    monkeypatch.setattr(figures, "gate_figure", broken)
    out = batch / "out" / "oc.csv"
    res = CliRunner().invoke(
        app, _cli_args(batch, out), env={"BONEMET_DATA_DIR": str(batch / "data")}
    )
    assert res.exit_code == 2, res.output
    assert "the quality-control figure could not be drawn: IndexError: index 2040" in res.output
    assert not (batch / "out").exists() and not (batch / "data").exists()


def test_a_failed_run_leaves_no_table_and_no_run(batch, monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException

    def lost(*args, **kwargs):
        raise MlflowException("connection reset by peer")

    monkeypatch.setattr(mlflow, "log_figure", lost)
    out = batch / "out" / "oc.csv"
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        res = CliRunner().invoke(
            app,
            _cli_args(batch, out, "--experiment", "hostile"),
            env={"BONEMET_DATA_DIR": str(batch / "data")},
        )
        assert res.exit_code != 0
        assert isinstance(res.exception, MlflowException) or "connection reset" in res.output
        runs = mlflow.search_runs(experiment_names=["hostile"], output_format="list")
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
    assert runs == []  # the unfinished run was deleted
    assert sorted(p.name for p in (batch / "out").iterdir()) == []
