"""The report as data: :class:`Part` (one section's HTML blocks, figures and numbers),
:class:`Study` (the parts in order) and the wording of estimates shared by every part."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import numpy as np
from matplotlib.figure import Figure

from features.schema import CONTRACT_VERSION
from training.study.report.config import StudyConfig
from training.study.stats.common import StudyError, json_ready
from training.study.stats.regression import Regression

__all__ = ["Part", "Study", "p_words", "ci_words", "hr_words", "regression_numbers"]

T = TypeVar("T")


@dataclass
class Part:
    """One section of the report: HTML blocks, figures (PNG bytes) and its numbers."""

    key: str
    title: str
    blocks: list[str] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)
    not_computed: dict[str, str] = field(default_factory=dict)

    def text(self, words: str) -> None:
        self.blocks.append(f"<p>{html.escape(words)}</p>")

    def heading(self, words: str) -> None:
        self.blocks.append(f"<h3>{html.escape(words)}</h3>")

    def table(self, rows: list[dict[str, object]], caption: str) -> None:
        if not rows:
            return
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r.values()) + "</tr>"
            for r in rows
        )
        self.blocks.append(
            f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )

    def linked_table(self, rows: list[dict[str, object]], caption: str) -> None:
        """:meth:`table` where a ``(text, anchor)`` cell links to ``#anchor`` (a section)."""
        if not rows:
            return
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows[0])

        def cell(v: object) -> str:
            if isinstance(v, tuple):
                text, anchor = v
                return f'<a href="#{html.escape(anchor)}">{html.escape(text)}</a>'
            return html.escape(_fmt(v))

        body = "".join(
            "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r.values()) + "</tr>" for r in rows
        )
        self.blocks.append(
            f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )

    def figure(self, name: str, fig: Figure, caption: str) -> None:
        buffer = io.BytesIO()
        # The bounding box grows to every label drawn: none is clipped at the edge.
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", pad_inches=0.1)
        png = buffer.getvalue()
        self.figures[name] = png
        data = base64.b64encode(png).decode("ascii")
        self.blocks.append(
            f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def missing(self, what: str, reason: str) -> None:
        self.not_computed[what] = reason
        self.blocks.append(
            f'<p class="na"><b>{html.escape(what)}: not computed.</b> {html.escape(reason)}</p>'
        )

    def attempt(self, what: str, fn: Callable[[], T]) -> T | None:
        """Run one analysis; on :class:`StudyError` record why it could not be computed."""
        try:
            return fn()
        except StudyError as err:
            self.missing(what, str(err))
            return None


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | np.floating):
        v = float(value)
        if not math.isfinite(v):
            return "-"
        if v != 0 and (abs(v) < 0.001 or abs(v) >= 1e5):
            return f"{v:.3g}"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(value)


def p_words(p: float) -> str:
    """A p value in words (``p < 0.001`` or ``p = 0.123``)."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def ci_words(est: float, lo: float, hi: float, digits: int = 2) -> str:
    """An estimate with its 95 % interval in words."""
    return f"{est:.{digits}f} (95 % CI {lo:.{digits}f}-{hi:.{digits}f})"


def hr_words(fit: Regression, j: int) -> str:
    """Hazard ratio of term ``j`` with its interval, in words."""
    return ci_words(float(np.exp(fit.coef[j])), float(np.exp(fit.lo[j])), float(np.exp(fit.hi[j])))


@dataclass
class Study:
    """The computed report: the config and the parts in order."""

    config: StudyConfig
    parts: list[Part]

    @property
    def numbers(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "contract_version": CONTRACT_VERSION,
            "config": asdict(self.config),
        }
        for part in self.parts:
            out[part.key] = {**part.numbers, "not_computed": dict(part.not_computed)}
        return json_ready(out)  # type: ignore[return-value]


def regression_numbers(fit: Regression) -> dict[str, Any]:
    """A fit's numbers for study.json: each term's estimate, and the counts."""
    return {
        "terms": {name: fit.term(name) for name in fit.terms},
        "n": fit.n,
        "n_dropped": fit.n_dropped,
        "n_events": fit.n_events,
        **fit.extra,
    }
