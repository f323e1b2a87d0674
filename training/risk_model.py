"""Moved to :mod:`training.artifact.risk_model` (0.2). Kept so models logged by 0.1 load: their
pickles (or their
``pyfunc_model.py``) name ``training.risk_model``. Nothing new imports this module."""

from training.artifact.risk_model import RiskModel  # noqa: F401
