"""The project's own single-node Apache Kafka (KRaft combined mode) from Maven Central jars.

`install` resolves the broker's jars with Maven into `<home>/kafka/lib` (offline once cached in ~/.m2),
`start` formats storage once and launches the broker in the background, waiting until it answers metadata
requests; `stop` shuts it down gracefully. All operations are idempotent.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from shared.settings import Settings, load_settings
from shopsync import localtls

KAFKA_VERSION = "4.1.1"
DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "kafka"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


class LocalKafkaError(RuntimeError):
    """A local-broker operation failed; the message says what to do."""


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    """What `status` reports."""

    running: bool
    pid: int | None
    bootstrap: str
    owned: bool  # started from this home directory (False: something else answers on the port)
    version: str = KAFKA_VERSION


@dataclass(frozen=True, slots=True)
class LocalKafka:
    """One local broker rooted at `home` (e.g. `.shopsync`)."""

    home: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalKafka:
        return cls(
            home=settings.shopsync_home.resolve(),
            port=settings.shopsync_kafka_port,
            controller_port=settings.shopsync_kafka_controller_port,
            heap=settings.shopsync_kafka_heap,
        )

    # ---- paths -------------------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.home / "kafka"

    @property
    def lib_dir(self) -> Path:
        return self.root / "lib"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def pid_file(self) -> Path:
        return self.root / "broker.pid"

    @property
    def config_file(self) -> Path:
        return self.root / "server.properties"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    # ---- install -----------------------------------------------------------------------------------------
    def is_installed(self) -> bool:
        marker = self.lib_dir / ".version"
        return marker.exists() and marker.read_text().strip() == KAFKA_VERSION

    def install(self) -> bool:
        """Resolve the broker jars with Maven; returns False when they were already there."""
        if self.is_installed():
            return False
        require_tool("java", "openjdk-17-jre-headless")
        require_tool("mvn", "maven")
        self.lib_dir.mkdir(parents=True, exist_ok=True)
        for old in self.lib_dir.glob("*.jar"):
            old.unlink()
        cmd = [
            "mvn", "-q", "-B", "-f", str(DEPLOY_DIR / "pom.xml"), "dependency:copy-dependencies",
            f"-DoutputDirectory={self.lib_dir}", "-DincludeScope=runtime", f"-Dkafka.version={KAFKA_VERSION}",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise LocalKafkaError("Maven could not resolve the Kafka jars:\n" + "\n".join(tail))
        (self.lib_dir / ".version").write_text(KAFKA_VERSION + "\n")
        return True

    # ---- lifecycle ---------------------------------------------------------------------------------------
    def running_pid(self) -> int | None:
        """PID of the broker started from this home, if it is alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            return None
        return pid if b"kafka.Kafka" in cmdline else None

    def status(self) -> BrokerStatus:
        pid = self.running_pid()
        answers = port_open(self.port)
        return BrokerStatus(running=answers, pid=pid, bootstrap=self.bootstrap, owned=pid is not None)

    def start(self) -> bool:
        """Start the broker and wait until it answers; returns False when one was already running."""
        if self.running_pid() is not None:
            self.wait_ready()
            return False
        if port_open(self.port):
            self.wait_ready()  # another broker (e.g. another checkout's) already serves this port
            return False
        self.install()
        for d in (self.data_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self.server_properties())
        if not (self.data_dir / "meta.properties").exists():
            self._java("kafka.tools.StorageTool", "format", "--standalone", "-t", self._cluster_id(),
                       "-c", str(self.config_file), *self._format_args(), check=True)
        out = open(self.logs_dir / "broker.out", "ab")
        proc = subprocess.Popen(
            ["java", *self._jvm_opts(), "-cp", f"{self.lib_dir}/*", "kafka.Kafka", str(self.config_file)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        out.close()
        self.pid_file.write_text(f"{proc.pid}\n")
        try:
            self.wait_ready(proc)
        except LocalKafkaError:
            self.stop()
            raise
        return True

    def wait_ready(self, proc: subprocess.Popen[bytes] | None = None, timeout: float = START_TIMEOUT_S) -> None:
        """Block until a metadata request succeeds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise LocalKafkaError(
                    f"the broker exited with code {proc.returncode}; last log lines:\n{self.log_tail(20)}"
                )
            if port_open(self.port) and asyncio.run(self._answers()):
                return
            time.sleep(0.2)
        raise LocalKafkaError(f"the broker did not answer on {self.bootstrap} within {timeout:.0f}s")

    def stop(self) -> bool:
        """Stop the broker gracefully (SIGTERM, then SIGKILL after a timeout); False when not running."""
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> bool:
        """Kill the broker with SIGKILL (a crash: no controlled shutdown); False when not running."""
        pid = self.running_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 50) -> str:
        for name in ("server.log", "broker.out"):
            path = self.logs_dir / name
            if path.exists():
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return "(no broker log yet)"

    # ---- helpers -----------------------------------------------------------------------------------------
    def server_properties(self) -> str:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "3",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.cleaner.backoff.ms": "5000",
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _format_args(self) -> tuple[str, ...]:
        """Extra `StorageTool format` arguments (the secured broker adds its SCRAM users)."""
        return ()

    async def _answers(self) -> bool:
        """True when the broker answers a metadata request the way its clients will ask."""
        return await metadata_ok(self.bootstrap)

    def _jvm_opts(self) -> list[str]:
        return [
            "-Xms256m", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.logs_dir}",
            f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}",
        ]

    def _java(self, main_class: str, *args: str, check: bool = False) -> str:
        result = subprocess.run(
            ["java", *self._jvm_opts(), "-cp", f"{self.lib_dir}/*", main_class, *args],
            capture_output=True, text=True,
        )
        if check and result.returncode != 0:
            raise LocalKafkaError(f"{main_class} {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout.strip()

    def _cluster_id(self) -> str:
        return self._java("kafka.tools.StorageTool", "random-uuid", check=True).splitlines()[-1].strip()


# ---- a secured broker ---------------------------------------------------------------------------------------
SECURED_MECHANISM = "SCRAM-SHA-512"
CLIENT_USER = "shopsync"
BROKER_USER = "broker"


@dataclass(frozen=True, slots=True)
class BrokerPasswords:
    """The passwords a secured broker was formatted with, kept in `<root>/passwords.json` (mode 0600)."""

    client_password: str
    broker_password: str
    keystore_password: str

    @classmethod
    def generate(cls) -> BrokerPasswords:
        return cls(*(secrets.token_hex(16) for _ in range(3)))


@dataclass(frozen=True, slots=True)
class SecuredLocalKafka(LocalKafka):
    """A second local broker shaped like a managed cluster: SASL_SSL with SCRAM-SHA-512, no plaintext listener.

    Rooted at `<home>/kafka-secured`, it runs the plaintext broker's jars (`jars` overrides where they are). The
    first start makes a throwaway CA and a broker certificate for 127.0.0.1/localhost (`tls/`), random passwords
    (`passwords.json`), and formats storage with the SCRAM users `shopsync` (clients) and `broker` (inter-broker),
    so they exist before the broker serves. `client_settings()` are the settings of a client that logs in; the
    same lines, for a shell, are in `client.env`. A second listener on `mtls_port` is TLS without SASL that
    requires a client certificate signed by the CA (`issue_client_certificate`), as Aiven-style clusters do. With
    `unsecured_oauth` the SASL_SSL listener also takes OAUTHBEARER with unsigned tokens (Kafka's development
    validator: anyone can log in), for trying a token provider.
    """

    port: int = 9094
    controller_port: int = 9095
    mtls_port: int = 9096
    unsecured_oauth: bool = False
    jars: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SecuredLocalKafka:
        return cls(home=settings.shopsync_home.resolve(), heap=settings.shopsync_kafka_heap)

    # ---- paths -------------------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.home / "kafka-secured"

    @property
    def lib_dir(self) -> Path:
        return self.jars if self.jars is not None else self.home / "kafka" / "lib"

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def ca_file(self) -> Path:
        """The PEM CA certificate clients must trust (`KAFKA_SSL_CA_FILE`)."""
        return self.tls_dir / "ca.pem"

    @property
    def mtls_bootstrap(self) -> str:
        return f"127.0.0.1:{self.mtls_port}"

    @property
    def client_env_file(self) -> Path:
        return self.root / "client.env"

    @property
    def passwords_file(self) -> Path:
        return self.root / "passwords.json"

    # ---- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> bool:
        """Make the TLS material and passwords (first time), then start like the plaintext broker."""
        if self.running_pid() is None and not port_open(self.port):
            self._prepare()
        return LocalKafka.start(self)

    def passwords(self) -> BrokerPasswords:
        """The passwords this broker was (or will be) formatted with."""
        try:
            return BrokerPasswords(**json.loads(self.passwords_file.read_text()))
        except FileNotFoundError:
            raise LocalKafkaError(f"{self.passwords_file} is missing: start the secured broker first") from None

    def client_settings(self, **overrides: object) -> Settings:
        """Settings whose clients log in to this broker as `shopsync`; `overrides` win (a wrong password...)."""
        values: dict[str, object] = {
            "kafka_bootstrap_servers": self.bootstrap, "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": SECURED_MECHANISM, "kafka_sasl_username": CLIENT_USER,
            "kafka_sasl_password": self.passwords().client_password, "kafka_ssl_ca_file": self.ca_file,
            "kafka_ssl_cert_file": None, "kafka_ssl_key_file": None,
        }
        return load_settings(**(values | overrides))

    def issue_client_certificate(self, cert_file: Path, key_file: Path, name: str = CLIENT_USER) -> None:
        """Write a client certificate signed by this broker's CA and its key (PEM), for mutual TLS."""
        ca = localtls.load(self.tls_dir / "ca.pem", self.tls_dir / "ca-key.pem")
        localtls.issue(ca, name).write_pem(cert_file, key_file)

    # ---- helpers -----------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Passwords, CA, broker keystore and client.env, each made once; the data is formatted with them."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)  # passwords live here (passwords.json, server.properties, client.env)
        if not self.passwords_file.exists():
            if (self.data_dir / "meta.properties").exists():
                raise LocalKafkaError(f"{self.passwords_file} is gone but {self.data_dir} was formatted with its "
                                      f"passwords: delete {self.root} to start the secured broker afresh")
            self.passwords_file.touch(mode=0o600)
            self.passwords_file.write_text(json.dumps(asdict(BrokerPasswords.generate())))
        if not (self.tls_dir / "broker.p12").exists():
            self.tls_dir.mkdir(exist_ok=True)
            ca = localtls.make_ca()
            ca.write_pem(self.ca_file, self.tls_dir / "ca-key.pem")
            broker = localtls.issue(ca, "localhost", hosts=("127.0.0.1", "localhost"))
            localtls.write_pkcs12(self.tls_dir / "broker.p12", broker, ca, self.passwords().keystore_password)
        settings = self.client_settings()
        self.client_env_file.touch(mode=0o600)
        self.client_env_file.write_text("".join(
            f"export {name}={value}\n" for name, value in (
                ("KAFKA_BOOTSTRAP_SERVERS", settings.bootstrap_servers),
                ("KAFKA_SECURITY_PROTOCOL", settings.kafka_security_protocol),
                ("KAFKA_SASL_MECHANISM", settings.kafka_sasl_mechanism),
                ("KAFKA_SASL_USERNAME", settings.kafka_sasl_username),
                ("KAFKA_SASL_PASSWORD", settings.kafka_sasl_password.get_secret_value()),
                ("KAFKA_SSL_CA_FILE", settings.kafka_ssl_ca_file))))

    def server_properties(self) -> str:
        """The plaintext broker's properties with a SASL_SSL client listener (also used between brokers)."""
        props = dict(line.split("=", 1) for line in LocalKafka.server_properties(self).splitlines())
        jaas = (f"org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{BROKER_USER}\" "
                f"password=\"{self.passwords().broker_password}\";")
        keystore_password = self.passwords().keystore_password
        clients = f"SASL_SSL://127.0.0.1:{self.port},MTLS://127.0.0.1:{self.mtls_port}"
        props.update({
            "listeners": f"{clients},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": clients,
            "inter.broker.listener.name": "SASL_SSL",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL",
            "sasl.enabled.mechanisms": SECURED_MECHANISM + (",OAUTHBEARER" if self.unsecured_oauth else ""),
            "sasl.mechanism.inter.broker.protocol": SECURED_MECHANISM,
            f"listener.name.sasl_ssl.{SECURED_MECHANISM.lower()}.sasl.jaas.config": jaas,
            "listener.name.mtls.ssl.client.auth": "required",
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.tls_dir / "broker.p12"),
            "ssl.keystore.password": keystore_password,
            "ssl.key.password": keystore_password,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
        })
        if self.unsecured_oauth:
            props["listener.name.sasl_ssl.oauthbearer.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;")
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _format_args(self) -> tuple[str, ...]:
        known = self.passwords()
        users = ((BROKER_USER, known.broker_password), (CLIENT_USER, known.client_password))
        return tuple(arg for name, password in users
                     for arg in ("--add-scram", f"{SECURED_MECHANISM}=[name={name},password={password}]"))

    async def _answers(self) -> bool:
        return await metadata_ok(self.bootstrap, self.client_settings())


def require_tool(name: str, apt_package: str) -> None:
    """Raise a LocalKafkaError naming the install command when `name` is not on PATH."""
    if shutil.which(name) is None:
        raise LocalKafkaError(
            f"`{name}` is not installed; the local Kafka broker needs it. Install it with:\n"
            f"  sudo apt-get update && sudo apt-get install -y {apt_package}\n"
            "or point shopsync at an existing cluster with KAFKA_BOOTSTRAP_SERVERS=host:port."
        )


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


async def metadata_ok(bootstrap: str, settings: Settings | None = None) -> bool:
    """True when a broker at `bootstrap` answers a metadata request from a client built from `settings`
    (default: a plaintext client)."""
    from shared.kafka import create_admin

    admin = create_admin(settings or Settings.model_construct(kafka_bootstrap_servers=bootstrap),
                         request_timeout_ms=3000)
    try:
        await asyncio.wait_for(admin.start(), 5)
        await asyncio.wait_for(admin.list_topics(), 5)
        return True
    except Exception:
        return False
    finally:
        try:
            await admin.close()
        except Exception:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        if state == "Z":
            os.waitpid(pid, os.WNOHANG)
            return False
    except (FileNotFoundError, ChildProcessError):
        pass
    return True
