"""deploy/: the compose file and Kubernetes manifests only use commands the CLI has and settings that exist, bind
every probed or published port beyond loopback, carry limits, budgets and network policies, apply no Secret, and
the image and `make install` install exactly the hashed lock."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from packaging.requirements import Requirement

from shared.secrets_check import SERVICE_RULES, secret_problem
from shared.settings import Settings
from shopsync.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
WORKLOADS = ("Deployment", "StatefulSet", "Job")
CONSUMERS = {"ingest", "mapping", "store-sync", "audit", "stores-owner"}


def _k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) for every manifest `kubectl apply -f deploy/k8s/` applies."""
    return [(path.name, doc) for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def _pod_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] not in WORKLOADS:
        return []
    return doc["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


def _config_map() -> dict[str, str]:
    [data] = [doc["data"] for _, doc in _k8s_docs() if doc["kind"] == "ConfigMap"]
    return data  # type: ignore[no-any-return]


def _k8s_env(container: dict[str, Any]) -> dict[str, str]:
    """The variables a container sees from its manifest: the ConfigMap it mounts, then its own `env`."""
    env: dict[str, str] = {}
    if any("configMapRef" in source for source in container.get("envFrom", [])):
        env.update(_config_map())
    env.update({e["name"]: str(e["value"]) for e in container.get("env", [])})
    return env


def _containers() -> list[tuple[str, list[str], set[str]]]:
    """(where, command, env var names) for every container in deploy/."""
    found: list[tuple[str, list[str], set[str]]] = []
    for name, service in _compose()["services"].items():
        if service.get("image") == "shopsync":
            found.append((f"compose:{name}", service["command"], set(service.get("environment") or {})))
    for file, doc in _k8s_docs():
        if doc["kind"] == "ConfigMap":
            found.append((f"{file}:ConfigMap", [], set(doc["data"])))
        for container in _pod_containers(doc):
            found.append((f"{file}:{container['name']}", container["command"], set(_k8s_env(container))))
    return found


def _parse(command: list[str]) -> click.Context:
    """The click context `command` would run in: fails the test when the CLI has no such command or option."""
    assert command[0] == "shopsync", command
    ctx, args = click.Context(cli, info_name="shopsync"), list(command[1:])
    cmd: click.Command = cli
    while isinstance(cmd, click.Group):
        name, sub, args = cmd.resolve_command(ctx, args)
        assert name is not None and sub is not None, f"no command in {command}"
        ctx = click.Context(sub, info_name=name, parent=ctx) if isinstance(sub, click.Group) \
            else sub.make_context(name, args, parent=ctx)
        cmd = sub
    return ctx


def _bind(command: list[str], env: dict[str, str]) -> tuple[str, int]:
    """(host, port) a service command listens on: its --host/--port, else its *_HOST/*_PORT setting, else the
    default (never the test runner's own environment)."""
    ctx = _parse(command)
    field = f"shopsync_{command[1].replace('-', '_')}"
    assert f"{field}_host" in Settings.model_fields, f"`{command[1]}` has no {field.upper()}_HOST setting"

    def setting(name: str) -> str:
        return env.get(name.upper(), str(Settings.model_fields[name].default))

    return ctx.params.get("host") or setting(f"{field}_host"), ctx.params.get("port") or int(setting(f"{field}_port"))


def _beyond_loopback(host: str) -> bool:
    if host == "localhost":
        return False
    return not ipaddress.ip_address(host).is_loopback


@pytest.mark.parametrize(("where", "command", "env"), _containers(), ids=lambda v: v if isinstance(v, str) else "")
def test_commands_and_environment_exist(where: str, command: list[str], env: set[str]) -> None:
    unknown = sorted(name for name in env  # OTEL_*: OpenTelemetry's own variables, read by its SDK
                     if name.lower() not in Settings.model_fields and not name.startswith("OTEL_"))
    assert unknown == [], f"{where}: unknown settings {unknown}"
    if command:
        _parse(command)


def test_probes_point_at_health_endpoints() -> None:
    for file, doc in _k8s_docs():
        for container in _pod_containers(doc):
            if doc["kind"] == "Job":
                continue
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", file
            assert container["readinessProbe"]["httpGet"]["path"] in ("/readyz", "/healthz"), file


def test_every_probed_port_is_the_bound_port_and_bound_beyond_loopback() -> None:
    """A probe connects to the pod IP: a service bound to 127.0.0.1 would fail it and be restarted forever."""
    probed = 0
    for file, doc in _k8s_docs():
        for container in _pod_containers(doc):
            ports = {p.get("name", p["containerPort"]): p["containerPort"] for p in container.get("ports", [])}
            host, port = _bind(container["command"], _k8s_env(container)) if ports else ("", 0)
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                if probe not in container:
                    continue
                target = container[probe]["httpGet"]["port"]
                assert ports.get(target, target) == port, f"{file}:{container['name']} {probe} port {target}"
                assert _beyond_loopback(host), (f"{file}:{container['name']} binds {host}: set its *_HOST to "
                                                "0.0.0.0 (or pass --host) so the kubelet's probe can reach it")
                probed += 1
    assert probed >= 10


def test_every_published_compose_port_is_bound_beyond_loopback() -> None:
    for name, service in _compose()["services"].items():
        if service.get("image") != "shopsync" or not service.get("ports"):
            continue
        host, port = _bind(service["command"], {k: str(v) for k, v in service["environment"].items()})
        published = {int(spec.split(":")[-1].split("/")[0]) for spec in service["ports"]}
        assert published == {port}, name
        assert _beyond_loopback(host), f"compose:{name} binds {host} inside its container: nothing reaches it"


def test_compose_runs_the_whole_pipeline_on_a_kraft_kafka_container() -> None:
    services = _compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    commands = {s["command"][1] for s in services.values() if s.get("image") == "shopsync"}
    assert commands >= {"topics", "gateway", "ingest", "mapping", "store-sync", "audit", "stores-owner"}
    for name, service in services.items():
        if service.get("image") == "shopsync" and name != "topics":
            assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully", name
            assert "healthcheck" in service, name


def test_no_secret_values_are_shipped_in_applied_manifests() -> None:
    """A `kubectl apply -f deploy/k8s/` must never overwrite the real Secret with placeholders."""
    assert [file for file, doc in _k8s_docs() if doc["kind"] == "Secret"] == []
    secret_names = {rule.variable for rules in SERVICE_RULES.values() for rule in rules}
    for name, value in _compose()["x-shopsync-env"].items():
        if name in secret_names:
            assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", value), f"compose {name} must come from the environment"
    for file, doc in _k8s_docs():
        for container in _pod_containers(doc):
            leaked = secret_names & {e["name"] for e in container.get("env", [])}
            assert leaked == set(), f"{file}: {leaked} belong in the Secret"


def test_the_secret_example_is_not_applied_and_every_service_refuses_its_values() -> None:
    example = yaml.safe_load((DEPLOY / "examples" / "secret.example.yaml").read_text())
    assert example["kind"] == "Secret" and example["metadata"]["name"] == "shopsync-secrets"
    rules = {rule.variable: rule for rules in SERVICE_RULES.values() for rule in rules}
    for name, value in example["stringData"].items():
        if name in rules:
            assert secret_problem(rules[name], value) is not None, name
    env_example = dict(line.split("=", 1) for line in (DEPLOY / "secrets.env.example").read_text().splitlines()
                       if line and not line.startswith("#"))
    for name in ("TIKTOK_APP_SECRET", "SHOPSYNC_SECRET_KEY", "SHOPSYNC_ADMIN_TOKEN"):
        assert secret_problem(rules[name], env_example[name]) is not None, name


def test_workloads_carry_requests_limits_and_a_non_root_user() -> None:
    for file, doc in _k8s_docs():
        for container in _pod_containers(doc):
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
            assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True, file


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and In/NotIn/Exists); `{}` selects everything."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        value, op = labels.get(expr["key"]), expr["operator"]
        if (op == "In" and value not in expr["values"]) or (op == "NotIn" and value in expr["values"]) \
                or (op == "Exists" and value is None) or (op == "DoesNotExist" and value is not None):
            return False
    return True


