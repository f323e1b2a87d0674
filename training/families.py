"""Moved to :mod:`training.models.cause_specific` and :mod:`training.models.ipcw` (0.2). Kept so
models logged by 0.1 load: their pickles (or their ``pyfunc_model.py``) name
``training.families``. Nothing new imports this module."""

from training.models.cause_specific import CauseSpecificHazards  # noqa: F401
from training.models.ipcw import XGBIPCWClassifier  # noqa: F401
