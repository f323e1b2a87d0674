"""The ``spark-submit`` entry point of ``bonemet predict --engine spark``.

``spark-submit [options] training/cli/spark_submit.py --patients P ... --out DIR`` runs the
command line's ``predict`` with the Spark engine (docs/scoring-at-scale.md). It lives with the
command line so that the engine (:mod:`training.scoring.spark`) does not import it.
"""

from __future__ import annotations

import sys

from training.cli import app

if __name__ == "__main__":  # pragma: no cover - run by spark-submit
    app(["predict", "--engine", "spark", *sys.argv[1:]])