def _workloads() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(command name, workload, its pod labels) for every long-running workload."""
    return [(c["command"][1], doc, doc["spec"]["template"]["metadata"]["labels"])
            for _, doc in _k8s_docs() if doc["kind"] in ("Deployment", "StatefulSet")
            for c in _pod_containers(doc)]


def test_every_consumer_has_a_disruption_budget_that_still_lets_a_node_drain() -> None:
    budgets = [doc["spec"] for _, doc in _k8s_docs() if doc["kind"] == "PodDisruptionBudget"]
    consumers = [(name, doc, labels) for name, doc, labels in _workloads() if name in CONSUMERS]
    assert {name for name, _, _ in consumers} == CONSUMERS
    for name, doc, labels in consumers:
        [budget] = [b for b in budgets if _selects(b["selector"], labels)]
        replicas = doc["spec"].get("replicas", 1)
        assert budget.get("maxUnavailable", 0) >= 1 or budget.get("minAvailable", replicas) < replicas, name


def test_network_policies_keep_admin_ports_inside_the_cluster() -> None:
    policies = [doc["spec"] for _, doc in _k8s_docs() if doc["kind"] == "NetworkPolicy"]
    for name, doc, labels in _workloads():
        for container in _pod_containers(doc):
            for port in container["ports"]:
                names = (port["name"], port["containerPort"])
                rules = [rule for p in policies if _selects(p["podSelector"], labels) and "Ingress" in p["policyTypes"]
                         for rule in p.get("ingress", [])
                         if any(rp.get("port") in names for rp in rule.get("ports", []))]
                assert rules, f"{name}: no NetworkPolicy admits port {port['name']}"
                if name == "gateway":
                    continue  # the one public port: webhooks and the OAuth callback
                for rule in rules:
                    peers = rule.get("from")
                    assert peers, f"{name}: port {port['name']} is open to every address"
                    assert all("ipBlock" not in peer for peer in peers), f"{name}: admin port open to an ipBlock"


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lock: Path) -> dict[str, str]:
    """{package: version} of a pip-compile lock."""
    return {_normalized(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", lock.read_text(), re.M)}


def test_the_locks_are_hashed_agree_and_meet_the_pyproject_floors() -> None:
    import tomllib

    dev_lock, runtime_lock = ROOT / "requirements.lock", DEPLOY / "requirements-runtime.lock"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dev, runtime = _pins(dev_lock), _pins(runtime_lock)
    for lock in (dev_lock, runtime_lock):
        text = lock.read_text()
        assert "--find-links" not in text and "--index-url" not in text, f"{lock.name} names a machine's index"
        pinned_lines = re.findall(r"^\S+==", text, re.M)
        hashed = re.findall(r"^\S+==\S+ \\\n\s+--hash=sha256:[0-9a-f]{64}", text, re.M)
        assert len(pinned_lines) == len(hashed) == len(_pins(lock)) > 0, f"{lock.name}: a pin without hashes"
    assert {n: v for n, v in dev.items() if n in runtime} == runtime, "the image would run other versions than CI"
    wanted = project["project"]["dependencies"] + project["project"]["optional-dependencies"]["dev"]
    for spec in wanted + project["build-system"]["requires"]:
        requirement = Requirement(spec)
        pinned = dev.get(_normalized(requirement.name))
        assert pinned is not None and requirement.specifier.contains(pinned), f"{spec}: lock has {pinned}"
    for floor in ("starlette>=0.49.1", "h11>=0.16"):
        assert floor in "".join(project["project"]["dependencies"]), floor


def test_make_and_the_image_install_only_from_the_hashed_locks() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q --require-hashes -r requirements.lock" in makefile
    assert "--no-deps --no-build-isolation -e ." in makefile
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    [base] = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base), base
    assert "pip install --require-hashes -r requirements-runtime.lock" in dockerfile
    assert "pip install --no-deps --no-build-isolation ." in dockerfile
    patterns = [line for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
                if line and not line.startswith("#")]
    assert patterns[0] == "*", "the build context must exclude by default (deploy/.env, .venv, .shopsync)"
    assert "!deploy/requirements-runtime.lock" in patterns


NO_METRICS = {"topics", "audit", "console"}  # a one-shot job, and the audit service and the console (no /metrics)


def test_prometheus_scrapes_every_service_on_the_port_compose_binds_it_to() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
            for job in config["scrape_configs"]}
    expected = {}
    for name, service in _compose()["services"].items():
        if service.get("image") == "shopsync" and name not in NO_METRICS:
            _, port = _bind(service["command"], {k: str(v) for k, v in service["environment"].items()})
            expected[name] = [f"{name}:{port}"]
    assert jobs == expected
    assert config["rule_files"] == ["alerts.yml"]


def test_compose_provisions_prometheus_with_the_rules_and_grafana_with_the_dashboard() -> None:
    services = _compose()["services"]
    mounts = {name: {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"] if v.startswith("./")}
              for name in ("prometheus", "grafana")}
    assert mounts["prometheus"]["/etc/prometheus"] == "./prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    assert mounts["grafana"]["/etc/grafana/provisioning"] == "./grafana/provisioning"
    assert mounts["grafana"]["/var/lib/grafana/dashboards/shopsync.json"] == "./grafana/shopsync.json"
    for name in ("prometheus", "grafana"):
        for host in mounts[name].values():
            assert (DEPLOY / host).exists(), host
        assert all(p.startswith("127.0.0.1:") for p in services[name]["ports"]), f"{name} beyond loopback"
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "shopsync.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    [source] = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
                              )["datasources"]
    assert source["url"] == "http://prometheus:9090"
    dashboard = yaml.safe_load((DEPLOY / "grafana" / "shopsync.json").read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in [p, *p["targets"]]}
    assert uids == {source["uid"]}


def _health_targets(env: dict[str, str]) -> list[tuple[str, str, int, str]]:
    """(name, host, port, path) of each URL the console's health panel probes."""
    from urllib.parse import urlsplit
    pairs = Settings(shopsync_console_health_urls=env["SHOPSYNC_CONSOLE_HEALTH_URLS"]).console_health_urls
    return [(name, parts.hostname or "", parts.port or 80, parts.path)
            for name, url in pairs for parts in [urlsplit(url)]]


