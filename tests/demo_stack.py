"""The environment of `shopsync run --demo` started by a test: the test's broker, prefix, home and free ports."""

from __future__ import annotations

import os
from pathlib import Path

from shared.settings import Settings


def demo_env(settings: Settings, home: Path, ports: dict[str, int]) -> dict[str, str]:
    """This process's environment without TIKTOK_* / SHOPSYNC_* settings, pointed at `settings`' broker and prefix,
    `home`, and `ports` (gateway, ingest, mapping, audit, sandbox, sync, owner, console)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIKTOK_", "SHOPSYNC_"))}
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "SHOPSYNC_TOPIC_PREFIX": settings.shopsync_topic_prefix,
        "SHOPSYNC_HOME": str(home), "SHOPSYNC_GATEWAY_PORT": str(ports["gateway"]),
        "SHOPSYNC_PUBLIC_URL": f"http://127.0.0.1:{ports['gateway']}", "SHOPSYNC_INGEST_PORT": str(ports["ingest"]),
        "SHOPSYNC_MAPPING_PORT": str(ports["mapping"]), "SHOPSYNC_MAPPING_URL": f"http://127.0.0.1:{ports['mapping']}",
        "SHOPSYNC_AUDIT_PORT": str(ports["audit"]), "SHOPSYNC_AUDIT_URL": f"http://127.0.0.1:{ports['audit']}",
        "SHOPSYNC_AUDIT_DB": str(home / "audit.db"), "SHOPSYNC_SANDBOX_PORT": str(ports["sandbox"]),
        "SHOPSYNC_STORE_SYNC_PORT": str(ports["sync"]), "SHOPSYNC_STORES_OWNER_PORT": str(ports["owner"]),
        "SHOPSYNC_CONSOLE_PORT": str(ports["console"]),
    })
    return env
