"""Public survival cohorts mapped to the data contract (no network: shipped in packages).

The German Breast Cancer Study Group 2 trial (GBSG2; Schumacher et al., J Clin Oncol
1994;12:2086-93), shipped with scikit-survival as :func:`sksurv.datasets.load_gbsg2`: 686
women with node-positive primary breast cancer, recurrence-free survival in days (299 events).

It records **one event type** and **no osteocalcin marker**, which is what makes it useful
here: a real cohort on which ``bonemet train`` must fit a clinical-only model with the death
hazard taken as zero (``training.fitting.data.competing_deaths``). Its outcome is recurrence or
death,
not bone metastasis; mapped to the contract's ``bone_metastasis`` event it stands in for the
outcome, so a model trained on it predicts recurrence-free survival and says nothing about
bone metastasis. Use it to exercise the pipeline and to benchmark on real data, never for
clinical claims.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import Cohort, validate_cohort

#: Receptor level (fmol/mg) at or above which GBSG2's estrogen and progesterone receptors
#: count as positive (the trial's and the usual biochemical cut-off).
RECEPTOR_POSITIVE_FMOL = 10.0

_MENOPAUSE = {"Pre": "pre", "Post": "post"}
_GRADE = {"I": 1, "II": 2, "III": 3}


def gbsg2_patients() -> pd.DataFrame:
    """GBSG2 as a raw contract ``patients`` table (one row per woman, with outcomes).

    Mapping: ``age`` -> ``age_years``; ``menostat`` Pre/Post -> ``menopausal_status``
    pre/post; ``estrec``, ``progrec`` (fmol/mg) -> ``er_status``, ``pr_status`` (positive at
    :data:`RECEPTOR_POSITIVE_FMOL` or more); ``tgrade`` I-III -> ``histologic_grade`` 1-3;
    ``tsize`` (mm) -> ``tumor_size_mm``; ``pnodes`` -> ``positive_lymph_nodes``; ``horTh`` ->
    ``endocrine_therapy``; every woman ``early`` (primary, non-metastatic) and free of bone
    metastasis at enrollment; recurrence-free survival: ``time`` -> ``time_days`` and ``cens``
    (True: recurrence or death) -> ``event`` ``bone_metastasis`` (the stand-in outcome), else
    ``censored``. No death is recorded apart from the outcome and there is no marker column.

    Returns
    -------
    pandas.DataFrame
        Contract columns; ``patient_id`` ``GBSG2-0001`` ... in the package's row order.
    """
    from sksurv.datasets import load_gbsg2

    X, y = load_gbsg2()
    n = len(X)
    return pd.DataFrame(
        {
            "patient_id": [f"GBSG2-{i + 1:04d}" for i in range(n)],
            "age_years": X["age"].to_numpy(dtype=float),
            "menopausal_status": X["menostat"].astype(str).map(_MENOPAUSE).to_numpy(),
            "er_status": np.where(
                X["estrec"].to_numpy(dtype=float) >= RECEPTOR_POSITIVE_FMOL, "positive", "negative"
            ),
            "pr_status": np.where(
                X["progrec"].to_numpy(dtype=float) >= RECEPTOR_POSITIVE_FMOL, "positive", "negative"
            ),
            "histologic_grade": X["tgrade"].astype(str).map(_GRADE).to_numpy(dtype=int),
            "tumor_size_mm": X["tsize"].to_numpy(dtype=float),
            "positive_lymph_nodes": X["pnodes"].to_numpy(dtype=int),
            "disease_setting": "early",
            "bone_metastasis_at_enrollment": False,
            "endocrine_therapy": X["horTh"].astype(str).to_numpy() == "yes",
            "time_days": y["time"].astype(float),
            "event": np.where(y["cens"], "bone_metastasis", "censored"),
        }
    )


def gbsg2_cohort() -> Cohort:
    """GBSG2 mapped to the contract and validated (:func:`gbsg2_patients`)."""
    return validate_cohort(gbsg2_patients())
