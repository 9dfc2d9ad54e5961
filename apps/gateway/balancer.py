"""Load balancing across the instances of a remote context (DESIGN.md,
"Gateway"; ADR 0020).

``settings.CONTEXTS[name]`` of a remote context names its instances and
strategy::

    {"mode": "remote",
     "instances": ["http://10.0.0.5:8000", {"url": "http://10.0.0.6:8000",
                                             "weight": 3}],
     "balancer": "round_robin" | "least_connections" | "weighted"}

``balancer_for(name)`` is that context's balancer in this process. A caller
chooses an instance, holds a lease on it while its request runs (least
connections counts them), and reports a connection failure, which takes the
instance out until its next passing health check::

    balancer = balancer_for("products")
    with balancer.pick(exclude=tried) as instance:  # choose + lease
        ...  # the request to instance.url
    # on httpx.ConnectError: balancer.report_failure(instance)

(``choose`` then ``lease`` does the same in two steps; ``pick`` counts the
lease as it chooses, so concurrent least-connections choices see each
other.)

Active health checks: one daemon thread per process, started by the first
``choose``, GETs ``<url>/health/ready`` of every instance every
``BALANCER_HEALTH_INTERVAL_SECONDS`` (timeout
``BALANCER_HEALTH_TIMEOUT_SECONDS``): an instance that does not answer 200
is ejected; one that answers 200 again comes back. Instances start healthy.
With no healthy instance left, ``choose`` raises ``NoHealthyInstance`` at
once (callers answer 503) instead of trying instances known to be down.
"""

import copy
import logging
import os
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.gateway.errors import NoHealthyInstance

__all__ = [
    "STRATEGIES",
    "Balancer",
    "HealthChecker",
    "Instance",
    "NoHealthyInstance",
    "balancer_for",
]

logger = logging.getLogger("gateway")

HEALTH_PATH = "/health/ready"
STRATEGIES = ("round_robin", "least_connections", "weighted")


@dataclass(eq=False)
class Instance:
    """One instance of a remote context; the balancer's lock guards it."""

    url: str
    weight: int = 1
    healthy: bool = True
    in_flight: int = 0
    last_check: datetime | None = None
    last_error: str = ""
    # Smooth weighted round robin's running weight.
    current_weight: int = field(default=0, repr=False)

    @classmethod
    def from_setting(cls, spec: str | Mapping[str, Any]) -> "Instance":
        """An instance from ``"http://host:port"`` or ``{"url": ...,
        "weight": n}``."""
        if isinstance(spec, str):
            url, weight = spec, 1
        else:
            url, weight = spec.get("url", ""), spec.get("weight", 1)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ImproperlyConfigured(f"An instance needs an http(s) URL: {spec!r}")
        if not isinstance(weight, int) or weight < 1:
            raise ImproperlyConfigured(f"An instance's weight is 1 or more: {spec!r}")
        return cls(url=url.rstrip("/"), weight=weight)


class Balancer:
    """Chooses among the healthy instances of one context by ``strategy``:
    ``round_robin`` (each in turn), ``least_connections`` (the fewest
    leases; ties in turn) or ``weighted`` (smooth weighted round robin, as
    nginx: weights 1 and 3 give a b b b in some interleaving every 4)."""

    def __init__(
        self,
        context: str,
        instances: Iterable[Instance | str | Mapping[str, Any]],
        strategy: str = "round_robin",
        *,
        checker: "HealthChecker | None" = None,
    ):
        if strategy not in STRATEGIES:
            raise ImproperlyConfigured(
                f"{context}: balancer {strategy!r} is not one of {STRATEGIES}"
            )
        self.context = context
        self.strategy = strategy
        self.instances: list[Instance] = [
            spec if isinstance(spec, Instance) else Instance.from_setting(spec)
            for spec in instances
        ]
        if not self.instances:
            raise ImproperlyConfigured(f"{context}: a remote context needs instances")
        self._checker = checker
        self._watched = False
        self._lock = threading.Lock()
        self._cursor = 0

    def choose(self, *, exclude: Collection[str] = ()) -> Instance:
        """The instance for the next request.

        Args:
            exclude: URLs not to choose (those this request already tried).

        Raises:
            NoHealthyInstance: every instance is unhealthy or excluded.
        """
        return self._choose(exclude, lease=False)

    def _choose(self, exclude: Collection[str], *, lease: bool) -> Instance:
        if self._checker is not None and not self._watched:
            self._checker.watch(self)
            self._watched = True
        with self._lock:
            count = len(self.instances)
            turn = [
                self.instances[(self._cursor + step) % count] for step in range(count)
            ]
            eligible = [i for i in turn if i.healthy and i.url not in exclude]
            if not eligible:
                raise NoHealthyInstance(self.context)
            if self.strategy == "weighted":
                chosen = self._smooth_weighted(eligible)
            else:
                if self.strategy == "least_connections":
                    # The first of the least loaded, in turn.
                    chosen = min(eligible, key=lambda i: i.in_flight)
                else:
                    chosen = eligible[0]
                self._cursor = (self.instances.index(chosen) + 1) % count
            if lease:
                chosen.in_flight += 1
            return chosen

    def _smooth_weighted(self, eligible: list[Instance]) -> Instance:
        total = 0
        best = eligible[0]
        for instance in eligible:
            instance.current_weight += instance.weight
            total += instance.weight
            if instance.current_weight > best.current_weight:
                best = instance
        best.current_weight -= total
        return best

    @contextmanager
    def pick(self, *, exclude: Collection[str] = ()) -> Iterator[Instance]:
        """``choose`` and ``lease`` in one step: concurrent callers of least
        connections each see the others' leases.

        Raises:
            NoHealthyInstance: as ``choose``.
        """
        instance = self._choose(exclude, lease=True)
        try:
            yield instance
        finally:
            with self._lock:
                instance.in_flight -= 1

    @contextmanager
    def lease(self, instance: Instance) -> Iterator[Instance]:
        """Count a request on ``instance`` while the block runs."""
        with self._lock:
            instance.in_flight += 1
        try:
            yield instance
        finally:
            with self._lock:
                instance.in_flight -= 1

    def report_failure(self, instance: Instance, reason: str = "") -> None:
        """Take ``instance`` out (a connection to it failed) until a health
        check passes again."""
        with self._lock:
            was_healthy, instance.healthy = instance.healthy, False
            instance.last_error = reason or "connection failed"
        if was_healthy:
            logger.warning(
                "%s: instance %s ejected: %s",
                self.context,
                instance.url,
                instance.last_error,
            )

    def record_check(self, instance: Instance, error: str | None) -> None:
        """The outcome of a health check (``error`` None: it passed)."""
        with self._lock:
            was_healthy = instance.healthy
            instance.healthy = error is None
            instance.last_check = datetime.now(UTC)
            instance.last_error = error or ""
            if error is None and not was_healthy:
                # Back in the weighted rotation without a head start.
                instance.current_weight = 0
        if was_healthy and error is not None:
            logger.warning(
                "%s: instance %s ejected: %s", self.context, instance.url, error
            )
        elif error is None and not was_healthy:
            logger.info("%s: instance %s healthy again", self.context, instance.url)

    def snapshot(self) -> list[dict[str, Any]]:
        """The instances as the status endpoint shows them."""
        with self._lock:
            return [
                {
                    "url": i.url,
                    "weight": i.weight,
                    "healthy": i.healthy,
                    "in_flight": i.in_flight,
                    "last_check": i.last_check.isoformat() if i.last_check else None,
                    "last_error": i.last_error,
                }
                for i in self.instances
            ]

    def close(self) -> None:
        """Stop health-checking this balancer."""
        if self._checker is not None:
            self._checker.unwatch(self)


