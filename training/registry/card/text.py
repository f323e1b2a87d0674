"""Text of a model card: numbers with their intervals, "not available" for missing facts, and
Markdown tables and bullet lists."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

NOT_AVAILABLE = "not available"


def is_number(x: object) -> bool:
    """Whether ``x`` is a finite number (not a bool, not None)."""
    if isinstance(x, bool) or x is None:
        return False
    try:
        return math.isfinite(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def decimals(x: float) -> int:
    """Two decimals, three for small non-zero magnitudes (Brier scores, differences in C)."""
    return 3 if 0.0 < abs(x) < 0.1 else 2


def format_estimate(x: object, digits: int | None = None) -> str:
    """A number with two decimals (three below 0.1 in magnitude); "not available" if missing.

    Parameters
    ----------
    x : object
        The value; None, NaN and non-numbers are "not available".
    digits : int, optional
        Decimals; default by magnitude.

    Returns
    -------
    str
    """
    if not is_number(x):
        return NOT_AVAILABLE
    value = float(x)  # type: ignore[arg-type]
    return f"{value:.{decimals(value) if digits is None else digits}f}"


def format_ci(estimate: object, lo: object, hi: object, digits: int | None = None) -> str:
    """An estimate with its interval, e.g. ``"0.71 [0.66, 0.76]"``.

    All three numbers use the estimate's number of decimals. A missing estimate gives
    "not available"; a missing bound gives the estimate followed by
    ``[not available]``.

    Parameters
    ----------
    estimate, lo, hi : object
        Point estimate and interval bounds.
    digits : int, optional
        Decimals; default by the estimate's magnitude (see :func:`format_estimate`).

    Returns
    -------
    str
    """
    if not is_number(estimate):
        return NOT_AVAILABLE
    d = decimals(float(estimate)) if digits is None else digits  # type: ignore[arg-type]
    point = format_estimate(estimate, d)
    if not (is_number(lo) and is_number(hi)):
        return f"{point} [{NOT_AVAILABLE}]"
    return f"{point} [{format_estimate(lo, d)}, {format_estimate(hi, d)}]"


def or_not_available(value: object) -> str:
    """``value`` as text, "not available" when None, NaN or blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_AVAILABLE
    text = str(value).strip()
    return text if text else NOT_AVAILABLE


def count_text(value: object) -> str:
    """A count as an integer, "not available" when missing."""
    return str(int(value)) if is_number(value) else NOT_AVAILABLE  # type: ignore[arg-type]


def p_value_text(p: object) -> str:
    """``p = 0.012`` or ``p < 0.001``, "not available" when missing."""
    if not is_number(p):
        return NOT_AVAILABLE
    p = float(p)  # type: ignore[arg-type]
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _cell(value: object) -> str:
    """Table cell text: one line, pipes escaped."""
    return str(value).replace("\n", " ").replace("|", "\\|")


def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A Markdown table, one line per row."""
    lines = [
        "| " + " | ".join(_cell(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def md_bullets(items: Mapping[str, object]) -> list[str]:
    """Markdown bullets ``- **key**: value``, missing values "not available"."""
    return [f"- **{key}**: {or_not_available(value)}" for key, value in items.items()]


def ci_header(conf_level: float) -> str:
    """Column header of an interval, e.g. ``95 % CI``."""
    return f"{100 * conf_level:g} % CI"
