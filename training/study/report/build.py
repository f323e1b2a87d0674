"""Build the study report from a cohort (:func:`build_study`) and write its files
(:func:`write_study`): ``report.html``, ``study.json`` and ``figures/*.png``."""

from __future__ import annotations

import json
from pathlib import Path

from features.contract import Cohort
from training.study.report.aim1 import aim1_part
from training.study.report.aim2 import aim2_part
from training.study.report.cohort import cohort_part
from training.study.report.config import StudyConfig
from training.study.report.covariates import enrollment_log2
from training.study.report.findings import findings_part
from training.study.report.limits import limits_part
from training.study.report.monitoring import monitoring_part
from training.study.report.parts import Part, Study
from training.study.report.render import render_html

__all__ = ["build_study", "write_study"]


def build_study(cohort: Cohort, config: StudyConfig | None = None) -> Study:
    """Compute every part of the report from a validated cohort.

    Parameters
    ----------
    cohort : Cohort
        From :func:`features.contract.load_cohort`.
    config : StudyConfig, optional

    Returns
    -------
    Study
        Parts in report order, the key findings first (:func:`findings_part`); a part the
        data cannot support says why instead.
    """
    config = config or StudyConfig()
    log2_marker = enrollment_log2(cohort)
    first = cohort_part(cohort, log2_marker)
    aim1, cutoff = aim1_part(cohort, log2_marker, config)
    if not cohort.patients["event"].notna().any():
        aim2 = Part("aim2", "Aim 2: time to bone metastasis (patients free of it at enrollment)")
        aim2.missing("Aim 2", "the cohort has no outcomes (time_days, event)")
    else:
        aim2 = aim2_part(cohort, log2_marker, cutoff, config)
    monitoring = monitoring_part(cohort, config)
    parts = [first, aim1, aim2, monitoring, limits_part()]
    # The summary opens the report; it reads the numbers the other parts computed.
    return Study(config, [findings_part(parts), *parts])


def write_study(study: Study, out_dir: str | Path, source: str = "") -> dict[str, Path]:
    """Write ``report.html``, ``study.json`` and ``figures/*.png`` under ``out_dir``."""
    out = Path(out_dir)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for part in study.parts:
        for name, png in part.figures.items():
            path = figures / f"{name}.png"
            path.write_bytes(png)
            paths[f"figure:{name}"] = path
    report = out / "report.html"
    report.write_text(render_html(study, source), encoding="utf-8")
    numbers = out / "study.json"
    numbers.write_text(json.dumps(study.numbers, indent=2, allow_nan=False), encoding="utf-8")
    paths["report"] = report
    paths["numbers"] = numbers
    paths["figures"] = figures
    return paths
