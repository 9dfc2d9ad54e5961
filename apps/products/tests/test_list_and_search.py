from decimal import Decimal

import pytest

from apps.products import services
from tests.problems import assert_problem

pytestmark = pytest.mark.django_db(databases=["default", "catalog"])

URL = "/api/v1/products"


@pytest.fixture
def shelf(make_product):
    return {
        "kettle": make_product(
            id="kettle",
            name="Borealis Kettle",
            description="Stainless steel, boils fast.",
            category="Kitchen",
            price=Decimal("39.90"),
            stock=5,
            tags=["home", "coffee"],
            attributes={"voltage": 230, "colour": "red"},
            sold_count=3,
        ),
        "grinder": make_product(
            id="grinder",
            name="Crème Coffee Grinder",
            description="Grinds beans for your kettle brew.",
            category="Kitchen",
            price=Decimal("89.00"),
            stock=0,
            tags=["coffee"],
            attributes={"voltage": 110, "colour": "black"},
            sold_count=10,
        ),
        "novel": make_product(
            id="novel",
            name="Winter Novel",
            description="A story about a coffee shop.",
            category="Books",
            price=Decimal("12.50"),
            stock=40,
            tags=["reading"],
            attributes={"language": "en"},
            sold_count=7,
        ),
    }


def ids(response):
    assert response.status_code == 200, response.json()
    return [p["id"] for p in response.json()["results"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("category=Kitchen&ordering=price", ["kettle", "grinder"]),
        ("tag=coffee&ordering=price", ["kettle", "grinder"]),
        ("tag=coffee&tag=home", ["kettle"]),
        ("min_price=20&max_price=90&ordering=-price", ["grinder", "kettle"]),
        ("in_stock=true&ordering=name", ["kettle", "novel"]),
        ("in_stock=false", ["grinder"]),
        ("attr.colour=red", ["kettle"]),
        ("attr.voltage=110", ["grinder"]),
        ("ordering=best_selling", ["grinder", "novel", "kettle"]),
        ("ordering=name", ["kettle", "grinder", "novel"]),
    ],
)
def test_list_filters_and_orders(api_client, shelf, query, expected):
    assert ids(api_client.get(f"{URL}?{query}")) == expected


@pytest.mark.parametrize(
    "query",
    [
        "page_size=101",
        "page_size=0",
        "min_price=-1",
        "min_price=abc",
        "min_price=50&max_price=10",
        "ordering=drop+table",
        "in_stock=maybe",
        "colour=red",
        "attr.bad-key=1",
        "q[$gt]=",
    ],
)
def test_bad_list_parameters_are_400(api_client, shelf, query):
    response = api_client.get(f"{URL}?{query}")

    assert_problem(response, 400, "validation_error")
    assert response["Content-Type"] == "application/problem+json"


def test_list_is_paginated(api_client, shelf):
    response = api_client.get(f"{URL}?page_size=2&ordering=name")

    body = response.json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert (
        body["next"].endswith("page=2&page_size=2&ordering=name")
        or "page=2" in body["next"]
    )


def test_search_ranks_name_matches_above_description_matches(api_client, shelf):
    result = ids(api_client.get(f"{URL}/search?q=kettle"))

    assert result[0] == "kettle"
    assert set(result) == {"kettle", "grinder"}


def test_search_is_tolerant_of_case_accents_prefixes_and_typos(api_client, shelf):
    assert ids(api_client.get(f"{URL}/search?q=CREME"))[0] == "grinder"
    assert ids(api_client.get(f"{URL}/search?q=grind"))[0] == "grinder"
    assert ids(api_client.get(f"{URL}/search?q=ketle"))[0] == "kettle"
    assert ids(api_client.get(f"{URL}/search?q=grinedr"))[0] == "grinder"


def test_search_matches_category_and_tags(api_client, shelf):
    assert ids(api_client.get(f"{URL}/search?q=books")) == ["novel"]
    assert ids(api_client.get(f"{URL}/search?q=reading")) == ["novel"]


