"""Catalog full-text search: ranked product ids, capped (ADR 0010).

The engine's own search is chosen by the connection's vendor: PostgreSQL
(weighted tsvector, trigram typo fallback), MongoDB ($text), or the simpler
SQLite match of the embedded default.
"""

import re
import unicodedata

from django.db import connections, router
from django.db.models import (
    BooleanField,
    Case,
    FloatField,
    IntegerField,
    Q,
    QuerySet,
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


def search_terms(query: str) -> list[str]:
    """The words of a query, folded; punctuation and operators dropped."""
    return re.findall(r"\w+", fold(query))[:10]


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
    queryset = _search_simple(products_filtered(filters), terms)
    return list(queryset.order_by(*order).values_list("id", flat=True)[:SEARCH_LIMIT])


def _search_postgresql(terms: list[str], filters: ProductFilters, order) -> list[str]:
    # Every word must match, each as a prefix ("lapt" finds "laptop"), in the
    # weighted document (GIN index on the generated column).
    tsquery = " & ".join(f"{term}:*" for term in terms)
    found = list(
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
        .order_by(*order)
        .values_list("id", flat=True)[:SEARCH_LIMIT]
    )
    if len(found) >= TYPO_FALLBACK_BELOW:
        return found
    typos = [pk for pk in _typo_matches(terms, filters, order) if pk not in found]
    if not typos or order[0] == "-score":
        return found + typos
    # An explicit ordering applies to the merged results.
    merged = Product.objects.filter(pk__in=found + typos).order_by(*order)
    return list(merged.values_list("id", flat=True))


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


def _search_simple(queryset: QuerySet, terms: list[str]) -> QuerySet:
    """SQLite: every word somewhere; the name counts most."""
    for term in terms:
        queryset = queryset.filter(
            Q(name__icontains=term)
            | Q(category__icontains=term)
            | Q(tags__icontains=term)
            | Q(description__icontains=term)
        )
    first = terms[0]
    return queryset.annotate(
        score=Case(
            When(name__icontains=first, then=Value(3)),
            When(category__icontains=first, then=Value(2)),
            When(tags__icontains=first, then=Value(2)),
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
