#!/usr/bin/env python
"""Load benchmark of the shop backend under production settings.

For each server configuration (granian, gunicorn gthread, gunicorn sync) this
starts the WSGI app as a subprocess on 127.0.0.1, waits for /health/live,
runs every scenario with wrk, repeats, takes medians, prints a markdown table
and writes the raw results as JSON to bench/results/. The ceiling of each run
is GET /health/live (a bare Django JsonResponse) on the same server in the
same run; every other endpoint is reported as a ratio to it.

    .venv/bin/python bench/run.py                      # the documented run
    .venv/bin/python bench/run.py --servers granian:2x8 --duration 5 --reps 1

Needs wrk (Debian: apt-get install wrk), PostgreSQL on 127.0.0.1:5432 (user
postgres, trust auth), Redis on 127.0.0.1:6379 and RabbitMQ on 127.0.0.1:5672
(production settings require a broker URL). It only ever targets 127.0.0.1
and stops every process it started. See bench/README.md.

Adding scenarios: append a Scenario to a Group in GROUPS, or a new Group with
a ``setup`` function that creates the data it needs and fills ``ctx`` (the
values that scenario paths, bodies and tokens are formatted with).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WRK_DIR = BENCH_DIR / "wrk"
RESULTS_DIR = BENCH_DIR / "results"
HOST = "127.0.0.1"  # the only host this tool ever starts servers on or loads
BIN = Path(sys.executable).parent

sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------
@dataclass
class Scenario:
    """One endpoint under load.

    ``path``, ``body`` and ``token`` are format strings filled from the
    group's ``ctx`` (what its setup created), e.g. "/api/v1/users/{user_id}";
    literal braces in a template are doubled (``'{{"q": "{query}"}}'``), or
    the whole body is built in setup and named (``body="{search_body}"``).
    A GET uses bench/wrk/get.lua; anything with a body uses post_json.lua.
    """

    name: str
    path: str
    method: str = "GET"
    body: str | None = None
    token: str | None = None
    expect: tuple[int, ...] = (200,)
    # A script of bench/wrk/ of its own (e.g. get_cycle.lua) and its
    # arguments (format strings too); ``path`` is then the smoke request.
    script: str | None = None
    script_args: tuple[str, ...] = ()

    def render(self, ctx: dict) -> tuple[str, str | None, str | None]:
        path = self.path.format(**ctx)
        body = self.body.format(**ctx) if self.body is not None else None
        token = self.token.format(**ctx) if self.token is not None else None
        return path, body, token

    def wrk_script_and_args(self, ctx: dict) -> tuple[Path, list[str]]:
        if self.script:
            return WRK_DIR / self.script, [a.format(**ctx) for a in self.script_args]
        _, body, token = self.render(ctx)
        if body is None and self.method == "GET":
            return WRK_DIR / "get.lua", [token or ""]
        return WRK_DIR / "post_json.lua", [body or "{}", token or "", self.method]


@dataclass
class Group:
    """Scenarios that share a setup step (which creates their data).

    ``setup(client, ctx)`` runs once per server, after it answers and before
    any load; it talks to the server through ``client`` and stores what the
    scenarios need in ``ctx``.
    """

    name: str
    scenarios: list[Scenario]
    setup: Callable[[Client, dict], None] | None = None
    # Runs once per bench run, before any server starts, with the servers'
    # environment and code (e.g. loading data with a management command).
    prepare: Callable[[dict, Path], None] | None = None


def setup_users(client: Client, ctx: dict) -> None:
    """Register a bench user, log in once, keep its id and access token."""
    email = f"bench-{uuid.uuid4().hex[:12]}@bench.example"
    password = "bench-" + secrets.token_urlsafe(12)
    user = client.json(
        "POST",
        "/api/v1/users",
        {"email": email, "name": "Bench User", "password": password},
        expect=(201,),
    )
    credentials = json.dumps({"email": email, "password": password})
    tokens = client.json("POST", "/api/v1/users/login", json.loads(credentials))
    ctx.update(user_id=user["id"], access=tokens["access"], login_body=credentials)


# The documented runs use 100,000; a quick smoke may use fewer (at least
# DETAIL_SPAN, below).
CATALOG_SIZE = int(os.environ.get("BENCH_CATALOG_SIZE", "100000"))


def prepare_catalog(env: dict[str, str], src: Path) -> None:
    """Load the demo catalog (100,000 products, deterministic; a rerun adds
    nothing) into the bench's catalog database."""
    done = subprocess.run(
        [sys.executable, "manage.py", "load_catalog",
         "--count", str(CATALOG_SIZE), "--verbosity", "0"],
        cwd=src, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"load_catalog failed:\n{done.stdout}{done.stderr}")


