"""`make run`'s stack starts, orders reach orders.enriched under the demo's own prefix, and Ctrl-C stops
everything."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from shared.kafka import read_to_end
from shared.settings import Settings
from shared.topics import ORDERS_ENRICHED
from shopsync.demo import demo_topic_prefix
from tests.demo_stack import demo_env
from tests.servers import free_port
from tests.topicview import TopicView
from tests.waiting import eventually


async def console_stores_page(console: str, demo_env: str) -> str:
    """The console's Stores page, signed in with the demo's admin token (as a person would, from demo.env)."""
    token = next(line.split("=", 1)[1] for line in demo_env.splitlines()
                 if line.startswith("export SHOPSYNC_ADMIN_TOKEN="))
    async with httpx.AsyncClient(base_url=console, follow_redirects=True) as http:
        csrf = re.search(r'name="csrf" value="([^"]+)"', (await http.get("/signin")).text)
        assert csrf is not None
        page = await http.post("/signin", data={"csrf": csrf.group(1), "secret": token, "next": "/stores"})
        assert page.status_code == 200, page.text
        return page.text


async def test_run_stack_delivers_enriched_orders_and_stops_on_ctrl_c(settings: Settings, tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("gateway", "ingest", "mapping", "audit", "sandbox", "sync", "owner",
                                                "console")}
    env = demo_env(settings, tmp_path, ports)
    # KAFKA_BOOTSTRAP_SERVERS is set, as for an external cluster: the demo runs there only when asked to
    proc = await asyncio.to_thread(subprocess.Popen, [sys.executable, "-m", "shopsync", "run", "--demo"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # forking blocks: off the loop
    demo = settings.model_copy(update={"shopsync_topic_prefix": demo_topic_prefix(settings.shopsync_topic_prefix)})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.decode() for line in proc.stdout or []), daemon=True)
    reader.start()
    try:
        async with TopicView(demo, ORDERS_ENRICHED) as view:
            await view.until(lambda rs: len(rs) >= 3 or proc.poll() is not None, within=120)
        assert proc.poll() is None, "".join(lines)
        assert {v["store_nickname"] for v in view.values()} == {"Main store"}
        await eventually(lambda: any(line.startswith("Running.") for line in lines) or proc.poll() is not None,
                         within=180, every=0.2, what="the walkthrough (ship back, stock), printed before Running.")
        console = f"http://127.0.0.1:{ports['console']}"
        assert f"Console: {console}" in "".join(lines)
        assert "Main store" in await console_stores_page(console, (tmp_path / "demo.env").read_text())
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.to_thread(proc.wait, 60)
        await asyncio.to_thread(reader.join, 10)
        output = "".join(lines)
    assert proc.returncode == 0, output
    assert "Linked:" in output and "left unmapped on purpose" in output and "Stopped." in output
    assert "(mark_package_shipped); TikTok now shows AWAITING_COLLECTION" in output
    assert "Stock: OMS-RED-S = 25 → applied; TikTok RED-S in LA Warehouse now 25" in output
    assert [r async for r in read_to_end(settings, ORDERS_ENRICHED)] == []  # nothing in the non-demo topics
