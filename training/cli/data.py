"""Commands over data: validate a cohort, simulate one, gate cytometry files into one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from features.schema import CONTRACT_VERSION
from training.cli.app import MeasurementsOpt, PatientsOpt, fail, load, store_settings


def validate(patients: PatientsOpt, measurements: MeasurementsOpt = None) -> None:
    """Check a cohort against data contract v1.2; list every violation, exit 2 if any."""
    cohort = load(patients, measurements)
    n_meas = 0 if cohort.measurements is None else len(cohort.measurements)
    kind = "training/evaluation" if cohort.has_outcome else "scoring"
    typer.echo(
        f"valid: {len(cohort.patients)} patients, {n_meas} measurements ({kind} cohort, "
        f"contract v{CONTRACT_VERSION})"
    )


def simulate(
    n_patients: Annotated[int, typer.Option("--n-patients", min=10, help="number of patients")],
    seed: Annotated[int, typer.Option("--seed", help="random seed")] = 42,
    out: Annotated[Path, typer.Option("--out", help="output folder")] = Path("data/demo"),
    fcs: Annotated[
        int,
        typer.Option(
            "--fcs", min=0, help="also write FCS files, GatingML and a manifest for K patients"
        ),
    ] = 0,
    world: Annotated[
        str,
        typer.Option(
            "--world",
            help="generative structure of the bone-metastasis hazard: baseline, threshold, "
            "interaction, mixture, waning (docs/simulator.md, Worlds)",
        ),
    ] = "baseline",
    sites: Annotated[
        int | None,
        typer.Option(
            "--sites",
            min=1,
            help="enrol at K sites differing in case mix, baseline hazards and follow-up; "
            "writes sites.csv, the truth per site (docs/simulator.md, Sites and labs)",
        ),
    ] = None,
    labs: Annotated[
        int | None,
        typer.Option(
            "--labs", min=1, help="measure the draws in L labs, each reading the marker with "
            "its own multiplicative bias; writes labs.csv",
        ),
    ] = None,
    lots: Annotated[
        int | None,
        typer.Option("--lots", min=1, help="reagent lots per lab, each with its own bias"),
    ] = None,
    fhir: Annotated[
        bool,
        typer.Option(
            "--fhir",
            help="also write each patient as a FHIR R4 transaction Bundle in OUT/fhir/ "
            "(latest draw an hour ago; docs/ehr.md)",
        ),
    ] = False,
) -> None:
    """Write a synthetic cohort (patients.csv, oc_measurements.csv) and its truth file."""
    from features.simulate import simulate_cohort, write_cohort
    from features.simulate.sites import simulate_sites, write_sites
    from features.worlds import get_world

    try:
        get_world(world)
    except ValueError as err:
        fail(str(err))
    if sites is None and labs is None and lots is None:
        cohort = simulate_cohort(n_patients, seed, world=world)
        paths = write_cohort(cohort, out)
    else:
        cohort = simulate_sites(
            n_patients, seed, sites or 1, labs or 1, lots_per_lab=lots or 1, world=world
        )
        paths = write_sites(cohort, out)
    if fcs:
        from features.cytometry.simulate_fcs import write_fcs_draws

        paths.update(write_fcs_draws(cohort.measurements, out / "fcs", fcs, seed))
    if fhir:
        from datetime import UTC, datetime

        from features.fhir import write_bundles

        paths["fhir"] = write_bundles(
            cohort.patients, cohort.measurements, out / "fhir", datetime.now(UTC)
        )
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


def cytometry(
    manifest: Annotated[
        Path, typer.Option("--manifest", help="CSV: patient_id, day, fcs_file[, ALP]")
    ],
    gating: Annotated[Path, typer.Option("--gating", help="GatingML 2.0 strategy")],
    pbmc_gate: Annotated[str, typer.Option("--pbmc-gate", help="gate id (or A/B/id path)")],
    oc_gate: Annotated[str, typer.Option("--oc-gate", help="gate id within the PBMC gate")],
    out: Annotated[Path, typer.Option("--out", help="output oc_measurements CSV")],
    min_pbmc_events: Annotated[
        int, typer.Option("--min-pbmc-events", min=1, help="fewest events in the PBMC gate")
    ] = 10_000,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="processes (default: by batch size)")
    ] = None,
    experiment: Annotated[
        str, typer.Option("--experiment", help="MLflow experiment of the run")
    ] = "bone-metastasis-cytometry",
    qc_figures: Annotated[
        int, typer.Option("--qc-figures", min=0, help="files drawn for QC figures")
    ] = 4,
    expect: Annotated[
        Path | None,
        typer.Option("--expect", help="oc_measurements table whose counts must be matched"),
    ] = None,
    allow_files_outside: Annotated[
        bool,
        typer.Option(
            "--allow-files-outside",
            help="read FCS files outside the manifest's folder (absolute paths, '..', links)",
        ),
    ] = False,
) -> None:
    """Gate FCS files with a GatingML 2.0 strategy (FlowKit) into the oc_measurements table."""
    from features.contract import ContractError, check_measurements, read_table
    from features.cytometry import CytometryError, compare_counts, gate_batch
    from training.runs.cytometry import write_and_log

    if out.is_dir():
        fail(f"cannot write the table: --out {out} is a folder")
    try:
        result = gate_batch(
            manifest,
            gating,
            pbmc_gate,
            oc_gate,
            min_pbmc_events=min_pbmc_events,
            workers=workers,
            allow_outside=allow_files_outside,
        )
        # Tables and run only once everything, figures included, has succeeded.
        paths, run_id = write_and_log(result, out, store_settings(), experiment, qc_figures)
    except CytometryError as err:
        fail(str(err))
    rate = result.total_events / max(result.seconds, 1e-9)
    typer.echo(
        f"gated {len(result.files)} files ({result.total_events:,} events, "
        f"{result.seconds:.1f} s, {rate:,.0f} events/s, {result.workers} process(es))"
    )
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")
    typer.echo(f"mlflow run: {run_id}")
    if expect is not None:
        try:
            expected, violations = check_measurements(read_table(expect), None)
        except ContractError as err:
            fail(str(err))
        if violations:
            fail("\n".join(str(v) for v in violations))
        differ = compare_counts(result.measurements, expected)
        if len(differ):
            fail(f"counts differ from {expect} for {len(differ)} draw(s):\n{differ}", code=1)
        typer.echo(f"counts equal those of {expect} for all {len(result.measurements)} draws")
