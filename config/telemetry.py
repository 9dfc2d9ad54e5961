"""OpenTelemetry tracing: the one place it is set up, once per process.

Called at start-up by config/wsgi.py and config/asgi.py (role "web"), the
Celery worker (config/celery.py, "worker") and the long-running relay
command ("relay"), after the settings module is chosen and before the first
request, task or database connection.

Two modes (ADR 0024):

- off (OTEL_TRACES_EXPORTER=none, the default, or OTEL_SDK_DISABLED=true):
  no SDK, no spans, and no instrumentation on the hot paths (requests,
  database, Redis). W3C trace context still passes through: an incoming
  ``traceparent`` is taken by apps.core.middleware, stored with outbox
  events, sent in AMQP headers, and carried by Celery tasks and outgoing
  httpx calls (their instrumentations run with the API's no-op tracer,
  which hands the incoming context on unchanged).
- on (an exporter: otlp, console or jsonl): the SDK with a parent-based
  ratio sampler, and Django, psycopg, pymongo, Redis, httpx and Celery
  instrumented.
"""

import os
import threading

_configured_role: str | None = None
_provider = None

EXPORTERS = ("none", "otlp", "console", "jsonl")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


def tracing_enabled() -> bool:
    """Whether this configuration records spans (read from the settings)."""
    from django.conf import settings

    return not settings.OTEL_SDK_DISABLED and settings.OTEL_TRACES_EXPORTER != "none"


def configure_tracing(role: str) -> bool:
    """Set up tracing for this process, playing ``role`` (web, worker,
    relay); return whether spans are recorded. A second call does nothing:
    a process has one tracer provider."""
    global _configured_role
    if _configured_role is not None:
        return _provider is not None
    _configured_role = role
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    if settings.OTEL_TRACES_EXPORTER not in EXPORTERS:
        raise ImproperlyConfigured(
            f"OTEL_TRACES_EXPORTER must be one of {', '.join(EXPORTERS)}"
        )
    if not tracing_enabled():
        _instrument_propagation_only()
        return False
    _install_provider(role, settings)
    _instrument_everything(settings)
    return True


