"""Model families: the competing-risk combination, cause-specific and IPCW estimators, the
stacked ensemble and the one registry of family names.

Before 0.2 this package was the module ``training.models``; models logged then pickle
``training.models.IPCWHorizonClassifier``. :func:`__getattr__` resolves those names lazily
(no import at package import), so such models keep loading.
"""

from __future__ import annotations

from importlib import import_module

#: Names pickled at the 0.1 module path -> the module that defines them now.
_MOVED = {"IPCWHorizonClassifier": "training.models.competing"}


def __getattr__(name: str):
    if name in _MOVED:
        return getattr(import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
