"""Gateway throughput against bare Starlette and a 20-line reference gateway, interleaved in one run.

Targets, each one uvicorn worker (uvloop/httptools) on 127.0.0.1, started fresh for every measurement and run in the
order A B C D A B C D, so that drift on this shared machine hits all of them alike:
  * `bare`: a Starlette endpoint that reads the body and answers 200 (the ceiling of the stack);
  * `reference`: `bench/reference_gateway.py`, HMAC + `orjson.loads` + `send_and_wait` (idempotent, acks=all);
  * `gateway`: `shopsync gateway`, the product with its whole contract;
  * `gateway_2w`: the same with `--workers 2` (one producer each), sharing the two cores with wrk and the broker;
  * `gateway_traced`: the product with tracing on (`OTEL_EXPORTER_OTLP_ENDPOINT`, every request sampled), exporting
    over OTLP/HTTP to a sink this process runs on 127.0.0.1 (it answers 200 and decodes nothing).
Load: wrk (Debian package `wrk`) `-t2 -c64`, a 2 s warm-up then 8 s measured, a Lua script cycling 2,000 pre-signed
type-1 webhooks; the broker is the local one, on a unique topic prefix. The ratios are of the medians. Then the
product (one worker, and two: compose and k8s run `--workers 2`) is driven at half its median maximum rate (wrk paced
with a per-connection pause, corrected from the rate it gave) for its p99. CPU seconds of the server process(es) per
request are read from /proc: a figure less sensitive than requests/s to what the other tenants of the machine are
doing; the broker's and wrk's are reported beside it (the three share the two cores).

The product runs at its default log level (INFO), as shipped.

`python -m bench gateway`. Environment knobs, for experiments: BENCH_GATEWAY_BEFORE=<directory of another checkout>
adds its gateway (one worker) as a target `before` (`name=dir,name=dir` adds several); BENCH_GATEWAY_ROUNDS (2);
BENCH_GATEWAY_TARGETS=gateway,before runs only those (no ratio to an absent target, no paced run without both
`gateway` and `bare`); BENCH_GATEWAY_RESULT=<name> writes bench/results/<name>.json instead of gateway.json (an
experiment on a subset then keeps the full run's file).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from bench.common import free_port, wait_http, write_result
from shared.settings import load_settings
from shared.tiktok.signing import webhook_signature
from shared.topics import TIKTOK_WEBHOOKS, topic_name
from shopsync.topic_admin import delete_prefixed_topics, ensure_topics

CONCURRENCY = 64
WARMUP_S = 2
DURATION_S = 8
APP_KEY, APP_SECRET = "bench-key", "bench-secret-0123456789abcdef0123456"
HERE = Path(__file__).resolve().parent

BARE_APP = """
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
async def ok(request):
    await request.body()
    return Response(status_code=200)
