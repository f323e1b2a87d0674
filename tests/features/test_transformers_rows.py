"""The serving hot path's feature code equals the general one on many random rows.

``ClinicalFeatures.transform`` on column arrays (the request's typed records) reuses each input's
missingness mask and :func:`features.typed_rows.is_missing` checks an object column's types
in C; both must answer bitwise what the DataFrame path (pandas' own ``isna``) answers.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

from features.contract import check_patient_records
from features.transformers import ClinicalFeatures, make_feature_pipeline, transform_rows
from features.typed_rows import equals, is_missing

CATEGORIES = {
    "menopausal_status": ["pre", "post", None],
    "er_status": ["positive", "negative", None],
    "pr_status": ["positive", "negative", None],
    "her2_status": ["positive", "negative", None],
    "disease_setting": ["early", "metastatic", None],
    "bone_targeted_therapy": ["none", "bisphosphonate", "denosumab", None],
}
NUMBERS = {
    "age_years": [18, 45, 71.5, 100, None],
    "ki67_percent": [0, 12.5, 80, None],
    "histologic_grade": [1, 2, 3, None],
    "tumor_size_mm": [0.5, 20, 21, 48.5, None],
    "positive_lymph_nodes": [0, 1, 3, 4, 12, None],
    "alkaline_phosphatase_u_per_l": [40, 85, 240, None],
    "endocrine_therapy": [True, False, None],
    "chemotherapy": [True, False, None],
}


def _row(rng: random.Random, k: int) -> dict[str, object]:
    row: dict[str, object] = {"patient_id": f"P{k}", "bone_metastasis_at_enrollment": False}
    row |= {c: rng.choice(v) for c, v in CATEGORIES.items()}
    row |= {c: rng.choice(v) for c, v in NUMBERS.items()}
    if row["disease_setting"] == "metastatic":
        row["visceral_metastasis"] = rng.choice([True, False, None])
    events, pbmc = rng.choice([(None, None), (0, 100_000), (45, 100_000), (120, 150_000)])
    row |= {"oc_positive_events": events, "pbmc_events": pbmc}
    row["oc_positive_percent"] = rng.choice([None, 0.0, 0.045]) if events is None else None
    return row


def _typed(rows: list[dict[str, object]]) -> dict[str, np.ndarray]:
    typed, violations = check_patient_records(rows, validated=True)
    assert not violations
    return typed


def test_transform_on_column_arrays_equals_the_frame_path_bitwise() -> None:
    rng = random.Random(24)
    train = _typed([_row(rng, k) for k in range(200)])
    for flexible in (None, 4):
        pipeline = make_feature_pipeline(flexible_df=flexible).fit(pd.DataFrame(train))
        for trial in range(150):
            rows = _typed([_row(rng, 1000 + trial * 5 + j) for j in range(1 + trial % 4)])
            fast = transform_rows(pipeline, rows)
            frame = transform_rows(pipeline, pd.DataFrame(rows))
            assert fast.tobytes() == frame.tobytes(), rows
            np.testing.assert_allclose(
                fast, pipeline.transform(pd.DataFrame(rows)), rtol=1e-12, atol=1e-12
            )


def test_category_features_are_the_unmasked_equals() -> None:
    """An independent reference for the masks reused by ``ClinicalFeatures.transform``."""
    rng = random.Random(5)
    train = _typed([_row(rng, k) for k in range(200)])
    clinical = ClinicalFeatures().fit(pd.DataFrame(train))
    names = list(clinical.get_feature_names_out())
    features = {
        "er_positive": ("er_status", "positive"),
        "pr_positive": ("pr_status", "positive"),
        "her2_positive": ("her2_status", "positive"),
        "metastatic": ("disease_setting", "metastatic"),
        "postmenopausal": ("menopausal_status", "post"),
    }
    for trial in range(200):
        rows = _typed([_row(rng, 1000 + trial * 5 + j) for j in range(1 + trial % 4)])
        out = clinical.transform(rows)
        for name, (column, value) in features.items():
            expected = equals(rows, column, value)
            assert out[:, names.index(name)].tobytes() == expected.tobytes(), name
        post = equals(rows, "menopausal_status", "post")
        btt = 1.0 - equals(rows, "bone_targeted_therapy", "none")
        assert out[:, names.index("btt_postmenopausal")].tobytes() == (btt * post).tobytes()
        for column in clinical.indicator_inputs_:
            flag = out[:, names.index(f"missing_{column}")]
            expected = is_missing(rows[column])
            if column == "visceral_metastasis":
                expected &= rows["disease_setting"] == "metastatic"
            assert flag.tolist() == expected.astype(float).tolist(), column


def test_is_missing_on_object_columns_is_pandas_isna() -> None:
    rng = random.Random(7)
    pool = ["a", "", None, float("nan"), pd.NA, 3, 2.5, True, np.float64("nan"), b"x"]
    for _ in range(2000):
        values = np.empty(rng.randint(0, 5), dtype=object)
        values[:] = [rng.choice(pool) for _ in range(len(values))]
        assert is_missing(values).tolist() == pd.isna(values).tolist(), values
        if any(v is pd.NA for v in values):
            continue  # == on pd.NA raises, with or without the mask
        frame = {"c": values}
        given = equals(frame, "c", "a", is_missing(values))
        assert given.tobytes() == equals(frame, "c", "a").tobytes()
