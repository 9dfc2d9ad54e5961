"""Catalog full-text search: ranked product ids, capped (ADR 0010).

The engine's own search is chosen by the connection's vendor: PostgreSQL
(weighted tsvector, trigram typo fallback), MongoDB ($text), or the simpler
SQLite match of the embedded default (folded by SQLite functions that
``register_sqlite_functions`` adds to each connection).
"""

import json
import re
import unicodedata
from functools import lru_cache

from django.conf import settings
from django.db import connections, router
from django.db.models import (
    BooleanField,
    Case,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.expressions import RawSQL

from apps.products.models import Product
from apps.products.selectors import (
    ORDERINGS,
    ProductFilters,
    attribute_values,
    products_filtered,
)


def _vendor() -> str:
    return connections[router.db_for_read(Product)].vendor


def fold(text: str) -> str:
    """Lower-case and strip accents: "Crème Brûlée" -> "creme brulee"."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# Words too common to tell products apart: every description has some. A
# query of these alone finds nothing (not every product, nor the typo
# fallback's guesses at them).
STOP_WORDS = frozenset(
    "a an and are as at be by for from has in into is it its of on or our so "
    "than that the their this to was with".split()
)


def search_terms(query: str) -> list[str]:
    """The words of a query, folded, without stop words; punctuation,
    symbols and operators dropped (a word is letters and digits), and so
    are lone letters (as prefixes they match nearly everything)."""
    words = re.findall(r"[^\W_]+", fold(query))
    return [
        word
        for word in words
        if word not in STOP_WORDS and (len(word) > 1 or word.isdigit())
    ][:10]


@lru_cache(maxsize=4096)
def _trigrams(word: str) -> frozenset[str]:
    # As pg_trgm pads a word: two spaces before, one after.
    padded = f"  {word} "
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


def word_similarity(phrase: str, text: str) -> float:
    """How alike the words of ``phrase`` are to words of ``text`` (0-1):
    for each word of the phrase, the share of its trigrams found in the
    most alike word of the text, averaged. Close to pg_trgm's
    word_similarity, for engines without it; "cofee" in "Coffee Grinder"
    is 0.83."""
    words = search_terms(phrase)
    candidates = [_trigrams(word) for word in re.findall(r"\w+", fold(text))]
    if not words or not candidates:
        return 0.0
    total = 0.0
    for word in words:
        own = _trigrams(word)
        total += max(len(own & other) for other in candidates) / len(own)
    return total / len(words)


def _fold_json(text: str | None) -> str | None:
    """The strings of a JSON value (a list of tags), folded, space-separated."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return fold(text)
    strings = value if isinstance(value, list) else [value]
    return " ".join(fold(item) for item in strings if isinstance(item, str))


def _fold_or_null(text: str | None) -> str | None:
    return None if text is None else fold(text)


def register_sqlite_functions(sender, connection, **kwargs) -> None:
    """Give each SQLite connection the folding that PostgreSQL's search has
    (connection_created receiver): SQLite has no unaccent and compares only
    ASCII letters without case, and stores JSON with non-ASCII escaped."""
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    raw.create_function("shop_fold", 1, _fold_or_null, deterministic=True)
    raw.create_function("shop_fold_json", 1, _fold_json, deterministic=True)
    raw.create_function(
        "shop_word_similarity", 2, _sqlite_word_similarity, deterministic=True
    )


def _sqlite_word_similarity(phrase: str | None, text: str | None) -> float:
    if phrase is None or text is None:
        return 0.0
    return word_similarity(phrase, text)


def typo_threshold() -> float:
    """How alike a misspelt word must be to a word of a product name."""
    return settings.CATALOG_SEARCH_TYPO_THRESHOLD


# The weighted document (name A; category and tags B; description C) is a
# generated column added by migration 0002, unknown to the Django model.
_PG_DOCUMENT = "products_product.search_document"
_PG_NAME = "shop_unaccent(lower(name))"


# Search answers the most relevant results only: counting or ranking every
# match of a common word in a large catalog costs more than any client uses.
SEARCH_LIMIT = 1000
# Typo tolerance (trigram similarity) is tried when the words themselves
# find fewer results than this.
TYPO_FALLBACK_BELOW = 20


def product_search(
    *, query: str, filters: ProductFilters, ordering: str | None = None
) -> list[str]:
    """Ids of the products matching ``query``, most relevant first (or by
    ``ordering``), at most SEARCH_LIMIT.

    A name match outranks a category or tag match, which outranks a
    description match. The query is only ever a bound parameter or a list
    of plain words, never SQL or a MongoDB operator.
    """
    terms = search_terms(query)
    if not terms:
        return []
    vendor = _vendor()
    if vendor == "mongodb":
        return _search_mongodb(terms, filters, ordering)
    order = ORDERINGS[ordering] if ordering else ("-score", "id")
    if vendor == "postgresql":
        return _search_postgresql(terms, filters, order)
    return _search_sqlite(terms, filters, order)


def pages_in_one_query() -> bool:
    """Whether ``word_matches`` serves this engine (SQL engines)."""
    return _vendor() != "mongodb"


def word_matches(
    terms: list[str], filters: ProductFilters, ordering: str | None = None
) -> tuple[QuerySet[Product], tuple[str, ...]]:
    """SQL engines: the products every word of ``terms`` matches (with a
    ``score``), and the order to list them in; no typo tolerance. For a
    page read in one query (``selectors.product_page``)."""
    order = ORDERINGS[ordering] if ordering else ("-score", "id")
    if _vendor() == "postgresql":
        return _pg_word_matches(terms, filters), order
    return _search_folded(products_filtered(filters), terms), order


def _search_postgresql(terms: list[str], filters: ProductFilters, order) -> list[str]:
    found = list(
        _pg_word_matches(terms, filters)
        .order_by(*order)
        .values_list("id", flat=True)[:SEARCH_LIMIT]
    )
    if len(found) >= TYPO_FALLBACK_BELOW:
        return found
    return _merge(found, _typo_matches(terms, filters, order), order)


def _pg_word_matches(terms: list[str], filters: ProductFilters) -> QuerySet:
    # Every word must match, each as a prefix ("lapt" finds "laptop"), in the
    # weighted document (GIN index on the generated column).
    tsquery = " & ".join(f"{term}:*" for term in terms)
    return (
        products_filtered(filters)
        .annotate(
            # Constant SQL; the query's words are bound parameters.
            matched=RawSQL(  # noqa: S611
                f"{_PG_DOCUMENT} @@ to_tsquery('simple', %s)",
                (tsquery,),
                BooleanField(),
            ),
            score=RawSQL(  # noqa: S611
                f"ts_rank('{{0.1, 0.2, 0.4, 1.0}}', {_PG_DOCUMENT},"
                " to_tsquery('simple', %s))",
                (tsquery,),
                FloatField(),
            ),
        )
        .filter(matched=True)
    )


def _merge(found: list[str], typos: list[str], order) -> list[str]:
    """Word matches first, then typo matches; or both in an explicit order."""
    typos = [pk for pk in typos if pk not in found]
    if not typos or order[0] == "-score":
        return found + typos
    # An explicit ordering applies to the merged results.
    merged = Product.objects.filter(pk__in=found + typos).order_by(*order)
    return list(merged.values_list("id", flat=True)[:SEARCH_LIMIT])


def _typo_matches(terms: list[str], filters: ProductFilters, order) -> list[str]:
    """Products whose name holds words like the query's (pg_trgm word
    similarity, threshold CATALOG_SEARCH_TYPO_THRESHOLD)."""
    phrase = " ".join(terms)
    # First the trigram index alone, so that the planner cannot prefer a
    # filter's index and compute the similarity row by row; then filters.
    candidates = list(
        Product.objects.annotate(
            similar=RawSQL(f"%s <%% {_PG_NAME}", (phrase,), BooleanField())  # noqa: S611
        )
        .filter(similar=True)
        .values_list("id", flat=True)[: SEARCH_LIMIT * 2]
    )
    if not candidates:
        return []
    return list(
        products_filtered(filters)
        .filter(pk__in=candidates)
        .annotate(
            score=RawSQL(  # noqa: S611
                f"word_similarity(%s, {_PG_NAME})", (phrase,), FloatField()
            )
        )
        .order_by(*order)
        .values_list("id", flat=True)[:SEARCH_LIMIT]
    )


def _search_sqlite(terms: list[str], filters: ProductFilters, order) -> list[str]:
    """SQLite: every word somewhere (as a substring), case and accents
    folded as on PostgreSQL; the name counts most. Fewer than
    TYPO_FALLBACK_BELOW results add names with alike words, as on
    PostgreSQL, by a scan: fine for the embedded default's catalog."""
    queryset = _search_folded(products_filtered(filters), terms)
    found = list(queryset.order_by(*order).values_list("id", flat=True)[:SEARCH_LIMIT])
    if len(found) >= TYPO_FALLBACK_BELOW:
        return found
    typos = list(
        products_filtered(filters)
        .annotate(
            score=Func(
                Value(" ".join(terms)),
                F("name"),
                function="shop_word_similarity",
                output_field=FloatField(),
            )
        )
        .filter(score__gte=typo_threshold())
        .order_by(*order)
        .values_list("id", flat=True)[:SEARCH_LIMIT]
    )
    return _merge(found, typos, order)


def _folded(field: str, function: str = "shop_fold") -> Func:
    return Func(F(field), function=function, output_field=TextField())


def _search_folded(queryset: QuerySet, terms: list[str]) -> QuerySet:
    queryset = queryset.alias(
        folded_name=_folded("name"),
        folded_category=_folded("category"),
        folded_tags=_folded("tags", "shop_fold_json"),
        folded_description=_folded("description"),
    )
    # The terms are folded already: lower-case, without accents.
    for term in terms:
        queryset = queryset.filter(
            Q(folded_name__contains=term)
            | Q(folded_category__contains=term)
            | Q(folded_tags__contains=term)
            | Q(folded_description__contains=term)
        )
    first = terms[0]
    return queryset.annotate(
        score=Case(
            When(folded_name__contains=first, then=Value(3)),
            When(folded_category__contains=first, then=Value(2)),
            When(folded_tags__contains=first, then=Value(2)),
            default=Value(1),
            output_field=IntegerField(),
        )
    )


def _search_mongodb(terms, filters, ordering):  # pragma: no cover - MONGODB_URI
    """MongoDB: the weighted text index of migration 0002, via $text."""
    from django_mongodb_backend.queryset import MongoQuerySet

    match = {"$text": {"$search": " ".join(terms)}}
    if not filters.include_archived:
        match["is_archived"] = False
    if filters.category:
        match["category"] = filters.category
    if filters.tags:
        match["tags"] = {"$all": [t.lower() for t in filters.tags]}
    price = {}
    if filters.min_price is not None:
        price["$gte"] = filters.min_price
    if filters.max_price is not None:
        price["$lte"] = filters.max_price
    if price:
        from bson import Decimal128

        match["price"] = {k: Decimal128(v) for k, v in price.items()}
    if filters.in_stock is True:
        match["stock"] = {"$gt": 0}
    elif filters.in_stock is False:
        match["stock"] = 0
    for key, raw in filters.attributes.items():
        match[f"attributes.{key}"] = {"$in": attribute_values(raw)}
    sort = {"score": {"$meta": "textScore"}}
    if ordering:
        sort = {
            name.lstrip("-"): -1 if name.startswith("-") else 1
            for name in ORDERINGS[ordering]
        }
    pipeline = [
        {"$match": match},
        {"$addFields": {"score": {"$meta": "textScore"}}},
        {"$sort": sort},
        {"$limit": SEARCH_LIMIT},
    ]
    pipeline.append({"$project": {"id": 1}})
    queryset = MongoQuerySet(model=Product, using=router.db_for_read(Product))
    return [product.id for product in queryset.raw_aggregate(pipeline)]
