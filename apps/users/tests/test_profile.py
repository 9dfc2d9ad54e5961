import uuid

import pytest

from apps.users.models import User
from tests.problems import assert_problem


def url(user_id) -> str:
    return f"/api/v1/users/{user_id}"


def _errors(response) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in response.json()["errors"]]


@pytest.mark.django_db
def test_user_reads_own_profile(customer, auth_client):
    response = auth_client(customer).get(url(customer.id))

    assert response.status_code == 200
    assert response.json()["email"] == customer.email


@pytest.mark.django_db
def test_customer_gets_404_for_someone_elses_id_like_an_unknown_one(
    customer, make_user, auth_client
):
    other = make_user(email="other@example.com")
    client = auth_client(customer)

    someone_else = client.get(url(other.id))
    unknown = client.get(url(uuid.uuid4()))

    assert someone_else.status_code == unknown.status_code == 404
    assert someone_else.json()["code"] == unknown.json()["code"] == "user_not_found"


@pytest.mark.django_db
def test_staff_reads_anyone(customer, staff, auth_client):
    response = auth_client(staff).get(url(customer.id))

    assert response.status_code == 200
    assert response.json()["id"] == str(customer.id)


@pytest.mark.django_db
def test_non_uuid_id_is_a_problem_404(customer, auth_client):
    response = auth_client(customer).get("/api/v1/users/not-a-uuid")

    assert_problem(response, 404, "not_found")
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_list_is_staff_only_and_paginated(
    api_client, customer, staff, make_user, auth_client
):
    for _ in range(3):
        make_user()

    anonymous = api_client.get("/api/v1/users")
    as_customer = auth_client(customer).get("/api/v1/users")
    page = auth_client(staff).get("/api/v1/users?page_size=2&page=2")
    too_big = auth_client(staff).get("/api/v1/users?page_size=1000")

    assert_problem(anonymous, 401, "not_authenticated")
    assert_problem(as_customer, 403, "permission_denied")
    assert page.status_code == 200
    body = page.json()
    assert body["count"] == 5
    assert len(body["results"]) == 2
    assert body["next"] and body["previous"]
    assert_problem(too_big, 400, "validation_error")
    assert too_big.json()["errors"][0]["field"] == "page_size"


@pytest.mark.django_db
def test_patch_changes_name_and_put_needs_every_field(customer, auth_client):
    client = auth_client(customer)

    patched = client.patch(url(customer.id), {"name": "Ada King"}, format="json")
    put_missing = client.put(url(customer.id), {"name": "Only Name"}, format="json")

    assert patched.status_code == 200
    assert patched.json()["name"] == "Ada King"
    assert_problem(put_missing, 400, "validation_error")
    customer.refresh_from_db()
    assert customer.name == "Ada King"


@pytest.mark.django_db
def test_put_replaces_profile(customer, auth_client):
    response = auth_client(customer).put(
        url(customer.id),
        {
            "email": "Renamed@Example.com",
            "name": "Renamed",
            "current_password": customer.raw_password,
        },
        format="json",
    )

    assert response.status_code == 200
    customer.refresh_from_db()
    assert (customer.email, customer.name) == ("renamed@example.com", "Renamed")


@pytest.mark.django_db
def test_changing_email_to_a_taken_one_is_409(customer, make_user, auth_client):
    make_user(email="taken@example.com")

    response = auth_client(customer).patch(
        url(customer.id),
        {"email": "Taken@example.com", "current_password": customer.raw_password},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"
    customer.refresh_from_db()
    assert customer.email == "customer@example.com"


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["is_staff", "is_superuser", "is_active", "id"])
def test_nobody_sets_privileges_or_ids_through_the_api(staff, auth_client, field):
    response = auth_client(staff).patch(url(staff.id), {field: True}, format="json")

    assert_problem(response, 400, "validation_error")
    assert response.json()["errors"][0]["field"] == field
    staff.refresh_from_db()
    assert staff.is_superuser is False


@pytest.mark.django_db
def test_customer_cannot_promote_themself(customer, auth_client):
    auth_client(customer).patch(url(customer.id), {"is_staff": True}, format="json")

    customer.refresh_from_db()
    assert customer.is_staff is False


@pytest.mark.django_db
def test_password_change_needs_the_current_password(customer, auth_client):
    client = auth_client(customer)

    missing = client.patch(
        url(customer.id), {"password": "brand-new-pass-77"}, format="json"
    )
    wrong = client.patch(
        url(customer.id),
        {"password": "brand-new-pass-77", "current_password": "nope-nope-nope"},
        format="json",
    )

    assert_problem(missing, 400, "validation_error")
    assert_problem(wrong, 400, "validation_error")
    assert _errors(missing) == [("current_password", "required")]
    assert _errors(wrong) == [("current_password", "password_incorrect")]
    customer.refresh_from_db()
    assert customer.check_password(customer.raw_password)


@pytest.mark.django_db
def test_password_change_revokes_earlier_tokens(
    api_client, customer, auth_client, django_capture_on_commit_callbacks
):
    client = auth_client(customer)
    old_refresh = client.tokens["refresh"]

    # The revocation record is written when the change commits.
    with django_capture_on_commit_callbacks(execute=True):
        changed = client.patch(
            url(customer.id),
            {
                "password": "brand-new-pass-77",
                "current_password": customer.raw_password,
            },
            format="json",
        )

    assert changed.status_code == 200
    revoked = client.get(url(customer.id))
    assert_problem(revoked, 401, "token_not_valid")
    assert revoked.json()["detail"] == "Token has been revoked"
    refresh = api_client.post(
        "/api/v1/users/token/refresh", {"refresh": old_refresh}, format="json"
    )
    assert_problem(refresh, 401, "token_not_valid")
    login = api_client.post(
        "/api/v1/users/login",
        {"email": customer.email, "password": "brand-new-pass-77"},
        format="json",
    )
    assert login.status_code == 200


