"""Catalog full-text search: ranked products, capped (ADRs 0010, 0028).

The engine's own search is chosen by the connection's vendor: PostgreSQL
(weighted tsvector; the catalog's vocabulary turns prefixes into known words
and corrects typos to the nearest ones), MongoDB ($text), or the simpler
SQLite match of the embedded default (folded by SQLite functions that
``register_sqlite_functions`` adds to each connection).
"""

import json
import logging
import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

from django.conf import settings
from django.db import OperationalError, connections, router, transaction
from django.db.models import (
    BooleanField,
    Case,
    ExpressionWrapper,
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

from apps.products import cache
from apps.products.models import Product
from apps.products.selectors import (
    ORDERINGS,
    ProductFilters,
    attribute_values,
    products_filtered,
)

logger = logging.getLogger(__name__)


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
    """How alike a misspelt word must be to a word of a product's name
    (SQLite). PostgreSQL reads the same setting as every catalog session's
    pg_trgm.word_similarity_threshold, in migration 0008's search function."""
    return settings.CATALOG_SEARCH_TYPO_THRESHOLD


# The weighted document (name A; category and tags B; description C) is a
# generated column added by migration 0002, unknown to the Django model.
_PG_DOCUMENT = "products_product.search_document"


# Search answers the most relevant results only: counting or ranking every
# match of a common word in a large catalog costs more than any client uses.
SEARCH_LIMIT = 1000
# Typo tolerance is tried when the words themselves find fewer results than
# this.
TYPO_FALLBACK_BELOW = 20
# PostgreSQL (ADR 0028): a word of the query stands for the known words it
# is a prefix of, up to this many (more, and it is matched as a prefix)...
PREFIX_WORDS = 20
# ... and, with typo tolerance, also for up to this many known words most
# like it.
TYPO_WORDS = 4


def product_search(
    *, query: str, filters: ProductFilters, ordering: str | None = None
) -> list[str]:
    """Ids of the products matching ``query``, most relevant first (or by
    ``ordering``), at most SEARCH_LIMIT.

    A name match outranks a category or tag match, which outranks a
    description match. Typo tolerance when the words find fewer than
    TYPO_FALLBACK_BELOW. The query is only ever a bound parameter or a list
    of plain words, never SQL or a MongoDB operator.
    """
    terms = search_terms(query)
    if not terms:
        return []
    if _vendor() == "mongodb":
        return _search_mongodb(terms, filters, ordering)
    found: list[str] = []
    for queryset, order in page_queries(terms, filters, ordering):
        found = list(
            queryset.order_by(*order).values_list("id", flat=True)[:SEARCH_LIMIT]
        )
        if len(found) >= TYPO_FALLBACK_BELOW:
            break
    return found


def pages_in_one_query() -> bool:
    """Whether ``page_queries`` serves this engine (SQL engines)."""
    return _vendor() != "mongodb"


def page_queries(
    terms: list[str], filters: ProductFilters, ordering: str | None = None
) -> Iterator[tuple[QuerySet[Product], tuple[str, ...]]]:
    """SQL engines: the products ``terms`` match (with a ``score``) and the
    order to list them in, twice: first the words' own matches; then, for a
    caller who found fewer than TYPO_FALLBACK_BELOW there and asks for more,
    the matches with typo tolerance, which list the first ones first unless
    ``ordering`` orders them all. Each is a page in one query
    (``selectors.product_page``).

    On PostgreSQL a word that no product has is corrected in the first
    query already: its own matches would be none.
    """
    order = ORDERINGS[ordering] if ordering else ("-score", "id")
    if _vendor() == "postgresql":
        yield _pg_matches(terms, filters, typos=False), order
        yield (
            _pg_matches(terms, filters, typos=True),
            (order if ordering else ("-first", "-score", "id")),
        )
        return
    yield _search_folded(products_filtered(filters), terms), order
    yield _sqlite_typo_matches(terms, filters), order


# Constant SQL: the stop words are plain lower-case letters.
_PG_STOP_WORDS = "'{" + ",".join(sorted(STOP_WORDS)) + "}'::text[]"


def _pg_query(terms: list[str], *, typos: bool) -> tuple[str, tuple]:
    """The tsquery of ``terms`` (migration 0008's ``shop_search_query``),
    as SQL and its parameter: a subquery, computed once per statement."""
    return (
        f"(SELECT shop_search_query(%s::text[], {'true' if typos else 'false'},"
        f" {PREFIX_WORDS:d}, {TYPO_WORDS:d}, {_PG_STOP_WORDS}))",
        (terms,),
    )


def _pg_matches(terms: list[str], filters: ProductFilters, *, typos: bool):
    # Every word must match (the known words it is a prefix of, "lapt"
    # finds "laptop"), in the weighted document (GIN index on the generated
    # column). Constant SQL; the query's words are bound parameters.
    query, params = _pg_query(terms, typos=typos)
    queryset = (
        products_filtered(filters)
        .annotate(
            matched=RawSQL(  # noqa: S611
                f"{_PG_DOCUMENT} @@ {query}", params, BooleanField()
            ),
            score=RawSQL(  # noqa: S611
                f"ts_rank('{{0.1, 0.2, 0.4, 1.0}}', {_PG_DOCUMENT}, {query})",
                params,
                FloatField(),
            ),
        )
        .filter(matched=True)
    )
    if not typos:
        return queryset
    first, first_params = _pg_query(terms, typos=False)
    return queryset.annotate(
        first=RawSQL(  # noqa: S611
            f"coalesce({_PG_DOCUMENT} @@ {first}, false)", first_params, BooleanField()
        )
    )


def search_words_prune() -> int:
    """PostgreSQL: forget the known words (migration 0008) that no product
    has any more, the words of deleted or rewritten products; returns how
    many. Other engines keep no such words: 0.

    Product writes wait while the candidates are checked again, for a few
    milliseconds: a word that a write adds meanwhile must stay.
    """
    if _vendor() != "postgresql":
        return 0
    alias = router.db_for_write(Product)
    try:
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT word FROM products_search_word EXCEPT SELECT word"
                " FROM ts_stat('SELECT search_document FROM products_product')"
            )
            candidates = [word for (word,) in cursor.fetchall()]
            if not candidates:
                return 0
            # A lock request that waits makes every later write wait behind
            # it: give up after a second (a long transaction holds the
            # table); the next run prunes.
            cursor.execute("SET LOCAL lock_timeout = '1s'")
            cursor.execute("LOCK TABLE products_product IN SHARE MODE")
            cursor.execute(
                "DELETE FROM products_search_word w WHERE w.word = ANY(%s::text[])"
                " AND NOT EXISTS (SELECT 1 FROM products_product p"
                " WHERE p.search_document @@ shop_lexeme(w.word)::tsquery)",
                (candidates,),
            )
            if cursor.rowcount:
                # A typo's nearest known words may change: pages go
                # (ADR 0027).
                transaction.on_commit(cache.forget_listings, using=alias)
            return cursor.rowcount
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        logger.warning("Search words not pruned: the products table stayed busy.")
        return 0


