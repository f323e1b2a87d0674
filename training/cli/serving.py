"""Commands that use a registered model: batch predictions and the HTTP service."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from features.vocabulary import ENV_WORKERS, MAX_WORKERS
from training.cli.app import (
    DEFAULT_MODEL_URI,
    MeasurementsOpt,
    ModelUriOpt,
    PatientsOpt,
    fail,
    library_output,
    load,
    store_settings,
)


def predict(
    patients: PatientsOpt,
    out: Annotated[Path, typer.Option("--out", help="output CSV (a Parquet folder with spark)")],
    measurements: MeasurementsOpt = None,
    model_uri: ModelUriOpt = DEFAULT_MODEL_URI,
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
    chunk_size: Annotated[
        int,
        typer.Option(
            "--chunk-size",
            min=1,
            help="patients read, checked and scored at a time by the local engine (memory "
            "holds one chunk)",
        ),
    ] = 50_000,
) -> None:
    """Score a cohort with a registered model and write one row per patient.

    Works for every registered model, landmark models included. The local engine reads the
    patients in chunks and writes the output only when every chunk is valid and scored.
    """
    from training.scoring.predict import ScoringError
    from training.store import backend as tracking

    if engine not in ("local", "spark"):
        fail(f"cannot predict: --engine must be local or spark, got {engine!r}")
    if engine == "local":
        _predict_local(patients, measurements, model_uri, out, prediction_day, chunk_size)
        return
    from training.scoring.spark import score_cohort_spark

    cohort = load(patients, measurements)
    tracking.configure(store_settings())
    try:
        n = score_cohort_spark(
            cohort, model_uri, out, master=spark_master, prediction_day=prediction_day
        )
    except ScoringError as err:
        fail(f"cannot predict: {err}")
    typer.echo(f"wrote {n} predictions to {out} (Parquet folder, Spark {spark_master})")


def _predict_local(
    patients: Path,
    measurements: Path | None,
    model_uri: str,
    out: Path,
    prediction_day: float | None,
    chunk_size: int,
) -> None:
    from features.contract import ContractError
    from training.scoring.chunked import score_files
    from training.scoring.predict import ScoringError
    from training.store import backend as tracking

    def configure() -> None:
        tracking.configure(store_settings())

    try:
        with library_output():
            n = score_files(
                patients,
                measurements,
                model_uri,
                out,
                prediction_day=prediction_day,
                chunk_size=chunk_size,
                before_loading=configure,
            )
    except ContractError as err:
        fail(str(err))
    except ScoringError as err:
        fail(f"cannot predict: {err}")
    typer.echo(f"wrote {n} predictions to {out}")


def serve(
    model_uri: ModelUriOpt = DEFAULT_MODEL_URI,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="port (1-65535)")] = 3000,
    host: Annotated[str, typer.Option("--host", help="address to bind")] = "127.0.0.1",
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            envvar=ENV_WORKERS,
            min=1,
            max=MAX_WORKERS,
            help=f"worker processes (1-{MAX_WORKERS}), each with the model loaded; a second one "
            "pays off only with a core to spare (docs/serving.md)",
        ),
    ] = 1,
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
      GET  /model/card  the served version's model card
      GET  /clinician the clinician's risk page
      GET  /          the API page (Swagger UI); GET /docs.json the OpenAPI document

    With BONEMET_API_TOKEN set, every route but health, readiness, the API page and the
    clinician page needs Authorization: Bearer <token> (default: no token, all open).
    """
    from training.registry.bento import BentoImportError, import_for_serving, smoke_load
    from training.store import backend as tracking

    settings = store_settings()
    tracking.configure(settings)
    try:
        with library_output():
            info = import_for_serving(model_uri, settings)
            smoke_load(info)  # a damaged model: one line and exit 2, not a crash loop
    except BentoImportError as err:
        fail(f"cannot serve: {err}")
    env = dict(os.environ)
    env.update(info.environment(workers))
    typer.echo(
        f"serving {info.resolved.name} version {info.resolved.version} "
        f"({model_uri}) at http://{host}:{port}/predict with {workers} "
        f"worker{'s' if workers > 1 else ''}",
        err=True,
    )
    metrics_dir = _metrics_folder(info.bentoml_home)
    cmd = [sys.executable, "-c", _LAUNCH, str(metrics_dir)]
    cmd += ["serve", "serving.service:BoneMetastasisService", "--host", host, "--port", str(port)]
    try:
        code = subprocess.call(cmd, env=env)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    raise typer.Exit(code)


#: ``python -m bentoml`` with BentoML's Prometheus multiprocess folder set to ``argv[1]``.
#: BentoML derives that folder from ``BENTOML_HOME`` and empties it when a server starts: two
#: servers sharing a model store would delete each other's metrics files (the first one's
#: ``/metrics`` then reads 0). Each ``bonemet serve`` gets a folder of its own.
_LAUNCH = (
    "import sys\n"
    "from bentoml._internal.configuration.containers import BentoMLContainer\n"
    "BentoMLContainer.prometheus_multiproc_dir.set(sys.argv.pop(1))\n"
    "from bentoml_cli.cli import cli\n"
    "sys.argv[0] = 'bentoml'\n"
    "cli()\n"
)


def _metrics_folder(home: Path) -> Path:
    """A Prometheus multiprocess folder for this server, removing those of exited servers.

    ``<BENTOML_HOME>/prometheus/<pid>``: the folder of a server killed without cleaning up is
    removed by the next ``bonemet serve`` once no process has that id.
    """
    root = home / "prometheus"
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        if old.name.isdigit() and not _alive(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    mine = root / str(os.getpid())
    shutil.rmtree(mine, ignore_errors=True)
    mine.mkdir()
    return mine


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
