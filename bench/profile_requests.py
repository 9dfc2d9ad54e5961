#!/usr/bin/env python
"""Where one request's time goes: queries counted, cProfile of a request path.

Runs the Django app in this process (no HTTP server, no load generator) under
production settings against the bench databases that bench/run.py creates,
calls the WSGI application directly (the whole middleware stack and DRF, no
test client in between), and prints for each path: the SQL queries of one
request, the mean wall time per request, and the functions that take the most
time.

    .venv/bin/python bench/profile_requests.py [--requests 2000] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import secrets
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import run  # noqa: E402  (databases, keys, environment)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="GETs to profile")
    parser.add_argument("--logins", type=int, default=10, help="logins to profile")
    parser.add_argument(
        "--orders", type=int, default=300, help="order placements to profile"
    )
    parser.add_argument("--top", type=int, default=25, help="functions to show")
    parser.add_argument(
        "--sort", default="tottime,cumulative", help="pstats orders, comma-separated"
    )
    parser.add_argument(
        "--no-conn-health-checks",
        action="store_true",
        help="turn CONN_HEALTH_CHECKS off, to measure what its per-request "
        "SELECT 1 costs (an experiment; production settings keep it on)",
    )
    parser.add_argument(
        "--drop-middleware",
        default="",
        help="comma-separated parts of middleware paths to leave out, e.g. "
        "'session,csrf,messages,auth' or 'all' (an experiment: what the "
        "middleware stack costs)",
    )
    parser.add_argument(
        "--only", default="", help="profile only paths whose name contains this"
    )
    parser.add_argument(
        "--redis-url",
        default="",
        help="the cache (CACHE_URL); default: bench/run.py's",
    )
    opts = parser.parse_args(argv)

    args = run.parse_args(
        ["--servers", "granian:1x1"]
        + (["--redis-url", opts.redis_url] if opts.redis_url else [])
    )
    run.ensure_databases(args.pg_url, fresh=False)
    keydir = tempfile.mkdtemp(prefix="bench-keys-")
    env = run.server_env(args, Path(keydir))
    run.migrate(env, run.ROOT)
    os.environ.update(env)

    import django
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection, connections
    from django.test.utils import CaptureQueriesContext

    django.setup(set_prefix=False)
    drop = [part for part in opts.drop_middleware.split(",") if part]
    if drop:
        settings.MIDDLEWARE = [
            m
            for m in settings.MIDDLEWARE
            if "all" not in drop and not any(p in m.lower() for p in drop)
        ]
    print(f"middleware: {len(settings.MIDDLEWARE)} {settings.MIDDLEWARE}")
    from bench import wsgi as bench_wsgi  # /bench/bare beside the app

    bench_wsgi.django_application = WSGIHandler()
    app = bench_wsgi.application
    if opts.no_conn_health_checks:
        connection.settings_dict["CONN_HEALTH_CHECKS"] = False

    def send(method, path, body=b"", token=None, expect=200, headers=(), query=""):
        if token:
            headers = [*headers, ("Authorization", f"Bearer {token}")]
        status, content = run.call_wsgi(
            app, method, path, query=query, body=body, headers=headers
        )
        code = int(status.split()[0])
        assert code == expect, (method, path, status, content[:300])
        return json.loads(content) if content else None

    email = f"profile-{uuid.uuid4().hex[:12]}@bench.example"
    password = "bench-" + secrets.token_urlsafe(12)
    registration = {"email": email, "name": "Profile User", "password": password}
    user = send("POST", "/api/v1/users", json.dumps(registration).encode(), expect=201)
    login_body = json.dumps({"email": email, "password": password}).encode()

    def login():
        return send("POST", "/api/v1/users/login", login_body)

    access = login()["access"]
    detail = f"/api/v1/users/{user['id']}"

    def get_user():
        send("GET", detail, token=access)

    def health():
        send("GET", "/health/live")

    products = _order_products()
    rng = random.Random(1)

    def place_order():
        lines = [
            {"product_id": product_id, "quantity": rng.randint(1, 3)}
            for product_id in rng.sample(products, rng.randint(1, 3))
        ]
        body = json.dumps({"items": lines}).encode()
        key = ("Idempotency-Key", uuid.uuid4().hex)
        send("POST", "/api/v1/orders", body, access, 201, headers=[key])

    detail_ids = [f"/api/v1/products/demo-{n * 10:07d}" for n in range(1, 1001)]
    cycle = {"i": 0}

    def product_detail():
        cycle["i"] = (cycle["i"] + 1) % len(detail_ids)
        send("GET", detail_ids[cycle["i"]])

    def catalog(path, query):
        def call():
            send("GET", path, query=query)

        return call

    from django.core.cache import cache

    from apps.products.cache import LISTING_GEN

    def after_a_write():
        # What any product write does to list and search pages (ADR 0027).
        cache.delete(LISTING_GEN)

    listings = [
        (
            "GET /api/v1/products (filters)",
            catalog(
                "/api/v1/products",
                "category=Kitchen&min_price=20&max_price=500&in_stock=true"
                "&ordering=price",
            ),
            opts.requests // 10,
        ),
        (
            "GET /api/v1/products/search?q=coffee+grinder",
            catalog("/api/v1/products/search", "q=coffee+grinder"),
            opts.requests // 10,
        ),
        (
            "GET /api/v1/products/search?q=ketle&category=Kitchen (typo)",
            catalog("/api/v1/products/search", "q=ketle&category=Kitchen"),
            opts.requests // 20,
        ),
    ]
    paths = [
        ("GET /bench/bare", lambda: send("GET", "/bench/bare"), opts.requests),
        (
            "GET /bench/django (/health/live, no middleware)",
            lambda: send("GET", "/bench/django"),
            opts.requests,
        ),
        ("GET /health/live", health, opts.requests),
        (
            "GET /api/v1/products/{id} (1,000 ids cycled, cached)",
            product_detail,
            opts.requests,
        ),
        # Each page as a hit (cached) and as the first read after a write
        # (the listing token deleted before each request, outside the
        # timing): the database read plus the cache's add and set.
        *(
            (f"{name}, {kind}", call, count if kind == "miss" else opts.requests)
            for name, call, count in listings
            for kind in ("hit", "miss")
        ),
        ("GET /api/v1/users/{id} (JWT)", get_user, opts.requests),
        ("POST /api/v1/users/login", login, opts.logins),
        ("POST /api/v1/orders (1-3 lines, Idempotency-Key)", place_order, opts.orders),
    ]
    for name, call, count in paths:
        if opts.only not in name:
            continue
        before = after_a_write if name.endswith(", miss") else None
        call()  # warm: connection opened, caches filled
        if "cached" in name:
            for _ in detail_ids:
                call()  # every id of the cycle in the cache
        if before:
            before()
        with ExitStack() as stack:
            captures = {
                alias: stack.enter_context(CaptureQueriesContext(connections[alias]))
                for alias in connections
            }
            call()
        # Copied now: the next request's request_started signal clears the log.
        queries = [
            {**query, "sql": f"[{alias}] {query['sql']}"}
            for alias, captured in captures.items()
            for query in captured.captured_queries
        ]
        # Patched on the class: counts every alias's checks.
        if before:
            before()
        pings = _count_pings(connections["default"], call)
        print(
            f"\n=== {name}: {len(queries)} SQL queries"
            f" + {pings} connection health check(s) (SELECT 1, CONN_HEALTH_CHECKS)"
        )
        for query in queries:
            print(f"  {query['sql'][:160]}")
        backend = _backend_cpu(connections["catalog"])
        database = backend()
        elapsed = cpu = 0.0
        for _ in range(count):
            if before:
                before()
            started, cpu_started = time.perf_counter(), time.process_time()
            call()
            elapsed += time.perf_counter() - started
            cpu += time.process_time() - cpu_started
        # The database's CPU includes what the ``before`` hooks cost it (a
        # cache deletion: nothing).
        database = backend() - database if database >= 0 else -1.0
        print(
            f"  {elapsed / count * 1000:.3f} ms per request, one at a time, "
            f"{count} requests, not profiled; CPU per request: app "
            f"{cpu / count * 1000:.2f} ms, catalog database "
            + (f"{database / count * 1000:.2f} ms" if database >= 0 else "unknown")
        )
        profiler = cProfile.Profile()
        for _ in range(count):
            if before:
                before()
            profiler.enable()
            call()
            profiler.disable()
        for order in opts.sort.split(","):
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).strip_dirs()
            stats.sort_stats(order).print_stats(opts.top)
            print(f"  --- profiled, by {order} (seconds over {count} requests)")
            print("\n".join(out.getvalue().splitlines()[4:]).rstrip())
    connection.close()
    return 0


def _order_products(count: int = 20) -> list[str]:
    """Products with plenty of stock for the placement path (created once
    in the bench's catalog database)."""
    from apps.products.errors import ProductConflict
    from apps.products.services import product_create

    ids = [f"profile-{index:03d}" for index in range(count)]
    for index, product_id in enumerate(ids):
        try:
            product_create(
                id=product_id,
                name=f"Profile product {index}",
                price=Decimal("5.00") + index,
                stock=10_000_000,
                category="Bench",
            )
        except ProductConflict:
            pass
    return ids


def _backend_cpu(connection):
    """A function that returns the CPU seconds used so far by the PostgreSQL
    backend serving ``connection`` (from /proc: a server on this machine),
    or -1 where that cannot be read."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            stat = Path(f"/proc/{cursor.fetchone()[0]}/stat")
        stat.read_text()
    except Exception:  # noqa: BLE001 - another engine, or a remote server
        return lambda: -1.0
    ticks = os.sysconf("SC_CLK_TCK")

    def seconds() -> float:
        # utime and stime, fields 14 and 15, after the command's parentheses.
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    return seconds


def _count_pings(connection, call) -> int:
    """Round trips Django makes outside its cursor wrapper: the health check
    that CONN_HEALTH_CHECKS runs on the first query of each request."""
    calls = 0
    original = type(connection).is_usable

    def is_usable(self):
        nonlocal calls
        calls += 1
        return original(self)

    type(connection).is_usable = is_usable
    try:
        call()
    finally:
        type(connection).is_usable = original
    return calls


if __name__ == "__main__":
    sys.exit(main())
