#!/usr/bin/env python
"""Orders, events and the create-order saga under load, in production
configuration, with a real broker and real worker processes.

    .venv/bin/python bench/orders.py                 # the documented run
    .venv/bin/python bench/orders.py --reps 1 --drain-orders 300 --workers 1x1

What it starts, all on 127.0.0.1, all with ``config.settings.prod`` and the
environment bench/run.py gives its servers (plus ``EVENTS_PUBLISHER=amqp``):
the web server (granian, ``--server``), the outbox relay
(``manage.py relay_outbox``) and Celery workers (``celery -A config worker``).
Its own databases (``bench_orders_*``, recreated each run), its own events
exchange and saga task queue on RabbitMQ (named after the run, deleted at
the end), so that nobody else's workers see its messages.

Phases:

1. placement: the ceiling (``GET /health/live``) and ``POST /api/v1/orders``
   with wrk (``bench/wrk/orders.lua``: 1-3 random products, a new
   Idempotency-Key each request), ``-c16``, repetitions interleaved, the web
   server alone (no relay, no worker): req/s, latency, server CPU per order;
2. relay: the events phase 1 left pending, published by ``relay_publish_all``
   with publisher confirms, in a process of its own: events/s;
3. for each worker configuration (``--workers``, INSTANCESxCONCURRENCY):
   a. drain: ``--drain-orders`` orders placed and their ``order.created``
      relayed with no worker running, then the workers start; sagas
      confirmed per second (first saga created to last order confirmed);
   b. latency under load: orders placed open-loop at fixed rates (fractions
      ``--loads`` of the drain rate) for ``--open-seconds``, relay and
      workers running; placement latency (from the scheduled send),
      placement -> CONFIRMED, and event latency from the event's write to
      each consumer's inbox entry;
4. placement with the pipeline running: wrk ``-c16`` for ``--duration`` s
   with the relay and the last worker configuration running, then the
   backlog drained: placements/s and confirmations/s side by side.

Writes bench/results/<UTC time>-orders/results.json and prints markdown.
See bench/README.md and docs/performance.md.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

from bench import run  # noqa: E402

HOST = run.HOST
DB_NAMES = {
    "default": ("DATABASE_URL", "bench_orders_default"),
    "orders": ("ORDERS_DATABASE_URL", "bench_orders_orders"),
    "catalog": ("CATALOG_DATABASE_URL", "bench_orders_catalog"),
}
PLACE = "POST /api/v1/orders"
ORDER_WAIT_S = 180  # the longest a phase waits for its sagas to finish


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------
def group_cpu_seconds(pgids: set[int]) -> float:
    """CPU time used so far by the processes of these process groups."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) in pgids:
            # utime + stime, and the same of its children that ended
            ticks += sum(int(field) for field in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def comm_cpu_seconds(names: tuple[str, ...]) -> float:
    """CPU time of every process with one of these names (anyone's)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        if comm.startswith(names):
            fields = text.rpartition(")")[2].split()
            # With its ended children's: the postmaster's hold the time of
            # the backends of closed connections.
            ticks += sum(int(field) for field in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


class Proc:
    """A helper process (relay, worker) in its own process group."""

    def __init__(self, name: str, argv: list[str], env, cwd: Path, log: Path):
        self.name = name
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def stop(self) -> None:
        run.stop_group(self.proc, self.log, grace_s=30)


def start_relay(env, src: Path, log: Path) -> Proc:
    argv = [sys.executable, "manage.py", "relay_outbox"]
    return Proc("relay", argv, env, src, log)


def start_workers(spec: str, env, src: Path, queue: str, log: Path) -> list[Proc]:
    instances, _, concurrency = spec.partition("x")
    workers = []
    for number in range(int(instances)):
        argv = [
            str(run.BIN / "celery"), "-A", "config", "worker",
            "-Q", queue,
            "--concurrency", concurrency or "1",
            "--pool", "prefork",
            # Keep to itself: others' workers share the broker.
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-n", f"bench{number}-{uuid.uuid4().hex[:6]}@%h",
            "--loglevel", "WARNING",
        ]  # fmt: skip
        workers.append(Proc(f"worker{number}", argv, env, src, log))
    return workers


def stop_all(procs: list[Proc]) -> None:
    for proc in procs:
        proc.stop()


# ---------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------
def order_body(rng: random.Random, products: list[str]) -> bytes:
    lines = [
        {"product_id": product_id, "quantity": rng.randint(1, 3)}
        for product_id in rng.sample(products, rng.randint(1, 3))
    ]
    return json.dumps({"items": lines}).encode()


def open_loop(port, token, products, rate: float, seconds: float, clients=16):
    """Place ``rate`` orders a second for ``seconds``, on a fixed schedule
    (open loop): latency is counted from each order's scheduled time, so a
    slow answer delays none of the later ones' clocks. Returns per order
    (status, latency s, order id)."""
    count = max(1, int(rate * seconds))
    start = time.monotonic() + 0.2
    slots = itertools.count()
    results: list = [None] * count

    def client():
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        rng = random.Random()
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
        }
        while (index := next(slots)) < count:
            due = start + index / rate
            if (delay := due - time.monotonic()) > 0:
                time.sleep(delay)
            headers["Idempotency-Key"] = uuid.uuid4().hex
            try:
                conn.request(
                    "POST", "/api/v1/orders", order_body(rng, products), headers
                )
                response = conn.getresponse()
                raw = response.read()
                status = response.status
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
                status, raw = 0, b""
            order_id = json.loads(raw)["id"] if status == 201 else None
            results[index] = (status, time.monotonic() - due, order_id)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def wrk_orders(args, port, token, products, seconds) -> dict:
    script = BENCH_DIR / "wrk" / "orders.lua"
    cmd = [
        "wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{seconds}s",
        f"--timeout={args.wrk_timeout}s", "--latency", "-s", str(script),
        f"http://{HOST}:{port}/api/v1/orders",
        "--", token, ",".join(products), uuid.uuid4().hex[:12],
    ]  # fmt: skip
    return _wrk(cmd, seconds, args)


def wrk_get(args, port, path, seconds) -> dict:
    script = BENCH_DIR / "wrk" / "get.lua"
    cmd = [
        "wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{seconds}s",
        f"--timeout={args.wrk_timeout}s", "--latency", "-s", str(script),
        f"http://{HOST}:{port}{path}",
    ]  # fmt: skip
    return _wrk(cmd, seconds, args)


def _wrk(cmd, seconds, args) -> dict:
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + args.wrk_timeout + 30
    )
    if done.returncode != 0:
        raise run.BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line.removeprefix("BENCH_RESULT "))
    raise run.BenchError(f"no BENCH_RESULT line in wrk's output:\n{done.stdout}")


PG_URL = f"postgres://postgres@{HOST}:5432/postgres"


def pg_counters() -> dict[str, float]:
    """Transactions committed in (read-only ones included) and connections
    opened to the bench's databases, and WAL flushes (fsyncs) of the whole
    server (anyone's; few when the machine is quiet). PostgreSQL publishes
    these counters within about a second."""
    import psycopg

    names = [name for _, name in DB_NAMES.values()]
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
        commits, sessions = conn.execute(
            "SELECT coalesce(sum(xact_commit), 0), coalesce(sum(sessions), 0)"
            " FROM pg_stat_database WHERE datname = ANY(%s)",
            (names,),
        ).fetchone()
        wal_syncs = conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()[0]
    return {
        "commits": float(commits),
        "sessions": float(sessions),
        "wal_syncs": float(wal_syncs),
    }


def measured(call, pgids: set[int]):
    """Run ``call``; return its result, wall seconds and CPU seconds of the
    process groups, of PostgreSQL and of RabbitMQ meanwhile, and what
    PostgreSQL committed and flushed."""
    cpu0 = group_cpu_seconds(pgids)
    pg0, mq0 = comm_cpu_seconds(("postgres",)), comm_cpu_seconds(("beam.smp",))
    counters0 = pg_counters()
    started = time.monotonic()
    result = call()
    wall = time.monotonic() - started
    cpu = {
        "wall_s": wall,
        "cpu_s": group_cpu_seconds(pgids) - cpu0,
        "postgres_cpu_s": comm_cpu_seconds(("postgres",)) - pg0,
        "rabbitmq_cpu_s": comm_cpu_seconds(("beam.smp",)) - mq0,
    }
    time.sleep(1.1)  # PostgreSQL's statistics lag up to a second
    counters = pg_counters()
    return result, cpu | {key: counters[key] - counters0[key] for key in counters}


# ---------------------------------------------------------------------------
# What the databases say (Django in this process, on the bench databases)
# ---------------------------------------------------------------------------
def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pick(q):
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "n": len(ordered),
        "p50_ms": round(pick(0.50) * 1000, 1),
        "p95_ms": round(pick(0.95) * 1000, 1),
        "p99_ms": round(pick(0.99) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def finished_count(order_ids) -> int:
    from apps.orders.models import Order

    done = 0
    ids = list(order_ids)
    for chunk in range(0, len(ids), 2000):
        done += (
            Order.objects.filter(pk__in=ids[chunk : chunk + 2000])
            .exclude(status="pending")
            .count()
        )
    return done


def wait_finished(order_ids, deadline_s: float) -> tuple[int, float]:
    """Poll until every order left PENDING; return (finished, seconds)."""
    started = time.monotonic()
    while True:
        done = finished_count(order_ids)
        elapsed = time.monotonic() - started
        if done >= len(order_ids) or elapsed > deadline_s:
            return done, elapsed
        time.sleep(0.25)


def wait_consumed(event_ids, deadline_s: float) -> bool:
    """Poll until every consumer's inbox holds every event."""
    from django.apps import apps
    from django.conf import settings

    ids = list(event_ids)
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        if all(
            apps.get_model(spec["inbox"])
            .objects.filter(consumer=name, event_id__in=ids)
            .count()
            >= len(ids)
            for name, spec in settings.EVENT_CONSUMERS.items()
        ):
            return True
        time.sleep(0.25)
    return False


def saga_figures(order_ids) -> dict:
    """Placement -> CONFIRMED per order, and sagas confirmed per second
    (first saga created to last order confirmed), from the rows' times."""
    from apps.orders.models import Order, OrderStatusChange
    from sagas.models import Saga

    ids = list(order_ids)
    created = dict(Order.objects.filter(pk__in=ids).values_list("pk", "created_at"))
    confirmed = dict(
        OrderStatusChange.objects.filter(
            order_id__in=ids, to_status="confirmed"
        ).values_list("order_id", "created_at")
    )
    statuses = {}
    for status in Order.objects.filter(pk__in=ids).values_list("status", flat=True):
        statuses[status] = statuses.get(status, 0) + 1
    saga_starts = list(
        Saga.objects.filter(order_id__in=ids).values_list("created_at", flat=True)
    )
    figures = {
        "orders": len(ids),
        "statuses": statuses,
        "placed_to_confirmed": percentiles(
            [(confirmed[i] - created[i]).total_seconds() for i in confirmed]
        ),
    }
    if confirmed and saga_starts:
        span = (max(confirmed.values()) - min(saga_starts)).total_seconds()
        figures["confirm_span_s"] = round(span, 2)
        figures["confirmed_per_s"] = round(len(confirmed) / span, 1) if span else None
        placed_span = (max(created.values()) - min(created.values())).total_seconds()
        figures["placed_span_s"] = round(placed_span, 2)
    return figures


def event_figures(order_ids) -> dict:
    """Event latency: from the event's row (written in the order's
    transaction, a few ms before its commit) to the relay's mark, and to
    each consumer's inbox entry (written in the consumer's transaction)."""
    from django.apps import apps
    from django.conf import settings

    from apps.orders.messaging_models import OutboxEvent

    ids = [str(i) for i in order_ids]
    events = {}
    for chunk in range(0, len(ids), 2000):
        events.update(
            {
                e[0]: e[1:]
                for e in OutboxEvent.objects.filter(
                    aggregate_id__in=ids[chunk : chunk + 2000]
                ).values_list("id", "event_type", "created_at", "published_at")
            }
        )
    figures = {
        "events": len(events),
        "relay_published": percentiles(
            [(p - c).total_seconds() for _, c, p in events.values() if p]
        ),
        "consumers": {},
    }
    pooled = []
    for name, spec in settings.EVENT_CONSUMERS.items():
        entries = (
            apps.get_model(spec["inbox"])
            .objects.filter(consumer=name, event_id__in=list(events))
            .values_list("event_id", "processed_at")
        )
        lags = [(at - events[eid][1]).total_seconds() for eid, at in entries]
        pooled += lags
        figures["consumers"][name] = percentiles(lags)
    figures["all_consumers"] = percentiles(pooled)
    return figures


def order_event_ids(order_ids) -> list:
    from apps.orders.messaging_models import OutboxEvent

    ids = [str(i) for i in order_ids]
    return list(
        OutboxEvent.objects.filter(aggregate_id__in=ids).values_list("id", flat=True)
    )


def wait_relayed(order_ids, deadline_s: float = 120) -> None:
    from apps.orders.messaging_models import OutboxEvent

    ids = [str(i) for i in order_ids]
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        if not OutboxEvent.objects.filter(
            aggregate_id__in=ids, published_at__isnull=True
        ).exists():
            return
        time.sleep(0.2)
    raise run.BenchError("the relay did not publish the orders' events in time")


# ---------------------------------------------------------------------------
# Broker: this run's own exchange and queues
# ---------------------------------------------------------------------------
def broker_queues() -> list[str]:
    from django.conf import settings

    from apps.core.messaging import topology

    names = [settings.SAGA_TASK_QUEUE]
    for spec in topology.consumer_specs().values():
        names.append(topology.queue_name(spec.name))
        names.append(topology.dead_letter_queue(spec).name)
        names += [
            topology.retry_queue(spec, d).name for d in topology.retry_delays_ms()
        ]
    return names


def broker_purge_events() -> int:
    """Drop what sits in the consumers' queues (phase 2's events)."""
    from django.conf import settings
    from kombu import Connection

    from apps.core.messaging import topology

    purged = 0
    with Connection(settings.EVENTS_BROKER_URL) as conn:
        channel = conn.channel()
        for spec in topology.consumer_specs().values():
            purged += channel.queue_purge(topology.queue_name(spec.name)) or 0
    return purged


def broker_delete() -> None:
    from django.conf import settings
    from kombu import Connection

    with Connection(settings.EVENTS_BROKER_URL) as conn:
        channel = conn.channel()
        for name in broker_queues():
            try:
                channel.queue_delete(name)
            except Exception:  # noqa: BLE001 - never declared, or gone
                channel = conn.channel()
        # Celery declares a direct exchange named after each task queue.
        for exchange in (settings.EVENTS_EXCHANGE, settings.SAGA_TASK_QUEUE):
            try:
                channel.exchange_delete(exchange)
            except Exception:  # noqa: BLE001 - never declared, or gone
                channel = conn.channel()


# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------
def create_products(count: int) -> list[str]:
    from apps.products.services import product_create

    ids = []
    for index in range(count):
        product = product_create(
            id=f"bench-{index:04d}",
            name=f"Bench product {index}",
            price=Decimal("5.00") + index,
            stock=10_000_000,
            category="Bench",
        )
        ids.append(product.pk)
    return ids


def create_customer(client: run.Client) -> str:
    email = f"bench-{uuid.uuid4().hex[:12]}@bench.example"
    password = "bench-" + secrets.token_urlsafe(12)
    client.json(
        "POST",
        "/api/v1/users",
        {"email": email, "name": "Bench Customer", "password": password},
        expect=(201,),
    )
    tokens = client.json(
        "POST", "/api/v1/users/login", {"email": email, "password": password}
    )
    return tokens["access"]


def relay_probe() -> None:
    """Subcommand ``_relay``, run in the served tree with the servers'
    environment: publish every pending event once, print the figures."""
    import django

    django.setup()
    from django.conf import settings

    from apps.core.messaging import relay
    from apps.orders.messaging_models import OutboxEvent

    pending = OutboxEvent.objects.filter(published_at__isnull=True).count()
    publisher = relay.AmqpPublisher()
    publisher._get_producer()  # connected and declared before the clock
    cpu, started = time.process_time(), time.monotonic()
    published = relay.relay_publish_all(publisher=publisher)
    wall, cpu = time.monotonic() - started, time.process_time() - cpu
    publisher.close()
    print(
        "RELAY_RESULT "
        + json.dumps(
            {
                "pending": pending,
                "published": published,
                "wall_s": wall,
                "relay_cpu_s": cpu,
                "events_per_s": published / wall if wall else None,
                "batch_size": settings.OUTBOX_RELAY_BATCH_SIZE,
            }
        )
    )


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
def wait_quiet(limit_s: float, threshold: float) -> dict:
    started = time.monotonic()
    while os.getloadavg()[0] > threshold and time.monotonic() - started < limit_s:
        time.sleep(10)
    return {
        "waited_s": round(time.monotonic() - started),
        "loadavg": os.getloadavg(),
        "cpu_busy": run.cpu_busy(),
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--server", default="granian:2x4")
    parser.add_argument(
        "--workers",
        default="1x1,2x1,4x1",
        help="worker configurations, INSTANCESxCONCURRENCY, comma-separated",
    )
    parser.add_argument("--products", type=int, default=100)
    parser.add_argument("--duration", type=int, default=10, help="s per wrk run")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16, help="wrk -c")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--wrk-timeout", type=int, default=10)
    parser.add_argument("--drain-orders", type=int, default=300)
    parser.add_argument(
        "--loads", default="0.5,0.8", help="open-loop rates, fractions of the drain"
    )
    parser.add_argument("--open-seconds", type=float, default=15)
    parser.add_argument("--no-pipeline-wrk", action="store_true", help="skip phase 4")
    parser.add_argument("--quiet-load", type=float, default=0.5)
    parser.add_argument("--quiet-wait", type=float, default=600)
    parser.add_argument("--conn-max-age", type=int, default=60)
    parser.add_argument("--pg-url", default=f"postgres://postgres@{HOST}:5432")
    parser.add_argument("--redis-url", default=f"redis://{HOST}:6379/5")
    parser.add_argument("--broker-url", default=f"amqp://guest:guest@{HOST}:5672//")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    args.spec = run.ServerSpec.parse(args.server)
    for url in (args.pg_url, args.redis_url, args.broker_url):
        if f"//{HOST}:" not in url and f"@{HOST}:" not in url:
            parser.error(f"{url}: the bench only talks to services on {HOST}")
    return args


def main(argv=None) -> int:  # noqa: C901, PLR0915 - one run, phase by phase
    if argv is None and sys.argv[1:2] == ["_relay"]:
        relay_probe()
        return 0
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    run_dir = run.RESULTS_DIR / f"{stamp}-orders"
    run_dir.mkdir(parents=True)
    print(f"bench orders: waiting for load average < {args.quiet_load}", flush=True)
    quiet = wait_quiet(args.quiet_wait, args.quiet_load)
    print(f"bench orders: {quiet}", flush=True)
    record: dict = {"started_at": started_at.isoformat(), "quiet": quiet}

    run.ensure_databases(args.pg_url, fresh=True, db_names=DB_NAMES)
    tmp = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    src = run.snapshot(tmp)
    env = run.server_env(args, tmp / "keys", src, db_names=DB_NAMES)
    env.update(
        EVENTS_PUBLISHER="amqp",
        EVENTS_EXCHANGE=f"bench-{stamp}.events",
        SAGA_TASK_QUEUE=f"bench-{stamp}.saga",
        # No SMTP server here: the notification consumer renders and records
        # its e-mail; the dummy backend drops it instead of sending.
        EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
    )
    run.migrate(env, src)
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connections

    products = create_products(args.products)
    record["machine"] = run.machine_info(argparse.Namespace(pg_url=args.pg_url))
    record["settings"] = {
        k: v for k, v in vars(args).items() if k not in ("spec", "env")
    } | {"server": args.spec.label, "exchange": env["EVENTS_EXCHANGE"]}

    server = run.Server(args.spec, env, src, run_dir / "server.log")
    helpers: list[Proc] = []
    try:
        record["startup_s"] = round(server.wait_ready(60), 2)
        client = run.Client(server.port)
        token = create_customer(client)
        status, raw = client.request(
            "POST",
            "/api/v1/orders",
            order_body(random.Random(1), products),
            token,
        )
        if status != 201:
            raise run.BenchError(f"smoke order answered {status}: {raw[:300]}")
        web = {server.proc.pid}

        # -- 1. placement, web server alone ---------------------------------
        print("bench orders: phase 1, placement (web server alone)", flush=True)
        if args.warmup:
            wrk_get(args, server.port, "/health/live", args.warmup)
            server.settle()
            wrk_orders(args, server.port, token, products, args.warmup)
            server.settle()
        runs = {"ceiling": [], "place": []}
        for rep in range(args.reps):
            for name in ("ceiling", "place"):
                if name == "ceiling":
                    call = lambda: wrk_get(  # noqa: E731
                        args, server.port, "/health/live", args.duration
                    )
                else:
                    call = lambda: wrk_orders(  # noqa: E731
                        args, server.port, token, products, args.duration
                    )
                result, cpu = measured(call, web)
                result.update(cpu)
                result["server_cpu_ms_per_request"] = (
                    cpu["cpu_s"] * 1000 / result["requests"]
                )
                result["postgres_cpu_ms_per_request"] = (
                    cpu["postgres_cpu_s"] * 1000 / result["requests"]
                )
                result["commits_per_request"] = cpu["commits"] / result["requests"]
                server.settle()
                runs[name].append(result)
                print(
                    f"  rep {rep + 1} {name}: {result['rps']:.0f} req/s, "
                    f"p95 {result['p95_us'] / 1000:.1f} ms, "
                    f"{result['server_cpu_ms_per_request']:.2f} ms CPU/req, "
                    f"errors {result['errors']}",
                    flush=True,
                )
        record["placement"] = {
            name: {
                "median": {
                    key: statistics.median(r[key] for r in results)
                    for key in (
                        "rps",
                        "p50_us",
                        "p90_us",
                        "p95_us",
                        "p99_us",
                        "server_cpu_ms_per_request",
                        "postgres_cpu_ms_per_request",
                        "commits_per_request",
                    )
                },  # fmt: skip
                "rps_min": min(r["rps"] for r in results),
                "rps_max": max(r["rps"] for r in results),
                "errors": {
                    k: sum(r["errors"][k] for r in results)
                    for k in results[0]["errors"]
                },
                "runs": results,
            }
            for name, results in runs.items()
        }

        # -- 2. relay throughput ----------------------------------------------
        print("bench orders: phase 2, relay throughput", flush=True)
        done = subprocess.run(
            [sys.executable, str(src / "bench" / "orders.py"), "_relay"],
            cwd=src, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        relay_result = None
        for line in done.stdout.splitlines():
            if line.startswith("RELAY_RESULT "):
                relay_result = json.loads(line.removeprefix("RELAY_RESULT "))
        if relay_result is None:
            raise run.BenchError(f"relay probe failed:\n{done.stdout}{done.stderr}")
        relay_result["purged_messages"] = broker_purge_events()
        record["relay"] = relay_result
        print(f"  {relay_result}", flush=True)

        # -- 3. sagas per worker configuration ------------------------------
        record["workers"] = []
        relay = start_relay(env, src, run_dir / "relay.log")
        helpers.append(relay)
        configs = [c for c in args.workers.split(",") if c]
        for config in configs:
            print(f"bench orders: phase 3, workers {config}", flush=True)
            entry: dict = {"workers": config}
            # a. drain: orders waiting, then the workers start.
            placed = open_loop(
                server.port, token, products, rate=400,
                seconds=args.drain_orders / 400, clients=8,
            )  # fmt: skip
            ids = [r[2] for r in placed if r[2]]
            wait_relayed(ids)
            workers = start_workers(
                config, env, src, env["SAGA_TASK_QUEUE"], run_dir / "workers.log"
            )
            helpers += workers
            pgids = {w.proc.pid for w in workers}
            (finished, seconds), cpu = measured(
                lambda ids=ids: wait_finished(ids, ORDER_WAIT_S), pgids
            )
            entry["drain"] = saga_figures(ids) | {
                "finished": finished,
                "wall_s_from_worker_start": round(seconds, 2),
                "worker_cpu_ms_per_saga": round(cpu["cpu_s"] * 1000 / len(ids), 2),
                "postgres_cpu_ms_per_saga": round(
                    cpu["postgres_cpu_s"] * 1000 / len(ids), 2
                ),
                "rabbitmq_cpu_ms_per_saga": round(
                    cpu["rabbitmq_cpu_s"] * 1000 / len(ids), 2
                ),
                "commits_per_saga": round(cpu["commits"] / len(ids), 1),
                "connections_opened_per_saga": round(cpu["sessions"] / len(ids), 2),
                "wal_syncs_per_saga": round(cpu["wal_syncs"] / len(ids), 1),
            }
            wait_consumed(order_event_ids(ids), ORDER_WAIT_S)
            drain_rate = entry["drain"].get("confirmed_per_s") or 10
            print(f"  drain: {entry['drain']}", flush=True)
            # b. latency at fixed rates, everything running.
            entry["open_loop"] = []
            for fraction in [float(f) for f in args.loads.split(",") if f]:
                rate = max(1, round(drain_rate * fraction))
                relay_pg = {relay.proc.pid}
                everyone = web | pgids | relay_pg
                cpu0 = {
                    "web": group_cpu_seconds(web),
                    "workers": group_cpu_seconds(pgids),
                    "relay": group_cpu_seconds(relay_pg),
                }
                placed, cpu = measured(
                    lambda rate=rate: open_loop(
                        server.port, token, products, rate, args.open_seconds
                    ),
                    everyone,
                )
                ids = [r[2] for r in placed if r[2]]
                finished, _ = wait_finished(ids, ORDER_WAIT_S)
                wait_consumed(order_event_ids(ids), ORDER_WAIT_S)
                statuses = [r[0] for r in placed]
                point = {
                    "fraction_of_drain": fraction,
                    "rate_per_s": rate,
                    "placed": len(ids),
                    "errors": len([s for s in statuses if s != 201]),
                    "placement": percentiles([r[1] for r in placed if r[0] == 201]),
                    "sagas": saga_figures(ids),
                    "events": event_figures(ids),
                    "cpu_ms_per_order": {
                        name: round(
                            (group_cpu_seconds(g) - cpu0[name])
                            * 1000
                            / max(len(ids), 1),
                            2,
                        )
                        for name, g in (
                            ("web", web),
                            ("workers", pgids),
                            ("relay", relay_pg),
                        )
                    },  # fmt: skip
                    "postgres_cpu_cores_while_placing": round(
                        cpu["postgres_cpu_s"] / cpu["wall_s"], 2
                    ),
                    "cores_busy_while_placing": round(
                        (cpu["cpu_s"] + cpu["postgres_cpu_s"] + cpu["rabbitmq_cpu_s"])
                        / cpu["wall_s"],
                        2,
                    ),
                }
                entry["open_loop"].append(point)
                print(
                    f"  {rate}/s: placement {point['placement']}, "
                    f"confirmed {point['sagas']['placed_to_confirmed']}, "
                    f"events {point['events']['all_consumers']}, "
                    f"cpu {point['cpu_ms_per_order']}",
                    flush=True,
                )
            record["workers"].append(entry)
            if config != configs[-1] or args.no_pipeline_wrk:
                stop_all(workers)
                for worker in workers:
                    helpers.remove(worker)
                continue

            # -- 4. closed-loop placement with the pipeline running ---------
            print(f"bench orders: phase 4, wrk with workers {config}", flush=True)
            from apps.orders.models import Order

            since = datetime.now(UTC)
            result, cpu = measured(
                lambda: wrk_orders(args, server.port, token, products, args.duration),
                web | pgids | {relay.proc.pid},
            )
            ids = list(
                Order.objects.filter(created_at__gte=since).values_list("pk", flat=True)
            )
            confirmed_in_window = len(
                [
                    1
                    for status in Order.objects.filter(pk__in=ids).values_list(
                        "status", flat=True
                    )
                    if status != "pending"
                ]
            )
            finished, drain_s = wait_finished(ids, ORDER_WAIT_S)
            record["pipeline_wrk"] = {
                "workers": config,
                "wrk": result | cpu,
                "orders": len(ids),
                "finished_during_wrk": confirmed_in_window,
                "finished_per_s_during_wrk": round(
                    confirmed_in_window / cpu["wall_s"], 1
                ),
                "finished": finished,
                "backlog_drain_s": round(drain_s, 1),
                "sagas": saga_figures(ids),
            }
            print(f"  {record['pipeline_wrk']}", flush=True)
            stop_all(workers)
    except run.BenchError as exc:
        print(f"bench orders: {exc}", file=sys.stderr)
        record["error"] = str(exc)
    finally:
        stop_all(helpers)
        server.stop()
        connections.close_all()
        broker_delete()
        record["finished_at"] = datetime.now(UTC).isoformat()
        record["loadavg_after"] = os.getloadavg()
        out = run_dir / "results.json"
        out.write_text(json.dumps(record, indent=2, default=str))
        print(f"bench orders: results in {out.relative_to(ROOT)}")
    print()
    print(markdown(record))
    return 1 if "error" in record else 0


def markdown(record: dict) -> str:
    lines = []
    placement = record.get("placement")
    if placement:
        ceiling = placement["ceiling"]["median"]["rps"]
        lines += [
            "| endpoint | req/s (median) | min–max | × ceiling | p50 ms | p95 ms "
            "| p99 ms | server CPU ms/req | PostgreSQL CPU ms/req | commits/req "
            "| errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, label in (
            ("ceiling", "GET /health/live (ceiling)"),
            ("place", PLACE),
        ):
            p = placement[name]
            m = p["median"]
            errors = ", ".join(f"{k} {v}" for k, v in p["errors"].items() if v) or "0"
            spread = f"{p['rps_min']:,.0f}–{p['rps_max']:,.0f}"
            lines.append(
                f"| {label} | {m['rps']:,.0f} | {spread} "
                f"| {m['rps'] / ceiling:.2f} | {m['p50_us'] / 1000:.1f} "
                f"| {m['p95_us'] / 1000:.1f} | {m['p99_us'] / 1000:.1f} "
                f"| {m['server_cpu_ms_per_request']:.2f} "
                f"| {m['postgres_cpu_ms_per_request']:.2f} "
                f"| {m['commits_per_request']:.2f} | {errors} |"
            )
    relay = record.get("relay")
    if relay:
        lines += [
            "",
            f"Relay: {relay['published']} events in {relay['wall_s']:.2f} s = "
            f"**{relay['events_per_s']:.0f} events/s** (relay CPU "
            f"{relay['relay_cpu_s'] * 1000 / max(relay['published'], 1):.2f} ms/event)",
        ]
    if record.get("workers"):
        lines += [
            "",
            "| workers | drain: confirmed/s | worker CPU ms/saga | commits/saga "
            "| load | rate/s "
            "| placement p50/p95/p99 ms | placed→CONFIRMED p50/p95/p99 ms "
            "| event→consumer p50/p95/p99 ms | CPU ms/order web/workers/relay |",
            "|---|---:|---:|---:|---:|---:|---|---|---|---|",
        ]
        for entry in record["workers"]:
            d = entry["drain"]
            for point in entry["open_loop"]:
                pl = point["placement"]
                sc = point["sagas"]["placed_to_confirmed"]
                ev = point["events"]["all_consumers"]
                cpu = point["cpu_ms_per_order"]
                lines.append(
                    f"| {entry['workers']} | {d.get('confirmed_per_s')} "
                    f"| {d['worker_cpu_ms_per_saga']} | {d['commits_per_saga']} "
                    f"| {point['fraction_of_drain']} "
                    f"| {point['rate_per_s']} "
                    f"| {pl.get('p50_ms')}/{pl.get('p95_ms')}/{pl.get('p99_ms')} "
                    f"| {sc.get('p50_ms')}/{sc.get('p95_ms')}/{sc.get('p99_ms')} "
                    f"| {ev.get('p50_ms')}/{ev.get('p95_ms')}/{ev.get('p99_ms')} "
                    f"| {cpu['web']}/{cpu['workers']}/{cpu['relay']} |"
                )
    pipeline = record.get("pipeline_wrk")
    if pipeline:
        w = pipeline["wrk"]
        lines += [
            "",
            f"Placement with the pipeline running (workers {pipeline['workers']}): "
            f"{w['rps']:.0f} orders/s placed, p95 {w['p95_us'] / 1000:.1f} ms; "
            f"{pipeline['finished_per_s_during_wrk']} sagas finished/s meanwhile; "
            f"backlog of {pipeline['orders'] - pipeline['finished_during_wrk']} "
            f"drained in {pipeline['backlog_drain_s']} s",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