def test_search_combines_with_filters(api_client, shelf):
    result = ids(api_client.get(f"{URL}/search?q=coffee&category=Books"))

    assert result == ["novel"]


@pytest.mark.parametrize(
    "q",
    [
        "'; DROP TABLE products_product; --",
        "kettle) OR (1=1",
        ".*",
        "a & b | !c:*",
        '{"$gt": ""}',
        "\\",
    ],
)
def test_hostile_queries_are_searched_literally(api_client, shelf, q):
    response = api_client.get(f"{URL}/search", {"q": q})

    assert response.status_code == 200
    assert len(response.json()["results"]) < 3
    assert api_client.get(URL).json()["count"] == 3


@pytest.mark.parametrize("query", ["", "q=", "q=" + "x" * 201, "q=a&bogus=1"])
def test_missing_or_overlong_query_is_400(api_client, shelf, query):
    response = api_client.get(f"{URL}/search?{query}")

    assert_problem(response, 400, "validation_error")


def test_archived_products_are_not_found_by_search(api_client, shelf):
    shelf["kettle"].is_archived = True
    shelf["kettle"].save()

    assert "kettle" not in ids(api_client.get(f"{URL}/search?q=kettle"))


@pytest.mark.parametrize(
    "query",
    ["attr.isnull=x", "attr.regex=(", "attr.contains=x", "attr.has_key=x"],
)
def test_attribute_names_that_look_like_lookups_are_just_keys(api_client, shelf, query):
    response = api_client.get(f"{URL}?{query}")

    assert ids(response) == []


@pytest.mark.parametrize("value", ["inf", "1e400", "nan", "-Infinity"])
def test_non_finite_attribute_values_match_only_as_text(api_client, shelf, value):
    assert ids(api_client.get(f"{URL}?attr.voltage={value}")) == []


@pytest.mark.parametrize(
    "path",
    ["/api/v1/products/a%00b", "/api/v1/products?attr.colour=a%00b"],
)
def test_null_characters_are_a_4xx(api_client, shelf, path):
    response = api_client.get(path)

    assert response.status_code in (400, 404)
    assert response["Content-Type"] == "application/problem+json"


def test_explicit_ordering_applies_to_typo_matches_too(api_client, shelf, make_product):
    make_product(id="misspelt", name="Kettel Deluxe", price=Decimal("50.00"))

    result = ids(api_client.get(f"{URL}/search?q=kettle&ordering=-price"))

    assert result == ["grinder", "misspelt", "kettle"]


def test_the_next_page_of_a_typo_search_is_the_one_the_first_announced(
    api_client, make_product
):
    """The words find fewer than a page, the typo correction finds more:
    page 1 says so and links page 2, which must answer, not 404."""
    make_product(id="exact", name="Ketle Classic", price=Decimal("10.00"))
    for n in range(25):
        make_product(id=f"kettle-{n:02d}", name=f"Kettle Model {n}")

    first = api_client.get(f"{URL}/search?q=ketle")
    assert first.status_code == 200
    body = first.json()
    assert body["count"] == 26
    assert len(body["results"]) == 20
    assert body["next"].endswith("page=2&q=ketle")

    second = api_client.get(f"{URL}/search?page=2&q=ketle")
    assert second.status_code == 200, second.content
    assert len(second.json()["results"]) == 6
    seen = ids(first) + ids(second)
    assert sorted(seen) == sorted(["exact", *[f"kettle-{n:02d}" for n in range(25)]])

    past = api_client.get(f"{URL}/search?page=3&q=ketle")
    assert_problem(past, 404, "not_found")


