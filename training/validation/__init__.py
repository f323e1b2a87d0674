"""Multi-site external validation (docs/validation.md): pure statistics, no MLflow.

:mod:`~training.validation.groups` (per-group metrics from :mod:`training.evaluation`, the flag),
:mod:`~training.validation.meta` (random-effects meta-analysis: REML or DL, Hartung-Knapp,
prediction interval; checked against R's metafor), :mod:`~training.validation.pooling` (a
per-group table pooled metric by metric) and :mod:`~training.validation.report` (forest plots,
the HTML report). The MLflow run is :mod:`training.runs.validate`.
"""
