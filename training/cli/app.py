"""The ``bonemet`` Typer application: its callback, shared options and helpers of commands."""

from __future__ import annotations

import contextlib
import os
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
PatientsOpt = Annotated[Path, typer.Option("--patients", help="patients table (CSV or Parquet)")]
MeasurementsOpt = Annotated[
    Path | None, typer.Option("--measurements", help="oc_measurements table (CSV or Parquet)")
]
ModelUriOpt = Annotated[str, typer.Option("--model-uri", help="MLflow model URI")]


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
def library_output():
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


def fail(message: str, code: int = 2) -> None:
    """Print ``message`` on stderr and exit with ``code`` (2: the input cannot be used)."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def load(patients: Path, measurements: Path | None):
    """The validated cohort of the two tables, or exit 2 listing every contract violation."""
    from features.contract import ContractError, load_cohort

    try:
        return load_cohort(patients, measurements)
    except ContractError as err:
        fail(str(err))


def store_settings():
    """The MLflow store of this process (:meth:`training.config.Settings.from_env`)."""
    from training.config import Settings

    return Settings.from_env()
