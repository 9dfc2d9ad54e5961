"""The embedded default (SQLite files, tasks inline), run as `make run` would:
manage.py in a subprocess against fresh SQLite files."""

import json
import os

from tests.subprocesses import run_manage

CLIENT_SCRIPT = """
import json
from django.test import Client
c = Client()
out = {}
for name, path in [
    ("tag", "/api/v1/products?tag=coffee&page_size=5"),
    ("attr", "/api/v1/products?attr.voltage=230&page_size=5"),
    ("search", "/api/v1/products/search?q=KETTLE&page_size=5"),
    ("unaccented", "/api/v1/products/search?q=creme&page_size=5"),
    ("accented", "/api/v1/products/search?q=CAF%C3%89&page_size=5"),
    ("typo", "/api/v1/products/search?q=cofee+grinder&in_stock=true&page_size=5"),
    ("ordered", "/api/v1/products?ordering=best_selling&page_size=3"),
    ("stop_words", "/api/v1/products/search?q=the+and+of+%3F%21"),
    ("ready", "/health/ready"),
]:
    r = c.get(path, HTTP_HOST="127.0.0.1")
    out[name] = [r.status_code, r.json()]
login = c.post(
    "/api/v1/users/login",
    {"email": "customer@shop.local", "password": "customer-demo-pass-2026"},
    content_type="application/json",
    HTTP_HOST="127.0.0.1",
)
out["login"] = [login.status_code, login.json()]
auth = {
    "HTTP_AUTHORIZATION": "Bearer " + login.json()["access"],
    "HTTP_HOST": "127.0.0.1",
}
product = out["search"][1]["results"][0]
# Read twice (the cache filled), then changed by the order's saga.
for _ in range(2):
    before = c.get("/api/v1/products/" + product["id"], HTTP_HOST="127.0.0.1")
out["product_before"] = [before.status_code, before.json()]
placed = c.post(
    "/api/v1/orders",
    {"items": [{"product_id": product["id"], "quantity": 2}]},
    content_type="application/json",
    **auth,
)
out["placed"] = [placed.status_code, placed.json()]
order = c.get("/api/v1/orders/" + placed.json()["id"], **auth)
out["order"] = [order.status_code, order.json()]
after = c.get("/api/v1/products/" + product["id"], HTTP_HOST="127.0.0.1")
out["product_after"] = [after.status_code, after.json()]
print("RESULT" + json.dumps(out))
"""


def embedded_env(tmp_path) -> dict[str, str]:
    """`make run`'s environment: dev settings, SQLite files in tmp_path, an
    in-process cache and broker."""
    return {
        **{k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")},
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'default.sqlite3'}",
        "ORDERS_DATABASE_URL": f"sqlite:///{tmp_path / 'orders.sqlite3'}",
        "CATALOG_DATABASE_URL": f"sqlite:///{tmp_path / 'catalog.sqlite3'}",
        "CACHE_URL": "locmemcache://",
        "CELERY_BROKER_URL": "memory://",
    }


