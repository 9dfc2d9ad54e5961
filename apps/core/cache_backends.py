"""Django's cache backends, counting reads, hits and misses in
django-prometheus' cache metrics (``django_cache_get_total``,
``django_cache_get_hits_total``, ``django_cache_get_misses_total``,
``django_cache_get_fail_total``, by ``backend``).

django-prometheus' own Redis backend module needs django-redis (this
project uses Django's built-in Redis cache), and its locmem backend returns
the default for a cached falsy value; these count the same metrics and
return what Django's backends return.
"""

from django.core.cache.backends import locmem
from django_prometheus.cache.metrics import (
    django_cache_get_fail_total,
    django_cache_get_total,
    django_cache_hits_total,
    django_cache_misses_total,
)

from apps.core import cache

_MISSING = object()


def _counted_get(backend: str, get, key, default, version):
    django_cache_get_total.labels(backend=backend).inc()
    try:
        value = get(key, _MISSING, version)
    except Exception:
        django_cache_get_fail_total.labels(backend=backend).inc()
        raise
    if value is _MISSING:
        django_cache_misses_total.labels(backend=backend).inc()
        return default
    django_cache_hits_total.labels(backend=backend).inc()
    return value


class RedisCache(cache.RedisCache):
    """Counted, with one redis client per connection pool (apps/core/cache.py)."""

    def get(self, key, default=None, version=None):
        return _counted_get("redis", super().get, key, default, version)


class LocMemCache(locmem.LocMemCache):
    def get(self, key, default=None, version=None):
        return _counted_get("locmem", super().get, key, default, version)
