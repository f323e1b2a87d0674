"""CDS Hooks 2.0 and FHIR R4 on the prediction service (routes mounted by serving.service)."""
