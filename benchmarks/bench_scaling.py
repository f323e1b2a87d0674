"""Benchmark: wall time and peak memory of each model family at 1,000 / 10,000 / 100,000 patients.

One command:  .venv/bin/python -m benchmarks.bench_scaling [--sizes 1000 10000 100000]

For every size a cohort is simulated (seed 42) and split as ``train`` does; every family is then
fitted with its default configuration (the first of its grid) on the training split and predicts
the cumulative incidence at 12/24/36/60 months for 1,000 test patients. Each fit runs in its own
process, so the peak resident memory (``ru_maxrss``) is that fit's alone; a fit that exceeds
``--timeout`` seconds is stopped and reported as such. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
SECTION = "## Scaling by family (benchmarks/bench_scaling.py)"


def worker(cohort_dir: str, family: str) -> None:
    """Fit one family in this process and print a JSON line with time and peak memory."""
    import resource

    import numpy as np

    from features.contract import load_cohort
    from training.config import TrainConfig
    from training.fitting.data import split, time_to_event_rows
    from training.fitting.search import fit_pipeline
    from training.models.catalog import FAMILIES

    cohort = load_cohort(Path(cohort_dir) / "patients.csv")
    rows, _ = time_to_event_rows(cohort)
    X_train, X_test, y_train, _ = split(rows, TrainConfig())
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fam = FAMILIES[family]
    t0 = time.perf_counter()
    pipe = fit_pipeline(fam.make, fam.grid[0], X_train, y_train, include_marker=True)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    Xt = pipe[:-1].transform(X_test.head(1000))
    pipe[-1].predict_cumulative_incidence(Xt, np.array([12, 24, 36, 60]) * 365.25 / 12)
    pred_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "fit_s": fit_s,
                "predict_s": pred_s,
                "peak_mb": peak / 1024,
                "data_mb": base / 1024,
                "n_train": len(X_train),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--families", nargs="+", default=None)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from features.simulate import simulate_cohort, write_cohort
    from training.models.catalog import FAMILIES

    families = args.families or list(FAMILIES)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            out = Path(tmp) / str(n)
            write_cohort(simulate_cohort(n, seed=42), out)
            for family in families:
                cmd = [
                    sys.executable,
                    "-m",
                    "benchmarks.bench_scaling",
                    "--worker",
                    str(out),
                    family,
                ]
                env = {**os.environ, "OMP_NUM_THREADS": "1"}
                try:
                    proc = subprocess.run(
                        cmd,
                        capture_output=True,
                        text=True,
                        env=env,
                        timeout=args.timeout,
                        check=False,
                    )
                    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
                    row = (
                        json.loads(line)
                        if proc.returncode == 0 and line
                        else {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:120]}
                    )
                except subprocess.TimeoutExpired:
                    row = {"error": f"stopped after {args.timeout:.0f} s"}
                row.update(n_patients=n, family=family)
                results.append(row)
                print(json.dumps(row), flush=True)
    lines = [
        SECTION,
        "",
        f"Machine: {machine()}. Command: `.venv/bin/python -m benchmarks.bench_scaling "
        f"--sizes {' '.join(map(str, args.sizes))}`. One fit of the default configuration "
        "per family and size, in its own process (peak RSS includes the loaded cohort and "
        "libraries, about the `data` column); prediction of 1,000 patients at 4 horizons.",
        "",
        "| patients | family | fit | predict 1,000 | peak memory | of which data+libs |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['n_patients']:,} | {r['family']} | {r['error']} | | | |")
        else:
            lines.append(
                f"| {r['n_patients']:,} | {r['family']} | {r['fit_s']:.1f} s | "
                f"{r['predict_s'] * 1000:.0f} ms | {r['peak_mb']:.0f} MB | "
                f"{r['data_mb']:.0f} MB |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        from benchmarks.common import write_section

        write_section(text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3])
    else:
        main()
