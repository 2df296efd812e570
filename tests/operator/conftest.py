"""Operator tests reuse the mapping service fixtures."""

from tests.mapping.conftest import mapping, mapping_settings  # noqa: F401