def test_make_run_setup_serves_catalog_login_and_orders_on_sqlite(tmp_path):
    env = embedded_env(tmp_path)

    def manage(*args):
        result = run_manage(*args, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    for alias in ("default", "orders", "catalog"):
        manage("migrate", "--database", alias, "--verbosity", "0")
    credentials = manage("seed_demo_users")
    manage("load_catalog", "--count", "300", "--verbosity", "0")
    output = manage("shell", "-c", CLIENT_SCRIPT)

    assert "customer@shop.local" in credentials
    result = json.loads(output.split("RESULT", 1)[1])
    for name, (status, _) in result.items():
        assert status == (201 if name == "placed" else 200), (name, result[name])
    assert all("coffee" in p["tags"] for p in result["tag"][1]["results"])
    assert result["tag"][1]["count"] > 0
    assert result["attr"][1]["count"] > 0
    assert all(p["attributes"]["voltage"] == 230 for p in result["attr"][1]["results"])
    assert result["search"][1]["count"] > 0
    assert "Kettle" in result["search"][1]["results"][0]["name"]
    # Case and accents never matter, as on PostgreSQL; nor does the README's
    # typo (a close copy of pg_trgm's word similarity).
    assert result["unaccented"][1]["count"] > 0
    assert "Crème" in result["unaccented"][1]["results"][0]["name"]
    assert result["accented"][1]["count"] > 0
    assert "Café" in result["accented"][1]["results"][0]["name"]
    assert result["typo"][1]["count"] > 0
    assert all(p["stock"] > 0 for p in result["typo"][1]["results"])
    assert "Coffee Grinder" in result["typo"][1]["results"][0]["name"]
    sold = [p["sold_count"] for p in result["ordered"][1]["results"]]
    assert sold == sorted(sold, reverse=True)
    assert result["login"][1]["token_type"] == "Bearer"
    # An order is confirmed by the saga in-process, its stock sold, and the
    # customer's e-mails printed on the console.
    assert result["placed"][0] == 201
    # The answer is the order as placed, although the saga has run since.
    assert result["placed"][1]["status"] == "pending"
    assert [h["to_status"] for h in result["placed"][1]["history"]] == ["pending"]
    order = result["order"][1]
    assert order["status"] == "confirmed"
    assert [h["to_status"] for h in order["history"]] == ["pending", "confirmed"]
    assert result["stop_words"][1]["count"] == 0
    assert result["stop_words"][1]["results"] == []
    before = result["product_before"][1]
    assert before == result["search"][1]["results"][0]
    after = result["product_after"][1]
    assert after["stock"] == before["stock"] - 2
    assert after["sold_count"] == before["sold_count"] + 2
    ref = order["id"][:8].upper()
    assert f"Subject: We have your order {ref}" in output
    assert f"Subject: Your order {ref} is confirmed" in output


def test_the_embedded_default_serves_concurrent_writers_without_lock_errors(
    tmp_path,
):
    """Several clients at once on `make run` (runserver, SQLite): concurrent
    registrations and orders (each running its saga in-process) all succeed;
    none meets "database is locked"."""
    import subprocess
    import sys
    import threading
    import urllib.error
    import urllib.request
    from collections import Counter

    from tests.polling import poll
    from tests.servers import free_port
    from tests.subprocesses import ROOT

    env = embedded_env(tmp_path)
    for alias in ("default", "orders", "catalog"):
        assert run_manage("migrate", "--database", alias, env=env).returncode == 0
    assert run_manage("seed_demo_users", env=env).returncode == 0
    assert run_manage("load_catalog", "--count", "20", env=env).returncode == 0
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def call(path, body, token=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            base + path, json.dumps(body).encode(), headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def up():
        try:
            return urllib.request.urlopen(base + "/health/live", timeout=1).status
        except OSError:
            return None

    try:
        poll(up, timeout=60, message="runserver")
        _, login = call(
            "/api/v1/users/login",
            {"email": "customer@shop.local", "password": "customer-demo-pass-2026"},
        )
        with urllib.request.urlopen(
            base + "/api/v1/products?in_stock=true&page_size=50", timeout=10
        ) as response:
            stocked = [
                p["id"]
                for p in json.loads(response.read())["results"]
                if p["stock"] >= 3
            ][:4]
        assert len(stocked) == 4
        outcomes = []

        def register(n):
            outcomes.append(
                call(
                    "/api/v1/users",
                    {"email": f"c{n}@example.com", "name": f"C {n}",
                     "password": "a-long-pass-phrase-9"},
                )[0]
            )  # fmt: skip

        def order(n):
            for _ in range(3):
                status, body = call(
                    "/api/v1/orders",
                    {"items": [{"product_id": stocked[n], "quantity": 1}]},
                    login["access"],
                )
                outcomes.append(status if status == 201 else json.dumps(body))

        threads = [threading.Thread(target=register, args=(n,)) for n in range(4)]
        threads += [threading.Thread(target=order, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        server.terminate()
        log = server.communicate(timeout=20)[1]

    assert Counter(outcomes) == {201: 4 + 4 * 3}
    assert "database is locked" not in log


def test_restarting_make_run_keeps_the_demo_accounts_logged_in(tmp_path):
    env = embedded_env(tmp_path)
    assert run_manage("migrate", "--database", "default", env=env).returncode == 0
    hashes = (
        "from apps.users.models import User; "
        "print(sorted(User.objects.values_list('password', flat=True)))"
    )

    first = run_manage("seed_demo_users", env=env)
    before = run_manage("shell", "-c", hashes, env=env).stdout
    again = run_manage("seed_demo_users", env=env)
    after = run_manage("shell", "-c", hashes, env=env).stdout

    assert first.returncode == again.returncode == 0
    assert "customer@shop.local  password: customer-demo-pass-2026" in again.stdout
    assert before.count("argon2$") == 2  # both demo accounts, hashed
    assert before == after  # no new password: earlier tokens stay valid
