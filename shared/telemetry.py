"""OpenTelemetry traces, off unless the standard environment variables ask for them.

`configure_tracing` installs a TracerProvider when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set
or `OTEL_TRACES_EXPORTER` is `otlp` or `console`; the SDK itself honours `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`,
`OTEL_BSP_*` and the OTLP variables. Until then `tracer()` is None and `child_span` records nothing, so a service
with tracing off keeps `shared.tracing`'s cheap hand-made traceparents and pays one `is None` check per span site.

The context travels in the Kafka records' W3C `traceparent` header: each span site takes the parent as that string
and yields its own span's traceparent for the records it publishes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Link, Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

INSTRUMENTATION = "shopsync"
_PROPAGATOR = TraceContextTextMapPropagator()
_tracer: Tracer | None = None  # set once by `configure_tracing` (or a test's `use_provider`)


def tracing_requested(environ: Mapping[str, str]) -> str | None:
    """The exporter the environment asks for (`otlp` or `console`), or None: tracing stays off."""
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter in ("otlp", "console"):
        return exporter
    if exporter in ("", "otlp") and (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                                     or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return "otlp"
    return None


def configure_tracing(service_name: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Export this process's spans as the environment says (`service_name` unless `OTEL_SERVICE_NAME` is set);
    True if tracing is on. The provider flushes its spans at interpreter exit."""
    exporter_name = tracing_requested(environ)
    if exporter_name is None:
        return False
    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter(service_name=service_name)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # only when used

        exporter = OTLPSpanExporter()
    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))  # sampler from OTEL_TRACES_SAMPLER
    provider.add_span_processor(BatchSpanProcessor(exporter))
    use_provider(provider)
    return True


def use_provider(provider: TracerProvider | None) -> None:
    """Record spans with `provider` from now on (None: tracing off); tests use it with an in-memory exporter."""
    global _tracer  # the one switch every span site checks; set at start-up, before serving
    _tracer = provider.get_tracer(INSTRUMENTATION) if provider is not None else None


def tracer() -> Tracer | None:
    """The tracer when tracing is on, else None (read it once, where a hot path is built)."""
    return _tracer


def traceparent_of(span: Span) -> str:
    """The W3C traceparent naming `span`, for the records published under it."""
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def parent_context(traceparent: str | None) -> Context | None:
    """The remote parent a traceparent header names (None or an invalid value: no parent, a new trace)."""
    return _PROPAGATOR.extract({"traceparent": traceparent}) if traceparent else None


_OFF: contextlib.AbstractContextManager[str | None] = contextlib.nullcontext(None)  # reusable, nearly free


def links_to(traceparents: Iterable[str | None], besides: str | None) -> list[Link]:
    """Links to the other spans a batched operation serves (each valid traceparent once, `besides` left out)."""
    links = []
    for traceparent in dict.fromkeys(traceparents):
        if traceparent and traceparent != besides:
            context = trace.get_current_span(parent_context(traceparent)).get_span_context()
            if context.is_valid:
                links.append(Link(context))
    return links


def child_span(name: str, parent: str | None, kind: SpanKind,
               attributes: Mapping[str, AttributeValue] | None = None,
               linked: Iterable[str | None] = ()) -> contextlib.AbstractContextManager[str | None]:
    """A span continuing the trace of `parent` (a traceparent) and linked to the spans `linked` names, yielding the
    span's own traceparent; when tracing is off, records nothing and yields None (the caller keeps its hand-made
    traceparent) through a shared `nullcontext`: no generator per call on the ingest's and mapping's per-record
    paths."""
    current = _tracer
    if current is None:
        return _OFF
    return _span(current, name, parent, kind, attributes, links_to(linked, parent))


@contextlib.contextmanager
def _span(current: Tracer, name: str, parent: str | None, kind: SpanKind,
          attributes: Mapping[str, AttributeValue] | None, links: list[Link]) -> Iterator[str]:
    with current.start_as_current_span(name, context=parent_context(parent), kind=kind, attributes=attributes,
                                       links=links) as span:
        yield traceparent_of(span)
