"""What the served model card says that only the serving side knows, and the card as HTML.

A card is written inside the model when it is logged, before the registry gives it a version,
so it says ``Version: not available``; cards of earlier releases also name the contract version
of their training tables and, for a landmark model, the enrollment-only intended use.
:func:`served_card` states the served facts instead; :func:`card_html` renders the Markdown as
a readable page (``GET /model/card`` from a browser).
"""

from __future__ import annotations

import html
import re

from features.schema import DEFAULT_HORIZONS_MONTHS

_HORIZONS = f"{', '.join(map(str, DEFAULT_HORIZONS_MONTHS[:-1]))} and {DEFAULT_HORIZONS_MONTHS[-1]}"
DEFAULT_INTENDED_USE = (
    "Research use: estimate, for a patient with breast cancer who is free of bone metastasis at "
    f"enrollment, the cumulative incidence of bone metastasis by {_HORIZONS} "
    "months with death as a competing event, from clinical covariates and circulating "
    "osteocalcin-positive cells at enrollment; and study whether the marker adds to the "
    "clinical covariates."
)
#: The intended use of a landmark model (``landmark_days`` set): it predicts from any day.
LANDMARK_INTENDED_USE = (
    "Research use: estimate, for a patient with breast cancer who is free of bone metastasis on "
    "the day of the prediction (any day since enrollment, the prediction_day), the cumulative "
    f"incidence of bone metastasis over the following {_HORIZONS} months with death before "
    "bone metastasis as a competing event, from clinical covariates and the circulating "
    "osteocalcin-positive cells of the draws known by then (the latest value and its "
    "trajectory); and study whether the marker adds to the clinical covariates."
)


def _bullet(card: str, key: str, value: str) -> str:
    pattern = re.compile(rf"^- \*\*{re.escape(key)}\*\*: .*$", re.MULTILINE)
    return pattern.sub(lambda _: f"- **{key}**: {value}", card, count=1)


def served_card(card: str, version: str, contract: str, landmark: bool) -> str:
    """The card with the served version, the contract version of the answers and, for a
    landmark model, the landmark intended use."""
    card = _bullet(card, "Version", version)
    card = _bullet(card, "Data contract version", contract)
    if landmark:
        card = card.replace(DEFAULT_INTENDED_USE, LANDMARK_INTENDED_USE)
    lines = card.split("\n", 1)
    if lines and lines[0].startswith("# Model card: ") and " version " not in lines[0]:
        title = re.sub(r"^# Model card: (\S+)", rf"# Model card: \1 version {version}", lines[0])
        card = "\n".join([title, *lines[1:]])
    return card


def card_html(card: str, title: str) -> str:
    """The Markdown card as a self-contained HTML page (no script, no external resource)."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(card)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;"
        "color:#1a1a1a}table{border-collapse:collapse;display:block;overflow-x:auto}"
        "th,td{border:1px solid #bbb;padding:.25rem .5rem;text-align:left}"
        "img{max-width:100%}code{font-size:90%}</style></head><body><main>"
        f"{body}</main></body></html>\n"
    )
