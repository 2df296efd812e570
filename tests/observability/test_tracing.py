"""OpenTelemetry traces: each service's spans (the SDK's in-memory exporter), tracing off by default, and one trace
across the gateway, ingest and mapping processes (`shopsync run --demo` exporting to an OTLP receiver run here)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.audit.timeline import entry_for
from services.mapping.service import MappingService
from services.order_ingest.outputs import OrderOutputs
from services.order_ingest.worker import IngestWorker
from services.webhook_gateway.app import create_app
from shared.kafka import create_consumer
from shared.orders import IngestedOrder
from shared.settings import Settings, load_settings
from shared.telemetry import child_span, tracing_requested, use_provider
from shared.topics import ORDERS_ENRICHED, ORDERS_INGESTED, TIKTOK_WEBHOOKS
from shopsync.commands.explain import trace_ids
from shopsync.demo import demo_topic_prefix
from tests.fakes import MemoryPublisher
from tests.mapping_harness import make_order
from tests.observability.test_prometheus_scrape import running_stack
from tests.sandbox import APP_KEY, APP_SECRET
from tests.servers import free_port
from tests.topicview import TopicView
from tests.waiting import eventually
from tests.webhooks import sign, webhook_body

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test, spans kept in memory; off again afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    use_provider(provider)
    try:
        yield exporter
    finally:
        use_provider(None)
        provider.shutdown()


def traceparent(span: ReadableSpan) -> str:
    context = span.get_span_context()
    assert context is not None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"  # 03: sampled, random id


def named(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def parent_of(span: ReadableSpan) -> tuple[int, int] | None:
    return (span.parent.trace_id, span.parent.span_id) if span.parent is not None else None


def ids(span: ReadableSpan) -> tuple[int, int]:
    context = span.get_span_context()
    assert context is not None
    return context.trace_id, context.span_id


class RecordingProducer:
    """A producer acknowledging every send at once, keeping (topic, key, headers)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, dict[str, str]]] = []

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None, headers: Any = None
                   ) -> asyncio.Future[None]:
        self.sent.append((topic, key, {k: v.decode() for k, v in headers or []}))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def gateway_settings() -> Settings:
    return load_settings(tiktok_app_key=APP_KEY, tiktok_app_secret=APP_SECRET)


async def post_webhook(publisher: MemoryPublisher) -> dict[str, str]:
    """One signed webhook through the gateway app (built now, so it sees the tracing switch); the record's headers."""
    app = create_app(gateway_settings(), publisher)
    body = webhook_body()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        answer = await client.post("/webhooks/tiktok", content=body, headers=sign(body))
    assert answer.status_code == 200
    return {k: v.decode() for k, v in publisher.records[-1][2]}


# ---- switch ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("environ", "exporter"), [
    ({}, None),
    ({"OTEL_SERVICE_NAME": "gw", "OTEL_TRACES_SAMPLER": "always_on"}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "otlp"),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, "otlp"),
    ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, None),
])
def test_tracing_is_on_only_when_the_standard_variables_ask(environ: dict[str, str], exporter: str | None) -> None:
    assert tracing_requested(environ) == exporter


async def test_tracing_off_the_gateway_still_starts_a_trace_and_records_no_span() -> None:
    headers = await post_webhook(MemoryPublisher())
    version, trace, span, flags = headers["traceparent"].split("-")
    assert (version, flags, len(trace), len(span)) == ("00", "01", 32, 16)


# ---- each service's spans --------------------------------------------------------------------------------------
async def test_gateway_receive_then_publish_and_the_record_carries_the_publish_span(
        spans: InMemorySpanExporter) -> None:
    headers = await post_webhook(MemoryPublisher())
    by_name = named(spans)
    receive, publish = by_name["webhook receive"], by_name["publish"]
    assert (receive.kind, publish.kind) == (SpanKind.SERVER, SpanKind.PRODUCER)
    assert receive.parent is None and parent_of(publish) == ids(receive)
    assert headers["traceparent"] == traceparent(publish)


async def test_ingest_consume_continues_the_records_trace(spans: InMemorySpanExporter) -> None:
    record = ConsumerRecord(TIKTOK_WEBHOOKS, 0, 7, 0, 0, b"k", b"{}", None, 1, 2, [("traceparent", PARENT.encode())])
    continued = IngestWorker._consumed(record)
    consume = named(spans)["consume"]
    assert consume.kind == SpanKind.CONSUMER
    assert consume.parent is not None and f"{consume.parent.trace_id:032x}" == PARENT.split("-")[1]
    assert consume.parent.span_id == int(PARENT.split("-")[2], 16)
    assert continued == traceparent(consume)


async def test_ingest_publish_is_a_child_and_its_record_carries_it(spans: InMemorySpanExporter) -> None:
    producer = RecordingProducer()
    outputs = OrderOutputs(producer, load_settings())
    assert await outputs.publish_order(make_order("o1", [("RED-L", "k1")]), PARENT)
    publish = named(spans)["publish"]
    assert publish.kind == SpanKind.PRODUCER and publish.parent is not None
    assert f"{publish.parent.span_id:016x}" == PARENT.split("-")[2]
    assert producer.sent[0][0].endswith(ORDERS_INGESTED) and producer.sent[0][2]["traceparent"] == traceparent(publish)


