"""Every domain error of the catalog, each with a stable ``code``.

``interface.py`` re-exports the ones other contexts may catch; the problem
handler (apps.core.problems) turns any of them into problem+json.
"""

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from apps.core.errors import Conflict, NotFound, PreconditionFailed


@dataclass(frozen=True)
class Shortage:
    """One short item of a reservation: unknown and archived products
    count as short with nothing available."""

    product_id: str
    requested: int
    available: int


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
    """Some items are short: ``shortages`` names every one of them (and the
    problem body lists them, as dicts, under ``items``)."""

    code = "insufficient_stock"
    title = "Insufficient stock"

    def __init__(self, shortages: Iterable[Shortage], detail: str | None = None):
        self.shortages = tuple(shortages)
        super().__init__(
            detail or "Some items are short.",
            items=[asdict(shortage) for shortage in self.shortages],
        )

    @classmethod
    def from_remote(cls, detail, data) -> "InsufficientStock":
        return cls([Shortage(**item) for item in data.get("items", [])], detail)


class ReservationNotFound(NotFound):
    code = "reservation_not_found"
    title = "Reservation not found"


class ReservationConflict(Conflict):
    """The order reference was used before with other items, or the
    reservation is in a state that does not allow the call."""

    code = "reservation_conflict"
    title = "Reservation conflict"
