"""The gateway process collects less often and leaves what start-up built out of full collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.webhook_gateway.wiring import tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tune_gc_raises_the_young_threshold_and_freezes_start_up_objects(restored_gc: None) -> None:
    tune_gc()
    assert gc.get_threshold() == (10_000, 10, 10)
    assert gc.get_freeze_count() > 0
    assert gc.isenabled()
