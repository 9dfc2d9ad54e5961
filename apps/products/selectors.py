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
    F,
    Q,
    QuerySet,
    TextField,
    Window,
)
from django.db.models.functions import Cast, RowNumber

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


def products_in_order(product_ids: list[str]) -> list[Product]:
    """The products with these ids, in the order given (missing ones left out)."""
    found = Product.objects.in_bulk(product_ids)
    return [found[pk] for pk in product_ids if pk in found]


# Lists count their matches exactly up to this many; past it the count is
# capped (``count_capped``: there are more) instead of a COUNT over every
# match.
COUNT_CAP = 1000


@dataclass(frozen=True)
class Page:
    products: list[Product]
    # Matches counted: exact, or COUNT_CAP (or more, on deep pages) when
    # ``capped``, which says that more match than ``count``.
    count: int
    capped: bool


def product_page(
    queryset: QuerySet[Product],
    *,
    order: tuple[str, ...],
    offset: int,
    size: int,
    limit: int | None = None,
) -> Page:
    """One page of ``queryset`` in ``order``, with its matches counted up
    to COUNT_CAP (or to the end of the page, if deeper), and never past
    ``limit``.

    SQL engines answer in one query: the matching ids, numbered in order
    and stopped after what is counted (an index read in order), joined to
    the rows of the page only. MongoDB reads the ids, then the page.
    """
    scan = max(COUNT_CAP, offset + size)
    if limit is not None:
        scan = min(scan, limit)
    alias = queryset.db
    connection = connections[alias]
    if connection.vendor == "mongodb":  # pragma: no cover - MONGODB_URI
        ids = list(queryset.order_by(*order).values_list("id", flat=True)[: scan + 1])
        products = products_in_order(ids[offset : offset + size])
        return Page(products, min(len(ids), scan), len(ids) > scan)
    numbered = (
        queryset.annotate(
            row_n=Window(
                RowNumber(),
                order_by=[
                    F(name[1:]).desc() if name.startswith("-") else F(name).asc()
                    for name in order
                ],
            )
        )
        .order_by(*order)
        .values_list("id", "row_n")[: scan + 1]
    )
    matches_sql, params = numbered.query.sql_with_params()
    quote = connection.ops.quote_name
    columns = ", ".join(
        f"p.{quote(field.column)} AS {quote(field.column)}"
        for field in Product._meta.concrete_fields
    )
    # Constant SQL around Django's own compiled query; values are bound.
    table = quote(Product._meta.db_table)
    sql = (
        f"WITH m AS ({matches_sql}) "  # noqa: S608
        f"SELECT c.match_count, m.row_n, {columns} "
        "FROM (SELECT COUNT(*) AS match_count FROM m) c "
        f"LEFT JOIN (m INNER JOIN {table} p "
        "ON p.id = m.id AND m.row_n > %s AND m.row_n <= %s) ON 1 = 1 "
        "ORDER BY m.row_n"
    )
    rows = list(Product.objects.using(alias).raw(sql, (*params, offset, offset + size)))
    matched = rows[0].match_count if rows else 0
    products = [row for row in rows if row.pk is not None]
    return Page(products, min(matched, scan), matched > scan)
