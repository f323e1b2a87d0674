"""Benchmark: gating 100 FCS files of 150,000 events each (``bonemet cytometry``'s library call).

One command:  .venv/bin/python -m benchmarks.bench_cytometry [--files 100] [--events 150000]
[--repeats 3] [--workers 1 2]

Writes the files once with the simulator's FCS writer (120,000 PBMC events and 30,000 debris
each, so 150,000 events), then times :func:`features.cytometry.gate_batch` (reading, QC, FlowKit
gating, provenance with SHA-256) with each worker count ``--repeats`` times. Prints medians and
events per second and writes them to docs/benchmarks.md (section "cytometry"). Counts are
checked against the simulated ones on every run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SECTION = "## cytometry: gating FCS files (benchmarks/bench_cytometry.py)"


def make_batch(folder: Path, n_files: int, n_events: int, seed: int = 0):
    """``n_files`` simulated draws of ``n_events`` events; returns (paths, expected counts)."""
    import numpy as np
    import pandas as pd

    from features.cytometry.simulate_fcs import DEBRIS_SHARE, write_fcs_draws

    rng = np.random.default_rng(seed)
    pbmc = int(round(n_events / (1 + DEBRIS_SHARE)))
    draws = pd.DataFrame(
        {
            "patient_id": [f"B{i:04d}" for i in range(n_files)],
            "day": 0.0,
            "oc_positive_percent": np.nan,
            "oc_positive_events": pd.array(rng.binomial(pbmc, 0.0005, n_files), dtype="Int64"),
            "pbmc_events": pd.array([pbmc] * n_files, dtype="Int64"),
            "alkaline_phosphatase_u_per_l": np.nan,
        }
    )
    return write_fcs_draws(draws, folder, n_patients=n_files, seed=seed), draws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    from benchmarks.common import machine, write_section
    from features.cytometry import compare_counts, gate_batch

    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths, expected = make_batch(Path(tmp), args.files, args.events)
        write_s = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in paths["files"].iterdir()) / 1e6
        print(f"wrote {args.files} files ({size_mb:.0f} MB) in {write_s:.1f} s", flush=True)
        for workers in args.workers:
            times = []
            for _ in range(args.repeats):
                result = gate_batch(
                    paths["manifest"], paths["gating"], "PBMC", "OC_pos", workers=workers
                )
                assert compare_counts(result.measurements, expected).empty
                times.append(result.seconds)
                print(f"workers={workers}: {result.seconds:.2f} s", flush=True)
            med = statistics.median(times)
            rows.append((workers, med, result.total_events / med, len(times)))

    lines = [
        SECTION,
        "",
        f"Machine: {machine()}. Command: `.venv/bin/python -m benchmarks.bench_cytometry "
        f"--files {args.files} --events {args.events} --repeats {args.repeats} --workers "
        f"{' '.join(map(str, args.workers))}`. {args.files} simulated FCS 3.1 files of "
        f"{args.events:,} events (4 float32 channels, {size_mb:.0f} MB in all; writing them took "
        f"{write_s:.1f} s). Each run is the whole `gate_batch`: manifest checks, SHA-256 of "
        "every file, FlowKit reading and gating (PBMC polygon, logicle-scaled OC gate within "
        "it), provenance; counts checked equal to the simulated ones on every run. Load "
        f"average (1 min) {load_before:.1f} before and {os.getloadavg()[0]:.1f} after: other "
        "jobs on the same cores slow the runs and take the cores extra processes would use.",
        "",
        "| processes | wall time (median) | events per second | runs |",
        "|---|---|---|---|",
    ]
    for workers, med, rate, n in rows:
        lines.append(f"| {workers} | {med:.1f} s | {rate:,.0f} | {n} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