app = Starlette(routes=[Route("/webhooks/tiktok", ok, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

WRK_SCRIPT = """
local bodies, sigs = {}, {}
local n = 0
for line in io.lines(os.getenv("BENCH_BODIES")) do
  local sig, body = line:match("^(%x+) (.*)$")
  n = n + 1; bodies[n] = body; sigs[n] = sig
end
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local i = 0
request = function()
  i = i % n + 1
  return wrk.format("POST", "/webhooks/tiktok",
    {["Authorization"] = sigs[i], ["Content-Type"] = "application/json"}, bodies[i])
end
if pause > 0 then
  delay = function() return pause end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %.1f %.1f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.duration, latency:percentile(50), latency:percentile(99)))
end
"""


def ensure_wrk() -> str:
    """Path to wrk, installing the Debian package when it is missing."""
    path = shutil.which("wrk")
    if path is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True)
        path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    return path


def write_bodies(workdir: Path) -> None:
    """2,000 signed type-1 webhooks (distinct notification and order ids), one `signature body` per line."""
    lines = []
    now = int(time.time())
    for i in range(2000):
        body = orjson.dumps({"type": 1, "shop_id": "7494049642642441621", "timestamp": now,
                             "tts_notification_id": f"wrk-{uuid.uuid4().hex}",
                             "data": {"order_id": str(10**17 + i), "order_status": "AWAITING_SHIPMENT",
                                      "is_on_hold_order": False, "update_time": now}})
        lines.append(f"{webhook_signature(APP_KEY, APP_SECRET, body)} {body.decode()}")
    (workdir / "bodies.txt").write_text("\n".join(lines) + "\n")
    (workdir / "post.lua").write_text(WRK_SCRIPT)


def drive(wrk: str, url: str, duration_s: int, workdir: Path, delay_ms: float = 0) -> dict[str, Any]:
    """One wrk run: requests, errors, req/s, p50 and p99 (ms)."""
    env = {**os.environ, "BENCH_BODIES": str(workdir / "bodies.txt"), "BENCH_DELAY_MS": str(delay_ms)}
    out = subprocess.run([wrk, "-t2", f"-c{CONCURRENCY}", f"-d{duration_s}s", "-s", str(workdir / "post.lua"), url],
                         capture_output=True, text=True, env=env)
    line = next((text for text in out.stdout.splitlines() if text.startswith("RESULT")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout} {out.stderr}")
    requests, errors, duration_us, p50_us, p99_us = (float(x) for x in line.split()[1:])
    return {"requests": int(requests), "errors": int(errors), "rps": round(requests / (duration_us / 1e6), 1),
            "p50_ms": round(p50_us / 1000, 2), "p99_ms": round(p99_us / 1000, 2)}


def broker_pids() -> list[int]:
    """The local Kafka broker process(es) (their CPU is part of every durable gateway's cost per request)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"kafka.Kafka" in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except (OSError, ValueError):
            continue
    return found


def own_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` alone (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU seconds of this process's waited-for children (wrk's runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its children (uvicorn's worker processes)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Target:
    """One server under test: how to start it and where its health answers."""

    def __init__(self, name: str, args: list[str], health: str, env: dict[str, str], cwd: Path | None = None):
        self.name, self.args, self.health, self.env, self.cwd = name, args, health, env, cwd

    def measure(self, wrk: str, workdir: Path, delay_ms: float = 0) -> dict[str, Any]:
        port = free_port()
        args = [arg.replace("{port}", str(port)) for arg in self.args]
        proc = subprocess.Popen(args, env={**os.environ, **self.env}, cwd=self.cwd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://127.0.0.1:{port}{self.health}")
            url = f"http://127.0.0.1:{port}/webhooks/tiktok"
            drive(wrk, url, WARMUP_S, workdir, delay_ms)
            brokers = broker_pids()
            cpu_before = cpu_seconds(proc.pid)
            broker_before = sum(map(own_cpu_seconds, brokers))
            wrk_before = children_cpu_seconds()
            result = drive(wrk, url, DURATION_S, workdir, delay_ms)
            cpu = cpu_seconds(proc.pid) - cpu_before
            broker = sum(map(own_cpu_seconds, brokers)) - broker_before
            load = children_cpu_seconds() - wrk_before
            per_request = 1e6 / max(1, result["requests"])
            result["server_cpu_us_per_request"] = round(cpu * per_request, 1)
            result["broker_cpu_us_per_request"] = round(broker * per_request, 1)
            result["wrk_cpu_us_per_request"] = round(load * per_request, 1)
            return result
        finally:
            proc.terminate()
            proc.wait(15)


def at_rate(target: Target, rate: float, wrk: str, workdir: Path) -> dict[str, Any]:
    """`target` driven at about `rate` requests/s: each connection pauses between requests, the pause corrected
    twice from the rate it gave (wrk has no open-loop mode; at a low rate the pause dominates the cycle)."""
    delay_ms = CONCURRENCY / rate * 1000
    for _ in range(3):
        result = target.measure(wrk, workdir, delay_ms=delay_ms)
        print(f"at {rate:.0f}/s (pause {delay_ms:.1f} ms): {result}", flush=True)
        if abs(result["rps"] - rate) < 0.05 * rate:
            break
        delay_ms *= result["rps"] / rate
    return {"target_rps": round(rate), "pause_ms": round(delay_ms, 2), **result}


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None: ...


@contextlib.contextmanager
def otlp_sink() -> Iterator[str]:
    """An OTLP/HTTP endpoint on 127.0.0.1 that accepts and drops every export (a collector's cheapest stand-in)."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def targets(prefix: str, env: dict[str, str], otlp: str) -> list[Target]:
    topic = topic_name(TIKTOK_WEBHOOKS, prefix)
    product = [sys.executable, "-m", "shopsync", "gateway", "--port", "{port}", "--workers"]
    found = [
        Target("bare", [sys.executable, "-c", BARE_APP, "{port}"], "/webhooks/tiktok", env),
        Target("reference", [sys.executable, str(HERE / "reference_gateway.py"), topic, "{port}"], "/webhooks/tiktok",
               env),
        Target("gateway", [*product, "1"], "/healthz", env),
        Target("gateway_2w", [*product, "2"], "/healthz", env),
        Target("gateway_traced", [*product, "1"], "/healthz",
               {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp, "OTEL_TRACES_SAMPLER": "always_on"}),
    ]
    for variant in filter(None, os.environ.get("BENCH_GATEWAY_BEFORE", "").split(",")):
        name, _, where = variant.rpartition("=")
        found.append(Target(name or "before", [*product, "1"], "/healthz", {**env, "PYTHONPATH": where},
                            cwd=Path(where)))
    if only := os.environ.get("BENCH_GATEWAY_TARGETS"):
        found = [target for target in found if target.name in only.split(",")]
    return found


def main() -> None:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    settings = load_settings(shopsync_topic_prefix=prefix)
    asyncio.run(ensure_topics(settings))
    env = {"SHOPSYNC_TOPIC_PREFIX": prefix, "TIKTOK_APP_KEY": APP_KEY, "TIKTOK_APP_SECRET": APP_SECRET,
           "SHOPSYNC_LOG_LEVEL": "INFO", "SHOPSYNC_LOG_FORMAT": "json"}  # the product as shipped
    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="bench-gw-"))
    write_bodies(workdir)
    rounds = int(os.environ.get("BENCH_GATEWAY_ROUNDS", "2"))
    runs: dict[str, list[dict[str, Any]]] = {}
    sink = contextlib.ExitStack()
    try:
        order = targets(prefix, env, sink.enter_context(otlp_sink()))
        for round_no in range(rounds):
            for target in order:
                result = target.measure(wrk, workdir)
                runs.setdefault(target.name, []).append(result)
                print(f"round {round_no + 1} {target.name:9} {result}", flush=True)
        medians = {name: statistics.median(r["rps"] for r in results) for name, results in runs.items()}
        paced = {t.name: at_rate(t, medians[t.name] / 2, wrk, workdir)
                 for t in order if t.name in ("gateway", "gateway_2w") and "bare" in medians}
    finally:
        sink.close()
        asyncio.run(delete_prefixed_topics(settings))
        shutil.rmtree(workdir, ignore_errors=True)
    ratios = {f"{name}_over_{base}": round(medians[name] / medians[base], 3)
              for name in medians for base in ("bare", "reference") if name != base and base in medians}
    if "before" in medians and "gateway" in medians:
        ratios["gateway_over_before"] = round(medians["gateway"] / medians["before"], 3)
    if "gateway_traced" in medians and "gateway" in medians:
        ratios["gateway_traced_over_gateway"] = round(medians["gateway_traced"] / medians["gateway"], 3)
    write_result(os.environ.get("BENCH_GATEWAY_RESULT", "gateway"), {
        "load_generator": f"wrk -t2 -c{CONCURRENCY}, {WARMUP_S} s warm-up + {DURATION_S} s, 2,000 pre-signed bodies",
        "order": "interleaved: " + " ".join(t.name for t in order) + f" x{rounds}",
        "uvicorn": "one worker each; gateway_2w: the product with --workers 2",
        "median_rps": medians, "ratios": ratios, "runs": runs,
        "gateway_at_half_rate": paced.get("gateway", {}),
        "gateway_2w_at_half_rate": paced.get("gateway_2w", {}),
    })


if __name__ == "__main__":
    main()
