"""Flow cytometry: FCS files and a GatingML 2.0 strategy to ``oc_measurements`` (FlowKit).

``gating`` checks and gates a batch of files and records their provenance; ``simulate_fcs``
writes FCS files and a strategy that reproduce a simulated cohort's counts; ``figures`` draws
the two gates on a file's events for quality control.
"""

from features.cytometry.gating import (
    DEFAULT_MIN_PBMC_EVENTS,
    KEPT_KEYWORDS,
    CytometryError,
    CytometryResult,
    GateRef,
    Problem,
    compare_counts,
    gate_batch,
    write_result,
)

__all__ = [
    "DEFAULT_MIN_PBMC_EVENTS",
    "KEPT_KEYWORDS",
    "CytometryError",
    "CytometryResult",
    "GateRef",
    "Problem",
    "compare_counts",
    "gate_batch",
    "write_result",
]
