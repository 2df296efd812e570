"""A three-node local Kafka cluster (KRaft, every node broker + controller) for the replication and failover tests.

Every test here is marked `cluster` (deselect with `-m "not cluster"`); CI runs them. One cluster serves the
whole folder.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator

import pytest

from shared.settings import Settings, load_settings
from shopsync.localcluster import LocalCluster, PartitionState
from shopsync.localkafka import LocalKafka
from tests.sandbox import APP_KEY

CLUSTER_PORTS = (19491, 19492, 19493)
CONTROLLER_PORTS = (19494, 19495, 19496)
GATEWAY_PORT = 19497
APP_SECRET = secrets.token_hex(20)  # the gateway process refuses short or placeholder secrets


@pytest.fixture(scope="package")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalCluster]:
    """Three nodes on the project's installed jars, data under a temporary directory; stopped after this folder."""
    jars = LocalKafka.from_settings(load_settings())
    async with LocalCluster(tmp_path_factory.mktemp("cluster"), CLUSTER_PORTS, CONTROLLER_PORTS, jars=jars) as started:
        yield started


@pytest.fixture
async def healthy_cluster(cluster: LocalCluster) -> LocalCluster:
    """The session cluster with every node running (a test that failed midway may have left one down)."""
    for node in cluster.nodes:
        if not cluster.running(node.node_id):
            await cluster.start_node(node.node_id)
    return cluster


def cluster_settings(cluster: LocalCluster, **extra: object) -> Settings:
    """Settings for the cluster with RF 3 topics under a fresh prefix, and the gateway's signing secrets."""
    return load_settings(**{"kafka_bootstrap_servers": cluster.bootstrap, "shopsync_topic_replication": 3,
                            "shopsync_topic_prefix": f"c{uuid.uuid4().hex[:8]}.", "tiktok_app_key": APP_KEY,
                            "tiktok_app_secret": APP_SECRET, **extra})


def fully_replicated(partitions: list[PartitionState]) -> bool:
    """Every replica in sync and every partition led by its preferred replica (the state before any fault)."""
    return all(set(p.isr) == set(p.replicas) and p.leader == p.replicas[0] for p in partitions)


def busiest_leader(partitions: list[PartitionState]) -> int:
    """The node that leads the most partitions (the lowest id on a tie)."""
    counts: dict[int, int] = {}
    for p in partitions:
        counts[p.leader] = counts.get(p.leader, 0) + 1
    return min(counts, key=lambda node: (-counts[node], node))


