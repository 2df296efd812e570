"""Carrier names as people type them ("usps", "Royal Mail") → TikTok `shipping_provider_id` of a delivery option."""

from __future__ import annotations

import time
from collections.abc import Callable

from shared.tiktok.client import TikTokClient
from shared.tiktok.models import ShippingProvider, ShopAuth

CACHE_TTL_S = 3600.0


class UnknownCarrier(LookupError):
    """The carrier is not among the delivery option's providers; `valid` lists the names TikTok accepts."""

    def __init__(self, carrier: str, valid: list[str]) -> None:
        super().__init__(f"carrier {carrier!r} is not a shipping provider of this order's delivery option; "
                         f"valid: {', '.join(valid) or '(none)'}")
        self.valid = valid


def carrier_key(name: str) -> str:
    """Case- and space-insensitive form of a carrier name."""
    return "".join(name.split()).casefold()


def match_carrier(carrier: str, providers: list[ShippingProvider]) -> ShippingProvider:
    wanted = carrier_key(carrier)
    for provider in providers:
        if carrier_key(provider.name) == wanted or provider.id == carrier.strip():
            return provider
    raise UnknownCarrier(carrier, sorted(p.name for p in providers))


class CarrierBook:
    """Providers per (shop, delivery option), fetched once an hour."""

    def __init__(self, client: TikTokClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, list[ShippingProvider]]] = {}

    async def resolve(self, auth: ShopAuth, delivery_option_id: str, carrier: str) -> ShippingProvider:
        key = (auth.shop_id, delivery_option_id)
        cached = self._cache.get(key)
        if cached is None or self._clock() - cached[0] > CACHE_TTL_S:
            providers = await self._client.get_shipping_providers(auth, delivery_option_id)
            cached = (self._clock(), providers)
            self._cache[key] = cached
        return match_carrier(carrier, cached[1])
