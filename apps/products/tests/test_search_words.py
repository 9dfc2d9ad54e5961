"""Search on PostgreSQL through the catalog's vocabulary (ADR 0028): typos
corrected to the nearest known words, prefixes as the known words they
stand for, and the vocabulary following every write."""

from decimal import Decimal

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from apps.products import search
from apps.products.tasks import search_words_prune_task

pytestmark = pytest.mark.django_db(databases=["default", "catalog"])

URL = "/api/v1/products"
NEW = {
    "name": "Aurora Percolator",
    "description": "Brews on any stove.",
    "price": "24.00",
    "stock": 3,
    "category": "Kitchen",
}


@pytest.fixture(autouse=True)
def _postgresql():
    if connections["catalog"].vendor != "postgresql":
        pytest.skip("the vocabulary is PostgreSQL's")


def ids(response):
    assert response.status_code == 200, response.json()
    return [p["id"] for p in response.json()["results"]]


def known_words() -> set[str]:
    with connections["catalog"].cursor() as cursor:
        cursor.execute("SELECT word FROM products_search_word")
        return {word for (word,) in cursor.fetchall()}


def test_a_new_products_words_are_found_through_typos_once_it_is_created(
    api_client, staff, auth_client
):
    before = api_client.get(f"{URL}/search?q=percolatr")

    created = auth_client(staff).post(URL, NEW, format="json").json()
    after = api_client.get(f"{URL}/search?q=percolatr")

    assert ids(before) == []
    assert ids(after) == [created["id"]]


def test_a_renamed_products_new_word_is_found_through_a_typo(
    api_client, staff, auth_client, make_product
):
    make_product(id="mug", name="Plain Mug", category="Kitchen")

    renamed = auth_client(staff).patch(
        f"{URL}/mug", {"name": "Plain Tumbler"}, format="json"
    )

    assert renamed.status_code == 200
    assert ids(api_client.get(f"{URL}/search?q=tumblr")) == ["mug"]


def test_typos_are_corrected_in_every_word_and_every_field(api_client, make_product):
    make_product(
        id="grinder",
        name="Crème Coffee Grinder",
        description="Grinds beans through stainless burrs.",
    )
    make_product(id="novel", name="Winter Novel", description="A story of coffee.")

    assert ids(api_client.get(f"{URL}/search?q=cofee+grindr")) == ["grinder"]
    assert ids(api_client.get(f"{URL}/search?q=stainles+burs")) == ["grinder"]


def test_typo_matches_follow_the_words_own_matches(api_client, make_product):
    make_product(id="kettle", name="Borealis Kettle", description="Boils fast.")
    make_product(id="grinder", name="Coffee Grinder", description="For kettle brew.")
    make_product(id="misspelt", name="Kettel Deluxe")

    result = ids(api_client.get(f"{URL}/search?q=kettle"))

    assert result == ["kettle", "grinder", "misspelt"]


def test_a_misspelt_word_is_not_corrected_to_a_stop_word(api_client, make_product):
    make_product(name="The Winter Novel", description="The story of the north.")

    response = api_client.get(f"{URL}/search?q=thw")

    assert ids(response) == []
    assert response.json()["count"] == 0


def test_words_of_any_characters_are_found_by_their_prefixes(api_client, make_product):
    make_product(
        id="odd",
        name="Odd Lamp",
        description="Ask info@shop.example about the x-ray lamp, 1/2 price; "
        "O'Brien's back\\slash 'quoted'.",
    )

    for q in ("info", "ray", "brien", "back", "slash", "quot", "1"):
        assert ids(api_client.get(f"{URL}/search", {"q": q})) == ["odd"], q


def test_a_prefix_of_many_words_is_matched_as_a_prefix(
    api_client, make_product, monkeypatch
):
    for product_id, name in (("a", "Grinder"), ("b", "Grinds"), ("c", "Grill")):
        make_product(id=product_id, name=name, price=Decimal("5.00"))
    as_words = set(ids(api_client.get(f"{URL}/search?q=gri")))

    monkeypatch.setattr(search, "PREFIX_WORDS", 1)
    as_prefix = set(ids(api_client.get(f"{URL}/search?q=gri")))

    assert as_words == as_prefix == {"a", "b", "c"}


def test_words_no_product_has_any_more_are_pruned(staff, auth_client, make_product):
    make_product(id="lamp", name="Zeppelin Lamp")
    make_product(id="clock", name="Zeppelin Clock", description="Ticks.")
    auth_client(staff).delete(f"{URL}/lamp")
    auth_client(staff).patch(f"{URL}/clock", {"description": "Tocks."}, format="json")

    pruned = search_words_prune_task.apply().get()

    words = known_words()
    assert {"zeppelin", "clock", "tocks"} <= words
    assert not {"lamp", "ticks"} & words
    assert pruned == 2
    assert search.search_words_prune() == 0


def test_the_vocabulary_is_emptied_with_the_catalog(make_product):
    make_product(name="Zeppelin Lamp")

    with connections["catalog"].cursor() as cursor:
        cursor.execute("TRUNCATE products_product CASCADE")

    assert known_words() == set()


def test_a_word_no_product_has_is_corrected_in_the_pages_one_query(
    api_client, make_product, django_assert_num_queries
):
    for n in range(search.TYPO_FALLBACK_BELOW):
        make_product(id=f"k{n:02d}", name=f"Kettle {n}", category="Kitchen")

    with django_assert_num_queries(1, connection=connections["catalog"]):
        response = api_client.get(f"{URL}/search?q=ketle&category=Kitchen")

    assert response.json()["count"] == search.TYPO_FALLBACK_BELOW
    assert len(ids(response)) == search.TYPO_FALLBACK_BELOW


def test_a_prune_that_forgets_words_sends_cached_pages_back_to_the_database(
    api_client, make_product, django_capture_on_commit_callbacks
):
    """A typo's nearest known words can change when words go, so the
    prune kills the cached pages as a product write does (ADR 0027)."""
    make_product(id="lamp", name="Zeppelin Lamp")
    make_product(id="clock", name="Zeppelin Clock")
    page = f"{URL}/search?q=zepelin"
    assert set(ids(api_client.get(page))) == {"lamp", "clock"}
    with CaptureQueriesContext(connections["catalog"]) as cached:
        api_client.get(page)
    assert len(cached) == 0
    api_client.get(page)  # still cached

    from apps.products.models import Product

    Product.objects.filter(pk="lamp").delete()  # as a restore would: no write hook
    with django_capture_on_commit_callbacks(using="catalog", execute=True):
        assert search.search_words_prune() == 1  # "lamp"
    with CaptureQueriesContext(connections["catalog"]) as read:
        fresh = api_client.get(page)
    assert ids(fresh) == ["clock"]
    assert len(read) >= 1
