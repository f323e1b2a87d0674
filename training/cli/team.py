"""Commands for a team: its MLflow tracking server, and the MLflow UI on this store."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from training.cli.app import fail, store_settings


def tracking_server(
    backend_store_uri: Annotated[
        str,
        typer.Option(
            "--backend-store-uri",
            envvar="BONEMET_BACKEND_STORE_URI",
            help="runs and registry database, e.g. postgresql://user@host:5432/mlflow (the "
            "password from PGPASSWORD or ~/.pgpass; one given in the URI is moved to a 0600 "
            "pgpass file, never to the server's command line)",
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
        typer.Option(
            "--auth-db-uri",
            envvar="BONEMET_AUTH_DB_URI",
            help="database of users and permissions (with --auth)",
        ),
    ] = None,
) -> None:
    """Start an MLflow tracking server for a team (PostgreSQL store, served artifacts)."""
    from training.store.server import ServerConfigError, tracking_server_command

    settings = store_settings()
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
        fail(f"cannot start the tracking server: {err}")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo(f"MLFLOW_TRACKING_URI=http://{shown}:{port}")
    if auth:
        typer.echo("# and MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD per user")
    sys.stdout.flush()
    # The server replaces this process: a signal to it (Ctrl-C, a service manager) stops it.
    os.execve(cmd[0], cmd, {**os.environ, **extra})


def ui_command() -> None:
    """Print the command that opens the MLflow UI on this project's store."""
    from training.store.server import mlflow_ui_command

    typer.echo(mlflow_ui_command(store_settings()))