def flush(timeout_millis: int = 5000) -> None:
    """Export what is buffered (before a process exits without atexit:
    Celery's prefork children)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)


def _instrument_propagation_only() -> None:
    # Outgoing calls and Celery tasks carry the current context on; with
    # no SDK their wrappers only copy headers (microseconds, on calls that
    # cost milliseconds). Requests, queries and cache calls stay bare.
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument()
    CeleryInstrumentor().instrument()


def _install_provider(role: str, settings) -> None:
    global _provider
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create(
        {
            "service.name": settings.OTEL_SERVICE_NAME or f"shop-{role}",
            "service.version": settings.SERVICE_VERSION,
            "service.namespace": "shop",
            "process.role": role,
        }
    )
    _provider = TracerProvider(resource=resource, sampler=_sampler(settings))
    _provider.add_span_processor(
        PerProcessSpanProcessor(lambda: _span_processor(settings))
    )
    trace.set_tracer_provider(_provider)


def _sampler(settings):
    from django.core.exceptions import ImproperlyConfigured
    from opentelemetry.sdk.trace import sampling

    name = settings.OTEL_TRACES_SAMPLER
    ratio = settings.OTEL_TRACES_SAMPLER_ARG
    if name not in SAMPLERS:
        raise ImproperlyConfigured(
            f"OTEL_TRACES_SAMPLER must be one of {', '.join(SAMPLERS)}"
        )
    if not 0.0 <= ratio <= 1.0:
        raise ImproperlyConfigured("OTEL_TRACES_SAMPLER_ARG must be within 0-1")
    root = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": sampling.TraceIdRatioBased(ratio),
    }[name.removeprefix("parentbased_")]
    return sampling.ParentBased(root) if name.startswith("parentbased_") else root


def _span_processor(settings):
    """A fresh exporter and processor (one per process: see
    PerProcessSpanProcessor)."""
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    exporter = settings.OTEL_TRACES_EXPORTER
    if exporter == "console":
        # Printed as each span ends, one line a span: readable in a
        # terminal beside the log lines.
        return SimpleSpanProcessor(ConsoleSpanExporter(formatter=_span_line))
    if exporter == "jsonl":
        return SimpleSpanProcessor(
            JsonLinesSpanExporter(settings.OTEL_EXPORTER_JSONL_FILE)
        )
    return BatchSpanProcessor(_otlp_exporter(settings))


def _otlp_exporter(settings):
    """OTLP over HTTP (protobuf) or gRPC. Headers, timeout, compression and
    certificates come from the standard OTEL_EXPORTER_OTLP_* variables,
    which the exporters read themselves."""
    from django.core.exceptions import ImproperlyConfigured

    protocol = settings.OTEL_EXPORTER_OTLP_PROTOCOL
    endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT or None
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter,
        )

        return OTLPSpanExporter(endpoint=endpoint)
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        # The generic endpoint names the collector; traces go to its
        # /v1/traces (as the exporter does when it reads the variable).
        if endpoint is not None:
            endpoint = endpoint.rstrip("/") + "/v1/traces"
        return OTLPSpanExporter(endpoint=endpoint)
    raise ImproperlyConfigured(
        "OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or grpc"
    )


def _instrument_everything(settings) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    # Django's adds its middleware first in MIDDLEWARE: it must run before
    # the handler loads the middleware (wsgi.py calls this first). Query
    # text is recorded with its placeholders, never its parameters; Redis
    # commands as "SET ? ?"; MongoDB commands not at all.
    DjangoInstrumentor().instrument(
        excluded_urls=settings.OTEL_PYTHON_DJANGO_EXCLUDED_URLS
    )
    PsycopgInstrumentor().instrument()
    PymongoInstrumentor().instrument()
    RedisInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument()
    CeleryInstrumentor().instrument()


class PerProcessSpanProcessor:
    """The span processor, and so the exporter, of this process.

    A forked child (a Celery prefork pool process, a server's worker) builds
    its own on its first span instead of sharing the parent's: a parent's
    HTTP keep-alive socket or gRPC channel must not be used from two
    processes, and the parent's queued spans are the parent's to send.
    """

    def __init__(self, factory):
        self._factory = factory
        self._delegate = None
        self._pid = None
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._delegate = None
        self._pid = None

    def _get(self):
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._delegate = self._factory()
                    self._pid = os.getpid()
        return self._delegate

    def on_start(self, span, parent_context=None) -> None:
        self._get().on_start(span, parent_context=parent_context)

    def on_end(self, span) -> None:
        self._get().on_end(span)

    def _on_ending(self, span) -> None:
        self._get()._on_ending(span)

    def shutdown(self) -> None:
        if self._delegate is not None and self._pid == os.getpid():
            self._delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self._delegate is not None and self._pid == os.getpid():
            return self._delegate.force_flush(timeout_millis)
        return True


class JsonLinesSpanExporter:
    """Appends each finished span as one JSON object a line to a file;
    ``{pid}`` in the path becomes the process id. For tests and for looking
    at spans without a collector."""

    def __init__(self, path: str):
        from django.core.exceptions import ImproperlyConfigured

        if not path:
            raise ImproperlyConfigured(
                "OTEL_TRACES_EXPORTER=jsonl needs OTEL_EXPORTER_JSONL_FILE"
            )
        self.path = path

    def export(self, spans):
        from opentelemetry.sdk.trace.export import SpanExportResult

        lines = "".join(span.to_json(indent=None) + "\n" for span in spans)
        # One write of whole lines in append mode: processes sharing a file
        # do not interleave within a line.
        with open(self.path.format(pid=os.getpid()), "a", encoding="utf-8") as out:
            out.write(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _span_line(span) -> str:
    context = span.get_span_context()
    parent = span.parent.span_id if span.parent else 0
    duration_ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    return (
        f"span trace_id={context.trace_id:032x} span_id={context.span_id:016x} "
        f"parent_id={parent:016x} {duration_ms:.1f}ms {span.name}\n"
    )
