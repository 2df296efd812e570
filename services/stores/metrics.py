"""The stores owner's Prometheus metrics (on its admin port's `/metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class StoresMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.commands = Counter("store_commands", "Store commands answered, by kind and outcome",
                                ["kind", "status"], registry=self.registry)
        self.redelivered = Counter("store_commands_redelivered", "Commands delivered again after they were applied "
                                   "(answered once, not applied again)", registry=self.registry)
        self.undecodable = Counter("store_commands_undecodable", "Records on the command topic that are not "
                                   "commands (dead-lettered)", registry=self.registry)
        self.duplicates = Counter("webhooks_duplicate", "Authorization webhooks whose tts_notification_id was "
                                  "already acted on (dropped)", ["type"], registry=self.registry)
        self.stale = Counter("webhooks_stale", "Authorization webhooks older than the store's last authorization "
                             "(ignored)", ["type"], registry=self.registry)
