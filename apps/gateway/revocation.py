"""The shared revocation record (ADR 0017).

One key per user: "access tokens of this user issued at or before T are
revoked", T in milliseconds since the epoch. An access token carries its
issue instant to the millisecond (``iat_ms``), so a token issued in the same
second as a revocation but after it is not caught by it. A key lives as long
as an access token can (ACCESS_TOKEN_LIFETIME plus the leeway): after that,
every token it revoked has expired anyway.

The record lives in Redis (``GATEWAY_REDIS_URL``), or in Django's cache when
no Redis is named (``make run``'s embedded default: one process, locmem).
Every process keeps what it read for GATEWAY_REVOCATION_CACHE_SECONDS; the
process that revokes updates its own copy at once.

Redis down: reads fail open (the token is accepted, a warning is logged) and
revocation takes effect when the token expires at the latest. The gateway
stops asking Redis for the cache period after a failure, so an outage costs
one connection attempt per process per period, not one per request.
"""

import logging
import threading
import time
from uuid import UUID

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "gateway:revoked:"
# Keep the later of the stored and the new instant (two revocations may
# be written in either order); every write restarts the key's TTL.
_RAISE_TO = """
local current = tonumber(redis.call('GET', KEYS[1]))
local new = tonumber(ARGV[1])
if current ~= nil and current > new then new = current end
redis.call('SET', KEYS[1], new, 'EX', ARGV[2])
return new
"""
# What an unreachable store raises (Django's Redis cache raises redis's too).
_UNREACHABLE = (redis.RedisError, OSError)
# An in-process copy never holds more users than this (oldest dropped).
_LOCAL_MAX_ENTRIES = 10_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _ttl_seconds() -> int:
    jwt = settings.SIMPLE_JWT
    return int(jwt["ACCESS_TOKEN_LIFETIME"].total_seconds()) + int(jwt["LEEWAY"]) + 1


class _RedisStore:
    def __init__(self, url: str, timeout: float):
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self.raise_to = self.client.register_script(_RAISE_TO)

    def get(self, user_id: str) -> int | None:
        value = self.client.get(KEY_PREFIX + user_id)
        return None if value is None else int(value)

    def put(self, user_id: str, at_ms: int, ttl: int) -> None:
        self.raise_to(keys=[KEY_PREFIX + user_id], args=[at_ms, ttl])


class _CacheStore:
    """Django's default cache: the embedded default's locmem (one process)."""

    def get(self, user_id: str) -> int | None:
        from django.core.cache import cache

        return cache.get(KEY_PREFIX + user_id)

    def put(self, user_id: str, at_ms: int, ttl: int) -> None:
        from django.core.cache import cache

        current = cache.get(KEY_PREFIX + user_id)
        cache.set(KEY_PREFIX + user_id, max(at_ms, current or 0), ttl)


_stores: dict[tuple, _RedisStore | _CacheStore] = {}
_lock = threading.Lock()
# user id -> (monotonic time the copy expires, revoked-before instant or None)
_local: dict[str, tuple[float, int | None]] = {}
_unreachable_until = 0.0


def _store() -> _RedisStore | _CacheStore:
    url = settings.GATEWAY_REDIS_URL
    timeout = settings.GATEWAY_REDIS_TIMEOUT_SECONDS
    key = (url, timeout)
    store = _stores.get(key)
    if store is None:
        store = _RedisStore(url, timeout) if url else _CacheStore()
        _stores[key] = store
    return store


def _remember(user_id: str, value: int | None, *, for_seconds: float) -> None:
    with _lock:
        if len(_local) >= _LOCAL_MAX_ENTRIES:
            _local.pop(next(iter(_local)))
        _local[user_id] = (time.monotonic() + for_seconds, value)


def revoked_before(user_id: UUID | str) -> int | None:
    """The instant (ms) at or before which ``user_id``'s tokens are revoked."""
    global _unreachable_until
    user_id = str(user_id)
    now = time.monotonic()
    cached = _local.get(user_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    known = cached[1] if cached is not None else None
    if now < _unreachable_until:
        return known
    period = settings.GATEWAY_REVOCATION_CACHE_SECONDS
    try:
        value = _store().get(user_id)
    except _UNREACHABLE as exc:  # fail open
        _unreachable_until = now + max(period, 1.0)
        logger.warning(
            "Revocation store unreachable (%s): accepting tokens without "
            "checking revocation; revoked tokens stay valid until they expire",
            exc,
        )
        return known
    if period > 0:
        _remember(user_id, value, for_seconds=period)
    return value


def is_revoked(user_id: UUID | str, issued_at_ms: int) -> bool:
    """Whether an access token of ``user_id`` issued then is revoked."""
    before = revoked_before(user_id)
    return before is not None and issued_at_ms <= before


def revoke(user_id: UUID | str, *, at_ms: int | None = None) -> None:
    """Revoke ``user_id``'s access tokens issued at or before ``at_ms`` (now).

    This process refuses them from its next request even if the store is
    unreachable; the others once they read the record.
    """
    user_id = str(user_id)
    at_ms = now_ms() if at_ms is None else at_ms
    ttl = _ttl_seconds()
    cached = _local.get(user_id)
    known = cached[1] if cached is not None else None
    _remember(user_id, max(at_ms, known or 0), for_seconds=ttl)
    try:
        _store().put(user_id, at_ms, ttl)
    except _UNREACHABLE as exc:
        logger.error(
            "Revocation of the tokens of user %s not shared (%s): other "
            "processes accept them until they expire",
            user_id,
            exc,
        )
        return
    # Other processes read it within their cache period; this one keeps its
    # own record until the next read after the period.
    _remember(
        user_id,
        max(at_ms, known or 0),
        for_seconds=settings.GATEWAY_REVOCATION_CACHE_SECONDS,
    )


def clear_local() -> None:
    """Forget what this process read (tests)."""
    global _unreachable_until
    with _lock:
        _local.clear()
    _unreachable_until = 0.0
