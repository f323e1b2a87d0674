"""The ``monitor`` command: the marker per lab, instrument and lot, and the model after go-live."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training.cli.app import DEFAULT_MODEL_URI, JsonOpt, fail, library_output, store_settings

#: Exit code when an alarm is raised (0: none; 2: the input cannot be used).
ALARM_EXIT = 4

_CohortOpt = Annotated[
    Path,
    typer.Option(
        help="patients table (CSV/Parquet), or a folder with patients.csv and "
        "oc_measurements.csv (the layout of bonemet simulate)"
    ),
]
_FileOpt = Annotated[Path | None, typer.Option()]


def _split(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def monitor(
    reference: Annotated[
        Path,
        typer.Option(
            "--reference",
            help="reference cohort: patients table or folder "
            "(the period the model and the labs were known good)",
        ),
    ],
    current: Annotated[
        Path,
        typer.Option(
            "--current", help="current cohort: patients table or folder (outcomes optional)"
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="output folder of monitor.json, report.html, figures/")
    ],
    reference_measurements: Annotated[
        Path | None,
        typer.Option(
            "--reference-measurements",
            help="oc_measurements of the reference (default: in its folder)",
        ),
    ] = None,
    current_measurements: Annotated[
        Path | None,
        typer.Option(
            "--current-measurements",
            help="oc_measurements of the current cohort (default: in its folder)",
        ),
    ] = None,
    qc: Annotated[
        Path | None, typer.Option("--qc", help="control-material results (docs/monitoring.md)")
    ] = None,
    by: Annotated[
        str,
        typer.Option(
            "--by",
            help="comma-separated columns grouping the draws, among "
            "site_id, lab_id, instrument_id, reagent_lot",
        ),
    ] = "lab_id,instrument_id,reagent_lot",
    model_uri: Annotated[
        str, typer.Option("--model-uri", help="MLflow model URI")
    ] = DEFAULT_MODEL_URI,
    no_model: Annotated[
        bool, typer.Option("--no-model", help="marker checks only: no predictions")
    ] = False,
    reference_predictions: Annotated[
        Path | None,
        typer.Option(
            "--reference-predictions",
            help="bonemet predict output of the reference, instead of --model-uri",
        ),
    ] = None,
    current_predictions: Annotated[
        Path | None,
        typer.Option(
            "--current-predictions",
            help="bonemet predict output of the current cohort, instead of --model-uri",
        ),
    ] = None,
    alpha: Annotated[
        float, typer.Option("--alpha", help="family-wise false-alarm rate of each check")
    ] = 0.01,
    marker_draws: Annotated[
        str, typer.Option("--marker-draws", help="enrollment (day 0) or all")
    ] = "enrollment",
    cusum_hazard_ratio: Annotated[
        float, typer.Option("--cusum-hazard-ratio", help="hazard ratio the CUSUM is tuned to")
    ] = 2.0,
    cusum_arl: Annotated[
        float,
        typer.Option(
            "--cusum-arl", help="in-control average run length, in expected bone metastases"
        ),
    ] = 1000.0,
    window_days: Annotated[
        float,
        typer.Option(
            "--window-days", min=30, help="width of the calibration windows (days of enrollment)"
        ),
    ] = 365.0,
    window_step_days: Annotated[
        float, typer.Option("--window-step-days", min=1, help="step between windows (days)")
    ] = 91.0,
    n_boot: Annotated[
        int,
        typer.Option(
            "--n-boot", min=20, max=2000, help="bootstrap resamples of each calibration window"
        ),
    ] = 100,
    experiment: Annotated[
        str, typer.Option("--experiment", help="MLflow experiment of the run")
    ] = "bone-metastasis-monitoring",
    seed: Annotated[int, typer.Option("--seed", help="seed of the bootstrap")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Watch the marker per lab, instrument and lot, and the model once it is live.

    Compares the current cohort with the reference: the marker's distribution, draws below the
    quantification limit and PBMC counts per group; with --qc, Westgard rules on control
    material; the predicted 24-month incidence per site and lab; with outcomes, observed/expected
    incidence, calibration in windows of enrollment date and a risk-adjusted CUSUM. Writes
    monitor.json, report.html and an MLflow run. Exits 4 when an alarm is raised, 0 otherwise,
    2 when the input cannot be used (nothing written).
    """
    import json

    from features.contract import ContractError, read_table
    from training.monitoring.inputs import (
        MonitorInputError,
        check_predictions,
        check_qc,
        cohort_files,
        load_monitor_cohort,
    )
    from training.monitoring.monitor import MonitorCohort, MonitorConfig
    from training.runs.monitor import model_predictions, run_monitor
    from training.scoring.predict import ScoringError

    if out.exists() and not out.is_dir():
        fail(f"cannot write the report: --out {out} is a file, not a folder")
    given = [reference_predictions is not None, current_predictions is not None]
    if any(given) and not all(given):
        fail("give both --reference-predictions and --current-predictions, or neither")
    try:
        config = MonitorConfig(
            by=_split(by),
            alpha=alpha,
            marker_draws=marker_draws,
            cusum_hazard_ratio=cusum_hazard_ratio,
            cusum_arl=cusum_arl,
            window_days=window_days,
            window_step_days=window_step_days,
            n_boot=n_boot,
            seed=seed,
        )
    except ValueError as err:
        fail(f"cannot monitor: {err}")
    problems = []
    loaded = {}
    for name, path, extra in (
        ("reference", reference, reference_measurements),
        ("current", current, current_measurements),
    ):
        try:
            loaded[name] = load_monitor_cohort(*cohort_files(path, extra))
        except (ContractError, MonitorInputError) as err:
            problems.append(f"--{name} {path}:\n{err}")
    qc_table = None
    if qc is not None:
        try:
            qc_table = check_qc(read_table(qc, table="qc"))
        except (ContractError, MonitorInputError) as err:
            problems.append(f"--qc {qc}:\n{err}")
    if problems:
        fail("\n".join(problems))
    predictions = [None, None]
    sources = {"reference": str(reference.resolve()), "current": str(current.resolve())}
    if qc is not None:
        sources["qc"] = str(qc.resolve())
    cohorts = [loaded["reference"][0], loaded["current"][0]]
    if all(given):
        for i, (name, path) in enumerate(
            (("reference", reference_predictions), ("current", current_predictions))
        ):
            try:
                frame = read_table(path, table=f"{name} predictions")
                p = cohorts[i].patients
                free = p["bone_metastasis_at_enrollment"].to_numpy(dtype=float) != 1.0
                predictions[i] = check_predictions(
                    frame, p["patient_id"], free, f"{name} predictions"
                )
            except (ContractError, MonitorInputError) as err:
                problems.append(f"--{name}-predictions {path}:\n{err}")
            sources[f"{name}_predictions"] = str(path.resolve())
        if problems:
            fail("\n".join(problems))
    elif not no_model:
        if model_uri.startswith(("models:/", "runs:/")):  # a path needs no store
            from training.store import backend as tracking

            tracking.configure(store_settings())
        try:
            with library_output():
                predictions, _ = model_predictions(model_uri, cohorts)
        except ScoringError as err:
            fail(
                f"cannot monitor: {err}\n(give --reference-predictions and --current-predictions, "
                "or --no-model for the marker checks only)"
            )
        sources["model_uri"] = model_uri
    ref = MonitorCohort(cohorts[0], loaded["reference"][1], predictions[0])
    cur = MonitorCohort(cohorts[1], loaded["current"][1], predictions[1])
    with library_output():
        done = run_monitor(ref, cur, qc_table, config, out, store_settings(), experiment, sources)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "run_id": done.run_id,
                    "alarm": bool(done.alarms),
                    "alarms": done.alarms,
                    "not_computed": done.not_computed,
                    "report": str(done.paths["report"]),
                    "numbers": str(done.paths["numbers"]),
                },
                indent=2,
            )
        )
    else:
        typer.echo(f"report: {done.paths['report']}")
        typer.echo(f"numbers: {done.paths['numbers']}")
        typer.echo(f"mlflow run: {done.run_id}")
        for what, why in done.not_computed.items():
            typer.echo(f"not computed: {what}: {why}")
        if done.alarms:
            typer.echo(f"{len(done.alarms)} ALARM(S):")
            for alarm in done.alarms:
                typer.echo(f"  {alarm['message']}")
        else:
            typer.echo("no alarm")
    if done.alarms:
        raise typer.Exit(ALARM_EXIT)
