"""The study as one self-contained HTML document (figures embedded, no external resources)."""

from __future__ import annotations

import html
import json
from dataclasses import asdict

from features.schema import CONTRACT_VERSION
from training.study.report.parts import Study

__all__ = ["render_html"]


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}caption{text-align:left;
font-style:italic;padding:.3em 0;caption-side:bottom}td,th{border:1px solid #ccc;padding:.25em .5em}
th{background:#f3f3f3}figure{margin:1.5em 0}img{max-width:100%}figcaption{font-size:.9em;
color:#444}p.na{background:#fff4e5;border-left:4px solid #D55E00;padding:.4em .8em}
"""


def render_html(study: Study, source: str = "") -> str:
    """The whole report as one HTML document (figures embedded, no external resources)."""
    parts_html = []
    toc = []
    for part in study.parts:
        toc.append(f'<li><a href="#{part.key}">{html.escape(part.title)}</a></li>')
        parts_html.append(
            f'<section id="{part.key}"><h2>{html.escape(part.title)}</h2>'
            f"{''.join(part.blocks)}</section>"
        )
    toc.append('<li><a href="#settings">Appendix: settings</a></li>')
    settings = "".join(
        f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(json.dumps(v))}</code></td></tr>"
        for k, v in asdict(study.config).items()
    )
    parts_html.append(
        '<section id="settings"><h2>Appendix: settings</h2>'
        "<table><caption>The report's settings (training.study.report.config.StudyConfig)."
        f"</caption><tbody>{settings}</tbody></table></section>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>Osteocalcin-positive cells and bone metastasis: study report</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Circulating osteocalcin-positive cells and bone metastasis: study report</h1>"
        f"<p>Cohort: {html.escape(source or 'in memory')}; data contract v{CONTRACT_VERSION}. "
        "Research software, not for patient care.</p>"
        f"<ul>{''.join(toc)}</ul>{''.join(parts_html)}</body></html>"
    )