def test_the_console_probes_every_service_where_compose_and_k8s_run_it() -> None:
    services = {name: s for name, s in _compose()["services"].items() if s.get("image") == "shopsync"}
    compose_targets = _health_targets(services["console"]["environment"])
    expected = {"gateway", "ingest", "mapping", "audit", "sync", "stores"}
    assert {name for name, *_ in compose_targets} == expected
    for name, host, port, path in compose_targets:
        command = services[host]["command"]
        assert _bind(command, services[host].get("environment") or {})[1] == port, name
        assert path in ("/healthz", "/readyz"), name
    docs = _k8s_docs()
    ports_of = {doc["metadata"]["name"]: {p["port"] for p in doc["spec"]["ports"]}
                for _, doc in docs if doc["kind"] == "Service"}
    [console] = [c for _, doc in docs for c in _pod_containers(doc) if c["name"] == "console"]
    k8s_targets = _health_targets(_k8s_env(console))
    assert {name for name, *_ in k8s_targets} == expected
    for name, host, port, path in k8s_targets:
        assert port in ports_of.get(host, set()), f"{name}: no Service {host} with port {port}"
        assert path in ("/healthz", "/readyz"), name


@pytest.mark.parametrize("value", ["gateway", "gateway=ftp://x/healthz", "=http://x/healthz"])
def test_a_malformed_health_url_list_is_refused_naming_the_setting(value: str) -> None:
    with pytest.raises(ValueError, match="shopsync_console_health_urls"):
        Settings(shopsync_console_health_urls=value)
