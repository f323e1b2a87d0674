"""The FHIR R4 mapping table: which resources and codes give each contract field.

The table is data (``mapping.yaml`` beside this module, or a hospital's copy named by the caller):
:func:`load_mapping` reads and checks it, :func:`map_patient` turns a patient's FHIR resources into
a contract patient record, and :meth:`FhirMapping.prefetch_templates` gives the CDS Hooks prefetch
queries. Pure data mapping: no network, no model; batch tools can use it on exported resources.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from features.marker import MARKER_COLUMNS
from features.schema import PATIENT_SPECS
from features.vocabulary import DAYS_PER_YEAR

__all__ = [
    "DEFAULT_MAPPING",
    "Code",
    "FhirMapping",
    "FieldRule",
    "MappedPatient",
    "MappingError",
    "load_mapping",
    "map_patient",
    "as_list",
    "resource_time",
]

DEFAULT_MAPPING = Path(__file__).with_name("mapping.yaml")
SOURCES = ("Patient", "Observation", "Condition", "Medication")
#: What a row's ``value`` may be, by source.
VALUE_KINDS = {
    "Patient": ("age",),
    "Observation": ("coded", "quantity", "integer", "marker"),
    "Condition": ("present", "category"),
    "Medication": ("present", "category"),
}
ACTIVE_CONDITION = frozenset({"active", "recurrence", "relapse"})
REFUTED = frozenset({"refuted", "entered-in-error"})
SECONDS_PER_DAY = 86400.0
#: prediction_day is given to this many decimals (about 15 minutes).
DAY_DECIMALS = 2


class MappingError(ValueError):
    """The mapping table cannot be used; the message names the row and the problem."""


@dataclass(frozen=True)
class Code:
    """A code of a system; ``prefix`` matches every code beginning with ``code``."""

    system: str
    code: str
    prefix: bool = False

    def matches(self, system: str | None, code: str | None) -> bool:
        if system != self.system or not isinstance(code, str):
            return False
        return code.startswith(self.code) if self.prefix else code == self.code

    def token(self) -> str:
        """The FHIR search token ``system|code`` (exact codes only)."""
        return f"{self.system}|{self.code}"


@dataclass(frozen=True)
class FieldRule:
    """One row of the table: where a contract field comes from."""

    field: str
    source: str
    prefetch: tuple[str, ...]
    value: str
    codes: tuple[Code, ...] = ()
    values: tuple[tuple[str, tuple[Code, ...]], ...] = ()
    units: tuple[tuple[str, float], ...] = ()
    components: tuple[tuple[str, Code], ...] = ()
    absent: Any = None
    verified: str = ""


@dataclass(frozen=True)
class PrefetchQuery:
    """One prefetch key: a fixed query, or a resource type with search parameters."""

    key: str
    query: str | None = None
    resource: str | None = None
    params: str = ""


@dataclass(frozen=True)
class FhirMapping:
    """The checked mapping table."""

    systems: dict[str, str]
    prefetch: tuple[PrefetchQuery, ...]
    rules: tuple[FieldRule, ...]
    observation_status: frozenset[str]
    age_decimals: int
    source: str

    def prefetch_templates(self) -> dict[str, str]:
        """CDS Hooks prefetch templates, key -> FHIR query with ``{{context.patientId}}``."""
        templates = {}
        for q in self.prefetch:
            if q.query:
                templates[q.key] = q.query
                continue
            parts = ["patient={{context.patientId}}"]
            if q.resource == "Observation":
                tokens = [
                    c.token() for r in self.rules if q.key in r.prefetch for c in r.codes
                ]
                parts.append("code=" + ",".join(dict.fromkeys(tokens)))
            if q.params:
                parts.append(q.params)
            templates[q.key] = f"{q.resource}?" + "&".join(parts)
        return templates

    def query(self, key: str, patient_id: str) -> str:
        """The prefetch query of ``key`` for one patient (what an EHR would run)."""
        return self.prefetch_templates()[key].replace("{{context.patientId}}", patient_id)

    def rule(self, name: str) -> FieldRule:
        """The row of contract field ``name``."""
        for r in self.rules:
            if r.field == name:
                return r
        raise KeyError(name)


def load_mapping(path: str | Path | None = None) -> FhirMapping:
    """Read and check a mapping table.

    Parameters
    ----------
    path : str or Path, optional
        A YAML table; default: the one shipped with bonemet (``features/fhir/mapping.yaml``).

    Returns
    -------
    FhirMapping

    Raises
    ------
    MappingError
        Naming the file, the row and the problem: a field that is not a contract field (or
        twice), an unknown source, value kind, code system alias or prefetch key, a category
        value the contract does not allow, a unit factor that is not a positive number.
    """
    path = Path(path) if path is not None else DEFAULT_MAPPING
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise MappingError(f"FHIR mapping {path}: cannot be read ({err})") from None
    where = f"FHIR mapping {path}"
    if not isinstance(doc, dict):
        raise MappingError(f"{where}: not a YAML mapping")
    systems = doc.get("systems")
    if not isinstance(systems, dict) or not all(isinstance(v, str) for v in systems.values()):
        raise MappingError(f"{where}: `systems` must map aliases to code system URIs")
    prefetch = []
    for key, spec in (doc.get("prefetch") or {}).items():
        if not isinstance(spec, dict) or not (spec.get("query") or spec.get("resource")):
            raise MappingError(f"{where}: prefetch key {key!r} needs a `query` or a `resource`")
        prefetch.append(
            PrefetchQuery(
                key=str(key),
                query=spec.get("query"),
                resource=spec.get("resource"),
                params=str(spec.get("params") or ""),
            )
        )
    keys = {q.key for q in prefetch}
    rules, seen = [], set()
    for n, row in enumerate(doc.get("fields") or [], start=1):
        rules.append(_rule(row, n, where, systems, keys))
        if rules[-1].field in seen:
            raise MappingError(f"{where}: field row {n}: {rules[-1].field} is mapped twice")
        seen.add(rules[-1].field)
    for required in ("age_years", "disease_setting", "bone_metastasis_at_enrollment"):
        if required not in seen:
            raise MappingError(f"{where}: required contract field {required} has no row")
    status = doc.get("observation_status") or ["final", "amended", "corrected"]
    decimals = doc.get("age_decimals", 1)
    if not isinstance(decimals, int) or not 0 <= decimals <= 3:
        raise MappingError(f"{where}: age_decimals must be an integer 0-3, got {decimals!r}")
    return FhirMapping(
        systems=dict(systems),
        prefetch=tuple(prefetch),
        rules=tuple(rules),
        observation_status=frozenset(status),
        age_decimals=decimals,
        source=str(path),
    )


def _codes(raw: Any, systems: Mapping[str, str], where: str) -> tuple[Code, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise MappingError(f"{where}: codes must be a non-empty list of alias|code")
    out = []
    for text in raw:
        alias, sep, code = str(text).partition("|")
        if not sep or not code:
            raise MappingError(f"{where}: {text!r} is not alias|code")
        if alias not in systems:
            raise MappingError(f"{where}: unknown code system alias {alias!r} in {text!r}")
        prefix = code.endswith("*")
        out.append(Code(systems[alias], code.rstrip("*"), prefix))
    return tuple(out)


def _rule(
    row: Any, n: int, where: str, systems: Mapping[str, str], keys: set[str]
) -> FieldRule:
    if not isinstance(row, dict) or "field" not in row:
        raise MappingError(f"{where}: field row {n} has no `field`")
    name = row["field"]
    here = f"{where}: field row {n} ({name})"
    spec = PATIENT_SPECS.get(name)
    if spec is None or name in ("patient_id", "time_days", "event"):
        raise MappingError(f"{here}: not a field of a contract patient record")
    source = row.get("source")
    if source not in SOURCES:
        raise MappingError(f"{here}: source must be one of {', '.join(SOURCES)}, got {source!r}")
    kind = row.get("value")
    if kind not in VALUE_KINDS[source]:
        allowed = ", ".join(VALUE_KINDS[source])
        raise MappingError(f"{here}: value for a {source} must be one of {allowed}, got {kind!r}")
    prefetch = row.get("prefetch")
    prefetch = (prefetch,) if isinstance(prefetch, str) else tuple(prefetch or ())
    unknown = [k for k in prefetch if k not in keys]
    if not prefetch or unknown:
        raise MappingError(f"{here}: prefetch keys {unknown or prefetch!r} not in `prefetch`")
    codes = _codes(row["codes"], systems, here) if "codes" in row else ()
    if kind != "category" and source != "Patient" and not codes:
        raise MappingError(f"{here}: needs `codes`")
    if source == "Observation" and any(c.prefix for c in codes):
        raise MappingError(f"{here}: an Observation code cannot be a prefix (it is searched)")
    values = []
    for value, raw in (row.get("values") or {}).items():
        if spec.allowed and value not in spec.allowed:
            raise MappingError(
                f"{here}: value {value!r} is not allowed by the contract "
                f"({', '.join(spec.allowed)})"
            )
        values.append((str(value), _codes(raw, systems, f"{here}, value {value}")))
    if kind in ("coded", "category") and not values:
        raise MappingError(f"{here}: needs `values`")
    units = []
    for unit, factor in (row.get("units") or {}).items():
        if not isinstance(factor, int | float) or not factor > 0:
            raise MappingError(f"{here}: unit {unit!r} needs a positive factor, got {factor!r}")
        units.append((str(unit), float(factor)))
    if kind in ("quantity", "marker") and not units:
        raise MappingError(f"{here}: needs `units` (UCUM unit -> factor to the contract's unit)")
    components = []
    for column, raw in (row.get("components") or {}).items():
        if column not in MARKER_COLUMNS:
            raise MappingError(f"{here}: component {column!r} is not a marker field")
        (code,) = _codes(raw, systems, f"{here}, component {column}")
        components.append((str(column), code))
    absent = row.get("absent")
    if kind == "present":
        absent = False
    elif absent is not None and spec.allowed and absent not in spec.allowed:
        raise MappingError(f"{here}: absent value {absent!r} is not allowed by the contract")
    return FieldRule(
        field=name,
        source=source,
        prefetch=prefetch,
        value=kind,
        codes=codes,
        values=tuple(values),
        units=tuple(units),
        components=tuple(components),
        absent=absent,
        verified=str(row.get("verified") or ""),
    )


# -- reading resources ----------------------------------------------------------------------


@dataclass
class MappedPatient:
    """A contract patient record read from FHIR resources.

    Attributes
    ----------
    record : dict
        The patient record of the prediction API (contract fields, ``oc_measurements`` and
        ``prediction_day`` when there are draws); a field that could not be read is absent.
    missing : list of str
        Contract fields of the table that could not be read.
    basis : list of str
        References (``Type/id``) of the resources the values came from.
    notes : list of str
        Resources found but not used, and why (no unit, unknown answer code, dated after the
        prediction time, another patient's). Never a value of the record.
    """

    record: dict[str, Any]
    missing: list[str] = field(default_factory=list)
    basis: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def resource_time(resource: Mapping[str, Any]) -> datetime | None:
    """When an Observation was taken (effective[x], else issued), in UTC; None if undated."""
    for key in ("effectiveDateTime", "effectiveInstant", "issued"):
        when = _parse_time(resource.get(key))
        if when is not None:
            return when
    period = resource.get("effectivePeriod")
    if isinstance(period, Mapping):
        return _parse_time(period.get("end")) or _parse_time(period.get("start"))
    return None


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        if len(text) == 4:
            when = datetime(int(text), 1, 1)
        elif len(text) == 7:
            when = datetime(int(text[:4]), int(text[5:7]), 1)
        else:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):  # not a date, or beyond year 1-9999 in UTC
        return None


def _codings(concept: Any) -> Iterable[tuple[str | None, str | None]]:
    if not isinstance(concept, Mapping):
        return ()
    return (
        (c.get("system"), c.get("code"))
        for c in as_list(concept.get("coding"))
        if isinstance(c, Mapping)
    )


def _matches(concept: Any, codes: Sequence[Code]) -> bool:
    return any(code.matches(s, c) for s, c in _codings(concept) for code in codes)


def as_list(value: Any) -> list[Any]:
    """A JSON array as a list; anything else (null, a number, an object) as no items."""
    return value if isinstance(value, list) else []


def _one_of(value: Any, allowed: frozenset[str]) -> bool:
    """``value in allowed`` for any JSON value (a list or an object is in no set of codes)."""
    return isinstance(value, str) and value in allowed


def _ref(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _subject_is(resource: Mapping[str, Any], patient_id: str) -> bool:
    subject = resource.get("subject") or resource.get("patient")
    if not isinstance(subject, Mapping):
        return False
    reference = str(subject.get("reference") or "")
    return reference == f"Patient/{patient_id}" or reference.endswith(f"/Patient/{patient_id}")


def _quantity(rule: FieldRule, q: Any) -> tuple[float | None, str | None]:
    """(value in the contract's unit, or None with the reason)."""
    if not isinstance(q, Mapping) or not isinstance(q.get("value"), int | float):
        return None, "no numeric valueQuantity"
    units = dict(rule.units)
    for unit in (q.get("code"), q.get("unit")):
        if isinstance(unit, str) and unit in units:
            return float(q["value"]) * units[unit], None
    given = q.get("code") or q.get("unit")
    return None, f"unit {given!r} not in the table ({', '.join(units)})"


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _observation_value(rule: FieldRule, obs: Mapping[str, Any]) -> tuple[Any, str | None]:
    if rule.value == "coded":
        concept = obs.get("valueCodeableConcept")
        for value, codes in rule.values:
            if _matches(concept, codes):
                return value, None
        return None, "answer code not in the table"
    if rule.value == "integer":
        raw = obs.get("valueInteger")
        if raw is None and isinstance(obs.get("valueQuantity"), Mapping):
            raw = obs["valueQuantity"].get("value")
        value = _integer(raw)
        return (value, None) if value is not None else (None, "no integer value")
    return _quantity(rule, obs.get("valueQuantity"))


def map_patient(
    resources: Mapping[str, Sequence[Mapping[str, Any]]],
    mapping: FhirMapping,
    patient_id: str,
    now: datetime,
    record_id: str,
) -> MappedPatient:
    """A contract patient record from one patient's FHIR resources.

    Parameters
    ----------
    resources : mapping
        Prefetch key -> the resources obtained for it (a Bundle's entries, or the Patient).
    mapping : FhirMapping
        The table.
    patient_id : str
        The FHIR Patient id: resources of any other subject are ignored (and noted).
    now : datetime
        The prediction time (timezone-aware): age is counted to its date, draws and
        Observations after it are ignored, ``prediction_day`` is its day since the first draw.
    record_id : str
        The contract ``patient_id`` to give the record (a pseudonym, never the FHIR id).

    Returns
    -------
    MappedPatient
    """
    out = MappedPatient(record={"patient_id": record_id})
    for rule in mapping.rules:
        found = list({
            _ref(r): r for key in rule.prefetch for r in resources.get(key) or () if r
        }.values())
        value = _read(rule, found, mapping, patient_id, now, out)
        if value is None:
            out.missing.append(rule.field)
        elif rule.value != "marker":
            out.record[rule.field] = value
    return out


def _read(
    rule: FieldRule,
    found: list[Mapping[str, Any]],
    mapping: FhirMapping,
    patient_id: str,
    now: datetime,
    out: MappedPatient,
) -> Any:
    mine = []
    for r in found:
        if r.get("resourceType") == "Patient":
            if r.get("id") == patient_id:
                mine.append(r)
            else:
                out.notes.append(f"{_ref(r)} ignored: not the patient of the hook")
        elif _subject_is(r, patient_id):
            mine.append(r)
        else:
            out.notes.append(f"{_ref(r)} ignored: its subject is another patient")
    if rule.source == "Patient":
        return _age(mine, mapping.age_decimals, now, out)
    if rule.source == "Observation":
        return _observation(rule, mine, mapping, now, out)
    if rule.source == "Condition":
        active = [
            r
            for r in mine
            if r.get("resourceType") == "Condition"
            and any(_one_of(c, ACTIVE_CONDITION) for _, c in _codings(r.get("clinicalStatus")))
            and not any(_one_of(c, REFUTED) for _, c in _codings(r.get("verificationStatus")))
        ]
        return _coded_presence(rule, active, "code", out)
    active = [
        r
        for r in mine
        if r.get("resourceType") in ("MedicationStatement", "MedicationRequest")
        and r.get("status") == "active"
    ]
    return _coded_presence(rule, active, "medicationCodeableConcept", out)


def _age(patients: list, decimals: int, now: datetime, out: MappedPatient) -> float | None:
    for p in patients:
        try:
            born = date.fromisoformat(str(p.get("birthDate")))
        except ValueError:
            out.notes.append(f"{_ref(p)}: birthDate missing or not a full date")
            continue
        out.basis.append(_ref(p))
        return round((now.date() - born).days / DAYS_PER_YEAR, decimals)
    return None


def _coded_presence(rule: FieldRule, active: list, element: str, out: MappedPatient) -> Any:
    if rule.value == "present":
        hits = [r for r in active if _matches(r.get(element), rule.codes)]
        out.basis += [_ref(r) for r in hits]
        return bool(hits)
    for value, codes in rule.values:
        hits = [r for r in active if _matches(r.get(element), codes)]
        if hits:
            out.basis += [_ref(r) for r in hits]
            return value
    return rule.absent


def _observation(
    rule: FieldRule, mine: list, mapping: FhirMapping, now: datetime, out: MappedPatient
) -> Any:
    usable = []
    for r in mine:
        if r.get("resourceType") != "Observation" or not _matches(r.get("code"), rule.codes):
            continue
        if not _one_of(r.get("status"), mapping.observation_status):
            continue
        when = resource_time(r)
        if when is not None and when > now:
            out.notes.append(f"{_ref(r)} ignored: dated after the prediction time")
            continue
        usable.append((when, r))
    if rule.value == "marker":
        return _draws(rule, usable, now, out)
    # Latest first; undated ones only when nothing is dated.
    usable.sort(key=lambda t: t[0] or datetime.min.replace(tzinfo=UTC), reverse=True)
    for _, r in usable:
        value, problem = _observation_value(rule, r)
        if problem is None:
            out.basis.append(_ref(r))
            return value
        out.notes.append(f"{_ref(r)} ignored for {rule.field}: {problem}")
    return None


def _draws(rule: FieldRule, usable: list, now: datetime, out: MappedPatient) -> bool | None:
    """The marker draws: ``oc_measurements`` (day 0 = the first draw), the enrollment marker
    fields from the first draw, and ``prediction_day`` (``now`` in days since the first)."""
    draws = []
    for when, r in usable:
        if when is None:
            out.notes.append(f"{_ref(r)} ignored: a marker draw without a date")
            continue
        draw: dict[str, Any] = {}
        percent, problem = _quantity(rule, r.get("valueQuantity"))
        if percent is not None:
            draw["oc_positive_percent"] = percent
        for column, code in rule.components:
            for comp in as_list(r.get("component")):
                if isinstance(comp, Mapping) and _matches(comp.get("code"), (code,)):
                    raw = comp.get("valueInteger")
                    if raw is None and isinstance(comp.get("valueQuantity"), Mapping):
                        raw = comp["valueQuantity"].get("value")
                    if _integer(raw) is not None:
                        draw[column] = _integer(raw)
        if not draw:
            out.notes.append(f"{_ref(r)} ignored: {problem or 'no marker value'}")
            continue
        draws.append((when, r, draw))
    if not draws:
        return None
    draws.sort(key=lambda t: t[0])
    first = draws[0][0]
    measurements = []
    for when, r, draw in draws:
        seconds = round((when - first).total_seconds())
        measurements.append({"day": seconds / SECONDS_PER_DAY, **draw})
        out.basis.append(_ref(r))
    for column in MARKER_COLUMNS:
        if column in draws[0][2]:
            out.record[column] = draws[0][2][column]
    out.record["oc_measurements"] = measurements
    day = round((now - first).total_seconds() / SECONDS_PER_DAY, DAY_DECIMALS)
    out.record["prediction_day"] = max(day, measurements[-1]["day"])
    return True


def is_finite(value: Any) -> bool:
    """True for a finite number (used by writers to skip missing values)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