@pytest.mark.django_db
def test_weak_new_password_is_rejected(customer, auth_client):
    response = auth_client(customer).patch(
        url(customer.id),
        {"password": "123", "current_password": customer.raw_password},
        format="json",
    )

    assert response.status_code == 400
    errors = {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert ("password", "password_too_short") in errors
    assert ("password", "password_entirely_numeric") in errors


@pytest.mark.django_db
def test_user_deletes_own_account_and_its_token_stops_working(
    customer, auth_client, django_capture_on_commit_callbacks
):
    client = auth_client(customer)

    with django_capture_on_commit_callbacks(execute=True):
        deleted = client.delete(
            url(customer.id), {"current_password": customer.raw_password}, format="json"
        )

    assert deleted.status_code == 204
    assert not User.objects.filter(id=customer.id).exists()
    revoked = client.get(url(customer.id))
    assert_problem(revoked, 401, "token_not_valid")
    assert revoked.json()["detail"] == "Token has been revoked"


@pytest.mark.django_db
def test_customer_cannot_delete_someone_else(customer, make_user, auth_client):
    other = make_user(email="other@example.com")

    response = auth_client(customer).delete(url(other.id))

    assert_problem(response, 404, "user_not_found")
    assert User.objects.filter(id=other.id).exists()


@pytest.mark.django_db
def test_staff_deletes_a_user(customer, staff, auth_client):
    response = auth_client(staff).delete(url(customer.id))

    assert response.status_code == 204
    assert not User.objects.filter(id=customer.id).exists()


@pytest.mark.django_db
def test_email_change_needs_the_current_password(customer, auth_client):
    # A stolen access token alone must not move the account to another
    # email for good.
    client = auth_client(customer)
    change = {"email": "new@example.com"}

    missing = client.patch(url(customer.id), change, format="json")
    wrong = client.patch(
        url(customer.id), {**change, "current_password": "nope-nope-1"}, format="json"
    )
    customer.refresh_from_db()
    email_before = customer.email
    right = client.patch(
        url(customer.id),
        {**change, "current_password": customer.raw_password},
        format="json",
    )

    assert_problem(missing, 400, "validation_error")
    assert_problem(wrong, 400, "validation_error")
    assert _errors(missing) == [("current_password", "required")]
    assert _errors(wrong) == [("current_password", "password_incorrect")]
    assert email_before == "customer@example.com"
    assert right.status_code == 200
    customer.refresh_from_db()
    assert customer.email == "new@example.com"


@pytest.mark.django_db
def test_email_change_asks_the_password_before_telling_the_email_is_taken(
    customer, make_user, auth_client
):
    make_user(email="taken@example.com")

    response = auth_client(customer).patch(
        url(customer.id), {"email": "taken@example.com"}, format="json"
    )

    assert_problem(response, 400, "validation_error")
    assert _errors(response) == [("current_password", "required")]


@pytest.mark.django_db
def test_keeping_the_same_email_needs_no_password(customer, auth_client):
    response = auth_client(customer).put(
        url(customer.id),
        {"email": "Customer@Example.com", "name": "Still Me"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["name"] == "Still Me"


@pytest.mark.django_db
def test_deleting_ones_own_account_needs_the_current_password(customer, auth_client):
    client = auth_client(customer)

    missing = client.delete(url(customer.id))
    wrong = client.delete(
        url(customer.id), {"current_password": "nope-nope-1"}, format="json"
    )
    unknown_field = client.delete(url(customer.id), {"password": "x"}, format="json")

    assert_problem(missing, 400, "validation_error")
    assert_problem(wrong, 400, "validation_error")
    assert _errors(missing) == [("current_password", "required")]
    assert _errors(wrong) == [("current_password", "password_incorrect")]
    assert_problem(unknown_field, 400, "validation_error")
    assert User.objects.filter(id=customer.id).exists()


@pytest.mark.django_db
def test_staff_change_someone_elses_email_without_a_password(
    customer, staff, auth_client
):
    response = auth_client(staff).patch(
        url(customer.id), {"email": "fixed@example.com"}, format="json"
    )

    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.email == "fixed@example.com"


@pytest.mark.django_db
def test_staff_still_need_their_own_password_for_their_own_account(staff, auth_client):
    client = auth_client(staff)

    email = client.patch(url(staff.id), {"email": "me@example.com"}, format="json")
    delete = client.delete(url(staff.id))

    assert_problem(email, 400, "validation_error")
    assert_problem(delete, 400, "validation_error")
    assert _errors(email) == _errors(delete) == [("current_password", "required")]


@pytest.mark.django_db
def test_staff_cannot_set_someone_elses_password(customer, staff, auth_client):
    # Setting a password would let a staff member log in as anyone (an
    # operator with more rights included); the admin has its own rights.
    response = auth_client(staff).patch(
        url(customer.id), {"password": "brand-new-pass-77"}, format="json"
    )

    assert_problem(response, 400, "validation_error")
    assert _errors(response) == [("current_password", "required")]
    customer.refresh_from_db()
    assert customer.check_password(customer.raw_password)
