"""A local Apache Kafka cluster of three KRaft nodes (each broker + controller) for replication and fault tests.

Built on `LocalKafka`'s installed jars: each node has its own client and controller port and its own data and
logs under `root`, all formatted with one cluster id and a static controller quorum, internal topics replicated
to every node. A node can be stopped gracefully, killed -9 and started again on the same data.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from shopsync.localkafka import DEPLOY_DIR, LocalKafka, LocalKafkaError, port_open

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """One node's id, ports and files."""

    node_id: int
    port: int
    controller_port: int
    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def config_file(self) -> Path:
        return self.root / "server.properties"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True, slots=True)
class PartitionState:
    """Where one partition lives: its leader (-1 while it has none), replicas and in-sync replicas."""

    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class LocalCluster:
    """Three (or more) local KRaft nodes sharing `jars`' installation; use as `async with cluster:`."""

    def __init__(self, root: Path, ports: Sequence[int], controller_ports: Sequence[int], *, jars: LocalKafka,
                 heap: str = "384m") -> None:
        if len(ports) != len(controller_ports) or len(ports) < 3:
            raise ValueError("a cluster needs at least three nodes, each with a client and a controller port")
        self.root = root
        self.jars = jars
        self.heap = heap
        self.nodes = tuple(ClusterNode(i, p, c, root / f"node{i}")
                           for i, (p, c) in enumerate(zip(ports, controller_ports, strict=True), start=1))
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def node(self, node_id: int) -> ClusterNode:
        return self.nodes[node_id - 1]

    def running(self, node_id: int) -> bool:
        proc = self._procs.get(node_id)
        return proc is not None and proc.poll() is None

    # ---- lifecycle ---------------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        """Install the jars if needed, format every node once, start them all and wait until each is registered."""
        busy = [n.port for n in self.nodes if port_open(n.port)] + [n.controller_port for n in self.nodes
                                                                    if port_open(n.controller_port)]
        if busy:
            raise LocalKafkaError(f"ports {busy} are in use: another broker or cluster is running there")
        await asyncio.to_thread(self.jars.install)
        cluster_id = self._cluster_id()
        for node in self.nodes:
            for d in (node.data_dir, node.logs_dir):
                d.mkdir(parents=True, exist_ok=True)
            node.config_file.write_text(self.server_properties(node))
        await asyncio.gather(*(self._format(node, cluster_id) for node in self.nodes
                               if not (node.data_dir / "meta.properties").exists()))
        try:
            for node in self.nodes:
                self._launch(node)
            await asyncio.gather(*(self._wait_ready(node) for node in self.nodes))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every running node gracefully (SIGKILL after a timeout)."""
        await asyncio.gather(*(self.stop_node(node.node_id) for node in self.nodes))

    async def start_node(self, node_id: int) -> float:
        """Start a stopped node on its data and wait until it answers as a registered broker; returns when it did."""
        node = self.node(node_id)
        if self.running(node_id):
            raise LocalKafkaError(f"node {node_id} is already running")
        self._launch(node)
        await self._wait_ready(node)
        return time.monotonic()

    async def stop_node(self, node_id: int,
                        timeout: float = STOP_TIMEOUT_S) -> None:  # noqa: ASYNC109  # grace period before SIGKILL
        """SIGTERM: the node moves its leaderships away (controlled shutdown) and exits; SIGKILL after `timeout`."""
        proc = self._procs.pop(node_id, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        if not await _exited(proc, timeout):
            proc.kill()
            await _exited(proc, STOP_TIMEOUT_S)

    async def kill_node(self, node_id: int) -> None:
        """SIGKILL: a crash, no controlled shutdown."""
        proc = self._procs.pop(node_id, None)
        if proc is None or proc.poll() is not None:
            return
        proc.kill()
        await _exited(proc, STOP_TIMEOUT_S)

    # ---- inspection --------------------------------------------------------------------------------------
    async def partitions(self, topic: str,
                         timeout: float = 15.0) -> list[PartitionState]:  # noqa: ASYNC109  # tests/cluster uses it
        """The partitions of `topic` (real name) as the cluster's metadata describes them now.

        The admin client asks a random broker it knows, which may be one that just died and is not fenced yet:
        such an attempt is retried until `timeout`.
        """
        async with asyncio.timeout(timeout):
            while True:
                admin = AIOKafkaAdminClient(bootstrap_servers=self._live_bootstrap(), request_timeout_ms=3000,
                                            client_id="shopsync-localcluster")
                try:
                    await admin.start()
                    [described] = await admin.describe_topics([topic])
                    break
                except KafkaError:
                    await asyncio.sleep(0.1)
                finally:
                    await admin.close()
        return sorted((PartitionState(p["partition"], p["leader"], tuple(p["replicas"]), tuple(p["isr"]))
                       for p in described["partitions"]), key=lambda p: p.partition)

    def log_tail(self, node_id: int, lines: int = 40) -> str:
        for name in ("server.log", "node.out"):
            path = self.node(node_id).logs_dir / name
            if path.exists():
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log yet)"

    # ---- helpers -----------------------------------------------------------------------------------------
    def server_properties(self, node: ClusterNode) -> str:
        """Combined broker + controller properties for `node`; every replicated internal topic on all nodes."""
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        size = str(len(self.nodes))
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(node.data_dir),
            "num.partitions": "3",
            "default.replication.factor": size,
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": size,
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": size,
            "transaction.state.log.min.isr": "2",
            "transaction.state.log.num.partitions": "3",
            "share.coordinator.state.topic.replication.factor": size,
            "share.coordinator.state.topic.min.isr": "2",
            "group.initial.rebalance.delay.ms": "0",
            "leader.imbalance.check.interval.seconds": "5",  # a restarted node takes its leaderships back soon
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.cleaner.backoff.ms": "5000",
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _jvm_opts(self, node: ClusterNode, heap: str) -> list[str]:
        return [
            "-Xms128m", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={node.logs_dir}",
            f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}",
        ]

    def _cluster_id(self) -> str:
        """The cluster's id, made once (a Kafka UUID: 16 random bytes, URL-safe base64 without padding)."""
        path = self.root / "cluster.id"
        if path.exists():
            return path.read_text().strip()
        while (cluster_id := base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()).startswith("-"):
            pass  # Kafka never issues ids that read like a command-line flag
        self.root.mkdir(parents=True, exist_ok=True)
        path.write_text(cluster_id + "\n")
        return cluster_id

    async def _format(self, node: ClusterNode, cluster_id: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            "java", *self._jvm_opts(node, "256m"), "-cp", f"{self.jars.lib_dir}/*", "kafka.tools.StorageTool",
            "format", "-t", cluster_id, "-c", str(node.config_file),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await proc.communicate()
        if proc.returncode != 0:
            raise LocalKafkaError(f"formatting node {node.node_id} failed:\n{output.decode(errors='replace')}")

    def _launch(self, node: ClusterNode) -> None:
        with open(node.logs_dir / "node.out", "ab") as out:
            self._procs[node.node_id] = subprocess.Popen(
                ["java", *self._jvm_opts(node, self.heap), "-cp", f"{self.jars.lib_dir}/*", "kafka.Kafka",
                 str(node.config_file)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    async def _wait_ready(self, node: ClusterNode) -> None:
        """Until the node itself answers a metadata request that lists it (it serves clients once unfenced)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            proc = self._procs.get(node.node_id)
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise LocalKafkaError(f"node {node.node_id} exited (code {code}); last log lines:\n"
                                      f"{self.log_tail(node.node_id)}")
            if await _lists_itself(node):
                return
            await asyncio.sleep(POLL_S)
        raise LocalKafkaError(f"node {node.node_id} did not answer on {node.bootstrap} within {START_TIMEOUT_S:.0f}s")

    def _live_bootstrap(self) -> str:
        live = [node.bootstrap for node in self.nodes if self.running(node.node_id)]
        return ",".join(live) or self.bootstrap


async def _lists_itself(node: ClusterNode) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=node.bootstrap, request_timeout_ms=3000,
                                client_id="shopsync-localcluster")
    try:
        async with asyncio.timeout(5):
            await admin.start()
            brokers = (await admin.describe_cluster())["brokers"]
        return any(b["node_id"] == node.node_id for b in brokers)
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):  # closing a client that never connected
            await admin.close()


async def _exited(proc: subprocess.Popen[bytes],
                  timeout: float) -> bool:  # noqa: ASYNC109  # answers False at the deadline instead of raising
    """Wait (without blocking the loop) until `proc` exits; False when it is still running after `timeout`."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True
