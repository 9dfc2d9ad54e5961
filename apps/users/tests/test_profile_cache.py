"""A user's profile (GET /api/v1/users/<id>) comes from a cache that no
write leaves stale (ADR 0031).

Every writer test reads the profile once (filling the cache), checks that
the next read costs no query, writes through one writer, and checks that
the next read shows the write. Transactions really commit here, so the
invalidation after commit is the one exercised; every test runs with
Redis (production) and with locmem (``make run``).
"""

import threading
import uuid

import pytest
from django.core.management import call_command
from django.db import connections
from django.test.utils import CaptureQueriesContext

from apps.users import cache, services
from apps.users.models import User
from apps.users.selectors import user_get
from tests.problems import assert_problem

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("cache_backend"),
]


def url(user_id) -> str:
    return f"/api/v1/users/{user_id}"


def warm(client, user_id) -> dict:
    """Read twice: the second read comes from the cache, with no query, and
    is the same response."""
    first = client.get(url(user_id))
    with CaptureQueriesContext(connections["default"]) as queries:
        second = client.get(url(user_id))
    assert second.status_code == first.status_code == 200, second.content
    assert second.content == first.content
    assert second["Content-Type"] == first["Content-Type"] == "application/json"
    assert second["ETag"] == first["ETag"]
    assert len(queries) == 0, queries.captured_queries
    return second.json()


def look(client, user_id) -> dict:
    response = client.get(url(user_id))
    assert response.status_code == 200, response.content
    return response.json()


# -- every writer ------------------------------------------------------------


def test_a_cached_profile_is_what_the_database_says(customer, auth_client):
    body = warm(auth_client(customer), customer.id)

    assert body == {
        "id": str(customer.id),
        "email": "customer@example.com",
        "name": "Ada Lovelace",
        "is_active": True,
        "is_staff": False,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert body["updated_at"].startswith(customer.updated_at.isoformat()[:19])


def test_a_profile_update_is_read_next(customer, auth_client):
    client = auth_client(customer)
    before = warm(client, customer.id)

    response = client.patch(url(customer.id), {"name": "Ada King"}, format="json")

    assert response.status_code == 200
    after = look(client, customer.id)
    assert after == response.json()
    assert after["name"] == "Ada King"
    assert after["updated_at"] > before["updated_at"]


def test_an_email_change_is_read_next(customer, auth_client):
    client = auth_client(customer)
    warm(client, customer.id)

    response = client.patch(
        url(customer.id),
        {"email": "ada@example.org", "current_password": customer.raw_password},
        format="json",
    )

    assert response.status_code == 200
    assert look(client, customer.id)["email"] == "ada@example.org"


def test_a_password_change_keeps_the_profile_readable(customer, auth_client):
    client = auth_client(customer)
    before = warm(client, customer.id)

    response = client.patch(
        url(customer.id),
        {"password": "a-new-pass-phrase-7", "current_password": customer.raw_password},
        format="json",
    )

    assert response.status_code == 200
    customer.raw_password = "a-new-pass-phrase-7"
    after = look(auth_client(customer), customer.id)
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }
    assert after["updated_at"] > before["updated_at"]


def test_deactivation_is_read_next_by_staff(customer, staff, auth_client, make_user):
    staff_client = auth_client(staff)
    customer_client = auth_client(customer)
    warm(staff_client, customer.id)
    warm(customer_client, customer.id)

    services.user_set_active(user_ids=[customer.id], is_active=False)

    assert look(staff_client, customer.id)["is_active"] is False
    # The customer's own token is refused, as before the cache.
    assert customer_client.get(url(customer.id)).status_code == 401


def test_admin_actions_and_queryset_updates_are_read_next(
    customer, staff, auth_client, operator_client
):
    staff_client = auth_client(staff)
    warm(staff_client, customer.id)

    operator_client.post(
        "/admin/users/user/",
        {"action": "deactivate", "_selected_action": [str(customer.id)]},
    )
    deactivated = look(staff_client, customer.id)["is_active"]
    User.objects.filter(pk=customer.pk).update(name="Renamed In Bulk")
    renamed = look(staff_client, customer.id)["name"]

    assert deactivated is False
    assert renamed == "Renamed In Bulk"


def test_admin_change_form_save_is_read_next(
    customer, staff, auth_client, operator_client
):
    staff_client = auth_client(staff)
    warm(staff_client, customer.id)

    response = operator_client.post(
        f"/admin/users/user/{customer.id}/change/",
        {
            "email": "customer@example.com",
            "name": "Admin Named",
            "is_active": "on",
            "is_staff": "on",
        },
    )

    assert response.status_code == 302, response.content
    after = look(staff_client, customer.id)
    assert (after["name"], after["is_staff"]) == ("Admin Named", True)


def test_deletion_is_a_404_next(
    customer, staff, auth_client, operator_client, make_user
):
    staff_client = auth_client(staff)
    doomed = make_user(email="doomed@example.com")
    warm(staff_client, customer.id)
    warm(staff_client, doomed.id)

    by_api = staff_client.delete(url(customer.id))
    by_admin = operator_client.post(
        "/admin/users/user/",
        {
            "action": "delete_selected",
            "_selected_action": [str(doomed.id)],
            "post": "yes",
        },
    )

    assert by_api.status_code == 204
    assert by_admin.status_code == 302
    assert_problem(staff_client.get(url(customer.id)), 404, "user_not_found")
    assert_problem(staff_client.get(url(doomed.id)), 404, "user_not_found")


