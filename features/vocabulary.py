"""The names training and serving share, declared once: the outcome, the horizons, the output
columns, the registered model and the service's environment.

Everything here is a plain constant or a pure function of one, so any layer may import it
(``features`` imports nothing of ``training`` or ``serving``; both read it).

- **Cause codes** of the competing-risks target (``y["cause"]``) and of the simulator's event:
  :data:`CENSORED` 0, :data:`BONE_METASTASIS` 1, :data:`DEATH` 2 (death without bone metastasis);
  :data:`CAUSE_CODES` maps the contract's ``event`` words onto them.
- **Time**: a month is :data:`DAYS_PER_MONTH` = 365.25 / 12 days.
- **Horizons** (months from the prediction day): each within :data:`MIN_HORIZON_MONTHS` -
  :data:`MAX_HORIZON_MONTHS`; :data:`DEFAULT_HORIZONS_MONTHS` reported unless asked otherwise,
  :data:`HEADLINE_HORIZON_MONTHS` for the headline metrics and the risk groups,
  :data:`SELECTION_HORIZONS_MONTHS` for model selection and the promotion gates.
- **Output columns** ``p_bone_met_<h>m`` and ``p_death_<h>m``: :func:`probability_column` and
  :data:`PROBABILITY_COLUMN` (the pattern that reads them back).
- **The registered model** :data:`MODEL_NAME`, and the service's environment variables set by
  ``bonemet serve`` and read by ``serving.settings`` (:data:`ENV_MODEL_TAG`,
  :data:`ENV_FOLLOW_ALIAS`, :data:`ENV_WORKERS` bounded by :data:`MAX_WORKERS`).
"""

from __future__ import annotations

import re

__all__ = [
    "CENSORED",
    "BONE_METASTASIS",
    "DEATH",
    "CAUSE_CODES",
    "DAYS_PER_YEAR",
    "DAYS_PER_MONTH",
    "MIN_HORIZON_MONTHS",
    "MAX_HORIZON_MONTHS",
    "DEFAULT_HORIZONS_MONTHS",
    "HEADLINE_HORIZON_MONTHS",
    "SELECTION_HORIZONS_MONTHS",
    "PROBABILITY_COLUMN",
    "probability_column",
    "horizons_in_range",
    "MODEL_NAME",
    "ENV_MODEL_TAG",
    "ENV_FOLLOW_ALIAS",
    "ENV_WORKERS",
    "MAX_WORKERS",
]

#: Cause codes of the target's ``cause`` field (and the simulator's event array).
CENSORED, BONE_METASTASIS, DEATH = 0, 1, 2
#: The contract's ``event`` words -> cause codes.
CAUSE_CODES = {"censored": CENSORED, "bone_metastasis": BONE_METASTASIS, "death": DEATH}

DAYS_PER_YEAR = 365.25
#: A month of every horizon, in days.
DAYS_PER_MONTH = DAYS_PER_YEAR / 12

#: Bounds of any horizon (months), in requests, configurations and the pyfunc's parameter.
MIN_HORIZON_MONTHS, MAX_HORIZON_MONTHS = 1, 120
#: Horizons (months from the prediction day) of the probabilities the API, the batch output, the
#: simulator's truth and the model card report unless asked for others.
DEFAULT_HORIZONS_MONTHS: tuple[int, ...] = (12, 24, 36, 60)
#: The horizon of the headline metrics, of the classifiers' risk score and of the risk groups.
HEADLINE_HORIZON_MONTHS = 24
#: Horizons of the selection metric (mean IPCW Brier score), the promotion gates and the
#: subgroup validation.
SELECTION_HORIZONS_MONTHS: tuple[int, ...] = (12, 24, 36)

#: Reads an output column name back: group 1 the event (``bone_met`` or ``death``), group 2
#: the horizon in months.
PROBABILITY_COLUMN = re.compile(r"^p_(bone_met|death)_(\d+(?:\.\d+)?)m$")


def probability_column(months: float, event: str = "bone_met") -> str:
    """Name of the output column for a horizon, e.g. ``p_bone_met_24m`` (``event="death"``:
    ``p_death_24m``)."""
    return f"p_{event}_{float(months):g}m"


def horizons_in_range(horizons) -> bool:
    """Whether ``horizons`` is non-empty and each is within the bounds (1-120 months)."""
    values = list(horizons)
    return bool(values) and all(MIN_HORIZON_MONTHS <= h <= MAX_HORIZON_MONTHS for h in values)


#: The registered model every training adds a version to.
MODEL_NAME = "bone-metastasis-risk"
#: The service's environment, written by ``bonemet serve`` and read by ``serving.settings``.
ENV_MODEL_TAG = "BONEMET_BENTO_MODEL"
ENV_FOLLOW_ALIAS = "BONEMET_FOLLOW_ALIAS"
ENV_WORKERS = "BONEMET_WORKERS"
#: More worker processes than this only add memory (each holds the model) on any machine the
#: service is meant for.
MAX_WORKERS = 16
