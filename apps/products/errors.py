"""Every domain error of the catalog, each with a stable ``code``.

``interface.py`` re-exports the ones other contexts may catch; the problem
handler (apps.core.problems) turns any of them into problem+json.
"""

from apps.core.errors import Conflict, NotFound, PreconditionFailed


class ProductNotFound(NotFound):
    code = "product_not_found"
    title = "Product not found"


class ProductConflict(Conflict):
    """A product with that id exists, or the product cannot be deleted."""

    code = "product_conflict"
    title = "Product conflict"


class ProductChanged(PreconditionFailed):
    """The product changed since the caller read it (If-Match, 412)."""

    # The generic code clients already handle for every failed If-Match.
    code = "precondition_failed"
    title = "Product changed"


class InsufficientStock(Conflict):
    """Some items are short; ``data["items"]`` names every one of them."""

    code = "insufficient_stock"
    title = "Insufficient stock"


class ReservationNotFound(NotFound):
    code = "reservation_not_found"
    title = "Reservation not found"


class ReservationConflict(Conflict):
    """The order reference was used before with other items, or the
    reservation is in a state that does not allow the call."""

    code = "reservation_conflict"
    title = "Reservation conflict"
