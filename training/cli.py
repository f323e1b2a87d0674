"""The ``bonemet`` command line: thin commands over library functions."""

from __future__ import annotations

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
PatientsOpt = Annotated[Path, typer.Option("--patients", help="patients table (CSV or Parquet)")]
MeasurementsOpt = Annotated[
    Path | None, typer.Option("--measurements", help="oc_measurements table (CSV or Parquet)")
]


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
            console=Console(stderr=True),
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
) -> None:
    """Write a synthetic cohort (patients.csv, oc_measurements.csv) and its truth file."""
    from features.simulate import simulate_cohort, write_cohort

    paths = write_cohort(simulate_cohort(n_patients, seed), out)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


@app.command()
def train(
    patients: PatientsOpt,
    measurements: MeasurementsOpt = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="MLflow experiment")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML training config")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="overrides the config seed")] = None,
    families: Annotated[
        str | None, typer.Option("--families", help="comma-separated model families")
    ] = None,
    landmarks: Annotated[
        str | None,
        typer.Option(
            "--landmarks",
            help="comma-separated landmark days starting with 0 (e.g. 0,91,183,365): train "
            "landmark models that predict from any prediction_day with the draws known by then",
        ),
    ] = None,
) -> None:
    """Train every family, log to MLflow, register versions, set the challenger alias."""
    from training.config import ConfigError, load_config
    from training.registry import RegistryError
    from training.train import TrainingDataError, summary_json
    from training.train import train as run_train

    cohort = _load(patients, measurements)
    try:
        cfg = load_config(
            config, experiment=experiment, seed=seed, families=families, landmark_days=landmarks
        )
        with _Bars() as bars:
            result = run_train(
                cohort, cfg, _settings(), source=str(Path(patients).resolve()), progress=bars
            )
    except (ConfigError, TrainingDataError, RegistryError) as err:
        _fail(f"cannot train: {err}")
    typer.echo(summary_json(result))


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
    n_bootstrap: Annotated[int, typer.Option("--n-bootstrap", min=0, max=5000)] = 200,
) -> None:
    """Evaluate a registered model on a cohort with outcomes (external validation)."""
    import json

    from training.predict import ScoringError
    from training.train import TrainingDataError, evaluate_model

    cohort = _load(patients, measurements)
    try:
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
    typer.echo(
        json.dumps(
            {
                "run_id": result.run_id,
                "model_uri": result.model_uri,
                "version": result.version,
                **headline,
            },
            indent=2,
        )
    )


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
    from training import registry, tracking

    tracking.configure(_settings())
    try:
        done = registry.promote(version, force=force, reason=reason)
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
        str | None, typer.Option("--versions", help="comma-separated versions (default: all)")
    ] = None,
) -> None:
    """Print registered versions side by side (metrics with intervals, data digest, alias,
    complete or not) and the latest training runs (finished, running, or killed)."""
    from training import registry, tracking

    tracking.configure(_settings())
    tracking.reap_stale_runs()
    wanted = [v.strip() for v in versions.split(",") if v.strip()] if versions else None
    try:
        table = registry.compare(wanted)
    except registry.RegistryError as err:
        _fail(f"cannot compare: {err}")
    if table.empty:
        _fail("no versions registered yet: run bonemet train first")
    typer.echo(table.to_string(index=False))
    history = registry.training_history()
    if not history.empty:
        typer.echo("\ntraining runs (newest first):")
        typer.echo(history.to_string(index=False))


@app.command()
def predict(
    patients: PatientsOpt,
    out: Annotated[Path, typer.Option("--out", help="output CSV (a Parquet folder with spark)")],
    measurements: MeasurementsOpt = None,
    model_uri: Annotated[str, typer.Option("--model-uri", help="MLflow model URI")] = (
        DEFAULT_MODEL_URI
    ),
    engine: Annotated[
        str, typer.Option("--engine", help="local (pandas) or spark (mlflow spark_udf)")
    ] = "local",
    spark_master: Annotated[
        str, typer.Option("--spark-master", help="Spark master URL (with --engine spark)")
    ] = "local[*]",
) -> None:
    """Score a cohort with a registered model and write one row per patient."""
    from training import tracking
    from training.predict import ScoringError, score_cohort

    if engine not in ("local", "spark"):
        _fail(f"cannot predict: --engine must be local or spark, got {engine!r}")
    cohort = _load(patients, measurements)
    tracking.configure(_settings())
    if engine == "spark":
        from training.spark_predict import score_cohort_spark

        try:
            n = score_cohort_spark(cohort, model_uri, out, master=spark_master)
        except ScoringError as err:
            _fail(f"cannot predict: {err}")
        typer.echo(f"wrote {n} predictions to {out} (Parquet folder, Spark {spark_master})")
        return
    try:
        frame = score_cohort(cohort, model_uri)
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
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 3000,
    host: Annotated[str, typer.Option("--host", help="address to bind")] = "127.0.0.1",
) -> None:
    """Serve a registered model with BentoML (POST /predict, /healthz, /readyz)."""
    from training import tracking
    from training.bento import BentoImportError, import_for_serving

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
    from training.study_report import StudyConfig, run_study

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
    from training.tracking import ServerConfigError, tracking_server_command

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
    from training.tracking import mlflow_ui_command

    typer.echo(mlflow_ui_command(_settings()))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
