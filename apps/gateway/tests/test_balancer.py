"""The load balancer: round robin, smooth weighted, least connections under
concurrent leases, and active health checks against real HTTP servers that
stop and start again."""

import threading
from collections import Counter

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.gateway import balancer as balancing
from apps.gateway.balancer import Balancer, HealthChecker, NoHealthyInstance
from apps.gateway.tests.servers import TinyServer
from tests.polling import poll

A, B, C = "http://127.0.0.1:8101", "http://127.0.0.1:8102", "http://127.0.0.1:8103"


def picks(balancer: Balancer, count: int, **kwargs) -> list[str]:
    return [balancer.choose(**kwargs).url for _ in range(count)]


def test_round_robin_takes_each_instance_in_turn():
    balancer = Balancer("products", [A, B, C])

    assert picks(balancer, 6) == [A, B, C, A, B, C]


def test_round_robin_skips_unhealthy_and_excluded_instances():
    balancer = Balancer("products", [A, B, C])
    balancer.report_failure(balancer.instances[1])

    assert picks(balancer, 4) == [A, C, A, C]
    assert picks(balancer, 2, exclude={A}) == [C, C]


def test_weighted_1_to_3_splits_a_quarter_and_three_quarters():
    balancer = Balancer("products", [A, {"url": B, "weight": 3}], "weighted")

    counts = Counter(picks(balancer, 400))

    assert 90 <= counts[A] <= 110
    assert 290 <= counts[B] <= 310
    # Smooth: the light instance is never starved for long.
    first = picks(balancer, 8)
    assert first.count(A) == 2


def test_least_connections_chooses_the_least_loaded_instance():
    balancer = Balancer("products", [A, B, C], "least_connections")
    a, b, c = balancer.instances
    with balancer.lease(a), balancer.lease(a), balancer.lease(c):
        assert balancer.choose().url == B
        with balancer.lease(b), balancer.lease(b):
            assert balancer.choose().url == C
    assert [i.in_flight for i in balancer.instances] == [0, 0, 0]


def test_least_connections_spreads_concurrent_requests_evenly():
    """30 threads each hold a request open: 10 land on each instance."""
    balancer = Balancer("products", [A, B, C], "least_connections")
    release = threading.Event()
    chosen: list[str] = []

    def request():
        with balancer.pick() as instance:
            chosen.append(instance.url)
            release.wait(10)

    threads = [threading.Thread(target=request) for _ in range(30)]
    for thread in threads:
        thread.start()
    poll(lambda: len(chosen) == 30, message="30 requests in flight")

    assert Counter(chosen) == {A: 10, B: 10, C: 10}
    assert [i["in_flight"] for i in balancer.snapshot()] == [10, 10, 10]
    release.set()
    for thread in threads:
        thread.join()
    assert [i["in_flight"] for i in balancer.snapshot()] == [0, 0, 0]


def test_no_healthy_instance_fails_fast():
    balancer = Balancer("products", [A, B])
    for instance in balancer.instances:
        balancer.report_failure(instance, "connection refused")

    with pytest.raises(NoHealthyInstance) as error:
        balancer.choose()
    assert error.value.context == "products"
    with pytest.raises(NoHealthyInstance):
        Balancer("products", [A]).choose(exclude=[A])


@pytest.fixture
def servers():
    started = [TinyServer("a").start(), TinyServer("b").start()]
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def checker():
    checker = HealthChecker(interval=0.1, timeout=0.5)
    yield checker
    checker.stop()


def healthy(balancer: Balancer) -> list[str]:
    return [i["url"] for i in balancer.snapshot() if i["healthy"]]


def test_a_stopped_instance_is_ejected_and_comes_back_when_it_recovers(
    servers, checker
):
    a, b = servers
    balancer = Balancer("products", [a.url, b.url], checker=checker)
    balancer.choose()  # the first use starts the health checks
    poll(lambda: all(i["last_check"] for i in balancer.snapshot()), message="checks")

    b.stop()
    poll(lambda: healthy(balancer) == [a.url], timeout=5, message="b ejected")
    assert set(picks(balancer, 4)) == {a.url}
    assert "Error" in balancer.snapshot()[1]["last_error"]  # refused or reset

    b.start()  # the same port again
    poll(lambda: healthy(balancer) == [a.url, b.url], timeout=5, message="b back")
    assert set(picks(balancer, 4)) == {a.url, b.url}
    assert "/health/ready" in b.requests


def test_an_instance_that_is_not_ready_is_ejected(servers, checker):
    a, b = servers
    balancer = Balancer("products", [a.url, b.url], checker=checker)
    balancer.choose()

    a.health_status = 503
    poll(lambda: healthy(balancer) == [b.url], timeout=5, message="a ejected")
    assert "answered 503" in balancer.snapshot()[0]["last_error"]

    b.stop()
    poll(lambda: healthy(balancer) == [], timeout=5, message="both ejected")
    with pytest.raises(NoHealthyInstance):
        balancer.choose()

    a.health_status = 200
    poll(lambda: healthy(balancer) == [a.url], timeout=5, message="a back")
    assert balancer.choose().url == a.url


def test_a_reported_failure_lasts_until_a_health_check_passes(servers):
    a, b = servers
    checker = HealthChecker(interval=60)  # rounds run by hand below
    balancer = Balancer("products", [a.url, b.url], checker=checker)
    checker.watch(balancer)
    try:
        balancer.report_failure(balancer.instances[0], "ConnectError")
        assert set(picks(balancer, 4)) == {b.url}

        checker.check_once()

        assert set(picks(balancer, 4)) == {a.url, b.url}
    finally:
        checker.stop()


# -- From settings -----------------------------------------------------------------


def test_balancer_for_builds_one_balancer_per_remote_context(settings):
    settings.CONTEXTS = {
        "products": {
            "mode": "remote",
            "instances": [A, {"url": B + "/", "weight": 3}],
            "balancer": "weighted",
        },
        "users": {"mode": "local"},
    }
    balancer = balancing.balancer_for("products")
    try:
        assert balancing.balancer_for("products") is balancer
        assert balancer.strategy == "weighted"
        assert [(i["url"], i["weight"]) for i in balancer.snapshot()] == [
            (A, 1),
            (B, 3),
        ]

        settings.CONTEXTS = {"products": {"mode": "remote", "instances": [C]}}
        rebuilt = balancing.balancer_for("products")
        assert rebuilt is not balancer
        assert rebuilt.strategy == "round_robin"
        assert [i["url"] for i in rebuilt.snapshot()] == [C]
    finally:
        balancing.balancer_for("products").close()

    with pytest.raises(ImproperlyConfigured):
        balancing.balancer_for("users")


@pytest.mark.parametrize(
    "entry",
    [
        {"mode": "remote", "instances": []},
        {"mode": "remote", "instances": ["ftp://x"]},
        {"mode": "remote", "instances": [{"url": A, "weight": 0}]},
        {"mode": "remote", "instances": [A], "balancer": "random"},
    ],
)
def test_a_malformed_context_entry_is_refused(settings, entry):
    settings.CONTEXTS = {"products": entry}

    with pytest.raises(ImproperlyConfigured):
        balancing.balancer_for("products")
