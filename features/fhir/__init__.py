"""FHIR R4 and the data contract: the mapping table, reading a record, writing one as a Bundle."""

from features.fhir.bundle import fhir_id, patient_bundle, patient_resources, write_bundles
from features.fhir.mapping import (
    DEFAULT_MAPPING,
    FhirMapping,
    MappedPatient,
    MappingError,
    load_mapping,
    map_patient,
)

__all__ = [
    "DEFAULT_MAPPING",
    "FhirMapping",
    "MappedPatient",
    "MappingError",
    "load_mapping",
    "map_patient",
    "patient_bundle",
    "patient_resources",
    "fhir_id",
    "write_bundles",
]
