"""Scoring a population: the local engine against Spark local mode, by cohort size (issue 15).

One command:  .venv/bin/python -m benchmarks.bench_scoring [--sizes 10000 100000 1000000]
              [--engines local spark] [--chunk-size 50000]

A ``cox_ridge`` model is trained on 2,000 simulated patients into a temporary store (one
search configuration, no bootstrap). For each size a cohort is built from a simulated
100,000-patient cohort (tiled with new patient ids beyond that size; the model's work per row
does not depend on who the patient is) and written as Parquet (patients and draws). Then
``bonemet predict`` scores it, as a user runs it, once per engine: ``--engine local`` (chunks
of ``--chunk-size`` patients, CSV out) and ``--engine spark --spark-master local[2]`` (Parquet
folder out). Measured per run: wall
time of the whole command (reading, validation, scoring, writing; Spark's JVM start
included), rows per second, and the peak resident memory of the command and all its
descendants (the JVM included), sampled every 0.2 s from /proc. Writes the table to
docs/benchmarks.md (section "Scoring a population").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import machine, tree_rss_mb, write_section

SECTION = "## Scoring a population: local engine vs Spark (benchmarks/bench_scoring.py)"
BASE_SIZE = 100_000


def cohort_of(n: int, base, out: Path) -> None:
    """Patients and draws of ``n`` patients as Parquet: the base cohort, tiled beyond its size."""
    import pandas as pd

    patients, draws = base
    copies = -(-n // len(patients))
    p_parts, d_parts = [], []
    for k in range(copies):
        ids = {pid: f"P{k:03d}{pid[1:]}" for pid in patients["patient_id"]}
        p_parts.append(patients.assign(patient_id=patients["patient_id"].map(ids)))
        d_parts.append(draws.assign(patient_id=draws["patient_id"].map(ids)))
    p = pd.concat(p_parts, ignore_index=True).head(n)
    d = pd.concat(d_parts, ignore_index=True)
    d = d[d["patient_id"].isin(set(p["patient_id"]))]
    out.mkdir(parents=True, exist_ok=True)
    p.to_parquet(out / "patients.parquet", index=False)
    d.to_parquet(out / "oc_measurements.parquet", index=False)


def run_measured(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak tree RSS (MB) and output of ``cmd``."""
    peak = [0.0]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    output, _ = proc.communicate()
    done.set()
    thread.join()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{output}")
    return seconds, peak[0], output


def main() -> None:
    import pandas as pd

    from features.simulate import simulate_cohort, write_cohort

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument(
        "--engines", nargs="+", choices=("local", "spark"), default=["local", "spark"]
    )
    parser.add_argument(
        "--chunk-size", type=int, default=50_000, help="patients per chunk of the local engine"
    )
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {
            **os.environ,
            "BONEMET_DATA_DIR": str(tmp / "data"),
            "OMP_WAIT_POLICY": "PASSIVE",
            "BONEMET_MAX_GRID": "1",
            "BONEMET_N_BOOTSTRAP": "0",
            "BONEMET_OUTER_FOLDS": "2",
            "BONEMET_INNER_FOLDS": "2",
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        bonemet = [sys.executable, "-m", "training.cli"]
        write_cohort(simulate_cohort(2000, seed=1), tmp / "train")
        train = ["train", "--patients", str(tmp / "train" / "patients.csv")]
        train += ["--measurements", str(tmp / "train" / "oc_measurements.csv")]
        subprocess.run([*bonemet, *train, "--families", "cox_ridge"], env=env, cwd=tmp, check=True)
        write_cohort(simulate_cohort(min(BASE_SIZE, max(args.sizes)), seed=2), tmp / "base")
        base = (
            pd.read_csv(tmp / "base" / "patients.csv", dtype={"patient_id": str}),
            pd.read_csv(tmp / "base" / "oc_measurements.csv", dtype={"patient_id": str}),
        )
        results = []
        for n in args.sizes:
            folder = tmp / f"n{n}"
            cohort_of(n, base, folder)
            inputs = ["predict", "--patients", str(folder / "patients.parquet")]
            inputs += ["--measurements", str(folder / "oc_measurements.parquet")]
            inputs += ["--model-uri", "models:/bone-metastasis-risk/1"]
            runs = {
                "local": ["--chunk-size", str(args.chunk_size), "--out", str(folder / "local.csv")],
                "spark": ["--engine", "spark", "--spark-master", args.spark_master]
                + ["--out", str(folder / "spark.parquet")],
            }
            for engine in args.engines:
                extra = runs[engine]
                seconds, peak, _ = run_measured([*bonemet, *inputs, *extra], env, tmp)
                results.append((n, engine, seconds, n / seconds, peak))
                print(results[-1], flush=True)

    lines = [
        SECTION,
        "",
        f"Machine: {machine()}. Command: `.venv/bin/python -m benchmarks.bench_scoring --sizes "
        f"{' '.join(str(s) for s in args.sizes)} --engines {' '.join(args.engines)} "
        f"--chunk-size {args.chunk_size}`. One `bonemet predict` per engine and size "
        "(cox_ridge, at enrollment; Parquet in; CSV out for local, read, checked and scored in "
        f"chunks of {args.chunk_size:,} patients; a Parquet folder for Spark "
        f"`{args.spark_master}`); wall time of the whole command, peak resident memory of "
        "the command and its descendants (Spark's JVM included).",
        "",
        "| patients | engine | wall s | rows/s | peak memory MB |",
        "|---|---|---|---|---|",
        *(f"| {n:,} | {e} | {s:.1f} | {r:,.0f} | {m:,.0f} |" for n, e, s, r, m in results),
    ]
    if set(args.engines) == {"local", "spark"}:
        by = {(n, e): s for n, e, s, _, _ in results}
        faster = [n for n in args.sizes if by[(n, "spark")] < by[(n, "local")]]
        lines += [
            "",
            "Spark local mode is faster than the local engine from "
            + (f"{min(faster):,} patients on" if faster else "none of these sizes")
            + " on this machine.",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section(text, SECTION)


if __name__ == "__main__":
    main()
