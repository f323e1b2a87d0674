"""The MLflow runs: each command that measures or fits something logs one run here.

- ``train``: ``bonemet train`` (fit every candidate family, log each as a child run with its
  figures, tables and model card, register it, choose the challenger); ``log_model`` logs a
  fitted model as an MLflow pyfunc, ``card_facts`` gathers the model card's facts of a family.
- ``evaluate``: ``bonemet evaluate`` (a registered model measured on a cohort with outcomes);
  ``validate``: ``bonemet evaluate --by COLUMN`` (per-site metrics, pooled evidence, report).
- ``cytometry``: ``bonemet cytometry`` (a batch of FCS files gated into the marker).
- ``monitor``: ``bonemet monitor`` (marker, outcomes and predictions watched over time).
- ``study``: ``bonemet study`` (the osteocalcin study report).
- ``logged``: what every run logs alike (name, dataset, tables, rounded metrics).

A new run (a new command that logs to MLflow) goes here; what it decides about versions and
aliases goes to :mod:`training.registry`, where it stores to :mod:`training.store`.
"""
