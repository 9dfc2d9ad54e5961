import pytest

from apps.users.models import User
from tests.problems import assert_problem


@pytest.mark.django_db
def test_operator_searches_users_by_email_and_name(operator_client, make_user):
    make_user(email="ada@example.com", name="Ada Lovelace")
    make_user(email="grace@example.com", name="Grace Hopper")

    by_email = operator_client.get("/admin/users/user/?q=ada@")
    by_name = operator_client.get("/admin/users/user/?q=hopper")

    assert b"ada@example.com" in by_email.content
    assert b"grace@example.com" not in by_email.content
    assert b"grace@example.com" in by_name.content
    assert b"ada@example.com" not in by_name.content


@pytest.mark.django_db
def test_operator_deactivates_a_user_who_then_cannot_log_in(
    operator_client, make_user, api_client
):
    user = make_user(email="ada@example.com")

    operator_client.post(
        "/admin/users/user/",
        {"action": "deactivate", "_selected_action": [str(user.id)]},
    )

    user.refresh_from_db()
    assert user.is_active is False
    login = api_client.post(
        "/api/v1/users/login",
        {"email": "ada@example.com", "password": user.raw_password},
        format="json",
    )
    assert_problem(login, 401, "invalid_credentials")


@pytest.mark.django_db
def test_operator_adds_a_user_in_the_admin(operator_client, argon2):
    response = operator_client.post(
        "/admin/users/user/add/",
        {
            "email": "New@Example.com",
            "name": "New Person",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )

    assert response.status_code == 302, response.content[:2000]
    user = User.objects.get(email="new@example.com")
    assert user.password.startswith("argon2$")
