"""Where the catalog writes, shared by its write modules.

On SQL engines each use case runs in a transaction as extra safety; on
MongoDB ``atomic()`` is a no-op, and stock stays right through conditional
per-document updates alone (ADR 0008). Tests replace ``atomic`` to run the
use cases both ways.
"""

from typing import Any

from django.db import router, transaction
from django.db.models import F
from django.utils import timezone

from apps.products.models import Product


def alias() -> str:
    return router.db_for_write(Product)


def atomic():
    return transaction.atomic(using=alias())


def touched() -> dict[str, Any]:
    """What every write of a product sets, stock movements included (an
    ``update()`` skips ``auto_now``): a new version, which is the ETag and
    the guard against lost updates, and the time of the change."""
    return {"version": F("version") + 1, "updated_at": timezone.now()}
