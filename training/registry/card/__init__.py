"""Model card in Markdown, organised along the TRIPOD+AI reporting items.

:func:`render_model_card` (``render.py``) turns a :class:`ModelCardFacts` (``facts.py``:
everything the card states, gathered by training) into Markdown for
``mlflow.log_text(card, "model_card.md")``; ``text.py`` formats numbers and Markdown. The
renderer computes nothing about the model: it formats facts. A fact that training did not
supply is written as "not available" instead of being guessed or failing the run.

Reference
---------
Collins GS, Moons KGM, Dhiman P, et al. (2024). TRIPOD+AI statement: updated guidance for
reporting clinical prediction models that use regression or machine learning methods.
BMJ 385:e078378.
"""

from training.registry.card.facts import (
    DEFAULT_INTENDED_USE,
    DEFAULT_INTENDED_USERS,
    ModelCardFacts,
)
from training.registry.card.render import SECTION_HEADINGS, render_model_card
from training.registry.card.text import NOT_AVAILABLE, format_ci, format_estimate

__all__ = [
    "NOT_AVAILABLE",
    "SECTION_HEADINGS",
    "DEFAULT_INTENDED_USE",
    "DEFAULT_INTENDED_USERS",
    "ModelCardFacts",
    "format_estimate",
    "format_ci",
    "render_model_card",
]