def _sqlite_typo_matches(terms: list[str], filters: ProductFilters) -> QuerySet:
    """SQLite: the words' matches, then names with alike words (a close
    copy of pg_trgm's word similarity, by a scan: fine for the embedded
    default's catalog), each ranked as on its own."""
    similarity = Func(
        Value(" ".join(terms)),
        F("name"),
        function="shop_word_similarity",
        output_field=FloatField(),
    )
    return (
        _with_folded(products_filtered(filters))
        .annotate(
            first=ExpressionWrapper(_words_condition(terms), BooleanField()),
            similarity=similarity,
        )
        .filter(Q(first=True) | Q(similarity__gte=typo_threshold()))
        .annotate(
            # The words' matches above every typo match: their own score
            # (1-3) lifted past any similarity (at most 1).
            score=Case(
                When(first=True, then=_sqlite_word_score(terms, lift=10)),
                default=F("similarity"),
                output_field=FloatField(),
            )
        )
    )


def _folded(field: str, function: str = "shop_fold") -> Func:
    return Func(F(field), function=function, output_field=TextField())


def _with_folded(queryset: QuerySet) -> QuerySet:
    return queryset.alias(
        folded_name=_folded("name"),
        folded_category=_folded("category"),
        folded_tags=_folded("tags", "shop_fold_json"),
        folded_description=_folded("description"),
    )


def _words_condition(terms: list[str]) -> Q:
    # The terms are folded already: lower-case, without accents.
    condition = Q()
    for term in terms:
        condition &= (
            Q(folded_name__contains=term)
            | Q(folded_category__contains=term)
            | Q(folded_tags__contains=term)
            | Q(folded_description__contains=term)
        )
    return condition


def _sqlite_word_score(terms: list[str], lift: int = 0) -> Case:
    first = terms[0]
    return Case(
        When(folded_name__contains=first, then=Value(3 + lift)),
        When(folded_category__contains=first, then=Value(2 + lift)),
        When(folded_tags__contains=first, then=Value(2 + lift)),
        default=Value(1 + lift),
        output_field=IntegerField(),
    )


def _search_folded(queryset: QuerySet, terms: list[str]) -> QuerySet:
    return (
        _with_folded(queryset)
        .filter(_words_condition(terms))
        .annotate(score=_sqlite_word_score(terms))
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
