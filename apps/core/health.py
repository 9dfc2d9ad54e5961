"""Liveness and readiness probes.

Readiness checks every database alias, the cache and the message broker, and
answers 503 naming whatever is down.
"""

import logging
import time

from django.conf import settings
from django.core.cache import caches
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from apps.core import metrics


def _check_database(alias: str) -> None:
    connection = connections[alias]
    if connection.vendor == "mongodb":
        connection.ensure_connection()
        connection.connection.admin.command("ping")
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    cache = caches["default"]
    cache.set("health:ping", "1", timeout=5)
    if cache.get("health:ping") != "1":
        raise RuntimeError("cache did not return what was stored")


def _check_broker() -> None:
    url = settings.CELERY_BROKER_URL
    if url.startswith("memory://"):
        return
    from kombu import Connection

    with Connection(url, connect_timeout=2) as connection:
        connection.ensure_connection(max_retries=1, timeout=2)


def run_checks() -> dict[str, str]:
    checks = {
        f"database:{alias}": _safely(_check_database, alias)
        for alias in settings.DATABASES
    }
    checks["cache"] = _safely(_check_cache)
    checks["broker"] = _safely(_check_broker)
    return checks


logger = logging.getLogger("apps.core.health")


def _safely(check, *args) -> str:
    try:
        check(*args)
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        # The probe is public: the body names the failure's kind only; the
        # details (hosts, messages) go to the log.
        logger.warning("Readiness check %s%s failed: %r", check.__name__, args, exc)
        return f"down: {type(exc).__name__}"
    return "ok"


@csrf_exempt
@never_cache
@require_GET
def live(request):
    return JsonResponse({"status": "ok"})


@csrf_exempt
@never_cache
@require_GET
def ready(request):
    started = time.monotonic()
    checks = run_checks()
    metrics.readiness_observed(checks)
    down = sorted(name for name, state in checks.items() if state != "ok")
    body = {
        "status": "unavailable" if down else "ok",
        "checks": checks,
        "down": down,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
    return JsonResponse(body, status=503 if down else 200)
