"""Settings behaviour, run the way an operator would: manage.py in a subprocess."""

import os

from config.keys import load_or_create_keypair
from tests.subprocesses import run_manage


def _manage(*args, env):
    return run_manage(*args, env=env, timeout=120)


def _clean_env():
    keep = ("PATH", "HOME", "LANG", "VIRTUAL_ENV", "SYSTEMROOT")
    return {k: v for k, v in os.environ.items() if k in keep}


def test_prod_refuses_to_start_without_its_secrets():
    result = _manage(
        "check", env={**_clean_env(), "DJANGO_SETTINGS_MODULE": "config.settings.prod"}
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_prod_passes_check_deploy_with_no_warnings(tmp_path):
    private_pem, _ = load_or_create_keypair(tmp_path)
    env = {
        **_clean_env(),
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "DJANGO_SECRET_KEY": "k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz!@#$",
        "DJANGO_ALLOWED_HOSTS": "shop.example.com",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/shop",
        "ORDERS_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/shop_orders",
        "CATALOG_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/shop_catalog",
        "JWT_PRIVATE_KEY": private_pem,
        "CACHE_URL": "redis://127.0.0.1:6379/1",
        "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
    }

    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_cache_urls_are_read_by_django_environ_with_short_redis_timeouts(
    monkeypatch,
):
    from config.env import cache

    monkeypatch.setenv("SOME_CACHE_URL", "rediss://cache.example.com:6380/2")
    redis = cache("SOME_CACHE_URL")
    monkeypatch.setenv("SOME_CACHE_URL", "redis://127.0.0.1:6379/3?socket_timeout=9")
    patient = cache("SOME_CACHE_URL")
    monkeypatch.delenv("SOME_CACHE_URL")
    memory = cache("SOME_CACHE_URL", default="locmemcache://")

    # Django's backends, as instrumented for Prometheus (ADR 0023).
    assert redis == {
        "BACKEND": "apps.core.cache_backends.RedisCache",
        "LOCATION": "rediss://cache.example.com:6380/2",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
    assert patient["OPTIONS"]["socket_timeout"] == 9
    assert memory["BACKEND"] == "apps.core.cache_backends.LocMemCache"
    monkeypatch.setenv("SOME_CACHE_URL", "locmem://")  # the earlier name
    assert cache("SOME_CACHE_URL") == memory
