"""A real PostgreSQL server for the tests: Debian's PostgreSQL 15 on a free loopback port.

``initdb`` refuses to run as root, so under root the cluster is made and run by the
``postgres`` account in a folder it owns; otherwise by the current user. Trust authentication
on 127.0.0.1 only; the folder is removed when the server stops.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path(os.environ.get("BONEMET_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 at the time of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Postgres:
    """A running cluster: ``url(db)`` gives a postgresql:// URI of one of its databases."""

    root: Path
    port: int
    prefix: list[str]

    def url(self, database: str) -> str:
        return f"postgresql://bonemet@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            [
                *self.prefix,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            cwd=self.root,
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> Postgres:
    """Create a cluster in a new temporary folder and start it; raise if anything fails."""
    for tool in ("initdb", "pg_ctl"):
        if not (PG_BIN / tool).is_file():
            raise RuntimeError(
                f"PostgreSQL server binaries not found in {PG_BIN} (set BONEMET_PG_BIN): the "
                "registry tests run against a real PostgreSQL 15"
            )
    root = Path(tempfile.mkdtemp(prefix="bonemet-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    pg = Postgres(root, port, prefix)

    def run(args: list[str]) -> None:
        out = subprocess.run(
            [*prefix, *args],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if out.returncode != 0:
            log = root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            pg.stop()
            raise RuntimeError(f"{' '.join(args)} failed:\n{out.stdout}\n{out.stderr}\n{tail}")

    run(
        [
            str(PG_BIN / "initdb"),
            "-D",
            str(root / "data"),
            "-U",
            "bonemet",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]
    )
    options = (
        f"-p {port} -h 127.0.0.1 -k {root} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c shared_buffers=32MB -c max_connections=60"
    )
    run(
        [
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(root / "data"),
            "-l",
            str(root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ]
    )
    return pg