def setup_catalog(client: Client, ctx: dict) -> None:
    """Pick a product in the middle of the demo catalog."""
    ctx.update(product_id=f"demo-{CATALOG_SIZE // 2:07d}")


# Product detail cycles through DETAIL_IDS different products spread over
# the first DETAIL_SPAN of the catalog (demo-0000010, demo-0000020, ...).
DETAIL_IDS, DETAIL_SPAN = 1_000, 10_000

CEILING = Scenario("GET /health/live (ceiling)", "/health/live")
# The platform's ceiling: a Django JsonResponse with no middleware and no
# URL resolution, on the same server (bench/wsgi.py).
BARE = Scenario("GET /bench/bare (bare Django ceiling)", "/bench/bare")
# /health/live through Django's handler with no middleware (bench/wsgi.py):
# the full-stack ceiling over this one is what the middleware costs.
NO_MIDDLEWARE = Scenario(
    "GET /bench/django (/health/live, no middleware)", "/bench/django"
)
CEILINGS = (CEILING, BARE, NO_MIDDLEWARE)

GROUPS: list[Group] = [
    Group("ceiling", [BARE, NO_MIDDLEWARE, CEILING]),
    Group(
        "users",
        setup=setup_users,
        scenarios=[
            Scenario(
                "POST /api/v1/users/login",
                "/api/v1/users/login",
                method="POST",
                body="{login_body}",
            ),
            Scenario(
                "GET /api/v1/users/{id} (JWT)",
                "/api/v1/users/{user_id}",
                token="{access}",
            ),
        ],
    ),
    Group(
        "catalog",
        prepare=prepare_catalog,
        setup=setup_catalog,
        scenarios=[
            Scenario("GET /api/v1/products/{id}", "/api/v1/products/{product_id}"),
            Scenario(
                f"GET /api/v1/products/{{id}} ({DETAIL_IDS:,} ids cycled)",
                f"/api/v1/products/demo-{DETAIL_SPAN:07d}",
                script="get_cycle.lua",
                script_args=(
                    "/api/v1/products/demo-",
                    str(DETAIL_IDS),
                    str(DETAIL_SPAN // DETAIL_IDS),
                    "7",
                ),
            ),
            Scenario(
                "GET /api/v1/products (filters)",
                "/api/v1/products?category=Kitchen&min_price=20&max_price=500"
                "&in_stock=true&ordering=price",
            ),
            Scenario(
                "GET /api/v1/products/search?q=coffee grinder",
                "/api/v1/products/search?q=coffee+grinder",
            ),
            Scenario(
                "GET /api/v1/products/search?q=kettle&category (typo, filter)",
                "/api/v1/products/search?q=ketle&category=Kitchen",
            ),
        ],
    ),
]


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------
@dataclass
class ServerSpec:
    """A server configuration, written ``kind:WORKERSxTHREADS``.

    granian:2x8   granian WSGI, 2 workers, 8 blocking threads each
    gthread:2x8   gunicorn gthread workers, 2 workers, 8 threads each
    sync:5        gunicorn sync workers, 5 workers (one request at a time each)
    """

    kind: str
    workers: int
    threads: int = 1

    KINDS = ("granian", "gthread", "sync")

    @classmethod
    def parse(cls, text: str) -> ServerSpec:
        kind, _, size = text.strip().partition(":")
        if kind not in cls.KINDS or not size:
            raise ValueError(f"bad server spec {text!r}: use e.g. granian:2x8")
        workers, _, threads = size.partition("x")
        spec = cls(kind, int(workers), int(threads or 1))
        if kind == "sync" and spec.threads != 1:
            raise ValueError("sync workers have no threads: use e.g. sync:5")
        if spec.workers < 1 or spec.threads < 1:
            raise ValueError(f"bad server spec {text!r}")
        return spec

    @property
    def label(self) -> str:
        if self.kind == "sync":
            return f"gunicorn sync {self.workers}w"
        name = "granian" if self.kind == "granian" else "gunicorn gthread"
        return f"{name} {self.workers}w x {self.threads}t"

    @property
    def concurrency(self) -> int:
        """Requests served at once = database connections held per alias."""
        return self.workers * self.threads

    def argv(self, port: int) -> list[str]:
        # The production application, plus /bench/bare (bench/wsgi.py).
        app = "bench.wsgi:application"
        if self.kind == "granian":
            return [
                str(BIN / "granian"),
                "--interface", "wsgi",
                "--host", HOST,
                "--port", str(port),
                "--workers", str(self.workers),
                "--blocking-threads", str(self.threads),
                "--no-access-log",
                "--log-level", "warning",
                app,
            ]  # fmt: skip
        return [
            str(BIN / "gunicorn"),
            "--bind", f"{HOST}:{port}",
            "--workers", str(self.workers),
            "--worker-class", self.kind,
            "--threads", str(self.threads),
            "--log-level", "warning",
            app,
        ]  # fmt: skip


DEFAULT_SERVERS = "granian:2x4,granian:4x2,gthread:4x2,sync:5"


class Client:
    """A tiny JSON client for setup steps, bound to the server under test."""

    def __init__(self, port: int) -> None:
        self.base = f"http://{HOST}:{port}"

    def request(
        self, method: str, path: str, body: bytes | None = None, token=None
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(
            self.base + path, data=body, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def json(self, method, path, payload=None, token=None, expect=(200,)):
        body = json.dumps(payload).encode() if payload is not None else None
        status, raw = self.request(method, path, body, token)
        if status not in expect:
            raise BenchError(
                f"{method} {path} answered {status}, expected {expect}: "
                f"{raw[:500].decode(errors='replace')}"
            )
        return json.loads(raw) if raw else None


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------
# Environment: databases, keys, settings
# ---------------------------------------------------------------------------
DB_NAMES = {
    "default": ("DATABASE_URL", "shop_bench"),
    "orders": ("ORDERS_DATABASE_URL", "shop_bench_orders"),
    "catalog": ("CATALOG_DATABASE_URL", "shop_bench_catalog"),
}


def ensure_databases(pg_url: str, fresh: bool, db_names=None) -> None:
    import psycopg

    try:
        conn = psycopg.connect(f"{pg_url}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise BenchError(f"PostgreSQL is not reachable at {pg_url}: {exc}") from None
    with conn:
        for _, name in (db_names or DB_NAMES).values():
            if fresh:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')


def pg_scalar(pg_url: str, sql: str):
    import psycopg

    with psycopg.connect(f"{pg_url}/postgres", connect_timeout=5) as conn:
        return conn.execute(sql).fetchone()[0]


def bench_connections(pg_url: str, db_names=None) -> int:
    names = ",".join(f"'{name}'" for _, name in (db_names or DB_NAMES).values())
    return pg_scalar(
        pg_url, f"SELECT count(*) FROM pg_stat_activity WHERE datname IN ({names})"
    )


def server_env(args, keydir: Path, src: Path = ROOT, db_names=None) -> dict[str, str]:
    from config.keys import load_or_create_keypair

    private_pem, _ = load_or_create_keypair(keydir)
    env = {
        key: value
        for key, value in os.environ.items()
        # Nothing from the caller's shell may reconfigure the servers.
        if not key.startswith(("DJANGO_", "GRANIAN_", "GUNICORN_", "JWT_"))
        and not key.endswith("DATABASE_URL")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.prod",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS=HOST,
        # Plain HTTP on loopback: prod would otherwise redirect to https.
        DJANGO_SECURE_SSL_REDIRECT="0",
        DATABASE_CONN_MAX_AGE=str(args.conn_max_age),
        CACHE_URL=args.redis_url,
        CELERY_BROKER_URL=args.broker_url,
        JWT_PRIVATE_KEY=private_pem,
        # Long enough that the setup's token outlives any run; no cost effect.
        JWT_ACCESS_TOKEN_SECONDS="3600",
        LOG_LEVEL="WARNING",
        # The rate limits stay on (their cost is part of every request) with
        # budgets no run can spend: one load generator on one address.
        RATELIMIT_ANONYMOUS="1000000000/minute",
        RATELIMIT_AUTHENTICATED="1000000000/minute",
        RATELIMIT_LOGIN_IP="1000000000/minute",
        RATELIMIT_LOGIN_EMAIL="1000000000/minute",
        RATELIMIT_REGISTER_IP="1000000000/minute",
        RATELIMIT_REGISTER_EMAIL="1000000000/minute",
        PYTHONPATH=str(src),
        PYTHONUNBUFFERED="1",
    )
    for var, name in (db_names or DB_NAMES).values():
        env[var] = f"{args.pg_url}/{name}"
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    return env


SNAPSHOT_SKIP = {
    ".git", ".venv", "var", "__pycache__", ".pytest_cache", ".ruff_cache",
    ".import_linter_cache", "staticfiles", "node_modules",
}  # fmt: skip


def snapshot(dest: Path) -> Path:
    """Copy the working tree, so that edits made during a run (others share
    this checkout) cannot change the code between one server and the next."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        skip = {name for name in names if name in SNAPSHOT_SKIP}
        if Path(directory) == BENCH_DIR:
            skip.add(RESULTS_DIR.name)
        return skip

    src = dest / "src"
    shutil.copytree(ROOT, src, ignore=ignore, symlinks=True)
    return src


def migrate(env: dict[str, str], src: Path) -> None:
    for alias in DB_NAMES:
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--database", alias,
             "--verbosity", "0", "--no-input"],
            cwd=src, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            raise BenchError(
                f"migrate --database {alias} failed:\n{done.stdout}{done.stderr}"
            )


# ---------------------------------------------------------------------------
# Running a server and wrk
# ---------------------------------------------------------------------------
def cpu_busy(seconds: float = 3.0) -> float:
    """Share of all CPUs busy over ``seconds`` (others' work, before a run)."""

    def sample():
        fields = [int(x) for x in Path("/proc/stat").read_text().split()[1:9]]
        idle = fields[3] + fields[4]  # idle + iowait
        return idle, sum(fields)

    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return round(1 - (idle1 - idle0) / max(total1 - total0, 1), 3)


def call_wsgi(app, method: str, path: str, *, query="", body=b"", headers=()):
    """Send one request to a WSGI application in this process, as a server
    on HOST:8000 would; return the status line and the body."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": HOST,
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": f"{HOST}:8000",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in headers:
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    status = []
    response = app(environ, lambda s, headers, exc_info=None: status.append(s))
    try:
        content = b"".join(response)
    finally:
        response.close()
    return status[0], content


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Server:
    """The server under test: a subprocess in its own process group."""

    def __init__(self, spec: ServerSpec, env: dict[str, str], src: Path, log_path):
        self.spec = spec
        self.port = free_port()
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            spec.argv(self.port),
            cwd=src,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_ready(self, deadline_s: float) -> float:
        """Poll /health/live until it answers 200; return the seconds taken."""
        started = time.monotonic()
        client = Client(self.port)
        while time.monotonic() - started < deadline_s:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"{self.spec.label} exited with {self.proc.returncode}:\n"
                    + self.log_tail()
                )
            try:
                status, _ = client.request("GET", "/health/live")
                if status == 200:
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(
            f"{self.spec.label} did not answer /health/live within "
            f"{deadline_s:.0f} s:\n" + self.log_tail()
        )

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server's processes (its process group)."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # the process ended meanwhile
            if int(fields[2]) == self.proc.pid:  # pgrp
                ticks += int(fields[11]) + int(fields[12])  # utime + stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def settle(self, deadline_s: float = 120) -> float:
        """Wait until the server has finished the work wrk left behind.

        When wrk stops, requests it sent may still be queued or running in
        the server (a login costs ~0.2 s of CPU, and 32 may be queued); they
        would steal the next run's CPU. Settled = the server's processes used
        under a tenth of a core over a quarter of a second, and then
        /health/live answered within 100 ms.
        """
        started = time.monotonic()
        client = Client(self.port)
        interval = 0.25
        before = self.cpu_seconds()
        while time.monotonic() - started < deadline_s:
            time.sleep(interval)
            after = self.cpu_seconds()
            busy, before = (after - before) / interval, after
            if busy >= 0.1:
                continue
            sent = time.monotonic()
            try:
                status, _ = client.request("GET", "/health/live")
            except OSError:
                status = None
            if status == 200 and time.monotonic() - sent < 0.1:
                return time.monotonic() - started
            before = self.cpu_seconds()
        raise BenchError(f"{self.spec.label} did not settle within {deadline_s:.0f} s")

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        stop_group(self.proc, self.log, grace_s=20)


def stop_group(proc: subprocess.Popen, log, grace_s: float) -> None:
    """Stop a process started in its own session, and everything it
    started: SIGTERM, then SIGKILL after ``grace_s``; close its log."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace_s)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    log.close()


def run_wrk(args, port: int, scenario: Scenario, ctx: dict, duration: int) -> dict:
    path, _, _ = scenario.render(ctx)
    script, script_args = scenario.wrk_script_and_args(ctx)
    cmd = [
        "wrk",
        f"-t{args.wrk_threads}",
        f"-c{args.connections}",
        f"-d{duration}s",
        f"--timeout={args.wrk_timeout}s",
        "--latency",
        "-s", str(script),
        f"http://{HOST}:{port}{path}",
        "--", *script_args,
    ]  # fmt: skip
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=duration + args.wrk_timeout + 30
    )
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line.removeprefix("BENCH_RESULT "))
            result["wrk_output"] = done.stdout
            return result
    raise BenchError(f"no BENCH_RESULT line in wrk's output:\n{done.stdout}")


def smoke(client: Client, scenario: Scenario, ctx: dict) -> None:
    """One request as the load will send it: the load must measure success."""
    path, body, token = scenario.render(ctx)
    status, raw = client.request(
        scenario.method, path, body.encode() if body is not None else None, token
    )
    if status not in scenario.expect:
        raise BenchError(
            f"{scenario.name}: smoke request answered {status}: "
            f"{raw[:500].decode(errors='replace')}"
        )


MEDIAN_KEYS = (
    "rps", "p50_us", "p90_us", "p95_us", "p99_us", "mean_us",
    "server_cpu_cores", "server_cpu_ms_per_request", "wrk_cpu_cores",
)  # fmt: skip


def children_cpu_seconds() -> float:
    """CPU time of this process's finished children (wrk, once it exits)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def summarize(runs: list[dict]) -> dict:
    summary = {key: statistics.median(run[key] for run in runs) for key in MEDIAN_KEYS}
    summary["rps_min"] = min(run["rps"] for run in runs)
    summary["rps_max"] = max(run["rps"] for run in runs)
    summary["requests"] = sum(run["requests"] for run in runs)
    summary["errors"] = {
        kind: sum(run["errors"][kind] for run in runs) for kind in runs[0]["errors"]
    }
    return summary


def bench_server(args, spec: ServerSpec, env, src, groups, run_dir: Path) -> dict:
    record: dict = {
        "server": spec.label,
        "spec": f"{spec.kind}:{spec.workers}x{spec.threads}",
        "loadavg_before": os.getloadavg(),
        # What the rest of the machine was doing just before this server ran.
        "cpu_busy_before": cpu_busy(),
    }
    log = run_dir / f"server-{spec.kind}-{spec.workers}x{spec.threads}.log"
    server = Server(spec, env, src, log)
    try:
        record["argv"] = spec.argv(server.port)
        record["startup_s"] = round(server.wait_ready(args.start_deadline), 2)
        client = Client(server.port)
        contexts: dict[str, dict] = {}
        for group in groups:
            ctx: dict = {}
            if group.setup:
                group.setup(client, ctx)
            for scenario in group.scenarios:
                smoke(client, scenario, ctx)
            contexts[group.name] = ctx
        plan = [(g, s) for g in groups for s in g.scenarios]
        if args.warmup:
            for group, scenario in plan:
                run_wrk(args, server.port, scenario, contexts[group.name], args.warmup)
                server.settle()
        runs: dict[str, list[dict]] = {s.name: [] for _, s in plan}
        # Repetitions are interleaved, so that drift in the machine's load
        # (others share it) spreads over all scenarios alike.
        for rep in range(args.reps):
            for group, scenario in plan:
                server_cpu, wrk_cpu = server.cpu_seconds(), children_cpu_seconds()
                result = run_wrk(
                    args, server.port, scenario, contexts[group.name], args.duration
                )
                # CPU, not wall time: what one request costs the server's
                # processes (PostgreSQL not included), and what wrk took.
                seconds = result["duration_us"] / 1e6
                server_cpu = server.cpu_seconds() - server_cpu
                result["server_cpu_cores"] = round(server_cpu / seconds, 3)
                result["server_cpu_ms_per_request"] = (
                    server_cpu * 1000 / result["requests"] if result["requests"] else 0
                )
                result["wrk_cpu_cores"] = round(
                    (children_cpu_seconds() - wrk_cpu) / seconds, 3
                )
                result["settle_s"] = round(server.settle(), 2)
                runs[scenario.name].append(result)
                print(
                    f"  [{spec.label}] rep {rep + 1}/{args.reps} {scenario.name}: "
                    f"{result['rps']:.0f} req/s, p95 {result['p95_us'] / 1000:.1f} ms"
                    + (
                        f", {result['errors']}"
                        if any(result["errors"].values())
                        else ""
                    ),
                    flush=True,
                )
        record["db_connections_after_load"] = bench_connections(args.pg_url)
        record["server_alive_after_load"] = server.proc.poll() is None
    finally:
        server.stop()
    record["loadavg_after"] = os.getloadavg()
    ceiling = summarize(runs[CEILING.name])["rps"]
    bare = summarize(runs[BARE.name])["rps"] if BARE.name in runs else None
    no_middleware = (
        summarize(runs[NO_MIDDLEWARE.name])["rps"]
        if NO_MIDDLEWARE.name in runs
        else None
    )
    record["scenarios"] = []
    for _, scenario in plan:
        summary = summarize(runs[scenario.name])
        summary["ratio_to_ceiling"] = summary["rps"] / ceiling if ceiling else None
        summary["ratio_to_bare"] = summary["rps"] / bare if bare else None
        summary["ratio_to_no_middleware"] = (
            summary["rps"] / no_middleware if no_middleware else None
        )
        if not args.keep_wrk_output:
            for run in runs[scenario.name]:
                run.pop("wrk_output", None)
        record["scenarios"].append(
            {"name": scenario.name, "median": summary, "runs": runs[scenario.name]}
        )
    return record


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------
def machine_info(args) -> dict:
    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = subprocess.run(
        ["wrk", "--version"], capture_output=True, text=True
    ).stdout.splitlines()[:1]
    git = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": {
            dist: version(dist)
            for dist in (
                "Django",
                "djangorestframework",
                "djangorestframework_simplejwt",
                "granian",
                "gunicorn",
                "psycopg",
                "argon2-cffi",
            )
        },
        "wrk": wrk_version[0] if wrk_version else None,
        "postgresql": pg_scalar(args.pg_url, "SHOW server_version"),
        "git_commit": git,
        "git_dirty": bool(dirty),
        "git_status": dirty.splitlines(),
    }


def _ratio(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def markdown_table(records: list[dict]) -> str:
    lines = [
        "| server | endpoint | req/s (median) | req/s (min–max) | × ceiling "
        "| × no middleware | × bare | p50 ms | p95 ms | p99 ms | server CPU ms/req "
        "| errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for record in records:
        for scenario in record["scenarios"]:
            m = scenario["median"]
            errors = ", ".join(f"{k} {v}" for k, v in m["errors"].items() if v) or "0"
            lines.append(
                f"| {record['server']} | {scenario['name']} | {m['rps']:,.0f} "
                f"| {m['rps_min']:,.0f}–{m['rps_max']:,.0f} "
                f"| {m['ratio_to_ceiling']:.2f} "
                f"| {_ratio(m.get('ratio_to_no_middleware'))} "
                f"| {_ratio(m.get('ratio_to_bare'))} | {m['p50_us'] / 1000:.1f} "
                f"| {m['p95_us'] / 1000:.1f} | {m['p99_us'] / 1000:.1f} "
                f"| {m['server_cpu_ms_per_request']:.2f} | {errors} |"
            )
    lines += [
        "",
        "| server | start s | DB connections after load | CPUs busy before "
        "| load avg before → after |",
        "|---|---:|---:|---:|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['server']} | {r['startup_s']} | {r['db_connections_after_load']} "
            f"| {r['cpu_busy_before']:.0%} | {r['loadavg_before'][0]:.1f} → "
            f"{r['loadavg_after'][0]:.1f} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=ServerSpec.__doc__,
    )
    parser.add_argument(
        "--servers",
        default=DEFAULT_SERVERS,
        help=f"comma-separated server specs (default: {DEFAULT_SERVERS})",
    )
    parser.add_argument(
        "--groups",
        default=",".join(g.name for g in GROUPS),
        help="comma-separated scenario groups; the ceiling always runs "
        f"(default: all: {','.join(g.name for g in GROUPS)})",
    )
    parser.add_argument(
        "--scenarios",
        default="",
        help="comma-separated parts of scenario names: run only scenarios whose "
        "name contains one (the ceiling always runs), e.g. 'GET /api/v1/users'",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="seconds of warm-up per scenario (0: none)",
    )
    parser.add_argument(
        "--reps", type=int, default=3, help="repetitions (median taken)"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk -c")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk -t")
    parser.add_argument(
        "--wrk-timeout", type=int, default=10, help="wrk --timeout, seconds"
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=60,
        help="DATABASE_CONN_MAX_AGE for the servers",
    )
    parser.add_argument(
        "--max-db-connections",
        type=int,
        default=60,
        help="refuse server specs whose workers x threads exceed this "
        "(PostgreSQL allows 100 in all, shared with others)",
    )
    parser.add_argument("--pg-url", default=f"postgres://postgres@{HOST}:5432")
    parser.add_argument("--redis-url", default=f"redis://{HOST}:6379/5")
    parser.add_argument("--broker-url", default=f"amqp://guest:guest@{HOST}:5672//")
    parser.add_argument(
        "--fresh-db", action="store_true", help="drop and recreate the bench databases"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the servers (repeatable)",
    )
    parser.add_argument(
        "--start-deadline",
        type=float,
        default=60,
        help="seconds to wait for /health/live",
    )
    parser.add_argument(
        "--no-snapshot",
        action="store_true",
        help="serve the working tree itself, not a copy taken at the start",
    )
    parser.add_argument(
        "--keep-wrk-output",
        action="store_true",
        help="keep wrk's own text output in the JSON",
    )
    args = parser.parse_args(argv)
    try:
        args.specs = [ServerSpec.parse(s) for s in args.servers.split(",") if s]
    except ValueError as exc:
        parser.error(str(exc))
    for url in (args.pg_url, args.redis_url, args.broker_url):
        if f"//{HOST}:" not in url and f"@{HOST}:" not in url:
            parser.error(f"{url}: the bench only talks to services on {HOST}")
    names = {g.name for g in GROUPS}
    wanted = {"ceiling", *filter(None, args.groups.split(","))}
    if wanted - names:
        parser.error(f"unknown groups: {', '.join(sorted(wanted - names))}")
    parts = [part for part in args.scenarios.split(",") if part]
    args.selected = []
    for group in GROUPS:
        scenarios = [
            s
            for s in group.scenarios
            if s in CEILINGS or not parts or any(p in s.name for p in parts)
        ]
        if group.name in wanted and scenarios:
            args.selected.append(
                Group(group.name, scenarios, group.setup, group.prepare)
            )
    for spec in args.specs:
        if spec.concurrency > args.max_db_connections:
            parser.error(
                f"{spec.label}: {spec.concurrency} threads would hold up to "
                f"{spec.concurrency} connections per database "
                f"(limit --max-db-connections={args.max_db_connections})"
            )
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "bench: wrk is not installed. Install it (Debian/Ubuntu: "
            "`apt-get install -y wrk`) and run again.",
            file=sys.stderr,
        )
        return 2
    started = datetime.now(UTC)
    scenario_count = sum(len(g.scenarios) for g in args.selected)
    load_s = (
        len(args.specs) * scenario_count * (args.reps * args.duration + args.warmup)
    )
    print(
        f"bench: {len(args.specs)} server(s) x {scenario_count} scenario(s) x "
        f"{args.reps} rep(s) x {args.duration} s (+{args.warmup} s warm-up): "
        f"about {load_s / 60:.1f} min of load, wrk -t{args.wrk_threads} "
        f"-c{args.connections}",
        flush=True,
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    run_dir = RESULTS_DIR / stamp
    run_dir.mkdir()
    records, failures = [], []
    try:
        ensure_databases(args.pg_url, args.fresh_db)
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            machine = machine_info(args)
            src = ROOT if args.no_snapshot else snapshot(Path(tmp))
            env = server_env(args, Path(tmp) / "keys", src)
            migrate(env, src)
            for group in args.selected:
                if group.prepare:
                    print(f"bench: preparing {group.name}", flush=True)
                    group.prepare(env, src)
            for spec in args.specs:
                print(f"bench: {spec.label}", flush=True)
                try:
                    records.append(
                        bench_server(args, spec, env, src, args.selected, run_dir)
                    )
                except BenchError as exc:
                    # One broken configuration must not cost the others' runs.
                    print(f"bench: {spec.label} failed: {exc}", file=sys.stderr)
                    failures.append({"server": spec.label, "error": str(exc)})
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    result = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": machine,
        "settings": {
            "wrk": f"-t{args.wrk_threads} -c{args.connections} -d{args.duration}s "
            f"--timeout={args.wrk_timeout}s",
            "reps": args.reps,
            "warmup_s": args.warmup,
            "conn_max_age": args.conn_max_age,
            "django_settings": "config.settings.prod",
        },
        "servers": records,
        "failures": failures,
    }
    out = run_dir / "results.json"
    out.write_text(json.dumps(result, indent=2))
    print()
    print(markdown_table(records))
    print()
    print(f"bench: results in {out.relative_to(ROOT)}")
    for failure in failures:
        print(f"bench: FAILED {failure['server']}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
