#!/usr/bin/env python
"""The gateway layer's cost and the proxy's (issue 8), under production
settings, with wrk on 127.0.0.1.

1. The layer on and off: the same server twice, with the gateway's
   middleware (token verification, rate limits against Redis, the proxy's
   route check) and without it (bench/settings_gateway_off.py: DRF's
   GatewayAuthentication then verifies the token itself; no rate limits).
   Scenarios: the full-stack ceiling, ``GET /api/v1/users/{id}`` with a JWT,
   ``GET /api/v1/products/{id}`` anonymous. The difference of server CPU per
   request is the layer's cost.
2. The proxy: a catalog instance, and a gateway whose catalog is remote
   (CONTEXTS_JSON); ``GET /api/v1/products/{id}`` straight to the instance
   and through the gateway, at a few connections (latency, not throughput:
   both servers share the machine's cores).

    .venv/bin/python bench/gateway.py                     # the documented run
    .venv/bin/python bench/gateway.py --duration 5 --reps 1

Results: printed as markdown and written to bench/results/<stamp>-gateway/.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

from bench import run  # noqa: E402

PRODUCTS = 1000
LAYER_GROUPS = [
    run.Group("ceiling", [run.CEILING]),
    run.Group(
        "users",
        setup=run.setup_users,
        scenarios=[
            run.Scenario(
                "GET /api/v1/users/{id} (JWT)",
                "/api/v1/users/{user_id}",
                token="{access}",
            )
        ],
    ),
    run.Group(
        "catalog",
        setup=lambda client, ctx: ctx.update(product_id=f"demo-{PRODUCTS // 2:07d}"),
        scenarios=[
            run.Scenario("GET /api/v1/products/{id}", "/api/v1/products/{product_id}")
        ],
    ),
]
DETAIL = LAYER_GROUPS[2]


def load_products(env: dict[str, str], src: Path) -> None:
    done = run.subprocess.run(
        [sys.executable, "manage.py", "load_catalog", "--count", str(PRODUCTS),
         "--verbosity", "0"],
        cwd=src, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise run.BenchError(f"load_catalog failed:\n{done.stdout}{done.stderr}")


def scenario_row(label: str, record: dict, name: str) -> dict:
    found = next(s for s in record["scenarios"] if s["name"] == name)
    m = found["median"]
    return {
        "setup": label,
        "scenario": name,
        "rps": round(m["rps"]),
        "ratio_to_ceiling": round(m["ratio_to_ceiling"], 3),
        "cpu_ms_per_request": round(m["server_cpu_ms_per_request"], 3),
        "p50_ms": round(m["p50_us"] / 1000, 2),
        "p95_ms": round(m["p95_us"] / 1000, 2),
        "p99_ms": round(m["p99_us"] / 1000, 2),
        "errors": sum(m["errors"].values()),
    }


def table(rows: list[dict]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[k]) for k in head) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="granian:2x4")
    parser.add_argument("--proxy-connections", type=int, default=4)
    known, rest = parser.parse_known_args(argv)
    args = run.parse_args(["--servers", known.server, *rest])
    spec = args.specs[0]
    started = datetime.now(UTC)
    run_dir = run.RESULTS_DIR / f"{started:%Y%m%dT%H%M%SZ}-gateway"
    run_dir.mkdir(parents=True)
    rows: list[dict] = []
    run.ensure_databases(args.pg_url, args.fresh_db)
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        src = run.snapshot(Path(tmp))
        env = run.server_env(args, Path(tmp) / "keys", src)
        run.migrate(env, src)
        load_products(env, src)

        # -- 1. the layer on and off --------------------------------------------
        records = {}
        for label, settings in (
            ("gateway on", "config.settings.prod"),
            ("gateway off", "bench.settings_gateway_off"),
        ):
            print(f"bench gateway: {label}", flush=True)
            records[label] = run.bench_server(
                args,
                spec,
                {**env, "DJANGO_SETTINGS_MODULE": settings},
                src,
                LAYER_GROUPS,
                run_dir,
            )
            for group in LAYER_GROUPS:
                for scenario in group.scenarios:
                    rows.append(scenario_row(label, records[label], scenario.name))

        # -- 2. the proxy ---------------------------------------------------------
        print("bench gateway: proxy", flush=True)
        catalog_spec = run.ServerSpec("granian", 1, 4)
        catalog = run.Server(catalog_spec, env, src, run_dir / "catalog.log")
        try:
            catalog.wait_ready(args.start_deadline)
            remote = {
                "products": {
                    "mode": "remote",
                    "instances": [f"http://{run.HOST}:{catalog.port}"],
                }
            }
            proxy_args = run.parse_args(
                ["--servers", "granian:1x4", "--connections",
                 str(known.proxy_connections), *rest]
            )  # fmt: skip
            # The gateway: its catalog is the instance above.
            gateway_env = {**env, "CONTEXTS_JSON": json.dumps(remote)}
            through = run.bench_server(
                proxy_args,
                catalog_spec,
                gateway_env,
                src,
                [run.Group("ceiling", [run.CEILING]), DETAIL],
                run_dir,
            )
            rows.append(
                scenario_row(
                    f"through the gateway (c={known.proxy_connections})",
                    through,
                    DETAIL.scenarios[0].name,
                )
            )
        finally:
            catalog.stop()
        direct = run.bench_server(
            proxy_args,
            catalog_spec,
            env,
            src,
            [run.Group("ceiling", [run.CEILING]), DETAIL],
            run_dir,
        )
        rows.append(
            scenario_row(
                f"direct to the instance (c={known.proxy_connections})",
                direct,
                DETAIL.scenarios[0].name,
            )
        )
    (run_dir / "results.json").write_text(
        json.dumps({"started_at": started.isoformat(), "rows": rows}, indent=2)
    )
    print()
    print(table(rows))
    print(f"\nbench gateway: results in {run_dir.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
