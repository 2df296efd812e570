"""The `make run` demo: with no TikTok credentials configured, the sandbox plays TikTok.

Links the sandbox's US store through the real OAuth callback (warehouse filter "LA Warehouse"), seeds mappings
for most seller SKUs (a few are left unmapped on purpose), starts a stream of orders, then plays the OMS once in
the other direction: one order shipped back with a tracking number, and one stock change.
"""

from __future__ import annotations

import asyncio
import html
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import orjson

from shared.kafka import read_to_end
from shared.secrets_check import MIN_SECRET_CHARS
from shared.settings import Settings, load_settings
from shared.stores.commands import BeginLink, open_store_commands
from shared.stores.crypto import generate_key
from shared.stores.linking import new_pending_link
from shared.topics import SYNC_RESULTS
from shopsync.oms import publish_shipment, publish_stock, shipment_record, stock_record

DEMO_SHOP = "7494049642642441621"
DEMO_WAREHOUSE = "LA Warehouse"
DEMO_WAREHOUSE_ID = "7000000000000000001"
DEMO_STOCK = ("RED-S", 25)
LEFT_UNMAPPED = {"GREEN-L", "WHITE-M"}
DEMO_PREFIX = "demo."
RESULT_WAIT_S = 60.0  # how long the demo waits for store sync to report an outcome


def demo_topic_prefix(prefix: str) -> str:
    """The demo's topic prefix under `prefix`: its topics and consumer groups are never the production ones."""
    return prefix if prefix.endswith(DEMO_PREFIX) else f"{prefix}{DEMO_PREFIX}"


def demo_environment(home: Path, sandbox_port: int, topic_prefix: str = "") -> dict[str, str]:
    """Settings for every demo process; secrets are generated once and kept in `<home>/demo.env`.

    Topics and consumer groups go under `demo_topic_prefix(topic_prefix)`, so a demo pointed at a real cluster
    (`shopsync run --demo`) writes beside the production topics, never into them.
    """
    env_file = home / "demo.env"
    saved: dict[str, str] = {}
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith("export ") and "=" in line:
                name, _, value = line[len("export "):].partition("=")
                saved[name] = value
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    env = {
        "TIKTOK_APP_KEY": "demo-app-key",
        "TIKTOK_APP_SECRET": _kept(saved, "TIKTOK_APP_SECRET") or secrets.token_hex(MIN_SECRET_CHARS // 2),
        "TIKTOK_SERVICE_ID": "sandbox-service", "TIKTOK_API_BASE": sandbox, "TIKTOK_AUTH_BASE": sandbox,
        "TIKTOK_ALLOW_HTTP": "true",  # the sandbox on loopback is the demo's TikTok
        "TIKTOK_AUTHORIZE_URL": f"{sandbox}/open/authorize",
        "SHOPSYNC_SECRET_KEY": _kept(saved, "SHOPSYNC_SECRET_KEY") or generate_key(),
        "SHOPSYNC_ADMIN_TOKEN": _kept(saved, "SHOPSYNC_ADMIN_TOKEN") or secrets.token_urlsafe(MIN_SECRET_CHARS),
        "SHOPSYNC_RECONCILE_INTERVAL_S": "60",
        "SHOPSYNC_TOPIC_PREFIX": demo_topic_prefix(topic_prefix),
    }
    home.mkdir(parents=True, exist_ok=True)
    env_file.write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
    env_file.chmod(0o600)
    return env


def _kept(saved: dict[str, str], name: str) -> str | None:
    """A secret an earlier demo run generated, unless it is shorter than the services now accept."""
    value = saved.get(name, "")
    return value if len(value) >= MIN_SECRET_CHARS else None


async def link_demo_store(settings: Settings, sandbox_url: str) -> str:
    """Link the sandbox US store through the gateway's OAuth callback; the page text."""
    record, url = new_pending_link(settings, "Main store", DEMO_WAREHOUSE)
    async with open_store_commands(settings, "demo") as commands:
        begun = await commands.request(BeginLink(record=record))
    if not begun.ok:
        raise RuntimeError(f"the stores owner refused the demo's pending link: {begun.message or begun.reason}")
    state = parse_qs(urlparse(url).query)["state"][0]
    async with httpx.AsyncClient(timeout=30) as http:
        consent = await http.get(f"{sandbox_url}/open/authorize", params={
            "service_id": settings.tiktok_service_id, "state": state, "shop_id": DEMO_SHOP})
        page = await http.get(consent.headers["location"])
    text = html.unescape(page.text.split("<p>")[-1].split("</p>")[0])
    if page.status_code != 200:
        raise RuntimeError(f"linking the demo store failed: {text}")
    return text


async def seed_mappings(settings: Settings, sandbox_url: str) -> tuple[int, list[str]]:
    """Map every seller SKU of the demo shop except a few; (mapped count, left unmapped)."""
    async with httpx.AsyncClient(timeout=30) as http:
        state = (await http.get(f"{sandbox_url}/sandbox/state")).json()
        skus = sorted({k["seller_sku"] for p in state["products"][DEMO_SHOP] for k in p["skus"] if k["seller_sku"]})
        rows = ["shop_id,seller_sku,product_code"]
        rows += [f"{DEMO_SHOP},{s},OMS-{s}" for s in skus if s not in LEFT_UNMAPPED]
        admin_token = settings.shopsync_admin_token.get_secret_value()
        answer = await http.post(f"{settings.shopsync_mapping_url}/mappings/import", content="\n".join(rows) + "\n",
                                 headers={"Authorization": f"Bearer {admin_token}"})
        answer.raise_for_status()
    return answer.json()["imported"], sorted(LEFT_UNMAPPED & set(skus))


async def start_traffic(sandbox_url: str, orders_per_s: float = 1.0, duration_s: float = 24 * 3600) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        (await http.post(f"{sandbox_url}/sandbox/traffic", json={"orders_per_s": orders_per_s,
                                                                 "duration_s": duration_s,
                                                                 "shop_id": DEMO_SHOP})).raise_for_status()


async def wait_healthy(urls: list[str],
                       timeout: float = 60.0) -> None:  # noqa: ASYNC109  # bench/e2e.py relies on this default deadline
    async with httpx.AsyncClient(timeout=2) as http:
        async with asyncio.timeout(timeout):
            for url in urls:
                while True:
                    try:
                        if (await http.get(url)).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.2)


