"""Contract tests run the real pipeline with the ingest harness."""

from tests.order_ingest.conftest import harness  # noqa: F401
