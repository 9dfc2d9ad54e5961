"""Fixtures every test can use: API clients and users."""

import pytest
from rest_framework.test import APIClient

from tests.servers import LoggedProcess


def _forget_cached_reads():
    from apps.products.cache import forget_all
    from apps.users.cache import forget_all as forget_all_profiles

    forget_all()
    # Likewise the users' profiles (ADR 0031).
    forget_all_profiles()


@pytest.fixture(autouse=True)
def _fresh_product_cache():
    """Each test starts with no cached product (ADR 0026): tests roll their
    rows back, and create them through the ORM, which no production write
    does, so an entry of an earlier test could match a later one's ids."""
    _forget_cached_reads()


@pytest.fixture(params=["redis", "locmem"])
def cache_backend(request, settings):
    """Run the test on the cache CACHE_URL names (Redis under make test,
    as in production) and again on locmem (make run), each empty."""
    if request.param == "locmem":
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        }
    _forget_cached_reads()
    return request.param


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def argon2(settings):
    """Hash passwords with Argon2, as every environment but tests does."""
    settings.PASSWORD_HASHERS = [h for h in settings.PASSWORD_HASHERS if "MD5" not in h]


@pytest.fixture
def make_user(db):
    from apps.users.services import user_create

    counter = {"n": 0}

    def make(*, email=None, name="Ada Lovelace", password="correct-horse-42", **kw):
        counter["n"] += 1
        user = user_create(
            email=email or f"user{counter['n']}@example.com",
            name=name,
            password=password,
            **kw,
        )
        user.raw_password = password
        return user

    return make


@pytest.fixture
def customer(make_user):
    return make_user(email="customer@example.com")


@pytest.fixture
def staff(make_user):
    return make_user(email="staff@example.com", name="Grace Hopper", is_staff=True)


@pytest.fixture
def operator_client(client, make_user):
    """Django's test client logged in to the admin as a superuser."""
    operator = make_user(email="root@example.com", is_staff=True)
    operator.is_superuser = True
    operator.save()
    client.force_login(operator)
    return client


def login(client: APIClient, user) -> dict:
    response = client.post(
        "/api/v1/users/login",
        {"email": user.email, "password": user.raw_password},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def auth_client():
    """A client logged in as the given user (Bearer access token)."""

    def make(user) -> APIClient:
        client = APIClient()
        tokens = login(client, user)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        client.tokens = tokens
        return client

    return make


def subprocess_database_env() -> dict[str, str]:
    """The environment that points a subprocess at the test databases."""
    from django.db import connections

    env = {}
    for alias, var in (
        ("default", "DATABASE_URL"),
        ("orders", "ORDERS_DATABASE_URL"),
        ("catalog", "CATALOG_DATABASE_URL"),
    ):
        settings = connections[alias].settings_dict
        env[var] = (
            f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}"
            f"/{settings['NAME']}"
        )
    return env


class WorkerProcess(LoggedProcess):
    """A real Celery worker process (tasks on its own queue, and the event
    consumers of EVENT_CONSUMERS_ENABLED)."""

    def __init__(self, queue: str, extra_env: dict[str, str], *, name: str = ""):
        import os
        import sys

        self.queue = queue
        # Workers sharing a queue need names of their own (control, logs).
        self.hostname = f"{name or queue}@{os.uname()[1]}"
        # One task at a time, in a thread: with the solo pool (Celery and
        # kombu 5.7) a task run from the event loop's ready queue leaves its
        # ack queued there while the loop polls for up to 10 s, and with the
        # prefetch window full the broker sends nothing meanwhile.
        super().__init__(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "--pool", "threads", "--concurrency", "1",
                "--queues", queue, "--hostname", self.hostname,
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel", "INFO",
            ],
            {"CELERY_TASK_ALWAYS_EAGER": "false", **extra_env},
            prefix="celery-worker-",
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> None:
        import time

        from config.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.output()}")
            if app.control.ping(destination=[self.hostname], timeout=0.5):
                return
        raise RuntimeError(f"the Celery worker did not start within {timeout} s")


@pytest.fixture
def start_worker(transactional_db):
    """Start real Celery worker processes on the test databases: call it
    with extra environment; each is stopped at the end of the test."""
    import uuid

    workers = []

    def start(extra_env: dict[str, str] | None = None, *, ready=True):
        worker = WorkerProcess(f"test-{uuid.uuid4().hex[:12]}", extra_env or {})
        workers.append(worker)
        if ready:
            worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def celery_worker_process(start_worker):
    """A real Celery worker process on RabbitMQ, using the test databases,
    running no event consumers.

    Listens on a queue of its own, so that no other worker (or test run)
    takes its messages. Yields the queue name; tests poll the database for
    the outcome with a deadline.
    """
    yield start_worker({"EVENT_CONSUMERS_ENABLED": ""}).queue
