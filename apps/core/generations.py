"""Values cached under generation tokens, so that no write leaves them
stale (ADR 0026, 0027; the users' profiles, ADR 0031).

Each cached value lives in Django's default cache beside the key of the
generation it was read under: ``<...>:gen`` holds a random token, the
current generation, and the entry holds ``(token, value)``, a value read
under that generation. Several entries may share one token (the catalog's
pages all live under one).

A read fetches both in one round trip (``get_many``: one MGET on Redis) and
serves the entry only when its token is the current one. A miss first makes
sure a token exists (``add``: only one reader's token wins), then reads the
database, then stores the value under the token it held *before* reading.
A write deletes the tokens it changes after its statement and again after
its transaction commits (``dead_now_and_on_commit``). So a value read before
a commit was stored under a token that the commit's deletion has made dead:
no reader can ever bring it back, whatever the interleaving. A missing token
(never set, expired, evicted) validates nothing, so losing keys is always
safe; only a failed deletion (the cache unreachable during a write, then
back with its data) can leave an entry stale, for at most its timeout.

If the cache is down, reads answer from ``load()`` alone.
"""

import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)


def cached(
    gen_key: str,
    entry_key: str,
    timeout: int,
    load: Callable[[], Any],
    *,
    what: str,
) -> Any:
    """The value ``load()`` returns, from the cache when it was stored
    under the current token of ``gen_key``: one round trip for a hit; on a
    miss, a token made sure of before ``load()`` reads the database, and
    the value stored under the token held before the read. None (nothing
    found) is never stored, nor is anything when ``load()`` raises. A
    ``timeout`` of 0 or less turns the cache off. ``what`` names the cache
    in the warning logged when it fails."""
    if timeout <= 0:
        return load()
    try:
        found = cache.get_many([gen_key, entry_key])
        value = current(found, gen_key, entry_key)
        if value is not None:
            return value
        token = found.get(gen_key)
        if token is None:
            fresh = secrets.token_hex(8)
            # The token must exist before the database is read.
            token = fresh if cache.add(gen_key, fresh, timeout) else None
    except Exception:  # noqa: BLE001 - the database still answers
        logger.warning("%s cache unavailable", what, exc_info=True)
        return load()
    value = load()
    if value is not None and token is not None:
        try:
            cache.set(entry_key, (token, value), timeout)
        except Exception:  # noqa: BLE001
            logger.warning("%s cache unavailable", what, exc_info=True)
    return value


def stored(gen_key: str, entry_key: str, *, what: str) -> Any:
    """The value stored under the current token of ``gen_key``; None when
    there is none, or when the cache fails. Reads nothing else and stores
    nothing."""
    try:
        found = cache.get_many([gen_key, entry_key])
    except Exception:  # noqa: BLE001 - the caller still answers
        logger.warning("%s cache unavailable", what, exc_info=True)
        return None
    return current(found, gen_key, entry_key)


def current(found: dict, gen_key: str, entry_key: str) -> Any:
    """The entry's value, in what ``get_many`` found, when it was stored
    under the current token."""
    token = found.get(gen_key)
    entry = found.get(entry_key)
    if token is not None and entry is not None and entry[0] == token:
        return entry[1]
    return None


def kill(keys: list[str], *, what: str) -> None:
    """Delete these tokens (and entries) in one round trip: every value
    stored under the tokens is dead. A failure is logged, not raised: the
    write itself has succeeded."""
    if not keys:
        return
    try:
        cache.delete_many(keys)
    except Exception:  # noqa: BLE001 - the write itself has succeeded
        # An entry may outlive this write, for at most its timeout.
        logger.error("%s cache invalidation failed", what, exc_info=True)


def dead_now_and_on_commit(forget: Callable[[], None], *, using: str) -> None:
    """Run ``forget`` (which kills the tokens a write changed) now, after
    the statement that wrote (in autocommit, and on MongoDB, that is the
    commit), and again when the enclosing transaction commits: a reader may
    have cached the old row meanwhile, under the token killed now."""
    forget()
    if transaction.get_connection(using).in_atomic_block:
        transaction.on_commit(forget, using=using)


def delete_prefixed(prefixes: Iterable[str]) -> None:
    """Drop every key under these prefixes (on locmem, this process's whole
    cache): after a database is restored from a backup (rows went back in
    time without writes), and between tests."""
    backend = getattr(cache, "_cache", None)
    if backend is None or not hasattr(backend, "get_client"):
        cache.clear()  # locmem: this process's memory only
        return
    client = backend.get_client(write=True)
    for prefix in prefixes:
        batch = []
        for key in client.scan_iter(match=cache.make_key(prefix + "*"), count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