async def test_mapping_consume_then_publish_and_the_enriched_record_carries_it(spans: InMemorySpanExporter) -> None:
    settings = load_settings()
    producer = RecordingProducer()
    service = MappingService(settings, producer=producer, consumer=create_consumer(settings, None))
    order: IngestedOrder = make_order("o1", [("RED-L", "k1")])
    value = orjson.dumps(order.to_dict())
    record = ConsumerRecord(ORDERS_INGESTED, 0, 3, 0, 0, order.key.encode(), value, None, 1, len(value),
                            [("traceparent", PARENT.encode())])
    assert await service.on_order_record(record)
    by_name = named(spans)
    consume, publish = by_name["consume"], by_name["publish"]
    assert consume.parent is not None and f"{consume.parent.span_id:016x}" == PARENT.split("-")[2]
    assert parent_of(publish) == ids(consume)
    topic, _, headers = producer.sent[0]
    assert topic.endswith(ORDERS_ENRICHED) and headers["traceparent"] == traceparent(publish)


def test_a_batched_call_is_a_child_of_its_first_orders_span_and_linked_to_the_others(
        spans: InMemorySpanExporter) -> None:
    other = "00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01"
    with child_span("Get Order Detail", PARENT, SpanKind.CLIENT, linked=[PARENT, other, None, other, "garbage"]):
        pass
    call = named(spans)["Get Order Detail"]
    assert call.parent is not None and f"{call.parent.trace_id:032x}" == PARENT.split("-")[1]
    assert [(f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}") for link in call.links] == [
        tuple(other.split("-")[1:3])]


# ---- explain ---------------------------------------------------------------------------------------------------
def test_the_timeline_names_each_records_trace_and_explain_lists_them_once() -> None:
    doc = orjson.dumps({"shop_id": "s", "order_id": "o1", "order_version": 1, "lifecycle": "active"})
    entry = entry_for(ORDERS_INGESTED, b"s:o1", doc, [("traceparent", PARENT.encode())], 0)
    assert entry is not None and entry.detail["trace_id"] == PARENT.split("-")[1]
    untraced = entry_for(ORDERS_INGESTED, b"s:o1", doc, [], 0)
    assert untraced is not None and "trace_id" not in untraced.detail
    timeline = [{"detail": entry.detail}, {"detail": untraced.detail}, {"detail": {"trace_id": "b" * 32}},
                {"detail": entry.detail}]
    assert trace_ids(timeline) == [PARENT.split("-")[1], "b" * 32]


# ---- across processes ------------------------------------------------------------------------------------------
class OtlpReceiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1: decodes each export (protobuf) into (service, span) rows."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Any]] = []
        received = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = ExportTraceServiceRequest()
                request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
                for resource_spans in request.resource_spans:
                    service = next((a.value.string_value for a in resource_spans.resource.attributes
                                    if a.key == "service.name"), "")
                    received.extend((service, span) for scope in resource_spans.scope_spans for span in scope.spans)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None: ...

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def summary(self) -> dict[str, list[tuple[str, str]]]:
        """Each trace's (service, span name) pairs, for a failure message."""
        traces: dict[str, list[tuple[str, str]]] = {}
        for service, span in list(self.spans):
            traces.setdefault(span.trace_id.hex()[:8], []).append((service, span.name))
        return traces

    def complete_trace(self) -> dict[tuple[str, str], Any] | None:
        """The spans of one trace that went through all three processes, by (service, span name); None if none."""
        by_trace: dict[bytes, dict[tuple[str, str], Any]] = {}
        for service, span in list(self.spans):
            by_trace.setdefault(span.trace_id, {})[(service, span.name)] = span
        expected = {("shopsync-gateway", "webhook receive"), ("shopsync-gateway", "publish"),
                    ("shopsync-ingest", "consume"), ("shopsync-ingest", "Get Order Detail"),
                    ("shopsync-ingest", "publish"), ("shopsync-mapping", "consume"), ("shopsync-mapping", "publish")}
        return next((spans for spans in by_trace.values() if expected <= spans.keys()), None)


@pytest.mark.integration  # runs the whole stack (`shopsync run --demo`) in its own processes
async def test_one_webhook_is_one_trace_across_gateway_ingest_and_mapping(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ports = {name: free_port() for name in ("gateway", "ingest", "mapping", "audit", "sandbox", "sync", "owner")}
    demo = settings.model_copy(update={"shopsync_topic_prefix": demo_topic_prefix(settings.shopsync_topic_prefix)})
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
        async with running_stack(settings, tmp_path, ports) as lines:
            async with TopicView(demo, ORDERS_ENRICHED) as view:
                await view.until(lambda rs: len(rs) >= 1 or bool(lines and "Traceback" in "".join(lines)),
                                 within=120)
            enriched_trace = dict(view.records[0].headers)["traceparent"].decode().split("-")[1]
            await eventually(lambda: receiver.complete_trace() is not None, within=60, every=0.2,
                             what=lambda: f"one trace with the spans of gateway, ingest and mapping; received: "
                                          f"{receiver.summary()}")
    trace = receiver.complete_trace()
    assert trace is not None
    assert enriched_trace in {span.trace_id.hex() for _, span in receiver.spans}  # the record names its trace

    def parent(child: tuple[str, str], of: tuple[str, str]) -> None:
        assert trace[child].parent_span_id == trace[of].span_id, f"{child} is not a child of {of}"

    gateway, ingest, mapping = "shopsync-gateway", "shopsync-ingest", "shopsync-mapping"
    assert trace[(gateway, "webhook receive")].parent_span_id == b""
    parent((gateway, "publish"), (gateway, "webhook receive"))
    parent((ingest, "consume"), (gateway, "publish"))
    parent((ingest, "Get Order Detail"), (ingest, "consume"))
    parent((ingest, "publish"), (ingest, "consume"))
    parent((mapping, "consume"), (ingest, "publish"))
    parent((mapping, "publish"), (mapping, "consume"))
