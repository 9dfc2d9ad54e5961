"""One trace from the POST that placed an order to the consumers that handled
its events, across real processes: a web server (granian), the outbox relay
(manage.py relay_outbox) and a Celery worker (prefork: the event consumers
in the main process, the saga's tasks in a pool process). Each process
exports its spans to a JSON-lines file of its own (OTEL_TRACES_EXPORTER=
jsonl); the test reads them back.

The same run checks the logs of every process, at DEBUG: JSON lines that
carry the trace and request ids, and none of the password, the tokens or
the Authorization header sent during registration, login, refresh and the
order.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
from kombu import Connection

from apps.orders.models import Order
from conftest import subprocess_database_env
from tests.polling import poll
from tests.servers import free_port
from tests.subprocesses import ROOT

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "orders", "catalog"]
)

SAGA_FAST = {
    "SAGA_RETRY_BACKOFF_SECONDS": "0.05",
    "RESILIENCE_RETRY_DELAYS_MS": "1,2,4",
}


class Process:
    """A subprocess whose output goes to a file (a pipe could fill up)."""

    def __init__(self, argv: list[str], env: dict[str, str], name: str):
        fd, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
        os.close(fd)
        self.log_path = Path(path)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"process exited:\n{self.output()[-5000:]}")
        return True

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Spans:
    """The spans every process has written so far."""

    def __init__(self, directory: Path):
        self.directory = directory

    def all(self) -> list[dict]:
        spans = []
        for path in sorted(self.directory.glob("spans-*.jsonl")):
            for line in path.read_text().splitlines():
                span = json.loads(line)
                span["pid"] = int(path.stem.removeprefix("spans-"))
                spans.append(span)
        return spans

    def named(self, name: str, trace_id: str | None = None) -> list[dict]:
        return [
            s
            for s in self.all()
            if s["name"] == name
            and (trace_id is None or s["context"]["trace_id"] == trace_id)
        ]


def service(span: dict) -> str:
    return span["resource"]["attributes"]["service.name"]


@pytest.fixture
def stack(transactional_db, events_exchange, tmp_path, products):
    """Web, relay and worker processes, tracing to files, logging at DEBUG."""
    queue = f"trace-{secrets.token_hex(6)}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        **subprocess_database_env(),
        "EVENTS_EXCHANGE": events_exchange,
        "SAGA_TASK_QUEUE": queue,
        **SAGA_FAST,
        "OTEL_TRACES_EXPORTER": "jsonl",
        "OTEL_EXPORTER_JSONL_FILE": str(tmp_path / "spans-{pid}.jsonl"),
        "OTEL_TRACES_SAMPLER_ARG": "1.0",
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "json",
    }
    port = free_port()
    web = Process(
        [
            sys.executable, "-m", "granian", "--interface", "wsgi",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--blocking-threads", "2", "--no-ws", "config.wsgi:application",
        ],
        env,
        "web",
    )  # fmt: skip
    relay = Process(
        [sys.executable, "manage.py", "relay_outbox"],
        {**env, "OUTBOX_RELAY_POLL_SECONDS": "0.2"},
        "relay",
    )
    hostname = f"{queue}@{os.uname()[1]}"
    worker = Process(
        [
            sys.executable, "-m", "celery", "-A", "config", "worker",
            "--pool", "prefork", "--concurrency", "1", "--queues", queue,
            "--hostname", hostname, "--without-gossip", "--without-mingle",
            "--without-heartbeat",
        ],
        {**env, "EVENT_CONSUMERS_ENABLED": "order_saga,analytics"},
        "worker",
    )  # fmt: skip
    processes = [web, relay, worker]
    base_url = f"http://127.0.0.1:{port}"
    try:
        from config.celery import app

        poll(
            lambda: (
                worker.alive() and app.control.ping(destination=[hostname], timeout=0.5)
            ),
            timeout=60,
            message="the worker to start",
        )
        poll(
            lambda: relay.alive() and "Outbox relay running." in relay.output(),
            timeout=60,
            message="the relay to start",
        )

        def web_ready():
            web.alive()
            try:
                return httpx.get(f"{base_url}/health/live").status_code == 200
            except httpx.TransportError:
                return False

        poll(web_ready, timeout=60, message="the web server to start")
        yield base_url, processes, Spans(tmp_path)
    finally:
        for process in processes:
            if process.process.poll() is None:
                process.process.terminate()
        for process in processes:
            process.stop()
        with Connection(env["CELERY_BROKER_URL"]) as connection:
            connection.default_channel.queue_delete(queue)
            connection.default_channel.exchange_delete(queue)
        for process in processes:
            process.log_path.unlink(missing_ok=True)


def test_one_trace_from_the_order_post_through_saga_relay_and_consumers(stack):
    base_url, processes, spans = stack
    trace_id, caller_span_id = secrets.token_hex(16), secrets.token_hex(8)
    request_id = f"req-{secrets.token_hex(6)}"
    password = f"Pw-{secrets.token_urlsafe(12)}"
    email = f"shopper-{secrets.token_hex(4)}@example.com"

    with httpx.Client(base_url=base_url, timeout=30) as client:
        registered = client.post(
            "/api/v1/users",
            json={"email": email, "name": "Trace Shopper", "password": password},
        )
        assert registered.status_code == 201, registered.text
        login = client.post(
            "/api/v1/users/login", json={"email": email, "password": password}
        )
        assert login.status_code == 200, login.text
        first = login.json()
        refreshed = client.post(
            "/api/v1/users/token/refresh", json={"refresh": first["refresh"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        tokens = refreshed.json()
        placed = client.post(
            "/api/v1/orders",
            json={"items": [{"product_id": "mug", "quantity": 1}]},
            headers={
                "Authorization": f"Bearer {tokens['access']}",
                "traceparent": f"00-{trace_id}-{caller_span_id}-01",
                "tracestate": "shop=test",
                "X-Request-ID": request_id,
            },
        )
    assert placed.status_code == 201, placed.text
    assert placed.headers["X-Request-ID"] == request_id
    order_id = placed.json()["id"]

    # The saga confirms the order; analytics takes the confirmation.
    poll(
        lambda: Order.objects.filter(id=order_id, status="confirmed").exists(),
        timeout=60,
        message="the order to be confirmed",
    )
    poll(
        lambda: any(
            s["attributes"].get("messaging.consumer.group.name") == "analytics"
            for s in spans.named("process order.confirmed", f"0x{trace_id}")
        ),
        timeout=30,
        message="the analytics consumer's span of order.confirmed",
    )

    in_trace = [s for s in spans.all() if s["context"]["trace_id"] == f"0x{trace_id}"]
    # The server honoured the caller's traceparent: its span is the child of
    # the caller's span, and the request's database work is in the trace.
    (server,) = [s for s in in_trace if s["kind"] == "SpanKind.SERVER"]
    assert server["parent_id"] == f"0x{caller_span_id}"
    assert server["name"] == "POST api/v1/orders"
    assert service(server) == "shop-web"
    assert server["attributes"]["shop.request_id"] == request_id
    assert any(
        s["attributes"].get("db.system") == "postgresql"
        and s["parent_id"] == server["context"]["span_id"]
        for s in in_trace
    )

    # The relay published both events in the trace, the consumers processed
    # them in it, and the saga's tasks ran in it (in the pool process: the
    # consumers run in the worker's main process).
    def one(name, consumer=None):
        found = [
            s
            for s in in_trace
            if s["name"] == name
            and consumer in (None, s["attributes"].get("messaging.consumer.group.name"))
        ]
        names = sorted({s["name"] for s in in_trace})
        assert found, f"no span {name!r} in the trace: {names}"
        return found[0]

    created_published = one("publish order.created")
    confirmed_published = one("publish order.confirmed")
    assert service(created_published) == service(confirmed_published) == "shop-relay"
    saga_consumer = one("process order.created", "order_saga")
    assert saga_consumer["parent_id"] == created_published["context"]["span_id"]
    analytics = one("process order.confirmed", "analytics")
    assert analytics["parent_id"] == confirmed_published["context"]["span_id"]
    steps = [s for s in in_trace if s["name"] == "run/sagas.tasks.saga_step_task"]
    assert len(steps) >= 3  # reserve, pay, ship
    assert {service(s) for s in steps} == {service(saga_consumer)} == {"shop-worker"}
    assert {s["pid"] for s in steps}.isdisjoint({saga_consumer["pid"]})
    # Every span of this order's events is in this one trace.
    order_event_spans = [
        s
        for s in spans.all()
        if s["attributes"].get("shop.event.aggregate_id") == order_id
    ]
    assert {s["context"]["trace_id"] for s in order_event_spans} == {f"0x{trace_id}"}

    for process in processes:
        process.stop()
    outputs = {p.log_path.stem.split("-")[0]: p.output() for p in processes}

    # The worker logs JSON lines; those written in a task carry its trace.
    worker_records = [
        json.loads(line) for line in outputs["worker"].splitlines() if line[:1] == "{"
    ]
    for record in worker_records:
        assert {"timestamp", "level", "logger", "message"} <= record.keys()
        assert {"trace_id", "span_id", "request_id", "user_id"} <= record.keys()
    assert any(
        r["trace_id"] == trace_id and "saga_step_task" in r["message"]
        for r in worker_records
    )

    # No secret in any process's output.
    everything = "\n".join(outputs.values())
    for secret in (
        password,
        first["access"],
        first["refresh"],
        tokens["access"],
        tokens["refresh"],
        f"Bearer {tokens['access']}",
    ):
        assert secret not in everything
