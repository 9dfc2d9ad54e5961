"""Fixtures every test can use: API clients and users."""

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def api_client():
    return APIClient()


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


@pytest.fixture
def celery_worker_process(transactional_db):
    """A real Celery worker process on RabbitMQ, using the test databases.

    Listens on a queue of its own, so that no other worker (or test run)
    takes its messages. Yields the queue name; tests poll the database for
    the outcome with a deadline.
    """
    import os
    import subprocess
    import sys
    import time
    import uuid
    from pathlib import Path

    from django.db import connections

    from config.celery import app

    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
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
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "config", "worker",
            "--pool", "solo", "--queues", queue, "--hostname", f"{queue}@%h",
            "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        ],
        cwd=Path(__file__).resolve().parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited: {worker.stdout.read()}")
            replies = app.control.ping(destination=[f"{queue}@{os.uname()[1]}"])
            if replies:
                break
        else:
            raise RuntimeError("the Celery worker did not start within 60 s")
        yield queue
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
