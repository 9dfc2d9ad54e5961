"""Rate limits at the edge, shared by every process through Redis (ADR 0019).

Every ``/api/`` request spends one hit of its caller's budget: per user for
a verified principal (``request.principal``, set by the authentication
middleware that runs before this one), per client IP otherwise. Login and
registration spend, besides, a hit of stricter budgets per IP and per
email. The limits are ``limits`` items (``"10/minute"``, or several:
``"10/minute;100/hour"``) counted with that library's fixed-window
semantics and key format; on Redis all of a request's counters are spent
and read in one pipelined round trip.

When Redis does not answer, each process counts in its own memory
(``limits``' MemoryStorage) and tries Redis again every
``RATELIMIT_REDIS_RETRY_SECONDS``: limits stay bounded per process, and a
dead Redis costs a request nothing but the first failed attempt.
"""

import hashlib
import ipaddress
import json
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http.request import RawPostDataException
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage, storage_from_string
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

logger = logging.getLogger("apps.gateway.ratelimit")

# The two routes that hash a password for an anonymous caller (public,
# versioned API paths: a new version gets its own entries).
LOGIN_PATH = "/api/v1/users/login"
REGISTER_PATH = "/api/v1/users"

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# -- Settings ---------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """The RATELIMIT_* settings, parsed once per process."""

    enabled: bool
    anonymous: tuple[RateLimitItem, ...]
    authenticated: tuple[RateLimitItem, ...]
    login_ip: tuple[RateLimitItem, ...]
    login_email: tuple[RateLimitItem, ...]
    register_ip: tuple[RateLimitItem, ...]
    register_email: tuple[RateLimitItem, ...]
    trusted_proxy_count: int
    trusted_proxies: tuple[IpNetwork, ...]

    @classmethod
    def from_settings(cls) -> "Config":
        count, networks = parse_trusted_proxies(settings.RATELIMIT_TRUSTED_PROXIES)
        return cls(
            enabled=settings.RATELIMIT_ENABLED,
            anonymous=_items(settings.RATELIMIT_ANONYMOUS),
            authenticated=_items(settings.RATELIMIT_AUTHENTICATED),
            login_ip=_items(settings.RATELIMIT_LOGIN_IP),
            login_email=_items(settings.RATELIMIT_LOGIN_EMAIL),
            register_ip=_items(settings.RATELIMIT_REGISTER_IP),
            register_email=_items(settings.RATELIMIT_REGISTER_EMAIL),
            trusted_proxy_count=count,
            trusted_proxies=networks,
        )


def _items(value: str) -> tuple[RateLimitItem, ...]:
    """``"10/minute;100/hour"`` -> limits items; empty: no limit."""
    return tuple(parse_many(value)) if value.strip() else ()


def parse_trusted_proxies(value: Sequence[str] | str) -> tuple[int, tuple]:
    """``RATELIMIT_TRUSTED_PROXIES``: a number of proxies, or their CIDRs.

    Returns (count, networks); at most one of them is set.
    """
    entries = [value] if isinstance(value, str) else list(value)
    entries = [e.strip() for e in entries if e and e.strip()]
    if len(entries) == 1 and entries[0].isdigit():
        return int(entries[0]), ()
    return 0, tuple(ipaddress.ip_network(e, strict=False) for e in entries)


# -- Who is calling ---------------------------------------------------------


def client_ip(request, config: Config) -> str:
    """The address the budget of an anonymous caller is keyed on.

    REMOTE_ADDR, unless it is a trusted proxy: then the nearest address in
    X-Forwarded-For that is not a trusted proxy (CIDRs), or the address
    the outermost of ``count`` proxies saw. Whatever a client writes into
    the header itself lies to the left of that and is never used.
    IPv6 addresses count per /64, the block one subscriber usually holds.
    """
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if forwarded and (config.trusted_proxy_count or config.trusted_proxies):
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if config.trusted_proxy_count:
            # Each proxy appends who connected to it; REMOTE_ADDR is the
            # nearest proxy, so the client is count hops from the right.
            if len(hops) >= config.trusted_proxy_count:
                remote = _valid(hops[-config.trusted_proxy_count]) or remote
        elif _trusted(remote, config.trusted_proxies):
            for hop in reversed(hops):
                address = _valid(hop)
                if address is None:
                    break
                remote = address
                if not _trusted(address, config.trusted_proxies):
                    break
    if ":" in remote:
        try:
            return str(ipaddress.ip_network(f"{remote}/64", strict=False))
        except ValueError:
            return remote
    return remote


