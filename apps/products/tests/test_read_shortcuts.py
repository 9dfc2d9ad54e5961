"""A catalog read that DRF would answer with plain JSON is answered before
DRF runs (the catalog views' dispatch); these tests hold the two paths to
the same answer, and send every other read through DRF."""

from decimal import Decimal

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from rest_framework.views import APIView

from apps.products import services

pytestmark = pytest.mark.django_db(databases=["default", "catalog"])

URL = "/api/v1/products/{}"
# Headers both paths set; X-Request-ID and the rate-limit counters differ
# from one request to the next whichever path answers.
SAME = ("Content-Type", "ETag", "Allow", "Vary", "Content-Length")


@pytest.fixture
def drf_refuses(monkeypatch):
    """After this, a request that reaches DRF's dispatch fails the test:
    what answers must be the shortcut."""

    def entered(self, request, *args, **kwargs):
        raise AssertionError("the request went through DRF")

    def refuse():
        monkeypatch.setattr(APIView, "initialize_request", entered)

    return refuse


@pytest.fixture
def kettle():
    return services.product_create(
        id="kettle", name="Kettle", price=Decimal("20.00"), stock=4, category="Kitchen"
    )


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_the_shortcut_answers_as_drf_does(api_client, kettle, accept, drf_refuses):
    # A composite Accept is not one the shortcut takes: DRF negotiates it.
    through_drf = api_client.get(
        URL.format("kettle"), headers={"Accept": "application/json, */*;q=0.5"}
    )
    headers = {"Accept": accept} if accept else {}
    drf_refuses()
    with CaptureQueriesContext(connections["catalog"]) as queries:
        shortcut = api_client.get(URL.format("kettle"), headers=headers)
    assert shortcut.status_code == through_drf.status_code == 200
    assert shortcut.content == through_drf.content
    assert shortcut.json()["stock"] == 4
    for name in SAME:
        assert shortcut[name] == through_drf[name], name
    assert len(queries) == 0  # the DRF read above filled the cache


def test_an_unknown_product_is_a_404_read_once(api_client):
    with CaptureQueriesContext(connections["catalog"]) as queries:
        response = api_client.get(URL.format("no-such-thing"))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "product_not_found"
    # The shortcut's lookup is the one DRF's path answers from.
    assert len(queries) == 1


def test_an_archived_product_is_hidden_from_customers_and_shown_to_staff(
    api_client, auth_client, staff, kettle
):
    services.product_set_archived(product_id="kettle", archived=True)
    hidden = api_client.get(URL.format("kettle"))
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "product_not_found"
    shown = auth_client(staff).get(URL.format("kettle"))
    assert shown.status_code == 200
    assert shown.json()["is_archived"] is True


def test_reads_the_shortcut_does_not_take_still_get_drf_answers(api_client, kettle):
    unknown = api_client.get(URL.format("kettle") + "?fields=name")
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "validation_error"
    html = api_client.get(URL.format("kettle"), headers={"Accept": "text/html"})
    assert html.status_code == 406
    assert html["Content-Type"] == "application/problem+json"


# -- List and search pages: a stored page answered before DRF -----------------

PAGES = [
    "/api/v1/products?category=Kitchen&in_stock=true&ordering=price",
    "/api/v1/products/search?q=kettle",
]


@pytest.mark.parametrize("address", PAGES)
def test_a_stored_page_is_answered_as_drf_answers_it(
    api_client, kettle, address, drf_refuses
):
    through_drf = api_client.get(address)  # validated, built and stored
    assert through_drf.status_code == 200
    assert [p["id"] for p in through_drf.json()["results"]] == ["kettle"]
    drf_refuses()
    with CaptureQueriesContext(connections["catalog"]) as queries:
        shortcut = api_client.get(address)
    assert shortcut.status_code == 200
    assert shortcut.content == through_drf.content
    for name in SAME:
        assert shortcut[name] == through_drf[name], name
    assert len(queries) == 0


@pytest.mark.parametrize("address", PAGES)
def test_a_write_sends_the_next_page_read_through_drf(api_client, kettle, address):
    assert api_client.get(address).json()["results"][0]["stock"] == 4
    services.stock_adjust(product_id="kettle", delta=-1, reason="count")
    assert api_client.get(address).json()["results"][0]["stock"] == 3


def test_bad_and_staff_only_queries_are_never_answered_from_the_cache(
    api_client, auth_client, staff, kettle
):
    archived = "/api/v1/products?archived=true"
    assert auth_client(staff).get(archived).status_code == 200
    refused = api_client.get(archived)
    assert refused.status_code == 400
    assert refused.json()["code"] == "validation_error"
    for _ in range(2):
        unknown = api_client.get("/api/v1/products?colour=red")
        assert unknown.status_code == 400
        assert unknown.json()["code"] == "validation_error"
    html = api_client.get(PAGES[0], headers={"Accept": "text/html"})
    assert html.status_code == 406
