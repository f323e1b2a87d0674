"""Fail loudly when serving got slower than the previous release by more than the tolerance.

The stored figures of the previous release are in ``benchmarks/serving_release.json``
(:data:`FIGURES`). Two benchmarks check against them and exit non-zero on a regression:

* ``benchmarks/bench_serving.py --check``: the single-patient median of ``bonemet serve``
  measured from outside (wall clock: run it on a quiet machine; the load is printed);
* ``benchmarks/profile_serving.py --check``: Python function calls per request in process
  (deterministic: the machine's load does not move it).

Run by hand before a release, never in CI (the wall-clock figures are noisy there).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

FIGURES = Path(__file__).resolve().parent / "serving_release.json"
#: A figure more than this much worse than the release's fails the check.
TOLERANCE = 0.25


def check(measured: dict[str, float], figures: Path = FIGURES) -> list[str]:
    """Lines describing each stored figure ``measured`` is compared with; the failed ones
    start with ``REGRESSION``. Lower is better for every figure but ``throughput_rps``."""
    stored = json.loads(figures.read_text())
    lines = []
    for name, value in measured.items():
        if name not in stored:
            continue
        ref = float(stored[name])
        higher_better = name == "throughput_rps"
        ratio = ref / value if higher_better else value / ref
        bad = ratio > 1 + TOLERANCE
        lines.append(
            f"{'REGRESSION' if bad else 'ok'}: {name} {value:.4g} against {ref:.4g} of release "
            f"{stored.get('release', '?')} ({abs(ratio - 1) * 100:.0f} % "
            f"{'worse' if ratio > 1 else 'better'}; tolerance "
            f"{TOLERANCE * 100:.0f} %; load average {os.getloadavg()[0]:.1f})"
        )
    return lines


def fail_on_regression(measured: dict[str, float], figures: Path = FIGURES) -> None:
    """Print the comparison; exit with status 1 when any figure regressed."""
    lines = check(measured, figures)
    print("\n".join(lines))
    if any(line.startswith("REGRESSION") for line in lines):
        raise SystemExit(f"serving regressed against {figures.name}: see the lines above")
