"""Catalog responses cached under keys no write can leave stale.

ADR 0026 (product detail) and 0027 (list and search pages). Entries live
in Django's default cache (Redis in production, locmem in ``make run``),
each beside the generation token it was read under:

- a product's detail: ``catalog:product:<id>:gen``, a random token, the
  product's current generation, and ``...:<id>:entry``, ``(token, value)``,
  a value read under that generation;
- a list or search page: ``catalog:listing:<hash of its address>``,
  ``(token, value)``, under one token for the whole catalog,
  ``catalog:listing:gen``, since any product write may change any page.

A read fetches both in one round trip (``get_many``: one MGET on Redis) and
serves the entry only when its token is the current one. A miss first makes
sure a token exists (``add``: only one reader's token wins), then reads the
database, then stores the value under the token it held *before* reading.
A write deletes its products' tokens and the listing token after its
statement and again after its transaction commits (``db.touched``). So a
value read before a commit was stored under a token that the commit's
deletion has made dead: no reader can ever bring it back, whatever the
interleaving. A missing token (never set, expired, evicted) validates
nothing, so losing keys is always safe; only a failed deletion (the cache
unreachable during a write, then back with its data) can leave an entry
stale, for at most its timeout. The protocol itself is
``apps.core.generations``, shared with the users' profiles (ADR 0031).
"""

import re
from collections.abc import Callable, Iterable
from hashlib import blake2b
from typing import Any

from django.conf import settings

from apps.core import generations

PREFIX = "catalog:product:"
LISTING_PREFIX = "catalog:listing:"
# Every list and search page is read under this one token.
LISTING_GEN = LISTING_PREFIX + "gen"
# Ids that are safe as cache keys on every backend (no spaces or control
# characters); anything else is hashed.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Names the cache in what is logged when it fails.
_WHAT = "catalog"


def _keys(product_id: str) -> tuple[str, str]:
    name = (
        product_id
        if _SAFE_ID.match(product_id)
        else "h-" + blake2b(product_id.encode(), digest_size=16).hexdigest()
    )
    return f"{PREFIX}{name}:gen", f"{PREFIX}{name}:entry"


def cached_product(product_id: str, load: Callable[[], Any]) -> Any:
    """The value ``load()`` returns for this product, from the cache when
    its generation is current; ``load()`` returning None (no such product)
    is not cached. When the cache fails, ``load()`` answers alone."""
    gen_key, entry_key = _keys(product_id)
    return generations.cached(
        gen_key,
        entry_key,
        settings.CATALOG_PRODUCT_CACHE_SECONDS,
        load,
        what=_WHAT,
    )


def cached_listing(address: str, load: Callable[[], Any]) -> Any:
    """The value ``load()`` returns for the list or search page at
    ``address`` (its absolute URI: everything its body depends on), from
    the cache when no product was written since it was stored. An
    exception from ``load()`` (a bad page) stores nothing."""
    return generations.cached(
        LISTING_GEN,
        listing_key(address),
        settings.CATALOG_LISTING_CACHE_SECONDS,
        load,
        what=_WHAT,
    )


def stored_listing(address: str) -> Any:
    """The page stored for ``address`` if no product was written since it
    was stored; None otherwise, or when the cache fails. Reads nothing
    else and stores nothing: the shortcut before a page's view runs."""
    if settings.CATALOG_LISTING_CACHE_SECONDS <= 0:
        return None
    return generations.stored(LISTING_GEN, listing_key(address), what=_WHAT)


def listing_key(address: str) -> str:
    """The cache key of the page at ``address``."""
    return LISTING_PREFIX + blake2b(address.encode(), digest_size=16).hexdigest()


def forget(product_ids: Iterable[str]) -> None:
    """Make the cached entries of these products dead (their generation
    tokens deleted, with the entries), and every cached list and search
    page (the listing token), in one round trip."""
    keys = [key for product_id in product_ids for key in _keys(product_id)]
    if not keys:
        return
    keys.append(LISTING_GEN)
    generations.kill(keys, what=_WHAT)


def forget_listings() -> None:
    """Make every cached list and search page dead (the listing token), for
    a change of what pages show that writes no product (the search
    vocabulary's prune)."""
    generations.kill([LISTING_GEN], what=_WHAT)


def forget_all() -> None:
    """Drop every product entry and every page: after a database is
    restored from a backup (rows went back in time without writes), and
    between tests."""
    generations.delete_prefixed((PREFIX, LISTING_PREFIX))
