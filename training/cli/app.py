"""The ``bonemet`` Typer application: its callback, shared options and helpers of commands."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer

from features.vocabulary import MODEL_NAME


def store_failure(err: BaseException) -> str | None:
    """One line for a failure of the MLflow store or tracking server that no command turned
    into its own message (credentials rejected, permission denied, server unreachable or
    failing), or None for anything else (a bug: its traceback is kept)."""
    import sys

    from_mlflow = type(err).__module__.split(".")[0] == "mlflow"
    from_bonemet = type(err).__name__ == "AuthenticationFailed"
    if not (from_mlflow or from_bonemet) or "mlflow" not in sys.modules:
        return None
    import mlflow
    from mlflow.exceptions import MlflowException

    from training.registry.versions import (
        AuthenticationFailed,
        authentication_failed,
        authentication_message,
        permission_denied,
    )

    if isinstance(err, AuthenticationFailed):
        return str(err)
    if not isinstance(err, MlflowException):
        return None
    if authentication_failed(err):
        return authentication_message()
    first = " ".join(str(err.message).split())[:300]
    if permission_denied(err):
        return f"permission denied by the tracking server {mlflow.get_tracking_uri()}: {first}"
    return f"the MLflow store {mlflow.get_tracking_uri()} failed: {first}"


class _Bonemet(typer.Typer):
    """The application: a store failure a command did not handle ends in one line and exit 2
    (``--verbose`` keeps the traceback), never in a library's traceback."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except Exception as err:
            message = None if _STATE["verbose"] else store_failure(err)
            if message is None:
                raise
            typer.echo(message, err=True)
            raise SystemExit(2) from None


app = _Bonemet(
    name="bonemet",
    help="Bone metastasis risk: validate cohorts, simulate, train, register, predict, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_MODEL_URI = f"models:/{MODEL_NAME}@champion"
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
