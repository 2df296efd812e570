"""One typed settings object, read from the environment once at start-up and passed down.

Every variable is listed, with its default, in the README's settings table (a test keeps the two in sync).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


class Settings(BaseSettings):
    """Environment-driven configuration for every shopsync process."""

    # hide_input_in_errors: a validation error would otherwise print every input value, secrets included
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", hide_input_in_errors=True)

    # Kafka
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        description="External Kafka cluster (host:port,...). When set, no local broker is started.",
    )
    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="How clients reach the brokers: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or "
                                         "`SASL_SSL` (managed clusters: `SASL_SSL`).",
    )
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        default=None, description="SASL mechanism, required with `SASL_*`: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` "
                                  "or `OAUTHBEARER`.",
    )
    kafka_sasl_username: str = Field(
        default="", description="SASL user name (`OAUTHBEARER`: the OAuth client id).")
    kafka_sasl_password: SecretStr = Field(
        default=SecretStr(""), description="SASL password (`OAUTHBEARER`: the OAuth client secret); never logged.")
    kafka_sasl_oauth_token_url: str = Field(
        default="", description="`OAUTHBEARER`: the OAuth token endpoint that issues tokens for the client "
                                "credentials above.",
    )
    kafka_sasl_oauth_scope: str = Field(default="", description="`OAUTHBEARER`: scope to request (optional).")
    kafka_ssl_ca_file: Path | None = Field(
        default=None, description="PEM bundle of the CAs to trust for the brokers' certificates (default: the "
                                  "system store).",
    )
    kafka_ssl_cert_file: Path | None = Field(
        default=None, description="Client certificate (PEM) for mutual TLS; needs `KAFKA_SSL_KEY_FILE`.")
    kafka_ssl_key_file: Path | None = Field(
        default=None, description="Unencrypted private key (PEM) of `KAFKA_SSL_CERT_FILE`.")
    shopsync_home: Path = Field(
        default=Path(".shopsync"), description="Working directory for the local broker's jars, data and logs."
    )
    shopsync_kafka_port: int = Field(default=9092, description="Local broker's client port.")
    shopsync_kafka_controller_port: int = Field(default=9093, description="Local broker's KRaft controller port.")
    shopsync_kafka_heap: str = Field(default="512m", description="Local broker's maximum JVM heap.")
    shopsync_topic_prefix: str = Field(default="", description="Prefix applied to every topic name.")
    shopsync_topic_partitions: int = Field(default=3, description="Partitions for topics created by `topics ensure`.")
    shopsync_topic_replication: int = Field(default=1, description="Replication factor for created topics.")
    shopsync_topic_min_insync_replicas: int | None = Field(
        default=None, ge=1,
        description="`min.insync.replicas` that `topics ensure` gives every topic (default: replication factor − 1, "
                    "at least 1), so an acks=all write is on two brokers before it is acknowledged.",
    )

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
    shopsync_gateway_read_timeout_s: float = Field(
        default=10.0, gt=0, description="A webhook body not received in full within this is cut off with 408."
    )
    shopsync_gateway_max_concurrent: int = Field(
        default=256, ge=1, description="Webhook requests in progress per worker; beyond it the gateway answers 503 "
                                       "+ `Retry-After` at once (bounds memory at this × the body limit).",
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
    tiktok_rate_limit_qps: float = Field(
        default=50.0, description="TikTok's rate limit per (app, shop); requests are paced at 96% of it."
    )
    tiktok_timeout_s: float = Field(default=10.0, description="HTTP timeout for TikTok API calls.")
    tiktok_max_retries: int = Field(default=5, description="Retries for 429/5xx/timeouts before giving up.")
    tiktok_allow_http: bool = Field(
        default=False, description="Allow `http://` in `TIKTOK_API_BASE` and `TIKTOK_AUTH_BASE` (the local sandbox "
                                   "only); otherwise a plain-http URL refuses to start.",
    )

    # Secrets for stores and the admin API
    shopsync_secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Fernet key encrypting store tokens at rest (`shopsync keygen`); to rotate, `new,old`: the first "
        "encrypts, every key decrypts, `shopsync stores rotate-key` re-encrypts every store with the first.",
    )
    shopsync_admin_token: SecretStr = Field(default=SecretStr(""), description="Bearer token for admin HTTP APIs.")

    # Order ingest
    shopsync_ingest_host: str = Field(
        default="127.0.0.1", description="Ingest admin/metrics listen address (`0.0.0.0` in a container).")
    shopsync_ingest_port: int = Field(default=8002, description="Ingest admin/metrics port.")
    shopsync_reconcile_interval_s: float = Field(
        default=600.0, description="Reconciliation poll period per linked store (seconds; 0 disables)."
    )
    shopsync_coalesce_ms: int = Field(default=50, description="Window for coalescing order events into one fetch.")
    shopsync_ingest_lanes: int = Field(
        default=1, description="Lanes per shop in one ingest process: an order's events always go through the same "
                               "one; each fetches, publishes and acknowledges its own orders, all within the shop's "
                               "rate limit. More help when TikTok's answers, not the CPU, bound a lane."
    )

    # Mapping
    shopsync_mapping_host: str = Field(default="127.0.0.1", description="Mapping admin API listen address.")
    shopsync_mapping_port: int = Field(default=8001, description="Mapping admin API port.")
    shopsync_mapping_url: str = Field(default="http://127.0.0.1:8001", description="Mapping admin API URL (CLI).")
    shopsync_state_dir: Path = Field(
        default=Path(".shopsync/state"),
        description="Local state stores: the mapping service keeps a SQLite store per consumer group under it, so a "
                    "restart reads only the topics' tails. Losing it costs a full restore from the topics, no data.",
    )

    # Audit (per-order timeline for `shopsync explain`)
    shopsync_audit_host: str = Field(
        default="127.0.0.1", description="Audit service listen address (`0.0.0.0` in a container).")
    shopsync_audit_port: int = Field(default=8004, description="Audit service port (per-order timelines).")
    shopsync_audit_db: Path = Field(default=Path(".shopsync/audit.db"), description="Audit index (SQLite) path.")
    shopsync_audit_url: str = Field(default="http://127.0.0.1:8004", description="Audit service URL (CLI).")

    # Store sync
    shopsync_store_sync_host: str = Field(
        default="127.0.0.1", description="Store-sync admin/metrics listen address (`0.0.0.0` in a container).")
    shopsync_store_sync_port: int = Field(default=8003, description="Store-sync admin/metrics port.")
    shopsync_inventory_coalesce_s: float = Field(
        default=1.0, description="Window in which inventory updates for the same SKU are coalesced."
    )
    shopsync_catalog_refresh_s: float = Field(
        default=3600.0, description="Full TikTok catalog refresh period per store (seconds; product webhooks "
                                    "refresh single products in between)."
    )
    shopsync_sync_max_attempts: int = Field(
        default=8, description="HTTP calls at most per TikTok call of store sync while TikTok answers 429/5xx (its "
                               "client's retry policy)."
    )
    shopsync_sync_retry_base_s: float = Field(
        default=1.0, description="First back-off between those attempts (doubles, capped at 60 s)."
    )

    # Stores owner (the one writer of shopsync.stores)
    shopsync_stores_owner_host: str = Field(
        default="127.0.0.1", description="Stores owner admin/metrics listen address (`0.0.0.0` in a container).")
    shopsync_stores_owner_port: int = Field(default=8005, description="Stores owner admin/metrics port.")
    shopsync_store_command_timeout_s: float = Field(
        default=30.0, gt=0, description="How long a store command's requester (CLI, OAuth callback, token refresh) "
                                        "waits for the stores owner's answer.",
    )

    # Console (the seller's and operator's web page)
    shopsync_console_host: str = Field(default="127.0.0.1", description="Console listen address.")
    shopsync_console_port: int = Field(default=8006, description="Console port (`shopsync console`).")
    shopsync_console_password: SecretStr = Field(
        default=SecretStr(""), description="Password that signs in to the console with full rights (the admin "
                                           "token `SHOPSYNC_ADMIN_TOKEN` does too).")
    shopsync_console_readonly_token: SecretStr = Field(
        default=SecretStr(""), description="Token that signs in to the console read-only: every page, no change.")
    shopsync_console_session_s: int = Field(
        default=28800, gt=0, description="How long a console sign-in lasts (seconds) before it must be repeated.")
    shopsync_console_health_urls: str = Field(
        default="", description="The health URLs the console's Operations page probes, as `name=url,name=url` "
                                "(blank: each service on the local port `shopsync run` gives it).")

    # Sandbox
    shopsync_sandbox_host: str = Field(default="127.0.0.1", description="TikTok sandbox listen address.")
    shopsync_sandbox_port: int = Field(default=8900, description="TikTok sandbox port.")

    # Tracing

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper_or_default(cls, value: object, info: ValidationInfo) -> object:
        """`sasl_ssl` means `SASL_SSL`; an empty variable means the default."""
        if isinstance(value, str):
            default = "PLAINTEXT" if info.field_name == "kafka_security_protocol" else None
            return value.strip().upper() or default
        return value

    @field_validator("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("shopsync_console_health_urls")
    @classmethod
    def _health_urls_are_named_http_urls(cls, value: str) -> str:
        _named_urls(value)
        return value

    @property
    def console_health_urls(self) -> list[tuple[str, str]]:
        """`SHOPSYNC_CONSOLE_HEALTH_URLS` as (name, url) pairs (empty when blank)."""
        return _named_urls(self.shopsync_console_health_urls)

    @model_validator(mode="after")
    def _kafka_security_is_consistent(self) -> Settings:
        """Refuse combinations that could only fail later, naming the variable to fix."""
        problem = kafka_security_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _tiktok_urls_are_https(self) -> Settings:
        """TikTok calls carry the app secret and seller tokens: plain http only for an explicit sandbox."""
        problem = tiktok_http_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def uses_local_kafka(self) -> bool:
        """True when no external cluster is configured and the project's own broker serves."""
        return not self.kafka_bootstrap_servers

    @property
    def bootstrap_servers(self) -> str:
        """Where clients connect: the external cluster, or the local broker."""
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.shopsync_kafka_port}"


