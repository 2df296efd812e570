"""One typed settings object, read from the environment once at start-up and passed down.

Every variable is listed, with its default, in the README's settings table (a test keeps the two in sync).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Environment-driven configuration for every shopsync process."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # Kafka
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        description="External Kafka cluster (host:port,...). When set, no local broker is started.",
    )
    shopsync_home: Path = Field(
        default=Path(".shopsync"), description="Working directory for the local broker's jars, data and logs."
    )
    shopsync_kafka_port: int = Field(default=9092, description="Local broker's client port.")
    shopsync_kafka_controller_port: int = Field(default=9093, description="Local broker's KRaft controller port.")
    shopsync_kafka_heap: str = Field(default="512m", description="Local broker's maximum JVM heap.")
    shopsync_topic_prefix: str = Field(default="", description="Prefix applied to every topic name.")
    shopsync_topic_partitions: int = Field(default=3, description="Partitions for topics created by `topics ensure`.")
    shopsync_topic_replication: int = Field(default=1, description="Replication factor for created topics.")

    # Logging
    shopsync_log_level: str = Field(default="INFO", description="Log level for services and the CLI.")
    shopsync_log_format: str = Field(
        default="auto", description="`json`, `console`, or `auto` (JSON in services, console in the CLI)."
    )

    # Webhook gateway
    shopsync_gateway_host: str = Field(default="127.0.0.1", description="Gateway listen address.")
    shopsync_gateway_port: int = Field(default=8000, description="Gateway listen port.")
    shopsync_gateway_workers: int = Field(default=1, description="Gateway worker processes.")
    shopsync_max_webhook_bytes: int = Field(default=1_048_576, description="Largest webhook body accepted (bytes).")
    shopsync_publish_timeout_s: float = Field(
        default=2.5, description="Deadline for Kafka to acknowledge a webhook before the gateway answers 503."
    )
    shopsync_producer_stuck_after_s: float = Field(
        default=10.0, description="A producer whose sends have all failed for this long is replaced by a new one."
    )
    shopsync_webhook_max_age_s: int = Field(
        default=48 * 3600, description="Webhooks older than this are rejected as stale_event."
    )
    shopsync_webhook_max_future_s: int = Field(
        default=300, description="Webhooks further in the future than this are rejected as future_event."
    )
    shopsync_public_url: str = Field(
        default="http://127.0.0.1:8000", description="Public base URL of the gateway (OAuth redirect target)."
    )

    # TikTok Shop
    tiktok_app_key: str = Field(default="", description="TikTok Shop app key.")
    tiktok_app_secret: SecretStr = Field(default=SecretStr(""), description="TikTok Shop app secret.")
    tiktok_app_secret_previous: SecretStr = Field(
        default=SecretStr(""), description="Previous app secret, still accepted on webhooks during rotation."
    )
    tiktok_service_id: str = Field(default="", description="TikTok Shop service id (authorization link).")
    tiktok_api_base: str = Field(default="https://open-api.tiktokglobalshop.com", description="Open API base URL.")
    tiktok_auth_base: str = Field(default="https://auth.tiktok-shops.com", description="Token API base URL.")
    tiktok_authorize_url: str = Field(
        default="https://services.tiktokshop.com/open/authorize",
        description="Seller authorization page URL for sellers outside the US (`stores link` without `--region US`).",
    )
    tiktok_authorize_url_us: str = Field(
        default="https://services.us.tiktokshop.com/open/authorize",
        description="Seller authorization page URL for US sellers (`stores link --region US`); TikTok's docs also "
                    "name services.tiktokshops.us: use the host of the link Partner Center gives you.",
    )
    tiktok_rate_limit_qps: float = Field(default=50.0, description="TikTok's rate limit per (app, shop); requests are paced at 96% of it.")
    tiktok_timeout_s: float = Field(default=10.0, description="HTTP timeout for TikTok API calls.")
    tiktok_max_retries: int = Field(default=5, description="Retries for 429/5xx/timeouts before giving up.")

    # Secrets for stores and the admin API
    shopsync_secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Fernet key encrypting store tokens at rest (`shopsync keygen`); to rotate, `new,old`: the first "
        "encrypts, every key decrypts, `shopsync stores rotate-key` re-encrypts every store with the first.",
    )
    shopsync_admin_token: SecretStr = Field(default=SecretStr(""), description="Bearer token for admin HTTP APIs.")

    # Order ingest
    shopsync_ingest_port: int = Field(default=8002, description="Ingest admin/metrics port.")
    shopsync_reconcile_interval_s: float = Field(
        default=600.0, description="Reconciliation poll period per linked store (seconds; 0 disables)."
    )
    shopsync_coalesce_ms: int = Field(default=50, description="Window for coalescing order events into one fetch.")

    # Mapping
    shopsync_mapping_host: str = Field(default="127.0.0.1", description="Mapping admin API listen address.")
    shopsync_mapping_port: int = Field(default=8001, description="Mapping admin API port.")
    shopsync_mapping_url: str = Field(default="http://127.0.0.1:8001", description="Mapping admin API URL (CLI).")

    # Audit (per-order timeline for `shopsync explain`)
    shopsync_audit_port: int = Field(default=8004, description="Audit service port (per-order timelines).")
    shopsync_audit_db: Path = Field(default=Path(".shopsync/audit.db"), description="Audit index (SQLite) path.")
    shopsync_audit_url: str = Field(default="http://127.0.0.1:8004", description="Audit service URL (CLI).")

    # Store sync
    shopsync_store_sync_port: int = Field(default=8003, description="Store-sync admin/metrics port.")
    shopsync_inventory_coalesce_s: float = Field(
        default=1.0, description="Window in which inventory updates for the same SKU are coalesced."
    )
    shopsync_catalog_refresh_s: float = Field(
        default=3600.0, description="Full TikTok catalog refresh period per store (seconds; product webhooks "
                                    "refresh single products in between)."
    )
    shopsync_sync_max_attempts: int = Field(
        default=8, description="Attempts for a shipment or inventory push while TikTok answers 429/5xx."
    )
    shopsync_sync_retry_base_s: float = Field(
        default=1.0, description="First back-off between those attempts (doubles, capped at 60 s)."
    )

    # Sandbox
    shopsync_sandbox_port: int = Field(default=8900, description="TikTok sandbox port.")

    # Tracing
    shopsync_otel_export: bool = Field(default=False, description="Export OpenTelemetry spans (off by default).")

    @property
    def uses_local_kafka(self) -> bool:
        """True when no external cluster is configured and the project's own broker serves."""
        return not self.kafka_bootstrap_servers

    @property
    def bootstrap_servers(self) -> str:
        """Where clients connect: the external cluster, or the local broker."""
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.shopsync_kafka_port}"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with explicit overrides (tests, CLI flags)."""
    return Settings(**overrides)  # type: ignore[arg-type]
