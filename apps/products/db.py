"""Where the catalog writes, shared by its write modules.

On SQL engines each use case runs in a transaction as extra safety; on
MongoDB ``atomic()`` is a no-op, and stock stays right through conditional
per-document updates alone (ADR 0008). Tests replace ``atomic`` to run the
use cases both ways.
"""

from django.db import router, transaction

from apps.products.models import Product


def alias() -> str:
    return router.db_for_write(Product)


def atomic():
    return transaction.atomic(using=alias())
