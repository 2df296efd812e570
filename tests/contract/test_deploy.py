"""deploy/: the compose file and Kubernetes manifests only use commands the CLI has and settings that exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from shared.settings import Settings
from shopsync.cli import cli

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _containers() -> list[tuple[str, list[str], set[str]]]:
    """(where, command, env var names) for every container in deploy/."""
    found: list[tuple[str, list[str], set[str]]] = []
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    shared_env = set(compose["x-shopsync-env"])
    for name, service in compose["services"].items():
        if service.get("image") == "shopsync":
            env = service.get("environment") or {}
            found.append((f"compose:{name}", service["command"], shared_env | (set(env) - {"<<"})))
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "ConfigMap" or doc and doc["kind"] == "Secret":
                data = doc.get("data") or doc.get("stringData") or {}
                found.append((f"{path.name}:{doc['kind']}", [], set(data)))
            for container in _pod_containers(doc):
                env = {e["name"] for e in container.get("env", [])}
                found.append((f"{path.name}:{container['name']}", container["command"], env))
    return found


def _pod_containers(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not doc or doc["kind"] not in ("Deployment", "Job"):
        return []
    return doc["spec"]["template"]["spec"]["containers"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(("where", "command", "env"), _containers(), ids=lambda v: v if isinstance(v, str) else "")
def test_commands_and_environment_exist(where: str, command: list[str], env: set[str]) -> None:
    unknown = sorted(name for name in env if name.lower() not in Settings.model_fields)
    assert unknown == [], f"{where}: unknown settings {unknown}"
    if command:
        assert command[0] == "shopsync", where
        ctx = cli.make_context("shopsync", list(command[1:]), resilient_parsing=False)
        group, args = ctx.command, ctx.protected_args + ctx.args
        while isinstance(group, click.Group) and args:
            sub = group.get_command(ctx, args[0])
            assert sub is not None, f"{where}: no command {args[0]!r}"
            ctx = sub.make_context(args[0], args[1:], parent=ctx)
            group, args = sub, ctx.protected_args + ctx.args if isinstance(sub, click.Group) else []


def test_probes_point_at_health_endpoints() -> None:
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            for container in _pod_containers(doc):
                if doc["kind"] == "Deployment":
                    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
                    assert container["readinessProbe"]["httpGet"]["path"] in ("/readyz", "/healthz")
