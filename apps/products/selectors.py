"""Catalog reads: product look-ups, filtered lists and full-text search.

Engine-specific code (JSON list membership, full-text search) is chosen by
the connection's vendor: PostgreSQL, MongoDB, or the simpler SQLite match of
the embedded default.
"""

import json
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connections, router
from django.db.models import (
    BooleanField,
    Case,
    FloatField,
    IntegerField,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

from apps.products.interface import ProductNotFound
from apps.products.models import Product

ORDERINGS = {
    "newest": ("-created_at", "id"),
    "oldest": ("created_at", "id"),
    "price": ("price", "id"),
    "-price": ("-price", "id"),
    "name": ("name", "id"),
    "-name": ("-name", "id"),
    "best_selling": ("-sold_count", "id"),
}
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,49}$")


@dataclass(frozen=True)
class ProductFilters:
    category: str | None = None
    tags: tuple[str, ...] = ()
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    include_archived: bool = False


def _vendor() -> str:
    return connections[router.db_for_read(Product)].vendor


def json_list_contains(queryset: QuerySet, field_name: str, value: str) -> QuerySet:
    """Rows whose JSON list ``field_name`` holds the string ``value``."""
    vendor = connections[queryset.db].vendor
    if vendor == "postgresql":
        return queryset.filter(**{f"{field_name}__contains": [value]})
    if vendor == "mongodb":
        # MongoDB matches an array field against one of its elements.
        return queryset.filter(**{field_name: value})
    # SQLite: the JSON text holds the element's JSON encoding.
    alias = f"_{field_name}_text"
    return queryset.alias(**{alias: Cast(field_name, TextField())}).filter(
        **{f"{alias}__contains": json.dumps(value)}
    )


def product_list_by_ids(*, product_ids: list[str]) -> list[Product]:
    return list(Product.objects.filter(pk__in=product_ids))


def product_get(*, product_id: str, include_archived: bool = False) -> Product:
    """A product; archived ones only for ``include_archived`` (staff)."""
    queryset = Product.objects.all()
    if not include_archived:
        queryset = queryset.filter(is_archived=False)
    try:
        return queryset.get(pk=product_id)
    except Product.DoesNotExist:
        raise ProductNotFound(f"No product with id {product_id}.") from None


def _attribute_q(key: str, raw: str) -> Q:
    """Equality on one attribute; "42" also matches the number 42, and
    "true"/"false" the booleans, since query strings carry only text."""
    condition = Q(**{f"attributes__{key}": raw})
    lowered = raw.lower()
    if lowered in ("true", "false"):
        condition |= Q(**{f"attributes__{key}": lowered == "true"})
    else:
        try:
            number = int(raw) if re.fullmatch(r"-?\d{1,15}", raw) else float(raw)
        except ValueError:
            number = None
        if number is not None and number == number:  # not NaN
            condition |= Q(**{f"attributes__{key}": number})
    return condition


def _filtered(filters: ProductFilters) -> QuerySet[Product]:
    queryset = Product.objects.all()
    if not filters.include_archived:
        queryset = queryset.filter(is_archived=False)
    if filters.category:
        queryset = queryset.filter(category=filters.category)
    for tag in filters.tags:
        queryset = json_list_contains(queryset, "tags", tag.lower())
    if filters.min_price is not None:
        queryset = queryset.filter(price__gte=filters.min_price)
    if filters.max_price is not None:
        queryset = queryset.filter(price__lte=filters.max_price)
    if filters.in_stock is True:
        queryset = queryset.filter(stock__gt=0)
    elif filters.in_stock is False:
        queryset = queryset.filter(stock=0)
    for key, raw in filters.attributes.items():
        if not ATTRIBUTE_KEY.match(key):
            raise ValueError(f"invalid attribute key {key!r}")
        queryset = queryset.filter(_attribute_q(key, raw))
    return queryset


def product_list(
    *, filters: ProductFilters, ordering: str = "newest"
) -> QuerySet[Product]:
    return _filtered(filters).order_by(*ORDERINGS[ordering])


# -- full-text search ----------------------------------------------------------


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


def product_search(
    *, query: str, filters: ProductFilters, ordering: str | None = None
) -> QuerySet[Product] | list[Product]:
    """Products matching ``query``, most relevant first (or by ``ordering``).

    A name match outranks a category or tag match, which outranks a
    description match. The query is only ever a bound parameter or a list
    of plain words, never SQL or a MongoDB operator.
    """
    terms = search_terms(query)
    if not terms:
        return Product.objects.none()
    vendor = _vendor()
    queryset = _filtered(filters)
    if vendor == "postgresql":
        queryset = _search_postgresql(queryset, terms)
    elif vendor == "mongodb":
        return _search_mongodb(terms, filters, ordering)
    else:
        queryset = _search_simple(queryset, terms)
    if ordering:
        return queryset.order_by(*ORDERINGS[ordering])
    return queryset.order_by("-score", "id")


def _search_postgresql(queryset: QuerySet, terms: list[str]) -> QuerySet:
    # Every word must match, each as a prefix ("lapt" finds "laptop").
    tsquery = " & ".join(f"{term}:*" for term in terms)
    phrase = " ".join(terms)
    document_matches = (
        f"({_PG_DOCUMENT}) @@ to_tsquery('simple', %s)"
        f" OR %s <%% {_PG_NAME}"  # trigram word similarity: small typos
    )
    score = (
        f"ts_rank('{{0.1, 0.2, 0.4, 1.0}}', {_PG_DOCUMENT}, to_tsquery('simple', %s))"
        f" + word_similarity(%s, {_PG_NAME})"
    )
    return queryset.annotate(
        # Constant SQL; the query's words are bound parameters.
        matched=RawSQL(document_matches, (tsquery, phrase), BooleanField()),  # noqa: S611
        score=RawSQL(score, (tsquery, phrase), FloatField()),  # noqa: S611
    ).filter(matched=True)


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
        match[f"attributes.{key}"] = raw
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
        {"$limit": 1000},
    ]
    queryset = MongoQuerySet(model=Product, using=router.db_for_read(Product))
    return list(queryset.raw_aggregate(pipeline))
