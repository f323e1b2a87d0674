"""Monitoring after go-live: the marker per lab, instrument and lot, and the model.

Pure statistics (no MLflow, no files): :mod:`~training.monitoring.rules` (every alarm's test
and false-alarm rate, declared once), :mod:`~training.monitoring.inputs` (the monitor's
inputs beyond the contract: ``enrollment_date`` and the ``qc`` table),
:mod:`~training.monitoring.draws` (one row per draw with where and when it was measured),
:mod:`~training.monitoring.groups` (a group against its reference, Holm-corrected, and the day
a shift began), :mod:`~training.monitoring.westgard` (Levey-Jennings and Westgard rules),
:mod:`~training.monitoring.outcomes` (observed/expected incidence, calibration in windows),
:mod:`~training.monitoring.cusum` (the risk-adjusted CUSUM and its control limit),
:mod:`~training.monitoring.curves` (predicted incidences to cause-specific hazards) and
:mod:`~training.monitoring.monitor` (everything together: :func:`run_checks`). The MLflow run
is :mod:`training.runs.monitor`, the command ``bonemet monitor``
(``docs/monitoring.md``).
"""
