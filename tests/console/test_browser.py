"""The console in a real browser (Debian's Chromium, Playwright) against the sandbox and the real broker."""

from __future__ import annotations

from playwright.async_api import Page

from shared.kafka import create_producer
from shared.topics import TIKTOK_WEBHOOKS, topic_name
from tests.console.conftest import READONLY, Console, shot
from tests.sandbox import US_SHOP
from tests.waiting import eventually

LA, NJ = "7000000000000000001", "7000000000000000002"
NEW_SKU = "CONSOLE-BLUE-XL"


async def reload_until(page: Page, selector: str, text: str, within: float = 60.0) -> None:
    """Reload `page` until `selector` contains `text` (the pipeline is asynchronous; the page is not)."""
    async def shown() -> bool:
        await page.reload()
        found = page.locator(selector)
        return await found.count() > 0 and text in await found.first.inner_text()

    await eventually(shown, within=within, every=0.5, what=f"{text!r} in {selector} of {page.url}")


async def connect_with_a_wrong_warehouse_then_pick(console: Console, page: Page) -> None:
    await page.fill("input[name=nickname]", "Main store")
    await page.fill("input[name=warehouse]", "LA Warehous")  # a typo
    await page.click("form[action='/stores/connect'] button")
    await page.wait_for_url("**/stores/connect/*")
    async with page.context.expect_page() as tiktok:
        await page.click("#authorize")
    callback = await tiktok.value
    await callback.wait_for_load_state()
    assert "warehouse not found" in await callback.title()
    await callback.close()
    await reload_until(page, "[role=alert]", 'No sales warehouse named “LA Warehous”')
    await shot(page, "connect-pick-warehouse")
    await page.click("button:text-is('LA Warehouse')")  # the shop's real sales warehouses, no retyping
    await page.wait_for_url("**/stores/connect/*")
    async with page.context.expect_page() as tiktok:
        await page.click("#authorize")
    await (await tiktok.value).close()
    await reload_until(page, "[role=status]", '"Main store" is linked')
    await page.goto(console.url + "/stores")
    row = page.locator(f"tr[data-shop='{US_SHOP}']")
    assert "linked" in await row.inner_text() and "LA Warehouse" in await row.inner_text()
    await shot(page, "stores")


async def switch_off_shipments_and_update_orders(console: Console, page: Page) -> None:
    row = page.locator(f"tr[data-shop='{US_SHOP}']")
    await row.locator("input[name=auto_sync_shipments]").uncheck()
    await row.locator("form.switches button").click()
    assert "Updated Main store." in await page.inner_text("[role=status]")
    stores = await console.harness.stores()
    assert stores.stores[US_SHOP].auto_sync_shipments is False and stores.stores[US_SHOP].auto_sync_orders
    assert not await page.locator(f"tr[data-shop='{US_SHOP}'] input[name=auto_sync_shipments]").is_checked()
    lost = await console.harness.create_order(warehouse_id=LA)  # an order TikTok has; the push may have been lost
    await page.locator(f"tr[data-shop='{US_SHOP}'] form[data-busy] button").click()
    await page.wait_for_url("**/stores/updates/*")  # the page follows the search live, then says what it found
    await page.wait_for_selector("p.notice[role=status]")
    notice = await page.inner_text("[role=status]")
    assert "Found " in notice and " orders of the last 24 hours" in notice
    assert int(notice.split("Found ")[1].split()[0]) >= 1, (notice, lost["id"])
    await page.goto(console.url + "/stores")


async def map_inline_and_see_orders_complete(console: Console, page: Page) -> list[str]:
    orders = [await console.harness.create_order(warehouse_id=LA, lines=[{"seller_sku": NEW_SKU}])
              for _ in range(2)]
    await page.goto(console.url + "/mappings")
    await reload_until(page, f"#unmapped tr[data-sku='{NEW_SKU}']", "2")
    await shot(page, "mappings")
    form = page.locator("#add-mapping")  # the TikTok SKU ID typed where the seller SKU belongs: said inline
    await form.locator("input[name=shop_id]").fill(US_SHOP)
    await form.locator("input[name=seller_sku]").fill(orders[0]["line_items"][0]["sku_id"])
    await form.locator("input[name=product_code]").fill("OMS-BLUE-XL")
    await form.locator("button").click()
    assert 'is the TikTok SKU ID of "' in await page.inner_text("#problem")
    assert f'map its seller SKU "{NEW_SKU}" instead' in await page.inner_text("#problem")
    row = page.locator(f"#unmapped tr[data-sku='{NEW_SKU}']")
    await row.locator("input[name=product_code]").fill("OMS-BLUE-XL")
    await row.locator("button").click()
    assert "re-emits 2 of the 2 open orders" in " ".join((await page.inner_text("#preview")).split())
    await page.click("main form button")
    assert "OMS-BLUE-XL saved" in await page.inner_text("[role=status]")
    for order in orders:
        await page.goto(console.url + f"/orders?order_id={order['id']}")
        await reload_until(page, "#verdict", "delivered to the OMS: every line mapped")
    await shot(page, "orders")
    await page.goto(console.url + "/sync?product_code=OMS-BLUE-XL")  # per store and SKU: OMS vs TikTok
    assert NEW_SKU in await page.inner_text("#stock")
    await shot(page, "sync")
    return [o["id"] for o in orders]


