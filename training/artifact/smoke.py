"""The one smoke check of a loaded model version: it must answer synthetic patients.

Promotion (:func:`training.registry.promotion.smoke_check`), ``bonemet serve``
(:func:`training.registry.bento.smoke_load`) and the service, before it serves a version its
alias moved to, all load the version their own way and then call :func:`smoke_check`: the
same patients (:func:`features.examples.synthetic_patient_rows`, built from the contract,
nobody's record) and the same rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from features.examples import synthetic_patient_rows
from features.vocabulary import PROBABILITY_COLUMN

__all__ = ["SmokeCheckError", "smoke_check"]


class SmokeCheckError(ValueError):
    """A loaded version does not answer the synthetic patients as a risk model must."""


def smoke_check(model: Any) -> None:
    """Predict the synthetic contract rows with a loaded pyfunc ``model``; raise unless every
    row gets a finite risk score and probabilities of bone metastasis in [0, 1].

    Parameters
    ----------
    model : object
        A loaded MLflow pyfunc model (``mlflow.pyfunc.load_model``, ``bentoml.mlflow``).

    Raises
    ------
    SmokeCheckError
        Saying what failed: the prediction raised (its type and first line), or which rule the
        answer breaks.
    """
    rows = synthetic_patient_rows()
    try:
        out = model.predict(rows)
    except Exception as err:  # noqa: BLE001 - whatever the loaded code raises, it cannot serve
        lines = str(err).strip().splitlines()
        first = f"{type(err).__name__}: {lines[0][:200]}" if lines else type(err).__name__
        raise SmokeCheckError(f"loads but fails to predict a synthetic case ({first})") from err
    columns = [str(c) for c in getattr(out, "columns", ())]
    probabilities = [
        c for c in columns if (m := PROBABILITY_COLUMN.match(c)) and m.group(1) == "bone_met"
    ]
    if "risk_score" not in columns or not probabilities or len(out) != len(rows):
        raise SmokeCheckError(
            f"answers {len(rows)} synthetic patients without a row each holding a risk score "
            "and probabilities of bone metastasis"
        )
    values = out[["risk_score", *probabilities]].to_numpy(dtype=float)
    if not (np.isfinite(values).all() and ((values[:, 1:] >= 0) & (values[:, 1:] <= 1)).all()):
        raise SmokeCheckError(
            "answers the synthetic case without a finite risk score and probabilities in "
            "[0, 1] for every row"
        )
