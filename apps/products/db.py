"""Where the catalog writes, shared by its write modules.

On SQL engines each use case runs in a transaction as extra safety; on
MongoDB ``atomic()`` is a no-op, and stock stays right through conditional
per-document updates alone (ADR 0008). Tests replace ``atomic`` to run the
use cases both ways.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import router, transaction
from django.db.models import F
from django.utils import timezone

from apps.core import generations
from apps.products import cache
from apps.products.models import Product


def alias() -> str:
    return router.db_for_write(Product)


def atomic():
    return transaction.atomic(using=alias())


@contextmanager
def touched(*product_ids: str) -> Iterator[dict[str, Any]]:
    """Around every write of products, stock movements included: gives
    what the write sets (an ``update()`` skips ``auto_now``): a new version,
    which is the ETag and the guard against lost updates, and the time of
    the change. After the write, the products' cached representations are
    made dead (ADR 0026)::

        with db.touched(product_id) as touched:
            Product.objects.filter(pk=product_id).update(..., **touched)
    """
    try:
        yield {"version": F("version") + 1, "updated_at": timezone.now()}
    finally:
        changed(*product_ids)


def changed(*product_ids: str) -> None:
    """The products' cached representations are dead: now, after the
    statement that wrote them (in autocommit, and on MongoDB, that is the
    commit), and again when the enclosing transaction commits (a reader may
    have cached the old row meanwhile, under the token deleted now)."""
    if not product_ids:
        raise TypeError("changed() needs the ids of the products written")
    generations.dead_now_and_on_commit(lambda: cache.forget(product_ids), using=alias())
