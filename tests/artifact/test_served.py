"""The declared interface between serving and a logged model (issue 21, item 4):
:class:`training.artifact.served.ServedModel` lists exactly the members of the RiskModel that
serving reads, and :class:`RiskModel` (as logged now and by earlier releases) provides each."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import lzma
from pathlib import Path

import pytest

from tests.fixtures import MODELS_V0_1_0
from training.artifact.risk_model import RiskModel
from training.artifact.served import ServedModel

ROOT = Path(__file__).parents[2]
SERVING = ROOT / "serving"
FIXTURE = MODELS_V0_1_0
#: How serving names the loaded RiskModel: ``state.risk_model``, a ``risk_model`` variable or
#: parameter, or any name annotated ``ServedModel``.
MODEL_NAME = "risk_model"


def declared() -> dict[str, str]:
    """Protocol member -> kind (``attribute``, ``property``, ``method``)."""
    kinds = {name: "attribute" for name in ServedModel.__annotations__}
    for name, value in vars(ServedModel).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property):
            kinds[name] = "property"
        elif inspect.isfunction(value):
            kinds[name] = "method"
    return kinds


def _annotated_served(node: ast.AST) -> bool:
    return isinstance(node, ast.Name | ast.Constant) and "ServedModel" in ast.unparse(node)


def members_used(source: str) -> set[str]:
    """Members read of the model object in one module's source.

    The model object is ``<anything>.risk_model``, a name ``risk_model``, a name annotated
    ``ServedModel`` or a name assigned one of these; a member is ``<model>.<name>`` or
    ``getattr``/``hasattr(<model>, "<name>")``.
    """
    tree = ast.parse(source)
    names = {MODEL_NAME}
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation and _annotated_served(node.annotation):
            names.add(node.arg)
        if isinstance(node, ast.AnnAssign) and _annotated_served(node.annotation):
            names.add(ast.unparse(node.target))

    def is_model(node: ast.AST) -> bool:
        return (isinstance(node, ast.Name) and node.id in names) or (
            isinstance(node, ast.Attribute) and node.attr == MODEL_NAME
        )

    for node in ast.walk(tree):  # aliases: x = state.risk_model
        if isinstance(node, ast.Assign) and is_model(node.value):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_model(node.value):
            used.add(node.attr)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr")
            and len(node.args) >= 2
            and is_model(node.args[0])
            and isinstance(node.args[1], ast.Constant)
        ):
            used.add(node.args[1].value)
    return used


def serving_uses() -> dict[str, set[str]]:
    """Member -> the serving modules that read it."""
    out: dict[str, set[str]] = {}
    for path in sorted(SERVING.rglob("*.py")):
        for member in members_used(path.read_text(encoding="utf-8")):
            out.setdefault(member, set()).add(str(path.relative_to(ROOT)))
    return out


def test_the_sweep_sees_what_it_sweeps():
    source = (
        "def f(state, m: ServedModel):\n"
        "    a = state.risk_model\n"
        "    a.family; m.inputs; getattr(state.risk_model, 'development', None)\n"
        "    risk_model: ServedModel = load()\n"
        "    risk_model.predict_batch(rows)\n"
        "    other.family_not_model\n"
    )
    assert members_used(source) == {"family", "inputs", "development", "predict_batch"}


def test_serving_reads_exactly_the_declared_members():
    used = serving_uses()
    undeclared = {m: sorted(w) for m, w in used.items() if m not in declared()}
    assert not undeclared, (
        f"serving reads members of the model that ServedModel does not declare: {undeclared} "
        "(declare them in training/artifact/served.py)"
    )
    unused = sorted(set(declared()) - set(used))
    assert not unused, f"ServedModel declares members serving never reads: {unused}"


def test_risk_model_provides_every_member_with_its_kind():
    fields = {f.name for f in dataclasses.fields(RiskModel)}
    for name, kind in declared().items():
        found = inspect.getattr_static(RiskModel, name, None)
        if kind == "attribute":
            assert name in fields, f"RiskModel has no field {name}"
        elif kind == "property":
            assert isinstance(found, property), f"RiskModel.{name} is not a property"
        else:
            assert inspect.isfunction(found), f"RiskModel.{name} is not a method"
            wanted = list(inspect.signature(getattr(ServedModel, name)).parameters)
            given = list(inspect.signature(found).parameters)
            assert given[: len(wanted)] == wanted, f"RiskModel.{name}{given} != {wanted}"


@pytest.mark.parametrize("name", ["cox_ridge", "cox_ridge_landmark"])
def test_models_logged_by_earlier_releases_satisfy_it(name):
    import joblib

    model = joblib.load(io.BytesIO(lzma.decompress((FIXTURE / f"{name}.joblib.xz").read_bytes())))
    assert isinstance(model, ServedModel)
    for member in declared():
        getattr(model, member)  # every attribute readable (dataclass defaults for old pickles)
