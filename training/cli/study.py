"""The ``study`` command: the study report of a cohort."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training.cli.app import MeasurementsOpt, PatientsOpt, fail, load, store_settings


def study(
    patients: PatientsOpt,
    out: Annotated[Path, typer.Option("--out", help="output folder of report.html, study.json")],
    measurements: MeasurementsOpt = None,
    experiment: Annotated[
        str, typer.Option("--experiment", help="MLflow experiment of the study run")
    ] = "bone-metastasis-study",
    seed: Annotated[int, typer.Option("--seed", help="seed of bootstrap and permutations")] = 42,
    n_boot: Annotated[int, typer.Option("--n-boot", min=20, max=10000)] = 500,
    n_perm: Annotated[int, typer.Option("--n-perm", min=99, max=100000)] = 2000,
) -> None:
    """Write the study report (HTML with figures, JSON numbers) and log it to MLflow."""
    from training.runs.study import run_study
    from training.study.report.config import StudyConfig

    if out.exists() and not out.is_dir():
        fail(f"cannot write the report: --out {out} is a file, not a folder")
    cohort = load(patients, measurements)
    config = StudyConfig(seed=seed, n_boot=n_boot, n_perm=n_perm, experiment=experiment)
    result = run_study(cohort, out, store_settings(), config, source=str(Path(patients).resolve()))
    skipped = {
        part: list(result.numbers[part]["not_computed"])
        for part in ("aim1", "aim2", "monitoring")
        if result.numbers[part]["not_computed"]
    }
    typer.echo(f"report: {result.paths['report']}")
    typer.echo(f"numbers: {result.paths['numbers']}")
    typer.echo(f"mlflow run: {result.run_id}")
    for part, what in skipped.items():
        typer.echo(f"{part}: not computed: {'; '.join(what)}")
