"""What serving needs of a logged model: the declared interface :class:`ServedModel`.

The service (:mod:`serving.service`, :mod:`serving.clinician`) holds the fitted
:class:`~training.artifact.risk_model.RiskModel` that the MLflow pyfunc wraps
(``unwrap_python_model().risk_model``) and reads exactly these members of it: the facts of
``GET /model``, what the draws of a request are applied for (``landmark_days``,
``include_marker``) and :meth:`predict_batch` on rows the contract already accepted. A member
serving starts to use must be declared here first: ``tests/artifact/test_served.py`` sweeps
serving's source and fails on any other member, and proves :class:`RiskModel` provides each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["ServedModel"]


@runtime_checkable
class ServedModel(Protocol):
    """The members of a loaded risk model that serving reads (:class:`RiskModel` satisfies it)."""

    #: Model family name (``GET /model``).
    family: str
    #: ``features`` then ``model``; serving reads the feature names of step 0 (``GET /model``).
    pipeline: Any
    #: Default horizons of an answer, in months.
    horizons_months: tuple[int, ...]
    #: Risk-score cut-offs of the low/intermediate/high groups.
    risk_cutoffs: tuple[float, float]
    #: Horizon up to which the training data had patients under follow-up.
    max_follow_up_months: float
    #: Landmarks of a landmark model (empty: predicts from enrollment).
    landmark_days: tuple[float, ...]
    #: Whether the osteocalcin marker is used (a clinical-only model ignores the draws).
    include_marker: bool
    #: Held-out metrics with their bounds; None when not recorded.
    performance: dict[str, float] | None
    #: The development population's facts; None in versions logged before contract 1.2.
    development: dict | None

    @property
    def inputs(self) -> tuple[str, ...]:
        """The contract columns the model reads."""
        ...

    @property
    def competing_risk(self) -> str:
        """How death is handled, in words."""
        ...

    def predict_batch(
        self, typed: Any, horizons_months: Sequence[float] | None = None, explain: bool = False
    ) -> Any:
        """Predictions for typed contract rows, as arrays (a ``PredictionBatch``)."""
        ...
