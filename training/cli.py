"""The ``bonemet`` command line: thin commands over library functions."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="bonemet",
    help="Bone metastasis risk: validate cohorts, simulate, train, register, predict, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_MODEL_URI = "models:/bone-metastasis-risk@champion"
JsonOpt = Annotated[
    bool, typer.Option("--json", help="print one JSON document for machines instead of tables")
]


def _version_callback(value: bool) -> None:
    if value:
        from importlib import metadata

        typer.echo(f"bonemet {metadata.version('bonemet')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="print the version"
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", help="keep MLflow's event log and third-party warnings in the output"
        ),
    ] = False,
) -> None:
    """Bone metastasis risk: validate cohorts, simulate, train, register, predict, serve."""
    _STATE["verbose"] = verbose
    if not verbose:
        _quiet()


_STATE = {"verbose": False}


@contextlib.contextmanager
def _library_output():
    """Drop what libraries print while the block runs, unless ``--verbose``.

    MLflow prints its event log ("Created version ...", "Validating input example ...") to
    ``sys.stderr`` and re-enables it after some of its own calls, and, against a tracking
    server, "View run ... at: URL" to ``sys.stdout`` when a run ends (which would break
    ``--json``); errors still surface as exceptions, which the commands turn into messages.
    Progress bars hold the real stream.
    """
    if _STATE["verbose"]:
        yield
        return
    with (
        open(os.devnull, "w") as sink,
        contextlib.redirect_stderr(sink),
        contextlib.redirect_stdout(sink),
    ):
        yield


def _quiet() -> None:
    """No third-party noise in normal output: MLflow's event log and library warnings off.

    ``PYTHONWARNINGS`` carries the filter into worker processes (parallel families); the
    project's own warnings stay visible.
    """
    import warnings

    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    warnings.filterwarnings("ignore")
    for package in ("training", "features", "serving"):
        warnings.filterwarnings("default", module=rf"{package}(\.|$)")
    try:
        from mlflow.utils.logging_utils import disable_logging
    except ImportError:  # pragma: no cover - mlflow is a dependency
        return
    disable_logging()


def _console():
    import shutil

    from rich.console import Console

    # Fit the terminal; a pipe or a test gets $COLUMNS or 100 columns.
    return Console(width=shutil.get_terminal_size((100, 24)).columns, soft_wrap=False)


def _table(frame, title: str | None = None) -> None:
    """Print a frame as a table that fits the terminal's width (cells wrap)."""
    import pandas as pd
    from rich import box
    from rich.table import Table

    cells = frame.map(
        lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
    )
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for column in cells.columns:
        # Short single-line columns (names, versions) never wrap; the others may.
        values = cells[column].tolist()
        short = max((len(v) for v in values), default=0) <= 20 and not any(
            "\n" in v for v in values
        )
        table.add_column(str(column), overflow="fold", no_wrap=short)
    for row in cells.itertuples(index=False):
        table.add_row(*row)
    _console().print(table)


PatientsOpt = Annotated[Path, typer.Option("--patients", help="patients table (CSV or Parquet)")]
MeasurementsOpt = Annotated[
    Path | None, typer.Option("--measurements", help="oc_measurements table (CSV or Parquet)")
]


def _family_names() -> str:
    from training.config import FAMILY_NAMES, OPTIONAL_FAMILIES  # names only (no estimators)

    return ", ".join(FAMILY_NAMES) + f" (default: all but {', '.join(OPTIONAL_FAMILIES)})"


_FAMILY_NAMES = _family_names()


def _fail(message: str, code: int = 2) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _load(patients: Path, measurements: Path | None):
    from features.contract import ContractError, load_cohort

    try:
        return load_cohort(patients, measurements)
    except ContractError as err:
        _fail(str(err))


class _Bars:
    """Progress bar on stderr for ``train`` (one step per fitted model)."""

    def __enter__(self) -> _Bars:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),  # the real stream, outside _library_output
            transient=False,
        )
        self._progress.__enter__()
        self._task = None
        return self

    def start(self, total: int, description: str) -> None:
        self._task = self._progress.add_task(description, total=total)

    def advance(self, description: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, advance=1, description=description[:60])

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)


def _with_interval(metrics: dict, name: str) -> str:
    lo, hi = metrics.get(name + "_lo"), metrics.get(name + "_hi")
    text = f"{metrics[name]:.3f}"
    return text + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else "")


