"""Our murmur2 partitioner picks exactly the partitions Kafka's Java client (and aiokafka) pick."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference

from shared.partitioner import Murmur2Partitioner, murmur2, murmur2_python

BOTH = pytest.mark.parametrize("murmur2", [murmur2, murmur2_python], ids=["native", "python"])


def test_the_native_hash_is_the_one_in_use_on_this_platform() -> None:
    assert murmur2 is not murmur2_python  # the murmurhash2 wheel is installed: `make install` broke if not


@BOTH
def test_murmur2_matches_the_reference_for_every_length_and_tail(murmur2: Callable[[bytes], int]) -> None:
    rng = random.Random(5)
    for length in range(0, 130):
        for _ in range(40):
            data = bytes(rng.randrange(256) for _ in range(length))
            assert murmur2(data) == reference(data), data


@BOTH
def test_known_kafka_vectors(murmur2: Callable[[bytes], int]) -> None:
    # values from Kafka's UtilsTest.testMurmur2 (signed Java ints, here unsigned)
    assert murmur2(b"21") & 0xFFFFFFFF == -973932308 & 0xFFFFFFFF
    assert murmur2(b"abc") & 0xFFFFFFFF == 479470107
    assert murmur2(b"") & 0xFFFFFFFF == 275646681


def test_keys_land_on_the_same_partitions_as_with_aiokafka() -> None:
    ours, theirs = Murmur2Partitioner(), DefaultPartitioner()
    partitions = list(range(7))
    for n in range(2000):
        key = f"7494049642642441621:{576461413038785000 + n}".encode()
        assert ours(key, partitions, partitions) == theirs(key, partitions, partitions)
    assert ours(None, partitions, [3]) == 3
