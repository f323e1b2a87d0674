"""Benchmark: training the demo cohort with every default family, from enrollment and with
landmarks, end to end and step by step (issue 24, point 5; issue 19's training-time target).

One command:  .venv/bin/python -m benchmarks.bench_train_demo [--patients 2000]
                  [--modes enrollment landmarks] [--baseline-tree DIR] [--no-steps]

The cohort is simulated as ``scripts/demo.sh`` does (``bonemet simulate --n-patients 2000
--seed 42``) and trained with every default family (``FAMILIES=""`` in the demo) and the
default configuration (nested 3 x 3 cross-validation, grids of 4, 200 bootstrap resamples, two
worker processes), from enrollment and with the demo's landmarks (0, 91, 183, 365):

- ``run``: ``bonemet train --json`` in a subprocess, exactly as a user runs it, in an empty
  ``BONEMET_DATA_DIR`` (SQLite store): wall time and CPU time of the process and every
  descendant it waited for (``resource.getrusage(RUSAGE_CHILDREN)``: the CLI and its worker
  processes), and the load average before and after (the machine is shared). With
  ``--baseline-tree DIR`` the same run is repeated with another source tree (e.g. the release
  before the speed work, ``git archive <rev> | tar -x -C DIR``) in the same session.
- ``steps``: the same training in one process (``n_jobs`` = 1, so that every step's CPU time
  is this process's), each step timed by wrapping the function that does it (time spent in a
  nested timed step is counted once, in the innermost step): CPU and wall seconds and the
  share of the CPU time.

Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from benchmarks.common import ROOT, machine, write_section

SECTION = (
    "## Training the demo: every default family, step by step (benchmarks/bench_train_demo.py)"
)
LANDMARKS = "0,91,183,365"
MODES = {"enrollment": None, "landmarks": LANDMARKS}


def _env(data_dir: Path, tree: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(
        BONEMET_DATA_DIR=str(data_dir),
        OMP_WAIT_POLICY="PASSIVE",
        PYTHONPATH=str(tree),
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        **extra,
    )
    return env


def simulate(n: int, out: Path) -> Path:
    """The demo cohort (``scripts/demo.sh``: seed 42, no FCS files)."""
    cmd = [sys.executable, "-m", "training.cli", "simulate", "--n-patients", str(n), "--seed",
           "42", "--out", str(out)]
    subprocess.run(cmd, check=True, env=_env(out / "unused", ROOT), capture_output=True)
    return out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def train_run(cohort: Path, work: Path, landmarks: str | None, tree: Path) -> dict:
    """One ``bonemet train --json`` in a subprocess: wall, CPU of its tree, load averages."""
    work.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "training.cli", "train", "--patients",
           str(cohort / "patients.csv"), "--measurements", str(cohort / "oc_measurements.csv"),
           "--json"]
    if landmarks:
        cmd += ["--landmarks", landmarks]
    load_before = os.getloadavg()[0]
    cpu0, t0 = _children_cpu(), time.perf_counter()
    with open(work / "train.out", "w") as out, open(work / "train.err", "w") as err:
        proc = subprocess.run(cmd, cwd=work, env=_env(work / "data", tree), stdout=out,
                              stderr=err, check=False)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"train failed: {(work / 'train.err').read_text()[-3000:]}")
    summary = json.loads((work / "train.out").read_text())
    chosen = [c for c in summary["candidates"] if c["challenger"]]
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "load": (load_before, os.getloadavg()[0]),
        "challenger": chosen[0]["family"] if chosen else "none",
        "selection": {c["family"]: c["selection"] for c in summary["candidates"]},
        "skipped": [s["family"] for s in summary["skipped"]],
    }


# -- steps: one process, every step timed ----------------------------------------------------

#: (module, function, step): the functions wrapped by the step timer, in the order of a run.
STEPS = (
    ("features.contract", "load_cohort", "read and validate the cohort"),
    ("training.runs.train", "prepare_training_data",
     "eligible rows, landmark rows stacked"),
    ("training.runs.train", "_log_parent",
     "parent run: dataset, marker likelihood-ratio test"),
    ("training.fitting.family_run", "search", "hyperparameter search (inner-CV fits, scoring)"),
    ("training.fitting.family_run", "fit_pipeline",
     "outer-fold, clinical-only and final fits"),
    ("training.fitting.family_run", "interval_data", "final model: interval data"),
    ("training.fitting.family_run", "_risk_and_cif", "out-of-fold predictions"),
    ("training.fitting.family_run", "point_metrics", "fold and clinical-only metrics"),
    ("training.evaluation.importance", "feature_importance", "feature importance"),
    # One set of resamples for the headline intervals, the calibration at 12 and 36 months and
    # the marker's paired increments (before issue 24's second pass: three bootstraps).
    ("training.evaluation.suite", "joint_intervals",
     "bootstrap: headline, calibration and marker-increment intervals"),
    ("training.evaluation.suite", "bootstrap_intervals", "bootstrap: headline intervals"),
    ("training.evaluation.suite", "calibration_intervals",
     "bootstrap: calibration at 12 and 36 months"),
    ("training.evaluation.bootstrap", "paired_bootstrap_difference",
     "bootstrap: marker increment (paired)"),
    ("training.fitting.family_run", "evaluate_split",
     "evaluation: point metrics, tables, subgroups, curves"),
    ("training.fitting.family_run", "auc_curve",
     "evaluation: point metrics, tables, subgroups, curves"),
    ("training.runs.train", "_log_family", "MLflow: metrics, tables, figures"),
    ("training.runs.train", "log_risk_model", "MLflow: log the model"),
    ("training.runs.train", "card_facts", "model card"),
    ("training.registry.card", "render_model_card", "model card"),
    ("training.registry.versions", "register_version", "MLflow registry: versions"),
    ("training.registry.versions", "describe_version", "MLflow registry: versions"),
    ("training.registry.selection", "choose_challenger", "selection of the challenger"),
)


class StepTimer:
    """CPU (this process) and wall seconds per step, each second counted in one step."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)
        self._stack: list[list[float]] = []

    def wrap(self, module: str, name: str, step: str) -> None:
        import importlib

        mod = importlib.import_module(module)
        fn = getattr(mod, name)

        def timed(*args, **kwargs):
            c0, w0 = time.process_time(), time.perf_counter()
            self._stack.append([0.0, 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                inner = self._stack.pop()
                dc, dw = time.process_time() - c0, time.perf_counter() - w0
                self.cpu[step] += dc - inner[0]
                self.wall[step] += dw - inner[1]
                if self._stack:
                    self._stack[-1][0] += dc
                    self._stack[-1][1] += dw

        setattr(mod, name, timed)


def steps_child(cohort: Path, landmarks: str | None, out: Path) -> None:
    """The training in this process with every step timed; writes the steps to ``out``."""
    timer = StepTimer()
    for module, name, step in STEPS:
        timer.wrap(module, name, step)
    import features.contract as contract
    from training.config import Settings, load_config
    from training.runs import train as training_run

    c0, w0 = time.process_time(), time.perf_counter()
    cohort_data = contract.load_cohort(cohort / "patients.csv", cohort / "oc_measurements.csv")
    config = load_config(None, landmark_days=landmarks, n_jobs=1)
    training_run.train(cohort_data, config, Settings.from_env(), source=str(cohort))
    total_cpu, total_wall = time.process_time() - c0, time.perf_counter() - w0
    out.write_text(json.dumps({"cpu": timer.cpu, "wall": timer.wall, "total_cpu": total_cpu,
                               "total_wall": total_wall}))


def steps_run(cohort: Path, work: Path, landmarks: str | None) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    out = work / "steps.json"
    cmd = [sys.executable, "-m", "benchmarks.bench_train_demo", "--steps-child", str(cohort),
           landmarks or "", str(out)]
    load_before = os.getloadavg()[0]
    with open(work / "steps.err", "w") as err:
        proc = subprocess.run(cmd, cwd=ROOT, env=_env(work / "data", ROOT, OPENBLAS_NUM_THREADS="1",
                                                      OMP_NUM_THREADS="1"),
                              stdout=err, stderr=err, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"steps failed: {(work / 'steps.err').read_text()[-3000:]}")
    found = json.loads(out.read_text())
    found["load"] = (load_before, os.getloadavg()[0])
    return found


def steps_table(found: dict) -> str:
    total_cpu, total_wall = found["total_cpu"], found["total_wall"]
    rows = sorted(found["cpu"], key=lambda s: -found["cpu"][s])
    other_cpu = total_cpu - sum(found["cpu"].values())
    other_wall = total_wall - sum(found["wall"].values())
    lines = ["| step | CPU s | wall s | share of CPU |", "|---|---|---|---|"]
    for step in rows:
        cpu = found["cpu"][step]
        lines.append(f"| {step} | {cpu:.1f} | {found['wall'][step]:.1f} | "
                     f"{100 * cpu / total_cpu:.0f} % |")
    lines.append(f"| other (MLflow runs, params, tags; scheduling) | {other_cpu:.1f} | "
                 f"{other_wall:.1f} | {100 * other_cpu / total_cpu:.0f} % |")
    lines.append(f"| **total** | **{total_cpu:.1f}** | **{total_wall:.1f}** | 100 % |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=list(MODES))
    parser.add_argument("--baseline-tree", type=Path, default=None,
                        help="source tree of an earlier release, timed the same way")
    parser.add_argument("--no-steps", action="store_true", help="end-to-end runs only")
    parser.add_argument("--steps-child", nargs=3, metavar=("COHORT", "LANDMARKS", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps_child:
        cohort, landmarks, out = args.steps_child
        steps_child(Path(cohort), landmarks or None, Path(out))
        return
    started = time.strftime("%Y-%m-%d %H:%M")
    t0 = time.perf_counter()
    runs: list[tuple[str, str, dict]] = []
    steps: dict[str, dict] = {}

    def report() -> None:  # after every measurement: a cut-short run still leaves its results
        write_section(render(args, started, time.perf_counter() - t0, runs, steps), SECTION)

    with tempfile.TemporaryDirectory(prefix="bench-train-demo-") as tmp:
        work = Path(tmp)
        cohort = simulate(args.patients, work / "cohort")
        for mode in args.modes:
            trees = [("this tree", ROOT)]
            if args.baseline_tree:
                trees.append((f"baseline ({args.baseline_tree.name})", args.baseline_tree))
            for label, tree in trees:
                found = train_run(cohort, work / f"run-{mode}-{len(runs)}", MODES[mode], tree)
                runs.append((mode, label, found))
                print(mode, label, found, flush=True)
                report()
            if not args.no_steps:
                steps[mode] = steps_run(cohort, work / f"steps-{mode}", MODES[mode])
                print(mode, "steps", steps[mode], flush=True)
                report()


def render(args, started: str, elapsed: float, runs, steps) -> str:
    lines = [
        SECTION,
        "",
        f"Machine: {machine()}, shared with other engineers' jobs (load averages below). "
        f"Run {started}, {elapsed:.0f} s in all. Command: `.venv/bin/python -m "
        f"benchmarks.bench_train_demo --patients {args.patients} --modes {' '.join(args.modes)}"
        + (f" --baseline-tree {args.baseline_tree}" if args.baseline_tree else "")
        + (" --no-steps" if args.no_steps else "")
        + "`. The demo cohort (simulate, seed 42), every default family, default configuration "
        "(nested 3 x 3 CV, grids of 4, 200 bootstrap resamples, 2 worker processes); "
        f"`landmarks`: `--landmarks {LANDMARKS}`.",
        "",
        "`bonemet train` end to end (CPU: the process and its workers, user + system):",
        "",
        "| mode | code | wall | CPU | load average (1 min) before / after | challenger |",
        "|---|---|---|---|---|---|",
    ]
    for mode, label, found in runs:
        lines.append(
            f"| {mode} | {label} | {found['wall_s']:.0f} s | {found['cpu_s']:.0f} s | "
            f"{found['load'][0]:.1f} / {found['load'][1]:.1f} | {found['challenger']} |"
        )
    for mode, found in steps.items():
        lines += [
            "",
            f"Steps, {mode} (one process, `n_jobs` = 1; load {found['load'][0]:.1f} / "
            f"{found['load'][1]:.1f}):",
            "",
            steps_table(found),
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
