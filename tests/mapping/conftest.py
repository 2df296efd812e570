"""The mapping fixtures (`mapping`, `mapping_settings`) are in tests/conftest.py, shared with tests/operator; the
helpers live in tests/mapping_harness.py and are importable from here too, as the folder's tests import them."""

from tests.mapping_harness import ACTIVE, SHOP, TOKEN, WITHDRAWN, MappingHarness, make_order, publish

__all__ = ["ACTIVE", "SHOP", "TOKEN", "WITHDRAWN", "MappingHarness", "make_order", "publish"]
