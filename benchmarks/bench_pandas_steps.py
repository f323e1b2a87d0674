"""Benchmark: the pandas-heavy steps of bonemet, to compare pandas versions.

One command:  .venv/bin/python -m benchmarks.bench_pandas_steps [--n-patients 20000] [--repeats 5]

Times, with whatever pandas is importable: simulating a cohort and writing its CSV files,
loading and validating them against the contract, the time-to-event rows and the stacked
landmark rows (0, 91, 183, 365 days) that training builds. Prints one JSON line of medians (s).
To measure another pandas without touching the venv, install it elsewhere and put it first:
``pip install --no-deps --target /tmp/pd3 pandas==3.1.1`` then
``PYTHONPATH=/tmp/pd3 .venv/bin/python -m benchmarks.bench_pandas_steps``. Results by hand in
docs/benchmarks.md ("pandas 2.3 vs 3.1").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-patients", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import pandas as pd

    from features.contract import load_cohort
    from features.simulate import simulate_cohort, write_cohort
    from training.fitting.data import time_to_event_rows
    from training.fitting.landmarks import landmark_rows

    out: dict[str, object] = {"pandas": pd.__version__, "n_patients": args.n_patients}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        out["simulate_and_write_s"] = _median_time(
            lambda: write_cohort(simulate_cohort(args.n_patients, 1), folder), args.repeats
        )
        files = (folder / "patients.csv", folder / "oc_measurements.csv")
        out["load_and_validate_s"] = _median_time(lambda: load_cohort(*files), args.repeats)
        cohort = load_cohort(*files)
        rows, _ = time_to_event_rows(cohort)
        out["time_to_event_rows_s"] = _median_time(lambda: time_to_event_rows(cohort), args.repeats)
        out["landmark_rows_s"] = _median_time(
            lambda: landmark_rows(rows, cohort.measurements, [0, 91, 183, 365]), args.repeats
        )
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()
