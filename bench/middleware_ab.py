#!/usr/bin/env python
"""What each middleware costs: the same request through several middleware
lists in one process, by CPU time.

Builds one Django WSGI handler per variant of settings.MIDDLEWARE
(production settings, the bench databases of bench/run.py), sends the same
GET through each in interleaved batches, and prints each variant's least
CPU time per request over the batches (the least is the run the machine
disturbed least). No server and no load generator: a variant's difference
to "current" is what the middleware it drops costs in this process.

    .venv/bin/python bench/middleware_ab.py --drop Prometheus --drop RateLimit
    .venv/bin/python bench/middleware_ab.py --path /api/v1/products/demo-0000010 \\
        --drop RateLimit --drop all
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import run  # noqa: E402  (databases, keys, environment)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", default="/health/live")
    parser.add_argument("--query", default="", help="the query string, no '?'")
    parser.add_argument(
        "--drop",
        action="append",
        default=[],
        help="a variant without the middleware whose path contains this "
        "('all': no middleware); repeat for more variants",
    )
    parser.add_argument("--requests", type=int, default=1000, help="per batch")
    parser.add_argument("--batches", type=int, default=15)
    opts = parser.parse_args(argv)

    args = run.parse_args(["--servers", "granian:1x1"])
    run.ensure_databases(args.pg_url, fresh=False)
    env = run.server_env(args, Path(tempfile.mkdtemp(prefix="bench-keys-")))
    run.migrate(env, run.ROOT)
    os.environ.update(env)

    import django
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    django.setup(set_prefix=False)
    current = list(settings.MIDDLEWARE)
    variants = {"current": current}
    for part in opts.drop:
        variants[f"without {part}"] = (
            [] if part == "all" else [m for m in current if part not in m]
        )
    handlers = {}
    for name, middleware in variants.items():
        settings.MIDDLEWARE = middleware
        handlers[name] = WSGIHandler()
    settings.MIDDLEWARE = current

    def send(app):
        status, _ = run.call_wsgi(app, "GET", opts.path, query=opts.query)
        if not status.startswith("200"):
            raise SystemExit(f"{opts.path}: {status}")

    for handler in handlers.values():
        for _ in range(200):  # warm: connections, caches, the page cached
            send(handler)
    best = dict.fromkeys(handlers, float("inf"))
    for _ in range(opts.batches):
        for name, handler in handlers.items():
            started = time.process_time()
            for _ in range(opts.requests):
                send(handler)
            spent = (time.process_time() - started) / opts.requests
            best[name] = min(best[name], spent)
    for name, spent in best.items():
        print(f"{name:40s} {spent * 1e6:7.1f} µs of CPU per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