async def run_demo(env: dict[str, str], sandbox_url: str) -> list[str]:
    """Link, seed, start traffic; lines to print."""
    settings = load_settings(**{k.lower(): v for k, v in env.items()})
    linked = await link_demo_store(settings, sandbox_url)
    mapped, unmapped = await seed_mappings(settings, sandbox_url)
    await start_traffic(sandbox_url)
    lines = [f"Linked: {linked}", f"Mappings: {mapped} seller SKUs mapped; left unmapped on purpose: "
             f"{', '.join(unmapped)}", "Traffic: the sandbox is creating about 1 order per second."]
    return [*lines, await ship_one_order(settings, sandbox_url), await change_one_stock_level(settings, sandbox_url)]


async def ship_one_order(settings: Settings, sandbox_url: str) -> str:
    """The OMS ships an order: its tracking number goes back to TikTok (the sandbox)."""
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(f"{sandbox_url}/sandbox/orders", json={"shop_id": DEMO_SHOP,
                                                                         "warehouse_id": DEMO_WAREHOUSE_ID})
        answer.raise_for_status()
        order_id = answer.json()["id"]
        await publish_shipment(settings, shipment_record(DEMO_SHOP, order_id, "usps", "9400111899223197428490"))
        result = await wait_for_result(settings, f"{DEMO_SHOP}:{order_id}")
        status = (await http.get(f"{sandbox_url}/sandbox/orders/{order_id}")).json()["status"]
    return (f"Shipped back: order {order_id}, USPS 9400111899223197428490 → {result.get('status')} "
            f"({result.get('endpoint') or result.get('reason')}); TikTok now shows {status}")


async def change_one_stock_level(settings: Settings, sandbox_url: str) -> str:
    """The OMS's stock of one product changes: the linked TikTok warehouse gets the new quantity."""
    seller_sku, quantity = DEMO_STOCK
    await publish_stock(settings, stock_record(f"OMS-{seller_sku}", quantity))
    result = await wait_for_result(settings, f"OMS-{seller_sku}")
    async with httpx.AsyncClient(timeout=30) as http:
        rows = (await http.get(f"{sandbox_url}/sandbox/inventory", params={"shop_id": DEMO_SHOP})).json()[DEMO_SHOP]
    tiktok: dict[str, object] = next((r["inventory"] for r in rows if r["seller_sku"] == seller_sku), {})
    return (f"Stock: OMS-{seller_sku} = {quantity} → {result.get('status')}; TikTok {seller_sku} in {DEMO_WAREHOUSE} "
            f"now {tiktok.get(DEMO_WAREHOUSE_ID)}")


async def wait_for_result(settings: Settings, key: str) -> dict[str, object]:
    """The newest sync.results record for `key`, once store sync has published one; a placeholder after a while."""
    deadline = time.monotonic() + RESULT_WAIT_S
    while time.monotonic() < deadline:
        found: dict[str, object] | None = None
        async for record in read_to_end(settings, SYNC_RESULTS):
            if record.key == key.encode() and record.value is not None:
                found = orjson.loads(record.value)
        if found is not None:
            return found
        await asyncio.sleep(0.5)
    return {"status": "not reported yet", "reason": "is store-sync running? see its log"}
