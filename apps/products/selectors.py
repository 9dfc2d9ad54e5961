"""Catalog reads: product look-ups, filtered lists and full-text search.

Engine-specific code (JSON list membership, full-text search) is chosen by
the connection's vendor: PostgreSQL, MongoDB, or the simpler SQLite match of
the embedded default.
"""

import json
import math
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

from apps.products.errors import ProductNotFound
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


def product_get(*, product_id: str, include_archived: bool = False) -> Product:
    """A product; archived ones only for ``include_archived`` (staff)."""
    queryset = Product.objects.all()
    if not include_archived:
        queryset = queryset.filter(is_archived=False)
    try:
        return queryset.get(pk=product_id)
    except Product.DoesNotExist:
        raise ProductNotFound(f"No product with id {product_id}.") from None


def attribute_values(raw: str) -> list:
    """What an attribute filter's text matches: the text itself, and the
    number or boolean it spells, since query strings carry only text."""
    values: list = [raw]
    lowered = raw.lower()
    if lowered in ("true", "false"):
        values.append(lowered == "true")
        return values
    try:
        number = int(raw) if re.fullmatch(r"-?\d{1,15}", raw) else float(raw)
    except ValueError:
        return values
    if math.isfinite(number):
        values.append(number)
    return values


def _attribute_q(key: str, raw: str) -> Q:
    # "__exact" last: the key is always read as a JSON key, never as a lookup
    # ("attr.isnull" or "attr.regex" filter on keys of those names).
    lookup = f"attributes__{key}__exact"
    condition = Q()
    for value in attribute_values(raw):
        condition |= Q(**{lookup: value})
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
    queryset = _search_simple(_filtered(filters), terms)
    return list(queryset.order_by(*order).values_list("id", flat=True)[:SEARCH_LIMIT])


def products_in_order(product_ids: list[str]) -> list[Product]:
    """The products with these ids, in the order given (missing ones left out)."""
    found = Product.objects.in_bulk(product_ids)
    return [found[pk] for pk in product_ids if pk in found]


def _search_postgresql(terms: list[str], filters: ProductFilters, order) -> list[str]:
    # Every word must match, each as a prefix ("lapt" finds "laptop"), in the
    # weighted document (GIN index on the generated column).
    tsquery = " & ".join(f"{term}:*" for term in terms)
    found = list(
        _filtered(filters)
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
        _filtered(filters)
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
