"""The numbers agree with R: per-site metrics with riskRegression/prodlim, pooling with metafor.

Fixed data (``fixtures/oracle_cohort.csv``, ``fixtures/meta_input.csv``, made by
``fixtures/make_cohort.py``) and R's answers on them (``fixtures/r_*.csv``, made by
``fixtures/oracle.R``). The stored answers are always compared; where R with riskRegression and
metafor is installed (``scripts/r-test-deps.sh``, run by ``scripts/test.sh``) R is also run live
on the same data and its fresh answers must equal the stored ones, so the oracle is R itself and
not a file that could drift. Tolerances: 1e-3 for the metrics, 1e-4 for the pooling.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.models.competing import make_target
from training.validation.groups import group_metrics
from training.validation.meta import random_effects

FIXTURES = Path(__file__).parent / "fixtures"
EVENTS = {0: "censored", 1: "bone_metastasis", 2: "death"}


def _r_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(
        ["Rscript", "-e", 'quit(status = !all(c("riskRegression", "metafor") %in% '
         "rownames(installed.packages())))"],
        capture_output=True,
        timeout=120,
    )
    return probe.returncode == 0


@pytest.fixture(scope="module")
def r_answers(tmp_path_factory):
    """R's answers: run live when R is installed (and equal to the stored ones), else stored."""
    stored = {
        name: pd.read_csv(FIXTURES / f"r_{name}.csv") for name in ("site_metrics", "pooled")
    }
    if not _r_available():
        return stored
    out = tmp_path_factory.mktemp("r")
    subprocess.run(
        ["Rscript", str(FIXTURES / "oracle.R"), str(FIXTURES), str(out)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    live = {name: pd.read_csv(out / f"r_{name}.csv") for name in stored}
    for name in stored:
        pd.testing.assert_frame_equal(live[name], stored[name], rtol=1e-9, atol=1e-12)
    return live


@pytest.fixture(scope="module")
def ours():
    d = pd.read_csv(FIXTURES / "oracle_cohort.csv")
    y = make_target(d["status"].map(EVENTS).to_numpy(object), d["time_days"].to_numpy(float))
    cif = {h: d[f"p{h}"].to_numpy(float) for h in (12, 24, 36)}
    return group_metrics(y, cif[24], cif, d["site_id"].to_numpy(object), n_boot=20)


@pytest.mark.parametrize("column", ["observed", "auc", "brier"])
def test_site_metrics_equal_riskregression(ours, r_answers, column):
    r = r_answers["site_metrics"]
    table = ours.set_index("site_id")
    for row in r.itertuples(index=False):
        mine = table.loc[row.site_id, f"{column}_{row.months}m"]
        assert mine == pytest.approx(getattr(row, column), abs=1e-3), (row.site_id, row.months)
    # O/E is the Aalen-Johansen incidence over the mean prediction.
    d = pd.read_csv(FIXTURES / "oracle_cohort.csv")
    for row in r[r["months"] == 24].itertuples(index=False):
        expected = row.observed / d.loc[d["site_id"] == row.site_id, "p24"].mean()
        assert table.loc[row.site_id, "oe_ratio_24m"] == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("metric", ["c_index", "oe_ratio_24m"])
def test_pooling_equals_metafor(r_answers, metric):
    m = pd.read_csv(FIXTURES / "meta_input.csv")
    col = {"c_index": "logit_c_index", "oe_ratio_24m": "log_oe_ratio_24m"}[metric]
    r = r_answers["pooled"]
    for row in r[r["metric"] == metric].itertuples(index=False):
        pooled = random_effects(
            m[col], m[f"{col}_var"], method=row.method, hartung_knapp=bool(row.hartung_knapp)
        )
        for key in ("estimate", "se", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "q",
                    "q_p"):
            assert getattr(pooled, key) == pytest.approx(getattr(row, key), abs=1e-4), key
        assert pooled.i2_percent == pytest.approx(row.i2_percent, abs=1e-2)  # in percent


def test_meta_analysis_refuses_what_it_cannot_pool():
    with pytest.raises(ValueError, match="no site to pool"):
        random_effects([], [])
    with pytest.raises(ValueError, match="variance finite and > 0"):
        random_effects([0.1, 0.2], [0.01, 0.0])
    with pytest.raises(ValueError, match="method must be one of REML, DL"):
        random_effects([0.1, 0.2], [0.01, 0.02], method="PM")
    one = random_effects([0.3], [0.04])
    assert one.estimate == 0.3 and np.isnan(one.tau2) and "one site" in one.note
