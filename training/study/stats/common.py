"""What every statistic of the study shares: its error, its input checks, JSON conversion."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
from scipy import stats

__all__ = ["StudyError", "json_ready", "normal_quantile", "finite_values"]


class StudyError(ValueError):
    """A statistic that cannot be computed on these data; the message says why."""


def json_ready(value: object) -> object:
    """Dataclasses, numpy values and NaN turned into plain JSON values (NaN -> None)."""
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)  # type: ignore[call-overload]
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_ready(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def normal_quantile(conf_level: float) -> float:
    """The two-sided standard normal critical value of a ``conf_level`` interval (1.96 at 95 %)."""
    if not 0.0 < conf_level < 1.0:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level}")
    return float(stats.norm.isf((1.0 - conf_level) / 2.0))


def finite_values(values: object, name: str) -> np.ndarray:
    """The finite values of a 1-D array (NaN and infinities dropped); ``name`` for the error."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr[np.isfinite(arr)]
