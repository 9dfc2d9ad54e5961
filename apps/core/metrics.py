"""Prometheus metrics: the cross-cutting ones, the exposition and who may
read it (ADR 0023).

Counters and histograms written by code paths live in prometheus_client's
multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set (the Docker image
sets it): each process writes its own memory-mapped files in that
directory and the exposition sums them, so the figures are right whichever
of the server's worker processes (or Celery's pool processes) did the work.
The directory must be emptied before the processes start (the image's
entrypoint does it).

State that lives in the databases or the broker (orders by status, the
outbox backlog, stuck sagas, dead letters) is not kept in gauges: the
collectors named by ``METRICS_COLLECTORS`` measure it when ``/metrics`` is
scraped, in the process that serves the scrape, with cheap queries whose
answer is kept for ``METRICS_STATE_CACHE_SECONDS``.

Metric names are a contract with the alert rules and the dashboards
(README, "Metrics"): rename nothing without them.
"""

import hmac
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Iterable
from functools import cache

from django.conf import settings
from django.http import HttpResponse
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from django_prometheus import middleware as django_prometheus
from django_prometheus.utils import Time, TimeSince
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger("apps.core.metrics")

# -- Cross-cutting metrics ---------------------------------------------------
# A gauge set by code paths needs a multiprocess mode: "mostrecent" reports
# the value last written by any process (the latest readiness result, the
# latest breaker transition), whether or not that process still lives.

