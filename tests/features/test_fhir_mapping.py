"""The FHIR mapping table: checked on load, and simulated patients read back through FHIR."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from features.fhir import DEFAULT_MAPPING, MappingError, load_mapping, map_patient
from features.fhir.bundle import patient_resources
from features.simulate import simulate_cohort

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CLINICAL = ("age_years", "menopausal_status", "er_status", "pr_status", "her2_status",
            "ki67_percent", "histologic_grade", "tumor_size_mm", "positive_lymph_nodes",
            "disease_setting", "visceral_metastasis", "bone_metastasis_at_enrollment",
            "bone_targeted_therapy", "endocrine_therapy", "chemotherapy")


def _missing(v):
    return v is None or (isinstance(v, float) and math.isnan(v))


def test_simulated_patients_read_back_through_fhir():
    mapping = load_mapping()
    cohort = simulate_cohort(60, seed=5)
    for row in cohort.patients.to_dict("records"):
        draws = cohort.measurements[cohort.measurements.patient_id == row["patient_id"]]
        draws = draws.to_dict("records")
        latest = max((d["day"] for d in draws), default=0.0)
        resources = patient_resources(row, draws, mapping, "p1",
                                      NOW - timedelta(days=latest, hours=1))
        by_key = {q.key: resources for q in mapping.prefetch}
        mapped = map_patient(by_key, mapping, "p1", NOW, "X1")
        for name in CLINICAL:
            want = row[name]
            if _missing(want) and mapping.rule(name).source in ("Condition", "Medication"):
                # No Condition / medication in the record reads as not having it.
                assert mapped.record[name] == mapping.rule(name).absent, name
            elif _missing(want):
                assert name in mapped.missing, name
            else:
                assert mapped.record[name] == want, (name, mapped.record.get(name), want)
        if draws:
            days = [d["day"] for d in sorted(draws, key=lambda d: d["day"])]
            assert [d["day"] for d in mapped.record["oc_measurements"]] == days
            assert mapped.record["prediction_day"] >= days[-1]
        # Latest alkaline phosphatase: the last draw's that has one, else the enrollment value.
        alp = [d["alkaline_phosphatase_u_per_l"] for d in sorted(draws, key=lambda d: d["day"])
               if not _missing(d["alkaline_phosphatase_u_per_l"]) and d["day"] > 0]
        want = alp[-1] if alp else row["alkaline_phosphatase_u_per_l"]
        assert mapped.record.get("alkaline_phosphatase_u_per_l") == (
            None if _missing(want) else want)


def test_resources_of_another_patient_or_after_now_are_ignored():
    mapping = load_mapping()
    row = {"patient_id": "A", "age_years": 50.0, "disease_setting": "early",
           "bone_metastasis_at_enrollment": False, "er_status": "positive"}
    resources = patient_resources(row, [], mapping, "p1", NOW - timedelta(days=1))
    other = patient_resources(dict(row, er_status="negative"), [], mapping, "p2",
                              NOW - timedelta(days=1))
    late = [dict(r, effectiveDateTime=(NOW + timedelta(days=1)).isoformat(),
                 valueCodeableConcept={"coding": [{"system": "http://loinc.org",
                                                   "code": "LA6577-6"}]}, id="late")
            for r in resources if r["resourceType"] == "Observation"]
    mapped = map_patient({q.key: resources + other[1:] + late for q in mapping.prefetch},
                         mapping, "p1", NOW, "X")
    assert mapped.record["er_status"] == "positive"
    assert any("another patient" in n for n in mapped.notes)
    assert any("after the prediction time" in n for n in mapped.notes)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["fields"][1].update(field="favourite_colour"),
         "not a field of a contract patient record"),
        (lambda d: d["fields"][2].update(codes=["lonic|85337-4"]),
         "unknown code system alias 'lonic'"),
        (lambda d: d["fields"][2]["values"].update(weak=["loinc|X"]),
         "value 'weak' is not allowed by the contract"),
        (lambda d: d["fields"][6].update(prefetch="pathologie"), "not in `prefetch`"),
        (lambda d: d["fields"].pop(0), "required contract field age_years has no row"),
        (lambda d: d["fields"][8].update(units={"mm": 0}), "needs a positive factor"),
    ],
)
def test_a_bad_table_is_refused_naming_the_row(tmp_path, edit, message):
    doc = yaml.safe_load(DEFAULT_MAPPING.read_text())
    edit(doc)
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(MappingError, match=message):
        load_mapping(path)


def test_a_hospital_recoding_changes_configuration_not_code(tmp_path):
    doc = yaml.safe_load(DEFAULT_MAPPING.read_text())
    er = next(f for f in doc["fields"] if f["field"] == "er_status")
    er["codes"] = ["loinc|LOCAL-ER"]
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(doc))
    mapping = load_mapping(path)
    assert "http://loinc.org|LOCAL-ER" in mapping.prefetch_templates()["pathology"]
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-01-01",
           "code": {"coding": [{"system": "http://loinc.org", "code": "LOCAL-ER"}]},
           "valueCodeableConcept": {"coding": [{"system": "http://loinc.org",
                                                "code": "LA6577-6"}]}}
    mapped = map_patient({"pathology": [obs]}, mapping, "p1", NOW, "X")
    assert mapped.record["er_status"] == "negative" and mapped.basis == ["Observation/o1"]


JUNK = [None, 1, -1.5, float("nan"), "x", [], {}, [1, "a"], {"a": 1}, True, "2020-13-45",
        {"coding": "x"}, {"coding": [1]}, "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-12:00", {"value": 1e308, "unit": "%"}, {"value": True}]


def test_no_fhir_input_crashes_the_mapping():
    """Resources with any element replaced by any JSON value map to a record (or to missing
    fields and notes), never an exception: an EHR's odd data must not crash the hook."""
    import json
    import random

    mapping = load_mapping()
    cohort = simulate_cohort(10, seed=1)
    rng = random.Random(4)

    def mutate(node, depth=0):
        if isinstance(node, dict | list) and node:
            k = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
            if rng.random() < 0.5 or depth > 3:
                node[k] = rng.choice(JUNK)
            else:
                mutate(node[k], depth + 1)

    for row in cohort.patients.head(3).to_dict("records"):
        draws = cohort.measurements[cohort.measurements.patient_id == row["patient_id"]]
        clean = patient_resources(row, draws.to_dict("records"), mapping, "p1",
                                  NOW - timedelta(days=400))
        for _ in range(200):
            resources = json.loads(json.dumps(clean))
            for _ in range(rng.randint(1, 5)):
                mutate(rng.choice(resources))
            mapped = map_patient({q.key: resources for q in mapping.prefetch}, mapping, "p1",
                                 NOW, "X")
            json.dumps(mapped.record)
