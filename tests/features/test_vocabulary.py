"""The outcome vocabulary is declared once (features.vocabulary), not copied (issue 21, item 2)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from features import vocabulary as v

ROOT = Path(__file__).resolve().parents[2]

# A copy of a fact the vocabulary declares: a cause compared with a literal code, the month
# written out, an output column or the model name spelled, a shared variable name quoted.
COPIES = {
    "cause code literal": re.compile(r"""(\bcause|\["cause"\])(\[\w+\])? [!=]= [0-2]\b(?!\.)"""),
    "days per month": re.compile(r"365\.25 ?/ ?12"),
    "output column": re.compile(r"""f["']p_(bone_met|death)_\{"""),
    "model name": re.compile(r"""["'](models:/)?bone-metastasis-risk[@:/"']"""),
    "horizon bound": re.compile(r"not 1 <= \w+ <= 120|le=120\b"),
    "variable name": re.compile(r"""["']BONEMET_(WORKERS|BENTO_MODEL|FOLLOW_ALIAS)["']"""),
}
# The CDS Hooks service id happens to read like the model name; it names the hook, not the model.
# The model card's prose states the month for its reader.
ALLOWED = {
    ("model name", "serving/cds/hooks.py"),
    ("model name", "serving/gateway.py"),
    ("days per month", "training/registry/card/render.py"),
}


def _code_lines(text: str):
    """(number, line) of the lines of a module that are code: not comments, not docstrings."""
    docs = set()
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docs.update(range(value.lineno, value.end_lineno + 1))
    for n, line in enumerate(text.splitlines(), 1):
        if n not in docs and not line.lstrip().startswith("#"):
            yield n, line


def test_no_module_copies_a_fact_of_the_vocabulary():
    found = [
        f"{name}: {path.relative_to(ROOT)}:{n}: {line.strip()}"
        for package in ("features", "training", "serving")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name != "vocabulary.py"
        for n, line in _code_lines(path.read_text())
        for name, pattern in COPIES.items()
        if (name, path.relative_to(ROOT).as_posix()) not in ALLOWED and pattern.search(line)
    ]
    assert found == []


def test_the_patterns_catch_the_copies_they_name():
    examples = {
        "cause code literal": 'n = int(np.sum(y["cause"] == 1))',
        "days per month": "t = h * 365.25 / 12",
        "output column": 'col = f"p_bone_met_{h:g}m"',
        "model name": 'uri = "models:/bone-metastasis-risk@champion"',
        "horizon bound": "if any(not 1 <= h <= 120 for h in hs):",
        "variable name": 'env.get("BONEMET_WORKERS")',
    }
    assert set(examples) == set(COPIES)
    for name, line in examples.items():
        assert COPIES[name].search(line), name


@pytest.mark.parametrize(("months", "event"), [(24, "bone_met"), (12.5, "death"), (120.0, "death")])
def test_output_columns_read_back(months, event):
    match = v.PROBABILITY_COLUMN.match(v.probability_column(months, event))
    assert match and match.group(1) == event and float(match.group(2)) == months


def test_horizon_bounds():
    assert v.horizons_in_range([1, 24, 120]) and v.horizons_in_range(v.DEFAULT_HORIZONS_MONTHS)
    assert not any(v.horizons_in_range(h) for h in ([], [0.5], [24, 121]))
    assert set(v.SELECTION_HORIZONS_MONTHS) <= set(v.DEFAULT_HORIZONS_MONTHS)
    assert v.HEADLINE_HORIZON_MONTHS in v.SELECTION_HORIZONS_MONTHS


def test_the_simulator_writes_the_events_by_the_same_codes():
    from features.simulate import simulate_cohort
    from training.models.competing import make_target

    patients = simulate_cohort(300, 3).patients
    known = patients["event"].notna().to_numpy()
    event = patients["event"].to_numpy(dtype=object)[known]
    y = make_target(event, patients["time_days"].to_numpy(dtype=float)[known])
    assert set(event) == set(v.CAUSE_CODES)
    for word, code in v.CAUSE_CODES.items():
        assert (y["cause"][event == word] == code).all()