def evaluation_by_landmark(metrics: dict):
    """One row per landmark of ``eval_landmark_<day>_*`` metrics (a frame)."""
    import re

    import pandas as pd

    rows: dict[float, dict] = {}
    for key, value in metrics.items():
        found = re.fullmatch(r"eval_landmark_([0-9.]+)_(.+)", key)
        if found:
            day = float(found.group(1))
            rows.setdefault(day, {"landmark_day": f"{day:g}"})[found.group(2)] = (
                f"{value:g}" if found.group(2) in ("n", "bone_met_events") else f"{value:.3f}"
            )
    columns = ["landmark_day", "n", "bone_met_events", "harrell_c", "uno_c", "td_auc_24m"]
    columns += ["brier_24m", "calibration_slope_24m"]
    frame = pd.DataFrame([rows[d] for d in sorted(rows)])
    return frame[[c for c in columns if c in frame.columns]]


def _settings():
    from training.config import Settings

    return Settings.from_env()


@app.command()
def validate(patients: PatientsOpt, measurements: MeasurementsOpt = None) -> None:
    """Check a cohort against data contract v1; list every violation, exit 2 if any."""
    cohort = _load(patients, measurements)
    n_meas = 0 if cohort.measurements is None else len(cohort.measurements)
    kind = "training/evaluation" if cohort.has_outcome else "scoring"
    typer.echo(
        f"valid: {len(cohort.patients)} patients, {n_meas} measurements ({kind} cohort, "
        "contract v1)"
    )


@app.command()
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
) -> None:
    """Write a synthetic cohort (patients.csv, oc_measurements.csv) and its truth file."""
    from features.simulate import simulate_cohort, write_cohort
    from features.worlds import get_world

    try:
        get_world(world)
    except ValueError as err:
        _fail(str(err))
    cohort = simulate_cohort(n_patients, seed, world=world)
    paths = write_cohort(cohort, out)
    if fcs:
        from features.cytometry.simulate_fcs import write_fcs_draws

        paths.update(write_fcs_draws(cohort.measurements, out / "fcs", fcs, seed))
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


