import threading

import argon2 as argon2_library
import pytest

LOGIN = "/api/v1/users/login"
REGISTER = "/api/v1/users"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("argon2")
def test_argon2_runs_at_most_password_hash_concurrency_hashes_at_once(
    settings, make_user, monkeypatch
):
    # Each Argon2 hash takes about 100 MiB here; eight at once took about
    # 1 GB on one instance. Logins (verify) and registrations (hash) alike
    # queue for PASSWORD_HASH_CONCURRENCY slots per process.
    from django.db import connections
    from rest_framework.test import APIClient

    from apps.users.hashers import BoundedArgon2PasswordHasher

    settings.PASSWORD_HASH_CONCURRENCY = 2
    # Cheap parameters: what is counted here is hashes at once, not cost.
    monkeypatch.setattr(BoundedArgon2PasswordHasher, "memory_cost", 8 * 1024)
    monkeypatch.setattr(BoundedArgon2PasswordHasher, "time_cost", 1)
    user = make_user(email="ada@example.com")
    requests = [
        (LOGIN, {"email": user.email, "password": user.raw_password}) for _ in range(3)
    ] + [
        (
            REGISTER,
            {
                "email": f"new{n}@example.com",
                "name": "New Person",
                "password": "a-long-pass-phrase-9",
            },
        )
        for n in range(3)
    ]
    running = threading.Condition()
    state = {"running": 0, "peak": 0}

    def counted(hash_function):
        def run(*args, **kwargs):
            with running:
                state["running"] += 1
                state["peak"] = max(state["peak"], state["running"])
                running.notify_all()
                # Hold this hash until every request hashes at once, or a
                # short while passes: unbounded, all of them overlap.
                running.wait_for(lambda: state["running"] >= len(requests), timeout=0.5)
            try:
                return hash_function(*args, **kwargs)
            finally:
                with running:
                    state["running"] -= 1

        return run

    low_level = argon2_library.low_level
    monkeypatch.setattr(low_level, "hash_secret", counted(low_level.hash_secret))
    hasher = argon2_library.PasswordHasher
    monkeypatch.setattr(hasher, "verify", counted(hasher.verify))
    start = threading.Barrier(len(requests))
    statuses = []

    def send(path, body) -> None:
        try:
            start.wait(timeout=30)
            statuses.append(APIClient().post(path, body, format="json").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=request) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(statuses) == [200, 200, 200, 201, 201, 201]
    assert state["peak"] == 2
