"""Moved to :mod:`training.artifact.adapter` (0.2). Kept so models logged by 0.1 load: their
pickles (or their
``pyfunc_model.py``) name ``training.serving_adapter``. Nothing new imports this module."""

from training.artifact.adapter import predict_records_frame  # noqa: F401
