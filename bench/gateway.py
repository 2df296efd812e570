"""Gateway throughput and latency vs. a bare Starlette endpoint under the same uvicorn settings.

Load generator: wrk (Debian package `wrk`; installed with apt-get if missing) with a Lua script cycling through
2,000 pre-signed type-1 webhooks (distinct notification and order ids), against `shopsync gateway` publishing to
the real local broker (a unique topic prefix) and against a bare Starlette app that only reads the body and
answers 200. Falls back to an asyncio/httpx generator when wrk cannot be had (its client is then the bottleneck).
Run: `python -m bench gateway` (or `make bench`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

from bench.common import free_port, percentile, wait_http, write_result
from shared.settings import load_settings
from shared.tiktok.signing import webhook_signature
from shopsync.topic_admin import delete_prefixed_topics, ensure_topics

CONCURRENCY = 64
DURATION_S = 10.0
APP_KEY, APP_SECRET = "bench-key", "bench-secret-0123456789abcdef0123456"

BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
async def ok(request):
    await request.body()
    return Response(status_code=200)
app = Starlette(routes=[Route("/webhooks/tiktok", ok, methods=["POST"])])
"""


async def drive(url: str, duration_s: float, concurrency: int) -> dict[str, float]:
    """Send signed webhooks for `duration_s`; return req/s and latency percentiles (ms)."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient, wid: int) -> None:
        nonlocal errors
        n = 0
        while time.perf_counter() < stop_at:
            n += 1
            body = orjson.dumps({"type": 1, "shop_id": "7494049642642441621", "timestamp": int(time.time()),
                                 "tts_notification_id": f"{wid}-{n}-{uuid.uuid4().hex[:8]}",
                                 "data": {"order_id": str(10**17 + wid * 10**6 + n),
                                          "order_status": "AWAITING_SHIPMENT", "is_on_hold_order": False,
                                          "update_time": int(time.time())}})
            headers = {"Authorization": webhook_signature(APP_KEY, APP_SECRET, body),
                       "Content-Type": "application/json"}
            started = time.perf_counter()
            response = await client.post(url, content=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors += 1

    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        await asyncio.gather(*(worker(client, i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"requests": len(latencies), "errors": errors, "rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(percentile(latencies, 50) * 1000, 2), "p99_ms": round(percentile(latencies, 99) * 1000, 2)}


WRK_SCRIPT = """
local bodies, sigs = {}, {}
local n = 0
for line in io.lines(os.getenv("BENCH_BODIES")) do
  local sig, body = line:match("^(%x+) (.*)$")
  n = n + 1; bodies[n] = body; sigs[n] = sig
end
local i = 0
request = function()
  i = i % n + 1
  return wrk.format("POST", "/webhooks/tiktok",
    {["Authorization"] = sigs[i], ["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %.1f %.1f\\n", summary.requests, summary.errors.status,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
"""


def ensure_wrk() -> str | None:
    """Path to wrk, installing the Debian package when it is missing (None if that fails)."""
    path = shutil.which("wrk")
    if path is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True)
        path = shutil.which("wrk")
    return path


def drive_wrk(wrk: str, url: str, duration_s: float, concurrency: int, workdir: Path) -> dict[str, float]:
    bodies = workdir / "bodies.txt"
    if not bodies.exists():
        lines = []
        for i in range(2000):
            body = orjson.dumps({"type": 1, "shop_id": "7494049642642441621", "timestamp": int(time.time()),
                                 "tts_notification_id": f"wrk-{uuid.uuid4().hex}",
                                 "data": {"order_id": str(10**17 + i), "order_status": "AWAITING_SHIPMENT",
                                          "is_on_hold_order": False, "update_time": int(time.time())}})
            lines.append(f"{webhook_signature(APP_KEY, APP_SECRET, body)} {body.decode()}")
        bodies.write_text("\n".join(lines) + "\n")
        (workdir / "post.lua").write_text(WRK_SCRIPT)
    out = subprocess.run([wrk, "-t2", f"-c{concurrency}", f"-d{int(duration_s)}s", "--latency",
                          "-s", str(workdir / "post.lua"), url],
                         capture_output=True, text=True, env={**os.environ, "BENCH_BODIES": str(bodies)})
    line = next(text for text in out.stdout.splitlines() if text.startswith("RESULT"))
    requests, errors, duration_us, p50_us, p99_us = (float(x) for x in line.split()[1:])
    return {"requests": int(requests), "errors": int(errors), "rps": round(requests / (duration_us / 1e6), 1),
            "p50_ms": round(p50_us / 1000, 2), "p99_ms": round(p99_us / 1000, 2)}


def serve(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    settings = load_settings(shopsync_topic_prefix=prefix)
    asyncio.run(ensure_topics(settings))
    env = {"SHOPSYNC_TOPIC_PREFIX": prefix, "TIKTOK_APP_KEY": APP_KEY, "TIKTOK_APP_SECRET": APP_SECRET,
           "SHOPSYNC_LOG_LEVEL": "WARNING"}
    results = {}
    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="bench-gw-"))
    for name in ("bare", "gateway"):
        port = free_port()
        if name == "gateway":
            args = [sys.executable, "-m", "shopsync", "gateway", "--port", str(port)]
        else:
            args = [sys.executable, "-c",
                    BARE_APP + f"\nimport uvicorn; uvicorn.run(app, port={port}, log_level='warning')"]
        proc = serve(args, env)
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz" if name == "gateway" else f"http://127.0.0.1:{port}/")
            url = f"http://127.0.0.1:{port}/webhooks/tiktok"
            if wrk:
                drive_wrk(wrk, url, 2, CONCURRENCY, workdir)  # warm-up
                results[name] = drive_wrk(wrk, url, DURATION_S, CONCURRENCY, workdir)
            else:
                asyncio.run(drive(url, 2.0, CONCURRENCY))
                results[name] = asyncio.run(drive(url, DURATION_S, CONCURRENCY))
        finally:
            proc.terminate()
            proc.wait(15)
    asyncio.run(delete_prefixed_topics(settings))
    write_result("gateway", {
        "load_generator": "wrk -t2 (Lua, pre-signed bodies)" if wrk else "asyncio + httpx, one process",
        "concurrency": CONCURRENCY, "duration_s": DURATION_S,
        "uvicorn": "1 worker, httptools/uvloop (uvicorn[standard])", "bare": results["bare"],
        "gateway": results["gateway"],
        "ratio_gateway_over_bare": round(results["gateway"]["rps"] / results["bare"]["rps"], 3),
    })


if __name__ == "__main__":
    main()
