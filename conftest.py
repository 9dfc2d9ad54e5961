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
