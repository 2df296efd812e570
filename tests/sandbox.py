"""The TikTok app the tests use, and a handle on a running TikTok sandbox (the `sandbox` fixture yields one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from services.tiktok_sandbox.config import SandboxConfig
from shared.tiktok.client import TikTokClient
from shared.tiktok.models import ShopAuth

APP_KEY = "test-app-key"
APP_SECRET = "test-app-secret-0123456789abcdef0123"  # services refuse secrets under 32 characters
US_SHOP = "7494049642642441621"
MY_SHOP = "7494049642642441622"


@dataclass
class Sandbox:
    """A running sandbox: its URL, config and in-process state, plus control-API helpers."""

    base_url: str
    config: SandboxConfig
    app: Any  # the sandbox's Starlette app; its `state` holds the world, the pusher and the API's call log

    @property
    def world(self) -> Any:
        return self.app.state.world

    async def control(self, method: str, path: str, json: object = None) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as http:
            return await http.request(method, path, json=json)

    async def authorize(self, client: TikTokClient, shop_id: str = US_SHOP) -> ShopAuth:
        """The OAuth dance for `shop_id`, returning credentials for shop-scoped calls."""
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            answer = await http.get("/open/authorize", params={
                "service_id": self.config.service_id, "state": "s", "shop_id": shop_id,
                "redirect_uri": "http://127.0.0.1:9/callback"})
        code = parse_qs(urlparse(answer.headers["location"]).query)["code"][0]
        grant = await client.get_token(code)
        shop = next(s for s in await client.get_authorized_shops(grant.access_token) if s.id == shop_id)
        return ShopAuth(shop.id, shop.cipher, grant.access_token)

    async def pushes(self) -> list[dict[str, Any]]:
        """Every webhook the sandbox pushed so far, with the answers it got."""
        answer = await self.control("GET", "/sandbox/webhooks")
        assert answer.status_code == 200, answer.text
        pushes: list[dict[str, Any]] = answer.json()
        return pushes
