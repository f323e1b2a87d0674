"""The ``batch`` fixture: a folder with gating.xml, three FCS files and manifest.csv."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.features.cytometry.batch import DRAWS, GATING_XML, make_events, write_fcs


@pytest.fixture()
def batch(tmp_path: Path) -> Path:
    """A folder with gating.xml, three FCS files and manifest.csv (ALP on two rows)."""
    (tmp_path / "gating.xml").write_text(GATING_XML)
    (tmp_path / "fcs").mkdir()
    rows = []
    for pid, day, *counts in DRAWS:
        name = f"fcs/{pid}_{day}.fcs"
        write_fcs(tmp_path / name, make_events(*counts))
        rows.append({"patient_id": pid, "day": day, "fcs_file": name})
    manifest = pd.DataFrame(rows)
    manifest["alkaline_phosphatase_u_per_l"] = ["80.5", "", "120"]
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    return tmp_path
