"""The GatingML 2.0 strategy (FlowKit): reading it, naming its gates, the channels it needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from features.cytometry.problems import (
    RULE_GATE_AMBIGUOUS,
    RULE_GATE_UNKNOWN,
    RULE_GATING_UNREADABLE,
    RULE_OC_OUTSIDE_PBMC,
    CytometryError,
    Problem,
)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class GateRef:
    """A gate of the strategy: its id and the ids of its ancestors (``root`` first)."""

    name: str
    path: tuple[str, ...]

    def __str__(self) -> str:
        return "/".join((*self.path[1:], self.name))

    @property
    def full_path(self) -> tuple[str, ...]:
        return (*self.path, self.name)


def load_strategy(gating_file: Path):
    """Parse a GatingML 2.0 file with FlowKit; raise :class:`CytometryError` if it cannot."""
    import flowkit as fk

    path = Path(gating_file)
    if not path.is_file():
        problem = "no such file" if not path.exists() else "is a directory"
        raise CytometryError([Problem(RULE_GATING_UNREADABLE.format(problem=f"{path}: {problem}"))])
    try:
        return fk.parse_gating_xml(str(path))
    except (ValueError, KeyError, TypeError, AttributeError, OSError, SyntaxError) as exc:
        # lxml's XMLSyntaxError derives from SyntaxError; FlowKit raises ValueError for
        # documents that are not GatingML and KeyError/AttributeError for broken references.
        problem = f"{path}: {type(exc).__name__}: {first_line(exc)}"
        raise CytometryError([Problem(RULE_GATING_UNREADABLE.format(problem=problem))]) from exc


def resolve_gate(strategy, spec: str, option: str) -> GateRef:
    """The gate named by ``spec``: a gate id, or a path ``A/B/id`` where an id repeats.

    Raises
    ------
    CytometryError
        When the id is not in the strategy, or repeats and no path picks one.
    """
    parts = tuple(p for p in spec.strip("/").split("/") if p)
    name = parts[-1] if parts else spec
    paths = strategy.find_matching_gate_paths(name)
    wanted = ("root", *parts[:-1]) if len(parts) > 1 else None
    if not paths or (wanted is not None and wanted not in paths):
        known = ", ".join(sorted({str(GateRef(n, p)) for n, p in strategy.get_gate_ids()}))
        rule = RULE_GATE_UNKNOWN.format(gate=spec, option=option, known=known)
        raise CytometryError([Problem(rule)])
    if wanted is not None:
        return GateRef(name, wanted)
    if len(paths) > 1:
        choices = ", ".join(str(GateRef(name, p)) for p in paths)
        rule = RULE_GATE_AMBIGUOUS.format(gate=spec, option=option, paths=choices)
        raise CytometryError([Problem(rule)])
    return GateRef(name, paths[0])


def resolve_gates(strategy, pbmc_gate: str, oc_gate: str) -> tuple[GateRef, GateRef]:
    """Both gates, checking that the OC gate lies within the PBMC gate; every problem at once."""
    problems: list[Problem] = []
    refs: list[GateRef | None] = []
    for spec, option in ((pbmc_gate, "pbmc-gate"), (oc_gate, "oc-gate")):
        try:
            refs.append(resolve_gate(strategy, spec, option))
        except CytometryError as err:
            problems += err.problems
            refs.append(None)
    pbmc, oc = refs
    if pbmc is not None and oc is not None:
        inside = oc.path[: len(pbmc.full_path)] == pbmc.full_path
        if not inside:
            problems.append(Problem(RULE_OC_OUTSIDE_PBMC.format(oc=oc, pbmc=pbmc)))
    if problems:
        raise CytometryError(problems)
    return pbmc, oc  # type: ignore[return-value]


def required_channels(strategy) -> list[str]:
    """Channel labels ($PnN or $PnS) that the strategy's gates read, in first-use order."""
    from flowkit import QuadrantDivider, RatioDimension

    needed: list[str] = []
    for name, path in strategy.get_gate_ids():
        gate = strategy.get_gate(name, path) if not _is_quadrant(strategy, name, path) else None
        if gate is None or not hasattr(gate, "dimensions"):
            continue
        for dim in gate.dimensions:
            if isinstance(dim, RatioDimension):
                labels = list(strategy.get_transform(dim.ratio_ref).dimensions)
            elif isinstance(dim, QuadrantDivider):
                labels = [dim.dimension_ref]
            else:
                labels = [dim.id]
            ref = dim.compensation_ref
            if ref not in (None, "uncompensated", "FCS") and ref in strategy.comp_matrices:
                matrix = strategy.comp_matrices[ref]
                # A compensated dimension may name a fluorochrome: the file needs the detectors.
                labels = [
                    matrix.detectors[matrix.fluorochromes.index(lab)]
                    if lab in matrix.fluorochromes
                    else lab
                    for lab in labels
                ]
                labels += list(matrix.detectors)
            needed += [lab for lab in labels if lab not in needed]
    return needed


def _is_quadrant(strategy, name: str, path: tuple[str, ...]) -> bool:
    from flowkit.exceptions import QuadrantReferenceError

    try:
        strategy.get_gate(name, path)
    except QuadrantReferenceError:
        return True
    return False