def kafka_security_problem(settings: Settings) -> str | None:
    """What is wrong with the KAFKA_* security settings (None when they can work together)."""
    protocol, mechanism = settings.kafka_security_protocol, settings.kafka_sasl_mechanism
    uses_sasl, uses_tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
    has_credentials = bool(settings.kafka_sasl_username or settings.kafka_sasl_password.get_secret_value())
    tls_files = [name for name in ("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file")
                 if getattr(settings, name) is not None]
    if uses_sasl and mechanism is None:
        return (f"KAFKA_SASL_MECHANISM must be set with KAFKA_SECURITY_PROTOCOL={protocol} "
                "(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)")
    if not uses_sasl and (mechanism is not None or has_credentials):
        name = "KAFKA_SASL_MECHANISM" if mechanism is not None else "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD"
        return f"{name} is set but KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL (SASL_SSL or SASL_PLAINTEXT)"
    if not uses_tls and tls_files:
        return (f"{tls_files[0].upper()} is set but KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS "
                "(SSL or SASL_SSL)")
    if uses_sasl:
        missing = [name for name, value in (("KAFKA_SASL_USERNAME", settings.kafka_sasl_username),
                                            ("KAFKA_SASL_PASSWORD", settings.kafka_sasl_password.get_secret_value()))
                   if not value]
        if missing:
            return f"{' and '.join(missing)} must be set with KAFKA_SASL_MECHANISM={mechanism}"
        if mechanism == "OAUTHBEARER" and not settings.kafka_sasl_oauth_token_url:
            return "KAFKA_SASL_OAUTH_TOKEN_URL must be set with KAFKA_SASL_MECHANISM=OAUTHBEARER"
    if uses_tls:
        return _tls_files_problem(settings.kafka_ssl_ca_file, settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file)
    return None