@pytest.mark.parametrize("path", [URL, f"{URL}/search?q=kettle"])
def test_lists_carry_an_etag_and_answer_304(api_client, shelf, path):
    first = api_client.get(path)

    again = api_client.get(path, HTTP_IF_NONE_MATCH=first["ETag"])
    # Through the service, as every writer: a raw ORM save() would leave
    # the cached page (ADR 0027).
    services.product_update(
        product_id="kettle",
        expected_revisions=None,
        changes={"name": "Renamed Kettle"},
    )
    changed = api_client.get(path, HTTP_IF_NONE_MATCH=first["ETag"])

    assert again.status_code == 304
    assert changed.status_code == 200


def test_search_folding_is_the_same_on_every_engine():
    """The SQLite functions fold stored text as the query is folded, so an
    accented word matches its plain spelling either way round; pg_trgm's
    word similarity is copied closely enough for one-letter typos."""
    from apps.products.search import _fold_json, fold, search_terms, word_similarity

    assert fold("Crème Brûlée CAFÉ") == "creme brulee cafe"
    assert search_terms("Café, crème!") == ["cafe", "creme"]
    # Django stores JSON with non-ASCII characters escaped ("caf\u00e9").
    assert _fold_json('["caf\\u00e9", "Home", 3]') == "cafe home"
    assert word_similarity("cofee", "Café Coffee Grinder") >= 0.8
    assert word_similarity("cofee grinder", "Acme Coffee Grinder") >= 0.8
    assert word_similarity("kettle", "Acme Coffee Grinder") < 0.45


@pytest.mark.parametrize(
    "path",
    [
        f"{URL}?category=Kitchen&min_price=20&in_stock=true&ordering=price",
        f"{URL}?tag=coffee",
        f"{URL}/search?q=coffee",
        f"{URL}/search?q=coffee&category=Kitchen&ordering=-price",
    ],
)
def test_a_list_page_or_a_search_is_one_catalog_query(
    api_client, shelf, path, django_assert_num_queries, monkeypatch
):
    from django.db import connections

    from apps.products import search

    # The words find enough: no typo fallback.
    monkeypatch.setattr(search, "TYPO_FALLBACK_BELOW", 1)

    with django_assert_num_queries(1, connection=connections["catalog"]):
        response = api_client.get(path)

    assert response.status_code == 200
    assert response.json()["results"]
    assert response.json()["count_capped"] is False


def test_counts_stop_at_the_cap_and_say_so(api_client, shelf, monkeypatch):
    from apps.products import selectors

    monkeypatch.setattr(selectors, "COUNT_CAP", 2)

    first = api_client.get(f"{URL}?ordering=name&page_size=1").json()
    last = api_client.get(f"{URL}?ordering=name&page_size=1&page=3").json()
    beyond = api_client.get(f"{URL}?ordering=name&page_size=1&page=4")

    assert (first["count"], first["count_capped"]) == (2, True)
    assert [p["id"] for p in first["results"]] == ["kettle"]
    assert "page=2" in first["next"]
    # Counted to the end of the page asked for: there, the count is exact.
    assert (last["count"], last["count_capped"]) == (3, False)
    assert [p["id"] for p in last["results"]] == ["novel"]
    assert last["next"] is None
    assert "page=2" in last["previous"]
    assert beyond.status_code == 404
    assert beyond.json()["code"] == "not_found"


def test_an_empty_list_counts_nothing(api_client, shelf):
    body = api_client.get(f"{URL}?category=Garden").json()

    assert body == {
        "count": 0,
        "count_capped": False,
        "next": None,
        "previous": None,
        "results": [],
    }


@pytest.mark.parametrize("q", ["the", "The and OF", "?!", "a", "___", "& | !", "x y"])
def test_a_query_of_stop_words_or_symbols_only_finds_nothing(api_client, shelf, q):
    response = api_client.get(f"{URL}/search", {"q": q})

    assert response.status_code == 200
    assert response.json()["count"] == 0
    assert response.json()["results"] == []


def test_stop_words_beside_a_real_word_are_ignored(api_client, shelf):
    assert ids(api_client.get(f"{URL}/search?q=the+kettle+of")) == [
        "kettle",
        "grinder",
    ]
