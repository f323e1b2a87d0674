"""Two engines' predictions of the same patients compared (local engine vs Spark)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def same_predictions(local: pd.DataFrame, spark: pd.DataFrame) -> None:
    assert list(spark.columns) == list(local.columns)
    assert len(spark) == len(local)
    local = local.sort_values("patient_id").reset_index(drop=True)
    spark = spark.sort_values("patient_id").reset_index(drop=True)
    for column in local.columns:
        left, right = local[column], spark[column]
        if column in ("patient_id", "risk_group", "warnings"):
            assert left.fillna("").tolist() == right.fillna("").astype(str).tolist(), column
        else:
            np.testing.assert_allclose(
                right.to_numpy(dtype=float), left.to_numpy(dtype=float), rtol=1e-12, atol=1e-15
            )
