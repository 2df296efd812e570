"""Mapping service: seller SKU → OMS product code, unmapped lines flagged, affected orders re-emitted on change."""
