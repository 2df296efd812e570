"""The gateway's loop histograms read exactly as prometheus_client's own histograms do."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from services.webhook_gateway.metrics import LATENCY_BUCKETS, LoopHistogram

VALUES = [0.0, 0.0004, 0.001, 0.00100001, 0.0025, 0.07, 0.1, 0.9, 5.0, 5.0001, 99.0]


def _text(registry: CollectorRegistry) -> str:
    return re.sub(r"(_created) \S+", r"\1 <t>", generate_latest(registry).decode())


@pytest.mark.parametrize("buckets", [LATENCY_BUCKETS, (256, 1024, 4096, 16384, 65536, 262144, 1048576)])
def test_loop_histogram_exposition_equals_prometheus_histogram(buckets: tuple[float, ...]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("h_seconds", "Some latency", buckets=buckets, registry=theirs)
    loop = LoopHistogram("h_seconds", "Some latency", buckets, ours)
    assert _text(ours) == _text(theirs)  # empty
    for value in [*VALUES, *(v * 1000 for v in VALUES)]:
        reference.observe(value)
        loop.observe(value)
    assert _text(ours) == _text(theirs)
    assert "h_seconds_created <t>" in _text(ours)


def test_a_name_is_registered_once() -> None:
    registry = CollectorRegistry()
    LoopHistogram("h_seconds", "Some latency", LATENCY_BUCKETS, registry)
    with pytest.raises(ValueError, match="Duplicated"):
        Histogram("h_seconds", "Some latency", registry=registry)