@app.command()
def train(
    patients: PatientsOpt,
    measurements: MeasurementsOpt = None,
    experiment: Annotated[
        str | None,
        typer.Option("--experiment", help="MLflow experiment (default: bone-metastasis)"),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML training config: fields of training.config.TrainConfig (default: none)",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="overrides the config seed (default: 42)")
    ] = None,
    families: Annotated[
        str | None,
        typer.Option("--families", help=f"comma-separated model families: {_FAMILY_NAMES}"),
    ] = None,
    landmarks: Annotated[
        str | None,
        typer.Option(
            "--landmarks",
            help="comma-separated landmark days starting with 0 (e.g. 0,91,183,365): train "
            "landmark models that predict from any prediction_day with the draws known by "
            "then (default: none: models predict from enrollment)",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train every family, log to MLflow, register versions, set the challenger alias.

    Ends with a table of the candidates (selection metric, headline metrics with 95 %
    intervals, promotion-gate verdicts, the challenger) and the next command to run.
    """
    from training.config import ConfigError, load_config
    from training.fitting.train import TrainingDataError, candidate_table, summary_json
    from training.fitting.train import train as run_train
    from training.tracking.registry import RegistryError

    cohort = _load(patients, measurements)
    try:
        cfg = load_config(
            config, experiment=experiment, seed=seed, families=families, landmark_days=landmarks
        )
        with _Bars() as bars, _library_output():
            result = run_train(
                cohort, cfg, _settings(), source=str(Path(patients).resolve()), progress=bars
            )
    except (ConfigError, TrainingDataError, RegistryError) as err:
        _fail(f"cannot train: {err}")
    if as_json:
        typer.echo(summary_json(result))
        return
    patients_text = f"{result.n_train_patients} training and {result.n_test_patients} test patients"
    if result.landmark_days:
        patients_text += f" ({result.n_train} and {result.n_test} landmark rows)"
    typer.echo(f"trained on {patients_text}; parent run {result.parent_run_id}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    for skipped in result.skipped:
        typer.echo(f"skipped {skipped.family}: {skipped.reason}")
    candidates = candidate_table(result)
    challenger = candidates.loc[candidates["version"] == result.challenger_version].iloc[0]
    candidates["family"] = candidates.pop("").str.cat(candidates["family"], sep="\n").str.strip()
    _print_transposed(
        candidates, "family", title=f"candidates (selected by {result.selection_metric})"
    )
    version = result.challenger_version
    if challenger["gates"] == "pass":
        typer.echo(
            f"next: bonemet promote   (champion -> the challenger, version {version}; "
            "then: bonemet serve)"
        )
    else:
        failed = challenger["gates"].removeprefix("FAIL:").replace("\n", " ").strip()
        typer.echo(
            f"next: bonemet compare   (the challenger, version {version}, fails the gate(s) "
            f"{failed}: bonemet promote refuses it; bonemet promote --force --reason '...' "
            "records an override)"
        )


@app.command()
def evaluate(
    patients: PatientsOpt,
    measurements: MeasurementsOpt = None,
    model_uri: Annotated[str, typer.Option("--model-uri", help="MLflow model URI")] = (
        DEFAULT_MODEL_URI
    ),
    experiment: Annotated[
        str, typer.Option("--experiment", help="MLflow experiment of the evaluation run")
    ] = "bone-metastasis-evaluation",
    n_bootstrap: Annotated[
        int, typer.Option("--n-bootstrap", min=0, max=5000, help="bootstrap resamples (0-5000)")
    ] = 200,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a registered model on a cohort with outcomes (external validation).

    Works for every registered model; a landmark model is evaluated on the cohort's landmark
    rows and at each landmark on its own.
    """
    import json

    from training.fitting.train import TrainingDataError, evaluate_model
    from training.scoring.predict import ScoringError

    cohort = _load(patients, measurements)
    try:
        with _library_output():
            result = evaluate_model(
                cohort,
                model_uri,
                _settings(),
                experiment=experiment,
                source=str(Path(patients).resolve()),
                n_bootstrap=n_bootstrap,
            )
    except (ScoringError, TrainingDataError) as err:
        _fail(f"cannot evaluate: {err}")
    headline = {
        k: round(v, 4)
        for k, v in result.metrics.items()
        if k
        in (
            "eval_harrell_c",
            "eval_uno_c",
            "eval_td_auc_24m",
            "eval_brier_24m",
            "eval_calibration_slope_24m",
            "eval_calibration_in_the_large_24m",
        )
    }
    landmarks = {
        k: round(v, 4) for k, v in result.metrics.items() if k.startswith("eval_landmark_")
    }
    if as_json:
        document = {"run_id": result.run_id, "model_uri": result.model_uri}
        document.update(version=result.version, **headline, **landmarks)
        typer.echo(json.dumps(document, indent=2))
        return
    import pandas as pd

    typer.echo(
        f"evaluated {result.model_uri} (version {result.version or 'n/a'}); run {result.run_id}"
    )
    _table(
        pd.DataFrame(
            [
                {"metric": k.removeprefix("eval_"), "estimate": _with_interval(result.metrics, k)}
                for k in headline
            ]
        ),
        title="pooled" if landmarks else None,
    )
    if landmarks:
        _table(evaluation_by_landmark(result.metrics), title="at each landmark")


@app.command()
def promote(
    version: Annotated[str | None, typer.Option("--version", help="version to promote")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="promote even if a gate fails (needs --reason)")
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="why (recorded on the version; required with --force)"),
    ] = None,
) -> None:
    """Move the champion alias (default: to the challenger) if the promotion gates pass."""
    from training.tracking import gates, registry
    from training.tracking import store as tracking

    tracking.configure(_settings())
    try:
        with _library_output():
            done = gates.promote(version, force=force, reason=reason)
    except registry.RegistryError as err:
        _fail(f"cannot promote: {err}")
    for gate in done.gates:
        typer.echo(f"gate {gate.name}: {'pass' if gate.passed else 'FAIL'} ({gate.detail})")
    if done.forced_reason:
        typer.echo(f"forced: {done.forced_reason}")
    typer.echo(
        f"champion: version {done.version} (was {done.previous or 'none'}) of bone-metastasis-risk"
    )


@app.command()
def compare(
    versions: Annotated[
        str | None,
        typer.Option("--versions", help="comma-separated versions (default: all)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print registered versions side by side, flagging metrics outside the promotion gates,
    and the latest training runs (finished, running, or killed).

    Columns: version, family, alias, data digest, state (complete or not), the selection
    metric, gate verdicts and headline metrics with 95 % intervals; the table fits the
    terminal's width.
    """
    from training.tracking import registry
    from training.tracking import store as tracking
    from training.tracking.compare import compare as compare_versions
    from training.tracking.compare import comparison_rows_text

    tracking.configure(_settings())
    with _library_output():
        tracking.reap_stale_runs()
    wanted = [v.strip() for v in versions.split(",") if v.strip()] if versions else None
    try:
        with _library_output():
            table = comparison_rows_text(compare_versions(wanted))
    except registry.RegistryError as err:
        _fail(f"cannot compare: {err}")
    if table.empty:
        _fail("no versions registered yet: run bonemet train first")
    history = registry.training_history()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "versions": json.loads(table.to_json(orient="records")),
                    "training_runs": json.loads(history.to_json(orient="records")),
                },
                indent=2,
            )
        )
        return
    _print_comparison(table)
    _console().print(
        "gates: promotion gates against the champion; ! = metric outside its gate "
        "(bonemet promote --help)",
        markup=False,
    )
    if not history.empty:
        _table(history, title="training runs (newest first)")


def _print_comparison(table) -> None:
    """The comparison for a terminal: one column per version (metrics as rows, intervals
    under their estimates), in as many blocks of versions as the width needs."""
    table = table.copy()
    table["data_digest"] = table["data_digest"].str[:8]
    metric, _, value = (table["selection"].str.partition("=")[i] for i in (0, 1, 2))
    table["selection"] = [f"{v}\n({m})" if v else m for m, v in zip(metric, value, strict=True)]
    table["gates"] = table["gates"].str.replace("FAIL ", "FAIL:\n").str.replace(",", "\n")
    table = table.map(lambda v: v.replace(" [", "\n[") if isinstance(v, str) else v)
    table.columns = [str(c).removeprefix("test_").replace("_", " ") for c in table.columns]
    _print_transposed(table, "version")


def _print_transposed(frame, key: str, title: str | None = None) -> None:
    """One column per row of ``frame`` (headed by its ``key``), in blocks that fit the width."""
    import pandas as pd

    rows = frame.set_index(key).T
    per_block = max(1, (_console().width - 30) // 18)
    for start in range(0, rows.shape[1], per_block):
        block = rows.iloc[:, start : start + per_block]
        label = pd.Series(block.index, index=block.index, name=key)
        _table(pd.concat([label, block], axis=1), title=title if start == 0 else None)


@app.command()
def predict(
    patients: PatientsOpt,
    out: Annotated[Path, typer.Option("--out", help="output CSV (a Parquet folder with spark)")],
    measurements: MeasurementsOpt = None,
    model_uri: Annotated[str, typer.Option("--model-uri", help="MLflow model URI")] = (
        DEFAULT_MODEL_URI
    ),
    prediction_day: Annotated[
        float | None,
        typer.Option(
            "--prediction-day",
            min=0,
            help="score every patient at this day since enrollment with the draws known by "
            "then (--measurements), the rule of POST /predict (default: at enrollment)",
        ),
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="local (pandas) or spark (mlflow spark_udf)")
    ] = "local",
    spark_master: Annotated[
        str, typer.Option("--spark-master", help="Spark master URL (with --engine spark)")
    ] = "local[*]",
) -> None:
    """Score a cohort with a registered model and write one row per patient.

    Works for every registered model, landmark models included.
    """
    from training.scoring.predict import ScoringError, score_cohort
    from training.tracking import store as tracking

    if engine not in ("local", "spark"):
        _fail(f"cannot predict: --engine must be local or spark, got {engine!r}")
    if engine == "spark" and prediction_day is not None:
        # The pyfunc takes contract patients rows only, not the draws a later day needs.
        _fail(
            "cannot predict: --prediction-day is not available with --engine spark yet "
            "(the Spark engine scores at enrollment); use the local engine"
        )
    cohort = _load(patients, measurements)
    tracking.configure(_settings())
    if engine == "spark":
        from training.scoring.spark import score_cohort_spark

        try:
            n = score_cohort_spark(cohort, model_uri, out, master=spark_master)
        except ScoringError as err:
            _fail(f"cannot predict: {err}")
        typer.echo(f"wrote {n} predictions to {out} (Parquet folder, Spark {spark_master})")
        return
    try:
        with _library_output():
            frame = score_cohort(cohort, model_uri, prediction_day)
    except ScoringError as err:
        _fail(f"cannot predict: {err}")
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    typer.echo(f"wrote {len(frame)} predictions to {out}")


@app.command()
def serve(
    model_uri: Annotated[str, typer.Option("--model-uri", help="MLflow model URI")] = (
        DEFAULT_MODEL_URI
    ),
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="port (1-65535)")] = 3000,
    host: Annotated[str, typer.Option("--host", help="address to bind")] = "127.0.0.1",
) -> None:
    """Serve a registered model with BentoML on HTTP.

    \b
    Endpoints:
      POST /predict   predictions for contract patient records (data contract v1)
      POST /explain   predictions with each patient's largest contributions
      GET  /model     the model answering: version, family, metrics, inputs, landmarks
      GET  /healthz   health (BentoML)
      GET  /livez     liveness (BentoML)
      GET  /readyz    readiness: a model is loaded (BentoML)
      GET  /metrics   Prometheus metrics (BentoML)
      GET  /docs      OpenAPI documentation (Swagger UI)
    """
    from training.tracking import store as tracking
    from training.tracking.bento import BentoImportError, import_for_serving

    settings = _settings()
    tracking.configure(settings)
    try:
        info = import_for_serving(model_uri, settings)
    except BentoImportError as err:
        _fail(f"cannot serve: {err}")
    env = dict(os.environ)
    env.update(info.environment())
    typer.echo(
        f"serving {info.resolved.name} version {info.resolved.version} "
        f"({model_uri}) at http://{host}:{port}/predict",
        err=True,
    )
    cmd = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:BoneMetastasisService",
        "--host",
        host,
        "--port",
        str(port),
    ]
    raise typer.Exit(subprocess.call(cmd, env=env))


@app.command()
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
    from training.study.report import StudyConfig, run_study

    if out.exists() and not out.is_dir():
        _fail(f"cannot write the report: --out {out} is a file, not a folder")
    cohort = _load(patients, measurements)
    config = StudyConfig(seed=seed, n_boot=n_boot, n_perm=n_perm, experiment=experiment)
    result = run_study(cohort, out, _settings(), config, source=str(Path(patients).resolve()))
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


@app.command()
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
) -> None:
    """Gate FCS files with a GatingML 2.0 strategy (FlowKit) into the oc_measurements table."""
    from features.contract import ContractError, check_measurements, read_table
    from features.cytometry import CytometryError, compare_counts, gate_batch, write_result
    from training.tracking.cytometry_run import log_cytometry_run

    if out.is_dir():
        _fail(f"cannot write the table: --out {out} is a folder")
    try:
        result = gate_batch(
            manifest,
            gating,
            pbmc_gate,
            oc_gate,
            min_pbmc_events=min_pbmc_events,
            workers=workers,
        )
    except CytometryError as err:
        _fail(str(err))
    paths = write_result(result, out)
    run_id = log_cytometry_run(result, paths, _settings(), experiment, qc_figures)
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
            _fail(str(err))
        if violations:
            _fail("\n".join(str(v) for v in violations))
        differ = compare_counts(result.measurements, expected)
        if len(differ):
            _fail(f"counts differ from {expect} for {len(differ)} draw(s):\n{differ}", code=1)
        typer.echo(f"counts equal those of {expect} for all {len(result.measurements)} draws")


@app.command("tracking-server")
def tracking_server(
    backend_store_uri: Annotated[
        str,
        typer.Option(
            "--backend-store-uri",
            help="runs and registry database, e.g. postgresql://user:password@host:5432/mlflow",
        ),
    ],
    artifacts_destination: Annotated[
        str | None,
        typer.Option(
            "--artifacts-destination",
            help="folder or object-store URI of the artifacts the server serves "
            "(default: <data dir>/server-artifacts)",
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 5000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=16)] = 1,
    auth: Annotated[
        bool, typer.Option("--auth", help="MLflow basic-auth: users and permissions")
    ] = False,
    auth_db_uri: Annotated[
        str | None,
        typer.Option("--auth-db-uri", help="database of users and permissions (with --auth)"),
    ] = None,
) -> None:
    """Start an MLflow tracking server for a team (PostgreSQL store, served artifacts)."""
    from training.tracking.server import ServerConfigError, tracking_server_command

    settings = _settings()
    destination = artifacts_destination or str(settings.data_dir / "server-artifacts")
    try:
        cmd, extra = tracking_server_command(
            backend_store_uri,
            destination,
            host=host,
            port=port,
            workers=workers,
            auth=auth,
            auth_db_uri=auth_db_uri,
            state_dir=settings.data_dir / "server-auth",
        )
    except ServerConfigError as err:
        _fail(f"cannot start the tracking server: {err}")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo(f"MLFLOW_TRACKING_URI=http://{shown}:{port}")
    if auth:
        typer.echo("# and MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD per user")
    sys.stdout.flush()
    # The server replaces this process: a signal to it (Ctrl-C, a service manager) stops it.
    os.execve(cmd[0], cmd, {**os.environ, **extra})


@app.command("ui-command")
def ui_command() -> None:
    """Print the command that opens the MLflow UI on this project's store."""
    from training.tracking.server import mlflow_ui_command

    typer.echo(mlflow_ui_command(_settings()))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
