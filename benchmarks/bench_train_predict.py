"""Benchmark: train on the demo cohort, then in-process pyfunc prediction latency.

One command:  .venv/bin/python -m benchmarks.bench_train_predict [--n-patients 2000] [--repeats 3]

Simulates the demo cohort (seed 42), runs ``train`` with the default families into a temporary
MLflow store ``--repeats`` times, and times ``predict`` of the logged pyfunc for 1 and 1,000
patients. Prints medians and writes them to docs/benchmarks.md (section "train and predict").
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine, write_section

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SECTION = "## train and predict (benchmarks/bench_train_predict.py)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-patients", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    import mlflow

    from features.contract import load_cohort
    from features.records import contract_rows
    from features.schema import PREDICTOR_COLUMNS
    from features.simulate import simulate_cohort, write_cohort
    from training.config import Settings, TrainConfig
    from training.runs.train import train

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_cohort(simulate_cohort(args.n_patients, seed=42), tmp / "cohort")
        cohort = load_cohort(
            tmp / "cohort" / "patients.csv", tmp / "cohort" / "oc_measurements.csv"
        )
        config = TrainConfig()
        train_times = []
        for k in range(args.repeats):
            settings = Settings(data_dir=tmp / f"store{k}")
            t0 = time.perf_counter()
            result = train(cohort, config, settings, source="bench")
            train_times.append(time.perf_counter() - t0)
        model = mlflow.pyfunc.load_model(
            f"models:/bone-metastasis-risk/{result.challenger_version}"
        )
        rows = contract_rows(cohort.patients[list(PREDICTOR_COLUMNS)])
        one, batch = rows.head(1), rows.head(1000)
        model.predict(one)
        single = []
        for _ in range(200):
            t0 = time.perf_counter()
            model.predict(one)
            single.append(time.perf_counter() - t0)
        batches = []
        for _ in range(20):
            t0 = time.perf_counter()
            model.predict(batch)
            batches.append(time.perf_counter() - t0)

    lines = [
        SECTION,
        "",
        f"Machine: {machine()}. Command: `.venv/bin/python -m benchmarks.bench_train_predict "
        f"--n-patients {args.n_patients} --repeats {args.repeats}`.",
        "",
        "| what | median | runs |",
        "|---|---|---|",
        f"| `train` ({', '.join(config.families)}; {args.n_patients} simulated patients, fit, "
        f"evaluate, log, register) | {statistics.median(train_times):.1f} s | {len(train_times)} |",
        f"| pyfunc `predict`, 1 patient (in process) | "
        f"{statistics.median(single) * 1000:.2f} ms | {len(single)} |",
        f"| pyfunc `predict`, {len(batch)} patients (in process) | "
        f"{statistics.median(batches) * 1000:.1f} ms | {len(batches)} |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