def _valid(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _trusted(address: str, networks: tuple[IpNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def request_email(request) -> str | None:
    """The ``email`` of a JSON body, normalised as the users context stores
    it (stripped, lower case); None when there is none.

    Reading ``request.body`` keeps the bytes on the request, so DRF parses
    them again for the view.
    """
    try:
        data = json.loads(request.body)
    except (RequestDataTooBig, RawPostDataException, ValueError, RecursionError):
        return None
    email = data.get("email") if isinstance(data, dict) else None
    if not isinstance(email, str) or not email.strip():
        return None
    return email.strip().lower()


def _email_key(email: str) -> str:
    # Keys name no address in Redis; 128 bits keep them apart. JSON may
    # carry lone surrogates ("\\udfff"): they are hashed, not refused.
    return hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# -- Counting ---------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """One limit after this request's hit."""

    item: RateLimitItem
    count: int
    reset: int  # seconds until the window ends
    scope: str = ""  # "ip", "user", "login-ip", "login-email", ...

    @property
    def remaining(self) -> int:
        return max(0, self.item.amount - self.count)

    @property
    def exceeded(self) -> bool:
        return self.count > self.item.amount


@dataclass(frozen=True)
class Decision:
    """What the caller is told: the tightest limit, or the one exceeded."""

    allowed: bool
    limit: int
    remaining: int
    reset: int
    scope: str = ""  # the limit exceeded (or the tightest one)

    @classmethod
    def of(cls, usages: Sequence[Usage]) -> "Decision":
        exceeded = [u for u in usages if u.exceeded]
        if exceeded:
            # Allowed again only when every exceeded window has ended.
            usage = max(exceeded, key=lambda u: u.reset)
            return cls(False, usage.item.amount, 0, usage.reset, usage.scope)
        usage = min(usages, key=lambda u: (u.remaining, -u.reset))
        return cls(True, usage.item.amount, usage.remaining, usage.reset, usage.scope)

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


class Counter:
    """Fixed-window counters in one ``limits`` storage.

    ``hit`` adds one to each key and returns (count, seconds to reset) for
    each, as limits' FixedWindowRateLimiter counts (the window starts at a
    key's first hit and lasts the item's expiry); on Redis in one
    pipelined round trip, where the strategy would take three per limit
    (``hit``, then ``get_window_stats``'s GET and TTL).
    """

    def __init__(self, storage):
        self.storage = storage
        self.redis = isinstance(storage, RedisStorage)

    def hit(self, keys: Sequence[tuple[str, int]]) -> list[tuple[int, int]]:
        if self.redis:
            return self._hit_redis(keys)
        results = []
        now = time.time()
        for key, expiry in keys:
            count = self.storage.incr(key, expiry)
            reset = self.storage.get_expiry(key) - now
            results.append((count, _seconds(reset, expiry)))
        return results

    def _hit_redis(self, keys: Sequence[tuple[str, int]]) -> list[tuple[int, int]]:
        pipe = self.storage.get_connection().pipeline(transaction=False)
        for key, expiry in keys:
            key = self.storage.prefixed_key(key)
            # limits' incr_expire script: INCRBY, and EXPIRE on the first
            # hit; NX also mends a key that lost its expiry.
            pipe.incrby(key, 1)
            pipe.expire(key, expiry, nx=True)
            pipe.pttl(key)
        replies = pipe.execute()
        return [
            (int(replies[3 * i]), _seconds(replies[3 * i + 2] / 1000, expiry))
            for i, (_, expiry) in enumerate(keys)
        ]


def _seconds(reset: float, expiry: int) -> int:
    """Whole seconds to a window's end, 1 at least (a negative TTL: the
    key has no expiry yet or just expired, so a whole window)."""
    if reset <= 0:
        return expiry
    return max(1, math.ceil(reset))


class Limiter:
    """The process's counters: Redis when it answers, memory when not."""

    def __init__(
        self,
        storage_url: str,
        *,
        key_prefix: str,
        socket_timeout: float,
        retry_seconds: float,
        warn_seconds: float,
    ):
        self.storage_url = storage_url
        self.memory = Counter(MemoryStorage())
        self.primary: Counter | None = None
        if not storage_url.startswith("memory://"):
            self.primary = Counter(
                storage_from_string(
                    storage_url,
                    key_prefix=key_prefix,
                    socket_timeout=socket_timeout,
                    socket_connect_timeout=socket_timeout,
                    # No retries inside redis-py: the next attempt is ours,
                    # after retry_seconds.
                    retry=Retry(NoBackoff(), 0),
                )
            )
        self.retry_seconds = retry_seconds
        self.warn_seconds = warn_seconds
        self._down_until = 0.0  # monotonic; 0: Redis is up
        self._warned_at = -math.inf
        self._lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        """Counting in this process's memory because Redis did not answer."""
        return self._down_until != 0.0

    def hit(self, keys: Sequence[tuple[str, int]]) -> list[tuple[int, int]]:
        if self.primary is None or not self._try_primary():
            return self.memory.hit(keys)
        try:
            result = self.primary.hit(keys)
        except (RedisError, OSError) as error:
            self._failed(error)
            return self.memory.hit(keys)
        if self._down_until:
            self._down_until = 0.0
            logger.warning("Rate limits: Redis answers again; limits are shared again.")
        return result

    def _try_primary(self) -> bool:
        if not self._down_until:
            return True
        now = time.monotonic()
        with self._lock:
            if now < self._down_until:
                return False
            # This request probes Redis; the others keep counting in memory.
            self._down_until = now + self.retry_seconds
            return True

    def _failed(self, error: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self._down_until = now + self.retry_seconds
            if now - self._warned_at < self.warn_seconds:
                return
            self._warned_at = now
        logger.warning(
            "Rate limits: Redis at %s does not answer (%s); counting per process "
            "in memory, trying Redis again every %s s.",
            _redacted(self.storage_url),
            error,
            self.retry_seconds,
        )


def _redacted(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"


# -- The check ---------------------------------------------------------------


class RateLimits:
    """Config and limiter of this process (built on first use)."""

    def __init__(self, config: Config, limiter: Limiter):
        self.config = config
        self.limiter = limiter

    @classmethod
    def from_settings(cls) -> "RateLimits":
        return cls(
            Config.from_settings(),
            Limiter(
                settings.RATELIMIT_STORAGE_URL,
                key_prefix=settings.RATELIMIT_KEY_PREFIX,
                socket_timeout=settings.RATELIMIT_REDIS_TIMEOUT_SECONDS,
                retry_seconds=settings.RATELIMIT_REDIS_RETRY_SECONDS,
                warn_seconds=settings.RATELIMIT_REDIS_WARN_SECONDS,
            ),
        )

    def check(self, request) -> Decision | None:
        """Spend this request's hits; None when no limit applies."""
        config = self.config
        limits: list[tuple[str, str, RateLimitItem]] = []
        principal = getattr(request, "principal", None)
        ip = None
        if principal is not None:
            user = str(principal.id)
            limits.extend(("user", user, item) for item in config.authenticated)
        else:
            ip = client_ip(request, config)
            limits.extend(("ip", ip, item) for item in config.anonymous)
        if request.method == "POST":
            path = request.path_info
            if path == LOGIN_PATH:
                per_ip, per_email = config.login_ip, config.login_email
            elif path == REGISTER_PATH:
                per_ip, per_email = config.register_ip, config.register_email
            else:
                per_ip = per_email = ()
            if per_ip or per_email:
                scope = "login" if path == LOGIN_PATH else "register"
                ip = ip or client_ip(request, config)
                limits.extend((f"{scope}-ip", ip, item) for item in per_ip)
                email = request_email(request) if per_email else None
                if email:
                    key = _email_key(email)
                    limits.extend((f"{scope}-email", key, i) for i in per_email)
        if not limits:
            return None
        counts = self.limiter.hit(
            [
                (item.key_for(scope, who), item.get_expiry())
                for scope, who, item in limits
            ]
        )
        return Decision.of(
            [
                Usage(item, count, reset, scope)
                for (scope, _, item), (count, reset) in zip(limits, counts, strict=True)
            ]
        )


_current: RateLimits | None = None
_current_lock = threading.Lock()


def current() -> RateLimits:
    """This process's rate limits, built from settings on first use."""
    global _current
    if _current is None:
        with _current_lock:
            if _current is None:
                _current = RateLimits.from_settings()
    return _current


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    global _current
    if setting.startswith("RATELIMIT_"):
        _current = None
