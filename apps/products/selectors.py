"""Catalog reads: product look-ups and filtered lists (search is in
``search.py``).

Engine-specific code (JSON list membership) is chosen by the connection's
vendor: PostgreSQL, MongoDB, or the simpler SQLite match of the embedded
default.
"""

import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connections
from django.db.models import (
    Q,
    QuerySet,
    TextField,
)
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


@dataclass(frozen=True)
class ProductFilters:
    category: str | None = None
    tags: tuple[str, ...] = ()
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    include_archived: bool = False


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


def products_filtered(filters: ProductFilters) -> QuerySet[Product]:
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
    return products_filtered(filters).order_by(*ORDERINGS[ordering])


def products_in_order(product_ids: list[str]) -> list[Product]:
    """The products with these ids, in the order given (missing ones left out)."""
    found = Product.objects.in_bulk(product_ids)
    return [found[pk] for pk in product_ids if pk in found]