async def explain_a_skipped_order(console: Console, page: Page) -> None:
    skipped = await console.harness.create_order(warehouse_id=NJ)
    await page.goto(console.url + f"/orders?order_id={skipped['id']}")
    await reload_until(page, "#verdict", "is not linked for store Main store")
    assert "--warehouse NAME" in await page.inner_text("#verdict")  # the fix
    await page.goto(console.url + "/orders/why-none")
    assert f"warehouse:{NJ}:not_linked" in await page.inner_text("#reasons")
    await shot(page, "why-no-orders")


async def import_csv_with_two_bad_lines(console: Console, page: Page) -> None:
    text = ("shop_id,seller_sku,product_code\n"
            f"{US_SHOP},CSV-GOOD,OMS-GOOD\n"
            f"{US_SHOP},CSV-EMPTY,\n"
            f"{US_SHOP},CSV-SHORT\n").encode()
    await page.goto(console.url + "/mappings")
    await page.set_input_files("#import input[type=file]", files=[
        {"name": "mappings.csv", "mimeType": "text/csv", "buffer": text}])
    await page.click("#import button")
    problems = await page.inner_text("#import-problems")
    assert "line 3: product_code must be a non-empty string" in problems
    assert "line 4: expected 3 fields, found 2" in problems
    assert "Nothing was imported" in await page.inner_text("#problem")
    assert (await console.mapping.api.get(f"/mappings/{US_SHOP}/CSV-GOOD")).status_code == 404  # nothing applied
    await shot(page, "mappings-import")


async def test_a_seller_links_maps_and_finds_out_why(console: Console) -> None:
    page = await console.signed_in()
    await connect_with_a_wrong_warehouse_then_pick(console, page)
    await switch_off_shipments_and_update_orders(console, page)
    await map_inline_and_see_orders_complete(console, page)
    await explain_a_skipped_order(console, page)
    await import_csv_with_two_bad_lines(console, page)


async def dead_letter(console: Console) -> None:
    """A record on tiktok.webhooks the ingest cannot read: it sets it aside on the dead-letter topic."""
    settings = console.settings
    producer = create_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic_name(TIKTOK_WEBHOOKS, settings.shopsync_topic_prefix), b"not json",
                                     key=b"bad:1")
    finally:
        await producer.stop()


async def test_an_operator_redrives_and_the_console_refuses_what_it_must(console: Console) -> None:
    await dead_letter(console)
    page = await console.signed_in()
    await page.goto(console.url + "/operations")
    await reload_until(page, "#dead-letters", "undecodable_webhook")
    await shot(page, "operations")
    await page.click("#redrive button")
    assert "1 dead letter(s) would be redriven" in " ".join((await page.inner_text("#dry-run")).split())
    await page.click("main form button")
    assert "Redriven 1 dead letters" in await page.inner_text("[role=status]")
    assert "redriven" in await page.inner_text("#dead-letters")

    # a form post without the CSRF token, with the admin's session cookie: refused, nothing applied
    refused = await page.request.post(console.url + "/mappings/save", form={
        "shop_id": US_SHOP, "seller_sku": "NO-CSRF", "product_code": "OMS-X"})
    assert refused.status == 403
    assert (await console.mapping.api.get(f"/mappings/{US_SHOP}/NO-CSRF")).status_code == 404

    # the read-only role sees the mappings and cannot change one
    viewer = await console.signed_in(READONLY)
    await viewer.goto(console.url + "/mappings")
    form = viewer.locator("#add-mapping")
    await form.locator("input[name=shop_id]").fill(US_SHOP)
    await form.locator("input[name=seller_sku]").fill("READ-ONLY")
    await form.locator("input[name=product_code]").fill("OMS-RO")
    await form.locator("button").click()
    assert "read-only" in await viewer.inner_text("[role=alert]")
    await viewer.goto(console.url + "/mappings")
    token = await viewer.locator("#add-mapping input[name=csrf]").get_attribute("value")
    save = await viewer.request.post(console.url + "/mappings/save", form={
        "csrf": token or "", "shop_id": US_SHOP, "seller_sku": "READ-ONLY", "product_code": "OMS-RO"})
    assert save.status == 403
    assert (await console.mapping.api.get(f"/mappings/{US_SHOP}/READ-ONLY")).status_code == 404
