"""The session, CSRF, auth and messages middleware serve the admin only."""

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory

from apps.core.checks import check_admin_only_middleware
from apps.core.middleware import AdminOnlyMiddleware


def seen_by_the_view(path: str) -> dict:
    """What the admin-only middleware left on a request to ``path``."""
    seen = {}

    def view(request):
        seen.update(
            session=hasattr(request, "session"),
            user=hasattr(request, "user"),
            messages=hasattr(request, "_messages"),
        )
        return HttpResponse("ok")

    middleware = AdminOnlyMiddleware(view)
    request = RequestFactory().get(path)
    middleware.process_view(request, view, (), {})
    middleware(request)
    return seen


@pytest.mark.parametrize(
    "path", ["/api/v1/products", "/health/live", "/metrics", "/.well-known/jwks.json"]
)
def test_api_and_probe_requests_skip_them(path):
    seen = seen_by_the_view(path)

    assert seen == {"session": False, "user": False, "messages": False}


@pytest.mark.parametrize("path", ["/admin/", "/admin/login/", "/"])
def test_admin_requests_run_them(path):
    assert seen_by_the_view(path) == {"session": True, "user": True, "messages": True}


@pytest.mark.django_db
def test_admin_forms_still_need_a_csrf_token(staff):
    client = Client(enforce_csrf_checks=True)
    credentials = {"username": staff.email, "password": staff.raw_password}

    refused = client.post("/admin/login/", credentials)
    page = client.get("/admin/login/")
    token = page.cookies["csrftoken"].value
    accepted = client.post(
        "/admin/login/?next=/admin/", {**credentials, "csrfmiddlewaretoken": token}
    )

    assert refused.status_code == 403
    assert accepted.status_code == 302
    assert "sessionid" in accepted.cookies
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db(databases=["default", "catalog"])
def test_an_api_answer_sets_no_cookie_and_varies_on_none():
    response = Client().get("/api/v1/products")

    assert response.status_code == 200
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")


def test_the_admin_needs_are_checked_in_their_new_place(settings):
    assert check_admin_only_middleware(None) == []

    settings.ADMIN_ONLY_MIDDLEWARE = [
        m for m in settings.ADMIN_ONLY_MIDDLEWARE if "csrf" not in m
    ]

    assert [e.id for e in check_admin_only_middleware(None)] == ["core.E001"]