class HealthChecker:
    """One thread that checks the instances of every balancer it watches,
    one after the other, every ``interval`` seconds (so a round with many
    unreachable instances can take up to ``timeout`` each)."""

    def __init__(
        self, *, interval: float = 5.0, timeout: float = 1.0, path: str = HEALTH_PATH
    ):
        self.interval = interval
        self.path = path
        self._client = httpx.Client(timeout=timeout)
        self._balancers: list[Balancer] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, balancer: Balancer) -> None:
        """Check ``balancer``'s instances from now on (starts the thread)."""
        with self._lock:
            if balancer not in self._balancers:
                self._balancers.append(balancer)
            if self._thread is None and not self._stopped.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="gateway-health-checks", daemon=True
                )
                self._thread.start()

    def unwatch(self, balancer: Balancer) -> None:
        with self._lock:
            if balancer in self._balancers:
                self._balancers.remove(balancer)

    def check_once(self) -> None:
        """One round: every instance of every watched balancer."""
        with self._lock:
            balancers = list(self._balancers)
        for balancer in balancers:
            for instance in list(balancer.instances):
                if self._stopped.is_set():
                    return
                balancer.record_check(instance, self._probe(instance.url))

    def _probe(self, url: str) -> str | None:
        try:
            response = self._client.get(url + self.path)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.status_code != 200:
            return f"{self.path} answered {response.status_code}"
        return None

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.check_once()
            except Exception:  # the thread must outlive any surprise
                logger.exception("Health check round failed")
            self._stopped.wait(self.interval)

    def stop(self) -> None:
        """Stop the thread (waits for the round in progress)."""
        self._stopped.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._client.close()


_checker: HealthChecker | None = None
_balancers: dict[str, tuple[dict[str, Any], Balancer]] = {}
_registry_lock = threading.Lock()


def _process_checker() -> HealthChecker:
    global _checker
    if _checker is None:
        _checker = HealthChecker(
            interval=float(getattr(settings, "BALANCER_HEALTH_INTERVAL_SECONDS", 5)),
            timeout=float(getattr(settings, "BALANCER_HEALTH_TIMEOUT_SECONDS", 1)),
        )
    return _checker


def balancer_for(context: str) -> Balancer:
    """The balancer of remote ``context`` in this process, built from
    ``settings.CONTEXTS`` (and built again when that entry changes).

    Raises:
        ImproperlyConfigured: ``context`` is not remote, or its entry is
            malformed.
    """
    config = getattr(settings, "CONTEXTS", {}).get(context)
    cached = _balancers.get(context)
    if cached is not None and cached[0] == config:
        return cached[1]
    if not config or config.get("mode") != "remote":
        raise ImproperlyConfigured(f"Context {context!r} is not remote")
    with _registry_lock:
        cached = _balancers.get(context)
        if cached is not None and cached[0] == config:
            return cached[1]
        if cached is not None:
            cached[1].close()
        balancer = Balancer(
            context,
            config.get("instances", ()),
            config.get("balancer", "round_robin"),
            checker=_process_checker(),
        )
        _balancers[context] = (copy.deepcopy(config), balancer)
        return balancer


def _forget_after_fork() -> None:
    # The parent's health-check thread does not exist in a child.
    global _checker, _registry_lock
    _checker = None
    _registry_lock = threading.Lock()
    _balancers.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