def _tls_files_problem(ca_file: Path | None, cert_file: Path | None, key_file: Path | None) -> str | None:
    """Load the TLS files the way the clients will, so a bad one is named at start-up."""
    if (cert_file is None) != (key_file is None):
        given, needed = ("KAFKA_SSL_CERT_FILE", "KAFKA_SSL_KEY_FILE") if key_file is None else \
            ("KAFKA_SSL_KEY_FILE", "KAFKA_SSL_CERT_FILE")
        return f"{given} is set without {needed}: mutual TLS needs both"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            return f"KAFKA_SSL_CA_FILE={ca_file} cannot be used as a PEM CA bundle: {_reason(exc)}"
    if cert_file is not None and key_file is not None:
        try:
            context.load_cert_chain(cert_file, key_file, password=lambda: b"")  # never prompt on a terminal
        except (OSError, ssl.SSLError) as exc:
            return (f"KAFKA_SSL_CERT_FILE={cert_file} with KAFKA_SSL_KEY_FILE={key_file} cannot be loaded (a PEM "
                    f"certificate and its unencrypted key): {_reason(exc)}")
    return None


def _reason(exc: OSError | ssl.SSLError) -> str:
    return exc.strerror or getattr(exc, "reason", None) or str(exc)


def tiktok_http_problem(settings: Settings) -> str | None:
    """Which TikTok base URL is not https:// (None when both are, or TIKTOK_ALLOW_HTTP is set)."""
    if settings.tiktok_allow_http:
        return None
    for name in ("tiktok_api_base", "tiktok_auth_base"):
        if not str(getattr(settings, name)).lower().startswith("https://"):
            return (f"{name.upper()} must be an https:// URL (TikTok calls carry the app secret and seller tokens); "
                    "set TIKTOK_ALLOW_HTTP=true only to use the local sandbox over http")
    return None


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, with explicit overrides (tests, CLI flags) that pydantic validates."""
    return Settings(**overrides)


def _named_urls(value: str) -> list[tuple[str, str]]:
    """`name=url,name=url` as (name, url) pairs; ValueError naming the first item that is not name=http(s)://..."""
    pairs = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, eq, url = (text.strip() for text in item.partition("="))
        if not (eq and name and url.startswith(("http://", "https://"))):
            raise ValueError(f"{item!r} is not name=http(s)://host:port/path")
        pairs.append((name, url))
    return pairs
