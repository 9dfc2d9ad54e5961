import pytest

from apps.users.models import User

URL = "/api/v1/users"
VALID = {
    "email": "New.Person@Example.com",
    "name": "New Person",
    "password": "a-long-pass-phrase-9",
}


@pytest.mark.django_db
def test_register_creates_user_with_argon2_hash_and_location(api_client, argon2):
    response = api_client.post(URL, VALID, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "new.person@example.com"
    assert body["name"] == "New Person"
    assert body["is_staff"] is False
    assert "password" not in body
    assert response["Location"] == f"/api/v1/users/{body['id']}"
    user = User.objects.get(id=body["id"])
    assert user.password.startswith("argon2$")
    assert user.check_password(VALID["password"])


@pytest.mark.django_db
def test_register_duplicate_email_in_other_case_is_409(api_client, make_user):
    make_user(email="taken@example.com")

    response = api_client.post(
        URL, {**VALID, "email": "TAKEN@example.COM"}, format="json"
    )

    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "email_taken"
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_a_taken_email_with_a_bad_password_answers_the_password_error(
    api_client, make_user
):
    # Registration is no cheap oracle of registered emails: only a body
    # that would create an account learns that the email is taken.
    make_user(email="taken@example.com")

    response = api_client.post(
        URL, {**VALID, "email": "taken@example.com", "password": "short"}, format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert {error["field"] for error in body["errors"]} == {"password"}
    assert User.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "x", "password": "a-long-pass-phrase-9"}, "email"),
        ({**VALID, "email": "not-an-email"}, "email"),
        ({**VALID, "email": "a" * 250 + "@x.com"}, "email"),
        ({**VALID, "name": ""}, "name"),
        ({**VALID, "name": "n" * 256}, "name"),
        ({**VALID, "password": "short"}, "password"),
        ({**VALID, "password": "password1234"}, "password"),
        ({**VALID, "password": "12345678901234"}, "password"),
        ({**VALID, "is_staff": True}, "is_staff"),
        ({**VALID, "nickname": "x"}, "nickname"),
        ({**VALID, "name": ["list"]}, "name"),
    ],
)
def test_register_bad_input_is_400_naming_the_field(api_client, payload, field):
    response = api_client.post(URL, payload, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in {error["field"] for error in body["errors"]}
    assert User.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("raw", "content_type", "status", "code"),
    [
        ('{"email": "a@b.c",', "application/json", 400, "malformed_request"),
        ("[1, 2]", "application/json", 400, "validation_error"),
        (
            "email=a@b.c",
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
        ),
    ],
)
def test_register_unparseable_body_is_a_clear_4xx(
    api_client, raw, content_type, status, code
):
    response = api_client.generic("POST", URL, raw, content_type=content_type)

    assert response.status_code == status
    assert response.json()["code"] == code
    assert User.objects.count() == 0


@pytest.mark.django_db
def test_register_ignores_a_stale_bearer_token(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")

    response = api_client.post(URL, VALID, format="json")

    assert response.status_code == 201


@pytest.mark.django_db
def test_unknown_field_is_reported_with_the_other_errors(api_client):
    response = api_client.post(
        URL, {**VALID, "email": "bad", "is_staff": True}, format="json"
    )

    assert response.status_code == 400
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"email", "is_staff"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("xQ7!kpz", "password_too_short"),
        ("password1234", "password_too_common"),
        ("48213957601234", "password_entirely_numeric"),
        ("new.person@example.com", "password_too_similar"),
    ],
)
def test_a_rejected_password_names_the_rule_in_its_code(api_client, password, code):
    response = api_client.post(URL, {**VALID, "password": password}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert {"field": "password", "code": code} in [
        {"field": error["field"], "code": error["code"]} for error in body["errors"]
    ]
    assert User.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_of_one_email_create_one_user(monkeypatch):
    """Five registrations of one email (threads, each its own PostgreSQL
    connection) all pass the look-up before any saves: the database's
    unique index decides, one 201 and four 409 email_taken, one user."""
    import threading

    from django.db import connections
    from rest_framework.test import APIClient

    clients = 5
    all_looked_up = threading.Barrier(clients, timeout=30)
    set_password = User.set_password

    def set_password_after_every_look_up(user, raw_password):
        all_looked_up.wait()
        set_password(user, raw_password)

    monkeypatch.setattr(User, "set_password", set_password_after_every_look_up)
    responses = []

    def register(n: int) -> None:
        try:
            spelling = VALID["email"].upper() if n % 2 else VALID["email"]
            responses.append(
                APIClient().post(URL, {**VALID, "email": spelling}, format="json")
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=register, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {
        "email_taken"
    }
    assert User.objects.filter(email="new.person@example.com").count() == 1