def test_seed_demo_users_reset_is_read_next(staff, auth_client, settings):
    settings.DEBUG = True
    call_command("seed_demo_users", stdout=open("/dev/null", "w"))
    demo = User.objects.get(email="customer@shop.local")
    staff_client = auth_client(staff)
    warm(staff_client, demo.id)
    User.objects.filter(pk=demo.pk).update(name="Changed")
    assert look(staff_client, demo.id)["name"] == "Changed"

    call_command("seed_demo_users", "--reset", stdout=open("/dev/null", "w"))

    assert look(staff_client, demo.id)["name"] == "Demo Customer"


def test_a_save_of_the_model_is_read_next(customer, auth_client):
    """Django's own writers (a password rehash at login, ``last_login``
    for the admin's sessions) save the model directly."""
    client = auth_client(customer)
    warm(client, customer.id)

    user = User.objects.get(pk=customer.pk)
    user.name = "Saved Directly"
    user.save(update_fields=["name"])

    assert look(client, customer.id)["name"] == "Saved Directly"


# -- who may see it ------------------------------------------------------------


def test_a_cached_profile_is_still_404_to_another_customer(
    customer, make_user, staff, auth_client
):
    other = make_user(email="other@example.com")
    warm(auth_client(staff), other.id)
    warm(auth_client(other), other.id)

    response = auth_client(customer).get(url(other.id))

    assert_problem(response, 404, "user_not_found")
    assert "other@example.com" not in response.content.decode()


def test_no_token_is_401_even_when_cached(customer, auth_client, api_client):
    warm(auth_client(customer), customer.id)

    assert api_client.get(url(customer.id)).status_code == 401


def test_an_unknown_id_is_not_cached(staff, auth_client):
    client = auth_client(staff)
    missing = uuid.uuid4()

    first = client.get(url(missing))
    with CaptureQueriesContext(connections["default"]) as queries:
        second = client.get(url(missing))

    assert_problem(first, 404, "user_not_found")
    assert_problem(second, 404, "user_not_found")
    assert len(queries) >= 1


def test_other_accept_headers_answer_as_before(customer, auth_client):
    client = auth_client(customer)
    plain = warm(client, customer.id)

    problem = client.get(url(customer.id), HTTP_ACCEPT="application/problem+json")
    indented = client.get(url(customer.id), HTTP_ACCEPT="application/json; indent=2")

    assert problem["Content-Type"] == "application/problem+json"
    assert problem.json() == plain
    assert indented.json() == plain
    assert b'\n  "id"' in indented.content


# -- races and failures -------------------------------------------------------


def test_a_reader_that_stores_an_old_row_after_the_commit_is_not_served(customer):
    """A reader reads the old row, the writer commits and invalidates, then
    the reader stores what it read. Real threads, with the reader paused
    between its read and its store."""
    read_done, write_done = threading.Event(), threading.Event()
    results = {}

    def slow_load():
        value = user_get(user_id=customer.id).name
        read_done.set()
        assert write_done.wait(timeout=30)
        return value

    def reader():
        try:
            results["first"] = cache.cached_profile(customer.id, slow_load)
        finally:
            connections.close_all()

    thread = threading.Thread(target=reader)
    thread.start()
    assert read_done.wait(timeout=30)
    user = User.objects.get(pk=customer.pk)
    user.name = "Written Meanwhile"
    user.save()
    write_done.set()
    thread.join(timeout=30)

    def load():
        return user_get(user_id=customer.id).name

    assert results["first"] == "Ada Lovelace"  # what it read before
    assert cache.cached_profile(customer.id, load) == "Written Meanwhile"
    assert cache.cached_profile(customer.id, lambda: pytest.fail("not cached")) == (
        "Written Meanwhile"
    )


def test_a_reader_inside_the_writers_transaction_is_not_served_after_commit(
    customer,
):
    """Written, read and cached inside one transaction, then committed: the
    deletion on commit kills what was cached before it."""
    from django.db import transaction

    with transaction.atomic():
        User.objects.filter(pk=customer.pk).update(name="In Transaction")
        inside = cache.cached_profile(
            customer.id, lambda: user_get(user_id=customer.id).name
        )

    after = cache.cached_profile(customer.id, lambda: "read again")

    assert inside == "In Transaction"
    assert after == "read again"


def test_a_cache_that_is_down_leaves_reads_and_writes_working(
    customer, auth_client, settings
):
    client = auth_client(customer)
    settings.CACHES = {
        "default": {
            "BACKEND": "apps.core.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }

    assert look(client, customer.id)["name"] == "Ada Lovelace"
    updated = client.patch(url(customer.id), {"name": "Ada King"}, format="json")

    assert updated.status_code == 200
    assert look(client, customer.id)["name"] == "Ada King"


def test_a_timeout_of_zero_turns_the_cache_off(customer, auth_client, settings):
    settings.USERS_PROFILE_CACHE_SECONDS = 0
    client = auth_client(customer)
    client.get(url(customer.id))

    with CaptureQueriesContext(connections["default"]) as queries:
        again = look(client, customer.id)

    assert again["name"] == "Ada Lovelace"
    assert len(queries) >= 1
