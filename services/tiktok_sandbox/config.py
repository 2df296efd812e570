"""Sandbox configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.settings import Settings


@dataclass(slots=True)
class SandboxConfig:
    app_key: str
    app_secret: str
    webhook_url: str | None = None
    redirect_url: str | None = None
    seed: int = 42
    time_factor: float = 1.0  # divides TikTok's webhook retry schedule (2 min, 30 min, 3 h, 12 h)
    qps: float = 50.0  # per (app, shop), like TikTok
    service_id: str = "sandbox-service"
    duplicate_webhooks: bool = False
    reorder_webhooks: bool = False
    deny_authorization: bool = False
    low_stock_threshold: int = 5  # a SKU at or below this total gets an INVENTORY_STATUS_CHANGE (27) webhook
    refuse_zero_quantity: bool = False  # Update Inventory refuses 0 with 12052055 (current docs: 1..99,999)


def config_from_settings(settings: Settings, **overrides: object) -> SandboxConfig:
    """Defaults from settings: the app's key/secret, pushes to the local gateway, redirects to its OAuth callback."""
    values: dict[str, object] = {
        "app_key": settings.tiktok_app_key,
        "app_secret": settings.tiktok_app_secret.get_secret_value(),
        "webhook_url": f"http://{settings.shopsync_gateway_host}:{settings.shopsync_gateway_port}/webhooks/tiktok",
        "redirect_url": f"{settings.shopsync_public_url}/oauth/tiktok/callback",
        "service_id": settings.tiktok_service_id or "sandbox-service",
        "qps": settings.tiktok_rate_limit_qps,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SandboxConfig(**values)  # type: ignore[arg-type]  # untyped overrides, keyed by field name