RATE_LIMIT_REJECTIONS = Counter(
    "shop_rate_limit_rejections",
    "Requests refused with 429 by a rate limit.",
    ["limit"],
)
CONSUMER_REDELIVERIES = Counter(
    "shop_consumer_redeliveries",
    "Event deliveries to a consumer that were not the first (a broker "
    "redelivery or a retry after a failure).",
    ["queue"],
)
CELERY_TASKS = Counter(
    "shop_celery_tasks",
    "Celery tasks run, by task and final state (Celery's state, lower "
    "case: success, failure, retry, ignored, rejected).",
    ["task", "state"],
)
CELERY_TASK_DURATION = Histogram(
    "shop_celery_task_duration_seconds",
    "How long Celery tasks ran, by task.",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
READINESS_OK = Gauge(
    "shop_readiness_ok",
    "1 when the check passed at the last /health/ready, 0 when it failed.",
    ["check"],
    multiprocess_mode="mostrecent",
)


# -- Request metrics (django-prometheus) --------------------------------------


class _KeepsLabelledChildren:
    """django-prometheus asks each metric for its labelled child on every
    request, about ten times (``labels()`` validates the names, takes a
    lock and builds a key each time: a tenth of ``/health/live``'s CPU).
    Its ``label_metric`` hook is overridden to keep the children it got;
    the label values are the ones the metrics hold anyway (methods mapped
    to a fixed set, view names, status codes, charsets), so the dict is
    bounded by the metrics' own cardinality."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._children = {}

    def label_metric(self, metric, request, response=None, **labels):
        if not labels:
            return metric
        key = (id(metric), *labels.items())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(**labels)
        return child


class PrometheusBeforeMiddleware(
    _KeepsLabelledChildren, django_prometheus.PrometheusBeforeMiddleware
):
    """django-prometheus' first middleware, same metrics."""


class PrometheusAfterMiddleware(
    _KeepsLabelledChildren, django_prometheus.PrometheusAfterMiddleware
):
    """django-prometheus' last middleware, writing only what the alert rules
    and the dashboard read: requests by view (``process_view``), responses
    by status and view, latency by view, exceptions. The library also
    counts every request and response by method, by transport and by
    charset and observes both body sizes, eight more series written per
    request that nothing reads: about 10 µs of a 140 µs ``/health/live``
    (docs/performance.md). The first middleware still measures the whole
    stack's latency."""

    def process_request(self, request):
        request.prometheus_after_middleware_event = Time()

    def process_response(self, request, response):
        view = self._get_view_name(request)
        method = self._method(request)
        self.label_metric(
            self.metrics.responses_by_status_view_method,
            request,
            response,
            status=str(response.status_code),
            view=view,
            method=method,
        ).inc()
        started = getattr(request, "prometheus_after_middleware_event", None)
        if started is None:
            self.metrics.requests_unknown_latency.inc()
        else:
            self.label_metric(
                self.metrics.requests_latency_by_view_method,
                request,
                response,
                view=view,
                method=method,
            ).observe(TimeSince(started))
        return response


def rate_limit_rejected(limit: str) -> None:
    """Count one request refused by the rate limit named ``limit``
    (e.g. "login", "user", "client")."""
    RATE_LIMIT_REJECTIONS.labels(limit=limit).inc()


def readiness_observed(checks: dict[str, str]) -> None:
    """Record the outcome of each readiness check ("ok" or "down: ...")."""
    for name, state in checks.items():
        READINESS_OK.labels(check=name).set(1 if state == "ok" else 0)


# -- Celery tasks (signals connected in config/celery.py) ---------------------

_task_started: dict[str, float] = {}


def celery_task_prerun(task_id=None, task=None, **kwargs) -> None:
    if task_id is not None:
        _task_started[task_id] = time.perf_counter()


def celery_task_postrun(task_id=None, task=None, state=None, **kwargs) -> None:
    started = _task_started.pop(task_id, None) if task_id is not None else None
    name = getattr(task, "name", None) or "unknown"
    CELERY_TASKS.labels(task=name, state=str(state or "unknown").lower()).inc()
    if started is not None:
        CELERY_TASK_DURATION.labels(task=name).observe(time.perf_counter() - started)


def celery_worker_exporter_start(**kwargs) -> None:
    """Serve this worker's metrics on ``CELERY_METRICS_PORT`` (0: not at
    all), from the worker's main process. With a multiprocess directory the
    pool processes' figures are included; the database state is not (the
    web's /metrics has it)."""
    port = int(getattr(settings, "CELERY_METRICS_PORT", 0))
    if not port:
        return
    from prometheus_client import start_http_server

    address = getattr(settings, "CELERY_METRICS_ADDRESS", "0.0.0.0")  # noqa: S104
    try:
        start_http_server(port, addr=address, registry=_process_registry())
    except OSError as exc:
        # Another worker on this host has the port: run without it.
        logger.warning(
            "Celery metrics: cannot listen on %s:%s (%r)", address, port, exc
        )
        return
    logger.info("Celery metrics on http://%s:%s/metrics", address, port)


# -- State measured at scrape time --------------------------------------------


class StateCollector:
    """A collector of state read from a database or the broker when
    scraped; the answer is kept for METRICS_STATE_CACHE_SECONDS, so that
    several scrapers cost one measurement. A failed measurement logs a
    warning and yields nothing (the series go absent)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._families: list[Metric] = []
        self._measured_at: float | None = None

    def measure(self) -> Iterable[Metric]:
        raise NotImplementedError

    def collect(self) -> Iterable[Metric]:
        ttl = float(getattr(settings, "METRICS_STATE_CACHE_SECONDS", 10))
        with self._lock:
            now = time.monotonic()
            if self._measured_at is None or now - self._measured_at >= ttl:
                try:
                    self._families = list(self.measure())
                except Exception as exc:  # noqa: BLE001 - a scrape must answer
                    logger.warning("Metrics: %s failed: %r", type(self).__name__, exc)
                    self._families = []
                self._measured_at = now
            return list(self._families)


class _Collected:
    """Everything a collector (or registry) yields, as one collector."""

    def __init__(self, source):
        self.source = source

    def collect(self):
        return self.source.collect()


def _multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def _process_registry():
    """What the code paths of this process (and its siblings sharing the
    multiprocess directory) have counted."""
    if _multiprocess_dir():
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


@cache
def _scrape_registry(collectors: tuple[str, ...], multiprocess_dir: str):
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collected(_process_registry()))
    for path in collectors:
        registry.register(import_string(path)())
    return registry


def scrape_registry() -> CollectorRegistry:
    """The registry /metrics exposes: the counted metrics and the state
    collectors."""
    return _scrape_registry(
        tuple(getattr(settings, "METRICS_COLLECTORS", ())), _multiprocess_dir()
    )


# -- Who may scrape -----------------------------------------------------------

# Headers a reverse proxy (an Ingress, a load balancer) adds: a request that
# carries one came from outside, whatever its peer address.
_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


@cache
def _networks(cidrs: tuple[str, ...]):
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def scrape_allowed(request) -> bool:
    """A request with ``Authorization: Bearer <METRICS_BEARER_TOKEN>`` (when
    the token is set), or one straight from an address in
    METRICS_ALLOWED_CIDRS that no proxy forwarded."""
    token = getattr(settings, "METRICS_BEARER_TOKEN", "")
    if token:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
    if any(header in request.META for header in _PROXY_HEADERS):
        return False
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    networks = _networks(tuple(getattr(settings, "METRICS_ALLOWED_CIDRS", ())))
    return any(peer in network for network in networks)


@csrf_exempt
@never_cache
@require_GET
def metrics_view(request):
    """Prometheus' text exposition of every metric (ADR 0023)."""
    if not scrape_allowed(request):
        # Imported here: this module is imported by config/celery.py,
        # before Django's apps are ready.
        from apps.core.problems import problem, problem_response

        return problem_response(
            request,
            problem(
                403,
                "metrics_forbidden",
                "Metrics are served to the monitoring network only.",
            ),
        )
    return HttpResponse(
        generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST
    )
