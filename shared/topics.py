"""Every topic the product uses, with its settings, and the one helper that applies the name prefix."""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 3600 * 1000

TIKTOK_WEBHOOKS = "tiktok.webhooks"
ORDERS_INGESTED = "orders.ingested"
ORDERS_ENRICHED = "orders.enriched"
ORDERS_SKIPPED = "orders.skipped"
STORES = "shopsync.stores"
STORE_COMMANDS = "shopsync.store-commands"
STORE_RESULTS = "shopsync.store-results"
MAPPINGS = "shopsync.mappings"
DLQ = "shopsync.dlq"
OMS_SHIPMENTS = "oms.shipments"
OMS_INVENTORY = "oms.inventory"
SYNC_RESULTS = "sync.results"
TIKTOK_CATALOG = "tiktok.catalog"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic's name (without prefix) and the configuration `topics ensure` gives it."""

    name: str
    description: str
    compacted: bool = False
    retention_ms: int | None = None
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        """Topic-level configs as Kafka expects them."""
        cfg = dict(self.extra_config)
        if self.compacted:
            cfg["cleanup.policy"] = "compact"
            cfg.setdefault("min.compaction.lag.ms", "0")
        else:
            cfg["cleanup.policy"] = "delete"
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(TIKTOK_WEBHOOKS, "Raw, verified TikTok Shop webhooks (gateway → ingest).", retention_ms=7 * DAY_MS),
    TopicSpec(ORDERS_INGESTED, "Accepted and withdrawn orders, newest version per order.", compacted=True),
    TopicSpec(ORDERS_ENRICHED, "Orders with every line mapped to an OMS product (for the OMS).", compacted=True),
    TopicSpec(ORDERS_SKIPPED, "Orders left out, with machine-readable reasons.", retention_ms=30 * DAY_MS),
    TopicSpec(STORES, "Store connections (linked shops and pending links).", compacted=True),
    TopicSpec(STORE_COMMANDS, "Changes asked of the stores owner, the one writer of shopsync.stores.",
              retention_ms=7 * DAY_MS),
    TopicSpec(STORE_RESULTS, "The stores owner's answer to each store command.", retention_ms=DAY_MS),
    TopicSpec(MAPPINGS, "Seller SKU → OMS product code mappings.", compacted=True),
    TopicSpec(DLQ, "Records that could not be processed, with the reason.", retention_ms=30 * DAY_MS),
    TopicSpec(OMS_SHIPMENTS, "Shipments from the OMS to send back to TikTok.", retention_ms=14 * DAY_MS),
    TopicSpec(OMS_INVENTORY, "Sellable quantities from the OMS, per product code.", compacted=True),
    TopicSpec(SYNC_RESULTS, "Outcome of every shipment and inventory push to TikTok.", retention_ms=30 * DAY_MS),
    TopicSpec(TIKTOK_CATALOG, "TikTok products/SKUs by seller SKU, per shop.", compacted=True),
)

TOPIC_SPECS: dict[str, TopicSpec] = {spec.name: spec for spec in TOPICS}


def topic_name(base: str, prefix: str) -> str:
    """The real topic name for `base` under `prefix` (SHOPSYNC_TOPIC_PREFIX); tests use it to isolate themselves."""
    return f"{prefix}{base}"


def base_name(real: str, prefix: str) -> str:
    """Inverse of `topic_name`: strips the prefix, or raises ValueError for a topic outside it."""
    if not real.startswith(prefix):
        raise ValueError(f"topic {real!r} does not start with prefix {prefix!r}")
    return real[len(prefix):]
