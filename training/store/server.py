"""Commands that serve an MLflow store: the team's tracking server (``bonemet tracking-server``)
and the local UI (``bonemet ui-command``). They build command lines; they start nothing.
"""

from __future__ import annotations

from pathlib import Path

from training.config import Settings
from training.store.backend import database_uri


def mlflow_ui_command(settings: Settings) -> str:
    """The command that opens the MLflow UI on the same store."""
    return (
        f"mlflow ui --backend-store-uri '{settings.tracking_uri}' --workers 1 "
        "--host 127.0.0.1 --port 5000"
    )


class ServerConfigError(ValueError):
    """A tracking-server option that cannot be used, with the reason."""


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable and writable by its owner only (0600), also when the
    file existed with wider permissions: it holds secrets or where to find them."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def split_password(uri: str) -> tuple[str, str | None]:
    """``uri`` without the password of its user, and that password (None when there is none).

    The password of a database URI must not reach a command line (``ps`` shows it to every
    local user) nor a world-readable file; :func:`tracking_server_command` hands it to the
    server through a pgpass file instead.
    """
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = (parts.username or "") + "@" + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc)), unquote(parts.password)


def pgpass_line(uri: str, password: str) -> str:
    """The ``~/.pgpass`` line (libpq's format: host:port:database:user:password, ``:`` and
    ``\\`` escaped) that gives ``password`` to connections made with ``uri``."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)

    def field(value: str) -> str:
        return value.replace("\\", "\\\\").replace(":", "\\:")

    fields = [
        parts.hostname or "localhost",
        str(parts.port or 5432),
        unquote(parts.path.lstrip("/")) or "*",
        unquote(parts.username or "") or "*",
        password,
    ]
    return ":".join(field(f) for f in fields)


def tracking_server_command(
    backend_store_uri: str,
    artifacts_destination: str,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    auth: bool = False,
    auth_db_uri: str | None = None,
    state_dir: Path,
) -> tuple[list[str], dict[str, str]]:
    """The ``mlflow server`` command line and environment of a team's tracking server.

    A PostgreSQL (or SQLite) backend store holds runs and the registry; artifacts are served
    through the server (``--serve-artifacts``) from ``artifacts_destination`` (a folder or an
    object-store URI), so clients need no access to the storage. Small-machine settings:
    ``workers`` uvicorn workers (one by default) and no background job consumers (MLflow's
    GenAI job execution, which otherwise starts its own worker processes).

    With ``auth``, MLflow's basic-auth app (``mlflow[auth]``): users and permissions live in
    ``auth_db_uri`` (default an SQLite file in ``state_dir``); the admin is created on the first
    start with the password of ``MLFLOW_AUTH_ADMIN_PASSWORD``.

    Secrets never reach a command line or a file other users can read: a password in a
    PostgreSQL URI is taken out of it and written to ``state_dir/pgpass`` (0600, libpq's
    ``PGPASSFILE``), ``basic_auth.ini`` is written 0600 and ``state_dir`` is 0700. A URI
    without a password uses libpq's own ``PGPASSWORD`` or ``~/.pgpass``.

    Returns
    -------
    tuple
        The argument list and the environment variables to add.

    Raises
    ------
    ServerConfigError
        An unsupported backend store, or ``auth`` without an admin password.
    """
    import os
    import secrets
    import sys

    backend = database_uri(backend_store_uri)
    secrets_found: list[tuple[str, str]] = []
    if backend.startswith("postgresql+psycopg://"):
        backend, password = split_password(backend)
        if password is not None:
            secrets_found.append((backend, password))
    if not backend.startswith(("postgresql+psycopg://", "sqlite:///", "mysql")):
        raise ServerConfigError(
            f"--backend-store-uri must be a database URI (postgresql://user@host:port/db or "
            f"sqlite:///path), got {backend_store_uri!r}"
        )
    if "://" not in artifacts_destination:
        folder = Path(artifacts_destination).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        artifacts_destination = folder.as_uri()
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend,
        "--serve-artifacts",
        "--artifacts-destination",
        artifacts_destination,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if auth:
        if not os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD"):
            raise ServerConfigError(
                "--auth needs MLFLOW_AUTH_ADMIN_PASSWORD: the password of the 'admin' user "
                "created on the first start (ignored once that user exists)"
            )
        users = database_uri(auth_db_uri or f"sqlite:///{(state_dir / 'basic_auth.db').resolve()}")
        if users.startswith("postgresql+psycopg://"):
            users, password = split_password(users)
            if password is not None:
                secrets_found.append((users, password))
        config = _private_dir(state_dir) / "basic_auth.ini"
        write_private(
            config,
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = {users}\n"
            "admin_username = admin\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # Without it every request re-hashes the password (PBKDF2): a training's thousands
            # of requests then cost minutes. Changes through the API apply at once on the
            # worker that made them; others (several workers) may lag up to 60 s.
            "auth_cache_ttl_seconds = 60\n",
        )
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(config)
        # CSRF key of the auth app; several servers behind one address must share one.
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = os.environ.get(
            "MLFLOW_FLASK_SERVER_SECRET_KEY", secrets.token_hex(32)
        )
        cmd += ["--app-name", "basic-auth"]
    if secrets_found:
        # libpq reads passwords from this file (PGPASSFILE) when the URI has none: not in the
        # command line, not in the environment of every child, 0600 like ~/.pgpass must be.
        pgpass = _private_dir(state_dir) / "pgpass"
        write_private(pgpass, "".join(pgpass_line(u, pw) + "\n" for u, pw in secrets_found))
        env["PGPASSFILE"] = str(pgpass.resolve())
    return cmd, env


def _private_dir(path: Path) -> Path:
    """``path`` created if needed and closed to other users (0700)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path
