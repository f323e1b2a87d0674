"""Benchmark: `bonemet train` on a population-size cohort, into the SQLite file and into a team's
PostgreSQL-backed tracking server (issue 15, points 6 and 7).

One command:  .venv/bin/python -m benchmarks.bench_train_scale [--patients 100000]
                  [--stores sqlite postgres]

A cohort is simulated (seed 42, default world) and trained with every default family and the
default configuration (nested 3 x 3 cross-validation with grids of 4, 200 bootstrap resamples, two
worker processes; the large-cohort bounds of ``TrainConfig``: the search's subsample and the
bootstrap's resample size) exactly as a user runs it: ``bonemet train --patients ...
--measurements ...`` in a subprocess,

- ``sqlite``: the default store, an SQLite file and an artifact folder under ``BONEMET_DATA_DIR``;
- ``postgres``: ``MLFLOW_TRACKING_URI=http://...`` of ``bonemet tracking-server`` on a real
  PostgreSQL 15 (started here on a free loopback port, as the tests do) with artifacts served
  through the server.

For each: wall time and peak resident memory of the training's process tree (the CLI and its
worker processes, sampled every 0.2 s from /proc); the tracking server's processes are measured
apart. The fits are the same in both runs (same seed), so the difference of the wall times is
the cost of the store. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import ROOT, machine, tree_rss_mb, write_section

SECTION = (
    "## Training a population: SQLite file vs PostgreSQL server (benchmarks/bench_train_scale.py)"
)


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(
        BONEMET_DATA_DIR=str(data_dir),
        OMP_WAIT_POLICY="PASSIVE",
        PYTHONPATH=str(ROOT),
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        **extra,
    )
    return env


def _bonemet() -> list[str]:
    return [sys.executable, "-m", "training.cli"]


def _peak_while(proc: subprocess.Popen) -> tuple[float, float]:
    """Wait for ``proc``; returns (wall seconds, peak MB of its process tree)."""
    peak = 0.0
    t0 = time.perf_counter()
    while proc.poll() is None:
        peak = max(peak, tree_rss_mb(proc.pid))
        time.sleep(0.2)
    return time.perf_counter() - t0, peak


def train_once(cohort: Path, work: Path, env: dict[str, str]) -> dict:
    """One `bonemet train --json` run; wall time, peak memory and its summary."""
    work.mkdir(parents=True, exist_ok=True)
    cmd = [
        *_bonemet(),
        "train",
        "--patients",
        str(cohort / "patients.csv"),
        "--measurements",
        str(cohort / "oc_measurements.csv"),
        "--json",
    ]
    with open(work / "train.out", "w") as out, open(work / "train.err", "w") as err:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=err)
        wall, peak = _peak_while(proc)
    if proc.returncode != 0:
        raise SystemExit(
            f"train failed ({proc.returncode}): {(work / 'train.err').read_text()[-3000:]}"
        )
    summary = json.loads((work / "train.out").read_text())
    return {"wall_s": wall, "peak_mb": peak, "summary": summary}


def _start_server(work: Path) -> tuple[object, subprocess.Popen, str, threading.Event, list]:
    import requests

    from tests.tracking.postgres import free_port, start_postgres

    postgres = start_postgres()
    database = postgres.create_database("bench")
    port = free_port()
    log = open(work / "tracking-server.log", "w")
    server = subprocess.Popen(
        [
            *_bonemet(),
            "tracking-server",
            "--backend-store-uri",
            database,
            "--artifacts-destination",
            str(work / "artifacts"),
            "--port",
            str(port),
        ],
        cwd=work,
        env=_env(work / "server-data"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if requests.get(f"{uri}/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.5)
    else:
        raise SystemExit(
            "the tracking server did not start: "
            + (work / "tracking-server.log").read_text()[-2000:]
        )
    # The server's own memory while training runs against it.
    stop = threading.Event()
    peaks = [0.0]

    def watch() -> None:
        while not stop.is_set():
            peaks[0] = max(peaks[0], tree_rss_mb(server.pid))
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()
    return postgres, server, uri, stop, peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument(
        "--stores", nargs="+", choices=("sqlite", "postgres"), default=["sqlite", "postgres"]
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from features.simulate import simulate_cohort, write_cohort
    from training.config import TrainConfig

    config = TrainConfig()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        tmp = Path(tmp)
        cohort = tmp / "cohort"
        write_cohort(simulate_cohort(args.patients, seed=42), cohort)
        for store in args.stores:
            work = tmp / store
            work.mkdir()
            load = os.getloadavg()[0]
            if store == "sqlite":
                result = train_once(cohort, work, _env(work / "data"))
                server_mb = 0.0
            else:
                postgres, server, uri, stop, peaks = _start_server(work)
                try:
                    result = train_once(
                        cohort, work, _env(work / "client", MLFLOW_TRACKING_URI=uri)
                    )
                finally:
                    stop.set()
                    server.terminate()
                    server.wait(timeout=60)
                    postgres.stop()
                server_mb = peaks[0]
            s = result["summary"]
            rows.append(
                {
                    "store": store,
                    "wall_s": result["wall_s"],
                    "peak_mb": result["peak_mb"],
                    "server_mb": server_mb,
                    "versions": len(s["candidates"]),
                    "skipped": len(s["skipped"]),
                    "n_train": s.get("n_train_patients"),
                    "load": load,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    text = [
        SECTION,
        "",
        f"Machine: {machine()}. Command: `.venv/bin/python -m benchmarks.bench_train_scale "
        f"--patients {args.patients} --stores {' '.join(args.stores)}`. A simulated cohort of "
        f"{args.patients:,} patients (seed 42), `bonemet train` with every default family "
        f"({', '.join(config.families)}), nested {config.outer_folds} x {config.inner_folds} "
        f"cross-validation with grids of {config.max_grid}, {config.n_bootstrap} bootstrap "
        f"resamples, {config.n_jobs} worker processes, searches on at most "
        f"{config.search_max_patients:,} patients and bootstrap resamples of "
        f'{config.bootstrap_max_patients:,} test rows (docs/modeling.md, "Large cohorts"). '
        "Peak memory: the training's process tree (CLI and workers); the tracking server's "
        "tree apart (PostgreSQL's own processes not counted).",
        "",
        "| store | wall time | peak memory (training) | peak memory (tracking server) "
        "| versions registered | 1-min load at start | target (issue 15.7) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "met" if r["wall_s"] <= 600 and r["peak_mb"] <= 6144 else "**not met**"
        text.append(
            f"| {r['store']} | {r['wall_s'] / 60:.1f} min | {r['peak_mb']:,.0f} MB | "
            f"{r['server_mb']:,.0f} MB | {r['versions']} ({r['skipped']} skipped) | "
            f"{r['load']:.1f} | <= 10 min and 6 GB: {met} |"
        )
    text.append("")
    print("\n".join(text))
    if not args.no_write:
        write_section("\n".join(text) + "\n", SECTION)


if __name__ == "__main__":
    main()
