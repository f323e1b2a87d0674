"""The ``spark-submit`` entry point of ``bonemet predict --engine spark``.

``spark-submit [options] training/scoring/spark_submit.py --patients P ... --out DIR`` runs the
command line's ``predict`` with the Spark engine (docs/scoring-at-scale.md). A module of its
own so that the engine (:mod:`training.scoring.spark`) does not import the command line.
"""

from __future__ import annotations

import sys

from training.cli import app

if __name__ == "__main__":  # pragma: no cover - run by spark-submit
    app(["predict", "--engine", "spark", *sys.argv[1:]])
